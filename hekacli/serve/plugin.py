"""The contract between `heka serve`'s router and what it feeds: outputs, verifiers, sandboxes.

Inputs (listeners) turn framed records into `Delivery` objects and hand them to the router; the
router offers each delivery to every plugin whose `message_matcher` accepts the message and whose
`message_signer` (if set) equals the delivery's verified signer, exactly as Heka's MatchRunner did.
Plugins may inject new messages back into the router through `ServeContext.inject` (sandboxes do);
injected messages carry a loop count and are dropped past `max_message_loops`.

Plugin sections of the serve YAML config are built by factories registered in `PLUGIN_FACTORIES`:
``section name -> "module:function"``, imported lazily so the daemon only loads what a config uses.
A factory is ``build(section: Any, ctx: ServeContext) -> list[Plugin]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..message import Message, MessagePrefix, decode_message

# YAML section -> factory. Each factory module belongs to the area that builds that plugin.
PLUGIN_FACTORIES: dict[str, str] = {
    "verify": "hekacli.flood.verify:build_serve_plugins",  # heka serve --verify (flood issue)
    "filters": "hekacli.sandbox.serve_plugin:build_serve_plugins",  # Lua sandbox filters (sandbox issue)
    "sandbox_manager": "hekacli.serve.manager:build_serve_plugins",  # SandboxManager (sbmgr issue)
    "dashboard": "hekacli.serve.dashboard:build_serve_plugins",  # HTTP dashboard (sbmgr issue)
}


@dataclass(slots=True)
class Delivery:
    """One message as the router sees it."""

    message: Message
    raw: bytes  # the protobuf message bytes as received (not the framing)
    signer: str | None = None  # verified signer name (HMAC checked), None when unsigned
    listener: str = ""  # the listener URL it came from, "" when injected
    loops: int = 0  # how many times it went round through inject (loop protection)
    received_ns: int = 0  # time.time_ns() at receipt
    # Set when the message is `prefix.message` plus its trailing integer field(s) with the value(s)
    # `tail` (see `hekacli.message.TailMemo`): hot plugins may read that instead of `message` (which
    # then need not be decoded at all, see `LazyDelivery`).
    prefix: MessagePrefix | None = None
    tail: Any = 0


class LazyDelivery(Delivery):
    """A Delivery whose `message` is decoded from `raw` on first access (then kept): the daemon
    passes these for messages it knows are well-formed without decoding them (`prefix` is set), so
    plugins that read only `prefix`/`tail` (the flood verifier) cost no decode. Behaves as Delivery."""

    __slots__ = ("_decoded",)

    def __init__(self, raw: bytes, signer: str | None, listener: str, received_ns: int,
                 prefix: MessagePrefix, tail: Any) -> None:
        self.raw = raw
        self.signer = signer
        self.listener = listener
        self.loops = 0
        self.received_ns = received_ns
        self.prefix = prefix
        self.tail = tail
        self._decoded: Message | None = None

    @property  # type: ignore[override]
    def message(self) -> Message:
        if self._decoded is None:
            self._decoded = decode_message(self.raw)
        return self._decoded

    @message.setter
    def message(self, value: Message) -> None:
        self._decoded = value


@runtime_checkable
class ServeContext(Protocol):
    """What the daemon offers plugins."""

    state_dir: Path  # where plugins keep files across restarts (preserved sandboxes, manager files)

    def inject(self, message: Message, *, origin: str, loops: int = 0) -> None:
        """Route a new message (from a sandbox) back through the router."""

    def add_plugin(self, plugin: Plugin) -> None:
        """Start routing to a plugin while running (used by the SandboxManager)."""

    def remove_plugin(self, name: str) -> Plugin | None:
        """Stop routing to the named plugin and return it (its `stop` is the caller's job)."""

    def plugins(self) -> list[Plugin]:
        """The running plugins, in the order they were added."""

    def log(self, text: str) -> None:
        """One line on stderr, prefixed with the daemon's name."""


@runtime_checkable
class Plugin(Protocol):
    """A router destination. `process` runs on the event-loop thread and must not block long."""

    name: str
    message_matcher: str | None  # message_matcher expression; None means every message
    message_signer: str | None  # only messages verified as signed by this signer

    async def start(self, ctx: ServeContext) -> None: ...

    def process(self, delivery: Delivery) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        """Counters for the summary on stop and for the dashboard (JSON-safe)."""
        ...

    # Optional: ``process_repeats(prefix, tails, received_ns)``. A plugin without matcher and signer
    # that has it gets runs of repeated messages in one call instead of one `process` each: every
    # message is ``prefix.message`` (a `hekacli.message.MessagePrefix`) plus its trailing integer
    # field(s) with one of `tails`, except that the Timestamp may differ (see Router.route_repeats).
    #
    # Optional: ``process_raw(raw, received_ns)``. When every plugin has it and none has a matcher or
    # signer (`Router.takes_raw`: `heka serve --verify`), messages that are not repeats reach the
    # plugins as their bytes only, checked well-formed (`hekacli.message.well_formed`) but not decoded:
    # the plugin decodes them if it needs to (see Router.route_raw).
    #
    # Optional (not part of the Protocol check): ``failed() -> bool``. When a plugin has it and it
    # returns True after the daemon stopped (a flood verification found losses, say), `heka serve`
    # exits 1 and names the plugin in its summary.


@dataclass
class PluginStats:
    """A convenience counter block plugins may embed."""

    processed: int = 0
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
