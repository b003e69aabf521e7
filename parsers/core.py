"""The compiled-format decoder shared by every log family.

A format (nginx ``log_format``, Apache ``LogFormat``, rsyslog template, or a fixed layout such as the
nginx error log) is compiled into a list of `Piece` s: whitespace, literals and fields. The pieces
are joined into **one** regular expression that both paths use:

* streaming: Python ``re`` on one line at a time (`PatternDecoder.decode`);
* bulk: polars ``str.extract_groups`` over a whole column (`PatternDecoder.frame`). On raw bytes
  (`PatternDecoder.frame_bytes`, `frame_file`), the compiled line scanner (`linescan`) cuts the
  lines of most formats first, and hands the lines it was not built for to the regex.

Both engines give leftmost-first (backtracking-order) captures for the portable subset of syntax
we emit (see `grammar`), so the two paths agree line for line; a test checks it.

Heka's LPeg grammars were possessive (no backtracking), and an untyped variable ended at the last
character of the literal *before* it. Here a backtracking search tries Heka's path first, so typed
fields capture what Heka captured, and an untyped variable ends where the *next* item can start
(`[$var]`, ``a=$a b=$b`` and ``$ssl_protocol/$ssl_cipher`` work). Every upstream Heka test case gives
Heka's values; docs/decoders.md lists the differences.

Speed: for "clean" lines (no backslash, no tab/CR/VT/FF, no double space) an equivalent faster
regex is used: whitespace runs become one space, escape-aware quoted strings become ``[^"]*`` and
alternation-heavy host fields become a character run validated afterwards. On clean lines those
rewrites match exactly the same text (argued piece by piece in `_assemble`).
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hekacli.logfiles import open_binary
from hekacli.message import Field, Message, ValueType
from hekacli.ordered_map import ordered_map

from . import grammar as g
from . import linescan

HEADER_ORDER = ("Timestamp", "Type", "Logger", "Hostname", "Severity", "Pid", "Payload")
HEADER_DTYPES: dict[str, pl.DataType] = {
    "Timestamp": pl.Int64(),
    "Type": pl.String(),
    "Logger": pl.String(),
    "Hostname": pl.String(),
    "Severity": pl.Int64(),
    "Pid": pl.Int64(),
    "Payload": pl.String(),
}
_PARALLEL_MIN_ROWS = 50_000
_CHUNK_ROWS = 250_000
_CHUNK_BYTES = 16 << 20  # text per chunk when decoding a file
_THREADS = 2  # chunks decoded at once (polars and the line scanner release the GIL)


@dataclass
class Output:
    """One record key produced from one capture group of a piece."""

    name: str
    group: int = 0  # index of the capture group within the piece
    py: Callable[[str], Any] | None = None  # text -> value (None: absent); None means the text itself
    dtype: pl.DataType = field(default_factory=pl.String)
    vtype: ValueType = ValueType.STRING  # Heka value type in the message form
    rep: str = ""  # Heka representation ("B", "s", "us"); "host" = per value ipv4/ipv6/hostname
    vec: Callable[[pl.Expr], pl.Expr] | None = None  # vectorised py; null where it cannot convert
    exact_vec: bool = False  # vec never needs the per-value fallback
    guard: str | None = None  # py is the identity on texts that do not contain this substring
    native: str = ""  # a conversion the line scanner computes itself (`linescan.CONVERSIONS`)


@dataclass
class Piece:
    """One item of a compiled format."""

    kind: str  # "ws" | "literal" | "field" | "string" (delimiter taken from the next piece) | "rest"
    source: str  # the text in the format, for --explain
    regex: str = ""  # capture groups written as (?P<@>...)
    outputs: list[Output] = field(default_factory=list)
    description: str = ""  # what the piece accepts, for --explain and errors
    run: str | None = None  # a class whose maximal run, validated by `regex`, equals the capture
    run_valid: Callable[[str], bool] | None = None  # fast Python check equivalent to fullmatch(regex)
    fast: str | None = None  # equivalent regex for clean lines (default: `regex`)
    quote_aware: bool = True  # "string" pieces before a '"': let backslash escape the quote

    @property
    def ngroups(self) -> int:
        return self.regex.count("(?P<@>")


def string_output(name: str, unescape: Callable[[str], str] | None = None) -> Output:
    """A plain string field, optionally with the server's escapes decoded."""
    if unescape is None:
        return Output(name, exact_vec=True)

    def vec(s: pl.Expr) -> pl.Expr:
        # Values without a backslash need no decoding; the rest go through `unescape` one by one.
        return pl.when(s.str.contains("\\", literal=True)).then(None).otherwise(s)

    return Output(name, py=unescape, vec=vec, guard="\\")


def int_output(name: str, rep: str = "") -> Output:
    def vec(s: pl.Expr) -> pl.Expr:
        return s.cast(pl.Int64, strict=False)

    return Output(name, py=int, dtype=pl.Int64(), vtype=ValueType.DOUBLE, rep=rep, vec=vec, native="int")


def float_output(name: str, rep: str = "") -> Output:
    def vec(s: pl.Expr) -> pl.Expr:
        return s.cast(pl.Float64, strict=False)

    return Output(name, py=float, dtype=pl.Float64(), vtype=ValueType.DOUBLE, rep=rep, vec=vec)


def time_output(
    name: str, py: Callable[[str], int], vec: Callable[[pl.Expr], pl.Expr] | None = None
) -> Output:
    from .times import check_ns, clf_to_ns

    def checked(text: str) -> int:
        return check_ns(py(text))

    native = "clf" if py is clf_to_ns else ""
    return Output(name, py=checked, dtype=pl.Int64(), vtype=ValueType.INTEGER, vec=vec, native=native)


@dataclass
class Derived:
    """A value computed from other record keys after decoding (same logic on both paths)."""

    names: tuple[str, ...]
    dtypes: tuple[pl.DataType, ...]
    vtypes: tuple[ValueType, ...]
    py: Callable[[dict[str, Any]], None]  # updates the record in place
    frame: Callable[[Any], Any]  # (Lazy)DataFrame -> the same with the derived columns
    lazy: bool = True  # `frame` only adds expressions, so it also takes a LazyFrame
    inline: tuple[list[str], dict[str, Any]] | None = None  # same as `py`, as code for the hot loop
    # the line scanner computes it (`linescan.CONVERSIONS`) from the field `source`; `names` are
    # then some of the conversion's columns, `parts` their positions among them
    native: str = ""
    source: str = ""
    parts: tuple[int, ...] = ()


