"""RE2 (Go ``regexp``) patterns, searched with Python's ``re`` wherever that is exact.

Heka's matcher used Go's RE2: ``$`` means end of text, ``\\w``/``\\d``/``\\s``/``\\b`` are ASCII,
``[[:alpha:]]`` and ``\\pL`` exist, there are no back-references or lookaround. ``google-re2`` gives
those semantics exactly but costs ~3 µs a search here, against ~0.2 µs for ``re``. So a pattern is
first validated by google-re2 (plus the few things Go rejects and C++ RE2 accepts), then parsed
into a small syntax tree and re-emitted as a Python ``re`` pattern built only from constructs whose
meaning is the same in both engines: explicit code-point classes, ``\\A``/``\\Z`` anchors, ASCII
word boundaries, non-capturing groups. Whatever cannot be emitted exactly (case folding, Unicode
property classes, nested repetition that could backtrack badly) is searched with google-re2.

Only *whether* a match exists matters to the matcher, so greediness (``?``, ``(?U)``) and capture
groups are irrelevant and dropped. ``tests/matcher/test_matcher_re2.py`` proves the translation with
a differential hypothesis test against google-re2.

The same tree is emitted for Rust's ``regex`` crate (what polars ``str.contains`` uses), so that a
matcher can be vectorised over a polars frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import re2

__all__ = ["CompiledRegex", "RegexSyntaxError", "compile_re2", "translate"]

MAX_CP = 0x10FFFF
MAX_REPEAT = 1000

Ranges = tuple[tuple[int, int], ...]


class RegexSyntaxError(ValueError):
    """The pattern is not valid RE2 / Go regexp syntax."""


# -- syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    """One literal character."""

    char: str


@dataclass(frozen=True, slots=True)
class Cls:
    """A set of code points, as sorted, disjoint, non-adjacent inclusive ranges."""

    ranges: Ranges


@dataclass(frozen=True, slots=True)
class Assert:
    """An empty-width assertion: bot/eot (text), bol/eol (line, (?m)), wordb/nwordb (ASCII)."""

    kind: str


@dataclass(frozen=True, slots=True)
class Cat:
    items: tuple


@dataclass(frozen=True, slots=True)
class Alt:
    items: tuple


@dataclass(frozen=True, slots=True)
class Rep:
    item: object
    min: int
    max: int | None


@dataclass(frozen=True, slots=True)
class Opaque:
    """A construct we do not translate (Unicode property class, case folding): use google-re2."""

    text: str


def _norm(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _negate(ranges: Ranges) -> Ranges:
    out, nxt = [], 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CP:
        out.append((nxt, MAX_CP))
    return tuple(out)


def _r(*pairs: tuple[int, int] | str) -> Ranges:
    return _norm([(ord(p[0]), ord(p[-1])) if isinstance(p, str) else p for p in pairs])


DIGIT = _r("09")
SPACE = _r("\t", "\n", "\f", "\r", " ")  # RE2 \s: no \v
WORD = _r("09", "AZ", "az", "_")
POSIX: dict[str, Ranges] = {
    "alnum": _r("09", "AZ", "az"),
    "alpha": _r("AZ", "az"),
    "ascii": _r((0, 0x7F)),
    "blank": _r("\t", " "),
    "cntrl": _r((0, 0x1F), (0x7F, 0x7F)),
    "digit": DIGIT,
    "graph": _r((0x21, 0x7E)),
    "lower": _r("az"),
    "print": _r((0x20, 0x7E)),
    "punct": _r((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": _r((9, 13), (32, 32)),
    "upper": _r("AZ"),
    "word": WORD,
    "xdigit": _r("09", "AF", "af"),
}
PERL = {"d": DIGIT, "s": SPACE, "w": WORD}
ANY = ((0, MAX_CP),)
ANY_BUT_NL = _negate(((10, 10),))

# RE2 and Go read a repeat count without leading zeros: `x{01}` is the literal text "x{01}"
_REPEAT = re.compile(r"\{(0|[1-9]\d*)(?:(,)(0|[1-9]\d*)?)?\}")
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}


_EMPTY_QUOTE = object()  # an empty \Q\E: no atom


class _Flags:
    __slots__ = ("i", "m", "s")

    def __init__(self, i: bool = False, m: bool = False, s: bool = False) -> None:
        self.i, self.m, self.s = i, m, s

    def copy(self) -> _Flags:
        return _Flags(self.i, self.m, self.s)


class _Parser:
    """A recursive-descent parser for the RE2 syntax (already validated by google-re2)."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.opaque = False  # saw something we do not translate
        self.names: set[str] = set()

    def fail(self, msg: str) -> RegexSyntaxError:
        return RegexSyntaxError(msg)

    def parse(self) -> object:
        node = self.alt(_Flags())
        if self.i < len(self.p):
            raise self.fail("unexpected )")
        return node

    def alt(self, flags: _Flags) -> object:
        branches: list[tuple] = []
        items: list[object] = []
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "|":
                branches.append(tuple(items))
                items = []
                self.i += 1
                continue
            if c == ")":
                break
            atom = self.atom(flags)
            if atom is _EMPTY_QUOTE:
                if items:  # RE2: in `a\Q\E*` the star applies to `a`
                    items[-1] = self.quantify(items[-1])
                continue
            if atom is None:
                continue
            items.append(self.quantify(atom))
        branches.append(tuple(items))
        cats = [b[0] if len(b) == 1 else Cat(b) for b in branches]
        return cats[0] if len(cats) == 1 else Alt(tuple(cats))

    def _repeat_at(self, i: int) -> tuple[int, int, int | None] | None:
        p = self.p
        if i >= len(p):
            return None
        c = p[i]
        if c == "*":
            return i + 1, 0, None
        if c == "+":
            return i + 1, 1, None
        if c == "?":
            return i + 1, 0, 1
        if c == "{":
            m = _REPEAT.match(p, i)
            if m:
                lo = int(m.group(1))
                hi = lo if not m.group(2) else (int(m.group(3)) if m.group(3) else None)
                return m.end(), lo, hi
        return None

    def quantify(self, atom: object) -> object:
        while True:
            rep = self._repeat_at(self.i)
            if rep is None:
                return atom
            self.i, lo, hi = rep
            if self.i < len(self.p) and self.p[self.i] == "?":
                self.i += 1  # non-greedy: same set of matching texts
            if self._repeat_at(self.i) is not None:
                raise self.fail("bad repetition operator")
            if lo > MAX_REPEAT or (hi is not None and (hi > MAX_REPEAT or hi < lo)):
                raise self.fail("invalid repetition size")
            if isinstance(atom, (Assert, Opaque)) or atom == Cat(()):
                self.opaque = True
            atom = Rep(atom, lo, hi)

    def atom(self, flags: _Flags) -> object | None:
        p = self.p
        c = p[self.i]
        if c == "(":
            return self.group(flags)
        if c == "[":
            node = self.char_class()
            if flags.i:
                self.opaque = True
            return node
        self.i += 1
        if c == ".":
            return Cls(ANY if flags.s else ANY_BUT_NL)
        if c == "^":
            return Assert("bol" if flags.m else "bot")
        if c == "$":
            return Assert("eol" if flags.m else "eot")
        if c in "*+?":
            raise self.fail("missing argument to repetition operator")
        if c == "\\":
            self.i -= 1
            return self.escape(flags)
        if flags.i and c.lower() != c.upper():
            self.opaque = True
        return Lit(c)

    def group(self, flags: _Flags) -> object | None:
        p = self.p
        self.i += 1
        inner = flags.copy()
        if p.startswith("?", self.i):
            m = re.compile(r"\?P?<([A-Za-z0-9_]+)>").match(p, self.i)
            if m:
                if m.group(1) in self.names:
                    raise self.fail(f"duplicate capture group name {m.group(1)}")
                self.names.add(m.group(1))
                self.i = m.end()
            else:
                m = re.compile(r"\?([imsU]*)(?:-([imsU]*))?([:)])").match(p, self.i)
                if not m:
                    raise self.fail("invalid or unsupported Perl syntax")
                target = flags if m.group(3) == ")" else inner
                for f, on in [(f, True) for f in m.group(1)] + [(f, False) for f in m.group(2) or ""]:
                    if f in "ims":
                        setattr(target, f, on)
                if target.i:
                    self.opaque = True
                self.i = m.end()
                if m.group(3) == ")":
                    return None
        node = self.alt(inner)
        if self.i >= len(p) or p[self.i] != ")":
            raise self.fail("missing closing )")
        self.i += 1
        # a quantifier after the group applies to all of it, \Q..\E text included
        return _unquote(node)

    def escape(self, flags: _Flags) -> object:
        p = self.p
        if self.i + 1 >= len(p):
            raise self.fail("trailing backslash at end of expression")
        d = p[self.i + 1]
        simple = {"A": "bot", "z": "eot", "b": "wordb", "B": "nwordb"}
        if d in simple:
            self.i += 2
            return Assert(simple[d])
        if d.lower() in PERL:
            self.i += 2
            ranges = PERL[d.lower()]
            return Cls(_negate(ranges) if d.isupper() else ranges)
        if d in "pP":
            return self.opaque_property()
        if d == "C":
            raise self.fail("invalid escape sequence: \\C (not supported by Go)")
        if d == "Q":
            end = p.find("\\E", self.i + 2)
            text = p[self.i + 2 :] if end < 0 else p[self.i + 2 : end]
            self.i = len(p) if end < 0 else end + 2
            if flags.i and text.lower() != text.upper():
                self.opaque = True
            if not text:
                return _EMPTY_QUOTE
            items = tuple(Lit(ch) for ch in text)
            if len(items) == 1:
                return items[0]
            # a quantifier after \Q..\E applies to the last character only
            return _Quoted(items)
        ch = self.escape_char()
        if flags.i and ch.lower() != ch.upper():
            self.opaque = True
        return Lit(ch)

    def opaque_property(self) -> Opaque:
        p, start = self.p, self.i
        self.i += 2
        if self.i < len(p) and p[self.i] == "{":
            end = p.find("}", self.i)
            if end < 0:
                raise self.fail("invalid character class range")
            self.i = end + 1
        else:
            self.i += 1
        self.opaque = True
        return Opaque(p[start : self.i])

    def escape_char(self) -> str:
        """Read one escaped single character (the backslash is at self.i)."""
        p = self.p
        self.i += 1
        if self.i >= len(p):
            raise self.fail("trailing backslash at end of expression")
        d = p[self.i]
        self.i += 1
        if d in _SIMPLE_ESCAPES:
            return chr(_SIMPLE_ESCAPES[d])
        if d == "x":
            if p.startswith("{", self.i):
                end = p.find("}", self.i)
                digits = p[self.i + 1 : end] if end > 0 else ""
                if not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise self.fail("invalid escape sequence: \\x")
                self.i = end + 1
            else:
                digits = p[self.i : self.i + 2]
                if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise self.fail("invalid escape sequence: \\x")
                self.i += 2
            value = int(digits, 16)
            if value > MAX_CP:
                raise self.fail("invalid escape sequence: \\x")
            return chr(value)
        if "0" <= d <= "7":
            # Go: \0 starts an octal escape; \1-\7 only when another octal digit follows
            # (a lone \1 would be a back-reference, which RE2 does not have).
            if d != "0" and not (self.i < len(p) and "0" <= p[self.i] <= "7"):
                raise self.fail(f"invalid escape sequence: \\{d}")
            digits = d
            while len(digits) < 3 and self.i < len(p) and "0" <= p[self.i] <= "7":
                digits += p[self.i]
                self.i += 1
            return chr(int(digits, 8))
        if d < "\x80" and not (d.isalnum() or d == "_"):
            return d
        raise self.fail(f"invalid escape sequence: \\{d}")

    def char_class(self) -> object:
        p = self.p
        self.i += 1
        negated = p.startswith("^", self.i)
        if negated:
            self.i += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if self.i >= len(p):
                raise self.fail("missing closing ]")
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if p.startswith("[:", self.i):
                m = re.compile(r"\[:(\^?)([a-z]+):\]").match(p, self.i)
                if m:
                    if m.group(2) not in POSIX:
                        raise self.fail(f"invalid character class range: {m.group(0)}")
                    cls = POSIX[m.group(2)]
                    ranges.extend(_negate(cls) if m.group(1) else cls)
                    self.i = m.end()
                    continue
            if c == "\\" and self.i + 1 < len(p):
                d = p[self.i + 1]
                if d.lower() in PERL:
                    cls = PERL[d.lower()]
                    ranges.extend(_negate(cls) if d.isupper() else cls)
                    self.i += 2
                    continue
                if d in "pP":
                    self.opaque_property()
                    continue
                lo = self.escape_char()
            else:
                lo = c
                self.i += 1
            if p.startswith("-", self.i) and self.i + 1 < len(p) and p[self.i + 1] != "]":
                self.i += 1
                if p[self.i] == "\\":
                    if self.i + 1 < len(p) and (p[self.i + 1].lower() in PERL or p[self.i + 1] in "pP"):
                        raise self.fail("invalid character class range")
                    hi = self.escape_char()
                else:
                    hi = p[self.i]
                    self.i += 1
                if ord(hi) < ord(lo):
                    raise self.fail(f"invalid character class range: {lo}-{hi}")
                ranges.append((ord(lo), ord(hi)))
            else:
                ranges.append((ord(lo), ord(lo)))
        norm = _norm(ranges)
        return Cls(_negate(norm) if negated else norm)


