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

import re
import struct
import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from .errors import DecodeError

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
        if vtype is ValueType.DOUBLE or (
            vtype is ValueType.INTEGER and any(isinstance(v, float) for v in values)
        ):
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



# ---------------------------------------------------------------------------------------------
# Protobuf codec (hand-written; byte-exact with Heka's Go encoder, see spec §1.4)
#
# Hand-written because it is faster here than building protobuf-package objects and converting
# them to dataclasses (bench/framing.py measures both), and because it gives Go's exact bytes:
# 5-byte negative int32, value_type/representation always written, packed numeric arrays.
# ---------------------------------------------------------------------------------------------

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
_VARINT1 = [bytes((i,)) for i in range(128)]


def _varint(v: int) -> bytes:
    """Unsigned base-128 varint of a non-negative int."""
    if v < 128:
        return _VARINT1[v]
    out = bytearray()
    while v >= 128:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _int64(v: int) -> bytes:
    return _varint(int(v) & _U64)


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogateescape")


def _ld(out: bytearray, tag: int, data: bytes) -> None:
    """Append a length-delimited entry."""
    out.append(tag)
    n = len(data)
    if n < 128:
        out.append(n)
    else:
        out += _varint(n)
    out += data


def _enc_str(out: bytearray, tag: int, value: Any) -> None:
    """Append a string entry (str kept byte-exact through surrogateescape)."""
    data = value.encode("utf-8", "surrogateescape") if type(value) is str else _text(value)
    out.append(tag)
    n = len(data)
    if n < 128:
        out.append(n)
    else:
        out += _varint(n)
    out += data


def _encode_field_into(out: bytearray, f: Field) -> None:
    vt = f.value_type
    values = f.values
    name = f.name.encode("utf-8", "surrogateescape") if type(f.name) is str else _text(f.name)
    rep = f.representation.encode("utf-8", "surrogateescape") if f.representation else b""
    inner = bytearray()
    inner.append(0x0A)
    inner += _varint(len(name))
    inner += name
    inner.append(0x10)
    inner += _varint(int(vt) & _U64)
    inner.append(0x1A)
    inner += _varint(len(rep))
    inner += rep
    if values:
        if vt == ValueType.STRING:
            for v in values:
                _enc_str(inner, 0x22, v)
        elif vt == ValueType.BYTES:
            for v in values:
                _ld(inner, 0x2A, v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v))
        elif vt == ValueType.INTEGER:
            if all(type(v) is int and 0 <= v < 128 for v in values):
                _ld(inner, 0x32, bytes(values))
            else:
                _ld(inner, 0x32, b"".join([_int64(v) for v in values]))
        elif vt == ValueType.DOUBLE:
            _ld(inner, 0x3A, struct.pack(f"<{len(values)}d", *[float(v) for v in values]))
        elif vt == ValueType.BOOL:
            _ld(inner, 0x42, bytes([1 if v else 0 for v in values]))
    _ld(out, 0x52, inner)


def encode_field(f: Field) -> bytes:
    """Serialize one Field (as the Go NewField helper does: value_type and representation always)."""
    out = bytearray()
    _encode_field_into(out, f)
    return _strip_entry(out)


def _strip_entry(entry: bytearray) -> bytes:
    """The body of a length-delimited entry (drop its tag and length prefix)."""
    pos = 1
    while entry[pos] >= 0x80:
        pos += 1
    return bytes(entry[pos + 1:])


_PBMessage: Any = None


def encode_message(msg: Message) -> bytes:
    """Serialize a Message to protobuf bytes exactly as Heka's Go encoder does (fields in number
    order, unset header fields left out, value_type and representation always written, packed
    arrays, negative int32 as 5 bytes).

    The protobuf package (upb, in C) builds these same bytes faster than Python code can, so it is
    used whenever its output is Go's: everything except a negative severity/pid (it writes those as
    10 bytes) and values it refuses (out of range, wrong kind), which the pure-Python encoder
    `encode_message_py` handles. bench/framing.py measures both; tests check they agree.
    """
    sev = msg.severity
    pid = msg.pid
    if (sev is None or sev >= 0) and (pid is None or pid >= 0):
        try:
            return _encode_upb(msg)
        except (TypeError, ValueError, OverflowError, AttributeError):
            pass
    return encode_message_py(msg)


def _pb_str(value: Any) -> bytes:
    return value.encode("utf-8", "surrogateescape") if type(value) is str else _text(value)


def _encode_upb(msg: Message) -> bytes:
    global _PBMessage
    if _PBMessage is None:
        from .heka_pb import PBMessage

        _PBMessage = PBMessage
    p = _PBMessage()
    if msg.uuid is not None:
        p.uuid = bytes(msg.uuid)
    if msg.timestamp is not None:
        p.timestamp = msg.timestamp
    if msg.type is not None:
        p.type = _pb_str(msg.type)
    if msg.logger is not None:
        p.logger = _pb_str(msg.logger)
    if msg.severity is not None:
        p.severity = msg.severity
    if msg.payload is not None:
        p.payload = _pb_str(msg.payload)
    if msg.env_version is not None:
        p.env_version = _pb_str(msg.env_version)
    if msg.pid is not None:
        p.pid = msg.pid
    if msg.hostname is not None:
        p.hostname = _pb_str(msg.hostname)
    add = p.fields.add
    for f in msg.fields:
        vt = int(f.value_type)
        pf = add(name=_pb_str(f.name), value_type=vt, representation=_pb_str(f.representation or ""))
        values = f.values
        if not values:
            continue
        if vt == 0:
            pf.value_string.extend([_pb_str(v) for v in values])
        elif vt == 1:
            pf.value_bytes.extend([v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
                                   for v in values])
        elif vt == 2:
            if any(type(v) is not int for v in values):
                raise TypeError("non-int integer value")  # the Python encoder converts these
            pf.value_integer.extend(values)
        elif vt == 3:
            pf.value_double.extend([float(v) for v in values])
        elif vt == 4:
            pf.value_bool.extend([bool(v) for v in values])
    return p.SerializeToString()


