"""Fields computed from other fields after decoding: the parts of ``$request``, user-agent classes."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import polars as pl

from hekacli.message import ValueType

from . import grammar as g
from .core import Derived
from .useragent import classify_series, normalize_user_agent

# "GET /path?q HTTP/1.1" -> method, uri (may contain spaces), protocol (optional, HTTP/0.9 has none).
_TOKEN_FULL = re.compile(f"{g.TOKEN}\\Z")
_PROTOCOL_FULL = re.compile(r"HTTP/[0-9]+\.[0-9]+\Z")
_METHOD_SP = f"^{g.TOKEN} "
_PROTO_END = r" (HTTP/[0-9]+\.[0-9]+)$"
REQUEST_PARTS = ("request_method", "request_uri", "server_protocol")


def split_request(req: str) -> tuple[str, str, str | None] | None:
    """(method, uri, protocol) of a request line: the method (an HTTP token) up to the first space,
    the protocol after the last space when it is HTTP/x.y, the URI in between (may hold spaces)."""
    method, sep, rest = req.partition(" ")
    if not sep or not _TOKEN_FULL.match(method):
        return None
    head, sep, last = rest.rpartition(" ")
    if sep and _PROTOCOL_FULL.match(last):
        return method, head, last
    return method, rest, None


def request_split(present: Collection[str]) -> Derived | None:
    """``request`` -> request_method, request_uri, server_protocol (those not already in the format)."""
    wanted = tuple(n for n in REQUEST_PARTS if n not in present)
    if not wanted:
        return None
    index = {n: i for i, n in enumerate(REQUEST_PARTS)}

    def py(rec: dict[str, Any]) -> None:
        req = rec.get("request")
        if req is None:
            return
        parts = split_request(req)
        if parts is None:
            return
        for n in wanted:
            v = parts[index[n]]
            if v is not None:
                rec[n] = v

    def frame(df: pl.DataFrame) -> pl.DataFrame:
        if "request" not in df.collect_schema().names():
            return df.with_columns([pl.lit(None, dtype=pl.String).alias(n) for n in wanted])
        # string operations equal to `split_request` (tested): method up to the first space, protocol
        # after the last space when it looks like HTTP/x.y, the URI in between
        req = pl.col("request")
        parts = req.str.splitn(" ", 2)
        method, rest = parts.struct.field("field_0"), parts.struct.field("field_1")
        ok = req.str.contains(_METHOD_SP)
        proto = rest.str.extract(_PROTO_END, 1)
        uri = (
            pl.when(proto.is_null())
            .then(rest)
            .otherwise(rest.str.slice(0, rest.str.len_chars() - proto.str.len_chars() - 1))
        )
        exprs = {"request_method": method, "request_uri": uri, "server_protocol": proto}
        return df.with_columns([pl.when(ok).then(exprs[n]).alias(n) for n in wanted])

    def sets(indent: str, **values: str) -> list[str]:
        return [f"{indent}r[{n!r}] = {values[n]}" for n in wanted if n in values]

    # `py` written out for the generated per-line function (saves two calls per line)
    code = [
        "    s = r.get('request')",
        "    if s is not None:",
        "        m_, sp_, rest_ = s.partition(' ')",
        "        if sp_ and (m_ in rq_methods or rq_token(m_)):",
        "            h_, sp2_, last_ = rest_.rpartition(' ')",
        "            if sp2_ and (last_ in rq_protocols or rq_proto(last_)):",
        *sets("                ", request_method="m_", request_uri="h_", server_protocol="last_"),
        "            else:",
        *sets("                ", request_method="m_", request_uri="rest_"),
        "                pass",
    ]
    env = {
        "rq_token": _TOKEN_FULL.match,
        "rq_proto": _PROTOCOL_FULL.match,
        # common values skip the regex check (they pass it)
        "rq_methods": frozenset(("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH")),
        "rq_protocols": frozenset(("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/3.0")),
    }
    return Derived(
        wanted,
        tuple(pl.String() for _ in wanted),
        tuple(ValueType.STRING for _ in wanted),
        py,
        frame,
        inline=(code, env),
        native="request",
        source="request",
        parts=tuple(index[n] for n in wanted),
    )


def user_agent_derived(source: str, mode: bool | str = True, prefix: str = "user_agent") -> Derived:
    """``<prefix>_browser/_version/_os`` from the `source` field (spec §3).

    `mode`: True/"keep" adds the fields and keeps the user agent; "drop" removes the user agent (Heka's
    ``user_agent_transform``); "conditional" keeps it only when no browser was recognised.
    """
    mode = "keep" if mode is True else str(mode)
    if mode not in ("keep", "drop", "conditional"):
        raise ValueError(f"unknown user-agent mode {mode!r} (keep, drop, conditional)")
    names = (f"{prefix}_browser", f"{prefix}_version", f"{prefix}_os")

    def py(rec: dict[str, Any]) -> None:
        ua = rec.get(source)
        browser, version, os_name = normalize_user_agent(ua)
        for n, v in zip(names, (browser, version, os_name), strict=True):
            if v is not None:
                rec[n] = v
        if mode == "drop" or (mode == "conditional" and browser is not None):
            rec.pop(source, None)

    def frame(df: pl.DataFrame) -> pl.DataFrame:
        if source not in df.collect_schema().names():
            return df.with_columns(
                [
                    pl.lit(None, dtype=dt).alias(n)
                    for n, dt in zip(names, (pl.String, pl.Int64, pl.String), strict=True)
                ]
            )
        classes = classify_series(df[source], prefix)
        df = df.with_columns(classes.get_columns())
        if mode == "drop":
            df = df.drop(source)
        elif mode == "conditional":
            df = df.with_columns(pl.when(pl.col(names[0]).is_null()).then(pl.col(source)).alias(source))
        return df

    return Derived(
        names,
        (pl.String(), pl.Int64(), pl.String()),
        (ValueType.STRING, ValueType.DOUBLE, ValueType.STRING),
        py,
        frame,
        lazy=False,  # classifies the distinct user agents in Python
    )
