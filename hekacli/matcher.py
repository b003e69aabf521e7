"""Heka's ``message_matcher`` language, compiled to a fast predicate.

    >>> m = compile_matcher("Type == 'nginx.access' && Fields[status] >= 500")
    >>> m.match_record({"Type": "nginx.access", "status": 502})
    True

One expression selects records everywhere: ``heka cat --match``, routing in ``heka serve``, and
``--where`` in decode, the analyzer and logstream. The grammar, lexing and evaluation follow Heka
(``message/message_matcher_parser.y`` and ``message_matcher.go``; spec §7), including its quirks
(Severity defaults to 7, numbers compare as float64, a missing field fails every test but
``== NIL``, a bool field compared with a string or number is ``value == false``, ...). Where Heka
silently did something the user cannot have meant, hekacli refuses the expression with a clear
error instead (see ``strict``): text after a newline, juxtaposed expressions, unknown capitalised
words and malformed numbers. ``Timestamp`` also accepts an RFC 3339 string on the right.

An expression is compiled once: the syntax tree is turned into Python source for two functions,
one over `Message` objects and one over flat records (dicts), so evaluating a message is a single
call with no tree walk. Regular expressions use RE2 semantics through `hekacli.re2compat`
(Python ``re`` where the translation is exact, google-re2 otherwise, plain string tests for
``/^literal/``, ``/literal$/`` and ``/literal/``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from hekacli.errors import MatcherSyntaxError
from hekacli.message import HEADER_KEYS, Message
from hekacli.re2compat import CompiledRegex, RegexSyntaxError, compile_re2

__all__ = ["Matcher", "MatcherSyntaxError", "compile_matcher", "parse_rfc3339"]

STRING_VARS = ("Uuid", "Type", "Logger", "Payload", "EnvVersion", "Hostname")
NUMERIC_VARS = ("Timestamp", "Severity", "Pid")
RELOPS = ("==", "!=", "<", "<=", ">", ">=")
_NUM_DEFAULT = {"Timestamp": 0, "Severity": 7, "Pid": 0}
_MSG_ATTR = {
    "Uuid": "uuid_string",
    "Type": "type",
    "Logger": "logger",
    "Payload": "payload",
    "EnvVersion": "env_version",
    "Hostname": "hostname",
    "Timestamp": "timestamp",
    "Severity": "severity",
    "Pid": "pid",
}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXACT_FLOAT = 2.0**53  # below this, Python's exact int/float comparison equals Go's float64 one


# ============================================================================= syntax tree


@dataclass(frozen=True, slots=True)
class Const:
    """TRUE or FALSE."""

    value: bool


@dataclass(frozen=True, slots=True)
class And:
    items: tuple


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple


@dataclass(frozen=True, slots=True)
class Test:
    """One comparison. `kind` is the literal's kind: string, number, time (RFC 3339 on Timestamp,
    value in ns), bool, nil or regex (value is a CompiledRegex)."""

    var: str  # a header name or "Fields"
    op: str  # == != < <= > >= =~ !~
    kind: str
    value: Any
    name: str = ""  # Fields[name][fi][ai]
    fi: int = 0
    ai: int = 0

    @property
    def record_key(self) -> str:
        """The key of this field in a flat record (``Fields[name]`` when it shadows a header)."""
        return f"Fields[{self.name}]" if self.name in HEADER_KEYS else self.name


Node = Const | And | Or | Test


# ============================================================================= lexer


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # ( ) && || op re strvar numvar field TRUE FALSE NIL string number regex eof
    pos: int
    text: str
    value: Any = None


_NUMBER_RE = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\Z")


def _describe(tok: _Tok) -> str:
    if tok.kind == "eof":
        return "the end of the expression"
    if tok.kind == "string":
        return f"the string {tok.text}"
    if tok.kind == "regex":
        return f"the regular expression {tok.text}"
    if tok.kind == "number":
        return f"the number {tok.text}"
    return f"'{tok.text}'"


class _Lexer:
    def __init__(self, expr: str, strict: bool) -> None:
        self.expr = expr
        self.strict = strict
        self.i = 0

    def error(self, pos: int, message: str) -> MatcherSyntaxError:
        return syntax_error(self.expr, pos, message)

    def _at_end(self, i: int) -> bool:
        return i >= len(self.expr) or self.expr[i] in "\n\0"

    def tokens(self) -> list[_Tok]:
        out: list[_Tok] = []
        while True:
            tok = self.next()
            out.append(tok)
            if tok.kind == "eof":
                return out

    def next(self) -> _Tok:
        s = self.expr
        n = len(s)
        while self.i < n and s[self.i] in " \t":
            self.i += 1
        i = self.i
        if self._at_end(i):
            self.i = n
            if i < n and self.strict:
                rest = i + 1
                while rest < n and s[rest] in " \t\r\n\0":
                    rest += 1
                if rest < n:
                    raise self.error(
                        rest,
                        "the expression continues after a line break; Heka ignored everything after "
                        "the first newline, so hekacli refuses it: put the expression on one line",
                    )
            return _Tok("eof", i, "")
        c = s[i]
        two = s[i : i + 2]
        if c in "()":
            self.i += 1
            return _Tok(c, i, c)
        if two in ("==", "!=", "<=", ">=", "=~", "!~"):
            self.i += 2
            return _Tok("re" if two[1] == "~" else "op", i, two)
        if c in "<>":
            self.i += 1
            return _Tok("op", i, c)
        if two in ("&&", "||"):
            self.i += 2
            return _Tok(two, i, two)
        if c in "=!":
            raise self.error(i, f"expected '{c}=' or '{c}~'" if c == "=" else "expected '!=' or '!~'")
        if c in "&|":
            raise self.error(i, f"expected '{c}{c}'")
        if c in "'\"":
            return self._string(i, c)
        if c == "/":
            return self._regex(i)
        if c.isdigit() or c == ".":
            return self._number(i)
        if "A" <= c <= "Z":
            return self._word(i)
        if c.isalpha():
            j = i
            while j < n and s[j].isalpha():
                j += 1
            raise self.error(i, f"unknown name '{s[i:j]}' (names are case-sensitive: {_NAMES_HINT})")
        if c == "-" and i + 1 < n and (s[i + 1].isdigit() or s[i + 1] == "."):
            raise self.error(i, "numbers cannot be negative in a message matcher (Heka has no minus sign)")
        raise self.error(i, f"unexpected character {c!r}")

    def _string(self, start: int, quote: str) -> _Tok:
        s, i, out = self.expr, start + 1, []
        while True:
            if self._at_end(i):
                raise self.error(start, f"unterminated string: missing closing {quote}")
            c = s[i]
            if c == "\\":
                if self._at_end(i + 1):
                    raise self.error(start, f"unterminated string: missing closing {quote}")
                nxt = s[i + 1]
                # Heka: \<quote> is the quote; any other pair is kept as both characters
                out.append(quote if nxt == quote else c + nxt)
                i += 2
                continue
            if c == quote:
                self.i = i + 1
                return _Tok("string", start, s[start : i + 1], "".join(out))
            out.append(c)
            i += 1

    def _regex(self, start: int) -> _Tok:
        s, i, out = self.expr, start + 1, []
        while True:
            if self._at_end(i):
                raise self.error(start, "unterminated regular expression: missing closing /")
            c = s[i]
            if c == "\\":
                if self._at_end(i + 1):
                    raise self.error(start, "unterminated regular expression: missing closing /")
                out.append("/" if s[i + 1] == "/" else c + s[i + 1])
                i += 2
                continue
            if c == "/":
                break
            out.append(c)
            i += 1
        self.i = i + 1
        pattern = "".join(out)
        try:
            compiled = compile_re2(pattern)
        except RegexSyntaxError as exc:
            raise self.error(start, f"invalid regular expression /{pattern}/: {exc}") from None
        return _Tok("regex", start, s[start : i + 1], compiled)

    def _number(self, start: int) -> _Tok:
        s, i = self.expr, start
        while i < len(s) and (s[i].isdigit() or s[i] in ".e+-"):
            i += 1
        self.i = i
        text = s[start:i]
        value = float(text) if _NUMBER_RE.match(text) else math.nan
        if math.isnan(value) or math.isinf(value):
            if self.strict:
                why = "out of range" if math.isinf(value) else "malformed"
                raise self.error(start, f"{why} number '{text}' (Heka silently used 0)")
            value = 0.0  # Heka: strconv.ParseFloat failed, logged, and used 0
        return _Tok("number", start, text, value)

    def _word(self, start: int) -> _Tok:
        s, i = self.expr, start
        while i < len(s) and s[i].isascii() and s[i].isalpha():
            i += 1
        word = s[start:i]
        self.i = i
        if word in STRING_VARS:
            return _Tok("strvar", start, word)
        if word in NUMERIC_VARS:
            return _Tok("numvar", start, word)
        if word in ("TRUE", "FALSE", "NIL"):
            return _Tok(word, start, word)
        if word == "Fields":
            return self._field(start)
        if not self.strict:
            self.i = len(s)
            return _Tok("eof", start, "")  # Heka's lexer returned end-of-input for an unknown name
        raise self.error(start, f"unknown name '{word}' (known: {_NAMES_HINT})")

    def _field(self, start: int) -> _Tok:
        s, i = self.expr, self.i
        if i >= len(s) or s[i] != "[":
            raise self.error(i, "expected '[' right after Fields: Fields[name]")
        parts: list[str] = []
        while len(parts) < 3 and i < len(s) and s[i] == "[":
            open_at = i
            i += 1
            j = i
            while not self._at_end(j) and s[j] != "]":
                j += 1
            if self._at_end(j):
                raise self.error(open_at, "missing ']'")
            part = s[i:j]
            if not part:
                what = "field name" if not parts else ("field index" if len(parts) == 1 else "array index")
                raise self.error(open_at, f"empty {what} in Fields[...]")
            if parts and not part.isdigit() or parts and not part.isascii():
                what = "field index" if len(parts) == 1 else "array index"
                bad = next(k for k, ch in enumerate(part) if not ("0" <= ch <= "9"))
                raise self.error(i + bad, f"the {what} must be digits: Fields[name][field_idx][array_idx]")
            parts.append(part)
            i = j + 1
        if len(parts) == 3 and i < len(s) and s[i] == "[":
            raise self.error(i, "too many indexes: Fields[name][field_index][array_index]")
        self.i = i
        fi = int(parts[1]) if len(parts) > 1 else 0
        ai = int(parts[2]) if len(parts) > 2 else 0
        return _Tok("field", start, s[start:i], (parts[0], fi, ai))


_NAMES_HINT = ", ".join(STRING_VARS + NUMERIC_VARS) + ", Fields[name], TRUE, FALSE, NIL"


# ============================================================================= parser


def syntax_error(expr: str, pos: int, message: str) -> MatcherSyntaxError:
    """A MatcherSyntaxError whose text shows the expression and a caret under `pos`."""
    line_start = expr.rfind("\n", 0, pos) + 1
    line_end = expr.find("\n", pos)
    line = expr[line_start : line_end if line_end >= 0 else len(expr)]
    col = pos - line_start
    shown = line.replace("\t", " ").replace("\r", " ").replace("\0", " ")
    err = MatcherSyntaxError(
        f"invalid message matcher at column {col + 1}: {message}\n    {shown}\n    {' ' * col}^"
    )
    err.expression = expr  # type: ignore[attr-defined]
    err.column = col + 1  # type: ignore[attr-defined]
    return err


class _Parser:
    def __init__(self, expr: str, strict: bool) -> None:
        self.expr = expr
        self.strict = strict
        self.toks = _Lexer(expr, strict).tokens()
        self.k = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.k]

    def advance(self) -> _Tok:
        tok = self.toks[self.k]
        if tok.kind != "eof":
            self.k += 1
        return tok

    def error(self, tok: _Tok, message: str) -> MatcherSyntaxError:
        return syntax_error(self.expr, tok.pos, message)

    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise self.error(self.tok, "empty expression: expected a test such as Type == 'x', or TRUE")
        node = self.or_expr()
        while self.tok.kind != "eof":
            if self.strict:
                if self.tok.kind == ")":
                    raise self.error(self.tok, "unbalanced ')': no '(' to close")
                raise self.error(
                    self.tok, f"expected '&&', '||' or the end of the expression, found {_describe(self.tok)}"
                )
            node = self.or_expr()  # Heka: juxtaposed expressions parse and only the last counts
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.tok.kind == "||":
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.primary()]
        while self.tok.kind == "&&":
            self.advance()
            items.append(self.primary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def primary(self) -> Node:
        tok = self.advance()
        kind = tok.kind
        if kind == "(":
            node = self.or_expr()
            if self.tok.kind != ")":
                raise self.error(
                    self.tok,
                    f"expected ')' to close the '(' at column {tok.pos + 1}, found {_describe(self.tok)}",
                )
            self.advance()
            return node
        if kind in ("TRUE", "FALSE"):
            return Const(kind == "TRUE")
        if kind in ("strvar", "numvar", "field"):
            return self.test(tok)
        if kind == "NIL":
            raise self.error(tok, "NIL can only be the right side of Fields[name] == NIL or != NIL")
        raise self.error(
            tok, f"expected a test (such as Type == 'x'), '(', TRUE or FALSE, found {_describe(tok)}"
        )

    def test(self, var: _Tok) -> Test:
        op = self.advance()
        name = var.text if var.kind != "field" else "Fields[...]"
        if op.kind not in ("op", "re"):
            raise self.error(
                op, f"expected an operator (== != < <= > >= =~ !~) after {name}, found {_describe(op)}"
            )
        val = self.advance()
        if op.kind == "re":
            if var.kind == "numvar":
                raise self.error(op, f"{var.text} is numeric: =~ and !~ apply to string variables and Fields")
            if val.kind != "regex":
                raise self.error(
                    val, f"expected a regular expression /.../ after '{op.text}', found {_describe(val)}"
                )
            return self._make(var, op.text, "regex", val.value)
        if val.kind == "regex":
            raise self.error(op, f"use =~ or !~ to match a regular expression, not '{op.text}'")
        if val.kind == "NIL":
            if var.kind != "field":
                raise self.error(val, f"NIL can only be compared with Fields[...], not {var.text}")
            if op.text not in ("==", "!="):
                raise self.error(op, "NIL only works with == and != (does the field exist?)")
            return self._make(var, op.text, "nil", None)
        if val.kind in ("TRUE", "FALSE"):
            if var.kind != "field":
                raise self.error(val, f"TRUE and FALSE can only be compared with Fields[...], not {var.text}")
            if op.text != "==":
                raise self.error(op, f"booleans only support '==': Fields[name] == {val.kind}")
            return self._make(var, "==", "bool", val.kind == "TRUE")
        if var.kind == "strvar":
            if val.kind != "string":
                raise self.error(
                    val, f"{var.text} is a string: expected a quoted string, found {_describe(val)}"
                )
            return self._make(var, op.text, "string", val.value)
        if var.kind == "numvar":
            if val.kind == "string" and var.text == "Timestamp":
                try:
                    ns = parse_rfc3339(val.value)
                except ValueError as exc:
                    msg = f"expected a number of nanoseconds or an RFC 3339 time: {exc}"
                    raise self.error(val, msg) from None
                return self._make(var, op.text, "time", ns)
            if val.kind != "number":
                raise self.error(val, f"{var.text} is numeric: expected a number, found {_describe(val)}")
            return self._make(var, op.text, "number", val.value)
        if val.kind not in ("string", "number"):
            raise self.error(val, f"expected a string, number, TRUE, FALSE or NIL, found {_describe(val)}")
        return self._make(var, op.text, val.kind, val.value)

    @staticmethod
    def _make(var: _Tok, op: str, kind: str, value: Any) -> Test:
        if var.kind == "field":
            name, fi, ai = var.value
            return Test("Fields", op, kind, value, name, fi, ai)
        return Test(var.text, op, kind, value)


def parse(expr: str, *, strict: bool = True) -> Node:
    """Parse a matcher expression into its syntax tree (raises MatcherSyntaxError)."""
    if not isinstance(expr, str):
        raise MatcherSyntaxError(f"a message matcher must be a string, not {type(expr).__name__}")
    try:
        return _Parser(expr, strict).parse()
    except RecursionError:
        raise MatcherSyntaxError("invalid message matcher: parentheses nested too deeply") from None


# ============================================================================= RFC 3339

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*([Zz]|[+-]\d{2}:?\d{2})?\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch for an RFC 3339 time such as ``2026-11-28T10:00:00.5Z``.

    Also accepted: a date alone (midnight), a space instead of ``T``, no seconds, and no zone
    (read as UTC). Fractions keep full nanosecond precision. Raises ValueError.
    """
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not like 2026-11-28T00:00:00Z")
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    offset = 0
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    seconds = (dt - _EPOCH) // timedelta(seconds=1) - offset
    return seconds * 1_000_000_000 + int((frac or "").ljust(9, "0"))