def encode_message_py(msg: Message) -> bytes:
    """The pure-Python encoder behind `encode_message` (same bytes; handles every case)."""
    out = bytearray()
    if msg.uuid is not None:
        _ld(out, 0x0A, bytes(msg.uuid))
    if msg.timestamp is not None:
        out.append(0x10)
        out += _varint(int(msg.timestamp) & _U64)
    if msg.type is not None:
        _enc_str(out, 0x1A, msg.type)
    if msg.logger is not None:
        _enc_str(out, 0x22, msg.logger)
    if msg.severity is not None:
        out.append(0x28)
        out += _varint(int(msg.severity) & _U32)  # Go: negative int32 as uint32, 5 bytes (not 10)
    if msg.payload is not None:
        _enc_str(out, 0x32, msg.payload)
    if msg.env_version is not None:
        _enc_str(out, 0x3A, msg.env_version)
    if msg.pid is not None:
        out.append(0x40)
        out += _varint(int(msg.pid) & _U32)
    if msg.hostname is not None:
        _enc_str(out, 0x4A, msg.hostname)
    for f in msg.fields:
        _encode_field_into(out, f)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at `pos`; returns (value, new position). IndexError when truncated."""
    b = data[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    result = b & 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _as_int64(v: int) -> int:
    v &= _U64
    return v - (1 << 64) if v >= (1 << 63) else v


def _as_int32(v: int) -> int:
    v &= _U32
    return v - (1 << 32) if v >= (1 << 31) else v


def _skip(data: bytes, pos: int, wt: int) -> int:
    """Skip an unknown entry's value of wire type `wt`; returns the new position."""
    if wt == 0:
        return _read_varint(data, pos)[1]
    if wt == 1:
        return pos + 8
    if wt == 5:
        return pos + 4
    if wt == 2:
        ln, pos = _read_varint(data, pos)
        return pos + ln
    raise ValueError(f"unsupported wire type {wt}")


def _packed_varints(data: bytes, pos: int, end: int) -> list[int]:
    out = []
    append = out.append
    while pos < end:
        b = data[pos]
        if b < 0x80:
            append(b)
            pos += 1
        else:
            v, pos = _read_varint(data, pos)
            append(v)
    if pos != end:
        raise ValueError("packed varints overrun their length")
    return out


_VALUE_TYPES = tuple(ValueType)
# Enum members as plain globals: `ValueType.INTEGER` is a slow descriptor lookup on Python 3.11.
_VT_STRING, _VT_BYTES, _VT_INTEGER, _VT_DOUBLE, _VT_BOOL = _VALUE_TYPES

# Continuation-bit pattern of a whole n-byte varint read as a little-endian int (all but the last
# byte have the high bit set), and the mask of its 7-bit payload groups.
_VARINT_CONT = [0] + [int.from_bytes(b"\x80" * (n - 1) + b"\x00", "little") for n in range(1, 11)]
_VARINT_LOW7 = [0] + [int.from_bytes(b"\x7f" * n, "little") for n in range(1, 11)]
_M16 = int.from_bytes(b"\x7f\x00" * 5, "little")
_M32 = int.from_bytes(b"\xff\x3f\x00\x00" * 3, "little")
_M64 = int.from_bytes(b"\xff\xff\xff\x0f\x00\x00\x00\x00" * 2, "little")
_M56 = (1 << 56) - 1


def _one_varint(data: bytes, pos: int, n: int) -> int | None:
    """The value when data[pos:pos+n] is exactly one varint (2..10 bytes), else None.

    Branch-free compaction of the 7-bit groups (pairs, then quads, then eights), much cheaper in
    Python than a byte loop for the 9-byte nanosecond timestamps flood and Heka messages carry."""
    v = int.from_bytes(data[pos:pos + n], "little")
    if v & ~_VARINT_LOW7[n] != _VARINT_CONT[n]:
        return None
    v &= _VARINT_LOW7[n]
    v = (v & _M16) | ((v >> 1) & (_M16 << 7))
    v = (v & _M32) | ((v >> 2) & (_M32 << 14))
    v = (v & _M64) | ((v >> 4) & (_M64 << 28))
    return (v & _M56) | ((v >> 64) << 56)


def _decode_field(data: bytes, pos: int, end: int) -> Field:
    """Decode a Field entry. Go always writes ``name, value_type, representation`` first and one
    kind of value: that shape is read straight; anything else goes through the generic loop."""
    start = pos
    if pos + 1 < end and data[pos] == 0x0A:
        ln = data[pos + 1]
        if ln < 0x80:
            p = pos + 2 + ln
            if p + 4 <= end and data[p] == 0x10 and data[p + 1] < 5 and data[p + 2] == 0x1A:
                vt = data[p + 1]
                rl = data[p + 3]
                if rl < 0x80:
                    q = p + 4 + rl
                    if q <= end:
                        name = data[pos + 2:p].decode("utf-8", "surrogateescape")
                        rep = data[p + 4:q].decode("utf-8", "surrogateescape") if rl else ""
                        if q == end:
                            return Field(name, _VALUE_TYPES[vt], rep, [])
                        tag = data[q]
                        if vt == 2 and tag == 0x32:
                            bl = data[q + 1]
                            if bl < 0x80 and q + 2 + bl == end:
                                if bl == 1 and data[q + 2] < 0x80:  # the usual single small value
                                    return Field(name, _VT_INTEGER, rep, [data[q + 2]])
                                if 1 < bl <= 10 and data[end - 1] < 0x80:
                                    v = _one_varint(data, q + 2, bl)
                                    if v is not None:
                                        return Field(name, _VT_INTEGER, rep,
                                                     [_as_int64(v) if v >> 63 else v])
                                blob = data[q + 2:end]
                                if blob and max(blob) < 0x80:  # every value 0..127: one byte each
                                    return Field(name, _VT_INTEGER, rep, list(blob))
                                return Field(name, _VT_INTEGER, rep,
                                             [_as_int64(v) for v in _packed_varints(data, q + 2, end)])
                        elif vt == 0 and tag == 0x22:
                            sl = data[q + 1]
                            if sl < 0x80 and q + 2 + sl == end:  # one short string
                                return Field(name, _VT_STRING, rep,
                                             [data[q + 2:end].decode("utf-8", "surrogateescape")])
                            values = _strings(data, q, end)
                            if values is not None:
                                return Field(name, _VT_STRING, rep, values)
                        elif vt == 3 and tag == 0x3A:
                            bl = data[q + 1]
                            if bl < 0x80 and q + 2 + bl == end and bl % 8 == 0:
                                return Field(name, _VT_DOUBLE, rep,
                                             list(struct.unpack_from(f"<{bl // 8}d", data, q + 2)))
                        elif vt == 4 and tag == 0x42:
                            bl = data[q + 1]
                            if bl < 0x80 and q + 2 + bl == end:
                                blob = data[q + 2:end]
                                if not blob or max(blob) < 0x80:  # one byte per bool
                                    return Field(name, _VT_BOOL, rep, [b != 0 for b in blob])
    return _decode_field_generic(data, start, end)


