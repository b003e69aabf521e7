"""Find log streams as Heka's LogstreamerInput did: file_match, priority, differentiator, translation.

A *log stream* is one logical sequence of records spread over several files (``access.log.3``,
``access.log.2`` ... ``access.log``). Files are matched by a RE2 regex on their full path, grouped
into streams by the differentiator, and ordered oldest to newest by the priority keys.

Difference from Heka: ties in the priority order are broken by path, so the order is deterministic.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

try:  # Go RE2 semantics, as Heka; the stdlib is a fallback that handles the same named-group syntax
    import re2 as _re
except ImportError:  # pragma: no cover - google-re2 is a dependency
    import re as _re

from ..errors import ConfigError
from .config import StreamConfig

MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for name in names
}
DAYS = {
    name: i
    for i, names in enumerate(
        [
            ("mon", "monday"),
            ("tue", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        ]
    )
    for name in names
}
_GO_META = set("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta."""
    return "".join("\\" + c if c in _GO_META else c for c in text)


@dataclass(frozen=True)
class LogFile:
    """One file of a stream, with its raw group matches and sort scores."""

    path: str
    groups: dict[str, str] = field(hash=False, compare=False)
    scores: dict[str, int] = field(hash=False, compare=False)
    score_errors: tuple[str, ...] = field(default=(), hash=False, compare=False)


@dataclass
class ScanResult:
    """Streams by name (files oldest to newest) and per-stream errors (such streams are left out)."""

    streams: dict[str, list[LogFile]]
    errors: dict[str, str]


class StreamMatcher:
    """The compiled file_match of one section: matches paths, scores them, names their stream."""

    def __init__(self, cfg: StreamConfig) -> None:
        self.cfg = cfg
        directory = cfg.log_directory
        try:
            self.root = os.path.realpath(directory, strict=True)
        except OSError:
            raise ConfigError(
                f"[{cfg.name}] log_directory: directory not found: {directory}", file=cfg.source
            ) from None
        if not os.path.isdir(self.root):
            raise ConfigError(f"[{cfg.name}] log_directory: not a directory: {directory}", file=cfg.source)
        fm = cfg.file_match
        if not fm.endswith("$"):
            fm += "$"
        sep = "" if self.root.endswith(os.sep) or fm.startswith(os.sep) else os.sep
        self.pattern = "^" + quote_meta(self.root) + sep + fm
        try:
            self.regex = _re.compile(self.pattern)
        except Exception as exc:  # noqa: BLE001 - re2 and re raise different types
            raise ConfigError(f"[{cfg.name}] file_match: invalid regex: {exc}", file=cfg.source) from None
        self.recursive = os.sep in cfg.file_match

    def match(self, path: str) -> LogFile | None:
        """Score `path` (which need not exist); None when it does not match."""
        m = self.regex.match(path)
        if m is None:
            return None
        groups: dict[str, str] = {}
        scores: dict[str, int] = {}
        errors: list[str] = []
        for name, raw in m.groupdict().items():
            raw = raw or ""
            groups[name] = raw
            try:
                scores[name] = self._score(name, raw)
            except ValueError as exc:
                errors.append(str(exc))  # Heka ignores scoring errors; the file keeps partial scores
        return LogFile(path, groups, scores, tuple(errors))

    def _score(self, name: str, raw: str) -> int:
        value = raw.lower() or "missing"
        if name == "MonthName":
            if value not in MONTHS:
                raise ValueError(f"Unable to locate month name: {raw}")
            return MONTHS[value]
        if name == "DayName":
            if value not in DAYS:
                raise ValueError(f"Unable to locate day name: {raw}")
            return DAYS[value]
        table = self.cfg.translation.get(name)
        if table is not None and len(table) > 1:
            if value not in table:
                raise ValueError(f"Value '{value}' not found in translation map '{name}'.")
            return table[value]
        if table is not None and len(table) == 1 and value == "missing":
            return table["missing"]
        if value.isdigit() and value.isascii():
            return int(value)
        return -1

    def stream_name(self, lf: LogFile) -> str:
        """Concatenate the differentiator: group names become their match, other words stay."""
        return "".join(
            lf.groups.get(part, part) if part in lf.groups else part for part in self.cfg.differentiator
        )

    def sort_key(self, lf: LogFile) -> tuple:
        """Oldest first: each priority key ascending, `^key` descending; ties by path."""
        key: list[int] = []
        for p in self.cfg.priority:
            if p.startswith("^"):
                key.append(-lf.scores.get(p[1:], 0))
            else:
                key.append(lf.scores.get(p, 0))
        return tuple(key)

    def walk(self) -> list[str]:
        """Every regular file under the root, in lexical order (directories are never matched)."""
        out: list[str] = []
        if not self.recursive:
            try:
                names = sorted(os.listdir(self.root))
            except OSError:
                return out
            for n in names:
                p = os.path.join(self.root, n)
                if os.path.isfile(p):
                    out.append(p)
            return out
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for n in sorted(filenames):
                out.append(os.path.join(dirpath, n))
        return sorted(out)

    def scan(self, now: float | None = None) -> ScanResult:
        """Match, group and sort every file; oldest_duration filters by mtime (0 turns it off)."""
        now = time.time() if now is None else now
        cutoff = now - self.cfg.oldest_duration if self.cfg.oldest_duration > 0 else None
        streams: dict[str, list[LogFile]] = {}
        for path in self.walk():
            lf = self.match(path)
            if lf is None:
                continue
            if cutoff is not None:
                try:
                    if os.stat(path).st_mtime <= cutoff:
                        continue
                except OSError:
                    continue
            streams.setdefault(self.stream_name(lf), []).append(lf)
        errors: dict[str, str] = {}
        for name in list(streams):
            files = streams[name]
            if len(files) > 1 and not self.cfg.priority:
                errors[name] = f"Found multiple logfiles without Priority to sort on for name: {name}"
                del streams[name]
                continue
            files.sort(key=lambda f: (self.sort_key(f), f.path))
        return ScanResult(dict(sorted(streams.items())), errors)