class Decoder:
    """Interface every decoder implements (see COMMON.md "Decoders")."""

    kind: str = ""
    message_type: str = ""
    schema: dict[str, tuple[ValueType, str]]
    rejects: pl.DataFrame | None = None  # after frame(): lineno, line, reason
    # Every frame has the columns and dtypes of `polars_schema()` whatever the input (a decoder
    # that infers its columns from the data, like JSON lines, has not).
    fixed_schema: bool = False

    def decode(self, line: str) -> dict[str, Any] | None:  # pragma: no cover - interface
        raise NotImplementedError

    def explain_failure(self, line: str) -> str:
        return "line does not match the format"

    def explain(self) -> list[dict[str, str]]:
        return []

    def explain_line(self, line: str) -> list[dict[str, str]]:
        return []

    # -- bulk ---------------------------------------------------------------------------------
    def frame(self, lines: Iterable[str] | pl.Series, columns: Collection[str] | None = None) -> pl.DataFrame:
        """Default bulk path: the streaming decoder over every line (subclasses vectorise).

        `columns`: the caller needs only these (None: all); a decoder may return just them, or more.
        """
        series = _as_series(lines)
        rows: list[dict[str, Any]] = []
        bad_no: list[int] = []
        bad_line: list[str] = []
        for number, line in enumerate(series.to_list(), 1):
            rec = self.decode(line) if line is not None else None
            if rec is None:
                bad_no.append(number)
                bad_line.append(line or "")
            else:
                rows.append(rec)
        self.rejects = _rejects_frame(bad_no, bad_line, [self.explain_failure(x) for x in bad_line])
        return self._rows_to_frame(rows)

    def frame_file(self, path: str | Path) -> pl.DataFrame:
        """Decode a whole file (``.gz`` transparently) with the bulk path: `frame_file_chunks`,
        joined; rejects in `.rejects`."""
        return self._joined(list(self.frame_file_chunks(path)))

    def frame_file_chunks(self, path: str | Path) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """A whole file (``.gz`` transparently; ``-``: stdin) decoded chunk by chunk, in order:
        (rows, rejects with the file's line numbers)."""
        with open_binary(path) as stream:
            yield from self.frame_stream_chunks(stream)

    def frame_stream_chunks(self, stream: Any) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """`frame_file_chunks` for an open binary stream. This default gives it all as one chunk."""
        df = self.frame(lines_series_from_bytes(stream.read()))
        yield df, self.rejects if self.rejects is not None else _rejects_frame([], [], [])

    def _joined(self, parts: list[tuple[pl.DataFrame, pl.DataFrame]]) -> pl.DataFrame:
        """The rows of `parts` (rows, numbered rejects) joined in order; their rejects in `.rejects`."""
        if not parts:  # an empty file
            return self.frame([])
        self.rejects = pl.concat([rej for _, rej in parts], how="vertical")
        return pl.concat([df for df, _ in parts], how="vertical")

    def _rows_to_frame(self, rows: list[dict[str, Any]]) -> pl.DataFrame:
        schema = self.polars_schema()
        if not rows:
            return pl.DataFrame(schema=schema)
        if {k for r in rows for k in r} <= set(schema):
            return pl.DataFrame(rows, schema=schema, strict=False)
        # schemaless input (JSON): let polars infer each column from every row
        df = pl.DataFrame(rows, infer_schema_length=None, strict=False)
        return df.with_columns(
            [pl.col(k).cast(t, strict=False) for k, t in schema.items() if k in df.columns]
        )

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {"Type": pl.String()}

    # -- messages -----------------------------------------------------------------------------
    def to_message(self, record: Mapping[str, Any]) -> Message:
        """The Heka message this record stands for: header keys, Fields typed per `schema`."""
        return record_to_message(record, self.schema)


def record_to_message(record: Mapping[str, Any], schema: Mapping[str, tuple[ValueType, str]]) -> Message:
    """Flat record -> Message, numbers as Heka's Lua decoders injected them (DOUBLE)."""
    headers: dict[str, Any] = {}
    fields: list[Field] = []
    for key, value in record.items():
        if value is None:
            continue
        if key in HEADER_DTYPES:
            headers[key.lower()] = value
            continue
        vtype, rep = schema.get(key, (None, ""))
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if rep == "host":
            rep = g.host_representation(str(values[0])) if values else ""
        if vtype is None:
            fields.append(Field.of(key, values, rep))
            continue
        if vtype is ValueType.DOUBLE:
            values = [float(v) for v in values]
        elif vtype is ValueType.INTEGER:
            values = [int(v) for v in values]
        elif vtype is ValueType.STRING:
            values = [str(v) for v in values]
        fields.append(Field(key, vtype, rep, values))
    msg = Message.new(timestamp=headers.get("timestamp"))
    if headers.get("timestamp") is None:
        msg.timestamp = Message.new().timestamp
    msg.type = headers.get("type")
    msg.logger = headers.get("logger")
    msg.hostname = headers.get("hostname")
    msg.severity = headers.get("severity", 7)  # Heka's Lua encoder writes its default 7
    msg.pid = headers.get("pid")
    msg.payload = headers.get("payload")
    msg.fields = fields
    return msg


def _as_series(lines: Iterable[str] | pl.Series) -> pl.Series:
    if isinstance(lines, pl.Series):
        s = lines.cast(pl.String)
    else:
        s = pl.Series("line", list(lines), dtype=pl.String)
    # Stripping copies every string: only do it when some line ends with a line break.
    if s.str.ends_with("\n").any():
        s = s.str.strip_suffix("\n")
    if s.str.ends_with("\r").any():
        s = s.str.strip_suffix("\r")
    return s.alias("line")


def _numbered(
    results: Iterable[tuple[pl.DataFrame, pl.DataFrame, int]],
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """(rows, rejects, lines in the chunk) per chunk -> (rows, rejects numbered from the first chunk)."""
    first = 0
    for df, rej, lines in results:
        yield df, rej.with_columns(pl.col("lineno") + first) if first else rej
        first += lines


def _rejects_frame(numbers: list[int], lines: list[str], reasons: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"lineno": numbers, "line": lines, "reason": reasons},
        schema={"lineno": pl.Int64, "line": pl.String, "reason": pl.String},
    )