def _strings(data: bytes, pos: int, end: int) -> list[Any] | None:
    """A run of short value_string entries up to `end`, or None when it is not that simple."""
    out = []
    while pos < end:
        if data[pos] != 0x22:
            return None
        ln = data[pos + 1]
        if ln >= 0x80:
            return None
        stop = pos + 2 + ln
        if stop > end:
            return None
        out.append(data[pos + 2:stop].decode("utf-8", "surrogateescape"))
        pos = stop
    return out


def _decode_field_generic(data: bytes, pos: int, end: int) -> Field:
    name = ""
    vtype = 0
    rep = ""
    strings: list[str] = []
    blobs: list[bytes] = []
    ints: list[int] = []
    doubles: list[float] = []
    bools: list[bool] = []
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, pos - 1)
        wt = tag & 7
        num = tag >> 3
        if wt == 2:
            ln = data[pos]
            pos += 1
            if ln >= 0x80:
                ln, pos = _read_varint(data, pos - 1)
            stop = pos + ln
            if stop > end:
                raise ValueError("field entry overruns the field")
            if num == 4:
                strings.append(data[pos:stop].decode("utf-8", "surrogateescape"))
            elif num == 1:
                name = data[pos:stop].decode("utf-8", "surrogateescape")
            elif num == 3:
                rep = data[pos:stop].decode("utf-8", "surrogateescape")
            elif num == 5:
                blobs.append(data[pos:stop])
            elif num == 6:
                ints.extend(_as_int64(v) for v in _packed_varints(data, pos, stop))
            elif num == 7:
                if ln % 8:
                    raise ValueError("packed doubles length is not a multiple of 8")
                doubles.extend(struct.unpack_from(f"<{ln // 8}d", data, pos))
            elif num == 8:
                bools.extend(v != 0 for v in _packed_varints(data, pos, stop))
            pos = stop
        elif wt == 0:
            v, pos = _read_varint(data, pos)
            if num == 2:
                vtype = _as_int32(v)
            elif num == 6:
                ints.append(_as_int64(v))
            elif num == 8:
                bools.append(v != 0)
        elif wt == 1 and num == 7:
            doubles.append(struct.unpack_from("<d", data, pos)[0])
            pos += 8
        else:
            pos = _skip(data, pos, wt)
    if pos != end:
        raise ValueError("field overruns its length")
    if not 0 <= vtype < 5:
        raise ValueError(f"field {name!r} has unknown value_type {vtype}")
    value_type = _VALUE_TYPES[vtype]
    values: list[Any] = (strings, blobs, ints, doubles, bools)[value_type]
    return Field(name, value_type, rep, values)


# The continuation bits of the first 8 bytes of a 9-byte varint read as a little-endian int.
_CONT8 = int.from_bytes(b"\x80" * 8, "little")


def _varint9(data: bytes, pos: int) -> int | None:
    """A 9-byte varint at `pos` (nanosecond timestamps of today are 9 bytes) decoded without a
    per-byte loop; None when the varint there is not exactly 9 bytes long."""
    if data[pos + 8] >= 0x80:
        return None
    v = int.from_bytes(data[pos:pos + 9], "little")
    if v & _CONT8 != _CONT8:
        return None
    return ((v & 0x7F) | (v >> 1 & 0x3F80) | (v >> 2 & 0x1FC000) | (v >> 3 & 0xFE00000)
            | (v >> 4 & 0x7F0000000) | (v >> 5 & 0x3F800000000) | (v >> 6 & 0x1FC0000000000)
            | (v >> 7 & 0xFE000000000000) | (v >> 8 & 0x7F00000000000000))