# ============================================================================= value helpers


def _str_order(a: str, b: str, op: Callable[[Any, Any], bool]) -> bool:
    """Go compares strings byte-wise; code-point order agrees unless surrogate escapes (non-UTF-8
    bytes) are involved, so only then compare the encoded bytes."""
    if a.isascii() or b.isascii():
        return op(a, b)
    return op(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _rec_str(value: Any) -> str:
    """A flat record's header value as the string Heka would compare."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _rec_uuid(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 16:
        return Message(uuid=bytes(value)).uuid_string
    if isinstance(value, str):
        return value.lower()
    return _rec_str(value)


def _rec_num(value: Any, default: int) -> float | int:
    """A flat record's numeric header as a number (None -> Heka's default)."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (dt - _EPOCH) // timedelta(microseconds=1) * 1000
    if isinstance(value, date):
        return _rec_num(datetime(value.year, value.month, value.day, tzinfo=UTC), default)
    if isinstance(value, str):
        try:
            return float(value) if not value.strip().lstrip("-").isdigit() else int(value)
        except ValueError:
            try:
                return parse_rfc3339(value)
            except ValueError:
                return default
    return default


def _regex_source(sv: str, rx: CompiledRegex, negate: bool, search: str = "search") -> str:
    """Source of a regex test of the string expression `sv`: a plain string test for the literal
    forms, else a call of `search` (re.Pattern.search, or a google-re2 search returning bool)."""
    if rx.literal is not None:
        kind, text = rx.literal
        k = repr(text)
        if kind == "equals":
            return f"({sv} {'!=' if negate else '=='} {k})"
        if kind == "contains":
            return f"({k} {'not in' if negate else 'in'} {sv})"
        method = "startswith" if kind == "prefix" else "endswith"
        return f"({'not ' if negate else ''}{sv}.{method}({k}))"
    if rx.python is not None:
        return f"({search}({sv}) is {'' if negate else 'not '}None)"
    return f"({'not ' if negate else ''}{search}({sv}))"


