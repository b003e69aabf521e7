"""Lua sandbox filters in `heka serve`: the `filters:` section of the serve config.

```yaml
filters:
  - name: HttpStatus
    script: sample_logs/sandbox/http_status.lua   # relative to the config file
    message_matcher: "Type == 'nginx.access'"
    ticker_interval: 60                           # seconds; timer_event(ns) every interval
    preserve_data: true                           # globals saved in <state_dir>/sandbox_preservation
    module_directory: lua_modules                 # optional, `;`-separated
    memory_limit: 8388608                         # optional limits (Heka's names and defaults)
    instruction_limit: 1000000
    output_limit: 64512
    timer_event_on_shutdown: false
    config: {rows: 1440, sec_per_row: 60}         # what read_config() sees
```
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SandboxError
from ..message import Message
from ..serve.plugin import Delivery, ServeContext
from .host import Limits, SandboxFilter

FILTER_KEYS = {
    "name", "script", "filename", "message_matcher", "message_signer", "ticker_interval", "preserve_data",
    "config", "module_directory", "memory_limit", "instruction_limit", "output_limit",
    "timer_event_on_shutdown", "max_process_inject", "max_timer_inject",
}
PRESERVATION_DIR = "sandbox_preservation"


def preservation_file(state_dir: Path, name: str) -> Path:
    """Heka's `<base_dir>/sandbox_preservation/<name with \\W as _>.data`."""
    return Path(state_dir) / PRESERVATION_DIR / (re.sub(r"\W", "_", name) + ".data")


class SandboxFilterPlugin:
    """A `Plugin` running one `SandboxFilter`: routed messages in, injected messages back to the router."""

    def __init__(self, name: str, script_text: str | bytes, *, message_matcher: str | None = None,
                 message_signer: str | None = None, ticker_interval: float = 0, preserve_data: bool = False,
                 config: Mapping[str, Any] | None = None, module_dir: str | None = None,
                 limits: Limits | None = None, filename: str | None = None,
                 timer_event_on_shutdown: bool = False, max_process_inject: int = 1,
                 max_timer_inject: int = 10) -> None:
        self.name = name
        self.message_matcher = message_matcher
        self.message_signer = message_signer
        self.ticker_interval = float(ticker_interval or 0)
        self.preserve_data = preserve_data
        self.timer_event_on_shutdown = timer_event_on_shutdown
        self._script = script_text
        self._config = dict(config or {})
        self._module_dir = module_dir
        self._limits = limits or Limits()
        self._filename = filename
        self._max_process_inject = max_process_inject
        self._max_timer_inject = max_timer_inject
        self.filter: SandboxFilter | None = None
        self._ctx: ServeContext | None = None
        self._ticker: asyncio.Task | None = None
        self._loops = 0
        self.terminated_reason = ""

    async def start(self, ctx: ServeContext) -> None:
        """Load the script (SandboxError if it does not load) and start its ticker."""
        self._ctx = ctx
        matcher = None
        if self.message_matcher and self.message_matcher.strip() not in ("", "TRUE"):
            from ..matcher import compile_matcher

            matcher = compile_matcher(self.message_matcher)
        preserve = preservation_file(ctx.state_dir, self.name) if self.preserve_data else None
        self.filter = SandboxFilter(
            self.name, self._script, config=self._config, module_dir=self._module_dir, limits=self._limits,
            preserve_path=preserve, on_inject=self._on_inject, filename=self._filename, matcher=matcher,
            max_message_loops=getattr(ctx, "max_message_loops", 4),
            max_process_inject=self._max_process_inject, max_timer_inject=self._max_timer_inject, log=ctx.log,
        )
        try:
            self.filter.load()
        except SandboxError as exc:
            raise SandboxError(f"filter {self.name}: {exc.message}", file=self._filename) from None
        if self.ticker_interval > 0:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def process(self, delivery: Delivery) -> None:
        f = self.filter
        if f is None or f.state != "running":
            return
        self._loops = delivery.loops
        f.process_message(delivery.message, raw=delivery.raw, loops=delivery.loops)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.ticker_interval)
            f = self.filter
            if f is None or f.state != "running":
                return
            self._loops = 0
            f.timer_event(time.time_ns())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.filter is not None:
            self._loops = 0
            self.filter.stop(shutdown_timer=self.timer_event_on_shutdown)

    def stats(self) -> dict[str, Any]:
        if self.filter is None:
            return {"state": "new"}
        s = self.filter.stats()
        s["ticker_interval"] = self.ticker_interval
        s["preserve_data"] = self.preserve_data
        return s

    def outputs(self) -> dict[str, tuple[str, str]]:
        """The sandbox's latest payloads: name -> (payload_type, text) (cbuf outputs as cbuf text)."""
        return self.filter.outputs() if self.filter is not None else {}

    def _on_inject(self, msg: Message) -> None:
        if self._ctx is None:
            return
        if msg.type == "heka.sandbox-terminated":
            self.terminated_reason = msg.payload or ""
            self._ctx.inject(msg, origin=self.name, loops=0)
            return
        self._ctx.inject(msg, origin=self.name, loops=self._loops)


