"""The compiled line scanner: the bulk decoder's fast way from raw bytes to capture columns.

A `PatternDecoder`'s fast pattern (see `core`) is, for most formats, a chain of literals and
captures each of which ends where a character it can never contain begins. On such a chain, the
regex's captures are simply the maximal runs of each capture's characters, so a tiny program of
"literal" and "run" steps cuts a line exactly as polars' ``str.extract_groups`` would, in a
fraction of the time (`_linescan.c`, a C extension that runs without the GIL).

Exactness, argued once here and checked by tests against the regex:

* A capture whose regex body can only match characters of a set S, followed by a piece that starts
  with a fixed character c not in S, must end exactly at the first character outside S: the run.
  When the body is not itself "any run of S" (a time stamp, ``[0-9]{3}``), the run must match the
  body's regex in full: the scanner checks the common bodies itself (`NATIVE_CHECKS`, each written
  so that it never passes a value the regex refuses), polars the others afterwards (a vectorised
  ``str.contains`` on short strings), as the fast pattern's own run validators already are.
* A final field (the regex is not anchored at the end) is a run only when its check takes a whole
  run or nothing (`_MAXIMAL_CHECKS`): ``[0-9]{3}`` stops at three digits, but a fourth digit makes
  the run invalid, and the line is declined.
* Conversions (integers, CLF dates, the parts of ``$request``) are computed exactly as their Python
  forms; a value the C form does not take declines the line.
* The scanner declines every line it was not built for (see `_linescan.c`: backslashes, tabs, CR,
  double spaces, non-ASCII bytes, or a step that does not fit). Declined lines go through the
  regex path unchanged, so a scanner bug can only ever cost speed, never change a record — as long
  as accepted lines are right, which is what the tests check.

Formats the program cannot express (a capture followed by another capture or by a character it
may contain, case-insensitive pieces, a bounded final field without a maximal check) get no
program: `compile_program` returns None and the decoder uses polars' regex engine for the whole file.
"""

from __future__ import annotations

import os
import re
import re._constants as _CONSTANTS  # the stdlib regex parser's opcodes
import re._parser as sre  # the stdlib's own regex parser: the exact syntax tree of our pieces
from dataclasses import dataclass
from typing import Any

import polars as pl

from . import grammar as g

try:
    from . import _linescan
except ImportError:  # built without a C compiler (setup.py marks the extension optional)
    _linescan = None

_DIGITS = set(range(ord("0"), ord("9") + 1))
_WORD = _DIGITS | set(range(ord("a"), ord("z") + 1)) | set(range(ord("A"), ord("Z") + 1)) | {ord("_")}
_SPACE = {ord(c) for c in " \t\n\r\x0b\x0c"}
_ASCII = set(range(128))
_CATEGORIES = {
    _CONSTANTS.CATEGORY_DIGIT: _DIGITS,
    _CONSTANTS.CATEGORY_NOT_DIGIT: _ASCII - _DIGITS,
    _CONSTANTS.CATEGORY_WORD: _WORD,
    _CONSTANTS.CATEGORY_NOT_WORD: _ASCII - _WORD,
    _CONSTANTS.CATEGORY_SPACE: _SPACE,
    _CONSTANTS.CATEGORY_NOT_SPACE: _ASCII - _SPACE,
}


def available() -> bool:
    """Whether the compiled scanner is installed and not switched off (``HEKA_LINESCAN=0``)."""
    return _linescan is not None and os.environ.get("HEKA_LINESCAN", "1") != "0"


class _Unsupported(Exception):
    """The regex uses something the scanner does not model."""


# Conversions the scanner computes along the way (codes of `_linescan.c`); see `scan` for the columns.
CONVERSIONS = {"int": 1, "clf": 2, "request": 3}
# Value checks the scanner does itself (codes of `_linescan.c`), by the regex they stand for.
NATIVE_CHECKS = {g.INT: 1, g.UINT: 2, "[0-9]{3}": 3, g.DECIMAL: 4, g.CLF_DATE: 5, g.HOST: 6, f"{g.INT}|-": 7}
# Checks whose regex, at the start of a valid run followed by a character outside the run's class,
# matches the whole run: so such a field may end the format (the regex is not anchored at the end).
_MAXIMAL_CHECKS = {1, 2, 3, 4, 5, 7}


