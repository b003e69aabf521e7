"""Undo the escaping servers apply to logged values (on by default; ``--raw-values`` keeps them)."""

from __future__ import annotations

import json
import re

_NGINX_HEX = re.compile(rb"\\x([0-9A-Fa-f]{2})")
_APACHE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|[\"\\bnrtv])")
_APACHE_SIMPLE = {b'"': b'"', b"\\": b"\\", b"b": b"\b", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _finish(data: bytes) -> str:
    # Bytes that are not UTF-8 stay visible as \xHH, exactly as the server logged them.
    return data.decode("utf-8", "backslashreplace")


def unescape_nginx(value: str) -> str:
    """nginx ``escape=default``: ``\\xHH`` -> that byte (text decoded as UTF-8)."""
    if "\\x" not in value:
        return value
    data = _NGINX_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8", "surrogatepass"))
    return _finish(data)


def unescape_nginx_json(value: str) -> str:
    """nginx ``escape=json``: JSON string escapes (``\\"``, ``\\\\``, ``\\n``, ``\\u00XX``)."""
    if "\\" not in value:
        return value
    try:
        return json.loads('"' + value + '"')
    except ValueError:
        return value


def unescape_apache(value: str) -> str:
    """Apache mod_log_config: ``\\"``, ``\\\\``, ``\\b \\n \\r \\t \\v`` and ``\\xhh``."""
    if "\\" not in value:
        return value

    def repl(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        return _APACHE_SIMPLE[code]

    return _finish(_APACHE.sub(repl, value.encode("utf-8", "surrogatepass")))


def escape_nginx(value: str) -> str:
    """What nginx writes for `value` with ``escape=default`` (used by tests and the log generator)."""
    out = []
    for b in value.encode("utf-8"):
        if b in (0x22, 0x5C) or b < 0x20 or b >= 0x7F:
            out.append(f"\\x{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


def escape_apache(value: str) -> str:
    """What Apache writes for `value` (ap_escape_logitem)."""
    simple = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = []
    for ch in value:
        if ch in simple:
            out.append(simple[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) > 0x7F:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)
