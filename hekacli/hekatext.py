"""Messages rendered exactly as heka-cat prints them: the ``txt`` block and the ``json`` line (spec §4.5).

Output is bytes: strings that came off the wire with invalid UTF-8 are written back as the raw bytes
in ``txt`` (Go prints strings verbatim) and as ``\\ufffd`` per invalid byte in ``json`` (Go's
encoding/json does that).
"""

from __future__ import annotations

import base64
import math
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .message import Field, Message, ValueType

_VT_NAMES = {0: "STRING", 1: "BYTES", 2: "INTEGER", 3: "DOUBLE", 4: "BOOL"}


def _raw(s: str | None) -> bytes:
    return b"" if s is None else s.encode("utf-8", "surrogateescape")


# -- Go number formatting -------------------------------------------------------------------------

def _shortest(v: float) -> tuple[str, str, int]:
    """(sign, digits, decimal exponent of the first digit) of the shortest round-trip repr."""
    d = Decimal(repr(v)).normalize()
    sign, digits, exp = d.as_tuple()
    text = "".join(map(str, digits))
    return ("-" if sign else ""), text, int(exp) + len(text) - 1


def _positional(v: float) -> str:
    return f"{Decimal(repr(v)).normalize():f}"


def _exponent(sign: str, digits: str, e10: int, min_digits: int) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e{'+' if e10 >= 0 else '-'}{abs(e10):0{min_digits}d}"


def go_float_v(v: float) -> str:
    """Go's ``%v`` for a float64 (what protobuf text format prints): ``%g`` with the shortest digits,
    so exponent form when the decimal exponent is < -4 or >= 6 (``1e+06``, ``1e-05``, ``99.9``)."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, e10 = _shortest(v)
    if e10 < -4 or e10 >= 6:
        return _exponent(sign, digits, e10, 2)
    return _positional(v)


def go_json_float(v: float) -> str:
    """Go encoding/json's float64: positional unless |v| < 1e-6 or >= 1e21 (then ``1e+21``, ``1e-7``)."""
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    a = abs(v)
    if a < 1e-6 or a >= 1e21:
        sign, digits, e10 = _shortest(v)
        return _exponent(sign, digits, e10, 1 if e10 < 0 else 2)
    return _positional(v)


# -- txt ------------------------------------------------------------------------------------------

def _text_escape(data: bytes) -> bytes:
    """golang/protobuf text-format string escaping (byte-wise; octal for anything unprintable)."""
    out = bytearray(b'"')
    for c in data:
        if c == 0x0A:
            out += b"\\n"
        elif c == 0x0D:
            out += b"\\r"
        elif c == 0x09:
            out += b"\\t"
        elif c == 0x22:
            out += b'\\"'
        elif c == 0x5C:
            out += b"\\\\"
        elif 0x20 <= c < 0x7F:
            out.append(c)
        else:
            out += b"\\%03o" % c
    out += b'"'
    return bytes(out)


def field_compact_text(f: Field) -> bytes:
    """One Field in gogo-protobuf compact text form, with its trailing space."""
    parts = [b"name:" + _text_escape(_raw(f.name)),
             b"value_type:" + _VT_NAMES.get(int(f.value_type), str(int(f.value_type))).encode(),
             b"representation:" + _text_escape(_raw(f.representation or ""))]
    vt = int(f.value_type)
    for v in f.values:
        if vt == ValueType.STRING:
            parts.append(b"value_string:" + _text_escape(_raw(v if isinstance(v, str) else str(v))))
        elif vt == ValueType.BYTES:
            parts.append(b"value_bytes:" + _text_escape(v if isinstance(v, bytes) else _raw(str(v))))
        elif vt == ValueType.INTEGER:
            parts.append(b"value_integer:" + str(int(v)).encode())
        elif vt == ValueType.DOUBLE:
            parts.append(b"value_double:" + go_float_v(float(v)).encode())
        elif vt == ValueType.BOOL:
            parts.append(b"value_bool:" + (b"true" if v else b"false"))
    return b" ".join(parts) + b" "


