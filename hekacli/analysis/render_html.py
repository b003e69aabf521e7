"""The report as one self-contained HTML page: inline CSS and SVG charts, no JavaScript, no network.

Everything the page needs is in the file, so it can be mailed, archived or opened offline. Every value
from the log is HTML-escaped; nothing from the log becomes a link or a resource reference.
"""

from __future__ import annotations

import html
import math
import os
from typing import Any

from .fmt import format_cell, human_bytes, human_duration, human_int, human_seconds

STATUS_COLOURS = {"1": "#6c8ebf", "2": "#2e9e5b", "3": "#2b8fb8", "4": "#d99a1e", "5": "#d64541"}

CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d232b;--muted:#667180;--line:#e3e7ec;--accent:#1f8fb8;
--accent2:#7b5cc4;--bar:#cfe9f3;--grid:#eef1f4}
@media (prefers-color-scheme:dark){:root{--bg:#12161b;--card:#1a2027;--ink:#e6ebf0;--muted:#95a1ad;
--line:#2a323b;--accent:#44b6dd;--accent2:#a48be8;--bar:#1f4a5a;--grid:#232b33}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
header{padding:28px 32px 8px}
header h1{margin:0;font-size:24px;letter-spacing:-.01em}
header h1 span{color:var(--accent)}
header p{margin:4px 0 0;color:var(--muted)}
main{padding:8px 32px 40px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:20px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;
min-width:0;overflow:hidden}
section.wide{grid-column:1/-1}
h2{margin:0 0 2px;font-size:16px}
.desc{margin:0 0 12px;color:var(--muted);font-size:12.5px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.card span{color:var(--muted);font-size:12px}
.card.hl b{color:var(--accent)}
.card.bad b{color:#d64541}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th{text-align:right;font-weight:600;color:var(--muted);font-size:12px;padding:4px 8px;
border-bottom:1px solid var(--line);white-space:nowrap}
td{text-align:right;padding:3px 8px;border-bottom:1px solid var(--grid);white-space:nowrap}
th:first-child,td:first-child{text-align:left;padding-left:0}
td.key{max-width:340px;overflow:hidden;text-overflow:ellipsis;font-family:ui-monospace,SFMono-Regular,
Menlo,Consolas,monospace;font-size:12.5px}
td.barcell{width:28%;min-width:90px}
.bar{height:10px;border-radius:3px;background:var(--accent);opacity:.85}
tr.sub td.key{padding-left:18px;color:var(--muted)}
tr.group td{font-weight:600}
svg{display:block;width:100%;height:auto}
svg text{fill:var(--muted);font-size:11px;font-family:system-ui,sans-serif}
svg .gridline{stroke:var(--grid);stroke-width:1}
.legend{display:flex;gap:14px;color:var(--muted);font-size:12px;margin:6px 0 10px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.pcts{display:grid;grid-template-columns:repeat(auto-fit,minmax(74px,1fr));gap:8px;margin-bottom:14px}
.pcts div{border:1px solid var(--line);border-radius:8px;padding:6px 10px}
.pcts b{display:block;font-size:15px;white-space:nowrap}.pcts span{color:var(--muted);font-size:12px}
.stack{display:flex;height:14px;border-radius:4px;overflow:hidden;margin:4px 0 12px}
footer{padding:0 32px 28px;color:var(--muted);font-size:12px}
.note{color:var(--muted);font-size:12.5px}
"""

WIDE_PANELS = {"visitors", "requests", "static", "not_found", "referrers", "visit_times"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _overview_cards(ov: dict[str, Any]) -> str:
    cards = [
        ("Total requests", human_int(ov["total_requests"]), "hl"),
        ("Valid requests", human_int(ov["valid_requests"]), ""),
        ("Failed requests", human_int(ov["failed_requests"]), "bad" if ov["failed_requests"] else ""),
        ("Unique visitors", human_int(ov["unique_visitors"]), "hl"),
        ("Requested files", human_int(ov.get("unique_files")), ""),
        ("Static files", human_int(ov.get("unique_static_files")), ""),
        ("Not found URLs", human_int(ov.get("unique_not_found")), ""),
        ("Referrers", human_int(ov.get("unique_referrers")), ""),
        ("Bandwidth", human_bytes(ov["bandwidth"]), "hl"),
        ("Log size", human_bytes(ov["log_size"]), ""),
        ("Time span", human_duration(ov.get("span_seconds")), ""),
        ("Processed in", human_seconds(ov.get("processing_seconds")), ""),
    ]
    items = "".join(
        f'<div class="card {cls}"><b>{_e(v)}</b><span>{_e(label)}</span></div>' for label, v, cls in cards
    )
    return (
        f'<section class="wide" id="overview"><h2>Overview</h2><p class="desc">Every number below comes '
        f'from the decoded records.</p><div class="cards">{items}</div></section>'
    )


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ raw (axis tick spacing)."""
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def bar_chart_svg(
    labels: list[str],
    series: list[tuple[str, list[float], str]],
    *,
    height: int = 200,
    width: int = 900,
    label_every: int = 1,
    line_series: tuple[str, list[float], str] | None = None,
) -> str:
    """Grouped vertical bars (one group per label), optional line on top; returns inline <svg>."""
    left, right, top, bottom = 52, 12, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    peak = max((max(vals, default=0) for _, vals, _ in series), default=0)
    if line_series:
        peak = max(peak, max(line_series[1], default=0))
    step = _nice_step(peak / 4)
    ticks = max(1, math.ceil(peak / step)) if peak else 4
    vmax = step * ticks
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" preserveAspectRatio="xMidYMid meet">']
    for i in range(ticks + 1):
        y = top + plot_h - plot_h * i / ticks
        parts.append(f'<line class="gridline" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_short(step * i))}</text>')
    group_w = plot_w / n
    bar_w = group_w * 0.78 / max(len(series), 1)
    for gi, label in enumerate(labels):
        gx = left + gi * group_w + group_w * 0.11
        for si, (name, vals, colour) in enumerate(series):
            v = vals[gi] if gi < len(vals) else 0
            h = plot_h * v / vmax if vmax else 0
            x = gx + si * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{h:.1f}" rx="2" fill="{colour}"><title>{_e(label)}: {_e(name)} '
                f"{_e(human_int(v))}</title></rect>"
            )
        if gi % label_every == 0:
            cx = left + gi * group_w + group_w / 2
            parts.append(f'<text x="{cx:.1f}" y="{height - 8}" text-anchor="middle">{_e(label)}</text>')
    if line_series:
        name, vals, colour = line_series
        pts = " ".join(
            f"{left + i * group_w + group_w / 2:.1f},{top + plot_h - plot_h * v / vmax:.1f}"
            for i, v in enumerate(vals)
        )
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.5" '
            f'stroke-linejoin="round"/>'
        )
        for i, v in enumerate(vals):
            parts.append(
                f'<circle cx="{left + i * group_w + group_w / 2:.1f}" '
                f'cy="{top + plot_h - plot_h * v / vmax:.1f}" r="3" fill="{colour}">'
                f"<title>{_e(labels[i])}: {_e(name)} {_e(human_int(v))}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(v: float) -> str:
    if v >= 1e9:
        return f"{v / 1e9:.1f}G"
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _legend(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{_e(n)}</span>' for n, c in items)
        + "</div>"
    )


def _table(panel: dict[str, Any]) -> str:
    cols = panel["columns"]
    rows = panel["rows"]
    top = max((r.get("hits") or 0 for r in rows if r.get("level", 0) == 0), default=0) or 1
    head = []
    for c in cols:
        head.append(f"<th>{_e(c['label'])}</th>")
        if c["key"] == "hits_pct":
            head.append("<th></th>")
    body = []
    for r in rows:
        level = r.get("level", 0)
        cls = ""
        colour = "var(--accent)"
        if panel["id"] == "status_codes":
            cls = ' class="sub"' if level else ' class="group"'
            colour = STATUS_COLOURS.get(str(r["key"])[:1], colour)
        cells = []
        for c in cols:
            text = format_cell(r.get(c["key"]), c["type"])
            if c["key"] == "key":
                cells.append(f'<td class="key" title="{_e(text)}">{_e(text)}</td>')
            else:
                cells.append(f"<td>{_e(text)}</td>")
            if c["key"] == "hits_pct":
                width = 100.0 * (r.get("hits") or 0) / top
                opacity = ";opacity:.5" if level else ""
                cells.append(
                    f'<td class="barcell"><div class="bar" style="width:{width:.1f}%;'
                    f'background:{colour}{opacity}"></div></td>'
                )
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(panel: dict[str, Any], inner: str) -> str:
    shown = (
        f" — top {len(panel['rows'])} of {panel['total']:,}" if panel["total"] > len(panel["rows"]) else ""
    )
    wide = " wide" if panel["id"] in WIDE_PANELS else ""
    return (
        f'<section class="panel{wide}" id="panel-{_e(panel["id"])}"><h2>{_e(panel["title"])}</h2>'
        f'<p class="desc">{_e(panel["description"])}{_e(shown)}</p>{inner}</section>'
    )


def _visitors(panel: dict[str, Any]) -> str:
    labels = [r["key"][5:] for r in panel["rows"]]  # MM-DD
    every = max(1, len(labels) // 15)
    chart = bar_chart_svg(
        labels,
        [("hits", [r["hits"] for r in panel["rows"]], "var(--accent)")],
        label_every=every,
        line_series=("visitors", [r["visitors"] for r in panel["rows"]], "var(--accent2)"),
    )
    legend = _legend([("Hits", "var(--accent)"), ("Unique visitors", "var(--accent2)")])
    return legend + chart + _table(panel)


def _hours(panel: dict[str, Any]) -> str:
    labels = [r["key"][:2] for r in panel["rows"]]
    chart = bar_chart_svg(
        labels,
        [
            ("hits", [r["hits"] for r in panel["rows"]], "var(--accent)"),
            ("visitors", [r["visitors"] for r in panel["rows"]], "var(--accent2)"),
        ],
        height=180,
    )
    return _legend([("Hits", "var(--accent)"), ("Unique visitors", "var(--accent2)")]) + chart


def _status(panel: dict[str, Any]) -> str:
    groups = [r for r in panel["rows"] if r.get("level", 0) == 0]
    total = sum(r["hits"] for r in groups) or 1
    stack = "".join(
        f'<div style="width:{100.0 * r["hits"] / total:.2f}%;background:'
        f'{STATUS_COLOURS.get(str(r["key"])[:1], "#888")}" title="{_e(r["key"])}"></div>'
        for r in groups
    )
    legend = _legend(
        [(f"{r['key']} {r['hits_pct']:.1f}%", STATUS_COLOURS.get(str(r["key"])[:1], "#888")) for r in groups]
    )
    return f'<div class="stack">{stack}</div>{legend}{_table(panel)}'


def _time_served(panel: dict[str, Any]) -> str:
    pcts = "".join(
        f"<div><b>{_e(human_seconds(s['value']))}</b><span>{_e(s['key'])}</span></div>"
        for s in panel["percentiles"]
    )
    labels = [r["key"] for r in panel["rows"]]
    chart = bar_chart_svg(
        labels, [("requests", [r["hits"] for r in panel["rows"]], "var(--accent)")], height=190, width=520
    )
    return f'<div class="pcts">{pcts}</div>{chart}{_table(panel)}'


def render_html(report: dict[str, Any], title: str = "heka report") -> str:
    """The complete HTML document for a report from `build_report`."""
    ov = report["overview"]
    names = ", ".join(os.path.basename(s["path"]) for s in ov["sources"][:4])
    if len(ov["sources"]) > 4:
        names += f" and {len(ov['sources']) - 4} more"
    span = ""
    if ov.get("first"):
        span = f" · {ov['first'][:19].replace('T', ' ')} → {ov['last'][:19].replace('T', ' ')} UTC"
    sections = [_overview_cards(ov)]
    for panel in report["panels"]:
        if not panel["rows"]:
            continue
        if panel["id"] == "visitors":
            inner = _visitors(panel)
        elif panel["id"] == "visit_times":
            inner = _hours(panel)
        elif panel["id"] == "status_codes":
            inner = _status(panel)
        elif panel["id"] == "time_served":
            inner = _time_served(panel)
        else:
            inner = _table(panel)
        sections.append(_section(panel, inner))
    notes = "".join(f'<p class="note">Note: {_e(n)}</p>' for n in report.get("notes", []))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · {_e(names)}</title><style>{CSS}</style></head><body>"
        f"<header><h1><span>heka</span> report</h1><p>{_e(names)}{_e(span)}</p></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>{notes}Generated by hekacli · {_e(human_int(ov['valid_requests']))} requests "
        f"in {_e(human_seconds(ov.get('processing_seconds')))}.</footer>"
        "</body></html>\n"
    )
