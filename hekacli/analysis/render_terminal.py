"""The report drawn for a terminal with rich: overview cards, tables with bars, sparklines.

Piped or with NO_COLOR the same layout is printed without colour (rich decides from the stream).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hekacli.output import make_console

from .fmt import SPARK, format_cell, hbar, human_bytes, human_duration, human_int, human_seconds, sparkline

ACCENT = "cyan"
BAR_STYLE = "cyan"
STATUS_STYLES = {"1": "blue", "2": "green", "3": "cyan", "4": "yellow", "5": "red"}
# Panels drawn side by side with their neighbour when the terminal is wide enough.
NARROW_PANELS = {
    "hosts",
    "os",
    "browsers",
    "browser_versions",
    "referring_sites",
    "status_codes",
    "time_served",
}
KEY_WIDTH = {"requests": 48, "static": 48, "not_found": 48, "referrers": 48, "hosts": 30}


def _card(label: str, value: str, style: str = "bold") -> Text:
    t = Text()
    t.append(value + "\n", style=style)
    t.append(label, style="dim")
    return t


def overview_renderable(report: dict[str, Any], width: int | None = None) -> RenderableType:
    ov = report["overview"]
    visitors = next((p for p in report["panels"] if p["id"] == "visitors"), None)
    failed = ov["failed_requests"]
    cards = [
        _card("Total requests", human_int(ov["total_requests"]), f"bold {ACCENT}"),
        _card("Valid requests", human_int(ov["valid_requests"]), "bold green"),
        _card("Failed requests", human_int(failed), "bold red" if failed else "bold"),
        _card("Unique visitors", human_int(ov["unique_visitors"]), f"bold {ACCENT}"),
        _card("Requested files", human_int(ov.get("unique_files"))),
        _card("Static files", human_int(ov.get("unique_static_files"))),
        _card("Not found (404) URLs", human_int(ov.get("unique_not_found"))),
        _card("Referrers", human_int(ov.get("unique_referrers"))),
        _card("Bandwidth", human_bytes(ov["bandwidth"]), "bold magenta"),
        _card("Log size", human_bytes(ov["log_size"])),
        _card("Time span", human_duration(ov.get("span_seconds"))),
        _card("Processed in", human_seconds(ov.get("processing_seconds"))),
    ]
    per_row = max(2, min(6, (width or 100) // 19))
    grid = Table.grid(padding=(0, 3))
    for _ in range(per_row):
        grid.add_column()
    for i in range(0, len(cards), per_row):
        row = cards[i : i + per_row]
        grid.add_row(*row, *([""] * (per_row - len(row))))
        if i + per_row < len(cards):
            grid.add_row(*([""] * per_row))
    parts: list[RenderableType] = [grid, Text("")]
    if visitors and visitors["rows"]:
        hits = [r["hits"] for r in visitors["rows"]]
        line = Text()
        line.append("Hits per day  ", style="dim")
        line.append(sparkline(hits), style=BAR_STYLE)
        line.append(f"  {visitors['rows'][0]['key']} → {visitors['rows'][-1]['key']}", style="dim")
        parts.append(line)
    title = "[bold]heka report[/bold]"
    names = ", ".join(os.path.basename(s["path"]) for s in ov["sources"][:3])
    if len(ov["sources"]) > 3:
        names += f" +{len(ov['sources']) - 3} more"
    first, last = ((ov.get(k) or "")[:19].replace("T", " ") for k in ("first", "last"))
    span = f"{first} → {last} UTC"
    subtitle = f"{names} · {span}" if ov.get("first") else names
    return Panel(
        Group(*parts), title=title, subtitle=subtitle, border_style=ACCENT, box=box.ROUNDED, padding=(1, 2)
    )


def _bar_cell(value: float, top: float, width: int, style: str = BAR_STYLE) -> Text:
    return Text(hbar(value, top, width), style=style)


# Dropped (in this order) when a table would not fit the terminal.
OPTIONAL_COLUMNS = ("max_time", "bytes", "avg_time", "visitors")


def _others_width(cols: list[dict[str, Any]], rows: list[dict[str, Any]], bar_width: int) -> int:
    """Cells taken by every column but the key (content, 2 cells of padding and a separator each)."""
    total = bar_width + 3 + 2
    for c in cols:
        if c["key"] != "key":
            total += 3 + max([len(c["label"])] + [len(format_cell(r.get(c["key"]), c["type"])) for r in rows])
    return total


def _fit_columns(
    cols: list[dict[str, Any]], rows: list[dict[str, Any]], bar_width: int, available: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """The columns to show and the width left for the key column (None: no limit)."""
    if available is None:
        return cols, None
    cols = list(cols)
    for name in OPTIONAL_COLUMNS:
        if _others_width(cols, rows, bar_width) + 14 <= available:
            break
        cols = [c for c in cols if c["key"] != name]
    return cols, max(8, available - _others_width(cols, rows, bar_width) - 2)


def panel_table(
    panel: dict[str, Any], *, bar_width: int = 20, key_width: int | None = None, available: int | None = None
) -> Table:
    """A panel as a rich table with a bar column after the hits (columns dropped to fit `available`)."""
    cols, key_room = _fit_columns(panel["columns"], panel["rows"], bar_width, available)
    key_width = min(key_width or 48, key_room or 48)
    shown = (
        f" (top {len(panel['rows'])} of {panel['total']:,})" if panel["total"] > len(panel["rows"]) else ""
    )
    table = Table(
        title=f"[bold]{panel['title']}[/bold]{shown}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        expand=False,
        pad_edge=False,
    )
    rows = panel["rows"]
    top = max((r.get("hits") or 0 for r in rows if r.get("level", 0) == 0), default=0)
    for c in cols:
        if c["key"] == "key":
            # Only the key column gives way on a narrow terminal; numbers are never cut.
            table.add_column(c["label"], overflow="ellipsis", no_wrap=True, max_width=key_width or 48)
        else:
            widest = max([len(c["label"])] + [len(format_cell(r.get(c["key"]), c["type"])) for r in rows])
            table.add_column(c["label"], justify="right", no_wrap=True, min_width=widest)
        if c["key"] == "hits_pct":
            table.add_column("", no_wrap=True, min_width=bar_width, max_width=bar_width)
    for r in rows:
        level = r.get("level", 0)
        style = ""
        if panel["id"] == "status_codes":
            style = STATUS_STYLES.get(str(r["key"])[:1], "")
            style = f"bold {style}" if level == 0 else style
        cells: list[RenderableType] = []
        for c in cols:
            text = format_cell(r.get(c["key"]), c["type"])
            if c["key"] == "key" and level:
                text = "  " + text
            cells.append(Text(text, style=style if c["key"] == "key" else ""))
            if c["key"] == "hits_pct":
                bar_style = (
                    STATUS_STYLES.get(str(r["key"])[:1], BAR_STYLE)
                    if panel["id"] == "status_codes"
                    else BAR_STYLE
                )
                cells.append(
                    _bar_cell(r.get("hits") or 0, top, bar_width, bar_style + (" dim" if level else ""))
                )
        table.add_row(*cells)
    return table


def hours_chart(panel: dict[str, Any], height: int = 8) -> RenderableType:
    """Hits per hour of day as a vertical bar chart (24 columns, eighth-block tops)."""
    hits = [r["hits"] for r in panel["rows"]]
    top = max(hits) or 1
    lines = []
    for level in range(height, 0, -1):
        row = Text()
        for h in hits:
            filled = h / top * height  # in rows
            if filled >= level:
                ch = "█"
            elif filled > level - 1:
                ch = SPARK[max(0, min(7, int((filled - (level - 1)) * 8) - 1))]
            else:
                ch = " "
            row.append(f" {ch * 2}", style=BAR_STYLE)
        lines.append(row)
    axis = Text("".join(f" {r['key'][:2]}" for r in panel["rows"]), style="dim")
    peak = max(panel["rows"], key=lambda r: r["hits"])
    caption = Text(f"busiest hour {peak['key']} UTC ({peak['hits']:,} hits)", style="dim")
    return Group(
        Text(panel["title"] + " (hits per hour of day, UTC)", style="bold"), *lines, axis, caption, Text("")
    )


def time_served_renderable(
    panel: dict[str, Any], bar_width: int = 20, available: int | None = None
) -> RenderableType:
    stats = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for s in panel["percentiles"]:
        stats.add_column(s["key"], justify="right")
    stats.add_row(*(human_seconds(s["value"]) for s in panel["percentiles"]))
    hist = panel_table(
        {**panel, "title": "", "total": len(panel["rows"])}, bar_width=bar_width, available=available
    )
    hist.title = None
    return Group(
        Text(f"{panel['title']} (${panel.get('column', 'request_time')})", style="bold"), stats, hist
    )


def visitors_renderable(
    panel: dict[str, Any], bar_width: int = 20, available: int | None = None
) -> RenderableType:
    table = panel_table(panel, bar_width=bar_width, available=available)
    table.title = (
        f"[bold]{panel['title']}[/bold]  [{BAR_STYLE}]{sparkline([r['hits'] for r in panel['rows']])}[/]"
    )
    return table


def render_report(report: dict[str, Any], stream: IO[str] | None = None, width: int | None = None) -> None:
    """Print the whole report to `stream` (stdout by default)."""
    console = make_console(file=stream or sys.stdout, width=width, highlight=False)
    console.print(overview_renderable(report, console.width))
    wide = console.width >= 170  # two panels side by side, each with all its columns
    bar = 20 if console.width >= 110 else 12 if console.width >= 90 else 6
    pending: list[RenderableType] = []

    def flush() -> None:
        if pending:
            console.print(Columns(pending, padding=(0, 4)) if len(pending) > 1 else pending[0])
            pending.clear()

    for panel in report["panels"]:
        if not panel["rows"]:
            continue
        if panel["id"] == "visit_times":
            flush()
            console.print(hours_chart(panel))
            continue
        if panel["id"] == "time_served":
            r: RenderableType = time_served_renderable(
                panel, min(14, bar), console.width // 2 - 2 if wide else console.width
            )
        elif panel["id"] == "visitors":
            r = visitors_renderable(panel, bar, console.width)
        else:
            narrow = panel["id"] in NARROW_PANELS
            r = panel_table(
                panel,
                bar_width=min(14, bar) if narrow else bar,
                # Side by side on a wide terminal: each of the pair gets half the width.
                available=console.width // 2 - 2 if wide and narrow else console.width,
                key_width=KEY_WIDTH.get(panel["id"], 24 if narrow else 40),
            )
        if wide and panel["id"] in NARROW_PANELS:
            pending.append(r)
            if len(pending) == 2:
                flush()
        else:
            flush()
            console.print(r)
    flush()
    ov = report["overview"]
    for note in report.get("notes", []):
        console.print(Text(f"note: {note}", style="dim"))
    if ov["failed_requests"]:
        console.print(
            Text(
                f"{ov['failed_requests']:,} lines did not match the log format "
                "(see stderr for the first ones)",
                style="yellow",
            )
        )
