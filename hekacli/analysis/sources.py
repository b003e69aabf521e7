"""Turn FILES arguments into one polars LazyFrame of flat records.

Accepted inputs, recognised by their first bytes (not their names): raw log lines (decoded with a
`hekacli.parsers` decoder; nginx combined is tried by default), JSON Lines (as written by `heka decode`),
Parquet, and framed Heka streams. Any of them may be gzip-compressed; ``-`` reads stdin; globs are
expanded. JSONL and Parquet files on disk are scanned lazily so only the columns a query needs are read.

Lines that cannot be decoded are never dropped silently: they are counted per file and the first few
are kept (file, line number, text) so commands can report them.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from hekacli.errors import DecodeError, HekaError, InputError, UsageError, read_errors, reading
from hekacli.logfiles import GZIP_MAGIC, is_gzip, open_binary, read_bytes
from hekacli.ordered_map import ordered_map

KINDS = ("auto", "log", "jsonl", "parquet", "heka")
MAX_KEPT_REJECTS = 20

# Tried in order on a raw log when no format was given: the richest format that fits every sampled
# line wins, so `$request_time` is picked up when it is logged after the combined fields.
NGINX_COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
AUTO_NGINX_FORMATS: tuple[tuple[str, str], ...] = (
    ("nginx combined + $request_time", NGINX_COMBINED + " $request_time"),
    (
        "nginx combined + $http_x_forwarded_for + $request_time",
        NGINX_COMBINED + ' "$http_x_forwarded_for" $request_time',
    ),
    ("nginx combined", NGINX_COMBINED),
    ("nginx common", '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'),
)
SNIFF_LINES = 50
CHUNK_BYTES = 8 << 20  # raw text decoded per bulk call (each call has a fixed cost; memory grows with it)
DECODE_THREADS = 2  # chunks decoded at once (the machine this was tuned on has 2 cores)


@dataclass
class Reject:
    """One input line (or record) that could not be decoded."""

    file: str
    line: int | None
    text: str
    reason: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason or 'does not match the format'}: {self.text[:200]!r}"


@dataclass
class SourceInfo:
    """What was read from one input."""

    path: str
    kind: str
    size: int | None = None
    decoder: str | None = None
    rows: int | None = None
    rejected: int = 0
    fields: list[str] = field(default_factory=list)  # every field the input offers (before pruning)
    units: dict[str, str] = field(default_factory=dict)  # field -> representation ("s", "us", "B"…)


@dataclass
class Dataset:
    """Records from all inputs as one LazyFrame, plus what was read and rejected."""

    lf: pl.LazyFrame
    sources: list[SourceInfo] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    @property
    def fields(self) -> list[str]:
        """Every field of every input, plus the columns the analyzer can derive from them."""
        names = {f for s in self.sources for f in s.fields}
        for derived, sources in DERIVED_FROM.items():
            if any(src in names for src in sources):
                names.add(derived)
        return sorted(names)

    def unit(self, name: str) -> str:
        """The representation the decoders gave a field ("" when unknown or when inputs disagree)."""
        seen = {s.units.get(name, "") for s in self.sources if name in s.fields}
        return seen.pop() if len(seen) == 1 else ""

    @property
    def total_size(self) -> int:
        return sum(s.size or 0 for s in self.sources)


@dataclass
class DecoderChoice:
    """A decoder picked by the user (`kind` + options) or None for auto-detection."""

    kind: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def explicit(self) -> bool:
        return self.kind is not None


def expand_inputs(args: Iterable[str]) -> list[str]:
    """Expand globs; keep ``-`` (stdin). Missing files and empty globs are InputErrors."""
    out: list[str] = []
    for arg in args:
        if arg == "-":
            out.append(arg)
        elif glob.has_magic(arg):
            hits = sorted(p for p in glob.glob(arg) if os.path.isfile(p))
            if not hits:
                raise InputError("no file matches this pattern", file=arg)
            out.extend(hits)
        elif os.path.isdir(arg):
            raise InputError("is a directory (give files or a glob such as DIR/*.log)", file=arg)
        elif not os.path.exists(arg):
            raise InputError("no such file", file=arg)
        else:
            out.append(arg)
    if not out:
        raise UsageError("no input files (give FILES, or - for stdin)")
    return out


def _read_head(path: str) -> bytes:
    with open_binary(path) as stream:
        return stream.read(65536)


def sniff_kind(head: bytes) -> str:
    """Guess the input kind from its first bytes."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1] == b"\x1e":
        return "heka"
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        return "jsonl"
    return "log"