def decode_message(data: bytes | bytearray | memoryview, start: int = 0) -> Message:
    """Parse protobuf bytes (from `start` to the end) into a Message. Like Go: no required-field or
    UTF-8 checks; packed and unpacked arrays accepted; unknown fields skipped. Raises DecodeError on
    malformed bytes."""
    if not isinstance(data, bytes):
        data = bytes(data)
    uuid = timestamp = type_ = logger = severity = payload = env_version = pid = hostname = None
    fields: list[Field] = []
    end = len(data)
    pos = start
    try:
        # Fast path: Go writes the header entries in field-number order. Read that prefix straight
        # through; whatever follows (fields, or anything in another order) goes through the loop.
        if end > pos + 18 and data[pos] == 0x0A and data[pos + 1] == 16:
            uuid = data[pos + 2:pos + 18]
            pos += 18
        if pos < end and data[pos] == 0x10:
            v = _varint9(data, pos + 1) if pos + 10 <= end else None
            if v is None:
                v, pos = _read_varint(data, pos + 1)
            else:
                pos += 10
            timestamp = v - (1 << 64) if v >= (1 << 63) else v
        if pos < end and data[pos] == 0x1A:
            ln = data[pos + 1]
            if ln < 0x80:
                pos += 2
            else:
                ln, pos = _read_varint(data, pos + 1)
            if pos + ln > end:
                raise ValueError("type overruns the message")
            type_ = data[pos:pos + ln].decode("utf-8", "surrogateescape")
            pos += ln
        if pos < end and data[pos] == 0x22:
            ln = data[pos + 1]
            if ln < 0x80:
                pos += 2
            else:
                ln, pos = _read_varint(data, pos + 1)
            if pos + ln > end:
                raise ValueError("logger overruns the message")
            logger = data[pos:pos + ln].decode("utf-8", "surrogateescape")
            pos += ln
        if pos < end and data[pos] == 0x28:
            v = data[pos + 1]
            if v < 0x80:
                severity = v
                pos += 2
            else:
                v, pos = _read_varint(data, pos + 1)
                severity = _as_int32(v)
        if pos < end and data[pos] == 0x32:
            ln = data[pos + 1]
            if ln < 0x80:
                pos += 2
            elif data[pos + 2] < 0x80:  # payloads of 128 B..16 KiB: a 2-byte length
                ln = (ln & 0x7F) | (data[pos + 2] << 7)
                pos += 3
            else:
                ln, pos = _read_varint(data, pos + 1)
            if pos + ln > end:
                raise ValueError("payload overruns the message")
            payload = data[pos:pos + ln].decode("utf-8", "surrogateescape")
            pos += ln
        if pos < end and data[pos] == 0x3A:
            ln = data[pos + 1]
            if ln < 0x80:
                pos += 2
            else:
                ln, pos = _read_varint(data, pos + 1)
            if pos + ln > end:
                raise ValueError("env_version overruns the message")
            env_version = data[pos:pos + ln].decode("utf-8", "surrogateescape")
            pos += ln
        if pos < end and data[pos] == 0x40:
            v = data[pos + 1]
            if v < 0x80:
                pid = v
                pos += 2
            else:
                v, pos = _read_varint(data, pos + 1)
                pid = _as_int32(v)
        if pos < end and data[pos] == 0x4A:
            ln = data[pos + 1]
            if ln < 0x80:
                pos += 2
            else:
                ln, pos = _read_varint(data, pos + 1)
            if pos + ln > end:
                raise ValueError("hostname overruns the message")
            hostname = data[pos:pos + ln].decode("utf-8", "surrogateescape")
            pos += ln
        while pos < end and data[pos] == 0x52:
            ln = data[pos + 1]
            if ln < 0x80:
                pos += 2
            else:
                ln, pos = _read_varint(data, pos + 1)
            stop = pos + ln
            if stop > end:
                raise ValueError("field overruns the message")
            fields.append(_decode_field(data, pos, stop))
            pos = stop
        # The general loop: any entry, any order, unknown ones skipped.
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag >= 0x80:
                tag, pos = _read_varint(data, pos - 1)
            wt = tag & 7
            num = tag >> 3
            if wt == 2:
                ln = data[pos]
                pos += 1
                if ln >= 0x80:
                    ln, pos = _read_varint(data, pos - 1)
                stop = pos + ln
                if stop > end:
                    raise ValueError(f"entry {num} overruns the message")
                if num == 10:
                    fields.append(_decode_field(data, pos, stop))
                elif num == 9:
                    hostname = data[pos:stop].decode("utf-8", "surrogateescape")
                elif num == 7:
                    env_version = data[pos:stop].decode("utf-8", "surrogateescape")
                elif num == 3:
                    type_ = data[pos:stop].decode("utf-8", "surrogateescape")
                elif num == 1:
                    uuid = data[pos:stop]
                elif num == 6:
                    payload = data[pos:stop].decode("utf-8", "surrogateescape")
                elif num == 4:
                    logger = data[pos:stop].decode("utf-8", "surrogateescape")
                pos = stop
            elif wt == 0:
                b = data[pos]
                if b < 0x80:
                    v = b
                    pos += 1
                else:
                    v, pos = _read_varint(data, pos)
                if num == 8:
                    pid = _as_int32(v)
                elif num == 2:
                    timestamp = _as_int64(v)
                elif num == 5:
                    severity = _as_int32(v)
            else:
                pos = _skip(data, pos, wt)
        if pos != end:
            raise ValueError("last entry overruns the message")
    except (IndexError, ValueError, struct.error) as exc:
        text = str(exc) if not isinstance(exc, IndexError) else "truncated protobuf"
        raise DecodeError(f"cannot decode message: {text}") from None
    return Message(uuid, timestamp, type_, logger, severity, payload, env_version, pid, hostname, fields)


def _field_well_formed(data: bytes, pos: int, end: int) -> bool:
    """Whether `_decode_field(data, pos, end)` succeeds (the checks of `_decode_field_generic`,
    which its fast paths agree with), without building the Field."""
    vtype = 0
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, pos - 1)
        wt = tag & 7
        if wt == 2:
            ln = data[pos]
            pos += 1
            if ln >= 0x80:
                ln, pos = _read_varint(data, pos - 1)
            stop = pos + ln
            if stop > end:
                return False
            num = tag >> 3
            if num == 6 or num == 8:  # packed varints: each whole, none past the entry
                if ln and max(data[pos:stop]) >= 0x80:  # (else one byte each)
                    _packed_varints(data, pos, stop)  # raises as the decoder does
            elif num == 7 and ln % 8:
                return False
            pos = stop
        elif wt == 0:
            if data[pos] < 0x80:
                v = data[pos]
                pos += 1
            else:
                v, pos = _read_varint(data, pos)
            if tag >> 3 == 2:  # value_type: the last one counts
                vtype = _as_int32(v)
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        else:
            return False
    return pos == end and 0 <= vtype < 5


# (FromString, DiscardUnknownFields, SerializeToString) of that class once built, unbound (saves two
# attribute lookups a message); False when the protobuf package is missing.
_canonical_parse: Any = None


