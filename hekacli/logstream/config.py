"""Logstream configuration: our YAML file, and Heka TOML `LogstreamerInput` sections read as they are.

YAML layout (paths relative to the YAML file's directory)::

    journal_directory: journals          # default for every stream
    streams:
      nginx:                             # section name: default differentiator
        log_directory: /var/log/nginx
        file_match: 'access\\.log\\.?(?P<Seq>\\d*)(\\.gz)?'
        priority: ["^Seq"]
        decoder: {kind: nginx, log_format: combined}
        where: 'Fields[status] >= 500'

Heka TOML (a file or a directory of files, relative paths against the working directory as Heka):
sections named `LogstreamerInput` or with `type = "LogstreamerInput"`. Keys of Heka's other plugin
settings (ticker_interval, splitter, decoder naming a plugin section...) are accepted and ignored.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

HEKA_DEFAULT_JOURNAL_DIR = "/var/cache/hekad/logstreamer"
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str | int | float) -> float:
    """Parse a Go duration string ("720h", "1m30s", "250ms", "0") into seconds.

    Numbers are taken as seconds. Raises ValueError on anything else.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if s[:1] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    pos, total = 0, 0.0
    if not s:
        raise ValueError(f"not a duration: {text!r}")
    while pos < len(s):
        m = _DURATION_RE.match(s, pos)
        if not m:
            raise ValueError(f"not a duration: {text!r} (use Go syntax such as 250ms, 1m, 720h)")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


@dataclass
class MultilineConfig:
    """Records spanning lines: a start-of-record regex, or continuation lines starting with whitespace."""

    start: str | None = None
    max_bytes: int = 64 * 1024
    timeout: float = 1.0  # follow mode: a pending record is written after this much quiet


@dataclass
class StreamConfig:
    """One LogstreamerInput section (one or more log streams found by one file_match)."""

    name: str
    file_match: str
    log_directory: str = "/var/log"
    priority: list[str] = field(default_factory=list)
    differentiator: list[str] = field(default_factory=list)
    translation: dict[str, dict[str, int]] = field(default_factory=dict)
    oldest_duration: float = 720 * 3600.0
    journal_directory: str = HEKA_DEFAULT_JOURNAL_DIR
    rescan_interval: float = 60.0
    check_data_interval: float = 0.25
    initial_tail: bool = False
    hostname: str | None = None
    decoder: dict[str, Any] | None = None
    where: str | None = None
    multiline: MultilineConfig | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    rotate_wait: float = 1.0
    source: str = ""  # the config file, for messages

    def __post_init__(self) -> None:
        if not self.differentiator:
            self.differentiator = [self.name]


@dataclass
class LogstreamConfig:
    """Every section of a config file, sorted by section name (deterministic output)."""

    path: str
    sections: list[StreamConfig]


# key -> (kind, whether it exists in Heka's LogstreamerInput)
_KEYS: dict[str, str] = {
    "log_directory": "str",
    "file_match": "str",
    "priority": "strlist",
    "differentiator": "strlist",
    "translation": "translation",
    "oldest_duration": "duration",
    "journal_directory": "str",
    "rescan_interval": "duration",
    "check_data_interval": "duration",
    "initial_tail": "bool",
    "hostname": "str",
    "decoder": "decoder",
    "where": "str",
    "multiline": "multiline",
    "max_line_bytes": "int",
    "rotate_wait": "duration",
}
_PATH_KEYS = ("log_directory", "journal_directory")
# Keys of Heka's generic plugin settings that may appear in a LogstreamerInput section.
_HEKA_IGNORED = {
    "type",
    "ticker_interval",
    "splitter",
    "decoder",
    "synchronous_decode",
    "send_decode_failures",
    "log_decode_failures",
    "can_exit",
    "retries",
    "message_matcher",
    "encoder",
    "use_framing",
    "use_buffering",
    "buffering",
}


def _err(source: str, section: str, key: str | None, msg: str) -> ConfigError:
    where = f"[{section}]" + (f" {key}" if key else "")
    return ConfigError(f"{where}: {msg}", file=source)