def _lambda(body: str, **env: Any) -> Callable[[Any], bool]:
    """``lambda v: <body>`` compiled once. `body` is built from fixed templates, operators from a
    fixed set and repr() of str/int/float literals, never from raw user text."""
    return eval(f"lambda v: {body}", env)  # noqa: S307


def _value_tests(t: Test) -> dict[str, Callable[[Any], bool] | None]:
    """Per value kind (str, num, bool) the test Heka applies for this leaf (None: false)."""
    kind, value = t.kind, t.value
    str_test: Callable[[Any], bool] | None = None
    num_test: Callable[[Any], bool] | None = None
    if kind == "string":
        if t.op in ("==", "!=") or value.isascii():
            str_test = _lambda(f"v {t.op} {value!r}")
        else:
            str_test = _lambda("_str_order(v, k, opf)", _str_order=_str_order, k=value, opf=_OPS[t.op])
        bool_test = operator.not_  # Heka quirk: bool field vs a string literal is (value == false)
    elif kind == "number":
        num_test = _lambda(f"float(v) {t.op} {value!r}")
        bool_test = operator.not_
    elif kind == "bool":
        # Heka compares a string field with the literal's token text ("TRUE"/"FALSE").
        str_test = _lambda("v == 'TRUE'" if value else "v == 'FALSE'")
        bool_test = operator.truth if value else operator.not_
    elif kind == "regex":
        str_test = _lambda(_regex_source("v", value, t.op == "!~"), search=value.search)
        bool_test = operator.not_
    else:  # nil: only existence matters
        str_test = num_test = bool_test = (lambda v: True) if t.op == "!=" else (lambda v: False)
    return {"str": str_test, "num": num_test, "bool": bool_test}


