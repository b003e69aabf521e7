"""The access-log report: GoAccess's panels computed with polars, as plain JSON-ready data.

`build_report(dataset)` returns a dict that the terminal and HTML renderers draw and `--json` prints:

    {"overview": {...}, "panels": [{"id", "title", "description", "columns": [{"key","label","type"}],
                                    "rows": [...], "total": n, ...}, ...], "notes": [...]}

Definitions (as GoAccess, unless noted):
- a *visitor* is a distinct (client address, date, user agent) triple, so one person on three days counts
  three times; per-row "visitors" counts the triples among that row's requests (GoAccess leaves 4xx
  requests out of visitor counts by default; every request counts here);
- *static files* are requests whose path ends in a known static extension (`STATIC_EXTENSIONS`);
- the *requests* panel lists the other paths, without 404s; 404s have their own panel;
- paths are grouped without their query string (`/search?q=a` and `/search?q=b` are one row);
- *valid* requests are decoded lines, *failed* are lines the format rejected.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from .columns import prepare
from .sources import Dataset
from .useragent import classify_distinct

STATIC_EXTENSIONS = frozenset(
    "css js mjs map jpg jpeg png gif webp avif svg ico bmp tif tiff woff woff2 ttf otf eot "
    "pdf txt csv mp3 mp4 m4a ogg ogv webm wav flac avi mov mpeg mpg flv swf "
    "zip gz tgz tar rar 7z bz2 xz exe dmg iso apk doc docx xls xlsx ppt pptx".split()
)
PERCENTILES = (0.5, 0.75, 0.9, 0.95, 0.99)
# Upper bounds (seconds) of the time-served histogram buckets.
TIME_BUCKETS = (
    (0.001, "< 1 ms"),
    (0.01, "1–10 ms"),
    (0.1, "10–100 ms"),
    (0.5, "100–500 ms"),
    (1.0, "0.5–1 s"),
    (5.0, "1–5 s"),
    (float("inf"), "≥ 5 s"),
)
STATUS_CLASSES = {
    1: "1xx Informational",
    2: "2xx Success",
    3: "3xx Redirection",
    4: "4xx Client Errors",
    5: "5xx Server Errors",
}

BYTES_COLUMNS = ("body_bytes_sent", "bytes_sent")
TIME_COLUMNS = ("request_time", "upstream_response_time")
UA_COLUMN = "http_user_agent"
# The fields the report reads (loaders drop the others right after decoding).
REPORT_COLUMNS = (
    "Timestamp",
    "remote_addr",
    UA_COLUMN,
    "uri",
    "status",
    *BYTES_COLUMNS,
    "http_referer",
    *TIME_COLUMNS,
)


def _first_present(names: set[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in names), None)


def _col(key: str, label: str, kind: str) -> dict[str, str]:
    return {"key": key, "label": label, "type": kind}


def _null(dtype: pl.DataType) -> pl.Expr:
    return pl.lit(None, dtype=dtype)


# Request-time units as decoders label them (Apache %D is microseconds), to seconds.
SECONDS_PER = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _time_column(dataset: Dataset) -> str:
    fields = set(dataset.fields)
    return next((c for c in TIME_COLUMNS if c in fields), TIME_COLUMNS[0])


class _Frame:
    """The collected columns with the derived keys every panel needs."""

    def __init__(self, lf: pl.LazyFrame, time_scale: float = 1.0) -> None:
        lf = prepare(lf)
        names = set(lf.collect_schema().names())
        self.has_time = "Timestamp" in names
        self.bytes_col = _first_present(names, BYTES_COLUMNS)
        self.time_col = _first_present(names, TIME_COLUMNS)
        self.has_ua = UA_COLUMN in names
        self.has_host = "remote_addr" in names
        self.has_uri = "uri" in names
        self.has_status = "status" in names
        self.has_referer = "http_referer" in names
        string = pl.String
        exprs: list[pl.Expr] = [
            (pl.col("Timestamp") if self.has_time else _null(pl.Datetime("ns", "UTC"))).alias("ts"),
            (pl.col("remote_addr").cast(string) if self.has_host else _null(string)).alias("host"),
            (pl.col(UA_COLUMN).cast(string) if self.has_ua else _null(string)).alias("ua"),
            (pl.col("uri").cast(string) if self.has_uri else _null(string)).alias("uri"),
            (pl.col("status").cast(pl.Int64) if self.has_status else _null(pl.Int64)).alias("status"),
            (pl.col(self.bytes_col).cast(pl.Int64) if self.bytes_col else pl.lit(0, pl.Int64)).alias("bytes"),
            (pl.col("http_referer").cast(string) if self.has_referer else _null(string)).alias("referer"),
            (
                pl.col(self.time_col).cast(pl.Float64) * time_scale if self.time_col else _null(pl.Float64)
            ).alias("rt"),
        ]
        # with_columns (not select) so literal stand-ins for missing fields take the frame's height.
        wanted = [e.meta.output_name() for e in exprs]
        df = (
            lf.with_columns(exprs)
            .select(wanted)
            .with_columns(date=pl.col("ts").dt.date(), hour=pl.col("ts").dt.hour())
            .collect()
        )
        # The visitor key, one value per (address, date, user agent): three column hashes with different
        # seeds combined (much cheaper than hashing a struct; collisions are ~n²/2⁶⁴).
        visitor = (pl.col("host").hash(11) ^ pl.col("ua").hash(23) ^ pl.col("date").hash(37)).alias("visitor")
        # Static-ness is a property of the path: decide it once per distinct path, then look it up.
        paths = df.select(pl.col("uri").unique().drop_nulls())
        ext = pl.col("uri").str.to_lowercase().str.extract(r"\.([a-z0-9]+)$", 1)
        static_paths = paths.filter(ext.is_in(list(STATIC_EXTENSIONS)).fill_null(False))["uri"]
        self.df = df.with_columns(
            visitor, is_static=pl.col("uri").is_in(static_paths.implode()).fill_null(False)
        )
        self.has_rt = self.time_col is not None and self.df["rt"].null_count() < self.df.height


def _aggs(with_time: bool = False) -> list[pl.Expr]:
    aggs = [
        pl.len().alias("hits"),
        pl.col("visitor").n_unique().alias("visitors"),
        pl.col("bytes").sum().alias("bytes"),
    ]
    if with_time:
        aggs += [pl.col("rt").mean().alias("avg_time"), pl.col("rt").max().alias("max_time")]
    return aggs


def _pct(hits: pl.Expr, total: int) -> pl.Expr:
    return (hits * 100.0 / max(total, 1)).round(2)


def _panel(
    pid: str,
    title: str,
    description: str,
    columns: list[dict[str, str]],
    rows: list[dict[str, Any]],
    total: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": pid,
        "title": title,
        "description": description,
        "columns": columns,
        "rows": rows,
        "total": len(rows) if total is None else total,
        **extra,
    }


def _hits_columns(label: str, *, with_bytes: bool = True, with_time: bool = False) -> list[dict[str, str]]:
    cols = [
        _col("key", label, "text"),
        _col("hits", "Hits", "int"),
        _col("hits_pct", "%", "pct"),
        _col("visitors", "Visitors", "int"),
    ]
    if with_bytes:
        cols.append(_col("bytes", "Bandwidth", "bytes"))
    if with_time:
        cols += [_col("avg_time", "Avg time", "seconds"), _col("max_time", "Max time", "seconds")]
    return cols


class _Plan:
    """Panel queries gathered first and run together (`collect_all` shares scans and uses every core)."""

    def __init__(self) -> None:
        self.queries: list[pl.LazyFrame] = []
        self.results: list[pl.DataFrame] = []

    def add(self, q: pl.LazyFrame) -> int:
        self.queries.append(q)
        return len(self.queries) - 1

    def run(self) -> None:
        self.results = pl.collect_all(self.queries) if self.queries else []

    def __getitem__(self, i: int) -> pl.DataFrame:
        return self.results[i]


def build_report(dataset: Dataset, *, top: int = 10, started: float | None = None) -> dict[str, Any]:
    """Compute every panel over the dataset (see the module docstring for the definitions)."""
    started = time.perf_counter() if started is None else started
    fr = _Frame(dataset.lf, SECONDS_PER.get(dataset.unit(_time_column(dataset)), 1.0))
    df = fr.df
    base = df.lazy()
    valid = df.height
    notes: list[str] = []
    plan = _Plan()
    specs: list[tuple[str, Any]] = []  # (kind, data) in display order, filled after the plan runs

    def top_query(
        pid: str, title: str, desc: str, sub: pl.LazyFrame, key: str, label: str, *, with_time: bool = False
    ) -> None:
        grouped = sub.filter(pl.col(key).is_not_null()).group_by(key).agg(_aggs(with_time and fr.has_rt))
        rows = grouped.sort(["hits", key], descending=[True, False]).head(top).rename({key: "key"})
        specs.append(
            (
                "top",
                (
                    pid,
                    title,
                    desc,
                    label,
                    with_time and fr.has_rt,
                    plan.add(rows),
                    plan.add(grouped.select(pl.len())),
                ),
            )
        )

    if fr.has_time and valid:
        specs.append(("visitors", plan.add(base.group_by("date").agg(_aggs()))))
    if fr.has_uri:
        not_404 = pl.col("status").is_null() | (pl.col("status") != 404)
        top_query(
            "requests",
            "Requested files (URLs)",
            "Paths without query string; static files and 404s are in their own panels.",
            base.filter(~pl.col("is_static") & not_404),
            "uri",
            "URL",
            with_time=True,
        )
        top_query(
            "static",
            "Static requests",
            "Paths ending in a static-file extension (css, js, images, fonts, archives…).",
            base.filter(pl.col("is_static") & not_404),
            "uri",
            "URL",
            with_time=True,
        )
        if fr.has_status:
            top_query(
                "not_found",
                "Not found URLs (404s)",
                "Paths answered with 404.",
                base.filter(pl.col("status") == 404),
                "uri",
                "URL",
            )
    if fr.has_host:
        top_query("hosts", "Visitor hostnames and IPs", "Client addresses by hits.", base, "host", "Host")
    if fr.has_ua:
        ua_table = classify_distinct(df["ua"]).rename(
            {
                "http_user_agent": "ua",
                "user_agent_os": "os",
                "user_agent_browser": "browser",
                "user_agent_version": "version",
            }
        )
        ua_table = ua_table.with_columns(
            browser_version=pl.when(pl.col("browser").is_null())
            .then(pl.lit("Unknown"))
            .otherwise(pl.col("browser") + pl.lit(" ") + pl.col("version").cast(pl.String).fill_null("?")),
            os=pl.col("os").fill_null("Unknown"),
            browser=pl.col("browser").fill_null("Unknown"),
        )
        with_ua = base.join(ua_table.lazy(), on="ua", how="left", nulls_equal=True)
        desc = "From the user agent (decoder spec §3 rules)."
        top_query("os", "Operating systems", desc, with_ua, "os", "OS")
        top_query("browsers", "Browsers", desc, with_ua, "browser", "Browser")
        top_query(
            "browser_versions",
            "Browser versions",
            "Browser and major version.",
            with_ua,
            "browser_version",
            "Browser",
        )
    if fr.has_time and valid:
        specs.append(("visit_times", plan.add(base.group_by("hour").agg(_aggs()))))
    if fr.has_referer:
        refs = base.filter(pl.col("referer").is_not_null() & ~pl.col("referer").is_in(["-", ""]))
        top_query(
            "referrers",
            "Referrer URLs",
            "The Referer header, when one was sent.",
            refs,
            "referer",
            "Referrer",
        )
        sites = refs.with_columns(
            site=pl.col("referer").str.extract(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#:]+)", 1).str.to_lowercase()
        )
        top_query("referring_sites", "Referring sites", "Host part of the Referer.", sites, "site", "Site")
    if fr.has_status:
        st = base.filter(pl.col("status").is_not_null())
        specs.append(
            (
                "status_codes",
                (
                    plan.add(st.group_by("status").agg(_aggs())),
                    plan.add(
                        st.with_columns(cls=pl.col("status") // 100).group_by("cls").agg(_aggs()).sort("cls")
                    ),
                ),
            )
        )
    if fr.has_rt:
        specs.append(("time_served", None))
    elif fr.has_uri:
        notes.append(
            "request time is not in this log, so there is no time-served panel (log $request_time to get one)"
        )
    if valid and not (fr.has_uri or fr.has_status or fr.has_host):
        notes.append("these records have none of the access-log fields (remote_addr, request or uri, status)")
    overview_at = plan.add(_overview_query(base, fr))
    plan.run()

    panels: list[dict[str, Any]] = []
    for kind, data in specs:
        if kind == "top":
            pid, title, desc, label, with_time, rows_at, total_at = data
            rows = plan[rows_at].with_columns(hits_pct=_pct(pl.col("hits"), valid))
            panels.append(
                _panel(
                    pid,
                    title,
                    desc,
                    _hits_columns(label, with_time=with_time),
                    rows.to_dicts(),
                    int(plan[total_at].item()),
                )
            )
        elif kind == "visitors":
            per_day = plan[data].sort("date")
            days = pl.DataFrame(
                {"date": pl.date_range(per_day["date"].min(), per_day["date"].max(), "1d", eager=True)}
            )
            # Every day of the span, including days without requests.
            per_day = (
                days.join(per_day, on="date", how="left")
                .fill_null(0)
                .with_columns(
                    hits_pct=_pct(pl.col("hits"), valid), key=pl.col("date").dt.strftime("%Y-%m-%d")
                )
                .drop("date")
            )
            panels.append(
                _panel(
                    "visitors",
                    "Unique visitors per day",
                    "Hits, visitors (address + date + user agent) and bytes per day.",
                    _hits_columns("Date"),
                    per_day.to_dicts(),
                    chart="timeline",
                )
            )
        elif kind == "visit_times":
            per_hour = plan[data]
            hours = pl.DataFrame({"hour": pl.Series(range(24), dtype=per_hour["hour"].dtype)})
            per_hour = (
                hours.join(per_hour, on="hour", how="left")
                .fill_null(0)
                .sort("hour")
                .with_columns(
                    hits_pct=_pct(pl.col("hits"), valid),
                    key=pl.format("{}:00", pl.col("hour").cast(pl.String).str.zfill(2)),
                )
                .drop("hour")
            )
            panels.append(
                _panel(
                    "visit_times",
                    "Visit times",
                    "Requests by hour of day (UTC).",
                    _hits_columns("Hour"),
                    per_hour.to_dicts(),
                    chart="bars",
                )
            )
        elif kind == "status_codes":
            panels.append(_status_panel(plan[data[0]], plan[data[1]], valid))
        elif kind == "time_served":
            panels.append(_time_served(df, fr.time_col or "request_time"))

    overview = _overview(dataset, fr, plan[overview_at], valid)
    overview["processing_seconds"] = round(time.perf_counter() - started, 3)
    return {"overview": overview, "panels": panels, "notes": notes}


def _status_panel(by_code: pl.DataFrame, by_class: pl.DataFrame, valid: int) -> dict[str, Any]:
    def row(key: str, r: dict[str, Any], level: int) -> dict[str, Any]:
        return {
            "key": key,
            "hits": r["hits"],
            "hits_pct": round(r["hits"] * 100.0 / max(valid, 1), 2),
            "visitors": r["visitors"],
            "bytes": r["bytes"],
            "level": level,
        }

    rows: list[dict[str, Any]] = []
    for c in by_class.iter_rows(named=True):
        rows.append(row(STATUS_CLASSES.get(c["cls"], f"{c['cls']}xx"), c, 0))
        codes = by_code.filter(pl.col("status") // 100 == c["cls"]).sort(
            ["hits", "status"], descending=[True, False]
        )
        rows.extend(row(str(r["status"]), r, 1) for r in codes.iter_rows(named=True))
    return _panel(
        "status_codes",
        "HTTP status codes",
        "Grouped by class, then by code.",
        _hits_columns("Status"),
        rows,
        by_code.height,
    )


def _time_served(df: pl.DataFrame, column: str) -> dict[str, Any]:
    rt = df["rt"].drop_nulls()
    stats = [
        {"key": f"p{int(q * 100)}", "value": float(rt.quantile(q, interpolation="linear") or 0.0)}
        for q in PERCENTILES
    ]
    stats += [
        {"key": "max", "value": float(rt.max() or 0.0)},
        {"key": "mean", "value": float(rt.mean() or 0.0)},
    ]
    buckets: list[dict[str, Any]] = []
    lower = float("-inf")
    for upper, label in TIME_BUCKETS:
        n = int(((rt >= lower) & (rt < upper)).sum()) if lower != float("-inf") else int((rt < upper).sum())
        buckets.append({"key": label, "hits": n, "hits_pct": round(n * 100.0 / max(rt.len(), 1), 2)})
        lower = upper
    return _panel(
        "time_served",
        "Time served",
        f"Percentiles of ${column} (seconds) over {rt.len():,} requests, and how they spread.",
        [_col("key", "Time served", "text"), _col("hits", "Hits", "int"), _col("hits_pct", "%", "pct")],
        buckets,
        len(buckets),
        percentiles=stats,
        column=column,
        chart="bars",
    )


def _overview_query(base: pl.LazyFrame, fr: _Frame) -> pl.LazyFrame:
    """One row with the overview's distinct counts and totals."""
    not_static = ~pl.col("is_static")
    real_ref = pl.col("referer").is_not_null() & ~pl.col("referer").is_in(["-", ""])
    return base.select(
        unique_visitors=pl.col("visitor").n_unique(),
        unique_files=pl.col("uri").filter(not_static & pl.col("uri").is_not_null()).n_unique(),
        unique_static_files=pl.col("uri").filter(pl.col("is_static")).n_unique(),
        unique_not_found=pl.col("uri").filter(pl.col("status") == 404).n_unique(),
        unique_referrers=pl.col("referer").filter(real_ref).n_unique(),
        bandwidth=pl.col("bytes").sum(),
        first=pl.col("ts").min(),
        last=pl.col("ts").max(),
    )