@dataclass(frozen=True, slots=True)
class _Quoted:
    """``\\Q...\\E`` text: a quantifier that follows applies to its last character."""

    items: tuple


def _unquote(node: object) -> object:
    """Expand _Quoted nodes (and a Rep of one) into plain literal sequences."""
    if isinstance(node, _Quoted):
        return Cat(node.items)
    if isinstance(node, Rep):
        if isinstance(node.item, _Quoted):
            return Cat(node.item.items[:-1] + (Rep(node.item.items[-1], node.min, node.max),))
        return Rep(_unquote(node.item), node.min, node.max)
    if isinstance(node, Cat):
        out: list[object] = []
        for item in node.items:
            item = _unquote(item)
            out.extend(item.items if isinstance(item, Cat) else (item,))
        return Cat(tuple(out))
    if isinstance(node, Alt):
        return Alt(tuple(_unquote(x) for x in node.items))
    return node


# -- emitters -----------------------------------------------------------------------------------


def _py_char(cp: int) -> str:
    ch = chr(cp)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    return f"\\U{cp:08x}"


def _py_class(ranges: Ranges) -> str:
    if not ranges:
        return "(?!)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _py_char(ranges[0][0])
    body = "".join(_py_char(lo) if lo == hi else f"{_py_char(lo)}-{_py_char(hi)}" for lo, hi in ranges)
    return f"[{body}]"


