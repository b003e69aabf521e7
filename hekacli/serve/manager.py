"""SandboxManager for `heka serve`: load and unload Lua filters at run time (Heka §5).

Config (the ``sandbox_manager:`` section of the serve YAML; one mapping or a list of them)::

    sandbox_manager:
      name: SandboxManager          # the prefix of every filter it loads: <name>-<section>
      message_signer: ops           # required: only control messages verified as signed by it
      max_filters: 4                # Heka's default 0 means no load succeeds
      memory_limit: 8388608         # forced onto every managed sandbox, as the
      instruction_limit: 1000000    #   three limits were in Heka
      output_limit: 64512
      working_directory: sbxmgrs    # relative to the daemon's state_dir; created 0700
      module_directory: null        # Lua modules for the sandboxes (the host's default when null)

What it does with each ``heka.control.sandbox`` message, in order: reject it unless the router
verified the configured signer (counted as ``signer``; Heka accepted unsigned control messages when
no signer was configured — we require one); discard it if its timestamp is 5 s or more away from now
(``skew``); then ``load`` (max_filters, strict single-section TOML, ``<manager>-<section>`` naming,
files written 0600, forced limits, a ``heka.sandbox-terminated`` message on failure) or ``unload``
(the unprefixed section name). Every handled message is recorded as an event with the message uuid,
which the dashboard publishes so `heka sbmgr` can report the outcome of exactly its message.

At start the filters whose files are in the working directory are loaded again, so a remotely loaded
filter survives a restart; unloading deletes the files, so an unloaded one does not come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, HekaError
from ..message import Field, Message, ValueType
from ..sbmgr import (
    CONTROL_TYPE,
    DEFAULT_INSTRUCTION_LIMIT,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_OUTPUT_LIMIT,
    MAX_SKEW_SECONDS,
    TERMINATED_TYPE,
    FilterSpec,
    control_action,
    full_filter_name,
    normalize_name,
    parse_filter_config,
    skew_seconds,
    string_field,
)
from .plugin import Delivery, Plugin, ServeContext

MAX_EVENTS = 200
DEFAULT_MATCHER = f"Type == '{CONTROL_TYPE}'"  # control-message outcomes kept for the dashboard


@dataclass(slots=True)
class ManagerSettings:
    """The validated ``sandbox_manager`` section."""

    name: str = "SandboxManager"
    message_signer: str = ""
    message_matcher: str = DEFAULT_MATCHER
    max_filters: int = 0
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    instruction_limit: int = DEFAULT_INSTRUCTION_LIMIT
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    working_directory: str = "sbxmgrs"
    module_directory: str | None = None


_SETTING_TYPES: dict[str, type] = {
    "name": str,
    "message_signer": str,
    "message_matcher": str,
    "max_filters": int,
    "memory_limit": int,
    "instruction_limit": int,
    "output_limit": int,
    "working_directory": str,
    "module_directory": str,
}


def parse_settings(section: Any, where: str = "sandbox_manager") -> ManagerSettings:
    """Validate one manager mapping; ConfigError names the key."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(section).__name__}")
    settings = ManagerSettings()
    for key, value in section.items():
        kind = _SETTING_TYPES.get(str(key))
        if kind is None:
            raise ConfigError(f"{where}: unknown key", field=str(key))
        if value is None and key == "module_directory":
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                f"{where}: expects a {kind.__name__}, got {type(value).__name__}", field=str(key)
            )
        if kind is int and value < 0:
            raise ConfigError(f"{where}: must be >= 0", field=str(key))
        setattr(settings, key, value)
    if not settings.message_signer:
        raise ConfigError(
            f"{where}: message_signer is required (control messages must be signed)", field="message_signer"
        )
    if not settings.name:
        raise ConfigError(f"{where}: name must not be empty", field="name")
    return settings


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 (also when the file already existed with wider rights)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def build_filter_plugin(full_name: str, spec: FilterSpec, script_text: str, script_path: Path,
                        settings: ManagerSettings, ctx: ServeContext) -> Plugin:
    """The sandbox area's SandboxFilterPlugin for a managed filter, with the manager's limits and module
    directory forced onto it (whatever the submitted config said)."""
    from ..sandbox.host import Limits
    from ..sandbox.serve_plugin import PRESERVATION_DIR, SandboxFilterPlugin

    limits = Limits(memory=settings.memory_limit, instructions=settings.instruction_limit,
                    output=settings.output_limit)
    if spec.preserve_data:  # <state_dir>/sandbox_preservation/<Manager_Section>.data, kept private
        (Path(ctx.state_dir) / PRESERVATION_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)
    return SandboxFilterPlugin(
        full_name, script_text, message_matcher=spec.message_matcher, message_signer=spec.message_signer,
        ticker_interval=spec.ticker_interval, preserve_data=spec.preserve_data, config=spec.config,
        module_dir=settings.module_directory, limits=limits, filename=str(script_path),
        timer_event_on_shutdown=spec.timer_event_on_shutdown,
    )


