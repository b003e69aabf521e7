"""`ServeDaemon`: listeners (inputs) -> `Router` -> plugins (outputs, verifiers, sandboxes, dashboard).

Use it from the CLI (`run_forever`, which handles SIGINT/SIGTERM) or in-process:

    async with ServeDaemon(config) as d:      # or: await d.start() ... await d.stop()
        url = d.urls[0]

    with ServeDaemon(config).running() as d:  # on a background thread, for synchronous tests
        send_framed(d.urls[0], data)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, DecodeError, HekaError
from ..framing import DROP_UNDECODABLE, HEADER_FRAMING_SIZE, RUN, RecordRun, Span
from ..message import MessagePrefix, TailMemo, decode_message, well_formed
from .config import ServeConfig
from .listeners import Listener
from .outputs import OutputPlugin
from .plugin import PLUGIN_FACTORIES, Delivery, LazyDelivery, Plugin
from .router import Router

PLUGIN_STOP_TIMEOUT = 10.0
DRAIN_SECONDS = 5.0  # at most this long to read what clients sent before a stop


def load_plugin_factory(section: str) -> Callable[[Any, Any], list[Plugin]]:
    """Import the factory registered for a config section; ConfigError if it is not available."""
    target = PLUGIN_FACTORIES[section]
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigError(f"section {section!r} needs {module_name}, which is not available in this "
                              "build", field=section) from None
        raise
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise ConfigError(f"section {section!r}: {target} is not available in this build", field=section)
    return factory


class ServeDaemon:
    """The `heka serve` daemon. Not thread-safe: everything runs on one asyncio loop."""

    def __init__(self, config: ServeConfig | Mapping[str, Any], *, log: Callable[[str], None] | None = None,
                 stdout: IO[bytes] | None = None) -> None:
        self.config = config if isinstance(config, ServeConfig) else ServeConfig.from_mapping(config)
        self._log_fn = log
        self._stdout = stdout
        self.router = Router(self.config.state_dir, max_message_loops=self.config.max_message_loops,
                             log=self.log)
        self.listeners: list[Listener] = []
        self.output: OutputPlugin | None = None
        self._started: list[Plugin] = []  # plugins this daemon started (factories + output)
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.accepted = 0
        self.dropped: Counter[str] = Counter()  # daemon-level drops
        self.ignored = 0  # records that arrived after --count was reached
        self.started_ns = 0
        self.stopped_ns = 0
        self.stop_reason = ""
        self._running = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.drain_seconds = DRAIN_SECONDS

    # -- ServeContext (delegated to the router) ---------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.router.state_dir

    def log(self, text: str) -> None:
        if self._log_fn is not None:
            self._log_fn(text)
        else:
            sys.stderr.write(f"heka serve: {text}\n")
            sys.stderr.flush()

    def plugins(self) -> list[Plugin]:
        return self.router.plugins()

    @property
    def urls(self) -> list[str]:
        """The listener URLs with their bound ports."""
        return [lst.url for lst in self.listeners]

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the listeners, build and start the plugins. Raises HekaError (and cleans up) on failure."""
        self.config.validate()
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self.router.bind_loop(self._loop)
        self.started_ns = time.time_ns()
        try:
            await self._start_plugins()
            if self.router.takes_raw:
                well_formed(b"")  # builds its protobuf class now, not while the first client waits
            for lc in self.config.listeners:
                lst = Listener(lc, self._accept_spans, signers=self.config.signers,
                               max_message_size=self.config.max_message_size, log=self.log)
                await lst.start()
                self.listeners.append(lst)
        except BaseException:
            await self.stop()
            raise
        self._running = True

    async def _start_plugins(self) -> None:
        if self.config.plugins:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.config.output.path != "none":
            out = OutputPlugin(self.config.output, on_broken=self._stdout_closed, stdout=self._stdout)
            await out.start(self.router)
            self._started.append(out)
            self.output = out
            # Routed first, so what a sandbox injects while a message is processed is written after it.
            self.router.add_plugin(out)
        for section, value in self.config.plugins.items():
            factory = load_plugin_factory(section)
            try:
                plugins = factory(value, self.router)
            except HekaError as exc:
                if exc.file is None and self.config.source:
                    exc.file = self.config.source
                raise
            for p in plugins or []:
                await p.start(self.router)
                self._started.append(p)
                self.router.add_plugin(p)

    def _stdout_closed(self) -> None:
        self.request_stop("stdout closed")

    def request_stop(self, reason: str = "") -> None:
        """Ask the daemon to stop (safe from the loop thread; use `stop_threadsafe` from others)."""
        if not self.stop_reason:
            self.stop_reason = reason
        if self._stop_event is not None:
            self._stop_event.set()

    def stop_threadsafe(self, reason: str = "") -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.request_stop, reason)

    async def wait(self) -> None:
        """Until `request_stop` (signal, --count reached, stdout closed)."""
        assert self._stop_event is not None, "start() first"
        await self._stop_event.wait()

    async def stop(self) -> None:
        """Close listeners, stop plugins (filters first, the output last), flush. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        # Drain what clients already sent, unless we stop because --count was reached (the rest
        # would only be ignored) or the output is gone.
        grace = 0.0 if self.stop_reason.startswith(("--count", "stdout closed")) else self.drain_seconds
        await asyncio.gather(*(lst.stop(grace) for lst in self.listeners))
        await asyncio.sleep(0)  # let routed-later injects run
        plugins = self.router.plugins()
        output = self.output
        for p in reversed(plugins):
            if p is output:
                continue
            await self._stop_plugin(p)
        await asyncio.sleep(0)
        self.router.close()
        if output is not None:
            await self._stop_plugin(output)
        self.stopped_ns = time.time_ns()
        if self.config.stats_file:
            self._write_stats(self.config.stats_file)

    async def _stop_plugin(self, p: Plugin) -> None:
        try:
            await asyncio.wait_for(p.stop(), PLUGIN_STOP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - report and keep stopping the others
            self.log(f"{getattr(p, 'name', p)}: stop failed: {type(exc).__name__}: {exc}")

    async def __aenter__(self) -> ServeDaemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_forever(self, *, handle_signals: bool = True) -> None:
        """start, wait for a signal / --count / closed stdout, stop."""
        await self.start()
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
                    installed.append(sig)
        try:
            await self.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()

    # -- background thread (tests, embedding) -----------------------------------------------------
    @contextlib.contextmanager
    def running(self, timeout: float = 30) -> Iterator[ServeDaemon]:
        """Run on a background thread for the duration of a `with` block (listening when entered)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            try:
                await self.start()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                await self.wait()
            finally:
                await self.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="heka-serve", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("heka serve did not start in time")
        if failure:
            self._thread.join(timeout)
            raise failure[0]
        try:
            yield self
        finally:
            self.stop_threadsafe("stopped by caller")
            self._thread.join(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the background thread ended (e.g. after --count); True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the input side ---------------------------------------------------------------------------
    def _accept_spans(self, buf: bytes, spans: Iterable[Span], listener: Listener, memo: TailMemo) -> None:
        """Decode and route the records of one read (`Splitter.iter_spans` output). They arrived
        together, so they share one receive timestamp (one clock read per chunk, not per message).

        A message that repeats the connection's last one but for a trailing integer field (what
        `memo` recognises, byte for byte, alone or in runs cut by a `RepeatCutter`) is known to be
        well-formed without decoding it. When every plugin takes such messages in batches
        (`Router.takes_repeats`: `heka serve --verify`), they go to the router in `route_repeats`
        calls; otherwise each is routed as a `LazyDelivery`, decoded only if a plugin reads its
        `message`. Everything else is decoded here, unless every plugin takes undecoded bytes
        (`Router.takes_raw`): then it is only checked (`well_formed`) and routed as bytes, decoded
        when the memo wants to learn from it. Undecodable messages are dropped and counted."""
        received_ns = time.time_ns()
        count = self.config.count
        url = listener.url
        stats = listener.stats
        router = self.router
        route = router.route
        route_raw = router.route_raw
        match = memo.match
        due = memo.due
        may_learn = memo.may_learn
        skip = HEADER_FRAMING_SIZE
        batch = router.takes_repeats
        tails: list[Any] = []  # hits not routed yet (batch mode), their spans and prefix
        hits: list[Span] = []
        hits_prefix = memo.prefix
        accepted = self.accepted  # a local for speed: written back in `finally`
        try:
            for span in spans:
                i, hlen, end, header, signer = span
                if count is not None and accepted >= count:
                    # arrived after --count was reached, while stopping: not a drop
                    self.ignored += header.count if hlen == RUN else 1
                    continue
                if hlen == RUN:  # a run of hits cut by the RepeatCutter
                    if tails:
                        self._route_hits(buf, hits, tails, hits_prefix, url, received_ns, stats)
                        tails, hits = [], []
                    run: RecordRun = header
                    if count is not None and accepted + run.count > count:
                        self.ignored += accepted + run.count - count
                        run.values = run.values[:count - accepted]
                        run.count = len(run.values)
                    accepted += run.count
                    self._route_run(buf, i, run, url, received_ns, stats)
                    if count is not None and accepted >= count:
                        self.request_stop(f"--count {count} reached")
                    continue
                start = i + hlen + skip
                # (nothing learned yet, or nothing learnable: no match and no rebase, skip the calls)
                tail = match(buf, start, end) if memo.prefix is not None else None
                if tail is None:
                    if tails:  # the hits end here: route them first, so every plugin sees stream order
                        self._route_hits(buf, hits, tails, hits_prefix, url, received_ns, stats)
                        tails, hits = [], []
                        batch = router.takes_repeats  # a plugin may have been added meanwhile
                    if memo.prefix is not None and memo.rebase(buf, start, end):  # a new timestamp only
                        tail = match(buf, start, end)
                if tail is not None:
                    if batch:
                        if not tails:
                            hits_prefix = memo.prefix
                        tails.append(tail)
                        hits.append(span)
                        accepted += 1
                        if count is not None and accepted >= count:
                            self.request_stop(f"--count {count} reached")
                        continue
                    delivery: Delivery = LazyDelivery(buf[start:end], signer, url, received_ns,
                                                      memo.prefix, tail)  # type: ignore[arg-type]
                else:
                    raw = buf[start:end]
                    if router.takes_raw:  # no plugin needs the message decoded: check it, pass the bytes
                        if not well_formed(raw):
                            stats.dropped[DROP_UNDECODABLE] += 1
                            continue
                        # Decoded only when the memo would learn from it (now and then while nothing
                        # repeats, and only when it ends in a one-value integer field).
                        if not due() or not may_learn(raw):
                            accepted += 1
                            stats.accepted += 1
                            route_raw(raw, received_ns)
                            if count is not None and accepted >= count:
                                self.request_stop(f"--count {count} reached")
                            continue
                        msg = decode_message(raw)  # well-formed: cannot fail
                        memo.learn_due(raw, msg)
                    else:
                        try:
                            msg = decode_message(raw)
                        except DecodeError:
                            stats.dropped[DROP_UNDECODABLE] += 1
                            continue
                        memo.learn(raw, msg)
                    delivery = Delivery(msg, raw, signer, url, 0, received_ns)
                accepted += 1
                stats.accepted += 1
                route(delivery)
                if count is not None and accepted >= count:
                    self.request_stop(f"--count {count} reached")
            if tails:
                self._route_hits(buf, hits, tails, hits_prefix, url, received_ns, stats)
        finally:
            self.accepted = accepted

    def _route_hits(self, buf: bytes, hits: list[Span], tails: list[Any], prefix: MessagePrefix | None,
                    url: str, received_ns: int, stats: Any) -> None:
        """Route consecutive `TailMemo` hits (their spans and tail values)."""
        stats.accepted += len(tails)
        assert prefix is not None

        def deliveries() -> list[Delivery]:
            skip = HEADER_FRAMING_SIZE
            return [LazyDelivery(buf[i + hlen + skip:end], signer, url, received_ns, prefix, tail)
                    for (i, hlen, end, _h, signer), tail in zip(hits, tails, strict=True)]

        self.router.route_repeats(prefix, tails, received_ns, deliveries)

    def _route_run(self, buf: bytes, start: int, run: RecordRun, url: str, received_ns: int,
                   stats: Any) -> None:
        """Route a run the RepeatCutter cut (`run.count` records from `start`)."""
        stats.accepted += run.count
        size = run.record_len
        prefix = run.prefix

        def deliveries() -> list[Delivery]:
            first = start + run.body_start
            return [LazyDelivery(buf[first + j * size:start + (j + 1) * size], None, url, received_ns,
                                 prefix, v) for j, v in enumerate(run.values)]

        if run.count:
            self.router.route_repeats(prefix, run.values, received_ns, deliveries)

    # -- reporting --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counters: totals, per listener, per plugin, router drops (JSON-safe)."""
        listeners = {lst.url: lst.stats.as_dict() for lst in self.listeners}
        dropped: Counter[str] = Counter()
        received = 0
        for lst in self.listeners:
            dropped.update(lst.stats.dropped)
            received += lst.stats.as_dict()["received"]
        dropped.update(self.dropped)
        end = self.stopped_ns or time.time_ns()
        return {
            "received": received,
            "accepted": self.accepted,
            "ignored_after_count": self.ignored,
            "dropped": dict(sorted(dropped.items())),
            "dropped_total": sum(dropped.values()),
            "listeners": listeners,
            "router": {"routed": self.router.stats.routed, "injected": self.router.stats.injected,
                       "dropped": dict(self.router.stats.dropped)},
            "plugins": self.router.plugin_summary(),
            "plugin_errors": sum(self.router.plugin_errors.values()),
            "failed_plugins": self.failed_plugins(),
            "seconds": round((end - self.started_ns) / 1e9, 3) if self.started_ns else 0.0,
            "stop_reason": self.stop_reason,
        }

    def failed_plugins(self) -> list[str]:
        """Names of plugins whose optional ``failed()`` says their check failed."""
        out = []
        for p in self.router.plugins():
            check = getattr(p, "failed", None)
            if callable(check):
                try:
                    if check():
                        out.append(p.name)
                except Exception as exc:  # noqa: BLE001 - a broken check counts as failed
                    self.log(f"{p.name}: failed() raised {type(exc).__name__}: {exc}")
                    out.append(p.name)
        return out

    def summary_lines(self) -> list[str]:
        """The human summary printed on stderr when the daemon stops."""
        s = self.summary()
        lines = [f"stopped ({s['stop_reason'] or 'stopped'}) after {s['seconds']:.1f}s: "
                 f"received {s['received']}, accepted {s['accepted']}, "
                 f"dropped {s['dropped_total']}{_reasons(s['dropped'])}"]
        if s["ignored_after_count"]:
            lines[0] += f", ignored {s['ignored_after_count']} after --count"
        for url, st in s["listeners"].items():
            lines.append(f"  {url}: connections {st['connections']}, bytes {st['bytes']}, received "
                         f"{st['received']}, accepted {st['accepted']}, dropped "
                         f"{sum(st['dropped'].values())}{_reasons(st['dropped'])}")
        r = s["router"]
        if r["injected"] or r["dropped"]:
            lines.append(f"  router: injected {r['injected']}, dropped {sum(r['dropped'].values())}"
                         f"{_reasons(r['dropped'])}")
        for p in s["plugins"]:
            failed = " (its check FAILED)" if p["name"] in s["failed_plugins"] else ""
            lines.append(f"  plugin {p['name']}: matched {p['matched']}, errors {p['errors']}{failed}")
        return lines

    def _write_stats(self, path: str) -> None:
        try:
            Path(path).write_text(json.dumps(self.summary(), indent=2, default=str) + "\n")
        except OSError as exc:
            self.log(f"cannot write stats file {path}: {exc.strerror or exc}")


def _reasons(counts: Mapping[str, int]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"
