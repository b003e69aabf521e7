"""The bulk path's fast extraction: cut clean lines at the format's separators instead of running a
regex with capture groups.

polars runs a regex with capture groups through a slow engine (~1.5 us a line for a combined
log), while cutting a string at the first occurrence of a literal is a memchr-speed kernel. For
most access-log formats the two are the same thing: every value is followed by a separator (a
literal, or one space on a clean line) whose first character the value can never contain, so the
value must end exactly at the first occurrence of that character. A `SplitPlan` cuts every line
that way and then *validates* each candidate value (it must not contain that character, a typed
field must fully match its regex). On a line where every check passes, the regex would capture
exactly those values (argued in `build_plan`); any line that fails a check goes back to the regex,
so the plan can only speed things up, never change a result.

Plans exist only for the "fast" (clean-line) form of a format; `PatternDecoder._groups` uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from . import grammar as g

try:  # the parser of Python's own `re`; used only to list the characters a field can contain
    from re import _parser as _re_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons: no plans, the regex path is used
    _re_parser = None  # type: ignore[assignment]

# A field's regex: optional literal text, one capture group, optional literal text (`\[(?P<@>...)\]`).
_LITERAL = r"(?:\\[^A-Za-z0-9]|[^\\()\[\]{}.*+?|^$])*"
_GROUP = re.compile(rf"^({_LITERAL})\(\?P<@>(.*)\)({_LITERAL})$", re.DOTALL)


@dataclass(frozen=True)
class Step:
    """One value of the line: where it ends and what it must satisfy."""

    group: int  # capture-group number the value fills
    separator: str | None  # text that follows the value (None: the value is the rest of the line)
    forbidden: str | None  # a character the value cannot contain
    validate: str | None  # an anchored regex the value must fully match
    leading: str | None = None  # last value only: the value is this regex's match at its start


@dataclass(frozen=True)
class SplitPlan:
    """How to cut a clean line into the capture groups of a format's fast regex."""

    prefix: str  # literal the line starts with
    steps: tuple[Step, ...]
    ngroups: int

    def extract(self, lines: pl.Series) -> pl.DataFrame:
        """Columns g0..g(N-1) (null on lines the plan cannot vouch for) and ``__ok``."""
        lf = self.cut(pl.LazyFrame({"__line": lines}), "__line")
        names = [f"g{n}" for n in range(self.ngroups)]
        ok = pl.col("__ok")
        return lf.select([*(pl.when(ok).then(pl.col(c)).alias(c) for c in names), "__ok"]).collect()

    def cut(self, lf: pl.LazyFrame, column: str) -> pl.LazyFrame:
        """`lf` plus the capture columns g0..g(N-1) cut from `column` and ``__ok`` (every check
        passed). The captures are only meaningful where ``__ok`` is true."""
        lf = lf.with_columns(pl.col(column).alias("__rest"))
        checks: list[pl.Expr] = []
        if self.prefix:
            checks.append(pl.col("__rest").str.starts_with(self.prefix))
            lf = lf.with_columns(pl.col("__rest").str.strip_prefix(self.prefix))
        names: list[str] = []
        for step in self.steps:
            name = f"g{step.group}"
            names.append(name)
            if step.leading is not None:
                # exactly what the format's regex captures there: it ends the regex, nothing follows
                lf = lf.with_columns(pl.col("__rest").str.extract(f"^({step.leading})", 1).alias(name))
                checks.append(pl.col(name).is_not_null())
            elif step.separator is None:
                lf = lf.with_columns(pl.col("__rest").alias(name))
            else:
                parts = pl.col("__rest").str.splitn(step.separator, 2)
                lf = lf.with_columns(parts.alias("__parts")).with_columns(
                    pl.col("__parts").struct.field("field_0").alias(name),
                    pl.col("__parts").struct.field("field_1").alias("__rest"),
                )
                checks.append(pl.col("__rest").is_not_null())
            value = pl.col(name)
            if step.forbidden is not None:
                checks.append(~value.str.contains(step.forbidden, literal=True))
            if step.validate is not None:
                checks.append(value.str.contains(step.validate))
        ok = pl.all_horizontal(checks).fill_null(False) if checks else pl.lit(True)
        present = set(names)
        missing = [
            pl.lit(None, pl.String).alias(f"g{n}") for n in range(1, self.ngroups) if f"g{n}" not in present
        ]
        return lf.with_columns(pl.lit("").alias("g0"), *missing, ok.alias("__ok")).drop(
            "__rest", "__parts", strict=False
        )


def _char_ranges(node: Any) -> list[tuple[int, int]] | None:
    """Code-point ranges of every character a parsed regex can match (None: unknown or any)."""
    out: list[tuple[int, int]] = []
    for op, av in node:
        name = str(op)
        if name == "LITERAL":
            out.append((av, av))
        elif name == "IN":
            for iop, iav in av:
                iname = str(iop)
                if iname == "LITERAL":
                    out.append((iav, iav))
                elif iname == "RANGE":
                    out.append(iav)
                else:  # NEGATE, CATEGORY...: give up rather than reason about them
                    return None
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            sub = _char_ranges(av[2])
            if sub is None:
                return None
            out.extend(sub)
        elif name == "SUBPATTERN":
            sub = _char_ranges(av[-1])
            if sub is None:
                return None
            out.extend(sub)
        elif name == "BRANCH":
            for alt in av[1]:
                sub = _char_ranges(alt)
                if sub is None:
                    return None
                out.extend(sub)
        else:  # ANY, NOT_LITERAL, AT, GROUPREF, ...
            return None
    return out


