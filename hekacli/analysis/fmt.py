"""Number formatting shared by the terminal and HTML renderers."""

from __future__ import annotations

import math
from typing import Any

SPARK = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"


def human_bytes(n: float | None) -> str:
    """1536 -> '1.5 KiB'."""
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def human_seconds(s: float | None) -> str:
    """0.0042 -> '4.2 ms'; 75 -> '1m15s'."""
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "–"
    if s < 0.001:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1000:.1f} ms"
    if s < 60:
        return f"{s:.2f} s"
    return human_duration(s)


def human_duration(s: float | None) -> str:
    """604800 -> '7d 0h'."""
    if s is None:
        return "–"
    s = int(round(s))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def human_int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"


def format_cell(value: Any, kind: str) -> str:
    """A value rendered for its column type (int, pct, bytes, seconds, text)."""
    if value is None:
        return "–"
    if kind == "int":
        return human_int(value)
    if kind == "pct":
        return f"{float(value):.2f}%"
    if kind == "bytes":
        return human_bytes(value)
    if kind == "seconds":
        return human_seconds(value)
    return str(value)


def sparkline(values: list[float]) -> str:
    """▁▂▅█ for a series (0 stays the lowest block)."""
    if not values:
        return ""
    top = max(values) or 1
    return "".join(SPARK[min(len(SPARK) - 1, int(round(v / top * (len(SPARK) - 1))))] for v in values)


def hbar(value: float, top: float, width: int) -> str:
    """A horizontal bar of `width` cells scaled to `top`, with eighth-block precision."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, int(round(value / top * width * 8)))
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")