_PY_ASSERT = {
    "bot": r"\A",
    "eot": r"\Z",
    "bol": "(?m:^)",
    "eol": "(?m:$)",
    "wordb": r"\b",
    # Python < 3.14 never matches \B in an empty string; RE2 does.
    "nwordb": r"(?:\B|\A\Z)",
}


class _Untranslatable(Exception):
    pass


def _contains_repetition(node: object) -> bool:
    if isinstance(node, (Rep, Alt)):
        return True
    if isinstance(node, Cat):
        return any(_contains_repetition(x) for x in node.items)
    return False


def _emit_py(node: object) -> str:
    if isinstance(node, Lit):
        return _py_char(ord(node.char))
    if isinstance(node, Cls):
        return _py_class(node.ranges)
    if isinstance(node, Assert):
        return _PY_ASSERT[node.kind]
    if isinstance(node, Cat):
        return "".join(_emit_py(x) for x in node.items)
    if isinstance(node, Alt):
        return "(?:" + "|".join(_emit_py(x) for x in node.items) + ")"
    if isinstance(node, Rep):
        # A repeated group that itself repeats or alternates can backtrack exponentially in
        # Python (RE2 is linear): leave those to google-re2.
        if _contains_repetition(node.item):
            raise _Untranslatable
        return f"(?:{_emit_py(node.item)}){_quant(node)}"
    raise _Untranslatable


