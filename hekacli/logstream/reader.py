"""The rotation-proof reader of one log stream.

`StreamReader.next_batch()` hands out batches of *complete* records from one file together with the
`Position` to save once the batch has been written. The reader never moves its own checkpoint: the
caller writes the batch, flushes, then saves `batch.end` (so a crash repeats at most that batch).

How rotation is followed (the file identity is the (device, inode) of the open descriptor, and the
content hash of Heka's journal where identity is lost):

- rename+create, dateext: we keep reading the renamed file through its descriptor; once it is at EOF,
  a file sorting after it exists, and it has been quiet for `rotate_wait`, we move to that file at 0;
  a last line without newline is emitted then (it was "rotated away").
- copytruncate: before data read at offset N is accepted, the bytes just before N are compared with
  what we read there; a mismatch (or a size below N) means the file was truncated. We then look for the
  copy holding our bytes (hash search, `.gz` included), finish it, and continue with the original.
- compress/delaycompress: a renamed file that disappears into a `.gz` is found again by hash; gzip
  offsets count decompressed bytes; a `.gz` still being written is waited for, never taken as final.
- long lines are cut at `max_line_bytes` (the rest skipped up to the newline) and reported.

Memory is bounded by the read chunk, the batch limits and `max_line_bytes`; one descriptor is open.
"""

from __future__ import annotations

import gzip
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .config import StreamConfig
from .discovery import LogFile, StreamMatcher
from .journal import HASH_WINDOW, IncompleteGzip, Position, hash_window, is_gzip, read_window
from .locate import GZ_WAIT, StartDecision, file_identity, find_by_hash, first_at_or_after

READ_CHUNK = 1 << 20


@dataclass
class Batch:
    """Complete records from one file. `data` is their bytes as read (lines end with b"\\n").

    `records` is set when record boundaries are not simply lines (multiline, cut or unterminated
    last line): a list of (offset, record bytes without the final newline).
    """

    stream: str
    file: str
    start: int
    data: bytes
    count: int
    end: Position
    records: list[tuple[int, bytes]] | None = None

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        """(offset, record without its trailing newline) for every record of the batch."""
        if self.records is not None:
            yield from self.records
            return
        data, off, pos = self.data, self.start, 0
        n = len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            end = n if nl < 0 else nl
            yield off + pos, data[pos:end]
            pos = end + 1


@dataclass
class ReaderStats:
    records: int = 0
    bytes: int = 0
    cut_lines: int = 0
    rotations: int = 0
    truncations: int = 0
    notes: list[str] = field(default_factory=list)