def line_chunks(
    stream: Any, chunk_bytes: int, *, ring: int = 0, raw: Any = None
) -> Iterator[tuple[memoryview, int]]:
    """(whole lines, bytes of the underlying file `raw` consumed) from a binary stream: chunks of
    about `chunk_bytes` that end at a newline (the last one may not).

    Each chunk is read straight into a buffer, after the part line the previous read ended with: no
    chunk is copied (at this size a copy costs more than decoding it). With `ring`, that many
    buffers are used in turn: a chunk's buffer is written again `ring` chunks later, so the consumer
    must be done with a chunk by then (fresh memory costs a page fault per 4 KB: reusing it is
    faster). Without, every chunk has a buffer of its own."""
    last = raw.tell() if raw is not None else 0
    carry = b""
    buffers: list[bytearray] = []
    turn = 0
    while True:
        need = len(carry) + chunk_bytes
        slot = turn % ring if ring else 0
        if not ring or slot == len(buffers):
            # (in a ring, room for the part line carried over, so the buffer serves every turn)
            buffers[slot:] = [bytearray(need + chunk_bytes // 8 if ring else need)]
        elif len(buffers[slot]) < need:
            buffers[slot] = bytearray(need + chunk_bytes // 8)
        buf = buffers[slot]
        buf[: len(carry)] = carry
        got = stream.readinto(memoryview(buf)[len(carry) : need]) or 0
        total = len(carry) + got
        if got == 0:
            if carry:  # the last line, without a newline
                yield memoryview(buf)[:total], (raw.tell() if raw is not None else last + total) - last
            return
        cut = buf.rfind(b"\n", 0, total) + 1
        if cut == 0:
            carry = bytes(buf[:total])  # a line longer than a chunk: read on, into the same buffer
            continue
        turn += 1  # (only a buffer handed out counts: the others are still in use)
        carry = bytes(buf[cut:total])
        pos = raw.tell() if raw is not None else last + cut  # (the file's own units: .gz is compressed)
        yield memoryview(buf)[:cut], pos - last
        last = pos


def lines_series_from_bytes(data: bytes) -> pl.Series:
    """Split raw log bytes into a Series of lines, exactly as the streaming reader would.

    Fast path: polars' CSV reader with a separator and quote that cannot occur, when the data has no
    \\x1f and no \\r (the reader would treat them specially) and is valid UTF-8; otherwise Python.
    """
    if not data:
        return pl.Series("line", [], dtype=pl.String)
    if b"\x1f" not in data and b"\r" not in data:
        try:
            df = pl.read_csv(
                io.BytesIO(data),
                separator="\x1f",
                quote_char=None,
                has_header=False,
                new_columns=["line"],
                infer_schema=False,
                encoding="utf8",
            )
            s = df.to_series().fill_null("")
            expected = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            if len(s) == expected:
                return s.alias("line")
        except Exception:  # noqa: BLE001 - invalid UTF-8 or anything unusual: the exact slow path
            pass
    text = data.decode("utf-8", "backslashreplace")
    if text.endswith("\n"):
        text = text[:-1]
    return pl.Series("line", text.split("\n"), dtype=pl.String)


# =================================================================================================
class PatternDecoder(Decoder):
    """A decoder compiled from pieces into one regex; see the module docstring."""

    fixed_schema = True

    def __init__(
        self,
        kind: str,
        message_type: str,
        pieces: list[Piece],
        *,
        source: str = "",
        derived: list[Derived] | None = None,
        constants: Mapping[str, Any] | None = None,
        header_map: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.message_type = message_type
        self.source = source
        self.pieces = pieces
        self.derived = derived or []
        self.constants = {"Type": message_type, **(constants or {})}
        self.rejects = None
        self._assemble()
        self._build_plan()

    # -- compile ------------------------------------------------------------------------------
    def _resolve_string(self, i: int) -> tuple[str, str]:
        """Regex (full, fast) for a "string" piece: it ends where the next piece can start."""
        nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
        p = self.pieces[i]
        if nxt is None:
            # The last item of the format: the line ends where the format ends, so the value is the
            # rest of the line (Heka stopped at the next space, losing e.g. a trailing "ua=$http_user_agent").
            return ".*", ".*"
        if nxt.kind == "ws":
            body = g.NOT_WS_CLASS + "*"
            return body, body
        if nxt.kind == "literal":
            c = _literal_text(nxt)[0]
            if c == '"' and p.quote_aware:
                return g.quoted_until('"'), '[^"]*'
            body = g.not_class(c) + "*"
            return body, body
        body = g.NOT_WS_CLASS + "*?"
        return body, body

    def _assemble(self) -> None:
        full: list[str] = ["^(?P<g0>)"]
        fast: list[str] = ["^(?P<g0>)"]
        self._validators: list[tuple[int, str]] = []  # (group number, anchored regex) on clean lines
        self._piece_groups: list[list[int]] = []
        self._fast_pieces: list[tuple[str, list[int]]] = []  # (fast regex, group numbers) per piece
        counter = 1
        for i, p in enumerate(self.pieces):
            if p.kind == "string":
                body_full, body_fast = self._resolve_string(i)
                rf, rq = f"(?P<@>{body_full})", f"(?P<@>{body_fast})"
            elif p.kind == "ws":
                # A whitespace piece matches exactly one character on clean lines (no doubled space,
                # no other whitespace character), so a single space is equivalent there.
                rf, rq = p.regex, " "
            else:
                rf = p.regex
                rq = p.fast if p.fast is not None else p.regex
                nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
                if p.run and p.ngroups == 1 and nxt is not None and self._cannot_extend(p.run, nxt):
                    # The capture must end where the next piece starts, and the next piece starts with
                    # a character the field can never contain: so the capture is exactly the maximal
                    # run, provided the run is a valid value (checked afterwards).
                    self._validators.append((counter, _ungroup(p.regex), p.run_valid))
                    rq = f"(?P<@>{p.run}+)"
            groups = []
            for _ in range(rf.count("(?P<@>")):
                groups.append(counter)
                counter += 1
            self._piece_groups.append(groups)
            self._fast_pieces.append((rq, groups))
            full.append(_number_groups(rf, groups))
            fast.append(_number_groups(rq, groups))
        self.ngroups = counter
        self.full_pattern = "".join(full)
        self.fast_pattern = "".join(fast)
        self._full = re.compile(self.full_pattern)
        self._fast = re.compile(self.fast_pattern) if self.fast_pattern != self.full_pattern else None
        self._py_validators = [
            (n + 1, fn or re.compile(f"(?:{rx})\\Z").match) for n, rx, fn in self._validators
        ]

    @staticmethod
    def _cannot_extend(run: str, nxt: Piece) -> bool:
        run_re = re.compile(run)
        if nxt.kind == "ws":
            return not any(run_re.match(c) for c in g.WS_CHARS)
        if nxt.kind == "literal":
            text = _literal_text(nxt)
            return bool(text) and not run_re.match(text[0])
        return False

    def _build_plan(self) -> None:
        """Order outputs as record keys (headers first, then fields in format order)."""
        outputs: list[tuple[int, Output]] = []
        for p, groups in zip(self.pieces, self._piece_groups, strict=True):
            for out in p.outputs:
                outputs.append((groups[out.group], out))
        names: list[str] = []
        for _, out in outputs:
            if out.name not in names:
                names.append(out.name)
        for d in self.derived:
            for n in d.names:
                if n not in names:
                    names.append(n)
        headers = [h for h in HEADER_ORDER if h in names or h in self.constants]
        self.columns = headers + [n for n in names if n not in HEADER_ORDER]
        rank = {n: i for i, n in enumerate(self.columns)}
        self.outputs = sorted(outputs, key=lambda t: rank[t[1].name])
        self.schema = {}
        self._dtypes: dict[str, pl.DataType] = {}
        for _, out in outputs:
            self._dtypes[out.name] = out.dtype
            if out.name not in HEADER_DTYPES:
                self.schema[out.name] = (out.vtype, out.rep)
        for d in self.derived:
            for n, dt, vt in zip(d.names, d.dtypes, d.vtypes, strict=True):
                self._dtypes.setdefault(n, dt)
                if n not in HEADER_DTYPES:
                    self.schema.setdefault(n, (vt, ""))
        for k in self.constants:
            self._dtypes[k] = HEADER_DTYPES.get(k, pl.String())
        self._decode_groups = self._codegen()
        self._compile_scan()

    def _compile_scan(self) -> None:
        """The line scanner's program (`linescan`), with the conversions it can do for us: an output
        of its own group ("int", "clf"), and derived fields from a field that is the capture as is
        on the lines the scanner takes (no backslash there, so an unescape changes nothing)."""
        conversions: dict[int, str] = {}
        by_group: dict[int, list[Output]] = {}
        for gnum, out in self.outputs:
            by_group.setdefault(gnum, []).append(out)
        for gnum, outs in by_group.items():
            if len(outs) == 1 and outs[0].native:
                conversions[gnum] = outs[0].native
        self._native_derived: list[tuple[Derived, int]] = []
        for d in self.derived:
            sources = [(g, o) for g, o in self.outputs if o.name == d.source]
            if not d.native or len(sources) != 1:
                continue
            gnum, out = sources[0]
            if len(by_group[gnum]) == 1 and (out.py is None or out.guard == "\\") and gnum not in conversions:
                conversions[gnum] = d.native
                self._native_derived.append((d, gnum))
        self.scan_program = linescan.compile_program(
            self._fast_pieces, {n: rx for n, rx, _ in self._validators}, conversions
        )
        if self.scan_program is None:
            self._native_derived = []

    def _codegen(self) -> Callable[[tuple], dict[str, Any]]:
        """Generate the per-line record builder (straight-line code: the hot path)."""
        env: dict[str, Any] = {}
        lines = ["def build(g):", "    r = {}"]
        emitted_constants: set[str] = set()
        for col in self.columns:
            if col in self.constants and col not in emitted_constants:
                env[f"k_{len(env)}"] = self.constants[col]
                lines.append(f"    r[{col!r}] = k_{len(env) - 1}")
                emitted_constants.add(col)
            for n, out in self.outputs:
                if out.name != col:
                    continue
                lines.append(f"    s = g[{n}]")
                lines.append("    if s is not None:")
                if out.py is None:
                    lines.append(f"        r[{col!r}] = s")
                elif out.py is int:
                    # a Heka integer is 64-bit: a bigger number cannot be decoded (both paths reject it)
                    lines.append("        v = int(s)")
                    lines.append("        if v >> 63 not in (0, -1): raise OverflowError(s)")
                    lines.append(f"        r[{col!r}] = v")
                elif out.guard is not None:
                    fname = f"f_{len(env)}"
                    env[fname] = out.py
                    lines.append(f"        r[{col!r}] = s if {out.guard!r} not in s else {fname}(s)")
                else:
                    fname = f"f_{len(env)}"
                    env[fname] = out.py
                    lines.append(f"        v = {fname}(s)")
                    if out.dtype == pl.Int64():  # a Heka integer is 64-bit
                        lines.append("        if v is not None and v >> 63 not in (0, -1): raise ValueError")
                    lines.append(f"        if v is not None: r[{col!r}] = v")
        for i, d in enumerate(self.derived):
            if d.inline is not None:
                code, names = d.inline
                env.update(names)
                lines.extend(code)
            else:
                env[f"dp_{i}"] = d.py
                lines.append(f"    dp_{i}(r)")
        lines.append("    return r")
        exec("\n".join(lines), env)  # noqa: S102 - code generated from our own format compiler
        return env["build"]

    # -- streaming ----------------------------------------------------------------------------
    def decode(self, line: str) -> dict[str, Any] | None:
        """One line -> flat record, or None when it does not match (see `explain_failure`)."""
        if line[-1:] in ("\n", "\r"):
            line = line[:-1] if line[-1] == "\r" else (line[:-2] if line[-2:] == "\r\n" else line[:-1])
        fast = self._fast
        if fast is not None and not (
            "\\" in line
            or "  " in line
            or "\t" in line
            or "\r" in line
            or "\n" in line
            or "\x0b" in line
            or "\x0c" in line
        ):
            m = fast.match(line)
            if m is None:
                return None
            for n, valid in self._py_validators:
                if not valid(m.group(n)):
                    return None
        else:
            m = self._full.match(line)
            if m is None:
                return None
        try:
            return self._decode_groups(m.groups())
        except (ValueError, KeyError, OverflowError, IndexError):
            return None

    def explain_failure(self, line: str) -> str:
        """Where and why `line` does not decode: the column where matching stopped and what was expected."""
        line = line.rstrip("\n").rstrip("\r")
        m = self._full.match(line)
        if m is not None:
            for n, out in self.outputs:
                s = m.group(f"g{n}")
                if s is None or out.py is None:
                    continue
                try:
                    out.py(s)
                except (ValueError, KeyError, OverflowError, IndexError) as exc:
                    return f"field {out.name!r}: cannot convert {s!r} ({exc})"
            return "line matches but could not be converted"
        pos = 0
        for k in range(1, len(self.pieces) + 1):
            rx = re.compile("".join(_ungroup(self._piece_regex(i)) for i in range(k)))
            mk = rx.match(line)
            if mk is None:
                p = self.pieces[k - 1]
                found = line[pos : pos + 24]
                what = p.description or p.kind
                return f"column {pos + 1}: expected {what} for {p.source!r} (piece {k}), found {found!r}" + (
                    "" if found else " (end of line)"
                )
            pos = mk.end()
        return "line does not match the format"

    def _piece_regex(self, i: int) -> str:
        p = self.pieces[i]
        if p.kind == "string":
            return f"(?P<@>{self._resolve_string(i)[0]})"
        return p.regex

    def _string_description(self, i: int) -> str:
        nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
        if nxt is None:
            return "text: the rest of the line"
        if nxt.kind == "ws":
            return "text up to whitespace"
        if nxt.kind == "literal":
            c = _literal_text(nxt)[0]
            extra = ' (\\" does not end it)' if c == '"' and self.pieces[i].quote_aware else ""
            return f"text up to {c!r}{extra}"
        return "text (as little as lets the next piece match)"

    def explain(self) -> list[dict[str, str]]:
        """Each piece of the compiled format: its text, what it accepts, the fields and types it yields."""
        rows = []
        for i, p in enumerate(self.pieces):
            fields = ", ".join(f"{o.name}: {_type_name(o)}" for o in p.outputs)
            rows.append(
                {
                    "piece": str(i + 1),
                    "format": repr(p.source) if p.kind == "ws" else p.source,
                    "kind": p.kind,
                    "accepts": self._string_description(i)
                    if p.kind == "string"
                    else p.description or ("regex " + self._piece_regex(i)),
                    "fields": fields,
                }
            )
        for d in self.derived:
            rows.append(
                {"piece": "+", "format": "", "kind": "derived", "accepts": "", "fields": ", ".join(d.names)}
            )
        return rows

    def explain_line(self, line: str) -> list[dict[str, str]]:
        """How `line` splits into the pieces (text each piece matched and the values)."""
        line = line.rstrip("\n").rstrip("\r")
        parts = [f"(?P<p{i}>{_ungroup(self._piece_regex(i))})" for i in range(len(self.pieces))]
        m = re.compile("".join(parts)).match(line)
        if m is None:
            return []
        rec = self.decode(line) or {}
        rows = []
        for i, p in enumerate(self.pieces):
            vals = ", ".join(f"{o.name}={rec.get(o.name)!r}" for o in p.outputs)
            rows.append(
                {
                    "piece": str(i + 1),
                    "format": repr(p.source) if p.kind == "ws" else p.source,
                    "matched": m.group(f"p{i}"),
                    "columns": f"{m.start(f'p{i}') + 1}-{m.end(f'p{i}')}",
                    "values": vals,
                }
            )
        if m.end() < len(line):
            rows.append(
                {
                    "piece": "",
                    "format": "(ignored: not part of the format)",
                    "matched": line[m.end() :],
                    "columns": f"{m.end() + 1}-{len(line)}",
                    "values": "",
                }
            )
        return rows

    # -- bulk ---------------------------------------------------------------------------------
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c: self._dtypes[c] for c in self.columns}

    def _validity(self, df: pl.DataFrame | None) -> pl.Expr:
        """On clean lines: every run-captured field must be a valid value (see `_assemble`)."""
        expr = pl.lit(True)
        for n, rx, _ in self._validators:
            expr = expr & pl.col(f"g{n}").str.contains(f"^(?:{rx})$").fill_null(True)
        return expr.alias("__valid")

    def _extract(self, lines: pl.Series, pattern: str, parallel: bool = True) -> pl.DataFrame:
        names = [f"g{i}" for i in range(self.ngroups)]
        if parallel and len(lines) >= _PARALLEL_MIN_ROWS:
            # polars runs one string kernel on one thread; split the column across two.
            half = len(lines) // 2
            parts = list(
                ordered_map(
                    lambda s: s.str.extract_groups(pattern).struct.unnest(), [lines[:half], lines[half:]], 2
                )
            )
            df = pl.concat(parts, how="vertical")
        else:
            df = lines.str.extract_groups(pattern).struct.unnest()
        return df.select(names)

    def frame_stream_chunks(self, stream: Any) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """Decode a binary stream of log lines chunk by chunk, in order: (rows, rejects with line
        numbers from the start of the stream). Two threads decode at once (the scanner and polars
        release the GIL).

        With the line scanner, chunks are read one after the other while the threads decode the
        ones before, and only a few chunks are held at a time: a consumer that writes each chunk
        out (`heka decode -f parquet`) needs memory for those chunks, not for the whole input.
        Without it, the stream is read whole first."""
        if self.scan_program is not None and linescan.available():

            def scan(chunk: memoryview) -> tuple[pl.DataFrame, pl.DataFrame, int]:
                # a copy of the decoder: `.rejects` is per call, and two threads call at once
                twin = copy.copy(self)
                df, lines = twin.frame_bytes(chunk)
                return df, twin.rejects, lines

            empty = True
            # (a ring: at most _THREADS + 1 chunks are in flight, see `ordered_map`)
            chunks = (chunk for chunk, _ in line_chunks(stream, _CHUNK_BYTES, ring=_THREADS + 2))
            for part in _numbered(ordered_map(scan, chunks, _THREADS)):
                empty = False
                yield part
            if empty:  # still one chunk: the columns, with no rows
                yield self.frame([]), _rejects_frame([], [], [])
            return
        data = stream.read()
        starts = [0]
        while starts[-1] < len(data):
            end = data.find(b"\n", starts[-1] + _CHUNK_BYTES)
            starts.append(len(data) if end < 0 else end + 1)
        if len(starts) <= 2:
            df = self.frame(lines_series_from_bytes(data))
            yield df, self.rejects if self.rejects is not None else _rejects_frame([], [], [])
            return

        def one(i: int) -> tuple[pl.DataFrame, pl.DataFrame, int]:
            series = lines_series_from_bytes(data[starts[i] : starts[i + 1]])
            df, rej = self._frame_chunk(_as_series(series), parallel=False)
            return df, rej, len(series)

        yield from _numbered(ordered_map(one, range(len(starts) - 1), _THREADS))

    def frame(self, lines: Iterable[str] | pl.Series, columns: Collection[str] | None = None) -> pl.DataFrame:
        """Bulk decode: good rows as a DataFrame (columns as `decode` records); rejects in `.rejects`.

        Big inputs are decoded in chunks so the intermediate capture columns stay bounded. With
        `columns`, only those columns are returned (and only what they need is converted); which
        lines are rejected never depends on it.
        """
        raw = (
            lines.cast(pl.String) if isinstance(lines, pl.Series) else pl.Series(list(lines), dtype=pl.String)
        )
        if len(raw) <= _CHUNK_ROWS:
            df, self.rejects = self._frame_chunk(_as_series(raw), columns=columns)
            return df

        def one(i: int) -> tuple[pl.DataFrame, pl.DataFrame, int]:
            chunk = raw.slice(i * _CHUNK_ROWS, _CHUNK_ROWS)
            df, rej = self._frame_chunk(_as_series(chunk), False, columns)
            return df, rej, len(chunk)

        return self._joined(list(_numbered(ordered_map(one, range(-(-len(raw) // _CHUNK_ROWS)), _THREADS))))

    def _kept_names(self, columns: Collection[str] | None) -> set[str] | None:
        """The record keys to compute for `columns` (None: all). A derived field needs its source
        field; one whose sources are not named (`Derived.source`) needs everything."""
        if columns is None:
            return None
        keep = set(columns)
        for d in self.derived:
            if keep.intersection(d.names):
                if not d.source:
                    return None
                keep.add(d.source)
        if not keep.intersection([o.name for _, o in self.outputs]):
            return None  # at least one column, so the frame keeps its height
        return keep

    def _needed_derived(self, keep: Collection[str] | None) -> list[Derived]:
        """The derived fields to compute for the record keys `keep` (None: all)."""
        return [d for d in self.derived if keep is None or not set(keep).isdisjoint(d.names)]

    def _needed_native(self, keep: Collection[str] | None) -> list[tuple[Derived, int]]:
        """(derived, capture group) of the needed derived fields that the line scanner computes."""
        needed = self._needed_derived(keep)
        return [(d, gnum) for d, gnum in self._native_derived if any(d is n for n in needed)]

    def _finish_rows(
        self, good: pl.LazyFrame, keep: set[str] | None = None, all_scanned: bool = False
    ) -> pl.DataFrame:
        """Converted columns v0..vK of good rows -> records: same-name fields coalesced, derived
        fields, constants, the decoder's column order and dtypes (only `keep` when given).
        `all_scanned`: the line scanner took every row, so its derived parts are whole columns."""
        # Same name from several pieces: the last one that has a value wins.
        by_name: dict[str, list[str]] = {}
        for k, (_, out) in enumerate(self.outputs):
            if keep is None or out.name in keep:
                by_name.setdefault(out.name, []).append(f"v{k}")
        final = [
            pl.coalesce([pl.col(c) for c in reversed(cs)]).alias(name)
            if len(cs) > 1
            else pl.col(cs[0]).alias(name)
            for name, cs in by_name.items()
        ]
        # derived fields the line scanner computed (see `_convert`) come along
        native = {id(d): g for d, g in self._needed_native(keep)}
        carried = good.collect_schema().names()
        has_native = "__scanned" in carried  # (only when one of them is needed)
        if has_native:
            parts = [n for g in native.values() for n in linescan.request_part_names(g)]
            final += [pl.col(n) for n in parts if n in carried]
            final.append(pl.col("__scanned"))
        out_lf = good.select(final) if final else good.select(pl.lit(0).alias("__n"))
        for d in self._needed_derived(keep):
            if has_native and id(d) in native:
                wanted = [n for n in d.names if keep is None or n in keep]
                if all_scanned:
                    names = linescan.request_part_names(native[id(d)])
                    pairs = zip(d.names, d.parts, strict=True)
                    out_lf = out_lf.with_columns(pl.col(names[k]).alias(n) for n, k in pairs if n in wanted)
                else:
                    out_lf = _scanned_parts(out_lf.collect(), d, native[id(d)], wanted).lazy()
            else:
                # expression-only steps join the same query; the others need the data in hand
                out_lf = d.frame(out_lf) if d.lazy else d.frame(out_lf.collect()).lazy()
        # constants, column order and dtypes in the same query (a file is many chunks: each
        # collect has a fixed cost)
        constants = {k: v for k, v in self.constants.items() if keep is None or k in keep}
        out_lf = out_lf.with_columns(pl.lit(v, dtype=self._dtypes[k]).alias(k) for k, v in constants.items())
        names = out_lf.collect_schema().names()
        wanted = [c for c in self.columns if c in names and (keep is None or c in keep)]
        dtypes = self.polars_schema()
        return out_lf.select(pl.col(c).cast(dtypes[c], strict=False) for c in wanted).collect()

    def frame_bytes(
        self, data: bytes | memoryview, columns: Collection[str] | None = None
    ) -> tuple[pl.DataFrame, int]:
        """Bulk decode raw bytes of whole lines (as `frame` does their lines): (good rows, number of
        lines); rejects in `.rejects`. The compiled line scanner cuts the lines when the format has a
        scan program (see `linescan`), polars' regex engine otherwise."""
        program = self.scan_program
        if program is None or not linescan.available() or len(data) >= 1 << 31:
            series = lines_series_from_bytes(bytes(data))
            return self.frame(series, columns), len(series)
        keep = self._kept_names(columns)
        asked = None if columns is None else set(columns)
        scanned = linescan.scan(data, program, self._scan_emit(keep, asked))
        valid = pl.lit(True)
        for gnum, rx in program.validators:
            valid = valid & pl.col(f"g{gnum}").str.contains(rx)
        groups = scanned.groups.with_columns(
            pl.lit("").alias("g0"), valid.alias("__valid"), pl.lit(True).alias("__scanned")
        )
        if scanned.declined:
            texts = [str(data[a:b], "utf-8", "backslashreplace") for _, a, b in scanned.declined]
            rows = pl.Series("__row", [row for row, _, _ in scanned.declined], dtype=pl.Int64)
            rest = self._groups(_as_series(pl.Series("line", texts, dtype=pl.String)), parallel=False)
            rest = rest.with_columns(rows, pl.lit(False).alias("__scanned"), *self._unscanned_conversions())
            # the scanner's frame lacks the columns nobody asked for: null there (see `_scan_emit`)
            groups = pl.concat([groups, rest], how="diagonal").sort("__row")

        def lines_at(rows: pl.Series) -> pl.Series:
            return _as_series(lines_series_from_bytes(bytes(data))).gather(rows)

        df, self.rejects = self._convert(groups, lines_at, columns)
        return df, scanned.n_lines

    def _without_sources(self, df: pl.DataFrame, columns: Collection[str] | None) -> pl.DataFrame:
        """`df` without the source fields of derived fields that were only there for them (the
        scanner does not return their text: see `_scan_emit`)."""
        if columns is None:
            return df
        keep = self._kept_names(columns)
        unasked = {d.source for d in self._needed_derived(keep) if d.source} - set(columns)
        return df.drop([c for c in unasked if c in df.columns])

    def _scan_emit(self, keep: set[str] | None, asked: set[str] | None) -> dict[int, int]:
        """Which columns the scanner returns for the record keys `keep` (None: all) when `asked`
        were asked for: a field's converted column when the scanner converts it, else its text;
        the text of fields that polars still checks or converts (they may reject the line); the
        parts of a derived field that are needed, and its source's text only if asked for. The
        scanner's own conversions cannot reject a line it takes (it declines it instead)."""
        assert self.scan_program is not None
        program = self.scan_program
        native = self._needed_native(keep)
        sources = {d.source for d, _ in native}
        emit: dict[int, int] = {}
        for gnum, out in self.outputs:
            converted = program.conversions.get(gnum) in ("int", "clf")
            only_a_source = asked is not None and out.name in sources and out.name not in asked
            if keep is None or (out.name in keep and not only_a_source):
                flag = linescan.CONVERTED if converted else linescan.VALUES
            elif out.py is None or out.exact_vec or converted or out.guard == "\\":
                continue  # (a guard of a backslash: the identity on every line the scanner takes)
            else:
                flag = linescan.VALUES
            emit[gnum] = emit.get(gnum, 0) | flag
        for gnum, _ in program.validators:
            emit[gnum] = emit.get(gnum, 0) | linescan.VALUES
        for d, gnum in native:
            for name, k in zip(d.names, d.parts, strict=True):
                if keep is None or name in keep:
                    emit[gnum] = emit.get(gnum, 0) | linescan.CONVERTED << k
        return emit

    def _unscanned_conversions(self) -> list[pl.Expr]:
        """For lines the scanner handed back: its conversion columns, computed the polars way (a
        converted value as the output's `vec` gives it; derived parts null, `_finish_rows` fills them)."""
        assert self.scan_program is not None
        exprs: list[pl.Expr] = []
        for gnum, conversion in self.scan_program.conversions.items():
            if conversion == "request":
                names = linescan.request_part_names(gnum)
                exprs.extend(pl.lit(None, dtype=pl.String).alias(n) for n in names)
                continue
            out = next(o for g, o in self.outputs if g == gnum)
            val = out.vec(pl.col(f"g{gnum}")) if out.vec is not None else pl.lit(None)
            exprs.append(val.cast(out.dtype, strict=False).alias(linescan.converted_name(gnum)))
        return exprs

    def _frame_chunk(
        self, series: pl.Series, parallel: bool = True, columns: Collection[str] | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(good rows, rejects) of one chunk of lines (see `_convert`)."""
        return self._convert(self._groups(series, parallel), series.gather, columns)

    def _conversion_plan(
        self, keep: frozenset[str] | None, present: frozenset[str]
    ) -> tuple[list[pl.Expr], list[tuple[int, int, Output]]]:
        """The query that converts capture columns `present` for the record keys `keep` (None: all),
        and the outputs that may need the per-value fallback. Cached: a file is many chunks, and
        building the expressions costs more than running them on a small chunk."""
        cache = self.__dict__.setdefault("_plans", {})
        plan = cache.get((keep, present))
        if plan is not None:
            return plan
        # One query converts every capture column (polars spreads the columns over the cores).
        exprs: list[pl.Expr] = [
            pl.col("__row"),
            (pl.col("g0").is_not_null() & pl.col("__valid")).alias("__ok"),
        ]
        fallbacks: list[tuple[int, int, Output]] = []
        for k, (gnum, out) in enumerate(self.outputs):
            # (a column the line scanner was not asked for has no value on any line: see `_scan_emit`)
            src = pl.col(f"g{gnum}") if f"g{gnum}" in present else pl.lit(None, dtype=pl.String)
            if keep is not None and out.name not in keep and (out.py is None or out.exact_vec):
                continue  # not asked for, and its conversion can never reject the line
            if out.py is None:
                val = src
            elif linescan.converted_name(gnum) in present:
                val = pl.col(linescan.converted_name(gnum))  # converted by the scanner (or as `vec`)
            elif out.vec is not None:
                val = out.vec(src)
            else:
                val = pl.lit(None, dtype=out.dtype)
            exprs.append(val.cast(out.dtype, strict=False).alias(f"v{k}"))
            if out.py is not None and not out.exact_vec:
                exprs.append((src.is_not_null() & val.is_null()).alias(f"n{k}"))
                fallbacks.append((k, gnum, out))
        needed = self._needed_native(keep)
        if needed and "__scanned" in present:
            for _, gnum in needed:
                exprs.extend(pl.col(n) for n in linescan.request_part_names(gnum) if n in present)
            exprs.append(pl.col("__scanned"))
        cache[(keep, present)] = exprs, fallbacks
        return exprs, fallbacks

    def _convert(
        self,
        groups: pl.DataFrame,
        lines_at: Callable[[pl.Series], pl.Series],
        columns: Collection[str] | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(good rows, rejects) from capture columns (see `_groups`): vectorised conversion, per-value
        fallback. `lines_at(rows)` gives the text of rejected lines. With `columns`, only the fields
        they need are converted (see `frame`)."""
        keep = self._kept_names(columns)
        exprs, fallbacks = self._conversion_plan(
            None if keep is None else frozenset(keep), frozenset(groups.columns)
        )
        conv = groups.lazy().select(exprs).collect()
        reasons: pl.Series | None = None
        for k, gnum, out in fallbacks:
            need = conv[f"n{k}"]
            if not need.any():
                continue
            values, errors = _fallback(groups[f"g{gnum}"], need, out)
            conv = conv.with_columns(pl.when(need).then(values).otherwise(pl.col(f"v{k}")).alias(f"v{k}"))
            if errors is not None:
                conv = conv.with_columns((pl.col("__ok") & ~errors).alias("__ok"))
                msg = pl.lit(f"field {out.name!r}: cannot convert")
                reasons = (
                    errors.to_frame("e").select(pl.when(pl.col("e")).then(msg)).to_series()
                    if reasons is None
                    else pl.select(
                        pl.when(errors & reasons.is_null()).then(msg).otherwise(reasons)
                    ).to_series()
                )
        all_scanned = "__scanned" in conv.columns and bool(conv["__scanned"].all())
        good = self._finish_rows(conv.lazy().filter(pl.col("__ok")), keep, all_scanned)
        out_df = self._without_sources(good, columns)
        bad = ~conv["__ok"]
        bad_rows = conv["__row"].filter(bad)
        bad_lines = lines_at(bad_rows) if len(bad_rows) else pl.Series([], dtype=pl.String)
        bad_reasons = (
            reasons.filter(bad) if reasons is not None else pl.Series([None] * len(bad_rows), dtype=pl.String)
        )
        rejects = pl.DataFrame(
            {
                "lineno": bad_rows + 1,
                "line": bad_lines,
                "reason": bad_reasons.fill_null("line does not match the format"),
            }
        )
        return out_df, rejects

    def _groups(self, series: pl.Series, parallel: bool = True) -> pl.DataFrame:
        """Capture columns g0..gN, ``__valid`` and ``__row`` (original position) for every line."""
        n = len(series)
        idx = pl.Series("__row", range(n), dtype=pl.Int64)
        if n == 0:
            empty = {f"g{i}": pl.Series([], dtype=pl.String) for i in range(self.ngroups)}
            return pl.DataFrame(empty).with_columns(pl.lit(True).alias("__valid"), idx)
        if self._fast is None:
            return self._extract(series, self.full_pattern, parallel).with_columns(
                pl.lit(True).alias("__valid"), idx
            )
        unclean = (
            series.str.contains("\\", literal=True)
            | series.str.contains("  ", literal=True)
            | series.str.contains(r"[\t\n\x0b\x0c\r]")
        ).fill_null(True)
        if not unclean.any():
            return self._extract(series, self.fast_pattern, parallel).with_columns(self._validity(None), idx)
        clean = self._extract(series.filter(~unclean), self.fast_pattern, parallel)
        clean = clean.with_columns(self._validity(None), idx.filter(~unclean))
        dirty = self._extract(series.filter(unclean), self.full_pattern, parallel)
        dirty = dirty.with_columns(pl.lit(True).alias("__valid"), idx.filter(unclean))
        return pl.concat([clean, dirty], how="vertical").sort("__row")


def _scanned_parts(df: pl.DataFrame, d: Derived, group: int, wanted: list[str]) -> pl.DataFrame:
    """`d`'s fields `wanted`: the parts the line scanner split off capture `group`, and `d.frame` on
    the rows it did not scan."""
    names = linescan.request_part_names(group)
    parts = {n: df[names[k]].clone() for n, k in zip(d.names, d.parts, strict=True) if n in wanted}
    unscanned = ~df["__scanned"]
    if unscanned.any():
        rows = unscanned.arg_true()
        computed = d.frame(df.filter(unscanned))
        for n, part in parts.items():
            part.scatter(rows, computed[n])
    return df.with_columns([part.alias(n) for n, part in parts.items()])


def _fallback(s: pl.Series, need: pl.Series, out: Output) -> tuple[pl.Series, pl.Series | None]:
    """`out.py` on the rows the vectorised form could not convert (each distinct text once).

    Returns the values (null elsewhere) and the rows whose text made `out.py` raise (or None).
    """
    keys = s.filter(need).unique().to_list()
    good_k: list[str] = []
    good_v: list[Any] = []
    bad_k: list[str] = []
    for k in keys:
        try:
            val = out.py(k)  # type: ignore[misc]
            if isinstance(val, int) and out.dtype == pl.Int64() and val >> 63 not in (0, -1):
                raise OverflowError(k)  # as `decode`: a Heka integer is 64-bit
        except (ValueError, KeyError, OverflowError, IndexError):
            bad_k.append(k)
            continue
        if val is not None:
            good_k.append(k)
            good_v.append(val)
    values = s.replace_strict(
        pl.Series(good_k, dtype=pl.String),
        pl.Series(good_v, dtype=out.dtype),
        default=None,
        return_dtype=out.dtype,
    )
    errors = s.is_in(bad_k).fill_null(False) if bad_k else None
    return values, errors


def _number_groups(regex: str, numbers: list[int]) -> str:
    parts = regex.split("(?P<@>")
    out = [parts[0]]
    for n, rest in zip(numbers, parts[1:], strict=True):
        out.append(f"(?P<g{n}>")
        out.append(rest)
    return "".join(out)


def _ungroup(regex: str) -> str:
    """The regex with our placeholder capture groups made non-capturing."""
    return re.sub(r"\(\?P<(?:@|g[0-9]+)>", "(?:", regex)


def _literal_text(p: Piece) -> str:
    return getattr(p, "literal", None) or p.source


def _type_name(o: Output) -> str:
    base = {pl.Int64(): "int", pl.Float64(): "float", pl.String(): "string"}.get(o.dtype, str(o.dtype))
    return base + (f" ({o.rep})" if o.rep else "")


def literal_piece(text: str, source: str | None = None) -> Piece:
    """A literal that must appear verbatim (after the format's own escape processing)."""
    p = Piece(
        "literal", source if source is not None else text, g.escape(text), description=f"the text {text!r}"
    )
    p.literal = text  # type: ignore[attr-defined]
    return p


def ws_piece(source: str, one_or_more: bool = True) -> Piece:
    """Whitespace in the format: one or more whitespace characters (exactly one for rsyslog)."""
    rx = g.WS_CLASS + ("+" if one_or_more else "")
    return Piece("ws", source, rx, description="whitespace")


def string_piece(source: str, outputs: list[Output]) -> Piece:
    """An untyped variable: text up to where the next piece can start."""
    return Piece("string", source, "", outputs, description="text")


def field_piece(
    source: str,
    regex: str,
    outputs: list[Output],
    description: str,
    *,
    run: str | None = None,
    run_valid: Callable[[str], bool] | None = None,
) -> Piece:
    """A typed field; `regex` holds one (?P<@>...) group per output group."""
    return Piece("field", source, regex, outputs, description, run=run, run_valid=run_valid)
