"""A decoder from any regular expression with named groups (each group becomes a field).

Groups named after Heka headers fill the header: ``Timestamp`` (RFC 3339, nginx/Apache CLF date or
epoch seconds), ``Severity`` and ``Pid`` (integers), ``Hostname``, ``Payload``, ``Logger``. The pattern
is searched for anywhere in the line, like grep.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from hekacli.errors import UsageError
from hekacli.message import ValueType

from . import grammar as g
from . import times
from .core import Output, PatternDecoder, Piece

_CLF = re.compile(f"{g.CLF_DATE}\\Z")
_RFC3339 = re.compile(f"{g.RFC3339_DATE}\\Z")


def parse_any_time(s: str) -> int:
    """RFC 3339, CLF or epoch seconds (with an optional fraction) -> ns."""
    if _RFC3339.match(s):
        return times.rfc3339_to_ns(s)
    if _CLF.match(s):
        return times.clf_to_ns(s)
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", s):
        return times.msec_to_ns(s) if "." in s else int(s) * times.NS
    raise ValueError(f"unrecognised date {s!r}")


def rewrite_groups(pattern: str) -> tuple[str, list[str]]:
    """Named groups -> our placeholders, plain groups -> non-capturing; returns (regex, names)."""
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        if c == "(":
            m = re.match(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", pattern[i:])
            if m:
                names.append(m.group(1))
                out.append("(?P<@>")
                i += m.end()
                continue
            if pattern.startswith("(?", i):
                out.append(c)
                i += 1
                continue
            out.append("(?:")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out), names


def _output(name: str) -> Output:
    if name == "Timestamp":
        return Output(name, py=parse_any_time, dtype=pl.Int64(), vtype=ValueType.INTEGER)
    if name in ("Severity", "Pid"):
        return Output(
            name,
            py=int,
            dtype=pl.Int64(),
            vtype=ValueType.INTEGER,
            vec=lambda s: s.cast(pl.Int64, strict=False),
        )
    return Output(name, exact_vec=True)


class RegexDecoder(PatternDecoder):
    """PatternDecoder whose bulk path falls back to per-line when polars cannot compile the regex."""

    def frame(self, lines: Any, columns: Any = None) -> pl.DataFrame:
        try:
            pl.Series(["x"]).str.extract_groups(self.full_pattern)
        except Exception:  # noqa: BLE001 - Rust regex syntax differs (look-around, backrefs)
            return super(PatternDecoder, self).frame(lines)
        return super().frame(lines, columns)


def build_decoder(pattern: str, message_type: str = "regex") -> RegexDecoder:
    """Compile a named-group regex decoder."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"bad --pattern: {exc}") from exc
    body, names = rewrite_groups(pattern)
    if not names:
        raise UsageError("--pattern needs at least one named group, like (?P<status>[0-9]+)")
    piece = Piece("field", pattern, f"(?s:.*?)(?:{body})", [_output(n) for n in names], "the pattern")
    for i, o in enumerate(piece.outputs):
        o.group = i
    return RegexDecoder("regex", message_type, [piece], source=pattern)
