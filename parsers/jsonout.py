"""Log line -> JSONL text in one generated function: the streaming hot path of ``heka decode -f jsonl``.

`jsonl_encoder(decoder)` gives ``encode(line) -> str | None``: exactly
``dumps_jsonl(decoder.decode(line))`` (the reference: what ``RecordWriter("jsonl")`` writes, without
the newline), or None when the line does not decode. For a `PatternDecoder` most lines skip the
record dict and the generic JSON encoder: `compile_line_json` writes, per compiled format, a function
that matches the line and formats the JSON text with one f-string whose keys are known in advance.

That function only takes *plain* lines: no backslash, no doubled space, no control character
(U+0000-U+001F). On a plain line

* `PatternDecoder.decode` would take its fast regex (the line is "clean"), so the generated code uses
  the same regex and the same validators;
* an escape decoder guarded by a backslash (``out.guard == "\\"``) is the identity;
* a captured substring needs JSON escaping only for a double quote (the JSON encoder escapes ``"``,
  the backslash and the characters below U+0020; non-ASCII is written as is, ``ensure_ascii=False``).

Everything else (other lines, values of a type the generated code does not write itself, NaN, a
conversion that raises, text that is not valid UTF-8 such as lone surrogates) returns None from the
generated function and takes the reference path, which then also decides whether the line is
rejected. Tests compare both on every corpus (tests/parsers/test_parsers_jsonout.py).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from hekacli.output import dumps_jsonl, format_timestamp

from .core import PatternDecoder
from .grammar import valid_host_run
from .times import clf_to_ns

LineJson = Callable[[str], "str | None"]

# The reference writer's encoder for single values (dict encoding is ",".join of key:value).
_encode_value = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# validators that accept every value without these characters: only the others call them
_PREFILTERS: dict[Any, str] = {valid_host_run: "(':' in {g} or '%' in {g})"}
_TS_CACHE_MAX = 2048  # recent Timestamp texts (lines of one second follow each other)
_CONTROL = re.compile(r"[\x00-\x1f]")  # what JSON escapes besides '"' and the backslash


class _Fallback(ValueError):
    """A value the generated code does not write itself: the line takes the reference path."""


def value_json(value: Any) -> str:
    """JSON text of one record value exactly as `dumps_jsonl` writes it, or `_Fallback`."""
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    try:
        return _encode_value(value)
    except (TypeError, ValueError):
        raise _Fallback from None


def jsonl_encoder(decoder: Any) -> LineJson:
    """``line -> dumps_jsonl(decoder.decode(line))``, None when the line does not decode; fast when it can."""
    decode = decoder.decode
    fast = compile_line_json(decoder)

    def reference(line: str) -> str | None:
        rec = decode(line)
        return None if rec is None else dumps_jsonl(rec)

    if fast is None:
        return reference

    def encode(line: str) -> str | None:
        text = fast(line)
        return reference(line) if text is None else text

    return encode


def _quote_free(regex: str) -> bool:
    """Whether a capture body (a regex) can never match text holding a double quote."""
    return regex in ('[^"]*', '[^"]+')


class _Column:
    """How one record key is computed and written by the generated code."""

    def __init__(self, index: int, name: str) -> None:
        self.index = index
        self.name = name
        self.key = encode_basestring(name) + ":"  # JSON of the key and its colon
        self.kind = "json"  # "raw": quote-free str written between quotes; "int"; "float"; "json": text
        self.always = False  # present on every matched line (a constant, a group always set)
        self.read = self.p  # the variable holding the record value
        self.alias = ""  # the written form is this variable (a group written as it is)
        self.const_json: str | None = None  # a constant: its JSON text

    @property
    def c(self) -> str:
        return self.alias or f"_c{self.index}"

    @property
    def p(self) -> str:
        return f"_p{self.index}"

    def fpart(self) -> str:
        """The f-string part writing the value."""
        if self.kind == "raw":
            return '"{' + self.c + '}"'
        if self.kind == "float":
            return "{" + self.c + "!r}"
        return "{" + self.c + "}"

    def json_expr(self) -> str:
        """An expression giving the value's JSON text."""
        if self.kind == "raw":
            return f"'\"' + {self.c} + '\"'"
        if self.kind == "int":
            return f"int.__repr__({self.c})"
        if self.kind == "float":
            return f"float.__repr__({self.c})"
        return self.c


