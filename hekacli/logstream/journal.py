"""Heka journals (checkpoints): `{"seek":N,"file_name":"/abs/path","last_hash":"<sha1 hex>"}`.

`last_hash` is the SHA-1 of the 500 bytes of the stream right before `seek`, left-padded with NULs
when seek < 500 (so at seek 0 it is the SHA-1 of 500 NULs). For gzip files seek and hash count
decompressed bytes. A Heka journal directory can be used as is, and ours can be read by Heka.

Unlike Heka, a journal is written atomically (temp file, fsync, rename), so
a crash at any moment leaves either the old or the new journal, never a mix.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from dataclasses import dataclass

from ..errors import HekaError

HASH_WINDOW = 500
NULL_HASH = hashlib.sha1(b"\0" * HASH_WINDOW).hexdigest()  # fc56d4b3c72a8bfe593373c740d558ec1340ac73


class JournalError(HekaError):
    """A journal file exists but cannot be used (not JSON, wrong keys)."""


class IncompleteGzip(Exception):
    """A gzip file ends early: it may still be being written (logrotate `compress`)."""


@dataclass(frozen=True)
class Position:
    """Where a stream stands: `seek` bytes into `file_name`, with the hash of the bytes before it."""

    file_name: str
    seek: int
    last_hash: str = NULL_HASH

    def to_json(self) -> str:
        """Heka's exact bytes: compact, keys in Go struct order, HTML characters escaped as Go does."""
        name = json.dumps(self.file_name, ensure_ascii=False)
        name = (
            name.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
        return f'{{"seek":{self.seek},"file_name":{name},"last_hash":"{self.last_hash}"}}'


def hash_window(before: bytes) -> str:
    """SHA-1 hex of the last 500 bytes of `before`, NUL-padded on the left to 500 bytes."""
    data = before[-HASH_WINDOW:]
    if len(data) < HASH_WINDOW:
        data = b"\0" * (HASH_WINDOW - len(data)) + data
    return hashlib.sha1(data).hexdigest()


def is_gzip(path: str) -> bool:
    """Gzip is detected by the magic bytes 1f 8b, not by the extension (as Heka)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def read_window(path: str, seek: int) -> bytes | None:
    """The (up to) 500 bytes before `seek` in `path`; None if the file is shorter than `seek`.

    Raises IncompleteGzip when a gzip file ends early, and OSError when it cannot be read.
    """
    start = max(0, seek - HASH_WINDOW)
    if is_gzip(path):
        try:
            with gzip.open(path, "rb") as g:
                remaining = start
                while remaining:  # decompress and discard up to the window
                    chunk = g.read(min(remaining, 1 << 20))
                    if not chunk:
                        return None
                    remaining -= len(chunk)
                data = g.read(seek - start)
        except (EOFError, zlib.error) as exc:
            raise IncompleteGzip(str(exc)) from None
        except gzip.BadGzipFile:
            return None
        return data if len(data) == seek - start else None
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(seek - start)
    return data if len(data) == seek - start else None


def hash_at(path: str, seek: int) -> str | None:
    """The journal hash of `path` at `seek`, or None when the file is shorter than `seek`/unreadable."""
    if seek == 0:
        return NULL_HASH
    try:
        data = read_window(path, seek)
    except OSError:
        return None
    return None if data is None else hash_window(data)


def journal_path(directory: str, stream: str) -> str:
    """`<journal_directory>/<stream name>`; a `/` in a stream name is replaced so it stays one file."""
    safe = stream.replace(os.sep, "_")
    if safe in ("", ".", ".."):
        safe = f"_{safe}_"
    return os.path.join(directory, safe)


def parse_journal(text: str, *, path: str = "") -> Position | None:
    """Parse journal text; empty (or whitespace) means no position. Raises JournalError."""
    text = text.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JournalError(f"corrupt journal: {exc.msg} at byte {exc.pos}", file=path) from None
    if not isinstance(doc, dict):
        raise JournalError("corrupt journal: not a JSON object", file=path)
    seek, name, h = doc.get("seek"), doc.get("file_name"), doc.get("last_hash")
    if isinstance(seek, bool) or not isinstance(seek, int) or seek < 0:
        raise JournalError("corrupt journal: `seek` is not a non-negative integer", file=path)
    if not isinstance(name, str):
        raise JournalError("corrupt journal: `file_name` is not a string", file=path)
    if not isinstance(h, str) or len(h) != 40 or any(c not in "0123456789abcdef" for c in h.lower()):
        raise JournalError("corrupt journal: `last_hash` is not a SHA-1 hex digest", file=path)
    if not name:  # Heka writes an empty file_name before any file was opened
        return None
    return Position(name, seek, h.lower())


def read_journal(path: str) -> Position | None:
    """Read a journal file: None when missing or empty; JournalError when corrupt."""
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 16)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read journal: {exc.strerror}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JournalError("corrupt journal: not UTF-8 text", file=path) from None
    return parse_journal(text, path=path)


def write_journal(path: str, pos: Position, *, fsync: bool = True) -> None:
    """Write atomically: temp file in the same directory, fsync, rename over the journal.

    The fsync before the rename means even a power loss leaves the old or the new journal, never an
    empty or half-written one. The directory itself is not fsynced (that would only make the rename
    durable: losing it after a power cut repeats one batch, which is allowed, and costs a second
    disk flush per checkpoint).
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o744, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    data = pos.to_json().encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o660)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