def _quant(node: Rep) -> str:
    if node.max is None:
        return {0: "*", 1: "+"}.get(node.min, f"{{{node.min},}}")
    if (node.min, node.max) == (0, 1):
        return "?"
    return f"{{{node.min}}}" if node.min == node.max else f"{{{node.min},{node.max}}}"


def _rust_char(cp: int) -> str:
    ch = chr(cp)
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\x{{{cp:X}}}"


_RUST_ASSERT = {
    "bot": r"\A",
    "eot": r"\z",
    "bol": "(?m:^)",
    "eol": "(?m:$)",
    "wordb": r"(?-u:\b)",
    "nwordb": r"(?-u:\B)",
}


def _emit_rust(node: object) -> str:
    if isinstance(node, Lit):
        if 0xD800 <= ord(node.char) <= 0xDFFF:
            return "[^\\x{0}-\\x{10FFFF}]"  # a surrogate never occurs in a polars string
        return _rust_char(ord(node.char))
    if isinstance(node, Cls):
        # polars strings are valid UTF-8: surrogates cannot occur, and Rust rejects them in classes
        ranges = [r for lo, hi in node.ranges for r in _split_surrogates(lo, hi)]
        if not ranges:
            return "[^\\x{0}-\\x{10FFFF}]"
        body = "".join(_rust_char(a) if a == b else f"{_rust_char(a)}-{_rust_char(b)}" for a, b in ranges)
        return f"[{body}]"
    if isinstance(node, Assert):
        return _RUST_ASSERT[node.kind]
    if isinstance(node, Cat):
        return "".join(_emit_rust(x) for x in node.items)
    if isinstance(node, Alt):
        return "(?:" + "|".join(_emit_rust(x) for x in node.items) + ")"
    if isinstance(node, Rep):
        return f"(?:{_emit_rust(node.item)}){_quant(node)}"
    raise _Untranslatable