def _fstring(literal: str) -> str:
    """`literal` as the source of an f-string literal part."""
    return "f" + repr(literal.replace("{", "{{").replace("}", "}}"))


def compile_line_json(decoder: Any) -> LineJson | None:
    """The generated plain-line function of a `PatternDecoder` (None: use the reference path only).

    It returns the JSON text, or None when the line is not plain, does not match, or a value needs the
    reference writer; the caller then runs the reference path on that line.
    """
    if type(decoder).decode is not PatternDecoder.decode or not isinstance(decoder, PatternDecoder):
        return None
    derived = decoder.derived
    produced = {out.name for _, out in decoder.outputs} | set(decoder.constants)
    for d in derived:
        # derived code written inline that only adds new keys: the tail of the record
        if d.inline is None or set(d.names) & produced:
            return None
    env: dict[str, Any] = {
        "_match": (decoder._fast or decoder._full).match,
        "_enc": encode_basestring,
        "_vj": value_json,
        "_Fallback": _Fallback,
        "_control": _CONTROL.search,
    }
    quote_free = _quote_free_groups(decoder)
    always = _always_set_groups((decoder._fast or decoder._full).pattern)
    body: list[str] = []
    columns: list[_Column] = []
    for col in decoder.columns:
        outs = [(n, out) for n, out in decoder.outputs if out.name == col]
        const = col in decoder.constants
        if not outs and not const:
            continue  # a derived key: written by the tail
        c = _Column(len(columns), col)
        columns.append(c)
        if const:
            env[f"_k{c.index}"] = decoder.constants[col]
            env[f"_kj{c.index}"] = _constant_json(col, decoder.constants[col])
            c.always = True
            if not outs:  # written as part of the template
                c.const_json = env[f"_kj{c.index}"]
                c.read = f"_k{c.index}"
                continue
            body.append(f"    {c.p} = _k{c.index}; {c.c} = _kj{c.index}")
        for j, (n, out) in enumerate(outs):
            single = not const and len(outs) == 1
            tp, tc = (c.p, c.c) if single else (f"_q{c.index}_{j}", f"_r{c.index}_{j}")
            if single and n in quote_free and (out.py is None or out.guard == "\\") and col != "Timestamp":
                c.alias = f"_g{n}"  # written as captured: no code, no copy
                tc = c.alias
            need = not single or any(col in str(d.inline) for d in derived)  # the record value is read
            kind = _emit_output(
                body, env, f"_g{n}", tp, tc, out, col, n in quote_free, single, n in always, need
            )
            if single:
                c.kind = kind
                # the variable holding the record value (read by derived code)
                c.read = f"_g{n}" if kind == "raw" else c.c if kind in ("int", "float") else c.p
                # a time parser gives an int or raises: never absent when its group is set
                timed = col == "Timestamp" and out.guard is None and _parser_of(out) is not None
                c.always = (kind in ("raw", "int", "float") or timed) and n in always
            else:
                # several sources for one key: the last one with a value wins (as `build` does)
                if not const and j == 0:
                    body.append(f"    {c.p} = {tp}; {c.c} = {tc}")
                else:
                    body.append(f"    if {tp} is not None: {c.p} = {tp}; {c.c} = {tc}")
    maybe = [c for c in columns if not c.always]
    ngroups = decoder.ngroups
    head = [f"    ({', '.join(f'_g{i}' for i in range(ngroups))},) = _m.groups()"]
    for k, (n, valid) in enumerate(decoder._py_validators):
        env[f"_v{k}"] = valid
        pre = _PREFILTERS.get(valid)
        call = f"_v{k}(_g{n - 1})"
        head.append(f"    if {pre.format(g=f'_g{n - 1}')} and not {call}:" if pre else f"    if not {call}:")
        head.append("        return None")
    lines = head + ["    try:"] + ["    " + b for b in body]
    ok = " and ".join(f"{c.c} is not None" for c in maybe) or "True"
    lines.append(f"        _ok = {ok}")
    tail = _derived_code(derived, columns, env)
    if tail is None:
        return None
    lines += ["        " + x for x in tail]
    # all keys present: one f-string
    parts = []
    lit = "{"
    for i, c in enumerate(columns):
        lit += ("," if i else "") + c.key
        if c.const_json is not None:
            lit += c.const_json
            continue
        f = c.fpart()
        if f.startswith('"'):
            parts += [_fstring(lit + '"'), "f'" + f[1:-1] + "'"]
            lit = '"'
        else:
            parts += [_fstring(lit), "f'" + f + "'"]
            lit = ""
    parts.append(_fstring(lit))
    lines.append("        if _ok:")
    lines.append("            _s = " + " ".join(parts) + " f'{_t}}}'")
    lines.append("        else:")
    lines.append("            _l = []")
    for c in columns:
        if c.const_json is not None:
            lines.append(f"            _l.append({c.key + c.const_json!r})")
        else:
            lines.append(f"            if {c.c} is not None: _l.append({c.key!r} + {c.json_expr()})")
    lines.append("            _s = '{' + ','.join(_l) + _t + '}'")
    lines.append("    except (ValueError, KeyError, OverflowError, IndexError, TypeError):")
    lines.append("        return None")
    # `dumps_jsonl` checks that non-ASCII text encodes as UTF-8 (e.g. values from derived code)
    lines.append("    if not _s.isascii():")
    lines.append("        try:")
    lines.append("            _s.encode('utf-8')")
    lines.append("        except UnicodeEncodeError:")
    lines.append("            return None")
    lines.append("    return _s")
    checked = [
        "def line_json(line):",
        "    if line[-1:] in ('\\n', '\\r'):",
        "        line = line[:-1] if line[-1] == '\\r' else ("
        "line[:-2] if line[-2:] == '\\r\\n' else line[:-1])",
        "    if '\\\\' in line or '  ' in line or (not line.isprintable() and _control(line)):",
        "        return None",
        "    _m = _match(line)",
        "    if _m is None:",
        "        return None",
    ]
    plain = [
        "def plain_json(line):",
        "    if '  ' in line:",
        "        return None",
        "    _m = _match(line)",
        "    if _m is None:",
        "        return None",
    ]
    source = "\n".join(checked + lines + plain + lines)
    exec(compile(source, f"<line_json {decoder.kind}>", "exec"), env)  # noqa: S102 - our own code
    fn = env["line_json"]
    # for lines the caller knows hold no backslash and no control character (see `is_plain_block`)
    fn.plain = env["plain_json"]
    fn.source = source  # for debugging and tests
    return fn