def _convert(source: str, section: str, key: str, kind: str, value: Any) -> Any:
    try:
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
        if kind == "strlist":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError("expected a list of strings")
            return list(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise TypeError("expected a positive integer")
            return value
        if kind == "duration":
            return parse_duration(value)
        if kind == "translation":
            return _translation(value)
        if kind == "decoder":
            return _decoder(value)
        if kind == "multiline":
            return _multiline(value)
    except (TypeError, ValueError) as exc:
        raise _err(source, section, key, str(exc)) from None
    raise AssertionError(kind)


def _translation(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        raise TypeError("expected a table of tables (group name -> {value -> int})")
    out: dict[str, dict[str, int]] = {}
    for group, mapping in value.items():
        if not isinstance(mapping, dict):
            raise TypeError(f"translation {group!r}: expected a table of value -> integer")
        sub: dict[str, int] = {}
        for k, v in mapping.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"translation {group!r} key {k!r}: expected an integer")
            sub[str(k)] = v
        if len(sub) == 1 and "missing" not in sub:
            only = next(iter(sub))
            raise ValueError(
                f"A translation map with one entry ('{only}') must be specifying a 'missing' key."
            )
        out[str(group)] = sub
    return out


def _decoder(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"kind": value}
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        return dict(value)
    raise TypeError(
        "expected a decoder kind (nginx, apache, syslog, json, regex ...) or {kind: ..., options}"
    )


def _multiline(value: Any) -> MultilineConfig:
    if value == "whitespace" or value is True:
        return MultilineConfig()
    if not isinstance(value, dict):
        raise TypeError("expected 'whitespace' or {start: REGEX, max_bytes: N, timeout: DURATION}")
    unknown = set(value) - {"start", "max_bytes", "timeout", "continuation"}
    if unknown:
        raise TypeError(f"unknown multiline key {sorted(unknown)[0]!r}")
    ml = MultilineConfig()
    if value.get("start") is not None:
        if not isinstance(value["start"], str):
            raise TypeError("multiline start: expected a regex string")
        re.compile(value["start"])
        ml.start = value["start"]
    if "max_bytes" in value:
        if not isinstance(value["max_bytes"], int) or value["max_bytes"] <= 0:
            raise TypeError("multiline max_bytes: expected a positive integer")
        ml.max_bytes = value["max_bytes"]
    if "timeout" in value:
        ml.timeout = parse_duration(value["timeout"])
    return ml


def build_section(
    name: str,
    raw: dict[str, Any],
    *,
    source: str,
    base_dir: Path | None,
    strict: bool,
    defaults: dict[str, Any] | None = None,
) -> StreamConfig:
    """Validate one section. `base_dir` resolves relative paths (None: leave them to the CWD)."""
    values: dict[str, Any] = {}
    merged = {**(defaults or {}), **raw}
    for key, value in merged.items():
        kind = _KEYS.get(key)
        if kind is None or (
            not strict and key == "decoder" and isinstance(value, str) and value not in _KNOWN_DECODERS
        ):
            if strict and key != "type":
                raise _err(source, name, key, f"unknown key (known: {', '.join(sorted(_KEYS))})")
            continue
        values[key] = _convert(source, name, key, kind, value)
    if not values.get("file_match"):
        raise _err(source, name, "file_match", "`file_match` setting is required.")
    try:
        re.compile(values["file_match"])
    except re.error as exc:
        raise _err(source, name, "file_match", f"invalid regex: {exc}") from None
    for key in _PATH_KEYS:
        if key in values:
            p = os.path.expanduser(values[key])
            if base_dir is not None and not os.path.isabs(p):
                p = str(base_dir / p)
            values[key] = p
    if values.get("where"):
        _check_where(source, name, values["where"])
    return StreamConfig(name=name, source=source, **values)


_KNOWN_DECODERS = {"nginx", "nginx-error", "apache", "rsyslog", "syslog", "json", "regex"}


def _check_where(source: str, section: str, expr: str) -> None:
    try:
        from ..matcher import compile_matcher
    except ImportError:  # the matcher is another area's module; without it `where` is checked at use
        return
    try:
        compile_matcher(expr)
    except Exception as exc:  # noqa: BLE001 - reported as a config error naming the key
        raise _err(source, section, "where", str(exc)) from None


def load_yaml_config(path: str | Path) -> LogstreamConfig:
    """Read our YAML config. Unknown keys are errors naming the file, the section and the key."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=str(p)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(p), line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping with a `streams` section", file=str(p))
    unknown = set(doc) - {"streams", "journal_directory", "defaults"}
    if unknown:
        raise ConfigError(
            f"unknown top-level key {sorted(unknown)[0]!r} (known: streams, journal_directory, defaults)",
            file=str(p),
        )
    streams = doc.get("streams")
    if not isinstance(streams, dict) or not streams:
        raise ConfigError("`streams` must map section names to settings", file=str(p))
    defaults = dict(doc.get("defaults") or {})
    if "journal_directory" in doc:
        defaults.setdefault("journal_directory", doc["journal_directory"])
    defaults.setdefault("journal_directory", "journals")
    sections = []
    for name in sorted(streams):
        raw = streams[name]
        if not isinstance(raw, dict):
            raise _err(str(p), str(name), None, "expected a mapping of settings")
        sections.append(
            build_section(
                str(name), raw, source=str(p), base_dir=p.parent.resolve(), strict=True, defaults=defaults
            )
        )
    return LogstreamConfig(str(p), sections)


def _toml_files(path: Path) -> list[Path]:
    if path.is_dir():
        names = sorted(
            n for n in os.listdir(path) if not n.startswith(".") and not n.endswith((".bak", ".tmp", "~"))
        )
        return [path / n for n in names if (path / n).is_file()]
    return [path]


def load_toml_config(path: str | Path, *, journal_directory: str | None = None) -> LogstreamConfig:
    """Read Heka TOML (a file, or a directory of files merged as hekad does)."""
    p = Path(path)
    merged: dict[str, tuple[str, dict[str, Any]]] = {}
    for f in _toml_files(p):
        try:
            doc = tomllib.loads(f.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", file=str(f)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML: {exc}", file=str(f)) from None
        for name, section in doc.items():
            if isinstance(section, dict):
                merged[name] = (str(f), section)
    sections = []
    for name in sorted(merged):
        source, raw = merged[name]
        if name != "LogstreamerInput" and raw.get("type") != "LogstreamerInput":
            continue
        # bbangert/toml matches keys case-insensitively when no exact tag matches.
        raw = {k.lower() if k.lower() in _KEYS else k: v for k, v in raw.items()}
        if journal_directory is not None:
            raw["journal_directory"] = journal_directory
        sections.append(build_section(name, raw, source=source, base_dir=None, strict=False))
    if not sections:
        raise ConfigError(
            "no LogstreamerInput section (a [LogstreamerInput] section, or one with "
            'type = "LogstreamerInput")',
            file=str(p),
        )
    return LogstreamConfig(str(p), sections)


def load_config(path: str | Path, *, journal_directory: str | None = None) -> LogstreamConfig:
    """Load YAML (`.yaml`/`.yml`) or Heka TOML (anything else, or a directory)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError("config file not found", file=str(p))
    if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
        cfg = load_yaml_config(p)
        if journal_directory is not None:
            for s in cfg.sections:
                s.journal_directory = journal_directory
        return cfg
    return load_toml_config(p, journal_directory=journal_directory)
