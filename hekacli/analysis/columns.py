"""Normalise records from any source into the columns the analyzer works with.

Whatever the input (raw log, JSONL with RFC 3339 timestamps, Parquet, Heka messages whose numbers are
doubles), the analysis frame has:

- ``Timestamp`` as ``Datetime(ns, UTC)`` (or Int64 nanoseconds, see `prepare`);
- integer ``status`` and byte counts, float ``request_time``;
- when only nginx's ``$request`` was logged, the parts nginx itself would name: ``request_method``,
  ``request_uri`` (path and query), ``uri`` (path only), ``args`` (query) and ``server_protocol``.

Columns are added lazily, so a query that never touches them never computes them.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

INT_COLUMNS = (
    "status",
    "body_bytes_sent",
    "bytes_sent",
    "request_length",
    "content_length",
    "Severity",
    "Pid",
    "connection",
    "connection_requests",
    "remote_port",
    "server_port",
)
FLOAT_COLUMNS = ("request_time", "upstream_response_time", "upstream_connect_time", "upstream_header_time")
REQUEST_PARTS = ("request_method", "request_uri", "uri", "args", "server_protocol")


def _timestamp_ns_expr(name: str, dtype: pl.DataType) -> pl.Expr | None:
    """`name` as Int64 nanoseconds since the epoch (UTC), whatever it was stored as."""
    col = pl.col(name)
    if dtype == pl.String:
        # RFC 3339 as written by `heka decode` (always UTC "Z"), or with an explicit offset.
        return col.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False).dt.epoch("ns")
    if dtype.is_integer():
        return col.cast(pl.Int64)
    if dtype.is_float():
        return col.cast(pl.Int64)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return col.dt.replace_time_zone("UTC").dt.epoch("ns")
        return col.dt.epoch("ns")
    return None


def with_datetime(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Turn the Int64-nanosecond ``Timestamp`` into ``Datetime(ns, UTC)`` (for SQL, buckets, display)."""
    schema = lf.collect_schema()
    if "Timestamp" in schema and schema["Timestamp"] == pl.Int64:
        return lf.with_columns(pl.from_epoch(pl.col("Timestamp"), time_unit="ns").dt.replace_time_zone("UTC"))
    return lf


def _scalar(name: str, dtype: pl.DataType) -> pl.Expr:
    # A repeated field (list) contributes its first value, as Heka's read_message(name) does.
    col = pl.col(name)
    return col.list.first() if isinstance(dtype, pl.List) else col


def prepare(lf: pl.LazyFrame, *, datetime: bool = True) -> pl.LazyFrame:
    """The analysis view of `lf` (see the module docstring).

    With ``datetime=False`` the Timestamp stays Int64 nanoseconds (the flat-record form a matcher's
    vectorised expression expects); call `with_datetime` afterwards.
    """
    schema = lf.collect_schema()
    names = set(schema.names())
    exprs: list[pl.Expr] = []
    if "Timestamp" in names:
        ts = _timestamp_ns_expr("Timestamp", schema["Timestamp"])
        if ts is not None:
            exprs.append(ts.alias("Timestamp"))
    elif "time" in names:
        ts = _timestamp_ns_expr("time", schema["time"])
        if ts is not None:
            exprs.append(ts.alias("Timestamp"))
    for name in INT_COLUMNS:
        if name in names and schema[name] != pl.Int64:
            exprs.append(
                _scalar(name, schema[name])
                .cast(pl.Float64, strict=False)
                .cast(pl.Int64, strict=False)
                .alias(name)
            )
    for name in FLOAT_COLUMNS:
        if name in names and schema[name] != pl.Float64:
            exprs.append(_scalar(name, schema[name]).cast(pl.Float64, strict=False).alias(name))
    if exprs:
        lf = lf.with_columns(exprs)
    if "request" in names and "request_uri" not in names:
        lf = lf.with_columns(_request_parts(names))
        names |= set(REQUEST_PARTS)
    if "request_uri" in names:
        # nginx's $uri is the path without the query string; $args is the query string.
        # As text: a JSONL field that is null in every record reads as the Null type.
        request_uri = pl.col("request_uri").cast(pl.String)
        parts = [
            path_only(request_uri).alias("uri"),
            request_uri.str.extract(r"\?(.*)$", 1).alias("args"),
        ]
        lf = lf.with_columns([p for p in parts if p.meta.output_name() not in names])
    return with_datetime(lf) if datetime else lf


def uri_is_derived(names: Iterable[str]) -> bool:
    """Whether `prepare` makes ``uri`` from the request URI for inputs with these fields (they have no
    ``uri`` of their own)."""
    names = set(names)
    return "uri" not in names and ("request_uri" in names or "request" in names)


def path_only(request_uri: pl.Expr) -> pl.Expr:
    """nginx's $uri from $request_uri: the path, without the query string."""
    return request_uri.str.replace(r"\?.*$", "")


def _request_parts(existing: set[str]) -> list[pl.Expr]:
    # "GET /a/b?x=1 HTTP/1.1" -> method, request_uri, protocol. A request with no protocol (HTTP/0.9
    # or garbage) keeps what is there; an unparsable request yields nulls, not an error.
    parts = (
        pl.col("request")
        .cast(pl.String)
        .str.extract_groups(r"^(?P<m>\S+)\s+(?P<u>.*?)(?:\s+(?P<p>HTTP/[0-9.]+))?\s*$")
    )
    uri_full = parts.struct.field("u")
    out = {
        "request_method": parts.struct.field("m"),
        "request_uri": uri_full,
        "uri": path_only(uri_full),
        "args": uri_full.str.extract(r"\?(.*)$", 1),
        "server_protocol": parts.struct.field("p"),
    }
    return [expr.alias(name) for name, expr in out.items() if name not in existing]


def timestamp_to_text(df: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns rendered as RFC 3339 UTC text (for JSONL/CSV/table output)."""
    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
            exprs.append(col.dt.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").alias(name))
        elif isinstance(dtype, pl.Date):
            exprs.append(pl.col(name).dt.strftime("%Y-%m-%d").alias(name))
        elif isinstance(dtype, pl.Duration):
            exprs.append(pl.col(name).dt.total_nanoseconds().alias(name))
    return df.with_columns(exprs) if exprs else df
