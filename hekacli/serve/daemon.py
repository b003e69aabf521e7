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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, DecodeError, HekaError
from ..framing import DROP_UNDECODABLE, HEADER_FRAMING_SIZE, Record
from ..message import decode_message
from .config import ServeConfig
from .listeners import Listener
from .outputs import OutputPlugin
from .plugin import PLUGIN_FACTORIES, Delivery, Plugin
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
            for lc in self.config.listeners:
                lst = Listener(lc, self._accept_batch, signers=self.config.signers,
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
    def _accept(self, record: Record, listener: Listener) -> None:
        """Accept one record (see `_accept_batch`)."""
        self._accept_batch([record], listener)

    def _accept_batch(self, records: list[Record], listener: Listener) -> None:
        """Decode and route the records of one read. They arrived together, so they share one
        receive timestamp (one clock read per chunk instead of per message)."""
        received_ns = time.time_ns()
        count = self.config.count
        url = listener.url
        stats = listener.stats
        route = self.router.route
        skip = HEADER_FRAMING_SIZE
        for record in records:
            if count is not None and self.accepted >= count:
                self.ignored += 1  # arrived after --count was reached, while stopping: not a drop
                continue
            try:
                # Decode in place (no copy out of the record; nothing reads its cached message later).
                msg = decode_message(record.raw, record.header_len + skip)
            except DecodeError:
                stats.dropped[DROP_UNDECODABLE] += 1
                continue
            self.accepted += 1
            stats.accepted += 1
            route(Delivery(msg, record.message_bytes, record.signer, url, 0, received_ns))
            if count is not None and self.accepted >= count:
                self.request_stop(f"--count {count} reached")

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