# --- raw logs ---------------------------------------------------------------------------------------


def _decoder_rejects(decoder: Any) -> tuple[int, list[tuple[int, str, str]]]:
    """How many lines the last bulk decode rejected, and the first few as (line number, text, reason).

    `Decoder.frame` leaves them in ``decoder.rejects`` (columns lineno, line, reason).
    """
    value = getattr(decoder, "rejects", None)
    if value is None or value.height == 0:
        return 0, []
    first = value.head(MAX_KEPT_REJECTS).select("lineno", "line", "reason").iter_rows()
    return value.height, [(int(n), str(t), str(r or "")) for n, t, r in first]


def build_decoder(kind: str, options: dict[str, Any]) -> Any:
    """`hekacli.parsers.build_decoder`, with a clear error when the decoders are not available."""
    try:
        from hekacli.parsers import build_decoder as _build
    except ImportError as exc:
        raise UsageError("the log decoders are not available in this installation") from exc
    return _build(kind, **options)


def _decoder_name(choice: DecoderChoice) -> str:
    if choice.options.get("log_format"):
        return f"{choice.kind} log_format {choice.options['log_format']!r}"
    return str(choice.kind)


def choose_decoder(path: str, sample_lines: list[str], choice: DecoderChoice) -> tuple[Any, str]:
    """The decoder for a raw log: the user's, or the first nginx format that fits every sampled line."""
    decoder, name, _ = choose_decoder_factory(path, sample_lines, choice)
    return decoder, name


def choose_decoder_factory(
    path: str, sample_lines: list[str], choice: DecoderChoice
) -> tuple[Any, str, tuple[str, dict[str, Any]]]:
    """`choose_decoder` plus the (kind, options) that build the same decoder again (in a worker)."""
    if choice.explicit:
        kind, options = choice.kind or "nginx", dict(choice.options)
        return build_decoder(kind, options), _decoder_name(choice), (kind, options)
    lines = [ln for ln in sample_lines if ln.strip()][:SNIFF_LINES]
    if not lines:  # an empty log: nothing to decode, any format will do
        spec = ("nginx", {"log_format": NGINX_COMBINED})
        return build_decoder(*spec), "nginx combined", spec
    # The format that fits the most sampled lines wins (the richer one on a tie); a stray bad line
    # among them is then just a rejected line, but a format must fit at least half of them.
    best: tuple[int, Any, str, str] | None = None
    for name, fmt in AUTO_NGINX_FORMATS:
        decoder = build_decoder("nginx", {"log_format": fmt})
        fits = sum(decoder.decode(ln) is not None for ln in lines)
        if best is None or fits > best[0]:
            best = (fits, decoder, name, fmt)
    if best is not None and lines and best[0] * 2 >= len(lines):
        _, decoder, name, fmt = best
        return decoder, name, ("nginx", {"log_format": fmt})
    # Nothing fits: name the first line the plain combined format rejects, and why.
    combined = build_decoder("nginx", {"log_format": NGINX_COMBINED})
    for number, ln in enumerate(sample_lines, 1):
        if ln.strip() and combined.decode(ln) is None:
            why = ""
            try:
                why = combined.explain_failure(ln)
            except Exception:  # noqa: BLE001 - an explanation is a bonus, the error stands anyway
                why = ""
            raise DecodeError(
                "not an nginx combined access log"
                + (f" ({why})" if why else "")
                + "; give the format with --log-format, --nginx-conf, --apache or --rsyslog",
                file=path,
                line=number,
            )
    raise DecodeError("cannot recognise the log format", file=path)


