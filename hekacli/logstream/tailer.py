"""Run every stream of a config: read batches, write them, then move the checkpoint.

The order per batch is fixed: the records are written (and flushed, or queued by the network sender),
then the journal is saved atomically (never at offset 0, which cannot tell one file from another: see
`Tailer._commit`). A `kill -9` therefore repeats at most the last batch; a clean
stop (SIGINT/SIGTERM, or the end of the input without --follow) finishes the batch in hand, saves,
and repeats nothing on the next start.

File events come from watchdog (inotify); when it cannot start, polling every check_data_interval
is used. Polling also runs with watchdog, as a safety net, and the directories are rescanned every
rescan_interval to find new streams.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import OutputError
from .config import LogstreamConfig, StreamConfig
from .discovery import StreamMatcher
from .journal import JournalError, journal_path, read_journal, write_journal
from .locate import GZ_WAIT, resolve_start
from .reader import StreamReader
from .sink import Sink


@dataclass
class StreamState:
    cfg: StreamConfig
    reader: StreamReader
    journal: str
    saved: object = None


def open_stream(
    cfg: StreamConfig,
    matcher: StreamMatcher,
    name: str,
    files: list,
    *,
    follow: bool,
    notify: Callable[[str], None],
    verbose: Callable[[str], None] | None = None,
    move_corrupt: bool = True,
) -> StreamState:
    """Read the journal, decide where to start (reporting anything unusual), open the reader."""
    jpath = journal_path(cfg.journal_directory, name)
    problem = None
    try:
        pos = read_journal(jpath)
    except JournalError as exc:
        pos = None
        problem = str(exc)
        if move_corrupt:
            aside = jpath + ".corrupt"
            try:
                os.replace(jpath, aside)
                problem += f" (kept as {aside})"
            except OSError:
                pass
    decision = resolve_start(files, pos, matcher, initial_tail=cfg.initial_tail, journal_problem=problem)
    deadline = time.monotonic() + GZ_WAIT
    while decision.reason == "wait" and time.monotonic() < deadline:
        time.sleep(0.1)
        files = matcher.scan().streams.get(name, [])
        decision = resolve_start(files, pos, matcher, initial_tail=cfg.initial_tail)
    if decision.reason in ("relocated", "replaced", "stale", "corrupt", "wait"):
        notify(f"stream {name}: {decision.detail}")
    reader = StreamReader(
        name,
        cfg,
        matcher,
        files,
        follow=follow,
        notify=lambda m: notify(f"stream {name}: {m}"),
        verbose=(lambda m: verbose(f"stream {name}: {m}")) if verbose else None,
    )
    reader.start(decision)
    return StreamState(cfg, reader, jpath, pos if decision.reason == "journal" else None)


class Tailer:
    """Reads the streams of a config and writes their records to a sink."""

    def __init__(
        self,
        config: LogstreamConfig,
        sink: Sink,
        *,
        follow: bool = False,
        batch_records: int = 50000,
        batch_bytes: int = 8 << 20,
        checkpoint: bool = True,
        fsync: bool = True,
        only: set[str] | None = None,
        notify: Callable[[str], None] | None = None,
        verbose: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.follow = follow
        self.batch_records = max(1, batch_records)
        self.batch_bytes = max(1, batch_bytes)
        self.checkpoint = checkpoint
        self.fsync = fsync
        self.only = only
        self.notify = notify or (lambda m: None)
        self.verbose = verbose or (lambda m: None)
        self.streams: dict[str, StreamState] = {}
        self.matchers: list[tuple[StreamConfig, StreamMatcher]] = []
        self.stop_signal: int | None = None
        self.wake = threading.Event()
        self.observer = None
        self.scan_errors: dict[str, str] = {}
        # Batches written but not yet made safe by the output (network memory queue), oldest first.
        self.pending: collections.deque = collections.deque()
        # Fault-injection hook for the crash tests: seconds between writing a batch and saving it.
        self.crash_window = float(os.environ.get("HEKA_LOGSTREAM_CRASH_WINDOW", "0") or 0)

    # ---- setup -----------------------------------------------------------------------------------
    def setup(self) -> None:
        for cfg in self.config.sections:
            self.sink.prepare(cfg)
            self.matchers.append((cfg, StreamMatcher(cfg)))
        self._discover()
        if self.only:
            missing = self.only - set(self.streams)
            for name in sorted(missing):
                self.notify(f"stream {name}: no such stream (yet)")

    def _discover(self) -> None:
        for cfg, matcher in self.matchers:
            result = matcher.scan()
            for name, err in result.errors.items():
                if self.scan_errors.get(name) != err:
                    self.notify(f"[{cfg.name}] {err}")
                    self.scan_errors[name] = err
            for name, files in result.streams.items():
                if name in self.streams or (self.only and name not in self.only):
                    continue
                self.streams[name] = open_stream(
                    cfg, matcher, name, files, follow=self.follow, notify=self.notify, verbose=self.verbose
                )
                st = self.streams[name]
                start = st.reader.position()
                if start is not None and start != st.saved:  # Heka saves at the first EOF; we save the start
                    self._commit(st, start)  # (unless it is at offset 0: see _commit)

    def _start_watching(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # polling only
            return
        tailer = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # noqa: ANN001 - watchdog's event type
                if event.event_type in ("opened", "closed_no_write", "attrib"):
                    return  # our own reads (hash checks) open files: not news
                if event.event_type in ("created", "moved", "deleted"):
                    for st in tailer.streams.values():
                        st.reader.dirty = True
                tailer.wake.set()

        try:
            observer = Observer()
            for _cfg, matcher in self.matchers:
                observer.schedule(Handler(), matcher.root, recursive=matcher.recursive)
            observer.daemon = True
            observer.start()
        except Exception as exc:  # noqa: BLE001 - inotify limits etc.: fall back to polling
            self.notify(f"file events unavailable ({exc}); polling every check_data_interval")
            return
        self.observer = observer

    def _install_signals(self) -> dict:
        old = {}

        def handler(signum, frame) -> None:  # noqa: ANN001
            self.stop_signal = signum
            self.wake.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return old

    # ---- the loop --------------------------------------------------------------------------------
    def _commit_confirmed(self) -> None:
        """Save checkpoints for the batches the output has made safe, oldest first."""
        while self.pending and self.sink.confirmed(self.pending[0][0]):
            _, st, end = self.pending.popleft()
            self._commit(st, end)

    def _commit(self, st: StreamState, end) -> None:
        # A position at offset 0 names a file but cannot identify it (its hash is that of 500 NULs,
        # which matches any file). Saving one would replace the last position that can: if the file
        # at that name is rotated away before a batch from it is saved (copytruncate, rename), a restart
        # would read the new file under that name from 0 and skip the whole rotated one. So the journal
        # keeps the end of the previous file instead; a restart finds it again by hash and moves on to
        # the next file from there (at most the unsaved batch repeats). A start at 0 (fresh, stale,
        # replaced, corrupt) is not saved either: the journal left as it is leads to that same start.
        if end is None or end.seek == 0:
            return
        if self.checkpoint and end != st.saved:
            try:
                write_journal(st.journal, end, fsync=self.fsync)
            except OSError as exc:
                raise OutputError(
                    f"cannot save the checkpoint: {exc.strerror or exc}", file=st.journal
                ) from None
            st.saved = end

    def run(self) -> int:
        """Read until the end (or until stopped with --follow). Returns the signal that stopped us, or 0."""
        self.setup()
        old = self._install_signals()
        if self.follow:
            self._start_watching()
        if self.follow:
            self.notify(f"following {len(self.streams)} stream(s)")
        poll = min([c.check_data_interval for c, _ in self.matchers] or [0.25])
        rescan = min([c.rescan_interval for c, _ in self.matchers] or [60.0])
        next_rescan = time.monotonic() + rescan
        try:
            while self.stop_signal is None:
                progressed = False
                for st in list(self.streams.values()):
                    for _ in range(8):  # fairness between streams
                        if self.stop_signal is not None:
                            break
                        batch = st.reader.next_batch(self.batch_records, self.batch_bytes)
                        if batch is None:
                            break
                        self.sink.write(batch, st.cfg)
                        if self.crash_window and batch.count:
                            time.sleep(self.crash_window)  # test hook: widen the write -> save window
                        self.pending.append((self.sink.mark(), st, batch.end))  # positions only: no data kept
                        self._commit_confirmed()
                        progressed = True
                if not self.follow and all(st.reader.done for st in self.streams.values()):
                    break
                if self.follow and time.monotonic() >= next_rescan:
                    self._discover()
                    next_rescan = time.monotonic() + rescan
                self._commit_confirmed()
                if not progressed:
                    if self.follow:
                        self.wake.wait(poll)
                        self.wake.clear()
                    else:
                        time.sleep(0.01)
            if self.pending:  # a clean stop: let the network deliver, then save what it confirmed
                self.sink.drain(30.0)
                self._commit_confirmed()
        finally:
            if self.observer is not None:
                self.observer.stop()
            for st in self.streams.values():
                st.reader.close()
            for sig, h in old.items():
                signal.signal(sig, h)
        return self.stop_signal or 0

    # ---- totals ----------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        out = {"records": 0, "bytes": 0, "cut": 0, "rotations": 0, "truncations": 0}
        for st in self.streams.values():
            s = st.reader.stats
            out["records"] += s.records
            out["bytes"] += s.bytes
            out["cut"] += s.cut_lines
            out["rotations"] += s.rotations
            out["truncations"] += s.truncations
        return out