def _build_canonical_parser() -> Any:
    """`FromString`, `DiscardUnknownFields` and `SerializeToString` of a protobuf class for Heka's
    message whose Field.value_type is a closed enum of the five value types (so upb sets any other
    value aside as an unknown field)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        return False
    fd = descriptor_pb2.FieldDescriptorProto
    opt, rep = fd.LABEL_OPTIONAL, fd.LABEL_REPEATED
    fdp = descriptor_pb2.FileDescriptorProto(name="hekacli_canonical.proto", package="hekacli_canonical",
                                             syntax="proto2")
    enum = fdp.enum_type.add(name="ValueType")
    for vt in ValueType:
        enum.value.add(name=vt.name, number=int(vt))
    fld = fdp.message_type.add(name="Field")
    for num, name, ftype, label in ((1, "name", fd.TYPE_BYTES, opt), (2, "value_type", fd.TYPE_ENUM, opt),
                                    (3, "representation", fd.TYPE_BYTES, opt),
                                    (4, "value_string", fd.TYPE_BYTES, rep),
                                    (5, "value_bytes", fd.TYPE_BYTES, rep),
                                    (6, "value_integer", fd.TYPE_INT64, rep),
                                    (7, "value_double", fd.TYPE_DOUBLE, rep),
                                    (8, "value_bool", fd.TYPE_BOOL, rep)):
        f = fld.field.add(name=name, number=num, type=ftype, label=label)
        if ftype == fd.TYPE_ENUM:
            f.type_name = ".hekacli_canonical.ValueType"
        if num >= 6:
            f.options.packed = True
    msg = fdp.message_type.add(name="Message")
    for num, name, ftype in ((1, "uuid", fd.TYPE_BYTES), (2, "timestamp", fd.TYPE_INT64),
                             (3, "type", fd.TYPE_BYTES), (4, "logger", fd.TYPE_BYTES),
                             (5, "severity", fd.TYPE_INT32), (6, "payload", fd.TYPE_BYTES),
                             (7, "env_version", fd.TYPE_BYTES), (8, "pid", fd.TYPE_INT32),
                             (9, "hostname", fd.TYPE_BYTES)):
        msg.field.add(name=name, number=num, type=ftype, label=opt)
    msg.field.add(name="fields", number=10, type=fd.TYPE_MESSAGE, label=rep,
                  type_name=".hekacli_canonical.Field")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("hekacli_canonical.Message"))
    return cls.FromString, cls.DiscardUnknownFields, cls.SerializeToString


def _canonical(data: bytes) -> bool:
    """True when `data` is byte for byte how the protobuf package (upb, in C) writes the message it
    parses from `data`, unknown entries left out. Such bytes are a message of known entries only,
    each with its own wire type, value types 0..4 (the enum sets others aside), and varints, lengths
    and packed arrays all well-formed: `decode_message` reads every one of those. Go's encoder
    writes these bytes (but for negative severity/pid), so this is the usual case; False says
    nothing (the caller checks the slow way)."""
    global _canonical_parse
    funcs = _canonical_parse
    if funcs is None:
        funcs = _canonical_parse = _build_canonical_parser()
    if funcs is False:
        return False
    parse, discard, serialize = funcs
    try:
        p = parse(data)
    except Exception:  # noqa: BLE001 - upb's DecodeError (or anything else): not canonical
        return False
    discard(p)
    return serialize(p) == data


def well_formed(data: bytes) -> bool:
    """True exactly when `decode_message(data)` would succeed (and False when it would raise
    DecodeError), at a fraction of its cost: canonical bytes (what Heka writes) are checked in C
    (`_canonical`); others are walked and checked as the decoder checks them, but no string is
    decoded and no Message or Field is built. `heka serve` uses it to drop undecodable messages
    when no plugin needs the decoded message."""
    if type(data) is not bytes:
        data = bytes(data)
    funcs = _canonical_parse  # `_canonical`, inlined: this runs for every message
    if funcs:
        parse, discard, serialize = funcs
        try:
            p = parse(data)
        except Exception:  # noqa: BLE001 - upb's DecodeError (or anything else): not canonical
            p = None
        if p is not None:
            discard(p)
            if serialize(p) == data:
                return True
    elif funcs is None and _canonical(data):
        return True
    return _walk(data)


def _walk(data: bytes) -> bool:
    """`well_formed` the slow way: walk every entry as `decode_message` reads it."""
    end = len(data)
    pos = 0
    try:
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag >= 0x80:
                tag, pos = _read_varint(data, pos - 1)
            wt = tag & 7
            if wt == 2:
                ln = data[pos]
                pos += 1
                if ln >= 0x80:
                    ln, pos = _read_varint(data, pos - 1)
                stop = pos + ln
                if stop > end:
                    return False
                if tag >> 3 == 10 and not _field_well_formed(data, pos, stop):
                    return False
                pos = stop
            elif wt == 0:
                if data[pos] < 0x80:
                    pos += 1
                else:
                    pos = _read_varint(data, pos)[1]
            elif wt == 1:
                pos += 8
            elif wt == 5:
                pos += 4
            else:
                return False
        return pos == end
    except (IndexError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Repeated messages: recognise "the same message, another counter value" without decoding it
#
# A stream often repeats one message with only a trailing integer field changed (a sequence number:
# heka flood, heka-flood, counters). Protobuf is a concatenation of entries, and `decode_message`
# reads them in order (scalars: last one wins, fields: appended), so for bytes ``K + T`` where K ends
# on an entry boundary of a message that decoded fine, decode(K + T) is decode(K) merged with
# decode(T). `TailMemo` keeps such a K (the learned message minus its last entry) and checks T
# byte-exactly for the one shape it knows: a field entry holding one varint integer under the same
# name, value type and representation. A hit therefore gives exactly what `decode_message` would give
# (the prefix's message plus ``Field(name, INTEGER, representation, [value])``), at the cost of a
# prefix comparison; anything else is a miss and the caller decodes as usual.
# ---------------------------------------------------------------------------------------------


class MessagePrefix:
    """The bytes of a decoded message before its trailing integer fields (`key`), what they decode
    to (`message`: shared by every hit, so treat it as read-only), and those fields' `names` and
    `representations` (one or two). A `TailMemo.match` hit is this message plus those fields with
    the hit's values: an int when there is one field (`width` 1), a tuple of two ints otherwise."""

    __slots__ = ("key", "message", "names", "representations", "width")

    def __init__(self, key: bytes, message: Message, names: tuple[str, ...],
                 representations: tuple[str, ...]) -> None:
        self.key = key
        self.message = message
        self.names = names
        self.representations = representations
        self.width = len(names)

    @property
    def name(self) -> str:
        """The last trailing field's name."""
        return self.names[-1]

    def fields(self, value: int | tuple[int, ...]) -> list[Field]:
        """The trailing fields of a hit with `value`."""
        values = (value,) if self.width == 1 else value
        return [Field(n, _VT_INTEGER, r, [v])
                for n, r, v in zip(self.names, self.representations, values, strict=True)]  # type: ignore

    def materialize(self, value: int | tuple[int, ...]) -> Message:
        """A fresh Message equal to `decode_message` of a hit with `value` (nothing shared)."""
        m = self.message
        fields = [Field(f.name, f.value_type, f.representation, list(f.values)) for f in m.fields]
        fields += self.fields(value)
        return Message(m.uuid, m.timestamp, m.type, m.logger, m.severity, m.payload, m.env_version, m.pid,
                       m.hostname, fields)