def can_contain(regex: str, char: str) -> bool:
    """Whether some text matched by `regex` may contain `char` (True when it cannot tell)."""
    if _re_parser is None:
        return True
    try:
        ranges = _char_ranges(_re_parser.parse(regex))
    except Exception:  # noqa: BLE001 - a syntax Python's parser does not take: assume the worst
        return True
    if ranges is None:
        return True
    c = ord(char)
    return any(lo <= c <= hi for lo, hi in ranges)


def build_plan(pieces: list[Any], piece_groups: list[list[int]], fast_bodies: dict[int, str], ngroups: int,
               validators: dict[int, str]) -> SplitPlan | None:
    """The plan for a format, or None when some piece does not fit the scheme.

    `fast_bodies` maps the index of a "string" piece to the body of its fast regex; `validators`
    maps a group number to the regex a run-captured field's value must match (see `_assemble`).

    Why the plan's values equal the regex's on a line that passes every check: a value V followed by
    separator S (first character c) is, in the fast regex, either a run of characters other than c
    (a string piece) or a field whose every match is free of c (checked here with `can_contain`).
    Either way the regex's capture cannot extend past the first c after V's start, and S must begin
    right where it ends, so the capture is the text up to the first c, and S starts there. The plan
    cuts at the first S: if that S is at the first c, the values agree; if not, the plan's value
    contains c, which the checks reject (forbidden character / the field's regex cannot match).
    """
    # Merge separators: whitespace is exactly one space on a clean line.
    items: list[tuple[str, Any]] = []  # ("sep", text) | ("value", index)

    def add_sep(text: str) -> None:
        if items and items[-1][0] == "sep":
            items[-1] = ("sep", items[-1][1] + text)
        else:
            items.append(("sep", text))

    for i, p in enumerate(pieces):
        if p.kind in ("ws", "literal"):
            text = " " if p.kind == "ws" else (getattr(p, "literal", None) or p.source)
            if not text:
                return None
            add_sep(text)
        else:
            m = _GROUP.match(p.regex) if p.kind == "field" else None
            if m is not None and m.group(1):
                add_sep(_unescape(m.group(1)))
            items.append(("value", i))
            if m is not None and m.group(3):
                add_sep(_unescape(m.group(3)))
    prefix = ""
    if items and items[0][0] == "sep":
        prefix = items.pop(0)[1]
    steps: list[Step] = []
    for k in range(0, len(items), 2):
        kind, i = items[k]
        if kind != "value":
            return None  # cannot happen after merging, but a plan must never guess
        sep: str | None = None
        if k + 1 < len(items):
            if items[k + 1][0] != "sep":
                return None  # two values in a row: where one ends depends on the regex
            sep = items[k + 1][1]
        step = _step(pieces[i], piece_groups[i], sep, fast_bodies.get(i), validators)
        if step is None:
            return None
        steps.append(step)
    if not steps:
        return None
    return SplitPlan(prefix, tuple(steps), ngroups)


def _step(
    p: Any, groups: list[int], sep: str | None, body: str | None, validators: dict[int, str]
) -> Step | None:
    """The step for one value piece followed by `sep` (None: the line's end), or None."""
    if len(groups) != 1:
        return None
    group = groups[0]
    if p.kind == "rest" or (p.kind == "string" and sep is None):
        # the rest of the line (`.*`: no line break on a clean line)
        ok = p.regex == "(?P<@>.*)" if p.kind == "rest" else body == ".*"
        return Step(group, None, None, None) if ok and sep is None else None
    if p.kind == "field" and p.fast not in (None, p.regex):
        return None  # the fast regex uses another form of this field
    if sep is None:
        if p.kind != "field":
            return None
        m = _GROUP.match(p.regex)
        if m is None or m.group(3) or "(?P<@>" in m.group(2):
            return None
        # a trailing typed field ends where the regex's own priorities end it: let the regex say
        return Step(group, None, None, None, leading=m.group(2))
    c = sep[0]
    if p.kind == "string":
        # the fast body is a run of characters other than c (see `PatternDecoder._resolve_string`)
        runs = {g.not_class(c) + "*", g.NOT_WS_CLASS + "*" if c == " " else None}
        return Step(group, sep, c, None) if body in runs else None
    if p.kind != "field":
        return None
    m = _GROUP.match(p.regex)
    if m is None or "(?P<@>" in m.group(2):
        return None
    value = validators.get(group)
    if value is not None:
        # a run-captured field (fast regex `(run+)`, then this validator): the plan's value equals
        # the maximal run only if every text the validator accepts is made of run characters
        if p.run is None or not _only_chars_of(value, p.run):
            return None
    else:
        value = m.group(2)
    if can_contain(value, c):
        return None
    return Step(group, sep, None, f"^(?:{value})$")


def _only_chars_of(regex: str, char_class: str) -> bool:
    """Whether every character `regex` can match is matched by `char_class` (False when unsure)."""
    if _re_parser is None:
        return False
    try:
        ranges = _char_ranges(_re_parser.parse(regex))
        cls = re.compile(char_class)
    except Exception:  # noqa: BLE001 - unsure means no
        return False
    if ranges is None or sum(hi - lo + 1 for lo, hi in ranges) > 4096:
        return False
    return all(cls.fullmatch(chr(c)) for lo, hi in ranges for c in range(lo, hi + 1))


def _unescape(regex_literal: str) -> str:
    """The text an escaped regex literal matches (`\\[` -> `[`)."""
    return re.sub(r"\\(.)", r"\1", regex_literal)