class SandboxManager:
    """A router plugin that loads/unloads managed sandbox filters from signed control messages."""

    def __init__(self, settings: ManagerSettings) -> None:
        self.settings = settings
        self.name = settings.name
        # The default matcher is a plain type test, done in process() without a compiled matcher.
        default = settings.message_matcher == DEFAULT_MATCHER
        self.message_matcher: str | None = None if default else settings.message_matcher
        # The router would drop other signers' messages silently; we take every control message and
        # check the signer ourselves so rejections are counted and shown.
        self.message_signer: str | None = None
        self.ctx: ServeContext | None = None
        self.workdir: Path | None = None
        self.filters: dict[str, Plugin] = {}  # full name -> plugin (running or terminated)
        self.counts: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self._queue: asyncio.Queue[Delivery] | None = None
        self._worker: asyncio.Task | None = None

    # -- Plugin protocol ------------------------------------------------------------------------
    async def start(self, ctx: ServeContext) -> None:
        """Create the working directory (0700), reload the filters saved there, start handling."""
        self.ctx = ctx
        self.workdir = Path(ctx.state_dir) / self.settings.working_directory
        try:
            self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.workdir, 0o700)
        except OSError as exc:
            raise ConfigError(
                f"{self.name}: cannot create working_directory {self.workdir}: {exc.strerror}"
            ) from None
        await self._restore()
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"{self.name}-worker")

    def process(self, delivery: Delivery) -> None:
        """Gate a control message (signer, skew) now; queue accepted ones for the worker."""
        msg = delivery.message
        if self.message_matcher is None and msg.type != CONTROL_TYPE:
            return
        self.counts["received"] += 1
        action = control_action(msg)
        if delivery.signer != self.settings.message_signer:
            who = f"signer {delivery.signer!r}" if delivery.signer else "an unsigned message"
            self._reject(
                msg,
                action,
                "signer",
                f"control message from {who} refused (message_signer is {self.settings.message_signer!r})",
                delivery.signer,
            )
            return
        skew = skew_seconds(msg)
        if skew >= MAX_SKEW_SECONDS:
            self._reject(
                msg, action, "skew", f"Discarded control message: {skew} seconds skew", delivery.signer
            )
            return
        if self._queue is not None:
            self._queue.put_nowait(delivery)

    async def stop(self) -> None:
        """Stop handling control messages. The managed filters are router plugins: the daemon stops
        them (their files stay, so they come back at the next start)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    def stats(self) -> dict[str, Any]:
        """Counters and the recent control events, for the summary and the dashboard."""
        return {
            "processed": self.counts["received"],
            "loaded": self.counts["loaded"],
            "unloaded": self.counts["unloaded"],
            "rejected": dict(self.rejected),
            "running_filters": self.running_count(),
            "max_filters": self.settings.max_filters,
            "limits": {
                "memory": self.settings.memory_limit,
                "instructions": self.settings.instruction_limit,
                "output": self.settings.output_limit,
            },
            "filters": sorted(self.filters),
        }

    # -- helpers ------------------------------------------------------------------------------
    def running_count(self) -> int:
        """Managed filters that have not terminated (what max_filters limits)."""
        return sum(1 for p in self.filters.values() if not _terminated(p))

    def recent_events(self) -> list[dict[str, Any]]:
        """Outcomes of the recent control messages, oldest first."""
        return list(self.events)

    def _event(
        self,
        msg: Message | None,
        action: str | None,
        name: str | None,
        outcome: str,
        reason: str,
        signer: str | None = None,
    ) -> None:
        self.events.append(
            {
                "time": time.time_ns(),
                "uuid": msg.uuid_string if msg is not None else "",
                "action": action,
                "name": name,
                "signer": signer,
                "outcome": outcome,
                "reason": reason,
            }
        )

    def _reject(self, msg: Message, action: str | None, kind: str, reason: str, signer: str | None) -> None:
        self.rejected[kind] += 1
        self._event(msg, action, None, "rejected", reason, signer)
        self._log(reason)

    def _log(self, text: str) -> None:
        if self.ctx is not None:
            self.ctx.log(f"{self.name}: {text}")

    def _files(self, full: str) -> list[Path]:
        assert self.workdir is not None
        return sorted(self.workdir.glob(f"{full}.*"))

    def _delete_files(self, full: str) -> None:
        for path in self._files(full):
            with contextlib.suppress(OSError):
                path.unlink()

    def _terminated_message(self, error: str) -> Message:
        msg = Message.new(type=TERMINATED_TYPE, logger="hekad", payload=error)
        msg.fields.append(Field("plugin", ValueType.STRING, "", [self.name]))
        return msg

    # -- the worker ---------------------------------------------------------------------------
    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            try:
                await self._handle(delivery)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the manager
                self._event(
                    delivery.message,
                    control_action(delivery.message),
                    None,
                    "failed",
                    f"internal error: {type(exc).__name__}: {exc}",
                    delivery.signer,
                )
                self._log(f"internal error handling a control message: {type(exc).__name__}: {exc}")

    async def _handle(self, delivery: Delivery) -> None:
        msg = delivery.message
        action = control_action(msg)
        if action == "load":
            await self._load_from_message(msg, delivery.signer)
        elif action == "unload":
            await self._unload(msg, delivery.signer)
        else:
            self.counts["ignored"] += 1
            self._event(msg, action, None, "ignored", f"Invalid action: {action}", delivery.signer)

    async def _load_from_message(self, msg: Message, signer: str | None) -> None:
        config_text = string_field(msg, "config")
        if config_text is None:
            self.counts["ignored"] += 1
            self._event(msg, "load", None, "ignored", "load message without a config field", signer)
            return
        if self.running_count() >= self.settings.max_filters:
            self._reject(
                msg,
                "load",
                "max_filters",
                f"{self.name} attempted to load more than {self.settings.max_filters} filters",
                signer,
            )
            return
        try:
            spec = parse_filter_config(config_text, source="config")
        except HekaError as exc:
            self._fail(msg, None, f"loadSandbox failed: {exc}", signer)
            return
        full = full_filter_name(self.name, spec.section)
        existing = self.filters.get(full)
        if existing is not None and not _terminated(existing):
            self._fail(msg, full, f"loadSandbox failed: {full} is already running", signer, delete=False)
            return
        if existing is not None:  # a terminated one of that name: replace it
            await self._remove(full)
        assert self.workdir is not None
        script_path = self.workdir / f"{full}.{spec.script_type}"
        try:
            write_private(self.workdir / f"{full}.toml", config_text)
            write_private(script_path, msg.payload or "")
        except OSError as exc:
            self._fail(msg, full, f"loadSandbox failed: cannot write {exc.filename}: {exc.strerror}", signer)
            return
        error = await self._start_filter(full, spec, msg.payload or "", script_path)
        if error is not None:
            self._fail(msg, full, error, signer)
            return
        self.counts["loaded"] += 1
        note = f" (ignored settings the manager forces: {', '.join(spec.ignored)})" if spec.ignored else ""
        self._event(msg, "load", full, "ok", f"loaded{note}", signer)
        self._log(f"loaded {full}{note}")

    async def _start_filter(self, full: str, spec: FilterSpec, script: str, script_path: Path) -> str | None:
        """Build, start and route a managed filter; return the error text or None."""
        assert self.ctx is not None
        try:
            plugin = build_filter_plugin(full, spec, script, script_path, self.settings, self.ctx)
            await plugin.start(self.ctx)
        except HekaError as exc:
            return f"loadSandbox failed: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a broken script must not take the daemon down
            return f"loadSandbox failed: {type(exc).__name__}: {exc}"
        try:
            self.ctx.add_plugin(plugin)  # compiles the message_matcher
        except HekaError as exc:
            with contextlib.suppress(Exception):
                await plugin.stop()
            return f"loadSandbox failed: {exc.message}"
        self.filters[full] = plugin
        return None

    def _fail(
        self, msg: Message, full: str | None, error: str, signer: str | None, delete: bool = True
    ) -> None:
        self.rejected["failed"] += 1
        if delete and full is not None:
            self._delete_files(full)
        self._event(msg, "load", full, "failed", error, signer)
        self._log(error)
        if self.ctx is not None:
            self.ctx.inject(self._terminated_message(error), origin=self.name)

    async def _remove(self, full: str) -> None:
        assert self.ctx is not None
        plugin = self.filters.pop(full, None)
        removed = self.ctx.remove_plugin(full)
        target = removed or plugin
        if target is not None:
            try:
                await target.stop()
            except Exception as exc:  # noqa: BLE001 - stopping a broken sandbox may fail; it is gone anyway
                self._log(f"stopping {full}: {type(exc).__name__}: {exc}")

    async def _unload(self, msg: Message, signer: str | None) -> None:
        name = string_field(msg, "name")
        if name is None:
            self.counts["ignored"] += 1
            self._event(msg, "unload", None, "ignored", "unload message without a name field", signer)
            return
        full = full_filter_name(self.name, name)
        if full not in self.filters:
            self._event(msg, "unload", full, "failed", f"unload failed: {full} is not running", signer)
            self._log(f"unload failed: {full} is not running")
            return
        await self._remove(full)
        self._delete_files(full)
        self.counts["unloaded"] += 1
        self._event(msg, "unload", full, "ok", "unloaded", signer)
        self._log(f"unloaded {full}")

    async def _restore(self) -> None:
        """Load the filters saved in the working directory (Heka's restart behaviour)."""
        assert self.workdir is not None
        for toml_path in sorted(self.workdir.glob(f"{normalize_name(self.name)}-*.toml")):
            full = toml_path.name[: -len(".toml")]
            try:
                config_text = toml_path.read_text(encoding="utf-8")
                spec = parse_filter_config(config_text, source=str(toml_path))
                script_path = self.workdir / f"{full}.{spec.script_type}"
                script = script_path.read_text(encoding="utf-8", errors="surrogateescape")
            except (OSError, HekaError) as exc:
                self._log(f"restoring {full} failed: {exc}; removing its files")
                self._delete_files(full)
                continue
            error = await self._start_filter(full, spec, script, script_path)
            if error is not None:
                self._log(f"restoring {full} failed: {error}; removing its files")
                self._delete_files(full)
                continue
            self._event(None, "restore", full, "ok", "restored at start")
            self._log(f"restored {full}")


def _terminated(plugin: Plugin) -> bool:
    try:
        return plugin.stats().get("state") == "terminated"
    except Exception:  # noqa: BLE001 - a plugin whose stats fail is treated as still running
        return False


def build_serve_plugins(section: Any, ctx: ServeContext) -> list[Plugin]:
    """Factory for the ``sandbox_manager:`` section: one mapping or a list of mappings."""
    sections = section if isinstance(section, list) else [section]
    managers = [
        SandboxManager(
            parse_settings(s, f"sandbox_manager[{i}]" if isinstance(section, list) else "sandbox_manager")
        )
        for i, s in enumerate(sections)
    ]
    names = [m.name for m in managers]
    if len(set(names)) != len(names):
        raise ConfigError("sandbox_manager: two managers share a name", field="name")
    return managers