@dataclass
class ScanProgram:
    """Steps for `_linescan.scan` and the checks its captures still need.

    `columns[k]` is the capture-group number of scanner column k; `validators` are
    (group number, anchored regex) pairs that a captured run must match in full;
    `conversions` maps a group number to the conversion computed for it.
    """

    steps: tuple[tuple[Any, ...], ...]
    columns: list[int]
    validators: list[tuple[int, str]]
    conversions: dict[int, str]


def _charset(items: list[tuple[Any, Any]]) -> set[int]:
    """The ASCII characters a parsed regex can match anywhere (only ASCII lines are scanned)."""
    out: set[int] = set()
    for op, av in items:
        if op is _CONSTANTS.LITERAL:
            out.add(av)
        elif op is _CONSTANTS.NOT_LITERAL:
            out |= _ASCII - {av}
        elif op is _CONSTANTS.ANY:
            out |= _ASCII - {ord("\n")}
        elif op is _CONSTANTS.IN:
            out |= _in_set(av)
        elif op is _CONSTANTS.BRANCH:
            for alt in av[1]:
                out |= _charset(list(alt))
        elif op in (_CONSTANTS.MAX_REPEAT, _CONSTANTS.MIN_REPEAT, _CONSTANTS.POSSESSIVE_REPEAT):
            out |= _charset(list(av[2]))
        elif op is _CONSTANTS.SUBPATTERN:
            out |= _charset(list(av[3]))
        else:
            raise _Unsupported(str(op))
    return out


def _in_set(av: list[tuple[Any, Any]]) -> set[int]:
    chars: set[int] = set()
    negate = False
    for op, arg in av:
        if op is _CONSTANTS.NEGATE:
            negate = True
        elif op is _CONSTANTS.LITERAL:
            chars.add(arg)
        elif op is _CONSTANTS.RANGE:
            chars |= set(range(arg[0], arg[1] + 1))
        elif op is _CONSTANTS.CATEGORY and arg in _CATEGORIES:
            chars |= _CATEGORIES[arg]
        else:
            raise _Unsupported(str(op))
    return _ASCII - chars if negate else chars & _ASCII


def _pure_run(items: list[tuple[Any, Any]]) -> int | None:
    """min length when the body is one greedy unbounded repeat of one character class, else None."""
    if len(items) != 1 or items[0][0] is not _CONSTANTS.MAX_REPEAT:
        return None
    lo, hi, body = items[0][1]
    if hi is not _CONSTANTS.MAXREPEAT or len(body) != 1:
        return None
    if body[0][0] not in (_CONSTANTS.IN, _CONSTANTS.NOT_LITERAL, _CONSTANTS.LITERAL, _CONSTANTS.ANY):
        return None
    return lo


def _table(chars: set[int]) -> bytes:
    return bytes(1 if c in chars else 0 for c in range(256))


def _steps_of_piece(regex: str, groups: list[int]) -> list[tuple[str, Any]]:
    """A piece's fast regex -> [("lit", bytes) | ("cap", group, charset, min or None, body regex)]."""
    parsed = sre.parse(regex.replace("(?P<@>", "("))
    if parsed.state.flags & re.IGNORECASE:
        raise _Unsupported("case-insensitive")
    out: list[tuple[str, Any]] = []
    seen = 0
    for op, av in list(parsed):
        if op is _CONSTANTS.LITERAL and av < 128:
            if out and out[-1][0] == "lit":
                out[-1] = ("lit", out[-1][1] + bytes([av]))
            else:
                out.append(("lit", bytes([av])))
        elif op is _CONSTANTS.SUBPATTERN and av[0] is not None:
            body = list(av[3])
            if any(o is _CONSTANTS.SUBPATTERN and a[0] is not None for o, a in _walk(body)):
                raise _Unsupported("nested group")
            out.append(("cap", groups[seen], _charset(body), _pure_run(body), body))
            seen += 1
        else:
            raise _Unsupported(str(op))
    if seen != len(groups):
        raise _Unsupported("groups")
    return out


