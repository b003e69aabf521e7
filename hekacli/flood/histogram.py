"""An HDR-style (log-linear) histogram of non-negative integers, for latency percentiles.

Values below 256 get one bucket each; above that, every power-of-two range is split into 128
equal sub-buckets, so any recorded value is known to within 1/128 (< 0.8 %) of itself, whatever
its magnitude (nanoseconds to hours), in a fixed ~7.4k-slot table. Percentiles report the upper
edge of the bucket holding the rank (as HdrHistogram does: never under-reports), and `max` is exact.
"""

from __future__ import annotations

from typing import Any

_LINEAR = 256  # values 0..255 are exact
_SUB_BITS = 7  # 128 sub-buckets per power of two above that
_SUB = 1 << _SUB_BITS
_SLOTS = _LINEAR + (64 - 8) * _SUB


def bucket_index(value: int) -> int:
    """The slot a value falls in."""
    if value < _LINEAR:
        return value if value > 0 else 0
    shift = value.bit_length() - (_SUB_BITS + 1)
    return _LINEAR + (shift - 1) * _SUB + ((value >> shift) - _SUB)


def bucket_upper(index: int) -> int:
    """The largest value that falls in slot `index`."""
    if index < _LINEAR:
        return index
    shift, sub = divmod(index - _LINEAR, _SUB)
    shift += 1
    return ((sub + _SUB + 1) << shift) - 1


class Histogram:
    """Counts of values in log-linear buckets; mergeable; percentiles to < 1 % relative error."""

    __slots__ = ("counts", "count", "total", "min", "max")

    def __init__(self) -> None:
        self.counts = [0] * _SLOTS
        self.count = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None

    def record(self, value: int) -> None:
        """Add one value (negative values, e.g. from clock skew, are recorded as 0)."""
        if value < _LINEAR:  # bucket_index inlined: this runs once per verified message
            if value < 0:
                value = 0
            self.counts[value] += 1
        else:
            shift = value.bit_length() - (_SUB_BITS + 1)
            self.counts[_LINEAR + (shift - 1) * _SUB + ((value >> shift) - _SUB)] += 1
        self.count += 1
        self.total += value
        if self.max is None or value > self.max:
            self.max = value
        if self.min is None or value < self.min:
            self.min = value

    def merge(self, other: Histogram) -> None:
        """Add every count of `other` into this histogram."""
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c
        self.count += other.count
        self.total += other.total
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min

    def percentile(self, pct: float) -> int | None:
        """The value at percentile `pct` (0..100): the upper edge of its bucket, capped at max."""
        if not self.count:
            return None
        rank = max(1, -(-self.count * pct // 100))  # ceil, at least the first value
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    upper = bucket_upper(i)
                    return min(upper, self.max) if self.max is not None else upper
        return self.max

    def summary(self, percentiles: tuple[float, ...] = (50, 90, 99, 99.9)) -> dict[str, Any]:
        """`{"count", "min", "mean", "p50", ..., "max"}` (values as recorded, e.g. ns)."""
        out: dict[str, Any] = {"count": self.count, "min": self.min,
                               "mean": round(self.total / self.count) if self.count else None}
        for p in percentiles:
            key = f"p{p:g}"
            out[key] = self.percentile(p)
        out["max"] = self.max
        return out
