"""Regular-expression building blocks shared by the format compilers.

Every fragment here is written in the common subset of Python's ``re`` and Rust's ``regex`` crate
(which polars uses), so one compiled format gives the same captures on the streaming path (Python)
and the bulk path (polars). That rules out look-around, atomic groups and possessive quantifiers;
classes are spelled out (``[0-9]``, never ``\\d``) because the two engines disagree about Unicode.
"""

from __future__ import annotations

import re

# The six whitespace characters Heka's grammars accept (space, \t, \n, \v, \f, \r).
WS_CHARS = " \t\n\x0b\x0c\r"
WS_CLASS = r"[ \t\n\x0b\x0c\r]"
NOT_WS_CLASS = r"[^ \t\n\x0b\x0c\r]"

# Characters that need a backslash in a regex outside a class, in both engines. `<` and `>` must
# NOT be escaped: `\<` is a word boundary in Rust's regex.
_META = set(r"\.+*?()|[]{}^$")
# ... and inside a character class.
_CLASS_META = set("\\]^-[&~")


def _char(c: str, meta: set[str]) -> str:
    if c in meta:
        return "\\" + c
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\x{ord(c):02x}"
    return c


def escape(text: str) -> str:
    """`text` as a regex matching itself literally (portable between Python and Rust)."""
    return "".join(_char(c, _META) for c in text)


def not_class(chars: str) -> str:
    """A class matching any character except those in `chars`."""
    return "[^" + "".join(_char(c, _CLASS_META) for c in chars) + "]"


def quoted_until(quote: str) -> str:
    """Text up to (not including) `quote`; a backslash escapes the next character (kept verbatim)."""
    q = _char(quote, _CLASS_META)
    return rf"[^{q}\\]*(?:\\.[^{q}\\]*)*"


# -- numbers ------------------------------------------------------------------------------------
INT = r"-?[0-9]+"
UINT = r"[0-9]+"
DECIMAL = r"[0-9]+\.[0-9]+"

# -- addresses (lua_sandbox ip_address.lua / common_log_format.lua host grammar) ----------------
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{IPV4}|{_H}:{_H})"
IPV6 = (
    "(?:"
    rf"(?:{_H}:){{6}}{_LS32}"
    rf"|::(?:{_H}:){{5}}{_LS32}"
    rf"|(?:{_H})?::(?:{_H}:){{4}}{_LS32}"
    rf"|(?:(?:{_H}:){{0,1}}{_H})?::(?:{_H}:){{3}}{_LS32}"
    rf"|(?:(?:{_H}:){{0,2}}{_H})?::(?:{_H}:){{2}}{_LS32}"
    rf"|(?:(?:{_H}:){{0,3}}{_H})?::{_H}:{_LS32}"
    rf"|(?:(?:{_H}:){{0,4}}{_H})?::{_LS32}"
    rf"|(?:(?:{_H}:){{0,5}}{_H})?::{_H}"
    rf"|(?:(?:{_H}:){{0,6}}{_H})?::"
    ")"
)
HOSTNAME = r"(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+"
HOST = f"(?:{IPV4}|{IPV6}|{HOSTNAME})"
# Every character any HOST alternative can contain: a maximal run of these, validated afterwards,
# captures exactly what HOST would when the next character cannot be part of a host (see core.py).
HOST_RUN = r"[A-Za-z0-9._~!$&'()*+,;=%:-]"

_IPV4_FULL = re.compile(f"(?:{IPV4})\\Z")
_IPV6_FULL = re.compile(f"(?:{IPV6})\\Z")
_HOSTNAME_FULL = re.compile(f"(?:{HOSTNAME})\\Z")


def valid_host_run(value: str) -> bool:
    """Whether a run of HOST_RUN characters is a whole IPv4, IPv6 or hostname (fullmatch of HOST)."""
    if ":" not in value and "%" not in value:
        return True  # every other HOST_RUN character is a hostname character
    return bool(_IPV4_FULL.match(value) or _IPV6_FULL.match(value) or _HOSTNAME_FULL.match(value))


def host_representation(value: str) -> str:
    """Heka's representation of a host capture: ``ipv4``, ``ipv6`` or ``hostname``."""
    if _IPV4_FULL.match(value):
        return "ipv4"
    if _IPV6_FULL.match(value):
        return "ipv6"
    return "hostname"


# -- dates ----------------------------------------------------------------------------------------
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NUM = {m: i + 1 for i, m in enumerate(MONTHS)}
MONTH = "(?:" + "|".join(MONTHS) + ")"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WDAY = "(?:" + "|".join(DAYS) + ")"
_DD = r"(?:0[1-9]|[12][0-9]|3[01])"
_HH = r"(?:[01][0-9]|2[0-3])"
_MM = r"[0-5][0-9]"
_SS = r"(?:[0-5][0-9]|60)"
# 10/Feb/2014:08:46:41 -0800
CLF_DATE = rf"{_DD}/{MONTH}/[0-9]{{4}}:{_HH}:{_MM}:{_SS} [+-]{_HH}{_MM}"
# 2014-02-10T08:46:41.123-08:00 (upper-case T and Z only; the offset needs its colon)
RFC3339_DATE = rf"[0-9]{{4}}-(?:0[1-9]|1[0-2])-{_DD}T{_HH}:{_MM}:{_SS}(?:\.[0-9]+)?(?:Z|[+-]{_HH}:{_MM})"
# Feb  9 14:17:01
RFC3164_DATE = rf"{MONTH} +[0-9]{{1,2}} +{_HH}:{_MM}:{_SS}"
# Mon, 28 Sep 1970 06:00:00 GMT
RFC1123_DATE = rf"{WDAY}, [0-9]{{2}} {MONTH} [0-9]{{4}} {_HH}:{_MM}:{_SS} GMT"
MYSQL_DATE = r"[0-9]{4}(?:0[1-9]|1[0-2])" + _DD + _HH + _MM + _SS
PGSQL_DATE = rf"[0-9]{{4}}-(?:0[1-9]|1[0-2])-{_DD} {_HH}:{_MM}:{_SS}"
NGINX_ERROR_DATE = r"[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"

# HTTP method token (RFC 7230 tchar), as lua_sandbox_extensions accepts it.
TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