def _field_message_test(t: Test) -> Callable[[Message], bool]:
    """The test of one Fields[name][fi][ai] leaf over a Message (Heka's testExpr)."""
    name, fi, ai = t.name, t.fi, t.ai
    missing = t.kind == "nil" and t.op == "=="
    tests = _value_tests(t)
    s_test, n_test, b_test = tests["str"], tests["num"], tests["bool"]
    bytes_test = (lambda v, s=s_test: s(bytes(v).decode("utf-8", "surrogateescape"))) if s_test else None
    # indexed by value_type (an IntEnum or a plain int); a dict lookup would hash the IntEnum
    # through Enum.__hash__, a Python-level call
    table = (s_test, bytes_test, n_test, n_test, b_test)

    def first_field_test(m: Message) -> bool:
        for f in m.fields:
            if f.name == name:
                break
        else:
            return missing
        vt = f.value_type
        if not 0 <= vt <= 4:
            return False  # Heka: an unknown value_type fails every test
        vals = f.values
        if ai >= len(vals):
            return missing
        test = table[vt]
        if test is None:
            return False
        try:
            return test(vals[ai])
        except (TypeError, ValueError, AttributeError):
            return False  # a value that does not fit its declared value_type

    def field_test(m: Message) -> bool:
        seen = 0
        for f in m.fields:
            if f.name == name:
                if seen == fi:
                    break
                seen += 1
        else:
            return missing
        vt = f.value_type
        if not 0 <= vt <= 4:
            return False
        vals = f.values
        if ai >= len(vals):
            return missing
        test = table[vt]
        if test is None:
            return False
        try:
            return test(vals[ai])
        except (TypeError, ValueError, AttributeError):
            return False  # a value that does not fit its declared value_type

    if fi == 0:
        return first_field_test
    return field_test


