"""Read-only views of a config's streams: `list`, `explain` and `checkpoints` use these.

Nothing here writes, except `reset_checkpoint` and `gc_checkpoints`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .config import LogstreamConfig, StreamConfig
from .discovery import LogFile, StreamMatcher
from .journal import JournalError, Position, hash_at, journal_path, read_journal
from .locate import resolve_start


@dataclass
class StreamStatus:
    """One stream: its files oldest to newest, its journal, and where the next read would start."""

    section: str
    name: str
    files: list[LogFile]
    journal: str
    position: Position | None
    journal_error: str | None
    hash_matches: bool | None  # None: no position, or its file is gone
    start_file: str | None = None
    start_offset: int = 0
    reason: str = ""
    detail: str = ""
    sizes: dict[str, int | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        pos = None
        if self.position is not None:
            pos = {
                "file_name": self.position.file_name,
                "seek": self.position.seek,
                "last_hash": self.position.last_hash,
                "hash_matches": self.hash_matches,
                "file_exists": os.path.exists(self.position.file_name),
            }
        return {
            "section": self.section,
            "stream": self.name,
            "journal": self.journal,
            "journal_error": self.journal_error,
            "position": pos,
            "files": [{"path": f.path, "size": self.sizes.get(f.path)} for f in self.files],
            "next_read": {
                "file": self.start_file,
                "offset": self.start_offset,
                "reason": self.reason,
                "detail": self.detail,
            },
        }


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def stream_status(cfg: StreamConfig, matcher: StreamMatcher, name: str, files: list[LogFile]) -> StreamStatus:
    jpath = journal_path(cfg.journal_directory, name)
    error = None
    try:
        pos = read_journal(jpath)
    except JournalError as exc:
        pos, error = None, str(exc)
    matches = None
    if pos is not None and os.path.exists(pos.file_name):
        matches = hash_at(pos.file_name, pos.seek) == pos.last_hash
    decision = resolve_start(files, pos, matcher, initial_tail=cfg.initial_tail, journal_problem=error)
    return StreamStatus(
        cfg.name,
        name,
        files,
        jpath,
        pos,
        error,
        matches,
        decision.path,
        decision.offset,
        decision.reason,
        decision.detail,
        {f.path: _size(f.path) for f in files},
    )


@dataclass
class SectionStatus:
    cfg: StreamConfig
    streams: list[StreamStatus]
    errors: dict[str, str]


def config_status(config: LogstreamConfig) -> list[SectionStatus]:
    """Every section (sorted by name) and its streams (sorted by name)."""
    out = []
    for cfg in config.sections:
        matcher = StreamMatcher(cfg)
        result = matcher.scan()
        streams = [stream_status(cfg, matcher, name, files) for name, files in result.streams.items()]
        out.append(SectionStatus(cfg, streams, result.errors))
    return out


def known_stream_names(config: LogstreamConfig) -> dict[str, set[str]]:
    """Journal directory -> names of the streams that exist now."""
    out: dict[str, set[str]] = {}
    for sec in config_status(config):
        names = out.setdefault(sec.cfg.journal_directory, set())
        names.update(os.path.basename(s.journal) for s in sec.streams)
    return out


def reset_checkpoint(config: LogstreamConfig, stream: str) -> list[str]:
    """Delete the journal of `stream` (the next read starts as if new). Returns the files removed."""
    removed = []
    for sec in config_status(config):
        for st in sec.streams:
            if st.name == stream and os.path.exists(st.journal):
                os.remove(st.journal)
                removed.append(st.journal)
    return removed


def gc_checkpoints(config: LogstreamConfig, *, dry_run: bool = False) -> list[str]:
    """Remove journals (and leftover temp files) of streams that no longer exist."""
    removed = []
    for directory, names in sorted(known_stream_names(config).items()):
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(directory, entry)
            if not os.path.isfile(path):
                continue
            leftover = entry.startswith(".") and entry.endswith(".tmp")  # a crashed atomic write
            base = entry[1:-4] if leftover else entry
            if base.endswith(".corrupt"):
                base, leftover = base[: -len(".corrupt")], True
            if base in names and (not leftover or entry.endswith(".tmp")):
                continue  # a live journal, or the temp file of a tailer writing it right now
            if not leftover:
                try:  # only files that are journals: the directory may be shared with other tools
                    read_journal(path)
                except JournalError:
                    continue
            if not dry_run:
                os.remove(path)
            removed.append(path)
    return removed