def _entry_starts(data: bytes) -> list[int] | None:
    """Where the top-level entries of well-formed message bytes start (None if a tag is longer than
    one byte or the bytes do not walk to their end: then nothing is learned)."""
    pos = 0
    end = len(data)
    starts = []
    while pos < end:
        starts.append(pos)
        tag = data[pos]
        if tag >= 0x80:
            return None
        wt = tag & 7
        pos += 1
        if wt == 2:
            ln, pos = _read_varint(data, pos)
            pos += ln
        elif wt == 0:
            pos = _read_varint(data, pos)[1]
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        else:
            return None
    return starts if pos == end else None


def _int_entry_head(data: bytes, start: int, end: int) -> bytes | None:
    """When the top-level entry at `start` (ending at `end`) is a field entry of exactly
    ``52 <len> 0A <name> 10 02 1A <representation> 32 <n> <n-byte varint>`` (one-byte lengths), its
    bytes from the name's tag to the value's tag (``0A ... 32``); else None."""
    try:
        if data[start] != 0x52 or data[start + 1] >= 0x80 or start + 2 + data[start + 1] != end:
            return None
        p = start + 2
        if data[p] != 0x0A or data[p + 1] >= 0x80:
            return None
        q = p + 2 + data[p + 1]
        if data[q:q + 3] != b"\x10\x02\x1a" or data[q + 3] >= 0x80:
            return None
        r = q + 4 + data[q + 3]
        if data[r] != 0x32 or not 0 < data[r + 1] < 11 or r + 2 + data[r + 1] != end:
            return None
    except IndexError:
        return None
    return bytes(data[p:r + 1])


def _varint_exact(data: bytes, pos: int, n: int) -> int | None:
    """The int64 value when data[pos:pos+n] is exactly one varint, as `decode_message` reads it."""
    if n == 1:
        v = data[pos]
        return v if v < 0x80 else None
    if data[pos + n - 1] >= 0x80:
        return None
    v = _varint9(data, pos) if n == 9 else _one_varint(data, pos, n)
    if v is None:
        return None
    return _as_int64(v) if v >> 63 else v


def _last_varint(data: bytes, end: int, nb: int) -> int | None:
    """The int64 value when the `nb` bytes before `end` are exactly one varint, else None (short ones
    unrolled: on the hot path of repeated messages big-int tricks cost more)."""
    if nb == 1:
        v = data[end - 1]
        return v if v < 0x80 else None
    if nb == 2:
        b0 = data[end - 2]
        v = data[end - 1]
        return None if b0 < 0x80 or v >= 0x80 else (b0 & 0x7F) | (v << 7)
    if nb == 3:
        b0 = data[end - 3]
        b1 = data[end - 2]
        v = data[end - 1]
        if b0 < 0x80 or b1 < 0x80 or v >= 0x80:
            return None
        return (b0 & 0x7F) | ((b1 & 0x7F) << 7) | (v << 14)
    return _varint_exact(data, end - nb, nb)


