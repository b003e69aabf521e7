"""JSON Lines: one object per line -> flat record (nested objects flattened with dots).

Heka header names are honoured, so JSONL written by ``heka decode`` reads back as the same records:
``Timestamp`` (RFC 3339 text or integer ns), ``Type``, ``Logger``, ``Hostname``, ``Severity``, ``Pid``,
``Payload``.
"""

from __future__ import annotations

import json
from typing import Any

from hekacli.message import ValueType

from .core import Decoder
from .times import rfc3339_to_ns

_INT_HEADERS = ("Severity", "Pid")
_STR_HEADERS = ("Type", "Logger", "Hostname", "Payload", "Uuid", "EnvVersion")


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        elif isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
            out[key] = json.dumps(v, ensure_ascii=False)
        else:
            out[key] = v


class JsonDecoder(Decoder):
    """Decoder for JSON Lines."""

    def __init__(self, message_type: str = "json") -> None:
        self.kind = "json"
        self.message_type = message_type
        self.schema = {}
        self.rejects = None

    def _parse(self, line: str) -> dict[str, Any]:
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        flat: dict[str, Any] = {}
        _flatten(obj, "", flat)
        rec: dict[str, Any] = {}
        ts = flat.pop("Timestamp", None)
        if isinstance(ts, str):
            rec["Timestamp"] = rfc3339_to_ns(ts)
        elif isinstance(ts, (int, float)) and not isinstance(ts, bool):
            rec["Timestamp"] = int(ts)
        rec["Type"] = flat.pop("Type", None) or self.message_type
        for h in ("Logger", "Hostname", "Severity", "Pid", "Payload"):
            if h in flat:
                v = flat.pop(h)
                if v is not None:
                    rec[h] = int(v) if h in _INT_HEADERS else str(v)
        for k, v in flat.items():
            if v is not None:
                rec[k] = v
        return rec

    def decode(self, line: str) -> dict[str, Any] | None:
        line = line.rstrip("\r\n")
        try:
            return self._parse(line)
        except (ValueError, TypeError):
            return None

    def explain_failure(self, line: str) -> str:
        try:
            self._parse(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            return f"column {exc.colno}: invalid JSON ({exc.msg})"
        except (ValueError, TypeError) as exc:
            return str(exc)
        return "ok"

    def to_message(self, record):  # noqa: ANN001, ANN201 - same signature as Decoder
        schema = {
            k: (
                ValueType.STRING
                if isinstance(v, str)
                else ValueType.DOUBLE
                if isinstance(v, (int, float)) and not isinstance(v, bool)
                else None,
                "",
            )
            for k, v in record.items()
        }
        from .core import record_to_message

        return record_to_message(record, {k: v for k, v in schema.items() if v[0] is not None})