def _limits(item: Mapping[str, Any], where: str, src: str | None) -> Limits:
    d = Limits()
    values = {}
    for key, attr in (("memory_limit", "memory"), ("instruction_limit", "instructions"),
                      ("output_limit", "output")):
        v = item.get(key, getattr(d, attr))
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{where}.{key} must be a non-negative integer", file=src, field=key)
        values[attr] = v
    return Limits(**values)


def build_filter(item: Any, where: str, *, base: Path | None = None,
                 src: str | None = None) -> SandboxFilterPlugin:
    """One entry of the `filters:` list as a SandboxFilterPlugin (the script is read here)."""
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a mapping", file=src)
    unknown = sorted(set(item) - FILTER_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(FILTER_KEYS))})",
                          file=src, field=unknown[0])
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name is required", file=src, field="name")
    script = item.get("script") or item.get("filename")
    if not isinstance(script, str):
        raise ConfigError(f"{where}.script (the .lua file) is required", file=src, field="script")
    path = Path(script)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot open {path}: {exc.strerror}", file=src, field="script") from None
    config = item.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}.config must be a mapping", file=src, field="config")
    ticker = item.get("ticker_interval", 0) or 0
    if not isinstance(ticker, (int, float)) or isinstance(ticker, bool) or ticker < 0:
        raise ConfigError(f"{where}.ticker_interval must be a number of seconds", file=src,
                          field="ticker_interval")
    module_dir = item.get("module_directory")
    if module_dir is not None:
        dirs = []
        for d in str(module_dir).split(";"):
            p = Path(d)
            dirs.append(str(p if p.is_absolute() or base is None else base / p))
        module_dir = ";".join(dirs)
    return SandboxFilterPlugin(
        name, text, message_matcher=item.get("message_matcher"), message_signer=item.get("message_signer"),
        ticker_interval=ticker, preserve_data=bool(item.get("preserve_data", False)), config=config,
        module_dir=module_dir, limits=_limits(item, where, src), filename=str(path),
        timer_event_on_shutdown=bool(item.get("timer_event_on_shutdown", False)),
        max_process_inject=int(item.get("max_process_inject", 1)),
        max_timer_inject=int(item.get("max_timer_inject", 10)),
    )


def build_serve_plugins(section: Any, ctx: ServeContext) -> list[SandboxFilterPlugin]:
    """The `filters:` section (a list of filter mappings) as plugins."""
    src = getattr(getattr(ctx, "config", None), "source", None)
    base = Path(src).resolve().parent if src else None
    items = section if isinstance(section, list) else [section]
    plugins = [build_filter(item, f"filters[{i}]", base=base, src=src) for i, item in enumerate(items)]
    names = [p.name for p in plugins]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"filters: the name {dup!r} is used twice", file=src)
    return plugins