class TailMemo:
    """Recognises messages that repeat the last learned one up to one or two trailing one-value
    integer fields (see the comment above): flood repeats one message with a new sequence number,
    and when it paces its sends, a new send time too. One per stream (connection): `match` each
    message's bytes; on a miss decode them and `learn` from the result. It learns two trailing
    fields once one was not enough; streams that never repeat learn less and less often."""

    __slots__ = ("prefix", "hits", "width", "_backoff", "_skip", "_fixed", "_full", "_want2", "_key",
                 "_heads", "_stamp")

    def __init__(self) -> None:
        self.prefix: MessagePrefix | None = None
        self.hits = 0  # hits since the last learn
        self.width = 1  # trailing fields of the learned prefix
        self._backoff = 0
        self._skip = 0
        self._want2 = False  # a one-field prefix was never hit: learn two fields from now on
        self._fixed = 0  # width 1: bytes of a hit that are not the value's varint
        # Width 1, by varint length n: the bytes every hit with an n-byte value starts with (key,
        # field entry tag and length, name, value type, representation, value length), or None.
        self._full: list[bytes | None] = [None] * 11
        self._key = b""  # width 2: the key, and each field entry's bytes from name to value tag
        self._heads: tuple[bytes, ...] = ()
        self._stamp: tuple[int, int] | None = None  # the key's timestamp varint (start, end), if one

    @property
    def head_size(self) -> int:
        """Bytes of a one-field hit that are not its value (0 when the prefix is not one field)."""
        return self._fixed if self.width == 1 else 0

    def stamp_span(self) -> tuple[int, int] | None:
        """Where the prefix's only Timestamp varint is in its key (start, end), if it has one of at
        most 9 bytes (`rebase` replaces it)."""
        stamp = self._stamp
        return stamp if stamp is not None and stamp[1] - stamp[0] <= 9 else None

    def parts(self) -> tuple[bytes, bytes, bytes]:
        """For a two-field prefix: the key, and each field entry's bytes from its name's tag to its
        value's tag (a hit is ``key + 52 <len> head1 <n> <varint> + 52 <len> head2 <n> <varint>``)."""
        return self._key, self._heads[0], self._heads[1]

    def head(self, nb: int) -> bytes | None:
        """The bytes every one-field hit whose value is an `nb`-byte varint starts with (all but
        the value), or None when there is no such hit."""
        return self._full[nb] if 0 < nb < 11 and self.width == 1 else None

    def match(self, data: bytes, start: int = 0, end: int | None = None) -> int | tuple[int, int] | None:
        """The trailing fields' value(s) when the message bytes ``data[start:end]`` are `prefix.key`
        plus those fields, checked byte for byte; None otherwise."""
        if end is None:
            end = len(data)
        if self.width != 1:
            return self._match2(data, start, end)
        nb = end - start - self._fixed
        if not 0 < nb < 11:
            return None
        full = self._full[nb]
        if full is None or not data.startswith(full, start):
            return None
        v = _last_varint(data, end, nb)
        if v is None:
            return None
        self.hits += 1
        return v

    def _match2(self, data: bytes, start: int, end: int) -> tuple[int, int] | None:
        """`match` for two trailing fields: ``key + 52 <len> <head1> <n> <varint> + 52 <len> <head2>
        <n> <varint>``, each varint exactly n bytes."""
        key = self._key
        if not data.startswith(key, start):
            return None
        h1, h2 = self._heads
        t = start + len(key)
        q = t + 2 + len(h1)
        if q >= end or data[t] != 0x52 or not data.startswith(h1, t + 2):
            return None
        nb = data[q]
        ln = len(h1) + 1 + nb
        if not 0 < nb < 11 or ln >= 0x80 or data[t + 1] != ln or q + 1 + nb > end:
            return None
        v1 = _varint9(data, q + 1) if nb == 9 else _varint_exact(data, q + 1, nb)  # 9: ns times
        if v1 is None:
            return None
        if v1 >> 63:
            v1 = _as_int64(v1)
        t = q + 1 + nb
        q = t + 2 + len(h2)
        if q >= end or data[t] != 0x52 or not data.startswith(h2, t + 2):
            return None
        nb = data[q]
        ln = len(h2) + 1 + nb
        if not 0 < nb < 11 or ln >= 0x80 or data[t + 1] != ln or q + 1 + nb != end:
            return None
        v2 = _last_varint(data, end, nb)
        if v2 is None:
            return None
        self.hits += 1
        return v1, v2

    def learn(self, data: bytes, msg: Message) -> None:
        """Remember `data` (bytes `msg` was decoded from) when it ends in one-value integer fields."""
        if self.due():
            self.learn_due(data, msg)

    def due(self) -> bool:
        """Whether `learn` would look at the next missed message (it learns less and less often while
        nothing is reused); False also counts that message as skipped. A caller that decodes only
        for learning asks this first, then calls `learn_due` with the decoded message when True."""
        if self.hits:
            self._backoff = self._skip = 0
        elif self.prefix is not None:  # the last prefix was never reused
            if self.width == 1 and not self._want2:
                self._want2 = True  # perhaps a second trailing field changes too: try that at once
            else:  # learn less often
                if self._skip > 0:
                    self._skip -= 1
                    return False
                self._backoff = min(max(1, self._backoff * 2), 256)
                self._skip = self._backoff
        self.hits = 0
        return True

    @staticmethod
    def may_learn(data: bytes) -> bool:
        """False when `learn_due` would learn nothing from `data` whatever it decodes to: the bytes
        do not end in ``32 <n>`` and one n-byte varint (the one-value integer field it learns
        from), so a caller that decodes only for learning need not decode them."""
        end = len(data) - 1
        if end < 2 or data[end] >= 0x80:
            return False
        i = end - 1
        while i >= 0 and data[i] >= 0x80:  # the varint's other bytes
            i -= 1
        n = end - i
        return i >= 1 and n < 11 and data[i] == n and data[i - 1] == 0x32

    def learn_due(self, data: bytes, msg: Message) -> None:
        """`learn` after `due` returned True (the bookkeeping is done: only the learning is left)."""
        fields = msg.fields
        if not fields or fields[-1].value_type is not _VT_INTEGER or len(fields[-1].values) != 1:
            return
        starts = _entry_starts(data)
        if not starts:
            return
        end = len(data)
        last = _int_entry_head(data, starts[-1], end)
        if last is None:
            return
        two = None
        if self._want2 and len(starts) >= 2 and len(fields) >= 2:
            f = fields[-2]
            if f.value_type is _VT_INTEGER and len(f.values) == 1:
                two = _int_entry_head(data, starts[-2], starts[-1])
        tail = fields[-2:] if two is not None else fields[-1:]
        cut = starts[-2] if two is not None else starts[-1]
        head = Message(msg.uuid, msg.timestamp, msg.type, msg.logger, msg.severity, msg.payload,
                       msg.env_version, msg.pid, msg.hostname,
                       [Field(g.name, g.value_type, g.representation, list(g.values))
                        for g in fields[:len(fields) - len(tail)]])
        stamps = [i for i, st in enumerate(starts) if st < cut and data[st] == 0x10]
        self._stamp = (starts[stamps[0]] + 1, starts[stamps[0] + 1]) if len(stamps) == 1 else None
        self._set_prefix(MessagePrefix(bytes(data[:cut]), head, tuple(f.name for f in tail),
                                       tuple(f.representation for f in tail)),
                         (two, last) if two is not None else (last,))

    def _set_prefix(self, prefix: MessagePrefix, heads: tuple[bytes, ...]) -> None:
        self.prefix = prefix
        key = prefix.key
        if len(heads) == 2:
            self.width = 2
            self._key = key
            self._heads = heads
            self._fixed = 0
            self._full = [None] * 11
        else:
            last = heads[0]
            self.width = 1
            self._heads = heads
            self._fixed = len(key) + len(last) + 3
            self._full = [None if not 0 < nb < 11 or len(last) + 1 + nb >= 0x80
                          else key + bytes((0x52, len(last) + 1 + nb)) + last + bytes((nb,))
                          for nb in range(11)]

    def rebase(self, data: bytes, start: int = 0, end: int | None = None) -> bool:
        """Learn, without decoding, from message bytes that are the prefix with another timestamp
        (a varint of the same length: only its value differs) followed by anything; True when it
        did (then `match` the bytes again). heka flood stamps each batch of sends anew."""
        pre = self.prefix
        stamp = self._stamp
        if pre is None or stamp is None:
            return False
        if end is None:
            end = len(data)
        key = pre.key
        a, b = stamp
        if b - a > 9 or end - start < len(key) or not data.startswith(key[:a], start):
            return False
        if not data.startswith(key[b:], start + b):
            return False
        v = _varint_exact(data, start + a, b - a)  # at most 9 bytes: < 2**63, as decode_message reads it
        if v is None:
            return False
        m = pre.message
        # The fields list is shared with the old prefix: prefixes are read-only (materialize copies).
        head = Message(m.uuid, v, m.type, m.logger, m.severity, m.payload, m.env_version, m.pid, m.hostname,
                       m.fields)
        self._set_prefix(MessagePrefix(bytes(data[start:start + len(key)]), head, pre.names,
                                       pre.representations), self._heads)
        return True


