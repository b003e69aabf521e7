"""Where a stream's next read starts: the journal checked against the files, with the reason why.

Used by `heka logstream tail` (to open the stream) and `heka logstream explain` (to say why).
The rules follow Heka's LogstreamerInput (spec §6.4) with safer fallbacks:

- journal file still there and its hash matches            -> continue there;
- otherwise search every file, newest to oldest, for the hash -> the log was renamed (or copied by
  copytruncate, or compressed) while we were stopped: continue in that file;
- nothing matches but the journal's file still exists       -> it was truncated or replaced: read it
  from 0 (Heka: the oldest file of the stream);
- nothing matches and the file is gone                      -> start at the first file that sorts at or
  after the journal's file name (Heka: the oldest file), so nothing newer is skipped;
- no journal / corrupt journal                              -> the oldest file at 0 (or the newest file's
  end with initial_tail; never the end after a corrupt journal).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .discovery import LogFile, StreamMatcher
from .journal import IncompleteGzip, Position, hash_window, is_gzip, read_window

GZ_WAIT = 30.0  # seconds to wait for a .gz that is still being written before treating it as final


@dataclass
class StartDecision:
    """Where to start and why. `reason` is a stable code, `detail` a sentence for people."""

    path: str | None
    offset: int
    reason: str  # journal | relocated | replaced | stale | fresh | tail | corrupt | no-files | wait
    detail: str
    window: bytes = b""  # the bytes before offset (up to 500), for hash continuity


def file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a path, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def find_by_hash(
    files: list[LogFile], seek: int, wanted: str, *, exclude: set[tuple[int, int]] = frozenset()
) -> tuple[str | None, bytes, bool]:
    """Search newest to oldest for a file whose 500 bytes before `seek` hash to `wanted`.

    Returns (path or None, the window bytes, whether the search was unsettled: a gzip file ended
    early, or a listed file vanished). Plain files smaller than `seek` are skipped, as Heka does.
    Callers wait and search a fresh listing when it was unsettled, rather than concluding that no
    file holds the bytes.
    """
    incomplete = False
    for lf in reversed(files):
        if exclude and file_identity(lf.path) in exclude:
            continue
        try:
            if not is_gzip(lf.path) and os.stat(lf.path).st_size < seek:
                continue
            window = read_window(lf.path, seek)
        except IncompleteGzip:
            incomplete = True
            continue
        except FileNotFoundError:
            # Listed a moment ago, gone now: files are moving (logrotate compresses a copy, then
            # deletes it). The bytes may be in a file this listing does not show yet.
            incomplete = True
            continue
        except OSError:
            continue
        if window is not None and hash_window(window) == wanted:
            return lf.path, window, incomplete
    return None, b"", incomplete


def after_last_newline(path: str) -> int:
    """Offset just after the last newline of a plain file (the tail position for initial_tail)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            pos = size
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                i = chunk.rfind(b"\n")
                if i >= 0:
                    return pos - step + i + 1
                pos -= step
    except OSError:
        return 0
    return 0


def first_at_or_after(files: list[LogFile], matcher: StreamMatcher, path: str) -> LogFile | None:
    """The first file (oldest first) that sorts at or after `path` (which may no longer exist)."""
    ref = matcher.match(path)
    if ref is None:
        return files[0] if files else None
    key = matcher.sort_key(ref)
    for lf in files:
        if matcher.sort_key(lf) >= key:
            return lf
    return None


def resolve_start(
    files: list[LogFile],
    pos: Position | None,
    matcher: StreamMatcher,
    *,
    initial_tail: bool = False,
    journal_problem: str | None = None,
) -> StartDecision:
    """Decide where a stream starts reading. Pure apart from reading the files."""
    if not files:
        return StartDecision(None, 0, "no-files", "no file of the stream exists yet")
    oldest, newest = files[0], files[-1]
    if journal_problem is not None:
        return StartDecision(
            oldest.path,
            0,
            "corrupt",
            f"{journal_problem}; restarting from the oldest file {oldest.path} at offset 0 "
            "(records may repeat, none are skipped)",
        )
    if pos is None:
        if initial_tail and not is_gzip(newest.path):
            off = after_last_newline(newest.path)
            return StartDecision(
                newest.path,
                off,
                "tail",
                f"no journal; initial_tail: starting at the end of {newest.path} (offset {off})",
            )
        return StartDecision(
            oldest.path, 0, "fresh", f"no journal: starting at the oldest file {oldest.path}"
        )
    paths = [lf.path for lf in files]
    if pos.seek == 0:
        # The hash of 500 NULs matches any file: only the name can say where we were.
        if pos.file_name in paths:
            return StartDecision(pos.file_name, 0, "journal", f"journal at {pos.file_name} offset 0")
    else:
        if pos.file_name in paths:
            try:
                window = read_window(pos.file_name, pos.seek)
            except (IncompleteGzip, OSError):
                window = None
            if window is not None and hash_window(window) == pos.last_hash:
                return StartDecision(
                    pos.file_name,
                    pos.seek,
                    "journal",
                    f"journal found and hash matched: {pos.file_name} at offset {pos.seek}",
                    window,
                )
        found, window, incomplete = find_by_hash(files, pos.seek, pos.last_hash)
        if found is not None:
            return StartDecision(
                found,
                pos.seek,
                "relocated",
                f"{pos.file_name} was rotated: the journal's hash was found again in {found} at "
                f"offset {pos.seek}",
                window,
            )
        if incomplete:
            return StartDecision(
                None, 0, "wait", "a file of the stream is still being compressed or moved; waiting for it"
            )
    if pos.file_name in paths:
        return StartDecision(
            pos.file_name,
            0,
            "replaced",
            f"{pos.file_name} no longer holds the journal's data at offset {pos.seek} (truncated "
            f"or replaced, e.g. copytruncate without a copy): restarting it at offset 0",
        )
    lf = first_at_or_after(files, matcher, pos.file_name)
    if lf is None:
        lf = newest
    return StartDecision(
        lf.path,
        0,
        "stale",
        f"stale journal: {pos.file_name} is gone and no file holds its data at offset {pos.seek}; "
        f"starting at {lf.path} offset 0 (the first file that sorts at or after it)",
    )
