"""The `heka serve` dashboard: Heka's DashboardOutput as a small stdlib-asyncio HTTP server.

Config (the ``dashboard:`` section, or ``heka serve --dashboard ADDR``)::

    dashboard: 127.0.0.1:4352         # or a mapping:
    dashboard: {address: 127.0.0.1:4352, refresh: 5, name: Dashboard}

It reads the running sandboxes from the daemon (`ServeContext.plugins()`: their `stats()` and
`outputs()`), and like Heka's DashboardOutput it also keeps the latest ``heka.sandbox-output`` payload
of any sandbox whose messages reach it (e.g. from another Heka) and a log of ``heka.sandbox-terminated``
messages. Routes (GET/HEAD only):

- ``/`` — an HTML page: one row per sandbox (name, state, messages processed, memory, last error) and
  its outputs; ``cbuf`` outputs are drawn as inline SVG line charts (one line per column, NaN = gap),
  other outputs shown as text. The page refreshes itself every `refresh` seconds.
- ``/api/status`` — JSON: ``sandboxes``, ``managers`` (counters and the recent control-message
  events with their uuids, which `heka sbmgr` waits on), ``terminated``.
- ``/api/sandboxes`` and ``/api/sandboxes/<name>`` — the sandboxes only / one sandbox (404 if unknown).
- ``/data/sandboxes.json`` and ``/data/<Logger>.<name>.<type>`` — Heka's dashboard file layout.
- ``/chart/<sandbox>/<output>.svg`` — one cbuf chart as a standalone SVG document.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import math
import re
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError, NetworkError
from .plugin import Delivery, Plugin, ServeContext

DEFAULT_ADDRESS = "127.0.0.1:4352"
MAX_TERMINATIONS = 200
_NON_WORD = re.compile(r"[^0-9A-Za-z_]")
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


# -- cbuf text -> chart ------------------------------------------------------------------------------


@dataclass(slots=True)
class CbufData:
    """A parsed ``cbuf`` payload (sandbox-api §6, §9)."""

    time: int  # seconds of the first row
    seconds_per_row: int
    columns: list[dict[str, str]]  # name, unit, aggregation
    rows: list[list[float]]
    extra: dict[str, Any] | None = None  # the optional {"annotations": ...} / {"options": ...} line


def _num(text: str) -> float:
    try:
        return float(text)  # accepts nan, inf, -inf like the dashboard's parseFloat
    except ValueError:
        return math.nan


def parse_cbuf(text: str) -> CbufData:
    """Parse cbuf output text; raises ValueError when it is not one."""
    lines = text.split("\n")
    first = json.loads(lines[0])
    extra = None
    start = 1
    if isinstance(first, dict) and ("annotations" in first or "options" in first):
        extra, first, start = first, json.loads(lines[1]), 2
    if not isinstance(first, dict) or "columns" not in first:
        raise ValueError("not a cbuf header")
    columns = [dict(c) for c in first.get("column_info", [])] or [
        {"name": f"Column_{i + 1}", "unit": "", "aggregation": ""} for i in range(int(first["columns"]))
    ]
    rows = [[_num(v) for v in line.split("\t")] for line in lines[start:] if line.strip()]
    return CbufData(
        int(first.get("time", 0)), int(first.get("seconds_per_row", 1)) or 1, columns, rows, extra
    )


def _fmt_value(v: float) -> str:
    if abs(v) >= 1e6 or (v != 0 and abs(v) < 1e-2):
        return f"{v:.3g}"
    return f"{v:.6g}"


def render_cbuf_svg(data: CbufData, title: str, width: int = 640, height: int = 220) -> str:
    """An inline SVG line chart of a cbuf: one polyline per column; NaN/inf leave gaps."""
    left, right, top, bottom = 58, 12, 14, 30
    pw, ph = width - left - right, height - top - bottom
    finite = [v for row in data.rows for v in row if math.isfinite(v)]
    n = len(data.rows)
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cbuf-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" data-title="{esc(title)}" data-rows="{n}" '
        f'data-points="{len(finite)}"><title>{esc(title)}</title>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    if not finite or n == 0:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" fill="#666">no data</text>'
        )
        parts.append("</svg>")
        return "".join(parts)
    lo, hi = min(0.0, min(finite)), max(finite)
    if hi == lo:
        hi = lo + 1
    # Start the x axis at the first row holding data: a day-long buffer that has seen five minutes
    # would otherwise draw everything against the right edge.
    first = next(i for i, row in enumerate(data.rows) if any(math.isfinite(v) for v in row))
    first = min(first, max(0, n - 2))
    rows = data.rows[first:]
    t0 = data.time + data.seconds_per_row * first
    n = len(rows)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    for frac in (0.0, 0.5, 1.0):
        gy = top + ph - frac * ph
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end" font-size="11">'
            f"{esc(_fmt_value(lo + frac * (hi - lo)))}</text>"
        )
    for i, label_x, anchor in ((0, left, "start"), (n - 1, left + pw, "end")):
        stamp = datetime.fromtimestamp(t0 + data.seconds_per_row * i, UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        parts.append(
            f'<text x="{label_x}" y="{height - 10}" text-anchor="{anchor}" font-size="11">{stamp}Z</text>'
        )
    for c, col in enumerate(data.columns):
        values = [row[c] if c < len(row) else math.nan for row in rows]
        segments: list[str] = []
        dots: list[str] = []
        color = PALETTE[c % len(PALETTE)]
        for i, v in enumerate(values):
            if not math.isfinite(v):
                continue
            pen_down = i > 0 and math.isfinite(values[i - 1])
            segments.append(f"{'L' if pen_down else 'M'}{x(i):.1f},{y(v):.1f}")
            if not pen_down and not (i + 1 < n and math.isfinite(values[i + 1])):
                # a point between two gaps has no length as a line: draw it as a dot
                dots.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>')
        if not segments:
            continue
        parts.append(
            f'<path class="series" data-column="{esc(col.get("name", ""))}" d="{" ".join(segments)}" '
            f'fill="none" stroke="{color}" stroke-width="1.5" stroke-linejoin="round" '
            f'stroke-linecap="round"/>'
        )
        parts.extend(dots)
    parts.append("</svg>")
    return "".join(parts)


def render_legend(data: CbufData) -> str:
    """HTML legend for a cbuf chart (column name, unit, aggregation)."""
    items = []
    for c, col in enumerate(data.columns):
        color = PALETTE[c % len(PALETTE)]
        unit = f" ({col.get('unit')}, {col.get('aggregation')})" if col.get("unit") else ""
        items.append(
            f'<span class="legend-item"><span class="swatch" style="background:{color}"></span>'
            f"{html.escape(col.get('name', ''))}{html.escape(unit)}</span>"
        )
    return f'<div class="legend">{"".join(items)}</div>'


# -- the plugin --------------------------------------------------------------------------------------


def heka_output_filename(logger: str, name: str, ptype: str) -> str:
    """Heka's dashboard file name: ``<Logger>.<name without \\W, <=64>.<type without \\W>``."""
    return f"{logger}.{_NON_WORD.sub('', name)[:64]}.{_NON_WORD.sub('', ptype)}"


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``:port`` listens on all interfaces, as Heka's ``:4352``)."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"dashboard: invalid address {text!r} (expected HOST:PORT)", field="address")
    return (host.strip("[]") or "0.0.0.0"), int(port)