def _decode_chunks(
    spec: tuple[str, dict[str, Any]],
    chunks: Iterator[tuple[memoryview, int]],
    columns: set[str] | None = None,
    workers: int | None = None,
) -> Iterator[tuple[pl.DataFrame, list[str], int, list[tuple[int, str, str]], int, int]]:
    """Decode chunks in input order, `workers` at a time: (records, all field names, rejected count,
    first rejects, number of lines, bytes consumed).

    polars releases the GIL inside its kernels, so two threads keep both cores busy. A decoder keeps
    the rejects of its last `frame` call on itself, so every thread builds its own from `spec`; at
    most `workers` + 1 chunks are held at once, which bounds the memory.
    """
    from hekacli.parsers.core import lines_series_from_bytes

    workers = DECODE_THREADS if workers is None else workers
    local = threading.local()

    def run(data: memoryview) -> tuple[pl.DataFrame, list[str], int, list[tuple[int, str, str]], int]:
        decoder = getattr(local, "decoder", None)
        if decoder is None:
            decoder = local.decoder = build_decoder(*spec)
        all_fields = getattr(decoder, "columns", None)
        if all_fields is not None:
            # a compiled-format decoder takes the raw bytes, and converts only the fields the query reads
            wanted = _wanted_fields(all_fields, columns) if columns is not None else None
            df, n_lines = decoder.frame_bytes(data, columns=wanted)
        else:
            lines = lines_series_from_bytes(bytes(data))
            df, n_lines = decoder.frame(lines), len(lines)
            all_fields = df.columns
        count, first = _decoder_rejects(decoder)
        return _keep_columns(df, columns), list(all_fields), count, first, n_lines

    def run_counted(chunk: tuple[memoryview, int]) -> tuple[Any, ...]:
        data, consumed = chunk
        return (*run(data), consumed)

    yield from ordered_map(run_counted, chunks, workers)


def _keep_columns(df: pl.DataFrame, columns: set[str] | None) -> pl.DataFrame:
    """Only the fields that produce `columns`: for a derived column, the first source present
    (``request_uri`` rather than the whole ``request`` when the decoder already split it)."""
    if columns is None:
        return df
    keep = _wanted_fields(df.columns, columns)
    return df.select(keep) if len(keep) < df.width else df


def _wanted_fields(fields: list[str], columns: set[str]) -> list[str]:
    """The fields (in `fields` order) that produce `columns`; at least one, so a frame of N rows
    keeps its N rows (a bare `--count` needs no field)."""
    present = set(fields)
    wanted: set[str] = set()
    for c in columns:
        wanted.update(next(([s] for s in DERIVED_FROM.get(c, (c,)) if s in present), []))
    return [c for c in fields if c in wanted] or fields[:1]


def _units(decoder: Any) -> dict[str, str]:
    """Field -> representation from the decoder's schema (e.g. Apache %D request_time is "us")."""
    schema = getattr(decoder, "schema", None) or {}
    return {name: str(spec[1]) for name, spec in schema.items() if isinstance(spec, tuple) and len(spec) > 1}


def _from_cache(
    entry: Any, display: str, size: int | None, dname: str, on_progress: Callable[[int], None] | None
) -> tuple[pl.LazyFrame, SourceInfo, list[Reject]]:
    """A decoded log answered from the cache: its records, what its decode reported, its rejects."""
    meta = entry.meta
    if on_progress and size:
        on_progress(size)
    rejects = [Reject(display, n, t, why) for n, t, why in meta.get("rejects", [])]
    lf = entry.scan()
    info = SourceInfo(
        display,
        "log",
        size,
        dname,
        meta.get("rows"),
        meta.get("rejected", 0),
        lf.collect_schema().names(),
        dict(meta.get("units") or {}),
    )
    return lf, info, rejects


