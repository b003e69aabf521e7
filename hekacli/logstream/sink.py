"""Turn batches into output records and write them whole.

Formats: `raw` (the lines), `jsonl` (`{"stream","file","offset","line"}`, or the decoded record when a
decoder is set) and `heka` (framed messages: Type `logfile`, Logger = stream name, Payload = the line
with its newline, as Heka's LogstreamerInput). `where` filters on the record (decoded, or the Heka
message fields Type/Logger/Hostname/Payload).

Whole records: on a pipe, bytes go out in writes of at most PIPE_BUF that end on record boundaries
(POSIX makes those atomic), so even `kill -9` cannot leave half a line in the reader's hands. A single
record larger than PIPE_BUF is the one exception (it needs several writes).
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import sys
from collections.abc import Callable
from typing import IO, Any

from ..errors import OutputClosed, UsageError
from ..output import dumps_jsonl, format_timestamp
from .config import StreamConfig
from .reader import Batch

FORMATS = ("raw", "jsonl", "heka")


def _fd_chunk_limit(fd: int) -> int:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return 1 << 20
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return select.PIPE_BUF
    return 1 << 20


class FdWriter:
    """Writes records to a file descriptor without ever splitting one across writes (when it fits)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.limit = _fd_chunk_limit(fd)

    def _write_all(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BrokenPipeError as exc:
                raise OutputClosed() from exc  # `| head`: nothing past this batch was checkpointed
            view = view[n:]

    def write_lines(self, blob: bytes) -> None:
        """`blob` is whole lines (ends with a newline); split only at newlines."""
        if not blob:
            return
        if len(blob) <= self.limit:
            self._write_all(blob)
            return
        view = memoryview(blob)
        start, n = 0, len(blob)
        while start < n:
            if n - start <= self.limit:
                self._write_all(view[start:])
                return
            cut = blob.rfind(b"\n", start, start + self.limit) + 1
            if cut <= start:  # one line longer than the atomic limit
                nl = blob.find(b"\n", start + self.limit)
                cut = n if nl < 0 else nl + 1
            self._write_all(view[start:cut])
            start = cut

    def write_records(self, records: list[bytes]) -> None:
        """Pack records into writes of at most the atomic limit."""
        pending: list[bytes] = []
        size = 0
        for r in records:
            if size and size + len(r) > self.limit:
                self._write_all(b"".join(pending))
                pending, size = [], 0
            pending.append(r)
            size += len(r)
        if pending:
            self._write_all(b"".join(pending))


class Sink:
    """Formats batches for one output; `write(batch)` returns once the batch is written (or queued)."""

    def __init__(
        self,
        fmt: str,
        *,
        writer: FdWriter | None = None,
        sender: Any = None,
        durable_queue: bool = False,
        rejects: IO[str] | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown --format {fmt!r} (choose from {', '.join(FORMATS)})")
        self.fmt = fmt
        self.writer = writer if writer is not None or sender is not None else FdWriter(sys.stdout.fileno())
        self.sender = sender
        self.durable_queue = durable_queue
        self.rejects = rejects
        self.notify = notify or (lambda m: None)
        self.written = 0
        self.rejected = 0
        self.filtered = 0
        self._decoders: dict[str, Any] = {}
        self._line_jsons: dict[str, Any] = {}  # stream -> generated line -> JSON function (or None)
        self._matchers: dict[str, Any] = {}
        self._hostname = socket.gethostname()
        if sender is not None and fmt != "heka":
            self.fmt = "heka"  # the network speaks framed messages

    # ---- per-stream parts ------------------------------------------------------------------------
    def prepare(self, cfg: StreamConfig) -> None:
        """Build the decoder and the matcher of a section once."""
        if cfg.decoder is not None and cfg.name not in self._decoders:
            from ..parsers import build_decoder

            opts = {k: v for k, v in cfg.decoder.items() if k != "kind"}
            try:
                self._decoders[cfg.name] = build_decoder(cfg.decoder["kind"], **opts)
            except Exception as exc:
                from ..errors import ConfigError, HekaError

                if isinstance(exc, HekaError):
                    raise ConfigError(f"[{cfg.name}] decoder: {exc.message}", file=cfg.source) from None
                raise ConfigError(f"[{cfg.name}] decoder: {exc}", file=cfg.source) from None
        if cfg.where and cfg.name not in self._matchers:
            from ..matcher import compile_matcher

            self._matchers[cfg.name] = compile_matcher(cfg.where)

    # ---- writing ---------------------------------------------------------------------------------
    def write(self, batch: Batch, cfg: StreamConfig) -> None:
        if not batch.count:
            return
        decoder = self._decoders.get(cfg.name)
        matcher = self._matchers.get(cfg.name)
        if self.fmt == "raw" and decoder is None and matcher is None and self.sender is None:
            self._write_raw(batch)
            return
        out: list[bytes] = []
        hostname = cfg.hostname or self._hostname
        line_json = self._line_json(cfg.name, decoder) if matcher is None and self.fmt == "jsonl" else None
        if line_json is not None and self.sender is None:
            self._write_decoded_jsonl(batch, decoder, line_json, hostname)
            return
        for offset, line in batch.iter_records():
            text = line.decode("utf-8", "surrogateescape")
            record: dict[str, Any] | None
            if decoder is not None:
                record = decoder.decode(text)
                if record is None:
                    self._reject(batch, offset, text, decoder)
                    continue
                record.setdefault("Logger", batch.stream)
                record.setdefault("Hostname", hostname)
            else:
                record = None
            if matcher is not None:
                probe = (
                    record
                    if record is not None
                    else {
                        "Type": "logfile",
                        "Logger": batch.stream,
                        "Hostname": hostname,
                        "Payload": text + "\n",
                    }
                )
                if not matcher.match_record(probe):
                    self.filtered += 1
                    continue
            out.append(self._format(batch, offset, line, text, record, hostname, decoder))
        self.written += len(out)
        if not out:
            return
        if self.sender is not None:
            for framed in out:
                self.sender.send(framed)
        else:
            assert self.writer is not None
            self.writer.write_records(out)

    def _line_json(self, name: str, decoder: Any) -> Any:
        """The decoder's generated line -> JSON function (parsers/jsonout.py), when its records never
        hold Logger or Hostname (those are added after them here); else None."""
        if decoder is None:
            return None
        if name not in self._line_jsons:
            from ..parsers.jsonout import compile_line_json

            fast = compile_line_json(decoder)
            columns = getattr(decoder, "columns", ())
            self._line_jsons[name] = None if "Logger" in columns or "Hostname" in columns else fast
        return self._line_jsons[name]

    def _write_decoded_jsonl(self, batch: Batch, decoder: Any, line_json: Any, hostname: str) -> None:
        """`write` for decoded JSONL without `where`: the same bytes, most lines without a record dict.

        The record's JSON plus the Logger and Hostname that `write` adds at its end (the record has
        neither): its text up to the closing brace, then theirs.
        """
        tail = dumps_jsonl({"Logger": batch.stream, "Hostname": hostname})
        suffix = "," + tail[1:] + "\n"
        out: list[bytes] = []
        for offset, line in batch.iter_records():
            text = line.decode("utf-8", "surrogateescape")
            js = line_json(text)
            if js is not None and js != "{}":
                out.append((js[:-1] + suffix).encode("utf-8"))
                continue
            record = decoder.decode(text)
            if record is None:
                self._reject(batch, offset, text, decoder)
                continue
            record.setdefault("Logger", batch.stream)
            record.setdefault("Hostname", hostname)
            out.append(fast_jsonl(record))
        self.written += len(out)
        if out:
            assert self.writer is not None
            self.writer.write_records(out)

    def _write_raw(self, batch: Batch) -> None:
        assert self.writer is not None
        self.written += batch.count
        if batch.records is None:
            self.writer.write_lines(batch.data)
        else:
            self.writer.write_records([r + b"\n" for _, r in batch.records])

    def _format(
        self,
        batch: Batch,
        offset: int,
        line: bytes,
        text: str,
        record: dict | None,
        hostname: str,
        decoder: Any,
    ) -> bytes:
        if self.fmt == "raw":
            return line + b"\n"
        if self.fmt == "jsonl":
            if record is None:
                return (
                    json.dumps(
                        {"stream": batch.stream, "file": batch.file, "offset": offset, "line": _clean(text)},
                        ensure_ascii=False,
                    )
                    + "\n"
                ).encode("utf-8")
            return fast_jsonl(record)
        from ..framing import frame
        from ..message import Message

        if record is not None:
            msg = decoder.to_message(record)
            msg.logger = batch.stream
            if msg.hostname is None:
                msg.hostname = hostname
        else:
            # Heka's TokenSplitter keeps the newline in the payload.
            nl = "\n" if batch.data[offset - batch.start + len(line) :][:1] == b"\n" else ""
            msg = Message.new(type="logfile", logger=batch.stream, hostname=hostname, payload=text + nl)
        return frame(msg)

    def _reject(self, batch: Batch, offset: int, text: str, decoder: Any) -> None:
        self.rejected += 1
        if self.rejects is not None:
            self.rejects.write(text + "\n")
            self.rejects.flush()
            return
        try:
            why = decoder.explain_failure(text)
        except Exception:  # noqa: BLE001 - the explanation is a courtesy
            why = "does not match the format"
        self.notify(f"{batch.file}: offset {offset}: cannot decode ({why}): {_clean(text)[:300]}")

    def mark(self) -> int | None:
        """An opaque mark for "everything written so far" (see `confirmed`)."""
        if self.sender is None or self.durable_queue:
            return None
        queue = getattr(self.sender, "queue", None)
        return getattr(queue, "tail", None)

    def confirmed(self, mark: int | None) -> bool:
        """True once everything up to `mark` is safe, so the checkpoint may move past it.

        Stdout: os.write has returned (nothing is buffered in this process). Network with a disk
        queue: `send` returned, so the records are on disk. Network with the memory queue: only
        once the sender has confirmed them (a crash would lose what is only in memory).
        """
        if mark is None:
            return True
        queue = getattr(self.sender, "queue", None)
        head = getattr(queue, "head", None)
        if head is None:  # no progress information: only an empty queue is safe
            return bool(self.sender.flush(0))
        return head >= mark

    def drain(self, timeout: float) -> None:
        """Before a clean stop: give the network sender a chance to deliver what is queued."""
        if self.sender is not None:
            self.sender.flush(timeout)


_day_cache: dict[int, str] = {}


def _timestamp(ns: int) -> str:
    """format_timestamp(ns), with the date part cached per day (the common case is cheap)."""
    sec, frac = divmod(ns, 1_000_000_000)
    day, rest = divmod(sec, 86400)
    date = _day_cache.get(day)
    if date is None:
        if len(_day_cache) > 1024:
            _day_cache.clear()
        date = _day_cache[day] = format_timestamp(day * 86400 * 1_000_000_000)[:10]
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{date}T{h:02d}:{m:02d}:{s:02d}.{frac:09d}Z"


def fast_jsonl(record: dict[str, Any]) -> bytes:
    """The bytes of `dumps_jsonl(record)` + newline, faster for the common value types."""
    ts = record.get("Timestamp")
    rec = record
    if isinstance(ts, int) and not isinstance(ts, bool):
        rec = dict(record)
        rec["Timestamp"] = _timestamp(ts)
    try:
        return (json.dumps(rec, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode(
            "utf-8"
        )
    except (TypeError, ValueError, UnicodeEncodeError):  # bytes, NaN, lone surrogates: the careful path
        return (dumps_jsonl(record) + "\n").encode("utf-8")


def _clean(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