def _walk(items: list[tuple[Any, Any]]):
    for op, av in items:
        yield op, av
        if op is _CONSTANTS.BRANCH:
            for alt in av[1]:
                yield from _walk(list(alt))
        elif op in (_CONSTANTS.MAX_REPEAT, _CONSTANTS.MIN_REPEAT, _CONSTANTS.POSSESSIVE_REPEAT):
            yield from _walk(list(av[2]))
        elif op is _CONSTANTS.SUBPATTERN:
            yield from _walk(list(av[3]))


def compile_program(
    fast_pieces: list[tuple[str, list[int]]],
    run_validators: dict[int, str],
    conversions: dict[int, str] | None = None,
) -> ScanProgram | None:
    """A scan program equivalent to the fast pattern made of `fast_pieces` ((regex, group numbers)
    per piece, captures written ``(?P<@>...)``), or None when there is none.

    `run_validators` maps a group number to the regex its run must match in full (the fast
    pattern's own run checks, see `core.PatternDecoder._assemble`); `conversions` maps a group
    number to a conversion of `CONVERSIONS` to compute while scanning.
    """
    conversions = {g: c for g, c in (conversions or {}).items() if c in CONVERSIONS}
    raw: list[tuple[str, Any]] = []
    bodies: dict[int, str] = {}
    try:
        for regex, groups in fast_pieces:
            raw.extend(_steps_of_piece(regex, groups))
            bodies.update(zip(groups, _group_bodies(regex), strict=True))
    except (_Unsupported, re.error, ValueError):
        return None
    steps: list[tuple[Any, ...]] = []
    columns: list[int] = []
    validators: list[tuple[int, str]] = []
    for i, step in enumerate(raw):
        if step[0] == "lit":
            if steps and steps[-1][0] == "lit":
                steps[-1] = ("lit", steps[-1][1] + step[1])
            else:
                steps.append(step)
            continue
        _, group, chars, min_len, body = step
        checks = [bodies[group]] if min_len is None else []
        if group in run_validators:
            checks.append(run_validators[group])
        native = _native_check(checks[0]) if len(checks) == 1 else 0
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        split = -1
        if nxt is None:
            if checks and native not in _MAXIMAL_CHECKS:
                return None  # a bounded last field: the regex may stop inside the run
        elif nxt[0] != "lit" or nxt[1][0] in chars:
            split = _split_byte(raw, i)
            if split < 0:
                return None  # the capture could run on into what follows it
        if not native:
            validators.extend((group, f"^(?:{rx})$") for rx in checks)
        code = CONVERSIONS.get(conversions.get(group, ""), 0)
        steps.append(("run", _table(chars), min_len or 0, len(columns), code, native, split))
        columns.append(group)
    used = {g: c for g, c in conversions.items() if g in columns}
    return ScanProgram(tuple(steps), columns, validators, used)


def _split_byte(raw: list[tuple[str, Any]], i: int) -> int:
    """For capture `raw[i]` followed by a one-byte literal S of its own class: S when the regex's
    capture ends at the *last* S of its run, else -1.

    That holds when S is followed by a capture B whose class is within the first one's and lacks S,
    and B by a literal starting outside the first class (Apache's "%v:%p "): B then ends where the
    run ends, so the first capture ends at the S before B, which holds no S: the run's last S.
    """
    chars = raw[i][2]
    if i + 3 >= len(raw):
        return -1
    sep, second, after = raw[i + 1], raw[i + 2], raw[i + 3]
    if sep[0] != "lit" or len(sep[1]) != 1 or second[0] != "cap" or after[0] != "lit":
        return -1
    byte = sep[1][0]
    if byte not in chars or byte in second[2] or not second[2] <= chars or after[1][0] in chars:
        return -1
    return byte