def _field_value_test(t: Test) -> Callable[[Any], bool]:
    """The test of one Fields[...] leaf over the value a flat record holds for the field (value
    kind from the Python type; a list is the field's values, so the field index must be 0 and the
    array index picks the element; None is a missing field)."""
    fi, ai = t.fi, t.ai
    missing = t.kind == "nil" and t.op == "=="
    present_other = t.kind == "nil" and t.op == "!="  # a value of a type Heka has no name for
    tests = _value_tests(t)
    s_test, n_test, b_test = tests["str"], tests["num"], tests["bool"]
    by_class: dict[type, Callable[[Any], bool] | None] = {
        str: s_test,
        bytes: (lambda v, s=s_test: s(v.decode("utf-8", "surrogateescape"))) if s_test else None,
        bytearray: (lambda v, s=s_test: s(bytes(v).decode("utf-8", "surrogateescape"))) if s_test else None,
        int: n_test,
        float: n_test,
        bool: b_test,
    }
    unknown = object()

    def classify(v: Any) -> Any:
        for cls in (bool, str, bytes, bytearray, int, float):
            if isinstance(v, cls):
                return by_class[cls]
        return unknown

    def field_test(v: Any) -> bool:
        if v is None:
            return missing
        if v.__class__ is list or v.__class__ is tuple:
            if fi or ai >= len(v):
                return missing
            v = v[ai]
            if v is None:
                return missing
        elif fi or ai:
            return missing
        test = by_class.get(v.__class__, unknown)
        if test is unknown:
            test = classify(v)
            if test is unknown:
                return present_other
        if test is None:
            return False
        try:
            return test(v)
        except (TypeError, ValueError, AttributeError):
            return False

    return field_test


# ============================================================================= code generation


