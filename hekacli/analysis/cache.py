"""A cache of decoded logs, so the second query over the same file does not decode it again.

Decoding text is the expensive part of every analysis; the columns it produces are stored as Parquet
(one file per decoded chunk) under ``$HEKA_CACHE_DIR`` (default ``$XDG_CACHE_HOME/hekacli/decoded`` or
``~/.cache/hekacli/decoded``). An entry is keyed by the file's identity (absolute path, device, inode,
size, modification time) and the decoder (kind, format, hekacli version): any change to the file or the
format is a miss, never a stale answer. Entries are written into a temporary directory and renamed
into place with their metadata last, so a crash leaves no half entry. The least recently used entries
are removed when the cache grows past ``HEKA_CACHE_MAX_MB`` (default 2048).

Only raw logs on disk of at least ``HEKA_CACHE_MIN_MB`` (default 8) are cached; ``HEKA_NO_CACHE=1`` or
``--no-cache`` turns it off. JSONL and Parquet inputs are scanned lazily already.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from hekacli import __version__

FORMAT_VERSION = 1
FORMATS_DIR = ".formats"  # sniffed format names by file state (a dot: not an entry)
FORMATS_MAX_AGE_S = 30 * 86400


def cache_dir() -> Path:
    base = os.environ.get("HEKA_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "hekacli" / "decoded"


def enabled_for(path: str, size: int | None) -> bool:
    """Whether a raw log at `path` should go through the cache."""
    if path == "-" or size is None or os.environ.get("HEKA_NO_CACHE"):
        return False
    min_mb = float(os.environ.get("HEKA_CACHE_MIN_MB", "8"))
    return size >= min_mb * 1024 * 1024


def entry_key(path: str, decoder_id: str) -> str:
    """The entry name for this file state and decoder."""
    st = os.stat(path)
    ident = [
        os.path.abspath(path),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        decoder_id,
        __version__,
        FORMAT_VERSION,
    ]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]


def _file_identity(path: str) -> list[Any]:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, __version__]


def _format_memo(path: str, choice_id: str) -> Path:
    ident = json.dumps([_file_identity(path), choice_id, FORMAT_VERSION])
    return cache_dir() / FORMATS_DIR / (hashlib.sha256(ident.encode()).hexdigest()[:32] + ".json")


def remembered_format(path: str, choice_id: str) -> str | None:
    """The format name sniffed last time for this file state and decoder choice, if remembered
    (so a cache hit needs no sniffing: building the candidate decoders costs ~0.1 s)."""
    try:
        value = json.loads(_format_memo(path, choice_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, str) else None


def remember_format(path: str, choice_id: str, name: str) -> None:
    """Remember the format sniffed for this file state (best effort: a failure costs only time)."""
    try:
        memo = _format_memo(path, choice_id)
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(name), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:
        pass


@dataclass
class Entry:
    """A complete cache entry: the Parquet parts and what the decode reported."""

    directory: Path
    meta: dict[str, Any]

    def scan(self) -> pl.LazyFrame:
        """The decoded records, scanned lazily (a query reads only the columns it uses)."""
        parts = sorted(self.directory.glob("part-*.parquet"))
        return pl.scan_parquet(parts) if parts else pl.LazyFrame()


def lookup(key: str) -> Entry | None:
    """The entry for `key`, or None (a damaged entry is removed and counts as a miss)."""
    directory = cache_dir() / key
    meta_path = directory / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT_VERSION or len(list(directory.glob("part-*.parquet"))) != meta.get(
        "parts"
    ):
        shutil.rmtree(directory, ignore_errors=True)
        return None
    try:
        os.utime(meta_path)  # least-recently-used bookkeeping
    except OSError:
        pass
    return Entry(directory, meta)


class Writer:
    """Collects decoded chunks into a new entry; `commit` makes it visible, `abort` drops it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.parts = 0
        self.tmp: Path | None = None
        try:
            root = cache_dir()
            root.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        except OSError:
            self.tmp = None  # no cache this time (read-only home, disk full…); the analysis goes on

    def add(self, df: pl.DataFrame) -> None:
        if self.tmp is None:
            return
        try:
            df.write_parquet(self.tmp / f"part-{self.parts:05d}.parquet", compression="lz4")
            self.parts += 1
        except OSError:
            self.abort()

    def commit(self, meta: dict[str, Any]) -> None:
        if self.tmp is None:
            return
        try:
            meta = {**meta, "format": FORMAT_VERSION, "parts": self.parts, "created": time.time()}
            (self.tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            final = cache_dir() / self.key
            shutil.rmtree(final, ignore_errors=True)
            os.replace(self.tmp, final)
            self.tmp = None
            evict()
        except OSError:
            self.abort()

    def abort(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def evict(max_mb: float | None = None) -> None:
    """Remove least recently used entries until the cache is under its size limit."""
    limit = (
        (max_mb if max_mb is not None else float(os.environ.get("HEKA_CACHE_MAX_MB", "2048"))) * 1024 * 1024
    )
    root = cache_dir()
    entries = []
    total = 0
    for d in root.iterdir() if root.is_dir() else []:
        if not d.is_dir() or d.name.startswith("."):
            continue
        size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        used = (d / "meta.json").stat().st_mtime if (d / "meta.json").exists() else 0.0
        entries.append((used, size, d))
        total += size
    for _used, size, d in sorted(entries):
        if total <= limit:
            break
        shutil.rmtree(d, ignore_errors=True)
        total -= size
    # Remembered formats are tiny, but a growing log leaves one per state: drop the old ones.
    old = time.time() - FORMATS_MAX_AGE_S
    memos = root / FORMATS_DIR
    for f in memos.iterdir() if memos.is_dir() else []:
        try:
            if f.stat().st_mtime < old:
                f.unlink()
        except OSError:
            pass
