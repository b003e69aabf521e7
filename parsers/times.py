"""Date parsing to integer nanoseconds since the epoch (UTC), per line and per polars column.

Heka computes ``(utc_seconds + fraction + offset) * 1e9`` in float64 and truncates; we compute the
same instant exactly in integers (``1391794831.755`` gives ``1391794831755000000``, Heka
``...755000064``). Dates without a zone are taken as UTC, as Heka's sandbox does (``TZ=UTC``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import polars as pl

from . import grammar as g

NS = 1_000_000_000
_CACHE_MAX = 200_000


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).

    Out-of-range days (Feb 30) roll over like C's mktime, which Heka relied on.
    """
    y -= m <= 2
    era = y // 400  # floor division: Hinnant's C version needs y - 399 for negative years
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_to_ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac_ns: int = 0, offset_s: int = 0) -> int:
    """Wall clock plus UTC offset (seconds east of UTC) -> ns since the epoch."""
    secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_s
    return secs * NS + frac_ns


def frac_to_ns(digits: str) -> int:
    """'755' -> 755000000 (digits after the decimal point, truncated at nanoseconds)."""
    return int((digits + "000000000")[:9]) if digits else 0


def _cached(fn: Callable[[str], int]) -> Callable[[str], int]:
    """Timestamps repeat a lot in logs: memoise per distinct text (bounded)."""
    cache: dict[str, int] = {}

    def wrapper(text: str) -> int:
        try:
            return cache[text]
        except KeyError:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            value = cache[text] = fn(text)
            return value

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


_CLF_DAYS: dict[str, int] = {}


def clf_to_ns(s: str) -> int:
    """``10/Feb/2014:08:46:41 -0800`` -> ns.

    Lines of one day share the date and offset: their midnight (in seconds, offset applied) is
    cached, so a line costs three small int() calls.
    """
    key = s[:11] + s[20:]
    base = _CLF_DAYS.get(key)
    if base is None:
        off = (int(s[22:24]) * 3600 + int(s[24:26]) * 60) * (-1 if s[21] == "-" else 1)
        base = days_from_civil(int(s[7:11]), g.MONTH_NUM[s[3:6]], int(s[0:2])) * 86400 - off
        if len(_CLF_DAYS) >= _CACHE_MAX:
            _CLF_DAYS.clear()
        _CLF_DAYS[key] = base
    return (base + int(s[12:14]) * 3600 + int(s[15:17]) * 60 + int(s[18:20])) * NS


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)


@_cached
def rfc3339_to_ns(s: str) -> int:
    """``2014-02-10T08:46:41.5-08:00`` or ``...Z`` -> ns."""
    m = _RFC3339.match(s)
    if m is None:
        raise ValueError(f"not an RFC 3339 date: {s!r}")
    y, mo, d, h, mi, se, frac, sign, oh, om = m.groups()
    off = 0 if sign is None else (int(oh) * 3600 + int(om) * 60) * (-1 if sign == "-" else 1)
    return civil_to_ns(int(y), int(mo), int(d), int(h), int(mi), int(se), frac_to_ns(frac or ""), off)


def msec_to_ns(s: str) -> int:
    """``1391794831.755`` -> ns (exact)."""
    sec, _, frac = s.partition(".")
    neg = sec.startswith("-")
    value = abs(int(sec)) * NS + frac_to_ns(frac)
    return -value if neg else value


@_cached
def rfc1123_to_ns(s: str) -> int:
    """``Mon, 28 Sep 1970 06:00:00 GMT`` -> ns."""
    return civil_to_ns(
        int(s[12:16]), g.MONTH_NUM[s[8:11]], int(s[5:7]), int(s[17:19]), int(s[20:22]), int(s[23:25])
    )


def infer_year(month: int, day: int, now: float | None = None) -> int:
    """The year of a year-less syslog date: this year, or last year if that would be > 1 day ahead.

    Heka always used the current year, so a December line read in January landed in the future.
    """
    t = time.gmtime(now if now is not None else time.time())
    year = t.tm_year
    if (month, day) > (t.tm_mon, t.tm_mday + 1) and month - t.tm_mon > 6:
        year -= 1
    return year


@_cached
def rfc3164_to_ns(s: str) -> int:
    """``Feb  9 14:17:01`` -> ns in the inferred year, as UTC."""
    mon, day, hms = s.split()
    month = g.MONTH_NUM[mon]
    h, mi, se = hms.split(":")
    return civil_to_ns(infer_year(month, int(day)), month, int(day), int(h), int(mi), int(se))


