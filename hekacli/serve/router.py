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
from ..message import Message, encode_message
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
        self._routes.append(_Route(plugin, match, getattr(plugin, "message_signer", None)))
        self._snapshot = tuple(self._routes)

    def remove_plugin(self, name: str) -> Plugin | None:
        """Stop routing to the named plugin and return it (stopping it is the caller's job)."""
        for i, r in enumerate(self._routes):
            if r.plugin.name == name:
                del self._routes[i]
                self._snapshot = tuple(self._routes)
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
        msg = delivery.message
        # A snapshot: plugins added or removed by a process() call take effect from the next delivery.
        for r in self._snapshot:
            try:
                if r.signer is not None and delivery.signer != r.signer:
                    continue
                if r.match is not None and not r.match(msg):
                    continue
                r.matched += 1
                r.plugin.process(delivery)
            except Exception as exc:  # noqa: BLE001 - one plugin's bug must not stop the daemon
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
