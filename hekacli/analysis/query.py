"""Group-by aggregations, time buckets, `--where` filtering and SQL over the analysis frame."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from hekacli.errors import HekaError, UsageError

from .columns import path_only, prepare, with_datetime

UA_DERIVED = ("user_agent_browser", "user_agent_version", "user_agent_os")
DURATION_RE = re.compile(r"^\d+(ns|us|ms|s|m|h|d|w)$")
PERCENTILE_OPS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def check_columns(
    lf: pl.LazyFrame, names: Sequence[str], what: str = "field", known: Sequence[str] | None = None
) -> None:
    """UsageError naming the first unknown column and the ones available (`known`, if given: the
    inputs' fields before the loader dropped those this query does not use)."""
    available = lf.collect_schema().names()
    for name in names:
        if name not in available:
            shown = ", ".join(sorted(known if known is not None else available))
            raise UsageError(f"unknown {what} {name!r} (available: {shown})")


def add_derived(lf: pl.LazyFrame, wanted: Sequence[str] | str) -> pl.LazyFrame:
    """Add user_agent_browser/version/os when a query mentions them and they are not there yet."""
    text = wanted if isinstance(wanted, str) else " ".join(wanted)
    schema = lf.collect_schema()
    if (
        any(name in text for name in UA_DERIVED)
        and "http_user_agent" in schema
        and not all(n in schema for n in UA_DERIVED)
    ):
        # Imported here: the classifier pulls in the decoders, which most queries never need.
        from .useragent import add_user_agent_columns

        lf = add_user_agent_columns(lf)
    return lf


def apply_where(lf: pl.LazyFrame, expr: str | None) -> pl.LazyFrame:
    """Keep the records a message_matcher expression accepts.

    Vectorised when the matcher offers a polars expression; otherwise each row is checked with
    `match_record` (correct, slower). `lf` must still carry Timestamp as Int64 nanoseconds.
    """
    if not expr:
        return lf
    from hekacli.matcher import compile_matcher

    matcher = compile_matcher(expr)
    polars_expr = None
    try:
        polars_expr = matcher.polars_expr()
    except (NotImplementedError, AttributeError):
        polars_expr = None
    if polars_expr is not None:
        try:
            # Validate against the schema now, so a type clash falls back instead of failing later.
            lf.filter(polars_expr).collect_schema()
            return lf.filter(polars_expr)
        except pl.exceptions.PolarsError:
            pass
    df = lf.collect()
    mask = [
        bool(matcher.match_record({k: v for k, v in row.items() if v is not None}))
        for row in df.iter_rows(named=True)
    ]
    return df.filter(pl.Series(mask, dtype=pl.Boolean)).lazy()


def where_columns(expr: str | None) -> set[str] | None:
    """Fields a `--where` expression reads (empty for none; None when unknown, i.e. keep everything)."""
    if not expr:
        return set()
    from hekacli.matcher import compile_matcher

    try:
        polars_expr = compile_matcher(expr).polars_expr()
    except (NotImplementedError, AttributeError):
        return None
    if polars_expr is None:
        return None
    return set(polars_expr.meta.root_names())


@dataclass
class AggSpec:
    """What `heka agg` computes."""

    by: list[str] = field(default_factory=list)
    count: bool = False
    sums: list[str] = field(default_factory=list)
    avgs: list[str] = field(default_factory=list)
    mins: list[str] = field(default_factory=list)
    maxs: list[str] = field(default_factory=list)
    percentiles: list[tuple[str, str]] = field(default_factory=list)  # (op like "p95", column)
    distinct: list[str] = field(default_factory=list)
    every: str | None = None
    top: int | None = None
    sort: str | None = None

    def columns(self) -> list[str]:
        """Every field the aggregation reads."""
        return [*self.by, *self.metric_columns(), *(["Timestamp"] if self.every else [])]

    def metric_columns(self) -> list[str]:
        return [
            *self.sums,
            *self.avgs,
            *self.mins,
            *self.maxs,
            *(c for _, c in self.percentiles),
            *self.distinct,
        ]


def _metric_exprs(spec: AggSpec) -> list[pl.Expr]:
    exprs: list[pl.Expr] = []
    if spec.count or not (
        spec.sums or spec.avgs or spec.mins or spec.maxs or spec.percentiles or spec.distinct
    ):
        exprs.append(pl.len().alias("count"))
    exprs += [pl.col(c).sum().alias(f"sum_{c}") for c in spec.sums]
    exprs += [pl.col(c).mean().alias(f"avg_{c}") for c in spec.avgs]
    exprs += [pl.col(c).min().alias(f"min_{c}") for c in spec.mins]
    exprs += [pl.col(c).max().alias(f"max_{c}") for c in spec.maxs]
    exprs += [
        pl.col(c).quantile(PERCENTILE_OPS[op], interpolation="linear").alias(f"{op}_{c}")
        for op, c in spec.percentiles
    ]
    exprs += [pl.col(c).n_unique().alias(f"distinct_{c}") for c in spec.distinct]
    return exprs


def _parse_sort(sort: str, columns: list[str]) -> tuple[str, bool]:
    descending = False
    name = sort
    if name.startswith("-"):
        name, descending = name[1:], True
    elif name.endswith(":desc"):
        name, descending = name[:-5], True
    elif name.endswith(":asc"):
        name = name[:-4]
    if name not in columns:
        raise UsageError(f"--sort: no output column {name!r} (columns: {', '.join(columns)})")
    return name, descending


# Metrics whose per-request-URI results combine into per-path results: how to combine them.
_COMBINE = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}


