"""The Heka `Message` and `Field` model, and conversion to and from flat records.

Strings are Python `str`; bytes that are not valid UTF-8 are kept through the ``surrogateescape``
error handler, so a message with binary in a string field survives a decode/encode round trip
byte for byte (Heka never checked UTF-8). ``None`` means "not set" (left out on the wire), which is
needed for byte-exact output: Go omits unset optionals, even the "required" uuid and timestamp.

A *flat record* is the dict form used by decoders, pipelines and analysis: Heka header names as keys
(``Timestamp`` as int nanoseconds, ``Type``, ``Logger``, ``Hostname``, ``Severity``, ``Pid``, ``Uuid``,
``EnvVersion``, ``Payload``) and every field under its own name (a list when it has several values).
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

HEADER_KEYS = ("Timestamp", "Type", "Logger", "Hostname", "Severity", "Pid", "Uuid", "EnvVersion", "Payload")
DEFAULT_SEVERITY = 7


class ValueType(IntEnum):
    """Field value types, numbered as in Heka's message.proto."""

    STRING = 0
    BYTES = 1
    INTEGER = 2
    DOUBLE = 3
    BOOL = 4


def infer_value_type(value: Any) -> ValueType:
    """The ValueType Heka would use for a Python value (bool before int: bool is an int)."""
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, int):
        return ValueType.INTEGER
    if isinstance(value, float):
        return ValueType.DOUBLE
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ValueType.BYTES
    return ValueType.STRING


@dataclass(slots=True)
class Field:
    """One named field: an array of values all of `value_type`, with a free-text representation."""

    name: str
    value_type: ValueType = ValueType.STRING
    representation: str = ""
    values: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, value: Any, representation: str = "") -> Field:
        """Build a field from a Python value or list of values, inferring the value type."""
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        vtype = infer_value_type(values[0]) if values else ValueType.STRING
        if vtype is ValueType.DOUBLE or (vtype is ValueType.INTEGER and any(isinstance(v, float) for v in values)):
            vtype = ValueType.DOUBLE
            values = [float(v) for v in values]
        return cls(name, vtype, representation, values)

    @property
    def value(self) -> Any:
        """The first value, or None when the array is empty."""
        return self.values[0] if self.values else None


@dataclass(slots=True)
class Message:
    """A Heka message. Unset header fields are None; readers apply Heka's defaults."""

    uuid: bytes | None = None
    timestamp: int | None = None
    type: str | None = None
    logger: str | None = None
    severity: int | None = None
    payload: str | None = None
    env_version: str | None = None
    pid: int | None = None
    hostname: str | None = None
    fields: list[Field] = field(default_factory=list)

    @classmethod
    def new(cls, **kwargs: Any) -> Message:
        """A message with a fresh type-4 uuid and the current time, as Heka's tools made them."""
        kwargs.setdefault("uuid", uuidlib.uuid4().bytes)
        kwargs.setdefault("timestamp", time.time_ns())
        return cls(**kwargs)

    # -- Heka's read defaults -------------------------------------------------------------
    @property
    def severity_or_default(self) -> int:
        return DEFAULT_SEVERITY if self.severity is None else self.severity

    @property
    def uuid_string(self) -> str:
        """Lowercase 8-4-4-4-12 hex, or "" when the uuid is not exactly 16 bytes (as Heka)."""
        if self.uuid is None or len(self.uuid) != 16:
            return ""
        return str(uuidlib.UUID(bytes=bytes(self.uuid)))

    # -- fields -----------------------------------------------------------------------------
    def find_field(self, name: str, index: int = 0) -> Field | None:
        """The `index`-th field called `name` (Heka's `Fields[name][index]`), or None."""
        seen = 0
        for f in self.fields:
            if f.name == name:
                if seen == index:
                    return f
                seen += 1
        return None

    def get_field(self, name: str, field_index: int = 0, array_index: int = 0) -> Any:
        """Value `array_index` of the `field_index`-th field called `name`, or None."""
        f = self.find_field(name, field_index)
        if f is None or array_index >= len(f.values) or array_index < 0:
            return None
        return f.values[array_index]

    def add_field(self, name: str, value: Any, representation: str = "") -> Field:
        """Append a field built with `Field.of` and return it."""
        f = Field.of(name, value, representation)
        self.fields.append(f)
        return f

