"""Flood configuration: Heka's flood.toml read as it is, the same keys in YAML, and flag overrides.

A flood.toml maps test names to tables (``[default]``, ``[udp]``, ...); `load_flood_config` picks one.
Every key of heka-flood is understood (``encoder`` and ``pprof_file`` are accepted and ignored, as
heka-flood ignored ``encoder``); hekacli adds ``rate``, ``duration``, ``connections`` and ``run_id``.
Unknown keys are an error naming the file and key (Heka matched keys case-insensitively: so do we).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, InputError
from .generator import MAX_MESSAGE_SIZE, SignerConfig

TLS_KEYS = {
    "server_name", "cert_file", "key_file", "client_auth", "ciphers", "insecure_skip_verify",
    "prefer_server_ciphers", "session_tickets_disabled", "sesion_ticket_key", "session_ticket_key",
    "min_version", "max_version", "client_cafile", "root_cafile",
}
SIGNER_KEYS = {"name", "hmac_hash", "hmac_key", "version"}
TLS_VERSIONS = {"SSL30", "TLS10", "TLS11", "TLS12", "TLS13"}


@dataclass
class FloodConfig:
    """One flood test. Field names are heka-flood's keys; durations are seconds (float)."""

    ip_address: str = ""
    sender: str = "tcp"
    encoder: str = "protobuf"  # accepted and ignored, as heka-flood did
    pprof_file: str = ""  # accepted and ignored (no Go profiler here)
    num_messages: int = 0
    message_interval: float = 0.0
    static_message_size: int = 1000
    variable_size_messages: bool = False
    ascii_only: bool = False
    corrupt_percentage: float = 0.0
    signed_percentage: float = 0.0
    oversized_percentage: float = 0.0
    signer: SignerConfig | None = None
    use_tls: bool = False
    tls: dict[str, Any] = field(default_factory=dict)
    max_message_size: int = MAX_MESSAGE_SIZE
    reconnect_on_error: bool = False
    reconnect_interval: float = 5.0
    # hekacli additions
    rate: float = 0.0  # messages/second over all connections (open model); 0 = as fast as possible
    duration: float = 0.0  # seconds; 0 = until num_messages or SIGINT
    connections: int = 1
    run_id: str = ""
    end_marker: bool = True  # send a heka.flood.end message per connection when done

    def validate(self, source: str | None = None) -> FloodConfig:
        """Check ranges and combinations; raises ConfigError naming the key."""
        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(msg, file=source, field=key)

        if self.sender not in ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"):
            raise bad("sender", f"unsupported sender {self.sender!r} (tcp or udp)")
        if self.use_tls and self.sender.startswith("udp"):
            raise bad("use_tls", "TLS needs a tcp sender")
        for key in ("corrupt_percentage", "signed_percentage", "oversized_percentage"):
            v = getattr(self, key)
            if not 0 <= v <= 100:
                raise bad(key, f"must be between 0 and 100, got {v}")
        if self.oversized_percentage > 0 and not self.variable_size_messages:
            raise bad("oversized_percentage", "needs variable_size_messages = true "
                      "(heka-flood panicked here: fixed mode has no oversized message)")
        if self.connections < 1:
            raise bad("connections", "must be at least 1")
        if self.rate < 0 or self.duration < 0 or self.message_interval < 0:
            raise bad("rate", "rate, duration and message_interval must not be negative")
        if self.max_message_size <= 1024:
            raise bad("max_message_size", "must be greater than 1024")
        if self.static_message_size <= 0:
            self.static_message_size = 1000
        if self.reconnect_interval < 1:
            self.reconnect_interval = 5.0  # heka-flood: < 1 means 5 seconds
        for key in self.tls:
            if key not in TLS_KEYS:
                raise bad(f"tls.{key}", "unknown TLS setting")
        for key in ("min_version", "max_version"):
            if key in self.tls and str(self.tls[key]).upper() not in TLS_VERSIONS:
                raise bad(f"tls.{key}", f"invalid value {self.tls[key]!r} (SSL30, TLS10, TLS11, TLS12)")
        return self


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, key: str = "duration", source: str | None = None) -> float:
    """Go duration strings ("10ms", "1m30s") or plain numbers (seconds) -> seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"invalid duration {value!r}", file=source, field=key)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text in ("", "0"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ConfigError(f"invalid duration {text!r} (e.g. 10ms, 2s, 1m30s)", file=source, field=key)
    return total


_FIELD_TYPES = {f.name: f for f in fields(FloodConfig)}


def _coerce(key: str, value: Any, source: str | None) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"expected {expected}, got {value!r}", file=source, field=key)

    if key in ("message_interval", "duration"):
        return parse_duration(value, key, source)
    if key == "signer":
        if not isinstance(value, dict):
            raise bad("a table")
        table = {k.lower(): v for k, v in value.items()}
        for k in table:
            if k not in SIGNER_KEYS:
                raise ConfigError("unknown signer setting", file=source, field=f"signer.{k}")
        try:
            version = int(table.get("version", 0))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"expected an integer, got {table.get('version')!r}", file=source,
                              field="signer.version") from exc
        return SignerConfig(name=str(table.get("name", "")), hmac_hash=str(table.get("hmac_hash", "md5")),
                            hmac_key=str(table.get("hmac_key", "")), version=version)
    if key == "tls":
        if not isinstance(value, dict):
            raise bad("a table")
        return {k.lower(): v for k, v in value.items()}
    default = getattr(FloodConfig(), key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise bad("an integer")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if not isinstance(value, str):
        raise bad("a string")
    return value


def config_from_table(table: dict[str, Any], source: str | None = None) -> FloodConfig:
    """Build a FloodConfig from one test table (keys matched case-insensitively, as Heka's TOML)."""
    cfg = FloodConfig()
    for raw_key, value in table.items():
        key = str(raw_key).lower()
        if key not in _FIELD_TYPES:
            raise ConfigError("unknown flood setting", file=source, field=str(raw_key))
        setattr(cfg, key, _coerce(key, value, source))
    return cfg


def load_flood_config(path: str | Path, test: str = "default") -> FloodConfig:
    """Read `test` from a flood.toml (Heka's format) or flood.yaml (same shape) file."""
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"cannot read config: {exc.strerror or exc}", file=source) from exc
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=source) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=source,
                          line=mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a table of tests (e.g. [default])", file=source)
    if test not in data:
        names = ", ".join(sorted(map(str, data))) or "none"
        raise ConfigError(f"no test named {test!r} (tests: {names})", file=source)
    table = data[test]
    if not isinstance(table, dict):
        raise ConfigError(f"test {test!r} is not a table", file=source)
    return config_from_table(table, source)