class Dashboard:
    """A router plugin (for sandbox outputs/terminations) that also serves the dashboard over HTTP."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, name: str = "Dashboard", refresh: int = 5) -> None:
        self.name = name
        # Heka's matcher is Type == 'heka.sandbox-output' || Type == 'heka.sandbox-terminated'; the type
        # tests in process() do the same without a compiled matcher.
        self.message_matcher: str | None = None
        self.message_signer: str | None = None
        self.host, self.port = parse_address(address)
        self.refresh = refresh
        self.ctx: ServeContext | None = None
        self._server: asyncio.base_events.Server | None = None
        self._outputs: dict[str, dict[str, tuple[str, str, int]]] = {}  # logger -> name -> (type, text, ns)
        self._terminated: deque[dict[str, Any]] = deque(maxlen=MAX_TERMINATIONS)
        self.requests = 0

    # -- Plugin protocol ------------------------------------------------------------------------
    async def start(self, ctx: ServeContext) -> None:
        """Listen on the configured address."""
        self.ctx = ctx
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise NetworkError(
                f"dashboard: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        bound = self._server.sockets[0].getsockname()
        self.port = bound[1]
        ctx.log(f"dashboard on http://{self.host}:{self.port}/")

    def process(self, delivery: Delivery) -> None:
        """Keep the latest output per sandbox/payload name, and the termination log."""
        msg = delivery.message
        if msg.type == "heka.sandbox-output":
            if not delivery.listener:
                return  # injected by a sandbox running here: its outputs() are read directly
            ptype = msg.get_field("payload_type")
            if not isinstance(ptype, str):  # Heka ignores outputs without payload_type
                return
            pname = msg.get_field("payload_name")
            self._outputs.setdefault(msg.logger or "", {})[pname if isinstance(pname, str) else ""] = (
                ptype or "txt",
                msg.payload or "",
                msg.timestamp or time.time_ns(),
            )
        elif msg.type == "heka.sandbox-terminated":
            plugin = msg.get_field("plugin")
            self._terminated.append(
                {
                    "time": msg.timestamp or time.time_ns(),
                    "plugin": plugin if isinstance(plugin, str) else "",
                    "reason": msg.payload or "",
                }
            )

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def stats(self) -> dict[str, Any]:
        """Requests served and what is shown."""
        return {
            "processed": self.requests,
            "address": f"{self.host}:{self.port}",
            "sandboxes": len(self.sandboxes()),
        }

    # -- the model ------------------------------------------------------------------------------
    def _plugins(self) -> list[Plugin]:
        if self.ctx is None:
            return []
        try:
            return list(self.ctx.plugins())
        except Exception:  # noqa: BLE001 - a snapshot must never break the page
            return []

    def sandboxes(self) -> list[dict[str, Any]]:
        """Every sandbox: local ones with their stats, then remote ones known only by their outputs."""
        plugins = self._plugins()
        managed: dict[str, str] = {}
        for p in plugins:
            filters = getattr(p, "filters", None)
            if isinstance(filters, dict) and hasattr(p, "recent_events"):
                for full in filters:
                    managed[full] = p.name
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for p in plugins:
            outputs_fn = getattr(p, "outputs", None)
            if not callable(outputs_fn):
                continue
            seen.add(p.name)
            try:
                stats = dict(p.stats())
            except Exception as exc:  # noqa: BLE001
                stats = {"state": "unknown", "last_error": f"stats failed: {exc}"}
            try:
                local = dict(outputs_fn())
            except Exception:  # noqa: BLE001
                local = {}
            merged = {k: (t, text, 0) for k, (t, text, *_rest) in self._outputs.get(p.name, {}).items()}
            merged.update({k: (v[0], v[1], 0) for k, v in local.items()})
            out.append(self._entry(p.name, stats, merged, managed.get(p.name)))
        for logger in sorted(self._outputs):
            if logger not in seen:
                out.append(self._entry(logger, {"state": "remote"}, self._outputs[logger], None))
        return out

    @staticmethod
    def _entry(
        name: str, stats: Mapping[str, Any], outputs: Mapping[str, tuple], managed_by: str | None
    ) -> dict:
        state = stats.get("state") or "running"
        return {
            "name": name,
            "state": state,
            "processed": stats.get("processed", stats.get("process_message_count", 0)),
            "memory": stats.get("memory", 0),
            "last_error": stats.get("last_error") or "",
            "managed_by": managed_by,
            "outputs": [
                {
                    "name": oname,
                    "type": ptype,
                    "filename": f"data/{heka_output_filename(name, oname, ptype)}",
                    "text": text,
                }
                for oname, (ptype, text, *_rest) in sorted(outputs.items())
            ],
        }

    def managers(self) -> list[dict[str, Any]]:
        """Sandbox managers: their counters and recent control events."""
        out = []
        for p in self._plugins():
            events = getattr(p, "recent_events", None)
            if callable(events):
                out.append({"name": p.name, **p.stats(), "events": events()})
        return out

    def status(self) -> dict[str, Any]:
        """The whole JSON document of ``/api/status``."""
        return {
            "time": time.time_ns(),
            "sandboxes": self.sandboxes(),
            "managers": self.managers(),
            "terminated": list(self._terminated),
        }

    # -- HTTP -----------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 10)
            headers = 0
            while headers < 100:
                line = await asyncio.wait_for(reader.readline(), 10)
                if line in (b"\r\n", b"\n", b""):
                    break
                headers += 1
            parts = request.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                status, ctype, body = 400, "text/plain", b"bad request\n"
                method = "GET"
            else:
                method = parts[0]
                if method not in ("GET", "HEAD"):
                    status, ctype, body = 405, "text/plain", b"method not allowed\n"
                else:
                    status, ctype, body = self.route(urllib.parse.urlsplit(parts[1]).path)
            self.requests += 1
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def route(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request path."""
        path = urllib.parse.unquote(path)
        json_type = "application/json"
        if path in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", self.render_html().encode("utf-8")
        if path == "/api/status":
            return 200, json_type, _json(self.status())
        if path == "/api/sandboxes":
            return 200, json_type, _json({"sandboxes": self.sandboxes()})
        if path.startswith("/api/sandboxes/"):
            name = path[len("/api/sandboxes/") :]
            for sb in self.sandboxes():
                if sb["name"] == name:
                    return 200, json_type, _json(sb)
            return 404, json_type, _json({"error": f"no sandbox named {name!r}"})
        if path == "/data/sandboxes.json":
            doc = {
                "sandboxes": [
                    {
                        "Name": sb["name"],
                        "Outputs": [{"Name": o["name"], "Filename": o["filename"]} for o in sb["outputs"]],
                    }
                    for sb in self.sandboxes()
                ]
            }
            return 200, json_type, _json(doc)
        if path.startswith("/data/"):
            for sb in self.sandboxes():
                for o in sb["outputs"]:
                    if o["filename"] == path[1:]:
                        return 200, "text/plain; charset=utf-8", o["text"].encode("utf-8", "replace")
        if path.startswith("/chart/") and path.endswith(".svg"):
            sandbox, _, output = path[len("/chart/") : -len(".svg")].partition("/")
            for sb in self.sandboxes():
                for o in sb["outputs"]:
                    if sb["name"] == sandbox and o["name"] == output and o["type"] == "cbuf":
                        with contextlib.suppress(ValueError, IndexError):
                            return (
                                200,
                                "image/svg+xml",
                                render_cbuf_svg(parse_cbuf(o["text"]), output).encode(),
                            )
        return 404, "text/plain", b"not found\n"

    def render_html(self) -> str:
        """The dashboard page."""
        esc = html.escape
        sandboxes = self.sandboxes()
        rows = []
        for sb in sandboxes:
            rows.append(
                f'<tr class="sandbox-row" data-name="{esc(sb["name"])}"><td><a href="#sb-{esc(sb["name"])}">'
                f'{esc(sb["name"])}</a></td>'
                f'<td class="state state-{esc(sb["state"])}">{esc(sb["state"])}</td>'
                f'<td class="num">{esc(str(sb["processed"]))}</td><td class="num">{_bytes(sb["memory"])}</td>'
                f'<td class="error">{esc(sb["last_error"])}</td><td>{esc(sb["managed_by"] or "")}</td>'
                f"<td>{len(sb['outputs'])}</td></tr>"
            )
        sections = []
        for sb in sandboxes:
            figures = []
            for o in sb["outputs"]:
                figures.append(self._render_output(sb["name"], o))
            body = "".join(figures) or '<p class="muted">no output yet</p>'
            sections.append(
                f'<section class="sandbox" id="sb-{esc(sb["name"])}"><h2>{esc(sb["name"])}</h2>'
                f"{body}</section>"
            )
        managers = []
        for m in self.managers():
            rejected = ", ".join(f"{k}: {v}" for k, v in sorted(m.get("rejected", {}).items())) or "none"
            events = "".join(
                f"<tr><td>{_when(e['time'])}</td><td>{esc(str(e.get('action')))}</td>"
                f'<td>{esc(str(e.get("name") or ""))}</td><td class="outcome-{esc(e["outcome"])}">'
                f"{esc(e['outcome'])}</td><td>{esc(e.get('reason', ''))}</td></tr>"
                for e in reversed(m.get("events", [])[-20:])
            )
            managers.append(
                f'<section class="manager"><h2>{esc(m["name"])}</h2><p>running filters '
                f"{m.get('running_filters', 0)} of max {m.get('max_filters', 0)}; control messages "
                f"{m.get('processed', 0)}; rejected: {esc(rejected)}</p>"
                "<table><tr><th>time</th><th>action</th>"
                f"<th>filter</th><th>outcome</th><th>reason</th></tr>{events}</table></section>"
            )
        terminated = "".join(
            f"<tr><td>{_when(t['time'])}</td><td>{esc(t['plugin'])}</td><td>{esc(t['reason'])}</td></tr>"
            for t in reversed(self._terminated)
        )
        table = (
            '<table class="sandboxes"><tr><th>name</th><th>state</th><th>messages processed</th>'
            "<th>memory</th><th>last error</th><th>managed by</th><th>outputs</th></tr>"
            + ("".join(rows) or '<tr><td colspan="7" class="muted">no sandboxes running</td></tr>')
            + "</table>"
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{int(self.refresh)}">'
            f"<title>heka serve: sandboxes</title><style>{_CSS}</style></head><body>"
            f"<h1>Sandboxes</h1>{table}{''.join(sections)}"
            + (f"<h1>Sandbox managers</h1>{''.join(managers)}" if managers else "")
            + (
                f"<h1>Terminated</h1><table><tr><th>time</th><th>plugin</th><th>reason</th></tr>{terminated}</table>"
                if terminated
                else ""
            )
            + f'<p class="muted">updated {_when(time.time_ns())}; '
            'JSON: <a href="/api/status">/api/status</a></p>'
            "</body></html>\n"
        )

    @staticmethod
    def _render_output(sandbox: str, output: Mapping[str, Any]) -> str:
        esc = html.escape
        caption = f'{esc(output["name"] or "(unnamed)")} <span class="muted">({esc(output["type"])})</span>'
        if output["type"] == "cbuf":
            try:
                data = parse_cbuf(output["text"])
            except (ValueError, IndexError, TypeError):
                data = None
            if data is not None:
                return (
                    f'<figure class="output cbuf" data-output="{esc(output["name"])}"><figcaption>{caption}'
                    f"</figcaption>{render_cbuf_svg(data, output['name'])}{render_legend(data)}</figure>"
                )
        return (
            f'<figure class="output text" data-output="{esc(output["name"])}"><figcaption>{caption}'
            f"</figcaption><pre>{esc(output['text'])}</pre></figure>"
        )


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
    "th{background:#f3f3f3}.num{text-align:right}.error{color:#b00}.muted{color:#777}"
    ".state-running{color:#070}.state-terminated{color:#b00}figure{margin:.5em 0 1.5em}"
    "pre{background:#f7f7f7;padding:.5em;max-height:20em;overflow:auto}"
    ".legend-item{margin-right:1em;font-size:.9em}.swatch{display:inline-block;width:.8em;height:.8em;"
    "margin-right:.3em}.outcome-ok{color:#070}.outcome-rejected,.outcome-failed{color:#b00}"
)


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8")


def _bytes(n: Any) -> str:
    try:
        value = float(n)
    except (TypeError, ValueError):
        return html.escape(str(n))
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def build_serve_plugins(section: Any, ctx: ServeContext) -> list[Plugin]:
    """Factory for the ``dashboard:`` section: an address string or {address, refresh, name}."""
    if section is None or section is True:
        return [Dashboard()]
    if isinstance(section, str):
        return [Dashboard(section)]
    if not isinstance(section, Mapping):
        raise ConfigError("dashboard: expected an address or a mapping", field="dashboard")
    unknown = set(section) - {"address", "refresh", "name"}
    if unknown:
        raise ConfigError("dashboard: unknown key", field=sorted(unknown)[0])
    refresh = section.get("refresh", 5)
    if not isinstance(refresh, int) or isinstance(refresh, bool) or refresh < 1:
        raise ConfigError("dashboard: refresh must be a positive integer (seconds)", field="refresh")
    return [
        Dashboard(
            str(section.get("address", DEFAULT_ADDRESS)),
            name=str(section.get("name", "Dashboard")),
            refresh=refresh,
        )
    ]
