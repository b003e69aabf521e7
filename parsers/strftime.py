"""strftime formats (Apache ``%{FORMAT}t``) compiled to a regex and a converter to nanoseconds."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hekacli.errors import ConfigError

from . import grammar as g
from .times import NS, civil_to_ns, days_from_civil, frac_to_ns

_FULL_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FULL_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "PST": -8,
    "PDT": -7,
    "MST": -7,
    "MDT": -6,
    "CST": -6,
    "CDT": -5,
    "EST": -5,
    "EDT": -4,
}

# Composite specifiers, as the C locale expands them.
_COMPOSITE = {
    "c": "%a %b %e %H:%M:%S %Y",
    "D": "%m/%d/%y",
    "F": "%Y-%m-%d",
    "r": "%I:%M:%S %p",
    "R": "%H:%M",
    "T": "%H:%M:%S",
    "x": "%m/%d/%y",
    "X": "%H:%M:%S",
    "h": "%b",
}

# specifier -> (regex, component name or None when matched but not used)
_SIMPLE: dict[str, tuple[str, str | None]] = {
    "a": ("(?:" + "|".join(g.DAYS) + ")", None),
    "A": ("(?:" + "|".join(_FULL_DAYS) + ")", None),
    "b": (g.MONTH, "b"),
    "B": ("(?:" + "|".join(_FULL_MONTHS) + ")", "B"),
    "C": ("[0-9]{2}", None),
    "d": ("[0-9]{2}", "d"),
    "e": ("[ 0-9]?[0-9]", "d"),
    "g": ("[0-9]{2}", None),
    "G": ("[0-9]{4}", None),
    "H": ("[0-9]{2}", "H"),
    "I": ("[0-9]{2}", "I"),
    "j": ("[0-9]{3}", "j"),
    "k": ("[ 0-9]?[0-9]", "H"),
    "l": ("[ 0-9]?[0-9]", "I"),
    "m": ("[0-9]{2}", "m"),
    "M": ("[0-9]{2}", "M"),
    "p": ("(?:AM|PM)", "p"),
    "s": ("-?[0-9]+", "s"),
    "S": ("[0-9]{2}", "S"),
    "u": ("[1-7]", None),
    "U": ("[0-9]{2}", None),
    "V": ("[0-9]{2}", None),
    "w": ("[0-6]", None),
    "W": ("[0-9]{2}", None),
    "y": ("[0-9]{2}", "y"),
    "Y": ("[0-9]{4}", "Y"),
    "z": ("[+-][0-9]{4}", "z"),
    "Z": ("[A-Za-z]{1,5}", "Z"),
    "f": ("[0-9]+", "f"),
}


def _expand(fmt: str) -> str:
    for _ in range(3):
        fmt = re.sub(r"%([" + "".join(_COMPOSITE) + "])", lambda m: _COMPOSITE[m.group(1)], fmt)
    return fmt


def zone_only(fmt: str) -> bool:
    """A format that gives only a UTC offset (Apache's ``%{%z}t`` next to a zone-less date)."""
    return fmt.strip() in ("%z", "%Z")


def zone_offset_seconds(text: str) -> int:
    """``-0800`` or ``PST`` -> seconds east of UTC."""
    if text[:1] in "+-" and text[1:].isdigit():
        return (int(text[1:3]) * 3600 + int(text[3:5]) * 60) * (-1 if text[0] == "-" else 1)
    return _ZONES.get(text.upper(), 0) * 3600


def has_zone(fmt: str) -> bool:
    return "%z" in fmt or "%Z" in fmt or "%s" in fmt


def compile_strftime(fmt: str) -> tuple[str, Callable[[str], int]]:
    """(regex without capture groups, text -> ns) for a strftime format."""
    fmt = _expand(fmt)
    parts_plain: list[str] = []
    parts_py: list[str] = []
    comps: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            spec = fmt[i + 1]
            i += 2
            if spec == "%":
                parts_plain.append("%")
                parts_py.append("%")
            elif spec in ("n", "t"):
                parts_plain.append(g.WS_CLASS)
                parts_py.append(g.WS_CLASS)
            elif spec in _SIMPLE:
                rx, comp = _SIMPLE[spec]
                parts_plain.append(f"(?:{rx})")
                if comp is None:
                    parts_py.append(f"(?:{rx})")
                else:
                    comps.append(comp)
                    parts_py.append(f"({rx})")
            else:
                raise ConfigError(f"unknown strftime specifier %{spec} in {fmt!r}")
            continue
        if c in g.WS_CHARS:
            parts_plain.append(g.WS_CLASS)
            parts_py.append(g.WS_CLASS)
        else:
            parts_plain.append(g.escape(c))
            parts_py.append(g.escape(c))
        i += 1
    if not comps:
        raise ConfigError(f"strftime format {fmt!r} has no date or time")
    matcher = re.compile("".join(parts_py) + r"\Z")
    cache: dict[str, int] = {}

    def convert(text: str) -> int:
        hit = cache.get(text)
        if hit is not None:
            return hit
        m = matcher.match(text)
        if m is None:
            raise ValueError(f"{text!r} does not match {fmt!r}")
        v = dict(zip(comps, m.groups(), strict=True))
        if "s" in v:
            ns = int(v["s"]) * NS + frac_to_ns(v.get("f", ""))
        else:
            if "Y" in v:
                year = int(v["Y"])
            elif "y" in v:
                year = time.gmtime().tm_year // 100 * 100 + int(v["y"])
            else:
                year = 1970
            if "b" in v:
                month = g.MONTH_NUM[v["b"]]
            elif "B" in v:
                month = _FULL_MONTHS.index(v["B"]) + 1
            else:
                month = int(v.get("m", "1"))
            if "d" not in v and "j" not in v:
                raise ValueError(f"strftime format {fmt!r} has no day")
            hour = int(v.get("H", "0").strip() or 0)
            if "I" in v:
                hour = int(v["I"].strip()) % 12 + (12 if v.get("p") == "PM" else 0)
            off = 0
            if "z" in v:
                z = v["z"]
                off = (int(z[1:3]) * 3600 + int(z[3:5]) * 60) * (-1 if z[0] == "-" else 1)
            elif "Z" in v:
                off = _ZONES.get(v["Z"].upper(), 0) * 3600
            if "j" in v and "d" not in v:
                days = days_from_civil(year, 1, 1) + int(v["j"]) - 1
                ns = (days * 86400 + hour * 3600 + int(v.get("M", 0)) * 60 + int(v.get("S", 0)) - off) * NS
                ns += frac_to_ns(v.get("f", ""))
            else:
                ns = civil_to_ns(
                    year,
                    month,
                    int(v["d"].strip()),
                    hour,
                    int(v.get("M", 0)),
                    int(v.get("S", 0)),
                    frac_to_ns(v.get("f", "")),
                    off,
                )
        if len(cache) < 100_000:
            cache[text] = ns
        return ns

    return "".join(parts_plain), convert