@_cached
def mysql_to_ns(s: str) -> int:
    """``20140210164636`` -> ns."""
    return civil_to_ns(int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]), int(s[12:14]))


@_cached
def pgsql_to_ns(s: str) -> int:
    """``2014-02-10 16:46:36`` -> ns."""
    return civil_to_ns(int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19]))


@_cached
def nginx_error_to_ns(s: str) -> int:
    """``2014/03/01 11:29:39`` (local wall clock, taken as UTC like Heka) -> ns."""
    return civil_to_ns(int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19]))


# -- vectorised forms (null where they cannot convert; the caller then falls back per value) -----


# Int64 nanoseconds reach from 1677-09-21 to 2262-04-11; outside, the slow path rejects the line.
_MIN_SEC, _MAX_SEC = -(2**63) // NS + 1, (2**63 - 1) // NS - 1


def check_ns(ns: int) -> int:
    """`ns` if it fits a Heka timestamp (int64), else ValueError."""
    if not -(2**63) <= ns < 2**63:
        raise ValueError("date outside the range of 64-bit nanosecond timestamps (1677-2262)")
    return ns


def _in_range(secs: pl.Expr, value: pl.Expr) -> pl.Expr:
    return pl.when(secs.is_between(_MIN_SEC, _MAX_SEC)).then(value).otherwise(None)


def _days_from_civil_expr(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """`days_from_civil` on integer columns (floor division, as in Python)."""
    y = y - (m <= 2).cast(pl.Int64)
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _num(col: pl.Expr, start: int, length: int) -> pl.Expr:
    return col.str.slice(start, length).cast(pl.Int64, strict=False)


def pl_clf(col: pl.Expr) -> pl.Expr:
    """Vectorised `clf_to_ns` on texts the CLF regex accepted (``dd/Mon/yyyy:HH:MM:SS +hhmm``).

    Only the date goes through a date parser (few distinct dates, and polars caches them); the clock
    and the offset are sliced out. Null (so the value falls back to `clf_to_ns`) where the parser
    refuses the date (e.g. Feb 30), on a leap second, and outside the int64 nanosecond range.
    """
    days = col.str.slice(0, 11).str.strptime(pl.Date, "%d/%b/%Y", strict=False).cast(pl.Int64)
    sec = _num(col, 18, 2)
    sign = pl.when(col.str.slice(21, 1) == "-").then(-1).otherwise(1)
    offset = (_num(col, 22, 2) * 3600 + _num(col, 24, 2) * 60) * sign
    secs = days * 86400 + _num(col, 12, 2) * 3600 + _num(col, 15, 2) * 60 + sec - offset
    return pl.when(sec < 60).then(_in_range(secs, secs * NS))


def pl_rfc3339(col: pl.Expr) -> pl.Expr:
    """Vectorised `rfc3339_to_ns`."""
    frac = col.str.extract(r"^.{19}\.([0-9]+)", 1).fill_null("").str.pad_end(9, "0").str.slice(0, 9)
    zone = col.str.extract_groups(r"([+-])([0-9]{2}):([0-9]{2})$")
    sign = pl.when(zone.struct.field("1") == "-").then(-1).otherwise(1)
    off = (zone.struct.field("2").cast(pl.Int64) * 3600 + zone.struct.field("3").cast(pl.Int64) * 60) * sign
    off = pl.when(col.str.ends_with("Z")).then(0).otherwise(off)
    days = _days_from_civil_expr(_num(col, 0, 4), _num(col, 5, 2), _num(col, 8, 2))
    secs = days * 86400 + _num(col, 11, 2) * 3600 + _num(col, 14, 2) * 60 + _num(col, 17, 2) - off
    return _in_range(secs, secs * NS + frac.cast(pl.Int64, strict=False))


def pl_msec(col: pl.Expr) -> pl.Expr:
    """Vectorised `msec_to_ns` for unsigned ``digits.digits`` (signed values fall back)."""
    parts = col.str.split_exact(".", 1)
    sec = parts.struct.field("field_0").cast(pl.Int64, strict=False)
    frac = parts.struct.field("field_1").str.pad_end(9, "0").str.slice(0, 9).cast(pl.Int64, strict=False)
    return (
        pl.when(col.str.starts_with("-") | (col.str.len_chars() > 30))
        .then(None)
        .otherwise(_in_range(sec, sec * NS + frac))
    )