def go_time_string(ns: int) -> str:
    """Go's ``time.Time.String()`` in the local zone: ``2006-01-02 15:04:05.999999999 -0700 MST``,
    trailing zeros of the fraction trimmed (and no fraction at all when it is zero)."""
    seconds, frac = divmod(int(ns), 1_000_000_000)
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    base = datetime(1970, 1, 1) + timedelta(seconds=seconds + offset)
    text = base.strftime("%Y-%m-%d %H:%M:%S")
    if base.year < 1000:
        text = f"{base.year:04d}" + text[text.index("-"):]
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    sign = "+" if offset >= 0 else "-"
    hh, mm = divmod(abs(offset) // 60, 60)
    zone = local.tm_zone or ""
    if not zone or zone[0] in "+-":
        zone = f"{sign}{hh:02d}{mm:02d}" if mm else f"{sign}{hh:02d}"
    return f"{text} {sign}{hh:02d}{mm:02d} {zone}"


def message_txt(msg: Message) -> bytes:
    """heka-cat's ``txt`` block for one message, blank line included."""
    fields = b" ".join(field_compact_text(f) for f in msg.fields)
    lines = [
        b"Timestamp: " + go_time_string(msg.timestamp or 0).encode(),
        b"Type: " + _raw(msg.type),
        b"Hostname: " + _raw(msg.hostname),
        b"Pid: " + str(msg.pid or 0).encode(),
        b"UUID: " + msg.uuid_string.encode(),
        b"Logger: " + _raw(msg.logger),
        b"Payload: " + _raw(msg.payload),
        b"EnvVersion: " + _raw(msg.env_version),
        b"Severity: " + str(msg.severity_or_default).encode(),
        b"Fields: [" + fields + b"]",
    ]
    return b"\n".join(lines) + b"\n\n"


# -- json -----------------------------------------------------------------------------------------

_JSON_SAFE = {c for c in range(0x20, 0x7F)} - {ord('"'), ord("\\"), ord("<"), ord(">"), ord("&")}


def go_json_string(s: str | bytes) -> str:
    """A JSON string as Go's encoding/json writes it (HTML-escaped, invalid UTF-8 -> \\ufffd per byte)."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in s:
        o = ord(ch)
        if o < 0x80:
            if o in _JSON_SAFE:
                out.append(ch)
            elif ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\r":
                out.append("\\r")
            elif ch == "\t":
                out.append("\\t")
            else:
                out.append(f"\\u00{o:02x}")
        elif 0xDC80 <= o <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
            out.append("\\ufffd")
        elif o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _b64(data: bytes) -> str:
    return '"' + base64.b64encode(data).decode("ascii") + '"'


def _field_json(f: Field) -> str:
    parts = [f'"name":{go_json_string(f.name)}', f'"value_type":{int(f.value_type)}',
             f'"representation":{go_json_string(f.representation or "")}']
    vt = int(f.value_type)
    vals: list[Any] = f.values
    if vals:
        if vt == ValueType.STRING:
            parts.append('"value_string":[' + ",".join(go_json_string(str(v)) for v in vals) + "]")
        elif vt == ValueType.BYTES:
            parts.append('"value_bytes":[' + ",".join(_b64(bytes(v)) for v in vals) + "]")
        elif vt == ValueType.INTEGER:
            parts.append('"value_integer":[' + ",".join(str(int(v)) for v in vals) + "]")
        elif vt == ValueType.DOUBLE:
            parts.append('"value_double":[' + ",".join(go_json_float(float(v)) for v in vals) + "]")
        elif vt == ValueType.BOOL:
            parts.append('"value_bool":[' + ",".join("true" if v else "false" for v in vals) + "]")
    return "{" + ",".join(parts) + "}"


def message_json(msg: Message) -> bytes:
    """heka-cat's ``json`` line (newline included). A NaN/Inf double makes Go's marshal fail: then the
    line is empty, as heka-cat printed it."""
    for f in msg.fields:
        if int(f.value_type) == ValueType.DOUBLE and any(not math.isfinite(float(v)) for v in f.values):
            return b"\n"
    parts = []
    if msg.uuid is not None:
        parts.append('"uuid":' + _b64(msg.uuid))
    if msg.timestamp is not None:
        parts.append(f'"timestamp":{int(msg.timestamp)}')
    for key, value in (("type", msg.type), ("logger", msg.logger)):
        if value is not None:
            parts.append(f'"{key}":{go_json_string(value)}')
    if msg.severity is not None:
        parts.append(f'"severity":{int(msg.severity)}')
    for key, value in (("payload", msg.payload), ("env_version", msg.env_version)):
        if value is not None:
            parts.append(f'"{key}":{go_json_string(value)}')
    if msg.pid is not None:
        parts.append(f'"pid":{int(msg.pid)}')
    if msg.hostname is not None:
        parts.append(f'"hostname":{go_json_string(msg.hostname)}')
    if msg.fields:
        parts.append('"fields":[' + ",".join(_field_json(f) for f in msg.fields) + "]")
    return ("{" + ",".join(parts) + "}\n").encode("utf-8")


__all__ = ["field_compact_text", "go_float_v", "go_json_float", "go_json_string", "go_time_string",
           "message_json", "message_txt"]