def _paths_later(spec: AggSpec, schema: pl.Schema) -> bool:
    """Whether grouping by request URI and cutting the query off each distinct one afterwards gives
    exactly the per-path answer (integer sums, counts, minimums and maximums do; means, percentiles,
    distinct counts and float sums would not, or not to the last bit)."""
    return (
        "uri" in spec.by
        and "request_uri" in schema
        and not (spec.avgs or spec.percentiles or spec.distinct)
        and all(schema[c].is_integer() for c in spec.sums)
    )


def _group_paths_later(lf: pl.LazyFrame, keys: list[str | pl.Expr], metrics: list[pl.Expr]) -> pl.LazyFrame:
    """`lf.group_by(keys).agg(metrics)`, grouping by the request URI in place of the path first and
    cutting the query string off once per distinct URI (not once per record)."""
    fine = lf.group_by(
        [
            pl.col("request_uri").cast(pl.String).alias("uri") if isinstance(k, str) and k == "uri" else k
            for k in keys
        ]
    ).agg(metrics)
    schema = fine.collect_schema()
    names = [k if isinstance(k, str) else k.meta.output_name() for k in keys]
    combined = [
        getattr(pl.col(m), _COMBINE[m.split("_", 1)[0]])().cast(schema[m])
        for m in schema.names()
        if m not in names
    ]
    return fine.group_by([path_only(pl.col("uri")) if k == "uri" else k for k in names]).agg(combined)


def aggregate(
    lf: pl.LazyFrame, spec: AggSpec, known: Sequence[str] | None = None, *, uri_derived: bool = False
) -> pl.DataFrame:
    """Run an aggregation over the (prepared) frame and return the result, sorted.

    `known`: every field of the inputs, for the message about an unknown field. `uri_derived`: ``uri``
    was made by `prepare` from the request URI (see `columns.uri_is_derived`), which lets a group-by on it cut
    the query string off the distinct URIs only."""
    wanted = [*spec.by, *spec.metric_columns()]
    lf = add_derived(lf, wanted)
    check_columns(lf, wanted, known=known)
    numeric_needed = [*spec.sums, *spec.avgs, *(c for _, c in spec.percentiles)]
    schema = lf.collect_schema()
    for c in numeric_needed:
        if not schema[c].is_numeric():
            raise UsageError(f"field {c!r} is not numeric ({schema[c]}); it cannot be summed or averaged")
    keys: list[str | pl.Expr] = list(spec.by)
    if spec.every:
        if not DURATION_RE.match(spec.every):
            raise UsageError(f"--every {spec.every!r}: use a number and a unit, e.g. 30s, 1m, 5m, 1h, 1d, 1w")
        if "Timestamp" not in schema:
            raise UsageError("--every needs a Timestamp, and these records have none")
        keys.insert(0, pl.col("Timestamp").dt.truncate(spec.every).alias("Timestamp"))
    metrics = _metric_exprs(spec)
    try:
        if keys and uri_derived and _paths_later(spec, schema):
            q = _group_paths_later(lf, keys, metrics)
        elif keys:
            q = lf.group_by(keys).agg(metrics)
        else:
            q = lf.select(metrics)
        df = q.collect()
    except pl.exceptions.PolarsError as exc:
        raise HekaError(f"aggregation failed: {exc}") from exc
    if spec.every and not spec.by and df.height:
        # Every bucket of the span, including empty ones (count 0), so a time series has no gaps.
        full = pl.DataFrame(
            {
                "Timestamp": pl.datetime_range(
                    df["Timestamp"].min(), df["Timestamp"].max(), spec.every, eager=True, time_zone="UTC"
                )
            }
        )
        full = full.with_columns(pl.col("Timestamp").cast(df.schema["Timestamp"]))
        df = full.join(df, on="Timestamp", how="left")
        zero_cols = [c for c in df.columns if c == "count" or c.startswith(("sum_", "distinct_"))]
        df = df.with_columns([pl.col(c).fill_null(0) for c in zero_cols])
    metric_names = [c for c in df.columns if c not in spec.by and c != "Timestamp"]
    if spec.sort:
        name, desc = _parse_sort(spec.sort, df.columns)
        df = df.sort(name, descending=desc, nulls_last=True)
    elif spec.every:
        df = df.sort(["Timestamp", *spec.by])
    elif keys and metric_names:
        df = df.sort([metric_names[0], *spec.by], descending=[True] + [False] * len(spec.by), nulls_last=True)
    if spec.top is not None:
        df = df.head(spec.top)
    return df


def run_sql(lf: pl.LazyFrame, query: str) -> pl.DataFrame:
    """Polars SQL with the records as table ``logs``."""
    lf = add_derived(lf, query)
    ctx = pl.SQLContext(frames={"logs": lf}, eager=False)
    try:
        return ctx.execute(query).collect()
    except (pl.exceptions.PolarsError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"SQL: {message}") from exc


def analysis_frame(lf: pl.LazyFrame, where: str | None = None) -> pl.LazyFrame:
    """prepare + --where + datetime Timestamp: what agg and sql query."""
    lf = prepare(lf, datetime=False)
    lf = apply_where(lf, where)
    return with_datetime(lf)
