"""User-agent normalisation (decoder spec §3): browser, major version and OS from a User-Agent.

The rules are Heka's (Persona's coarse parser) in the lua_sandbox_extensions order, which adds Edge,
Trident/7.0 (IE 11) and Firefox Sync. `normalize_user_agent` classifies one string;
`classify_series` a whole polars column (each distinct value once, then joined back), so the
streaming and bulk decoders and the analyzer's report panels give the same answers.
"""

from __future__ import annotations

import re

import polars as pl

# First hit wins (plain substring search).
OS_RULES: tuple[tuple[str, str], ...] = (
    ("iPod", "iPod"),
    ("iPad", "iPad"),
    ("iPhone", "iPhone"),
    ("Android", "Android"),
    ("BlackBerry", "BlackBerry"),
    ("Linux", "Linux"),
    ("Macintosh", "Macintosh"),
    ("Mozilla/5.0 (Mobile;", "FirefoxOS"),
    ("Windows NT 10.0", "Windows 10"),
    ("Windows NT 6.3", "Windows 8.1"),
    ("Windows NT 6.2", "Windows 8"),
    ("Windows NT 6.1", "Windows 7"),
    ("Windows NT 6.0", "Windows Vista"),
    ("Windows NT 5.1", "Windows XP"),
    ("Windows NT 5.0", "Windows 2000"),
)

# (substring, browser, how to find the version: keyword text, "last" = after the last '/', or an int)
BROWSER_RULES: tuple[tuple[str, str, str | int], ...] = (
    ("Edge", "Edge", "Edge/"),
    ("Chrome", "Chrome", "Chrome/"),
    ("Opera Mini", "Opera Mini", "last"),
    ("Opera Mobi", "Opera Mobi", "last"),
    ("Opera", "Opera", "last"),
    ("MSIE", "MSIE", "MSIE "),
    ("Trident/7.0", "MSIE", 11),
    ("Safari", "Safari", "last"),
    ("Firefox AndroidSync", "FxSync", "Firefox AndroidSync "),
    ("Firefox-iOS-Sync", "FxSync", "Firefox-iOS-Sync/"),
    ("Firefox", "Firefox", "Firefox/"),
)
OS_OVERRIDES = {"Firefox AndroidSync": "Android", "Firefox-iOS-Sync": "iOS"}

_LEADING_INT = re.compile(r"[0-9]+")


def _leading_int(text: str) -> int | None:
    m = _LEADING_INT.match(text)
    return int(m.group()) if m else None


def normalize_user_agent(ua: str | None) -> tuple[str | None, int | None, str | None]:
    """``(browser, version, os)``; each may be None (an empty UA gives nothing)."""
    if not ua:
        return None, None, None
    os_name = next((name for needle, name in OS_RULES if needle in ua), None)
    for needle, browser, how in BROWSER_RULES:
        if needle not in ua:
            continue
        if isinstance(how, int):
            version: int | None = how
        elif how == "last":
            version = _leading_int(ua[ua.rfind("/") + 1 :]) if "/" in ua else None
        else:
            pos = ua.find(how)
            version = _leading_int(ua[pos + len(how) :]) if pos >= 0 else None
        return browser, version, OS_OVERRIDES.get(needle, os_name)
    return None, None, os_name


def classify_series(ua: pl.Series, prefix: str = "user_agent") -> pl.DataFrame:
    """A column of user agents -> DataFrame ``<prefix>_browser``, ``<prefix>_version``, ``<prefix>_os``.

    Each distinct value is classified once with `normalize_user_agent`, so the result is identical
    to the per-line function and the cost depends on the number of distinct agents.
    """
    names = (f"{prefix}_browser", f"{prefix}_version", f"{prefix}_os")
    uniq = ua.drop_nulls().unique().to_list()
    table = [normalize_user_agent(u) for u in uniq]
    lookup = pl.DataFrame(
        {
            "__ua": pl.Series(uniq, dtype=pl.String),
            names[0]: pl.Series([t[0] for t in table], dtype=pl.String),
            names[1]: pl.Series([t[1] for t in table], dtype=pl.Int64),
            names[2]: pl.Series([t[2] for t in table], dtype=pl.String),
        }
    )
    left = pl.DataFrame({"__ua": ua.cast(pl.String)})
    return left.join(lookup, on="__ua", how="left", maintain_order="left").drop("__ua")