PLAIN_BLOCK_DELETE = bytes(c for c in range(32) if c != 10) + b"\\"


def is_plain_block(data: bytes) -> bool:
    """Whether no line of this UTF-8 block holds a backslash or a control character (newlines apart):
    then the function's `plain` variant may take its lines (it checks for a double space itself).

    A control byte or backslash never occurs inside a multi-byte UTF-8 sequence, so the bytes tell.
    """
    return len(data.translate(None, PLAIN_BLOCK_DELETE)) == len(data)


def _derived_code(derived: list[Any], columns: list[_Column], env: dict[str, Any]) -> list[str] | None:
    """Code running the inline derived steps on locals, setting `_t` to the JSON of the keys they add.

    The inline code reads the record with ``r.get(KEY)`` and adds keys with ``r[KEY] = value``
    (see `Derived.inline`); it is rewritten to use local variables. Added keys come after the
    format's keys in the order they were first set, which must be the order of `names` on every
    path through the code (checked here); anything else returns None (no fast path).
    """
    if not derived:
        return ["_t = ''"]
    names: list[str] = []
    for d in derived:
        names += [n for n in d.names if n not in names]
    slot = {n: f"_d{i}" for i, n in enumerate(names)}
    reads = {c.name: c.read for c in columns}
    code: list[str] = [f"{' = '.join(slot.values())} = _U"]
    env["_U"] = _UNSET
    trees = []
    for d in derived:
        src, names_env = d.inline
        tree = _localize("\n".join(src), slot, reads)
        if tree is None:
            return None
        trees.append(tree)
        env.update(names_env)
        code += ast.unparse(tree).split("\n")
    safe = _plain_substrings(trees, {c.alias for c in columns if c.alias})
    allstr = " and ".join(f"{var}.__class__ is str" for var in slot.values())
    parts = []
    for n, var in slot.items():
        value = f"f'\"{{{var}}}\"'" if var in safe else "f'{_enc(" + var + ")}'"
        parts += [_fstring("," + encode_basestring(n) + ":"), value]
    code.append(f"if {allstr}:")  # every key set, all text: one f-string
    code.append("    _t = " + " ".join(parts))
    code.append("else:")
    code += ["    " + x for x in _tail_general(slot, env)]
    return code