# ---------------------------------------------------------------------------------------------
# Flat records
# ---------------------------------------------------------------------------------------------

_HEADER_ATTRS = {
    "Timestamp": "timestamp", "Type": "type", "Logger": "logger", "Hostname": "hostname",
    "Severity": "severity", "Pid": "pid", "Uuid": "uuid", "EnvVersion": "env_version", "Payload": "payload",
}
_ATTR_HEADERS = {v: k for k, v in _HEADER_ATTRS.items()}


def flat_field_key(name: str) -> str:
    """The key a field has in a flat record: its name, or ``Fields[name]`` if that is a header key."""
    return f"Fields[{name}]" if name in _HEADER_ATTRS else name


def to_flat(msg: Message) -> dict[str, Any]:
    """The flat-record form of a message (see the module docstring).

    Header keys come first (only those set); then each field under its own name (``Fields[name]`` if
    the name is a header key): the value for a one-value field, a list for several values, and the
    values of same-named fields concatenated in order.
    """
    rec: dict[str, Any] = {}
    if msg.timestamp is not None:
        rec["Timestamp"] = msg.timestamp
    if msg.type is not None:
        rec["Type"] = msg.type
    if msg.logger is not None:
        rec["Logger"] = msg.logger
    if msg.hostname is not None:
        rec["Hostname"] = msg.hostname
    if msg.severity is not None:
        rec["Severity"] = msg.severity
    if msg.pid is not None:
        rec["Pid"] = msg.pid
    if msg.uuid is not None:
        rec["Uuid"] = msg.uuid_string if len(msg.uuid) == 16 else msg.uuid.hex()
    if msg.env_version is not None:
        rec["EnvVersion"] = msg.env_version
    if msg.payload is not None:
        rec["Payload"] = msg.payload
    for f in msg.fields:
        key = flat_field_key(f.name)
        vals = f.values
        if key in rec and key not in _HEADER_ATTRS:
            prev = rec[key]
            merged = prev if isinstance(prev, list) else [prev]
            rec[key] = merged + list(vals)
        else:
            rec[key] = vals[0] if len(vals) == 1 else list(vals)
    return rec


def _parse_timestamp(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        # RFC 3339 with up to nanoseconds: split the fraction off so no precision is lost.
        frac_ns = 0
        m = _RFC3339_FRACTION.search(text)
        if m:
            digits = m.group(1)
            frac_ns = int((digits + "000000000")[:9])
            text = text[: m.start()] + text[m.end():]
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + frac_ns
    raise ValueError(f"cannot use {type(value).__name__} as a timestamp")


_RFC3339_FRACTION = re.compile(r"\.(\d+)")


def _coerce(value: Any, vtype: ValueType) -> Any:
    if vtype == ValueType.STRING:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", "surrogateescape")
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    if vtype == ValueType.BYTES:
        return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    if vtype == ValueType.INTEGER:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        return int(value)
    if vtype == ValueType.DOUBLE:
        return float(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    return bool(value)


def _header_value(attr: str, value: Any) -> Any:
    if attr == "timestamp":
        return _parse_timestamp(value)
    if attr in ("severity", "pid"):
        return int(value)
    if attr == "uuid":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, uuidlib.UUID):
            return value.bytes
        return uuidlib.UUID(str(value)).bytes
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else str(value)


def from_flat(record: Mapping[str, Any], schema: Mapping[str, tuple[ValueType, str]] | None = None,
              **header_defaults: Any) -> Message:
    """Build a Message from a flat record.

    Header keys (``Timestamp`` as int ns, RFC 3339 text or datetime; ``Uuid`` as dashed text or 16
    bytes) fill the header; every other key becomes a field (``Fields[name]`` keys too). `schema`
    gives ``name -> (ValueType, representation)``; without it the type is inferred from the value.
    A None value leaves the key out. `header_defaults` (by Heka name, ``Type=...``, or attribute
    name, ``type=...``) fill header values the record does not have. Raises DecodeError naming the
    key when a value does not fit its type.
    """
    msg = Message()
    for key, value in header_defaults.items():
        attr = _HEADER_ATTRS.get(key, key)
        if attr not in _ATTR_HEADERS:
            raise TypeError(f"from_flat() got an unknown header default {key!r}")
        if value is not None:
            setattr(msg, attr, _header_value(attr, value))
    for key, value in record.items():
        if value is None:
            continue
        attr = _HEADER_ATTRS.get(key)
        try:
            if attr is not None:
                setattr(msg, attr, _header_value(attr, value))
                continue
            name = key[7:-1] if key.startswith("Fields[") and key.endswith("]") else key
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            values = [v for v in values if v is not None]
            spec = schema.get(name) if schema else None
            if spec is not None:
                vtype, rep = ValueType(spec[0]), spec[1] or ""
                msg.fields.append(Field(name, vtype, rep, [_coerce(v, vtype) for v in values]))
            else:
                f = Field.of(name, values)
                try:
                    f.values = [_coerce(v, f.value_type) for v in f.values]
                except (TypeError, ValueError):  # mixed kinds in one list: keep them as text
                    f.value_type = ValueType.STRING
                    f.values = [_coerce(v, ValueType.STRING) for v in f.values]
                msg.fields.append(f)
        except (TypeError, ValueError, OverflowError) as exc:
            raise DecodeError(f"bad value {value!r}: {exc}", field=key) from None
    return msg