def _records_prefix(buf: bytearray, end: int, max_records: int) -> tuple[int, int]:
    """(length, lines) of the longest prefix of buf[:end] (whole lines) with at most max_records lines.

    Work is proportional to the prefix, not to the buffer: the region scanned grows by doubling.
    """
    region = min(end, max(4096, max_records * 160))
    while True:
        count = buf.count(b"\n", 0, region)
        if count >= max_records or region >= end:
            break
        region = min(end, region * 2)
    if count <= max_records:
        return (end, count) if region >= end else (buf.rfind(b"\n", 0, region) + 1, count)
    # Estimate where the max_records-th newline is from the mean line length, then step to it.
    est = max(1, region * max_records // count)
    before = buf.count(b"\n", 0, est)
    if before < max_records:
        pos = est - 1
        for _ in range(max_records - before):
            pos = buf.find(b"\n", pos + 1)
    else:
        pos = est
        for _ in range(before - max_records + 1):
            pos = buf.rfind(b"\n", 0, pos)
    return pos + 1, max_records


class StreamReader:
    """Reads one stream from a start decision onward, following rotation; see the module docstring."""

    def __init__(
        self,
        name: str,
        cfg: StreamConfig,
        matcher: StreamMatcher,
        files: list[LogFile],
        *,
        follow: bool,
        notify: Callable[[str], None] | None = None,
        verbose: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.matcher = matcher
        self.files = files
        self.follow = follow
        self.notify = notify or (lambda msg: None)  # things a user must know (loss risk, cuts)
        self.verbose = verbose or (lambda msg: None)  # routine events (moving to the next file)
        self.stats = ReaderStats()
        self.path: str | None = None  # where the open file is (last known)
        self.ident: tuple[int, int] | None = None
        self.fd: int | None = None
        self.gz: gzip.GzipFile | None = None
        self.is_gz = False
        self.offset = 0  # consumed bytes (the checkpoint position once written)
        self.window = b""  # the last <=500 consumed bytes
        self.buf = bytearray()  # read, not yet consumed
        self.skipping = False  # discarding the rest of a cut long line
        self.short_read = False  # the last read found less than asked: the end of the file for now
        self.long_suspect = False  # a line longer than max_record may be in the buffer
        self.gz_raw = None  # the descriptor copy the GzipFile reads from
        self.gz_incomplete_since: float | None = None
        self.trunc_wait_since: float | None = None
        self.last_scan = 0.0
        self.dirty = False  # a file event asked for a rescan
        self.done = False  # non-follow: reached the end of the newest file
        self.ml_start = (
            re.compile(cfg.multiline.start.encode()) if cfg.multiline and cfg.multiline.start else None
        )
        self.max_record = cfg.multiline.max_bytes if cfg.multiline else cfg.max_line_bytes
        self.pending_since: float | None = None  # multiline: when the pending record stopped growing

    # ---- opening -------------------------------------------------------------------------------
    def start(self, decision: StartDecision) -> None:
        """Open the file chosen by `resolve_start` (or nothing, when the stream has no file yet)."""
        self.close()
        if decision.path is None:
            return
        self._open(decision.path, decision.offset, decision.window)

    def _open(self, path: str, offset: int, window: bytes) -> bool:
        self.close()
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self.notify(f"cannot open {path}: {exc.strerror}")
            return False
        st = os.fstat(fd)
        self.fd, self.path, self.ident = fd, path, (st.st_dev, st.st_ino)
        self.is_gz = is_gzip(path)
        if offset and len(window) < min(offset, HASH_WINDOW):  # e.g. initial_tail: hash what is there
            try:
                window = read_window(path, offset) or b""
            except (IncompleteGzip, OSError):
                window = b""
        self.offset, self.window, self.buf = offset, window[-HASH_WINDOW:], bytearray()
        # A position that does not follow a newline is inside a line that was cut at max_line_bytes:
        # the rest of that line is skipped, after a restart too.
        self.skipping = bool(self.window) and not self.window.endswith(b"\n")
        self.gz = None
        self.short_read = False
        return True

    def _close_gz(self) -> None:
        if self.gz is not None:
            self.gz.close()  # does not close a fileobj it was given
            self.gz = None
        if self.gz_raw is not None:
            self.gz_raw.close()
            self.gz_raw = None

    def close(self) -> None:
        self._close_gz()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def position(self) -> Position | None:
        """The position just after the consumed bytes (what a journal should say now)."""
        if self.path is None:
            return None
        return Position(self.path, self.offset, hash_window(self.window))

    # ---- reading -------------------------------------------------------------------------------
    @property
    def read_pos(self) -> int:
        return self.offset + len(self.buf)

    def _expected_before(self, k: int) -> bytes:
        buf = self.buf
        if len(buf) >= k:
            return bytes(buf[-k:])
        need = k - len(buf)
        return self.window[-need:] + bytes(buf) if need else bytes(buf)

    def _read_plain(self, n: int) -> bytes | None:
        """Read at read_pos; None when the bytes before read_pos are no longer ours (truncated)."""
        assert self.fd is not None
        rp = self.read_pos
        data = os.pread(self.fd, n, rp)
        # Verify after reading: if the check passes, the data was read from the same generation.
        k = min(HASH_WINDOW, rp, len(self.window) + len(self.buf))
        if k and os.pread(self.fd, k, rp - k) != self._expected_before(k):
            return None
        if not data and os.fstat(self.fd).st_size < rp:
            return None
        return data

    def _read_gz(self, n: int) -> bytes:
        """Read decompressed bytes at read_pos; IncompleteGzip when the file ends early."""
        try:
            if self.gz is None:
                self.gz_raw = os.fdopen(os.dup(self.fd), "rb")  # type: ignore[arg-type]
                self.gz = gzip.GzipFile(filename=self.path or "", fileobj=self.gz_raw)
                skip = self.read_pos
                while skip:  # offsets count decompressed bytes: decompress up to the position
                    chunk = self.gz.read(min(skip, READ_CHUNK))
                    if not chunk:
                        raise EOFError("shorter than the position")
                    skip -= len(chunk)
            return self.gz.read(n)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            self._close_gz()
            raise IncompleteGzip(str(exc)) from None

    def next_batch(self, max_records: int, max_bytes: int) -> Batch | None:
        """The next batch of complete records, or None when nothing is available right now."""
        for _ in range(64):  # bounded work per call; the caller loops
            if self.fd is None:
                if not self._reopen_after_gap():
                    return None
                continue
            # Fill the buffer up to a full batch unless the file has no more for now (fewer
            # checkpoints under load, low latency when following).
            if self.buf and (self.short_read or self.long_suspect or len(self.buf) >= max_bytes):
                batch = self._carve(max_records, max_bytes, final=False)
                if batch is not None:
                    return batch
            try:
                n = min(READ_CHUNK, self.max_record)
                data = self._read_gz(n) if self.is_gz else self._read_plain(n)
            except IncompleteGzip:
                if self.gz_incomplete_since is None:
                    self.gz_incomplete_since = time.monotonic()
                if time.monotonic() - self.gz_incomplete_since < GZ_WAIT:
                    return None  # still being written: wait
                self.notify(f"{self.path}: gzip data ends early (corrupt?); treating it as complete")
                data = b""
            else:
                self.gz_incomplete_since = None
            if data is None:
                moved = self._handle_truncation()
                if moved is None:
                    return None
                if moved:
                    continue
                return None
            if data:
                self._note_long_line(data)
                self.buf += data
                self.short_read = len(data) < n
                self.pending_since = None
                continue
            self.short_read = True
            batch = self._carve(max_records, max_bytes, final=False)
            if batch is not None:
                return batch
            return self._at_eof(max_records, max_bytes)
        return None

    def _note_long_line(self, data: bytes) -> None:
        """Flag a line that will be longer than max_record once `data` is appended.

        Reads are at most max_record bytes, so only a line that spans reads can be too long: the one
        at the end of the buffer continued by `data`.
        """
        buf = self.buf
        tail = len(buf) - (buf.rfind(b"\n") + 1)
        first_nl = data.find(b"\n")
        if tail + (len(data) if first_nl < 0 else first_nl) > self.max_record:
            self.long_suspect = True

    def _first_long_line(self) -> int | None:
        """Start of the first line longer than max_record in the buffer (None: there is none)."""
        buf, pos, limit = self.buf, 0, self.max_record
        while pos < len(buf):
            nl = buf.find(b"\n", pos, pos + limit + 1)
            if nl < 0:
                return pos if len(buf) - pos > limit else None
            pos = nl + 1
        return None

    def _carve(self, max_records: int, max_bytes: int, *, final: bool) -> Batch | None:
        """Take complete records off the front of the buffer (all of it when `final`)."""
        buf = self.buf
        if not buf:
            return None
        if self.skipping:
            nl = buf.find(b"\n")
            if nl < 0:
                self._consume(len(buf))
                return None
            self._consume(nl + 1)
            self.skipping = False
            if not buf:
                return None
        if self.cfg.multiline is not None:
            return self._carve_multiline(max_records, max_bytes, final=final)
        limit = min(len(buf), max_bytes)
        if self.long_suspect:
            at = self._first_long_line()
            if at == 0:
                return self._cut(self.max_record)
            if at is None:
                self.long_suspect = False
            else:
                limit = min(limit, at)  # the lines before the long one first
        end = buf.rfind(b"\n", 0, limit) + 1
        if end == 0:
            if final:
                return self._emit_records([(self.offset, bytes(buf))], len(buf))
            if limit < len(buf):  # first line alone is bigger than max_bytes but allowed
                nl = buf.find(b"\n")
                if nl >= 0:
                    end = nl + 1
            if end == 0:
                return None
        end, count = _records_prefix(buf, end, max_records)
        return self._emit_plain(end, count)

    def _consume(self, n: int) -> bytes:
        with memoryview(self.buf) as view:  # one copy (a bytearray slice would copy twice)
            data = bytes(view[:n])
        del self.buf[:n]
        self.offset += n
        self.window = (self.window + data[-HASH_WINDOW:])[-HASH_WINDOW:]
        return data

    def _emit_plain(self, end: int, count: int) -> Batch:
        start = self.offset
        data = self._consume(end)
        self.stats.records += count
        self.stats.bytes += len(data)
        return Batch(self.name, self.path or "", start, data, count, self.position())  # type: ignore[arg-type]

    def _emit_records(self, records: list[tuple[int, bytes]], consumed: int) -> Batch:
        start = self.offset
        data = self._consume(consumed)
        self.stats.records += len(records)
        self.stats.bytes += len(data)
        return Batch(
            self.name,
            self.path or "",
            start,
            data,
            len(records),
            self.position(),  # type: ignore[arg-type]
            records=records,
        )

    def _cut(self, keep: int) -> Batch:
        start = self.offset
        record = bytes(self.buf[:keep])
        nl = self.buf.find(b"\n", keep)
        consumed = nl + 1 if nl >= 0 else len(self.buf)
        self.skipping = nl < 0
        self.stats.cut_lines += 1
        self.notify(
            f"{self.path}: offset {start}: record longer than {keep} bytes cut to {keep} bytes "
            "(raise max_line_bytes to keep it whole)"
        )
        return self._emit_records([(start, record)], consumed)

    def _carve_multiline(self, max_records: int, max_bytes: int, *, final: bool) -> Batch | None:
        buf = self.buf
        end_complete = buf.rfind(b"\n") + 1  # records are made of complete lines only
        if end_complete == 0:
            if len(buf) > self.max_record:
                return self._cut(self.max_record)
            return None
        records: list[tuple[int, bytes]] = []
        rec_start = 0
        pos = 0
        while pos < end_complete:
            nl = buf.find(b"\n", pos)
            line_end = nl + 1
            if pos > rec_start and self._is_record_start(buf, pos, nl):
                records.append((rec_start, bytes(buf[rec_start : pos - 1])))
                rec_start = pos
                if len(records) >= max_records or rec_start >= max_bytes:
                    break
            elif pos - rec_start > self.max_record:
                # a record longer than the maximum: cut here
                records.append((rec_start, bytes(buf[rec_start : rec_start + self.max_record])))
                self.stats.cut_lines += 1
                self.notify(
                    f"{self.path}: offset {self.offset + rec_start}: multiline record longer than "
                    f"{self.max_record} bytes cut"
                )
                rec_start = pos
                if len(records) >= max_records:
                    break
            pos = line_end
        consumed = rec_start
        if final and rec_start < end_complete and len(records) < max_records and pos >= end_complete:
            records.append((rec_start, bytes(buf[rec_start : end_complete - 1])))
            consumed = end_complete
        if not records:
            return None
        return self._emit_records([(self.offset + o, r) for o, r in records], consumed)

    def _is_record_start(self, buf: bytearray, pos: int, nl: int) -> bool:
        if self.ml_start is not None:
            return self.ml_start.match(bytes(buf[pos:nl])) is not None
        return nl > pos and buf[pos] not in b" \t"

    # ---- end of file, rotation, truncation ---------------------------------------------------------
    def rescan(self, force: bool = False) -> None:
        """Refresh the file list (rate-limited unless forced or a file event marked us dirty)."""
        now = time.monotonic()
        if not (force or self.dirty or now - self.last_scan >= max(self.cfg.check_data_interval * 4, 1.0)):
            return
        self.last_scan, self.dirty = now, False
        result = self.matcher.scan()
        self.files = result.streams.get(self.name, [])

    def _where_am_i(self) -> tuple[str | None, bool]:
        """(path of the open file in the current listing or None, whether a .gz copy is incomplete)."""
        for lf in self.files:
            if file_identity(lf.path) == self.ident:
                return lf.path, False
        if self.offset > 0:
            found, _, incomplete = find_by_hash(
                self.files,
                self.offset,
                hash_window(self.window),
                exclude={self.ident} if self.ident else set(),
            )
            return found, incomplete
        return None, False

    def _next_file(self) -> tuple[LogFile | None, bool]:
        """The file after the open one (None if none), and whether to wait (a .gz being written)."""
        here, incomplete = self._where_am_i()
        if here is not None:
            self.path = here
            ref = self.matcher.match(here)
            key = self.matcher.sort_key(ref) if ref else None
            for lf in self.files:
                if lf.path == here or file_identity(lf.path) == self.ident:
                    continue
                if key is None or self.matcher.sort_key(lf) > key:
                    return lf, False
            return None, False
        if incomplete:
            return None, True
        # Our file is gone and no file holds its bytes: continue with the first that sorts at or
        # after its last known name (other than itself).
        rest = [lf for lf in self.files if file_identity(lf.path) != self.ident]
        return (
            first_at_or_after(rest, self.matcher, self.path) if self.path else (rest[0] if rest else None)
        ), False

    def _quiet(self) -> bool:
        if self.is_gz:
            return True
        try:
            mtime = os.fstat(self.fd).st_mtime  # type: ignore[arg-type]
        except OSError:
            return True
        return time.time() - mtime >= self.cfg.rotate_wait

    def _at_eof(self, max_records: int, max_bytes: int) -> Batch | None:
        self.rescan()
        nxt, wait = self._next_file()
        if wait:
            return None
        if nxt is None:
            # The newest file: a last line without newline is held until it is completed.
            if self.cfg.multiline is not None and self.buf and self.buf.endswith(b"\n"):
                if self.pending_since is None:
                    self.pending_since = time.monotonic()
                if not self.follow or time.monotonic() - self.pending_since >= self.cfg.multiline.timeout:
                    return self._carve(max_records, max_bytes, final=True)
            if not self.follow:
                self.done = True
            return None
        if not self._quiet():
            if not self.follow:
                time.sleep(min(0.05, self.cfg.rotate_wait))  # a just-rotated file may get a last write
            return None
        # Final data of a rotated-away file: the last record is complete now.
        if self.buf and not self.skipping:
            batch = self._carve(max_records, max_bytes, final=True)
            if batch is None and self.buf:
                batch = self._emit_records([(self.offset, bytes(self.buf))], len(self.buf))
            return batch
        self.stats.rotations += 1
        self.verbose(f"moving on from {self.path} (offset {self.offset}) to {nxt.path}")
        if not self._open(nxt.path, 0, b""):
            return None
        return Batch(self.name, nxt.path, 0, b"", 0, self.position())  # type: ignore[arg-type]

    def _handle_truncation(self) -> bool | None:
        """The open file no longer holds our bytes. True: moved somewhere to read; None: wait."""
        self.rescan(force=True)
        found, window, incomplete = find_by_hash(
            self.files, self.offset, hash_window(self.window), exclude={self.ident} if self.ident else set()
        )
        if found is None and incomplete:
            if self.trunc_wait_since is None:
                self.trunc_wait_since = time.monotonic()
            if time.monotonic() - self.trunc_wait_since < GZ_WAIT:
                return None
        self.trunc_wait_since = None
        self.stats.truncations += 1
        old = self.path
        if found is not None:
            self.notify(
                f"{old} was truncated (copytruncate): continuing in its copy {found} at offset {self.offset}"
            )
            return self._open(found, self.offset, window or self.window)
        self.notify(
            f"{old} was truncated or replaced and no file holds its bytes after offset {self.offset}: "
            f"restarting it at offset 0 (bytes written after {self.offset} before the truncation are lost)"
        )
        fd = self.fd
        self.fd = None
        self.close()
        ok = self._open(old, 0, b"") if old else False
        if fd is not None:
            os.close(fd)
        return ok

    def _reopen_after_gap(self) -> bool:
        """No file was open (the stream had no files): look again."""
        self.rescan(force=True)
        if not self.files:
            if not self.follow:
                self.done = True
            return False
        first = self.files[0]
        return self._open(first.path, 0, b"")