def _split_surrogates(lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    if lo < 0xD800:
        out.append((lo, min(hi, 0xD7FF)))
    if hi > 0xDFFF:
        out.append((max(lo, 0xE000), hi))
    return out


def _literal_form(node: object) -> tuple[str, str] | None:
    """('equals'|'prefix'|'suffix'|'contains', text) when the pattern is an (anchored) literal."""
    items = list(node.items) if isinstance(node, Cat) else [node]
    start = bool(items) and items[0] == Assert("bot")
    if start:
        items.pop(0)
    end = bool(items) and items[-1] == Assert("eot")
    if end:
        items.pop()
    if not all(isinstance(x, Lit) for x in items):
        return None
    text = "".join(x.char for x in items)
    kinds = {(True, True): "equals", (True, False): "prefix", (False, True): "suffix"}
    kind = kinds.get((start, end), "contains")
    return kind, text


# -- public API ---------------------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # never let the C++ library write to our stderr
_RE2_OPTIONS.never_capture = True


@dataclass(frozen=True)
class CompiledRegex:
    """A validated RE2 pattern and the fastest exact way to search it.

    ``literal`` is set for ``lit``, ``^lit``, ``lit$`` and ``^lit$`` (kind, text): a plain string
    test does the job. Otherwise ``python`` is the equivalent Python ``re`` pattern, or None when
    ``search`` uses google-re2. ``rust`` is the equivalent for polars (None when unknown).
    ``search(text)`` returns a truthy value when the pattern matches anywhere in ``text``.
    """

    pattern: str
    literal: tuple[str, str] | None
    python: str | None
    rust: str | None
    search: Callable[[str], object]

    def matches(self, text: str) -> bool:
        """True when the pattern matches somewhere in `text` (RE2 semantics)."""
        return bool(self.search(text))

    @property
    def engine(self) -> str:
        """Which engine `search` uses: "literal", "re" or "re2"."""
        return "literal" if self.literal else ("re" if self.python is not None else "re2")


def _re2_searcher(pattern: str) -> Callable[[str], bool]:
    rx = re2.compile(pattern.encode("utf-8"), _RE2_OPTIONS)
    search = rx.search

    def re2_search(text: str) -> bool:
        # bytes in, bytes out: 3x faster than str in this binding, and surrogate-escaped
        # (non-UTF-8) text goes through unchanged.
        return search(text.encode("utf-8", "surrogateescape")) is not None

    return re2_search


def _literal_searcher(kind: str, text: str) -> Callable[[str], bool]:
    if kind == "equals":
        return text.__eq__
    if kind == "prefix":
        return lambda s: s.startswith(text)
    if kind == "suffix":
        return lambda s: s.endswith(text)
    return lambda s: text in s


def validate(pattern: str) -> None:
    """Raise RegexSyntaxError unless `pattern` is valid RE2 (and accepted by Go)."""
    try:
        pattern.encode("utf-8")
        re2.compile(pattern, _RE2_OPTIONS)
    except UnicodeEncodeError as exc:
        raise RegexSyntaxError("invalid UTF-8 in regular expression") from exc
    except re2.error as exc:
        msg = exc.args[0] if exc.args else str(exc)
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise RegexSyntaxError(str(msg)) from exc


def _parse(pattern: str) -> tuple[object, bool]:
    parser = _Parser(pattern)
    node = _unquote(parser.parse())
    return node, parser.opaque


def translate(pattern: str) -> str | None:
    """The Python ``re`` pattern (to compile with ``re.ASCII``) that matches exactly the texts the
    RE2 `pattern` matches in an unanchored search, or None when no exact translation is known.
    Raises RegexSyntaxError for an invalid pattern."""
    validate(pattern)
    node, opaque = _parse(pattern)
    if opaque:
        return None
    try:
        return _emit_py(node)
    except _Untranslatable:
        return None


def to_rust(pattern: str) -> str | None:
    """The equivalent pattern for Rust's ``regex`` crate (polars), or None."""
    validate(pattern)
    node, opaque = _parse(pattern)
    if opaque:
        return None
    try:
        return _emit_rust(node)
    except _Untranslatable:
        return None


@lru_cache(maxsize=1024)
def compile_re2(pattern: str) -> CompiledRegex:
    """Validate an RE2 pattern and build its fastest exact searcher (see CompiledRegex)."""
    validate(pattern)
    node, opaque = _parse(pattern)
    literal = None if opaque else _literal_form(node)
    python = rust = None
    if not opaque:
        try:
            rust = _emit_rust(node)
        except _Untranslatable:
            rust = None
        if literal is None:
            try:
                python = _emit_py(node)
                search: Callable[[str], object] = re.compile(python, re.ASCII).search
            except (_Untranslatable, re.error, RecursionError, OverflowError):
                python = None
    if literal is not None:
        search = _literal_searcher(*literal)
    elif python is None:
        search = _re2_searcher(pattern)
    return CompiledRegex(pattern, literal, python, rust, search)
