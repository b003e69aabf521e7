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

from .columns import path_only, prepare, uri_is_derived
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
        # When the path is cut from request URIs that repeat, the frame keeps the request URI (column
        # "uri") and the report cuts each distinct one after grouping rather than every record.
        self.cut_query = uri_is_derived(lf.collect_schema().names())
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
            (
                pl.col("request_uri" if self.cut_query else "uri").cast(string)
                if self.has_uri
                else _null(string)
            ).alias("uri"),
            (pl.col("status").cast(pl.Int64) if self.has_status else _null(pl.Int64)).alias("status"),
            (pl.col(self.bytes_col).cast(pl.Int64) if self.bytes_col else pl.lit(0, pl.Int64)).alias("bytes"),
            (pl.col("http_referer").cast(string) if self.has_referer else _null(string)).alias("referer"),
        ]
        if self.time_col:  # no all-null stand-in: a log without times carries no column for them
            exprs.append((pl.col(self.time_col).cast(pl.Float64) * time_scale).alias("rt"))
        # with_columns (not select) so literal stand-ins for missing fields take the frame's height.
        wanted = [e.meta.output_name() for e in exprs]
        present = {"host": self.has_host, "ua": self.has_ua, "uri": self.has_uri, "referer": self.has_referer}
        texts = [name for name, there in present.items() if there]
        repeating = _repeating(lf.with_columns(exprs).select(texts), texts)
        if self.cut_query and "uri" not in repeating:  # mostly distinct: cut per record after all
            self.cut_query = False
            exprs = [
                pl.col("uri").cast(string).alias("uri") if e.meta.output_name() == "uri" else e for e in exprs
            ]
        exprs = [e.cast(pl.Categorical) if e.meta.output_name() in repeating else e for e in exprs]
        # The visitor key, one value per (address, date, user agent): three column hashes with different
        # seeds combined (much cheaper than hashing a struct; collisions are ~n²/2⁶⁴).
        visitor = (pl.col("host").hash(11) ^ pl.col("ua").hash(23) ^ pl.col("date").hash(37)).alias("visitor")
        self.df = (
            lf.with_columns(exprs).select(wanted).with_columns(_date_hour(lf)).with_columns(visitor).collect()
        )
        self.has_rt = self.time_col is not None and self.df["rt"].null_count() < self.df.height


# Text columns whose values repeat in the first records are held as categoricals: 4 bytes a record
# instead of 16 or more (a categorical of mostly distinct values would cost more than it saves).
SAMPLE_RECORDS = 20_000


def _repeating(texts: pl.LazyFrame, names: list[str]) -> set[str]:
    """The columns of `texts` with few distinct values in their first records."""
    if not names:
        return set()
    sample = texts.head(SAMPLE_RECORDS).collect()
    return {name for name in names if _few_distinct(sample[name].n_unique(), sample.height)}


def _text(name: str) -> pl.Expr:
    """Column `name` as String (the frame may hold it as a categorical)."""
    return pl.col(name).cast(pl.String)