class _Gen:
    """Generates the source of one predicate over `m` (Message) or `r` (flat record)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.ns: dict[str, Any] = {
            "_str_order": _str_order,
            "_rec_str": _rec_str,
            "_rec_uuid": _rec_uuid,
            "_rec_num": _rec_num,
        }

    def const(self, value: Any) -> str:
        """A name (or, for str/int/float, the literal) that the generated source can use."""
        if value.__class__ in (str, int) or (value.__class__ is float and math.isfinite(value)):
            return repr(value)  # repr of these is always a plain Python literal: no code injection
        name = f"_k{len(self.ns)}"
        self.ns[name] = value
        return name

    def record_field_test(self, t: Test) -> str:
        """Fields[name] over a record: the common case (a scalar of the literal's kind) inline,
        everything else (lists, None, other types, quirks) in the value-test helper."""
        slow = self.const(_field_value_test(t))
        get = f"r.get({t.record_key!r})"
        if t.fi or t.ai or t.kind in ("nil", "bool", "time"):
            return f"{slow}({get})"
        if t.kind == "number":
            if abs(t.value) >= _EXACT_FLOAT:
                return f"{slow}({get})"
            # Python compares int with float exactly, so an integral literal can be an int literal
            k = self.const(int(t.value) if t.value.is_integer() else t.value)
            return f"(v {t.op} {k} if (v := {get}).__class__ is int else {slow}(v))"
        if t.kind == "regex":
            fast = self.regex_test("v", t.value, t.op == "!~")
        elif t.op in ("==", "!=") or t.value.isascii():
            fast = f"(v {t.op} {self.const(t.value)})"
        else:
            return f"{slow}({get})"
        return f"({fast} if (v := {get}).__class__ is str else {slow}(v))"

    def expr(self, node: Node) -> str:
        if isinstance(node, Const):
            return "True" if node.value else "False"
        if isinstance(node, (And, Or)):
            joiner = " and " if isinstance(node, And) else " or "
            return "(" + joiner.join(self.expr(x) for x in node.items) + ")"
        if node.var == "Fields":
            if self.target == "m":
                return f"{self.const(_field_message_test(node))}(m)"
            return self.record_field_test(node)
        if node.var in STRING_VARS:
            return self.string_test(node)
        return self.numeric_test(node)

    def string_value(self, var: str) -> str:
        """An expression giving the header string (never None)."""
        if self.target == "m":
            attr = _MSG_ATTR[var]
            return f"m.{attr}" if var == "Uuid" else f"(m.{attr} or '')"
        if var == "Uuid":
            return "_rec_uuid(r.get('Uuid'))"  # bytes -> dashed text, text -> lowercase
        return f"(v if (v := r.get({var!r})).__class__ is str else _rec_str(v))"

    def string_test(self, t: Test) -> str:
        sv = self.string_value(t.var)
        if t.kind == "regex":
            return self.regex_test(sv, t.value, t.op == "!~")
        k = self.const(t.value)
        if t.var != "Uuid" and t.op in ("==", "!=") and t.value:
            # None never equals a non-empty literal, so only other types need converting
            if self.target == "m":
                sv = f"m.{_MSG_ATTR[t.var]}"
            elif t.op == "==":
                get = f"(v := r.get({t.var!r}))"
                return f"({get} == {k} or v.__class__ is not str and v is not None and _rec_str(v) == {k})"
            else:
                get = f"(v := r.get({t.var!r}))"
                return f"({get} != {k} and (v.__class__ is str or v is None or _rec_str(v) != {k}))"
        if t.op in ("==", "!=") or t.value.isascii():
            return f"({sv} {t.op} {k})"
        return f"_str_order({sv}, {k}, {self.const(_OPS[t.op])})"

    def regex_test(self, sv: str, rx: CompiledRegex, negate: bool) -> str:
        return _regex_source(sv, rx, negate, self.const(rx.search) if rx.literal is None else "")

    def numeric_test(self, t: Test) -> str:
        default = _NUM_DEFAULT[t.var]
        if self.target == "m":
            attr = _MSG_ATTR[t.var]
            nv = f"(m.{attr} or 0)" if default == 0 else f"({default} if (v := m.{attr}) is None else v)"
        else:
            nv = f"(v if (v := r.get({t.var!r})).__class__ is int else _rec_num(v, {default}))"
        k = self.const(t.value)
        if t.kind == "number" and abs(t.value) >= _EXACT_FLOAT:
            nv = f"float({nv})"  # Go converts to float64 first; large values lose precision
        return f"({nv} {t.op} {k})"

    def build(self, node: Node, name: str) -> Callable[[Any], bool]:
        src = f"def {name}({self.target}):\n    return {self.expr(node)}\n"
        code = compile(src, f"<message matcher {name}>", "exec")
        exec(code, self.ns)  # the source holds no user text: literals are passed as constants
        fn = self.ns[name]
        fn.__source__ = src
        return fn


def _closure(node: Node, target: str) -> Callable[[Any], bool]:
    """Fallback when generated source is too deep for the Python compiler: nested closures."""
    if isinstance(node, Const):
        return (lambda _x: True) if node.value else (lambda _x: False)
    if isinstance(node, (And, Or)):
        parts = [_closure(x, target) for x in node.items]
        if isinstance(node, And):
            return lambda x: all(p(x) for p in parts)
        return lambda x: any(p(x) for p in parts)
    return _Gen(target).build(node, "_leaf")


def _build(node: Node, target: str, name: str) -> Callable[[Any], bool]:
    try:
        return _Gen(target).build(node, name)
    except (RecursionError, SyntaxError, MemoryError):
        return _closure(node, target)


# ============================================================================= public API


class Matcher:
    """A compiled message_matcher expression.

    ``match_message(msg)`` tests a `Message`; ``match_record(record)`` tests a flat record (header
    keys by Heka name, fields by name). Both are plain functions stored on the instance, so a call
    costs no more than calling a lambda. ``polars_expr(schema)`` gives a vectorised equivalent.
    """

    __slots__ = ("expression", "tree", "match_message", "match_record", "strict")

    match_message: Callable[[Message], bool]
    match_record: Callable[[Mapping[str, Any]], bool]

    def __init__(self, expression: str, tree: Node, strict: bool = True) -> None:
        self.expression = expression
        self.tree = tree
        self.strict = strict

    def __getattr__(self, name: str) -> Any:
        # Each predicate is generated on first use and then stored in its slot, so later lookups
        # never come here: a command that only matches records never compiles the Message one.
        if name == "match_message":
            fn = _build(self.tree, "m", "match_message")
        elif name == "match_record":
            fn = _build(self.tree, "r", "match_record")
        else:
            raise AttributeError(name)
        setattr(self, name, fn)
        return fn

    def match(self, item: Message | Mapping[str, Any]) -> bool:
        """Test a Message or a flat record."""
        return self.match_message(item) if isinstance(item, Message) else self.match_record(item)

    def polars_expr(self, schema: Mapping[str, Any] | None = None) -> Any:
        """A polars expression that selects the same rows of a flat-record frame, or None when the
        expression cannot be vectorised exactly (e.g. case-insensitive or Unicode-class regexes).

        With the frame's schema (``frame.collect_schema()``) the result is a plain expression:
        each column is tested by its type exactly as `match_record` tests a value by its Python
        type, and a missing column is a missing field. Without a schema, the expression packs the
        referenced columns (`columns`; they must all exist) and builds that plain expression per
        batch from the batch's own dtypes: still vectorised, but opaque to polars' optimiser.
        """
        if schema is not None:
            return _to_polars(self.tree, schema)
        if not _regexes_vectorisable(self.tree):
            return None
        return _schema_free_polars(self)

    @property
    def columns(self) -> list[str]:
        """The flat-record keys (frame columns) the expression reads, sorted."""
        return sorted(_columns(self.tree))

    def __repr__(self) -> str:
        return f"Matcher({self.expression!r})"

    def __str__(self) -> str:
        return self.expression


@lru_cache(maxsize=256)
def _compile_cached(expr: str, strict: bool) -> Matcher:
    return Matcher(expr, parse(expr, strict=strict), strict)


def compile_matcher(expr: str, *, strict: bool = True) -> Matcher:
    """Compile a Heka message_matcher expression (raises MatcherSyntaxError with a caret diagram).

    With ``strict=False`` the lexer and parser reproduce Heka exactly where hekacli is stricter:
    everything after a newline is ignored, an unknown capitalised name ends the expression, of
    juxtaposed expressions only the last counts, and a malformed number is 0.
    """
    if not isinstance(expr, str):
        raise MatcherSyntaxError(f"a message matcher must be a string, not {type(expr).__name__}")
    return _compile_cached(expr, strict)


# ============================================================================= polars


class _NotVectorisable(Exception):
    pass


_ROW = "__heka_matcher__"


def _regexes_vectorisable(node: Node) -> bool:
    if isinstance(node, (And, Or)):
        return all(_regexes_vectorisable(x) for x in node.items)
    if isinstance(node, Test) and node.kind == "regex":
        return node.value.literal is not None or node.value.rust is not None
    return True


def _columns(node: Node) -> set[str]:
    """The flat-record keys (frame columns) an expression reads."""
    if isinstance(node, (And, Or)):
        return set().union(*(_columns(x) for x in node.items))
    if isinstance(node, Test):
        return {node.record_key if node.var == "Fields" else node.var}
    return set()


def _schema_free_polars(matcher: Matcher) -> Any:
    """An expression that learns the dtypes at run time: the referenced columns are packed into a
    struct, and each batch is tested with the exact expression for that batch's schema."""
    import polars as pl

    columns = sorted(_columns(matcher.tree))
    if not columns:
        return _to_polars(matcher.tree, {})
    built: dict[tuple, Any] = {}

    def run(packed: pl.Series) -> pl.Series:
        frame = packed.struct.unnest()
        key = tuple((name, str(dtype)) for name, dtype in frame.schema.items())
        if key not in built:
            built[key] = _to_polars(matcher.tree, frame.schema)
        expr = built[key]
        if expr is None:  # e.g. a regex on a Binary column: row by row, same answers
            return pl.Series(_ROW, [matcher.match_record(r) for r in frame.to_dicts()], dtype=pl.Boolean)
        return frame.with_columns(expr.alias(_ROW)).get_column(_ROW)

    # plain column references, so that `expr.meta.root_names()` names what to read
    packed = pl.struct([pl.col(c) for c in columns])
    return packed.map_batches(run, return_dtype=pl.Boolean)


def _to_polars(node: Node, schema: Mapping[str, Any]) -> Any:
    import polars as pl

    try:
        return _PolarsGen(pl, schema).node(node)
    except _NotVectorisable:
        return None


class _PolarsGen:
    """Builds a polars expression with `match_record`'s semantics over a flat-record frame."""

    def __init__(self, pl: Any, schema: Mapping[str, Any]) -> None:
        self.pl = pl
        self.schema = schema

    def node(self, node: Node) -> Any:
        pl = self.pl
        if isinstance(node, Const):
            return pl.lit(node.value)
        if isinstance(node, (And, Or)):
            parts = [self.node(x) for x in node.items]
            out = parts[0]
            for p in parts[1:]:
                out = (out & p) if isinstance(node, And) else (out | p)
            return out
        if node.var == "Fields":
            return self.field(node)
        if node.var in STRING_VARS:
            return self.header_string(node)
        return self.header_number(node)

    def dtype(self, column: str) -> Any:
        """The column's dtype; None when the frame has no such column."""
        return self.schema.get(column)

    def header_string(self, t: Test) -> Any:
        pl = self.pl
        dtype = self.dtype(t.var)
        if dtype is None or dtype == pl.Null:
            col = pl.lit("")
        elif dtype == pl.String:
            col = pl.col(t.var).fill_null("")
        elif isinstance(dtype, (pl.Categorical, pl.Enum)):
            col = pl.col(t.var).cast(pl.String).fill_null("")
        else:
            raise _NotVectorisable
        if t.var == "Uuid":
            col = col.str.to_lowercase()
        return self.string_test(col, t)

    def string_test(self, col: Any, t: Test) -> Any:
        if t.kind == "regex":
            return self.regex(col, t.value, t.op == "!~")
        value = t.value if t.kind == "string" else ("TRUE" if t.value else "FALSE")
        return _OPS[t.op](col, self.pl.lit(value))

    def regex(self, col: Any, rx: CompiledRegex, negate: bool) -> Any:
        if rx.literal is not None:
            kind, text = rx.literal
            if kind == "equals":
                expr = col == self.pl.lit(text)
            elif kind == "prefix":
                expr = col.str.starts_with(text)
            elif kind == "suffix":
                expr = col.str.ends_with(text)
            else:
                expr = col.str.contains(text, literal=True)
        elif rx.rust is not None:
            expr = col.str.contains(rx.rust)
        else:
            raise _NotVectorisable
        return ~expr if negate else expr

    def header_number(self, t: Test) -> Any:
        pl = self.pl
        default = _NUM_DEFAULT[t.var]
        dtype = self.dtype(t.var)
        if dtype is None or dtype == pl.Null:
            col = pl.lit(default)
        elif dtype.is_integer() or dtype == pl.Boolean:
            col = pl.col(t.var).cast(pl.Int64).fill_null(default)
        elif dtype.is_float():
            if t.kind == "time":
                raise _NotVectorisable
            col = pl.col(t.var).fill_null(default)
        elif isinstance(dtype, pl.Datetime):
            col = pl.col(t.var).dt.epoch("ns").fill_null(default)
        else:
            raise _NotVectorisable
        if t.kind == "time":
            return _OPS[t.op](col, pl.lit(t.value, dtype=pl.Int64))
        return _OPS[t.op](col.cast(pl.Float64), pl.lit(t.value, dtype=pl.Float64))

    def field(self, t: Test) -> Any:
        pl = self.pl
        missing = pl.lit(t.kind == "nil" and t.op == "==")
        dtype = self.dtype(t.record_key)
        if dtype is None or dtype == pl.Null:
            return missing
        col = pl.col(t.record_key)
        if isinstance(dtype, (pl.List, pl.Array)):
            if t.fi:
                return missing
            getter = col.list if isinstance(dtype, pl.List) else col.arr
            col = getter.get(t.ai, null_on_oob=True)
            dtype = dtype.inner
            if dtype == pl.Null:
                return missing
        elif t.fi or t.ai:
            return missing
        if t.kind == "nil":
            return col.is_not_null() if t.op == "!=" else col.is_null()
        if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
            if t.kind == "number":
                return pl.lit(False)
            test = self.string_test(col.cast(pl.String), t)
        elif dtype == pl.Binary:
            if t.kind == "number":
                return pl.lit(False)
            if t.kind == "regex":
                raise _NotVectorisable
            text = t.value if t.kind == "string" else ("TRUE" if t.value else "FALSE")
            test = _OPS[t.op](col, pl.lit(text.encode("utf-8", "surrogateescape"), dtype=pl.Binary))
        elif dtype.is_numeric() and not isinstance(dtype, pl.Decimal):
            if t.kind != "number":
                return pl.lit(False)
            test = _OPS[t.op](col.cast(pl.Float64), pl.lit(t.value, dtype=pl.Float64))
        elif dtype == pl.Boolean:
            test = col if (t.kind == "bool" and t.value) else ~col
        else:
            return pl.lit(False)  # a type Heka has no value_type for
        return test.fill_null(False)
