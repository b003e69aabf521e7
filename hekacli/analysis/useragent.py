"""User-agent classes for the analyzer: browser, major version and OS (decoder spec §3).

The rules live with the decoders (`hekacli.parsers.useragent`) so that `heka decode --user-agent` and
the report panels always agree. Here each *distinct* user agent is classified once and the result is
joined back, so the cost depends on the number of different agents, not on the number of requests.
"""

from __future__ import annotations

import polars as pl

from hekacli.parsers.useragent import classify_series

UA_COLUMNS = ("user_agent_browser", "user_agent_version", "user_agent_os")


def classify(uas: pl.Series) -> pl.DataFrame:
    """One row per value of `uas`: http_user_agent, user_agent_browser, user_agent_version, user_agent_os."""
    uas = uas.cast(pl.String).alias("http_user_agent")
    return pl.concat([uas.to_frame(), classify_series(uas)], how="horizontal")


def classify_distinct(uas: pl.Series) -> pl.DataFrame:
    """`classify` over the distinct values of `uas` (a lookup table to join on http_user_agent)."""
    return classify(uas.cast(pl.String).unique())


def add_user_agent_columns(lf: pl.LazyFrame, ua_column: str = "http_user_agent") -> pl.LazyFrame:
    """Add user_agent_browser/version/os computed once per distinct UA (joined back lazily)."""
    distinct = lf.select(pl.col(ua_column).cast(pl.String)).unique().collect().to_series()
    table = classify_distinct(distinct).rename({"http_user_agent": ua_column})
    existing = [c for c in UA_COLUMNS if c in lf.collect_schema()]
    base = lf.drop(existing) if existing else lf
    base = base.with_columns(pl.col(ua_column).cast(pl.String))
    return base.join(table.lazy(), on=ua_column, how="left", nulls_equal=True)