def _date_hour(lf: pl.LazyFrame) -> list[pl.Expr]:
    """UTC date and hour of "ts"; from the nanosecond count when it is one (cheaper than calendar code)."""
    ts = pl.col("ts")
    dtype = lf.collect_schema().get("Timestamp")
    if dtype != pl.Datetime("ns", "UTC"):
        return [ts.dt.date().alias("date"), ts.dt.hour().alias("hour")]
    day, hour = 86_400 * 10**9, 3_600 * 10**9
    days = ts.to_physical() // day  # floor division: right before 1970 too
    return [
        days.cast(pl.Int32).cast(pl.Date).alias("date"),
        (ts.to_physical() // hour - days * 24).cast(pl.Int8).alias("hour"),
    ]


def _aggs(with_time: bool = False) -> list[pl.Expr]:
    aggs = [
        pl.len().alias("hits"),
        pl.col("visitor").n_unique().alias("visitors"),
        pl.col("bytes").sum().alias("bytes"),
    ]
    if with_time:
        aggs += [pl.col("rt").mean().alias("avg_time"), pl.col("rt").max().alias("max_time")]
    return aggs


def _summed(grouped: pl.DataFrame, key: str) -> pl.DataFrame:
    """Per-`key` rows of per-finer-key rows whose visitor sets are disjoint (so visitors add up)."""
    return (
        grouped.filter(pl.col(key).is_not_null())
        .group_by(key)
        .agg(pl.col("hits").sum(), pl.col("visitors").sum(), pl.col("bytes").sum())
    )


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


def _top_panel(
    pid: str,
    title: str,
    desc: str,
    label: str,
    grouped: pl.DataFrame,
    key: str,
    top: int,
    valid: int,
    *,
    with_time: bool = False,
) -> dict[str, Any]:
    """A top-N panel from one row per (non-null) key: key, hits, visitors, bytes[, avg_time, max_time]."""
    rows = (
        grouped.lazy()
        .sort(["hits", key], descending=[True, False])
        .head(top)  # with the sort: a top-k, not a full sort of (maybe) a million keys
        .rename({key: "key"})
        .with_columns(hits_pct=_pct(pl.col("hits"), valid))
        .collect()
    )
    return _panel(
        pid, title, desc, _hits_columns(label, with_time=with_time), rows.to_dicts(), grouped.height
    )


def _static_paths(paths: pl.Series) -> pl.Series:
    """For each path, whether it ends in a static-file extension (null paths are not static)."""
    ext = paths.str.to_lowercase().str.extract(r"\.([a-z0-9]+)$", 1)
    return ext.is_in(list(STATIC_EXTENSIONS)).fill_null(False)


def _site(referer: pl.Expr) -> pl.Expr:
    """The host part of a Referer URL, lower-cased (null when it is not scheme://host…)."""
    return referer.str.extract(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#:]+)", 1).str.to_lowercase()


# Working out a coarse key (a path, a site) once per distinct value pays while values repeat; past one
# distinct value in this many records, it is done per record.
FEW_DISTINCT = 8


def _few_distinct(distinct: int, records: int) -> bool:
    return distinct * FEW_DISTINCT <= records


def _split_by_coarse(fine: pl.DataFrame, key: str, coarse: pl.Expr) -> tuple[pl.DataFrame, pl.Series]:
    """Group rows per `key` value regrouped by a coarser key computed from it (`coarse`, once per value).

    A coarse value made of a single `key` value takes that value's rows as they are (its counts, visitors
    included, are exact); returns those rows (the coarse value in the `key` column) and the `key` values
    of the other coarse values, whose records must be counted again (visitors do not add up).
    """
    mapped = fine.with_columns(coarse.alias("_coarse"))
    pairs = mapped.select(key, "_coarse").unique(subset=key)
    shared = pairs.filter(pl.col("_coarse").is_duplicated())[key]
    single = mapped.filter(~pl.col(key).is_in(shared.implode()).fill_null(False)).select(
        [pl.col("_coarse").alias(key) if c == key else pl.col(c) for c in fine.columns]
    )
    return single, shared


def build_report(dataset: Dataset, *, top: int = 10, started: float | None = None) -> dict[str, Any]:
    """Compute every panel over the dataset (see the module docstring for the definitions).

    The records are visited by a handful of group-bys run together (`_group`); every panel and the
    overview's distinct counts are derived from their small results.
    """
    started = time.perf_counter() if started is None else started
    fr = _Frame(dataset.lf, SECONDS_PER.get(dataset.unit(_time_column(dataset)), 1.0))
    valid = fr.df.height
    res = _group(fr)
    counts: dict[str, int | None] = {}
    panels: list[dict[str, Any]] = []
    notes: list[str] = []
    if "days" in res:
        panels.append(_visitors_panel(res["days"], valid))
    if fr.has_uri:
        panels += _path_panels(res["paths"], counts, fr, top=top, valid=valid)
    if fr.has_host:
        host_desc = "Client addresses by hits."
        panels.append(
            _top_panel(
                "hosts", "Visitor hostnames and IPs", host_desc, "Host", res["hosts"], "host", top, valid
            )
        )
    if fr.has_ua:
        panels += _agent_panels(res["agents"], top=top, valid=valid)
    if "hours" in res:
        panels.append(_visit_times_panel(res["hours"], valid))
    if fr.has_referer:
        counts["unique_referrers"] = res["referrers"].height
        ref_desc = "The Referer header, when one was sent."
        panels.append(
            _top_panel(
                "referrers", "Referrer URLs", ref_desc, "Referrer", res["referrers"], "referer", top, valid
            )
        )
        site_desc = "Host part of the Referer."
        panels.append(
            _top_panel(
                "referring_sites", "Referring sites", site_desc, "Site", res["sites"], "referer", top, valid
            )
        )
    if fr.has_status:
        panels.append(_status_panel(res["status"], res["classes"], valid))
    if fr.has_rt:
        panels.append(_time_served(fr.df, fr.time_col or "request_time"))
    elif fr.has_uri:
        notes.append(
            "request time is not in this log, so there is no time-served panel (log $request_time to get one)"
        )
    if valid and not (fr.has_uri or fr.has_status or fr.has_host):
        notes.append("these records have none of the access-log fields (remote_addr, request or uri, status)")

    overview = _overview(dataset, fr, res["overview"], counts, valid)
    overview["processing_seconds"] = round(time.perf_counter() - started, 3)
    return {"overview": overview, "panels": panels, "notes": notes}


def _group(fr: _Frame) -> dict[str, pl.DataFrame]:
    """The group-bys every panel is drawn from, by name: one row per key with `_aggs` (paths are keyed
    by path and is_404, referrers and sites both by the "referer" column).

    First round, side by side: days, hours, paths, hosts, agents, referrers, status codes and classes,
    overview. Paths cut from request URIs and referring sites are worked out once per distinct URI or
    referrer when values repeat; a second round then counts again only the records of paths (sites)
    that several URIs (referrers) lead to, since their visitors do not add up.
    """
    base = fr.df.lazy()
    valid = fr.df.height
    queries: dict[str, pl.LazyFrame] = {}
    if fr.has_time and valid:
        queries["days"] = base.group_by("date").agg(_aggs())
        queries["hours"] = base.group_by("hour").agg(_aggs())
    is_404 = (pl.col("status") == 404).fill_null(False).alias("is_404")
    if fr.has_uri:  # by request URI when the frame holds those (fr.cut_query), cut below
        queries["paths"] = base.group_by("uri", is_404).agg(_aggs(fr.has_rt))
    if fr.has_host:
        queries["hosts"] = base.filter(pl.col("host").is_not_null()).group_by("host").agg(_aggs())
    if fr.has_ua:
        queries["agents"] = base.group_by("ua").agg(_aggs())
    real_ref = pl.col("referer").is_not_null() & ~pl.col("referer").is_in(["-", ""])
    if fr.has_referer:
        queries["referrers"] = base.filter(real_ref).group_by("referer").agg(_aggs())
    if fr.has_status:
        st = base.filter(pl.col("status").is_not_null())
        queries["status"] = st.group_by("status").agg(_aggs())
        by_class = st.with_columns(cls=pl.col("status") // 100).group_by("cls")
        queries["classes"] = by_class.agg(_aggs()).sort("cls")
    # Visitors include the date, so the days' visitors add up to all of them (no second count needed).
    everyone = [] if "days" in queries else [pl.col("visitor").n_unique().alias("unique_visitors")]
    queries["overview"] = base.select(
        *everyone, bandwidth=pl.col("bytes").sum(), first=pl.col("ts").min(), last=pl.col("ts").max()
    )
    # collect_all runs the independent group-bys side by side on every core.
    res = {
        name: part.with_columns(pl.col(pl.Categorical).cast(pl.String))
        for name, part in zip(queries, pl.collect_all(list(queries.values())), strict=True)
    }
    if "days" in res:
        res["overview"] = res["overview"].with_columns(unique_visitors=res["days"]["visitors"].sum())

    again: dict[str, pl.LazyFrame] = {}
    if fr.has_uri and fr.cut_query:
        res["paths"], shared = _split_by_coarse(res["paths"], "uri", path_only(pl.col("uri")))
        if shared.len():
            again["paths"] = (
                base.filter(pl.col("uri").is_in(shared.implode()))
                .group_by(path_only(_text("uri")), is_404)
                .agg(_aggs(fr.has_rt))
            )
    if fr.has_referer:
        refs = res["referrers"]
        records = None  # the records whose sites must be counted again, with the site as "referer"
        if _few_distinct(refs.height, valid):
            refs = refs.filter(_site(pl.col("referer")).is_not_null())
            res["sites"], shared = _split_by_coarse(refs, "referer", _site(pl.col("referer")))
            if shared.len():
                to_site = refs.filter(pl.col("referer").is_in(shared.implode()))
                to_site = to_site.select("referer", site=_site(pl.col("referer")))
                records = base.filter(pl.col("referer").is_in(shared.implode())).with_columns(
                    referer=_text("referer").replace_strict(to_site["referer"], to_site["site"])
                )
        else:
            res["sites"] = refs.clear()
            records = base.filter(real_ref).with_columns(referer=_site(_text("referer")))
        if records is not None:
            again["sites"] = records.filter(pl.col("referer").is_not_null()).group_by("referer").agg(_aggs())
    for name, part in zip(again, pl.collect_all(list(again.values())), strict=True):
        res[name] = pl.concat([res[name], part], how="vertical_relaxed")
    return res


def _path_panels(
    paths: pl.DataFrame, counts: dict[str, int | None], fr: _Frame, *, top: int, valid: int
) -> list[dict[str, Any]]:
    """Requests, static requests and 404s from the (path, is_404) groups; fills the overview's path counts."""
    paths = paths.with_columns(is_static=_static_paths(paths["uri"]))
    not_static = ~pl.col("is_static") & pl.col("uri").is_not_null()
    counts["unique_files"] = paths.filter(not_static)["uri"].n_unique()
    counts["unique_static_files"] = paths.filter(pl.col("is_static"))["uri"].n_unique()
    counts["unique_not_found"] = paths.filter(pl.col("is_404"))["uri"].n_unique()
    found = paths.filter(~pl.col("is_404")).drop("is_404")
    panels = [
        _top_panel(
            "requests",
            "Requested files (URLs)",
            "Paths without query string; static files and 404s are in their own panels.",
            "URL",
            found.filter(not_static).drop("is_static"),
            "uri",
            top,
            valid,
            with_time=fr.has_rt,
        ),
        _top_panel(
            "static",
            "Static requests",
            "Paths ending in a static-file extension (css, js, images, fonts, archives…).",
            "URL",
            found.filter(pl.col("is_static")).drop("is_static"),
            "uri",
            top,
            valid,
            with_time=fr.has_rt,
        ),
    ]
    if fr.has_status:
        not_found = paths.filter(pl.col("is_404") & pl.col("uri").is_not_null())
        panels.append(
            _top_panel(
                "not_found",
                "Not found URLs (404s)",
                "Paths answered with 404.",
                "URL",
                not_found.select("uri", "hits", "visitors", "bytes"),
                "uri",
                top,
                valid,
            )
        )
    return panels


def _agent_panels(agents: pl.DataFrame, *, top: int, valid: int) -> list[dict[str, Any]]:
    """OS, browser and browser-version panels from the per-agent groups."""
    agents = _with_agent_classes(agents)
    desc = "From the user agent (decoder spec §3 rules)."
    return [
        _top_panel("os", "Operating systems", desc, "OS", _summed(agents, "os"), "os", top, valid),
        _top_panel(
            "browsers", "Browsers", desc, "Browser", _summed(agents, "browser"), "browser", top, valid
        ),
        _top_panel(
            "browser_versions",
            "Browser versions",
            "Browser and major version.",
            "Browser",
            _summed(agents, "browser_version"),
            "browser_version",
            top,
            valid,
        ),
    ]


def _with_agent_classes(agents: pl.DataFrame) -> pl.DataFrame:
    """Per-agent rows with os, browser and browser_version (each distinct agent classified once)."""
    table = classify_distinct(agents["ua"]).rename(
        {
            "http_user_agent": "ua",
            "user_agent_os": "os",
            "user_agent_browser": "browser",
            "user_agent_version": "version",
        }
    )
    table = table.with_columns(
        browser_version=pl.when(pl.col("browser").is_null())
        .then(pl.lit("Unknown"))
        .otherwise(pl.col("browser") + pl.lit(" ") + pl.col("version").cast(pl.String).fill_null("?")),
        os=pl.col("os").fill_null("Unknown"),
        browser=pl.col("browser").fill_null("Unknown"),
    )
    return agents.join(table, on="ua", how="left", nulls_equal=True)


def _visitors_panel(per_day: pl.DataFrame, valid: int) -> dict[str, Any]:
    per_day = per_day.sort("date")
    days = pl.DataFrame(
        {"date": pl.date_range(per_day["date"].min(), per_day["date"].max(), "1d", eager=True)}
    )
    # Every day of the span, including days without requests.
    per_day = (
        days.join(per_day, on="date", how="left")
        .fill_null(0)
        .with_columns(hits_pct=_pct(pl.col("hits"), valid), key=pl.col("date").dt.strftime("%Y-%m-%d"))
        .drop("date")
    )
    return _panel(
        "visitors",
        "Unique visitors per day",
        "Hits, visitors (address + date + user agent) and bytes per day.",
        _hits_columns("Date"),
        per_day.to_dicts(),
        chart="timeline",
    )


def _visit_times_panel(per_hour: pl.DataFrame, valid: int) -> dict[str, Any]:
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
    return _panel(
        "visit_times",
        "Visit times",
        "Requests by hour of day (UTC).",
        _hits_columns("Hour"),
        per_hour.to_dicts(),
        chart="bars",
    )


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
    ordered = rt.sort()  # one sort serves the percentiles and every histogram bucket
    stats = [
        {"key": f"p{int(q * 100)}", "value": float(ordered.quantile(q, interpolation="linear") or 0.0)}
        for q in PERCENTILES
    ]
    stats += [
        {"key": "max", "value": float(rt.max() or 0.0)},
        {"key": "mean", "value": float(rt.mean() or 0.0)},
    ]
    # How many values lie below each bucket's upper bound (NaN sorts last, as it compares false).
    below = [0, *ordered.search_sorted(pl.Series([upper for upper, _ in TIME_BUCKETS]), side="left")]
    buckets: list[dict[str, Any]] = []
    for i, (_upper, label) in enumerate(TIME_BUCKETS):
        n = int(below[i + 1] - below[i])
        buckets.append({"key": label, "hits": n, "hits_pct": round(n * 100.0 / max(rt.len(), 1), 2)})
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


def _overview(
    dataset: Dataset, fr: _Frame, row: pl.DataFrame, counts: dict[str, int | None], valid: int
) -> dict[str, Any]:
    """The overview: totals, distinct counts (`counts` has those taken from the panels' group-bys)."""
    r = row.row(0, named=True) if row.height else {}
    first, last = r.get("first"), r.get("last")
    failed = dataset.rejected
    return {
        "total_requests": valid + failed,
        "valid_requests": valid,
        "failed_requests": failed,
        "unique_visitors": int(r.get("unique_visitors") or 0) if valid else 0,
        "unique_files": counts["unique_files"] if fr.has_uri else None,
        "unique_static_files": counts["unique_static_files"] if fr.has_uri else None,
        "unique_not_found": counts["unique_not_found"] if fr.has_uri and fr.has_status else None,
        "unique_referrers": counts["unique_referrers"] if fr.has_referer else None,
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