def decoder_identity(choice: DecoderChoice, name: str) -> str:
    """What the decoded columns depend on: kind, options (config files by content stamp) and format."""
    stamps = {}
    for key, value in choice.options.items():
        if key.endswith("_conf") and isinstance(value, str) and os.path.exists(value):
            st = os.stat(value)
            stamps[key] = [os.path.abspath(value), st.st_size, st.st_mtime_ns]
    return json.dumps([choice.kind, choice.options, stamps, name], sort_keys=True, default=str)


def load_log(
    path: str,
    choice: DecoderChoice,
    *,
    on_progress: Callable[[int], None] | None = None,
    columns: set[str] | None = None,
    use_cache: bool = True,
) -> tuple[pl.LazyFrame, SourceInfo, list[Reject]]:
    """Decode a raw log file (or stdin), `CHUNK_BYTES` of whole lines at a time.

    Chunking keeps the peak memory near the size of the result (not the text plus every temporary
    column) and lets the progress bar move; `columns` drops the fields no query needs right away.
    Big files on disk go through the decoded-log cache (`hekacli.analysis.cache`).
    """
    from . import cache

    display = "<stdin>" if path == "-" else path
    inputs = contextlib.ExitStack()  # (closed when decoding ends; stdin stays open)
    if path == "-":
        stream: Any = inputs.enter_context(open_binary(path))
        raw = None
        with read_errors(display):
            head = stream.peek(65536)[:65536]
        size = None
    else:
        try:
            size = os.path.getsize(path)
        except OSError:
            _read_head(path)  # raises the one-line "cannot read" error
            raise
        head = b""
    cached = use_cache and cache.enabled_for(path, size)
    choice_id = decoder_identity(choice, "")
    if cached:
        # The format sniffed last time for this very file state: a hit then needs no decoder at all.
        known = cache.remembered_format(path, choice_id)
        if known is not None:
            entry = cache.lookup(cache.entry_key(path, decoder_identity(choice, known)))
            if entry is not None:
                return _from_cache(entry, display, size, known, on_progress)
    if path != "-":
        head = _read_head(path)
    decoder, dname, spec = choose_decoder_factory(
        display, head.decode("utf-8", "replace").splitlines()[:SNIFF_LINES], choice
    )
    writer = None
    if cached:
        key = cache.entry_key(path, decoder_identity(choice, dname))
        entry = cache.lookup(key)
        if entry is not None:
            cache.remember_format(path, choice_id, dname)
            return _from_cache(entry, display, size, dname, on_progress)
        writer = cache.Writer(key)
    if path != "-":
        stream = inputs.enter_context(open_binary(path))
        raw = getattr(stream, "fileobj", stream)  # (the file's own offsets: a .gz is read compressed)
    frames: list[pl.DataFrame] = []
    raw_rejects: list[tuple[int, str, str]] = []
    n_rejected = 0
    first_line = 0
    fields: list[str] = []
    # The cache needs every column; otherwise only what the query reads is kept.
    from hekacli.parsers.core import line_chunks

    # `_decode_chunks` is done with a chunk before it takes DECODE_THREADS + 1 more
    chunks = reading(line_chunks(stream, CHUNK_BYTES, ring=DECODE_THREADS + 2, raw=raw), display)
    decoded = _decode_chunks(spec, chunks, None if writer is not None else columns)
    try:
        for df, all_fields, count, rejects, n_lines, consumed in decoded:
            if writer is not None:
                writer.add(df)
            if not fields:
                fields = all_fields
            frames.append(_keep_columns(df, columns) if writer is not None else df)
            n_rejected += count
            room = MAX_KEPT_REJECTS - len(raw_rejects)
            raw_rejects.extend((n + first_line, t, why) for n, t, why in rejects[: max(room, 0)])
            first_line += n_lines
            if on_progress:
                on_progress(consumed)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        inputs.close()
    if frames:
        df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    else:
        df = _keep_columns(decoder.frame([]), columns)
    rejects_out = [Reject(display, n, t, why) for n, t, why in raw_rejects]
    for r in rejects_out:
        if not r.reason or r.reason == "line does not match the format":
            try:
                r.reason = decoder.explain_failure(r.text)
            except Exception:  # noqa: BLE001 - explanation is optional
                pass
    if writer is not None:
        writer.commit(
            {
                "rows": df.height,
                "rejected": n_rejected,
                "decoder": dname,
                "rejects": [[r.line, r.text, r.reason] for r in rejects_out],
                "units": _units(decoder),
            }
        )
        cache.remember_format(path, choice_id, dname)
    info = SourceInfo(
        display, "log", size, dname, df.height, n_rejected, fields or df.columns, _units(decoder)
    )
    return df.lazy(), info, rejects_out