def _tail_general(slot: dict[str, str], env: dict[str, Any]) -> list[str]:
    code = ["_t = ''"]
    for n, var in slot.items():
        env[f"_dk{var}"] = "," + encode_basestring(n) + ":"
        code.append(
            f"if {var} is not _U: _t += _dk{var} + (_enc({var}) if {var}.__class__ is str else _vj({var}))"
        )
    return code


_UNSET = object()


def _plain_substrings(trees: list[ast.Module], sources: set[str]) -> set[str]:
    """Variables of the derived code that, when text, are substrings of the `sources` (quote-free
    values of a plain line): their JSON is the text between quotes.

    A variable qualifies when every assignment to it copies a qualifying variable or unpacks
    ``X.partition(SEP)`` / ``X.rpartition(SEP)`` of one, with SEP a constant needing no escape.
    """
    assigns: list[tuple[list[str], ast.expr, bool]] = []  # (targets, value, value is a 3-tuple split)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.NamedExpr):
                return set()  # an assignment inside an expression: not followed here
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        assigns.append(([t.id], node.value, False))
                    elif isinstance(t, ast.Tuple) and all(isinstance(e, ast.Name) for e in t.elts):
                        assigns.append(([e.id for e in t.elts], node.value, True))  # type: ignore[attr-defined]
                    else:
                        return set()
    assigned = {n for targets, _, _ in assigns for n in targets}
    if assigned & sources:
        return set()
    safe = assigned | sources

    def ok(value: ast.expr, split: bool) -> bool:
        if not split:
            return isinstance(value, ast.Name) and value.id in safe
        return (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr in ("partition", "rpartition")
            and isinstance(value.func.value, ast.Name)
            and value.func.value.id in safe
            and len(value.args) == 1
            and not value.keywords
            and isinstance(value.args[0], ast.Constant)
            and isinstance(value.args[0].value, str)
            and encode_basestring(value.args[0].value) == '"' + value.args[0].value + '"'
        )

    changed = True
    while changed:  # drop every variable some assignment makes unsafe, until nothing changes
        changed = False
        for targets, value, split in assigns:
            if (split and len(targets) != 3) or not ok(value, split):
                for n in targets:
                    if n in safe and n not in sources:
                        safe.discard(n)
                        changed = True
    return safe


def _localize(source: str, slot: dict[str, str], reads: dict[str, str]) -> ast.Module | None:
    """The derived code with ``r.get(K)`` / ``r[K] = v`` turned into locals, or None if it does more."""
    tree = ast.parse(textwrap.dedent(source))
    order = list(slot)

    class Rewrite(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name)
                and f.value.id == "r"
                and f.attr == "get"
                and len(node.args) == 1
                and not node.keywords
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value not in slot  # a key derived code adds: not read here
            ):
                var = reads.get(node.args[0].value)
                return ast.Name(var, ast.Load()) if var else ast.Constant(None)
            return self.generic_visit(node)

        def visit_Assign(self, node: ast.Assign) -> ast.AST:
            t = node.targets[0]
            if (
                len(node.targets) == 1
                and isinstance(t, ast.Subscript)
                and isinstance(t.value, ast.Name)
                and t.value.id == "r"
                and isinstance(t.slice, ast.Constant)
                and t.slice.value in slot
            ):
                node.targets = [ast.Name(slot[t.slice.value], ast.Store())]
            return self.generic_visit(node)

    tree = ast.fix_missing_locations(Rewrite().visit(tree))
    allowed = (ast.Assign, ast.If, ast.Pass)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "r":
            return None
        if isinstance(node, ast.stmt) and not isinstance(node, allowed):
            return None

    def paths(stmts: list[ast.stmt]) -> list[list[str]]:
        result: list[list[str]] = [[]]
        for st in stmts:
            if isinstance(st, ast.If):
                branches = paths(st.body) + paths(st.orelse)
                result = [p + b for p in result for b in branches]
            elif isinstance(st, ast.Assign):
                t = st.targets[0]
                name = next((k for k, v in slot.items() if isinstance(t, ast.Name) and t.id == v), None)
                if name is not None:
                    result = [p + [name] for p in result]
        return result

    for path in paths(tree.body):
        firsts = list(dict.fromkeys(path))
        if [order.index(n) for n in firsts] != sorted(order.index(n) for n in firsts):
            return None
    return tree


