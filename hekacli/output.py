"""Renderers for stdout shared by every command: JSONL, JSON, CSV/TSV, rich tables, Parquet.

Data goes to stdout, everything else to stderr. JSONL is the default when stdout is not a terminal,
a rich table when it is. Timestamps (int nanoseconds under ``Timestamp``) are written as RFC 3339 UTC
with nanoseconds.
"""

from __future__ import annotations

import base64
import csv
import functools
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from .errors import OutputClosed, UsageError

if TYPE_CHECKING:  # rich costs ~50 ms to import: only commands that draw something pay for it
    from rich.console import Console

FORMATS = ("jsonl", "json", "csv", "tsv", "table", "parquet")


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def default_format() -> str:
    """`table` on a terminal, `jsonl` when piped."""
    return "table" if stdout_is_terminal() else "jsonl"


def make_console(**options: Any) -> Console:
    """A rich Console (`options` as rich's); no colour with NO_COLOR. A closed pipe (`| head`)
    raises `OutputClosed`, which every command ends quietly with exit 0, where rich's own default
    would exit with 1."""
    options.setdefault("no_color", bool(os.environ.get("NO_COLOR")) or None)
    return _console_class()(**options)


@functools.cache
def _console_class() -> type[Console]:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise OutputClosed()

    return _Console


def stderr_console() -> Console:
    """A rich console on stderr; no colour when piped or with NO_COLOR (rich honours NO_COLOR)."""
    return make_console(stderr=True, highlight=False)


@functools.lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    # Log records arrive many per second: format each second once.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_timestamp(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds: ``2026-11-28T00:42:17.123456789Z``."""
    seconds, frac = divmod(int(ns), 1_000_000_000)
    return f"{_second_text(seconds)}.{frac:09d}Z"


def _clean_str(s: str) -> str:
    # Strings decoded with surrogateescape may hold lone surrogates; JSON writers need valid
    # text, so they become U+FFFD exactly as Go's encoding/json does with invalid UTF-8.
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a record value (bytes as base64, NaN/Inf as null)."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def record_for_output(record: Mapping[str, Any]) -> dict[str, Any]:
    """A flat record ready for JSON/CSV: Timestamp rendered as text, values JSON-safe."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        kind = type(value)
        # Fast paths for the common scalar types; everything else goes through `jsonable`.
        if kind is str:
            out[key] = value if value.isascii() else _clean_str(value)
        elif kind is int:
            out[key] = format_timestamp(value) if key == "Timestamp" else value
        elif value is None or (kind is float and math.isfinite(value)):
            out[key] = value
        else:
            out[key] = jsonable(value)
    return out


_encode_strict = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dumps_jsonl(record: Mapping[str, Any]) -> str:
    """One JSON line (no newline) for a flat record."""
    ts = record.get("Timestamp")
    if type(ts) is int:
        record = {**record, "Timestamp": format_timestamp(ts)}  # a copy: same key order
    try:
        # Fast path: most records are already JSON-safe. The encoder raises on bytes (TypeError)
        # and NaN/Inf (ValueError); lone surrogates from non-UTF-8 input fail the UTF-8 check.
        text = _encode_strict(record)
        if not text.isascii():
            text.encode("utf-8")
        return text
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return json.dumps(record_for_output(record), ensure_ascii=False, separators=(",", ":"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RecordWriter:
    """Writes flat records to a text stream in one of `FORMATS`.

    JSONL streams as records arrive. CSV/TSV hold back the first `sniff` records so the header
    can name every key seen in them (optional fields often first appear late), then stream; a key
    first seen after that cannot join the header and is reported on stderr at `close()`. `json`,
    `table` and `parquet` collect and write on `close()`; a table stops at `max_table_rows` and
    says so on stderr (rich lays out a wide table at about 4 ms a row: 1,000 rows of an access log
    take 4 s, 10,000 took over a minute; a terminal shows a few dozen at a time anyway).
    """

    def __init__(self, fmt: str, stream: IO[str] | None = None, *, path: str | None = None,
                 title: str | None = None, max_table_rows: int = 1_000, sniff: int = 1000) -> None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
        if fmt == "parquet" and path is None:
            raise UsageError("--format parquet needs --output FILE")
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stdout
        self.path = path
        self.title = title
        self.max_table_rows = max_table_rows
        self.sniff = sniff
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] | None = None
        self._csv: Any = None
        self._late_columns: dict[str, int] = {}  # CSV keys first seen after the header was written
        self._table_overflow = 0
        self.count = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self.count += 1
        if self.fmt == "jsonl":
            self.stream.write(dumps_jsonl(record) + "\n")
        elif self.fmt in ("csv", "tsv"):
            row = record_for_output(record)
            if self._csv is None:
                self._rows.append(row)
                if len(self._rows) >= self.sniff:
                    self._start_csv()
                return
            self._write_csv_row(row)
        else:
            if self.fmt == "table" and len(self._rows) >= self.max_table_rows:
                self._table_overflow += 1
                return
            self._rows.append(record_for_output(record) if self.fmt != "parquet" else dict(record))

    def _start_csv(self) -> None:
        columns: dict[str, None] = {}
        for row in self._rows:
            columns.update(dict.fromkeys(row))
        self._columns = list(columns)
        self._csv = csv.writer(self.stream, delimiter="," if self.fmt == "csv" else "\t", lineterminator="\n")
        self._csv.writerow(self._columns)
        rows, self._rows = self._rows, []
        for row in rows:
            self._write_csv_row(row)

    def _write_csv_row(self, row: Mapping[str, Any]) -> None:
        assert self._columns is not None
        if len(row) > len(self._columns) or any(k not in self._columns for k in row):
            for key in row:
                if key not in self._columns and key not in self._late_columns:
                    self._late_columns[key] = self.count
        self._csv.writerow([_cell(row.get(c)) for c in self._columns])

    def write_all(self, records: Iterable[Mapping[str, Any]]) -> int:
        for r in records:
            self.write(r)
        return self.count

    def close(self) -> None:
        if self.fmt in ("csv", "tsv"):
            if self._csv is None and self._rows:
                self._start_csv()
            if self._late_columns:
                first = ", ".join(f"{k!r} (record {n})" for k, n in list(self._late_columns.items())[:5])
                sys.stderr.write(f"heka: warning: {len(self._late_columns)} field(s) first seen after the "
                                 f"CSV header was written are not in it: {first}; use --format jsonl to "
                                 "keep every field\n")
        elif self.fmt == "table" and self._table_overflow:
            sys.stderr.write(f"heka: note: the table shows the first {self.max_table_rows} records; "
                             f"{self._table_overflow} more not shown (use --format jsonl or csv for all)\n")
        if self.fmt == "json":
            json.dump(self._rows, self.stream, ensure_ascii=False, indent=2)
            self.stream.write("\n")
        elif self.fmt == "table":
            render_table(self._rows, title=self.title, stream=self.stream)
        elif self.fmt == "parquet":
            import polars as pl

            from .parquet import write_parquet_frames

            assert self.path is not None
            write_parquet_frames([pl.DataFrame(self._rows, infer_schema_length=None)], self.path)
        self.stream.flush()


def render_table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None,
                 stream: IO[str] | None = None, columns: Sequence[str] | None = None) -> None:
    """Print rows as a rich table (to stdout by default)."""
    from rich.table import Table

    cols: list[str] = list(columns) if columns else []
    if not cols:
        for r in rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
    table = Table(title=title, show_lines=False)
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(_cell(r.get(c)) for c in cols))
    make_console(file=stream or sys.stdout).print(table)