# --- JSON Lines -------------------------------------------------------------------------------------


def _jsonl_python(data: bytes, display: str) -> tuple[pl.DataFrame, int, list[Reject]]:
    """Slow, line-by-line JSONL reading that keeps going past bad lines and counts them."""
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    bad = 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            bad += 1
            if len(rejects) < MAX_KEPT_REJECTS:
                rejects.append(Reject(display, number, raw.decode("utf-8", "replace"), f"bad JSON: {exc}"))
            continue
        rows.append(obj)
    df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return df, bad, rejects


def load_jsonl(path: str) -> tuple[pl.LazyFrame, SourceInfo, list[Reject]]:
    """JSON Lines: scanned lazily when it is a plain file that polars reads cleanly."""
    display = "<stdin>" if path == "-" else path
    if path != "-":
        size = os.path.getsize(path)
        if not is_gzip(path):
            try:
                lf = pl.scan_ndjson(path, infer_schema_length=None)
                lf.collect_schema()
                # Fail now (not in the middle of a query) if a line is not valid JSON.
                lf.select(pl.len()).collect()
                return lf, SourceInfo(display, "jsonl", size), []
            except pl.exceptions.PolarsError:
                pass
    data = read_bytes(path)
    if path == "-":
        size = len(data)
    try:
        df = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
        return df.lazy(), SourceInfo(display, "jsonl", size, rows=df.height), []
    except pl.exceptions.PolarsError:
        df, bad, rejects = _jsonl_python(data, display)
        return df.lazy(), SourceInfo(display, "jsonl", size, rows=df.height, rejected=bad), rejects


# --- Parquet ----------------------------------------------------------------------------------------


def load_parquet(path: str) -> tuple[pl.LazyFrame, SourceInfo, list[Reject]]:
    display = "<stdin>" if path == "-" else path
    try:
        if path == "-" or is_gzip(path):
            data = read_bytes(path)
            lf = pl.read_parquet(io.BytesIO(data)).lazy()
            size = len(data)
        else:
            lf = pl.scan_parquet(path)
            lf.collect_schema()
            size = os.path.getsize(path)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=display) from exc
    return lf, SourceInfo(display, "parquet", size), []


# --- framed Heka streams ----------------------------------------------------------------------------


def load_heka(path: str) -> tuple[pl.DataFrame, SourceInfo, list[Reject]]:
    """A framed Heka protobuf stream: each message becomes a flat record (read as a stream)."""
    from hekacli.framing import Splitter, read_stream
    from hekacli.message import to_flat

    display = "<stdin>" if path == "-" else path
    splitter = Splitter()
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    undecodable = 0
    with open_binary(path) as stream:
        for rec in read_stream(stream, splitter=splitter):
            try:
                rows.append(to_flat(rec.message()))
            except HekaError as exc:
                undecodable += 1
                if len(rejects) < MAX_KEPT_REJECTS:
                    rejects.append(Reject(display, None, f"record at offset {rec.offset}", str(exc)))
    dropped = sum(splitter.dropped.values()) + undecodable
    if splitter.dropped and len(rejects) < MAX_KEPT_REJECTS:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(splitter.dropped.items()))
        rejects.append(Reject(display, None, "", f"dropped framed records ({reasons})"))
    df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    size = None if path == "-" else os.path.getsize(path)
    return df, SourceInfo(display, "heka", size, "heka protobuf", df.height, dropped), rejects


