"""Config loading: YAML for hekacli's own configs, TOML for Heka's (flood.toml, sbmgr.toml, ...).

Every error names the file (and the line for syntax errors, the key for unknown or mistyped keys)
and is a `ConfigError` (exit 2). Unknown keys are errors: a typo never silently does nothing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

_MISSING = object()


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file is not UTF-8 ({exc.reason} at byte {exc.start})",
                          file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", file=str(path)) from None


def check_keys(data: Mapping[str, Any], allowed: Iterable[str], *, file: str | Path | None = None,
               section: str | None = None) -> None:
    """Raise ConfigError naming the first key of `data` not in `allowed` (and what is allowed)."""
    allowed_set = set(allowed)
    for key in data:
        if key not in allowed_set:
            where = f"{section}.{key}" if section else str(key)
            choices = ", ".join(sorted(allowed_set)) or "none"
            # rendered as "FILE: field 'KEY': unknown key (allowed: ...)"
            raise ConfigError(f"unknown key (allowed: {choices})", file=str(file) if file else None,
                              field=where)


def load_yaml(path: str | Path, allowed_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Load a YAML mapping. An empty file is ``{}``. With `allowed_keys`, unknown top-level keys are
    errors."""
    import yaml

    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"YAML syntax error: {problem}", file=str(path), line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping, not {type(data).__name__}", file=str(path))
    if allowed_keys is not None:
        check_keys(data, allowed_keys, file=path)
    return data


def load_toml(path: str | Path, allowed_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Load a TOML file (Heka's tool configs). With `allowed_keys`, unknown top-level keys are errors."""
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line N, column M)" in the message; keep it as is.
        raise ConfigError(f"TOML syntax error: {exc}", file=str(path)) from None
    if allowed_keys is not None:
        check_keys(data, allowed_keys, file=path)
    return data


def get_typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = _MISSING, *,
              file: str | Path | None = None, section: str | None = None) -> Any:
    """`data[key]` checked against `kind` (bool is not accepted as int); ConfigError naming the key."""
    where = f"{section}.{key}" if section else key
    if key not in data:
        if default is _MISSING:
            raise ConfigError(f"missing key {where!r}", file=str(file) if file else None, field=where)
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"key {where!r} must be {names}, not {type(value).__name__}",
                          file=str(file) if file else None, field=where)
    return value
