"""The router of `heka serve`: offers each delivery to every plugin whose matcher and signer accept it.

`Router` is the `ServeContext` plugins get: they can inject messages (loop-protected, as Heka's
``max_message_loops``), add and remove plugins while running, list the running plugins (the
dashboard does) and log. A plugin whose `process` raises is counted and logged, never fatal.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..message import Message, MessagePrefix, encode_message
from .plugin import Delivery, Plugin

MAX_LOGGED_ERRORS = 5  # per plugin; the rest are only counted


def compile_message_matcher(expr: str | None, *,
                            where: str = "message_matcher") -> Callable[[Message], bool] | None:
    """A predicate for a message_matcher expression; None when it matches everything."""
    if expr is None or expr.strip() in ("", "TRUE"):
        return None
    try:
        from ..matcher import compile_matcher
    except ImportError:
        raise ConfigError(f"{where}: message matchers are not available in this build") from None
    return compile_matcher(expr).match_message


@dataclass
class _Route:
    plugin: Plugin
    match: Callable[[Message], bool] | None
    signer: str | None
    matched: int = 0
    errors: int = 0
    # The plugin's optional `process_repeats`, when it takes every message (no matcher, no signer).
    repeats: Callable[[MessagePrefix, list[Any], int], None] | None = None
    # The plugin's optional `process_raw`, when it takes every message (no matcher, no signer).
    raw: Callable[[bytes, int], None] | None = None


@dataclass
class RouterStats:
    routed: int = 0  # deliveries offered to the plugins
    injected: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # "loop", "stopped"


class Router:
    """Routes deliveries to plugins; the `ServeContext` handed to them."""

    def __init__(self, state_dir: Path, *, max_message_loops: int = 4,
                 log: Callable[[str], None] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.max_message_loops = max_message_loops
        self._routes: list[_Route] = []
        self._snapshot: tuple[_Route, ...] = ()  # what `route` iterates; rebuilt on add/remove only
        self.takes_repeats = True  # every route takes `route_repeats` batches whole (see there)
        self.takes_raw = False  # there are routes and every one takes `route_raw` (see there)
        self._log = log or (lambda text: sys.stderr.write(f"heka serve: {text}\n"))
        self.stats = RouterStats()
        self.plugin_errors: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # -- ServeContext ---------------------------------------------------------------------------
    def log(self, text: str) -> None:
        """One line on stderr, prefixed with the daemon's name."""
        self._log(text)

    def plugins(self) -> list[Plugin]:
        """The running plugins, in the order they were added."""
        return [r.plugin for r in self._routes]

    def add_plugin(self, plugin: Plugin) -> None:
        """Start routing to `plugin` (already started by the caller). Its message_matcher is compiled
        here; a bad expression raises MatcherSyntaxError/ConfigError and nothing is added."""
        name = getattr(plugin, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"plugin {plugin!r} has no name")
        if any(r.plugin.name == name for r in self._routes):
            raise ConfigError(f"a plugin named {name!r} is already running")
        match = compile_message_matcher(getattr(plugin, "message_matcher", None),
                                        where=f"{name}: message_matcher")
        route = _Route(plugin, match, getattr(plugin, "message_signer", None))
        repeats = getattr(plugin, "process_repeats", None)
        if match is None and route.signer is None and callable(repeats):
            route.repeats = repeats
        raw = getattr(plugin, "process_raw", None)
        if match is None and route.signer is None and callable(raw):
            route.raw = raw
        self._routes.append(route)
        self._changed()

    def _changed(self) -> None:
        self._snapshot = tuple(self._routes)
        self.takes_repeats = all(r.repeats is not None for r in self._routes)
        self.takes_raw = bool(self._routes) and all(r.raw is not None for r in self._routes)

    def remove_plugin(self, name: str) -> Plugin | None:
        """Stop routing to the named plugin and return it (stopping it is the caller's job)."""
        for i, r in enumerate(self._routes):
            if r.plugin.name == name:
                del self._routes[i]
                self._changed()
                return r.plugin
        return None

    def inject(self, message: Message, *, origin: str, loops: int = 0) -> None:
        """Route a message made by a plugin. `loops` is the loop count of the delivery that caused it
        (0 for timer-driven injects); past `max_message_loops` the message is dropped and counted."""
        if self._closed:
            self.stats.dropped["stopped"] += 1
            return
        if loops + 1 > self.max_message_loops:
            self.stats.dropped["loop"] += 1
            if self.stats.dropped["loop"] <= MAX_LOGGED_ERRORS:
                self._log(f"{origin}: injected message dropped: it looped more than "
                          f"{self.max_message_loops} times (max_message_loops)")
            return
        try:
            raw = encode_message(message)
        except Exception as exc:  # noqa: BLE001 - a plugin handed us something unencodable
            self.stats.dropped["unencodable"] += 1
            self._log(f"{origin}: injected message cannot be encoded: {exc}")
            return
        self.stats.injected += 1
        delivery = Delivery(message=message, raw=raw, signer=None, listener="", loops=loops + 1,
                            received_ns=time.time_ns())
        # Route later, on the loop, not inside the injecting plugin's process() call.
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon(self.route, delivery)
        else:
            self.route(delivery)

    # -- routing --------------------------------------------------------------------------------
    def route(self, delivery: Delivery) -> None:
        """Offer `delivery` to every matching plugin."""
        self.stats.routed += 1
        # A snapshot: plugins added or removed by a process() call take effect from the next delivery.
        for r in self._snapshot:
            self._offer(r, delivery)

    def route_raw(self, raw: bytes, received_ns: int) -> None:
        """Route one well-formed message given only as its bytes (`raw`, not decoded: see
        `hekacli.message.well_formed`). Only for when `takes_raw`: every plugin has
        ``process_raw(raw, received_ns)`` and neither matcher nor signer, so each gets the bytes and
        decodes them only if it needs the message. Counts as `route` does."""
        self.stats.routed += 1
        for r in self._snapshot:
            try:
                r.matched += 1
                r.raw(raw, received_ns)  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - one plugin's bug must not stop the daemon
                self._failed(r, exc)

    def route_repeats(self, prefix: MessagePrefix, tails: list[Any], received_ns: int,
                      deliveries: Callable[[], list[Delivery]]) -> None:
        """Route ``len(tails)`` consecutive messages of one stream that are `prefix` hits (each is
        `prefix.message` plus its trailing integer field(s) with that tail, see `TailMemo`; in runs
        cut by a `RepeatCutter` the Timestamp may differ from message to message). A plugin with
        ``process_repeats(prefix, tails, received_ns)`` and neither matcher nor signer gets them in
        one call (a failing call counts one error); every other plugin gets the `Delivery` objects
        `deliveries()` makes, one `process` call each, as from `route`. Each plugin sees the messages
        in order; the daemon uses this only when `takes_repeats` (then no plugin needs deliveries).
        A plugin that needs each message's Timestamp must not have `process_repeats`."""
        n = len(tails)
        self.stats.routed += n
        made: list[Delivery] | None = None
        for r in self._snapshot:
            repeats = r.repeats
            if repeats is None:
                if made is None:
                    made = deliveries()
                for delivery in made:
                    self._offer(r, delivery)
                continue
            try:
                r.matched += n
                repeats(prefix, tails, received_ns)
            except Exception as exc:  # noqa: BLE001 - one plugin's bug must not stop the daemon
                self._failed(r, exc)

    def _offer(self, r: _Route, delivery: Delivery) -> None:
        """Hand `delivery` to one plugin when its signer and matcher take it."""
        try:
            if r.signer is not None and delivery.signer != r.signer:
                return
            # `message` only when a matcher needs it: a LazyDelivery decodes on first access.
            if r.match is not None and not r.match(delivery.message):
                return
            r.matched += 1
            r.plugin.process(delivery)
        except Exception as exc:  # noqa: BLE001 - one plugin's bug must not stop the daemon
            self._failed(r, exc)

    def _failed(self, r: _Route, exc: Exception) -> None:
        r.errors += 1
        self.plugin_errors[r.plugin.name] += 1
        if r.errors <= MAX_LOGGED_ERRORS:
            more = " (further errors are only counted)" if r.errors == MAX_LOGGED_ERRORS else ""
            self._log(f"{r.plugin.name}: process failed: {type(exc).__name__}: {exc}{more}")

    def close(self) -> None:
        """Refuse further injects (shutdown)."""
        self._closed = True

    def plugin_summary(self) -> list[dict[str, Any]]:
        """Per plugin: name, matched, errors, and its own stats()."""
        out = []
        for r in self._routes:
            try:
                stats = dict(r.plugin.stats())
            except Exception as exc:  # noqa: BLE001
                stats = {"stats_error": str(exc)}
            out.append({"name": r.plugin.name, "matched": r.matched, "errors": r.errors, "stats": stats})
        return out