# --- all together -----------------------------------------------------------------------------------


def load(
    files: Iterable[str],
    *,
    kind: str = "auto",
    decoder: DecoderChoice | None = None,
    on_progress: Callable[[int], None] | None = None,
    columns: Iterable[str] | None = None,
    use_cache: bool = True,
) -> Dataset:
    """Read every input into one LazyFrame (columns unified across inputs; missing ones are null).

    `columns`: the fields the caller will use (None = all). Decoded logs and Heka streams keep only
    those (plus what derived columns are computed from); JSONL and Parquet are pruned lazily anyway.
    `use_cache`: let big raw logs use the decoded-log cache (see `hekacli.analysis.cache`).
    """
    keep = None if columns is None else set(columns)
    if kind not in KINDS:
        raise UsageError(f"unknown input format {kind!r} (choose from {', '.join(KINDS)})")
    choice = decoder or DecoderChoice()
    paths = expand_inputs(files)
    if paths.count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    frames: list[pl.LazyFrame] = []
    ds = Dataset(pl.LazyFrame())
    for path in paths:
        k = kind
        if k == "auto":
            if path == "-":
                # Peek at stdin without consuming it.
                buf = sys.stdin.buffer
                head = buf.peek(65536)[:65536] if hasattr(buf, "peek") else b""
                if head[:2] == GZIP_MAGIC:
                    with read_errors("<stdin>"):
                        data = gzip.decompress(buf.read())
                    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)))
                    head = data[:65536]
                k = sniff_kind(head)
            else:
                k = "log" if choice.explicit else sniff_kind(_read_head(path))
        if k == "log":
            lf, info, rejects = load_log(
                path, choice, on_progress=on_progress, columns=keep, use_cache=use_cache
            )
        elif k == "jsonl":
            lf, info, rejects = load_jsonl(path)
        elif k == "parquet":
            lf, info, rejects = load_parquet(path)
        else:
            df, info, rejects = load_heka(path)
            lf = _keep_columns(df, keep).lazy()
        if k != "log" and on_progress and info.size:
            on_progress(info.size)
        if not info.fields:
            info.fields = lf.collect_schema().names()
        ds.sources.append(info)
        ds.rejects.extend(rejects)
        frames.append(lf)
    non_empty = [f for f in frames if f.collect_schema().len()]
    if not non_empty:
        ds.lf = pl.LazyFrame()
    elif len(non_empty) == 1:
        ds.lf = non_empty[0]
    else:
        ds.lf = pl.concat(non_empty, how="diagonal_relaxed")
    return ds


# What the analyzer derives a column from (see columns.py and useragent.py).
DERIVED_FROM = {
    "Timestamp": ("Timestamp", "time"),
    "uri": ("uri", "request_uri", "request"),
    "args": ("args", "request_uri", "request"),
    "request_uri": ("request_uri", "request"),
    "request_method": ("request_method", "request"),
    "server_protocol": ("server_protocol", "request"),
    "user_agent_browser": ("user_agent_browser", "http_user_agent"),
    "user_agent_version": ("user_agent_version", "http_user_agent"),
    "user_agent_os": ("user_agent_os", "http_user_agent"),
}


def input_size(files: Iterable[str]) -> int:
    """Total bytes of the inputs on disk (0 for stdin); used to decide on a progress bar."""
    total = 0
    for p in files:
        if p != "-" and not glob.has_magic(p) and os.path.isfile(p):
            total += os.path.getsize(p)
        elif glob.has_magic(p):
            total += sum(os.path.getsize(x) for x in glob.glob(p) if os.path.isfile(x))
    return total