def _constant_json(name: str, value: Any) -> str:
    if name == "Timestamp" and type(value) is int:
        return '"' + format_timestamp(value) + '"'
    text = dumps_jsonl({name: value})
    return text[len(encode_basestring(name)) + 2 : -1]


def _emit_output(
    body: list[str],
    env: dict[str, Any],
    g: str,
    p: str,
    c: str,
    out: Any,
    col: str,
    quote_free: bool,
    single: bool,
    always: bool = False,
    need_value: bool = True,
) -> str:
    """Code computing one output into `p` (the record value) and `c` (its written form); its kind.

    `always`: the group takes part in every match (never None).
    """
    k = len(env)
    identity = out.py is None or out.guard == "\\"  # plain lines hold no backslash
    if col == "Timestamp":
        # formatted once per distinct text: log lines share their second
        env[f"_tc{k}"] = cache = {}
        env[f"_tm{k}"] = _timestamp_miss(out, cache, need_value)
        ind = "    "
        if not always:
            unset = f"{p} = {c} = None" if need_value else f"{c} = None"
            body.append(f"    if {g} is None: {unset}")
            body.append("    else:")
            ind = "        "
        if need_value:
            body.append(f"{ind}_x = _tc{k}.get({g})")
            body.append(f"{ind}if _x is None: _x = _tm{k}({g})")
            body.append(f"{ind}{p}, {c} = _x")
        else:
            body.append(f"{ind}{c} = _tc{k}.get({g})")
            body.append(f"{ind}if {c} is None: {c} = _tm{k}({g})")
        return "json"
    if identity:
        if not single:
            body.append(f"    {p} = {g}")
        if quote_free:
            if c != g:
                body.append(f"    {c} = {g}")
        elif always:
            body.append(f"    {c} = {g} if '\"' not in {g} else _enc({g})[1:-1]")
        else:
            body.append(f"    {c} = {g} if {g} is None or '\"' not in {g} else _enc({g})[1:-1]")
        if not single:
            body.append(f"    if {c} is not None: {c} = '\"' + {c} + '\"'")
            return "json"
        return "raw"
    if out.py is int:
        value = f"int({g})" if always else f"None if {g} is None else int({g})"
        body.append(f"    {p} = {c} = {value}" if not single else f"    {c} = {value}")
        body.append(f"    if {c} is not None and {c} >> 63 not in (0, -1): raise _Fallback")  # beyond 64 bits
        if not single:
            body.append(f"    if {c} is not None: {c} = int.__repr__({c})")
            return "json"
        return "int"
    if out.py is float:
        body.append(f"    {p} = {c} = None if {g} is None else float({g})")
        body.append(f"    if {c} is not None and {c} - {c} != 0.0: raise _Fallback")
        if not single:
            body.append(f"    if {c} is not None: {c} = float.__repr__({c})")
            return "json"
        return "float"
    env[f"_f{k}"] = out.py
    call = f"_f{k}({g})" if out.guard is None else f"({g} if {out.guard!r} not in {g} else _f{k}({g}))"
    body.append(f"    {p} = None if {g} is None else {call}")
    if type(out.dtype).__name__ == "Int64":  # (this module does not import polars)
        body.append(f"    if {p} is not None and {p} >> 63 not in (0, -1): raise _Fallback")  # beyond 64 bits
    body.append(f"    {c} = None if {p} is None else _vj({p})")
    return "json"


_MINUTES: dict[int, str] = {}


def timestamp_json(ns: int) -> str:
    """``'"' + format_timestamp(ns) + '"'``, the part up to the minute formatted once per minute."""
    sec, frac = divmod(ns, 1_000_000_000)
    minute, s = divmod(sec, 60)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) >= 4096:
            _MINUTES.clear()
        # '"YYYY-MM-DDTHH:MM:' as format_timestamp spells it (minus "00.000000000Z")
        head = _MINUTES[minute] = '"' + format_timestamp(minute * 60_000_000_000)[:-13]
    return f'{head}{s:02d}.{frac:09d}Z"'