def _native_check(regex: str) -> int:
    """The scanner's code for a check equal to fullmatch(`regex`), or 0."""
    # also without non-capturing groups around the whole regex: "(?:X)" -> "X"
    while regex not in NATIVE_CHECKS and regex.startswith("(?:"):
        if _group_bodies("(?P<@>" + regex[3:]) != [regex[3:-1]]:
            break
        regex = regex[3:-1]
    return NATIVE_CHECKS.get(regex, 0)


def _group_bodies(regex: str) -> list[str]:
    """The text inside each ``(?P<@>...)`` of `regex`, in order (escapes and classes respected)."""
    bodies: list[str] = []
    opened: list[tuple[int, int] | None] = []  # per open parenthesis: (body index, body start) if ours
    i, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += regex[i + 1 : i + 2] == "^"
            i += regex[i + 1 : i + 2] == "]"  # a leading "]" is a member, not the end
        elif c == "(":
            if regex.startswith("(?P<@>", i):
                opened.append((len(bodies), i + len("(?P<@>")))
                bodies.append("")
            else:
                opened.append(None)
        elif c == ")":
            top = opened.pop()
            if top is not None:
                bodies[top[0]] = regex[top[1] : i]
        i += 1
    return bodies


class _Arrow:
    """Hands a (schema, array) capsule pair from the scanner to polars."""

    def __init__(self, pair: tuple[Any, Any]) -> None:
        self._pair = pair

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[Any, Any]:
        return self._pair


@dataclass
class Scan:
    """The scanner's answer for one chunk: capture columns of the lines it took, and the rest."""

    groups: pl.DataFrame  # for the lines it took: see `scan`
    declined: list[tuple[int, int, int]]  # (row, start, end) byte ranges of the lines it handed back
    n_lines: int


def converted_name(group: int) -> str:
    """The column of an "int" or "clf" conversion of capture `group` (null where not converted)."""
    return f"x{group}"


def request_part_names(group: int) -> list[str]:
    """The columns of the "request" split of capture `group`: method, URI, protocol."""
    return [f"q{group}_{k}" for k in range(3)]


# What `scan` returns of a capture group (flags): its values, its conversion's column; for a
# "request" conversion, CONVERTED << k for part k (method, URI, protocol).
VALUES, CONVERTED = 1, 2


def scan(data: bytes | memoryview, program: ScanProgram, emit: dict[int, int] | None = None) -> Scan:
    """Run `program` over the lines of `data` (split as `core.lines_series_from_bytes` does).

    The frame has ``g<N>`` per capture group, the conversions' columns (`converted_name`,
    `request_part_names`) and ``__row``, the line's position in `data`. With `emit` (group number
    -> `VALUES` | `CONVERTED`), only those columns come back (the checks and conversions that can
    decline a line are done all the same).
    """
    assert _linescan is not None
    args: tuple[Any, ...] = (data, program.steps, len(program.columns))
    if emit is not None:
        args += (bytes(emit.get(group, 0) for group in program.columns),)
    cols, rows, declined, n_lines = _linescan.scan(*args)
    frame: dict[str, pl.Series] = {}
    for group, (values, extra) in zip(program.columns, cols, strict=True):
        if values is not None:
            frame[f"g{group}"] = pl.Series(_Arrow(values))
        conversion = program.conversions.get(group)
        names = request_part_names(group) if conversion == "request" else [converted_name(group)]
        names = names if conversion is not None else []
        flag = None if emit is None else emit.get(group, 0)
        names = [n for k, n in enumerate(names) if flag is None or flag & (CONVERTED << k)]
        for name, pair in zip(names, extra, strict=True):
            frame[name] = pl.Series(_Arrow(pair))
    frame["__row"] = pl.Series(_Arrow(rows))
    return Scan(pl.DataFrame(frame), declined, n_lines)