def _overview(dataset: Dataset, fr: _Frame, row: pl.DataFrame, valid: int) -> dict[str, Any]:
    r = row.row(0, named=True) if row.height else {}
    first, last = r.get("first"), r.get("last")
    failed = dataset.rejected
    return {
        "total_requests": valid + failed,
        "valid_requests": valid,
        "failed_requests": failed,
        "unique_visitors": int(r.get("unique_visitors") or 0) if valid else 0,
        "unique_files": int(r["unique_files"]) if fr.has_uri else None,
        "unique_static_files": int(r["unique_static_files"]) if fr.has_uri else None,
        "unique_not_found": int(r["unique_not_found"]) if fr.has_uri and fr.has_status else None,
        "unique_referrers": int(r["unique_referrers"]) if fr.has_referer else None,
        "bandwidth": int(r.get("bandwidth") or 0),
        "log_size": dataset.total_size,
        "first": first.isoformat().replace("+00:00", "Z") if first is not None else None,
        "last": last.isoformat().replace("+00:00", "Z") if last is not None else None,
        "span_seconds": (last - first).total_seconds() if first is not None and last is not None else None,
        "sources": [
            {"path": s.path, "kind": s.kind, "decoder": s.decoder, "size": s.size, "rejected": s.rejected}
            for s in dataset.sources
        ],
        "rejected_samples": [str(x) for x in dataset.rejects[:5]],
    }
