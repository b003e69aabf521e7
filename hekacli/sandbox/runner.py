"""Run one sandbox filter over a stream of framed messages, without a daemon (`heka sandbox run`).

`timer_event` follows message time: it fires at every `ticker_interval` boundary the messages cross
(the first boundary is one interval after the first message) and once more at the end of input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_toml
from ..errors import ConfigError, SandboxError
from ..message import Message
from .host import Limits, SandboxFilter

MAX_CATCH_UP_TICKS = 1000  # a gap of more intervals than this fires one tick, not thousands


@dataclass
class FilterSettings:
    """What a Heka `SandboxFilter` TOML section says about one filter."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    ticker_interval: float = 0
    message_matcher: str | None = None
    module_directory: str | None = None
    limits: Limits = field(default_factory=Limits)
    preserve_data: bool = False


def settings_from_toml(path: str | Path, script: str | Path) -> FilterSettings:
    """The SandboxFilter section for `script` in a Heka TOML file (its `[Name.config]` is read_config's)."""
    data = load_toml(path)
    sections = {k: v for k, v in data.items() if isinstance(v, Mapping) and v.get("type") == "SandboxFilter"}
    if not sections:
        sections = {k: v for k, v in data.items() if isinstance(v, Mapping) and "filename" in v}
    if not sections:
        raise ConfigError("no [Name] section with type = \"SandboxFilter\"", file=str(path))
    if len(sections) > 1:
        base = Path(script).name
        same = {k: v for k, v in sections.items() if Path(str(v.get("filename", ""))).name == base}
        if len(same) != 1:
            raise ConfigError(f"several SandboxFilter sections ({', '.join(sections)}) and none has "
                              f"filename ending in {base}", file=str(path))
        sections = same
    name, sec = next(iter(sections.items()))
    cfg = sec.get("config", {})
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"[{name}.config] must be a table", file=str(path), field="config")
    d = Limits()

    def num(key: str, default: Any) -> Any:
        v = sec.get(key, default)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"[{name}] {key} must be a non-negative number", file=str(path), field=key)
        return v

    return FilterSettings(
        name=name, config=dict(cfg), ticker_interval=num("ticker_interval", 0),
        message_matcher=sec.get("message_matcher"), module_directory=sec.get("module_directory"),
        limits=Limits(memory=int(num("memory_limit", d.memory)),
                      instructions=int(num("instruction_limit", d.instructions)),
                      output=int(num("output_limit", d.output))),
        preserve_data=bool(sec.get("preserve_data", False)),
    )


@dataclass
class RunResult:
    processed: int = 0
    skipped: int = 0  # not matched by message_matcher
    failures: int = 0
    last_failure: str = ""
    terminated: str = ""


def run_filter(sandbox: SandboxFilter, messages: Iterable[tuple[Message, bytes | None]], *,
               ticker_interval: float = 0, match: Callable[[Message], bool] | None = None) -> RunResult:
    """Feed `messages` to a loaded sandbox, firing timer_event in message time; stops when terminated."""
    res = RunResult()
    step = int(ticker_interval * 1e9)
    next_tick: int | None = None
    last_ts = None
    for msg, raw in messages:
        ts = msg.timestamp or 0
        if step:
            if next_tick is None:
                next_tick = ts + step
            ticks = 0
            while ts >= next_tick and sandbox.state == "running":
                ticks += 1
                if ticks > MAX_CATCH_UP_TICKS:
                    next_tick += ((ts - next_tick) // step) * step
                sandbox.timer_event(next_tick)
                next_tick += step
        if sandbox.state != "running":
            break
        last_ts = ts
        if match is not None and not match(msg):
            res.skipped += 1
            continue
        status = sandbox.process_message(msg, raw=raw)
        res.processed += 1
        if status < 0:
            res.failures += 1
            res.last_failure = sandbox.last_error
        if sandbox.state != "running":
            break
    if sandbox.state == "running" and (step or sandbox.has_function("timer_event")):
        sandbox.timer_event(last_ts if last_ts is not None else time.time_ns())
    if sandbox.state == "terminated":
        res.terminated = sandbox.last_error
    return res


def module_dirs(*dirs: str | os.PathLike | None) -> str | None:
    """Join module directories into Heka's `;`-separated form."""
    parts = [str(d) for d in dirs if d]
    return ";".join(parts) if parts else None


def load_script(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SandboxError(f"Init() cannot open {path}: {exc.strerror}") from None