def _timestamp_miss(out: Any, cache: dict[str, Any], need_value: bool) -> Callable[[str], Any]:
    """(value, JSON) of a Timestamp text not in `cache` (then cached); without `need_value` the JSON only."""
    py = out.py
    guard = out.guard

    def general(text: str) -> tuple[Any, Any]:
        if py is None:
            value: Any = text
        elif guard is not None and guard not in text:
            value = text
        else:
            value = py(text)
        if value is None:
            js = None
        elif type(value) is int:
            js = timestamp_json(value)
        else:
            js = value_json(value)
        return value, js

    if need_value:

        def miss(text: str) -> Any:
            result = general(text)
            if len(cache) >= _TS_CACHE_MAX:
                cache.clear()
            cache[text] = result
            return result

        return miss

    json_of: Callable[[str], Any] = lambda text: general(text)[1]  # noqa: E731
    if _parser_of(out) is clf_to_ns and guard is None:
        json_of = _clf_minutes(general)

    def miss_json(text: str) -> Any:
        js = json_of(text)
        if len(cache) >= _TS_CACHE_MAX:
            cache.clear()
        cache[text] = js
        return js

    return miss_json


def _parser_of(out: Any) -> Any:
    """The text -> ns parser a `time_output` wraps (in its range check), or None."""
    try:
        return inspect.getclosurevars(out.py).nonlocals.get("py")
    except (TypeError, ValueError):
        return None


def _clf_minutes(general: Callable[[str], tuple[Any, Any]]) -> Callable[[str], Any]:
    """The JSON of ``10/Feb/2014:08:46:41 -0800`` texts (`clf_to_ns`), one parse per minute.

    `clf_to_ns` is linear in the seconds ``text[18:20]`` (the rest of the text, zone included, is
    the minute's), so a text's JSON is its minute's ``:00`` one with those two digits, when the whole
    minute lies inside the timestamp range.
    """
    minutes: dict[str, str | None] = {}

    def json_of(text: str) -> Any:
        sec = text[18:20]
        if len(text) != 26 or not (sec.isascii() and sec.isdigit() and sec < "60"):
            return general(text)[1]
        key = text[:18] + text[20:]
        head = minutes.get(key)
        if head is None:
            base, js = general(text[:18] + "00" + text[20:])
            # a minute at either end of the range: every second is parsed on its own
            ok = type(base) is int and _MIN_NS <= base and base + 60_000_000_000 <= _MAX_NS
            if not ok or type(js) is not str:
                return general(text)[1]
            if len(minutes) >= 4096:
                minutes.clear()
            head = minutes[key] = js[:-14]  # '"YYYY-MM-DDTHH:MM:'
        return head + sec + '.000000000Z"'

    return json_of


_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1


def _always_set_groups(pattern: str) -> set[int]:
    """Our group numbers (gN = regex group N + 1) that take part in every match of `pattern`."""
    try:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser as parser  # type: ignore[attr-defined]

        tree = parser.parse(pattern)
        repeats = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT))
        subpattern = c.SUBPATTERN
    except Exception:  # noqa: BLE001 - the parser is internal: without it every group may be unset
        return set()
    found: set[int] = set()

    def walk(items: Any) -> None:
        for op, av in items:
            if op is subpattern:
                if av[0] is not None:
                    found.add(av[0] - 1)
                walk(av[-1])
            elif op in repeats and av[0] >= 1:
                walk(av[2])
            # alternatives, optional parts and look-arounds: their groups may stay unset

    walk(tree.data if hasattr(tree, "data") else tree)
    return found


def _quote_free_groups(decoder: PatternDecoder) -> set[int]:
    """Group numbers whose fast-regex capture can never hold a double quote."""
    free: set[int] = set()
    for i, (piece, groups) in enumerate(zip(decoder.pieces, decoder._piece_groups, strict=True)):
        if piece.kind == "string" and len(groups) == 1:
            if _quote_free(decoder._resolve_string(i)[1]):
                free.add(groups[0])
    for n, _rx, _fn in decoder._validators:
        piece_run = next(
            (p.run for p, gs in zip(decoder.pieces, decoder._piece_groups, strict=True) if gs == [n]), None
        )
        if piece_run is not None and not re.match(piece_run, '"'):
            free.add(n)
    return free
