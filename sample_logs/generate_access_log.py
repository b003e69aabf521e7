#!/usr/bin/env python3
"""Generate a realistic nginx access log (combined format, optionally with `$request_time`).

The bundled `sample_logs/nginx/access.log` was made with:

    python sample_logs/generate_access_log.py --lines 22000 --days 7 --seed 42 \
        --start 2026-11-01 --request-time > sample_logs/nginx/access.log

The output is deterministic for a given seed. Traffic follows a daily rhythm, visitors come from a
skewed pool of addresses with their own user agents, pages pull in static files, bots probe for
well-known vulnerable paths (404s), and a few upstream errors show up. Tests and benchmarks import
`generate()` to get the true records behind each line (so counts can be checked independently).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
COMBINED_TIMED = COMBINED + " $request_time"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

USER_AGENTS = [
    # (weight, user agent)
    (
        30,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        12,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.0.0 Safari/537.36",
    ),
    (
        10,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15",
    ),
    (
        9,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        12,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Mobile/15E148 Safari/604.1",
    ),
    (
        3,
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
    ),
    (
        10,
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.43 Mobile Safari/537.36",
    ),
    (
        4,
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.6045.163 Mobile Safari/537.36",
    ),
    (7, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
    (5, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"),
    (
        5,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
    ),
    (2, "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"),
    (
        2,
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/109.0.0.0 Safari/537.36",
    ),
    (1, "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18"),
    (
        1,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0",
    ),
]
BOT_AGENTS = [
    (6, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (3, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    (2, "curl/8.4.0"),
    (2, "python-requests/2.31.0"),
    (1, "Go-http-client/1.1"),
    (2, "Mozilla/5.0 zgrab/0.x"),
]

PAGES = [
    (40, "/"),
    (12, "/blog/"),
    (8, "/about"),
    (6, "/pricing"),
    (5, "/contact"),
    (10, "/docs/"),
    (6, "/docs/install"),
    (5, "/docs/quickstart"),
    (3, "/docs/configuration"),
    (2, "/docs/faq"),
    (4, "/login"),
    (2, "/signup"),
    (3, "/search"),
    (6, "/api/v1/items"),
    (3, "/api/v1/status"),
    (2, "/feed.xml"),
    (1, "/sitemap.xml"),
    (2, "/robots.txt"),
]
BLOG_SLUGS = [
    "shipping-logs-with-heka",
    "nginx-log-format-explained",
    "percentiles-not-averages",
    "tailing-rotated-files",
    "tls-for-log-shippers",
    "sandboxes-in-lua",
    "goaccess-vs-sql",
    "five-years-of-access-logs",
    "why-we-moved-to-polars",
    "the-cost-of-a-regex",
]
STATIC = [
    "/static/css/app.3f9c1e.css",
    "/static/js/app.8b21d0.js",
    "/static/js/vendor.51aa9c.js",
    "/static/img/logo.svg",
    "/static/img/hero.webp",
    "/favicon.ico",
    "/static/fonts/inter.woff2",
]
PROBES = [
    "/wp-login.php",
    "/.env",
    "/wp-admin/",
    "/xmlrpc.php",
    "/.git/config",
    "/phpmyadmin/index.php",
    "/admin.php",
    "/config.json",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/cgi-bin/luci",
    "/owa/auth/logon.aspx",
    "/server-status",
]
EXTERNAL_REFERRERS = [
    (30, "https://www.google.com/"),
    (6, "https://www.bing.com/"),
    (5, "https://duckduckgo.com/"),
    (4, "https://news.ycombinator.com/"),
    (3, "https://t.co/x1Yz3kQ"),
    (3, "https://www.reddit.com/r/devops/"),
    (2, "https://github.com/mozilla-services/heka"),
    (1, "https://lobste.rs/"),
]
SITE = "https://example.org"

# Traffic by hour of day (UTC): quiet nights, a working-day hump and an evening peak.
HOUR_WEIGHTS = [2, 1.5, 1, 1, 1, 1.5, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 8, 9, 10, 9, 7, 5, 3]
DAY_WEIGHTS = [1.0, 1.05, 1.1, 1.0, 0.95, 0.7, 0.65]  # Monday..Sunday


_CUM: dict[int, tuple[list[str], list[float]]] = {}


def _pick(rng: random.Random, weighted: list[tuple[float, str]]) -> str:
    # Cumulative weights are computed once per table: choices() then bisects (fast for 1M lines).
    key = id(weighted)
    if key not in _CUM:
        values, cum, total = [], [], 0.0
        for w, v in weighted:
            total += w
            values.append(v)
            cum.append(total)
        _CUM[key] = (values, cum)
    values, cum = _CUM[key]
    return rng.choices(values, cum_weights=cum)[0]


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.06:
        return f"2001:db8:{rng.randrange(1, 0xFFFF):x}::{rng.randrange(1, 0xFFFF):x}"
    first = rng.choice([23, 31, 45, 62, 66, 77, 81, 91, 93, 104, 151, 176, 185, 188, 195, 203, 212])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _timestamps(rng: random.Random, n: int, start: datetime, days: int) -> list[datetime]:
    weights = []
    slots = []
    for d in range(days):
        day = start + timedelta(days=d)
        for h in range(24):
            slots.append(day + timedelta(hours=h))
            weights.append(HOUR_WEIGHTS[h] * DAY_WEIGHTS[day.weekday()])
    picks = rng.choices(slots, weights=weights, k=n)
    return sorted(p + timedelta(seconds=rng.random() * 3600) for p in picks)


def generate(
    n: int, *, seed: int = 42, start: datetime | None = None, days: int = 7, n_visitors: int = 1500
) -> Iterator[dict]:
    """Yield `n` true request records in time order.

    Keys: remote_addr, remote_user, time (aware datetime, whole seconds), method, uri, protocol,
    status (int), body_bytes_sent (int), http_referer, http_user_agent, request_time (float).
    """
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    visitors = []
    for _ in range(n_visitors):
        bot = rng.random() < 0.08
        visitors.append((_ip(rng), _pick(rng, BOT_AGENTS if bot else USER_AGENTS), bot))
    # A few heavy hitters (crawlers, office NATs) and a long tail.
    vcum, total = [], 0.0
    for i in range(n_visitors):
        total += 1.0 / (i + 1) ** 0.9
        vcum.append(total)
    for ts in _timestamps(rng, n, start, days):
        ip, ua, bot = rng.choices(visitors, cum_weights=vcum)[0]
        method, protocol, user = "GET", rng.choice(["HTTP/1.1", "HTTP/1.1", "HTTP/2.0"]), "-"
        referer = "-"
        r = rng.random()
        if bot and r < 0.35:
            uri = rng.choice(PROBES)
            status = 404 if rng.random() < 0.9 else 403
            method = rng.choice(["GET", "GET", "POST", "HEAD"])
        elif r < 0.30:
            uri = rng.choice(STATIC)
            status = 304 if rng.random() < 0.25 else 200
            referer = SITE + _pick(rng, PAGES)
        else:
            uri = _pick(rng, PAGES)
            if uri == "/blog/" and rng.random() < 0.7:
                uri = "/blog/" + rng.choice(BLOG_SLUGS)
            elif uri == "/search":
                uri = f"/search?q={rng.choice(['heka', 'nginx', 'polars', 'tls', 'lua', 'rotate'])}"
            elif uri == "/api/v1/items":
                uri = f"/api/v1/items?page={rng.randrange(1, 20)}"
                method = "GET" if rng.random() < 0.8 else "POST"
            elif uri in ("/login", "/signup") and rng.random() < 0.4:
                method = "POST"
            status = 200
            x = rng.random()
            if x < 0.025:
                status = 404
                uri = uri.rstrip("/") + rng.choice(["/old-page", "/index.php", "/undefined"])
            elif x < 0.04:
                status = rng.choice([301, 302])
            elif x < 0.047:
                status = rng.choice([500, 502, 502, 503, 504])
            elif method == "POST" and uri in ("/login", "/signup") and x < 0.2:
                status = rng.choice([401, 403, 422])
            if rng.random() < 0.55:
                referer = _pick(rng, EXTERNAL_REFERRERS) if rng.random() < 0.45 else SITE + _pick(rng, PAGES)
        if status == 304 or method == "HEAD" or status in (301, 302):
            size = 0 if status == 304 or method == "HEAD" else rng.randrange(150, 180)
        elif status >= 400:
            size = rng.choice([153, 162, 555, 571])
        elif uri.startswith("/static") or uri == "/favicon.ico":
            size = int(rng.lognormvariate(10.2, 0.8))
        elif uri.startswith("/api"):
            size = int(rng.lognormvariate(7.5, 0.6))
        else:
            size = int(rng.lognormvariate(9.3, 0.5))
        if status >= 500:
            rt = rng.uniform(0.5, 30.0) if status == 504 else rng.uniform(0.001, 2.0)
        elif uri.startswith("/static") or status in (304, 404):
            rt = rng.lognormvariate(-6.5, 0.7)
        elif uri.startswith("/api") or uri.startswith("/search"):
            rt = rng.lognormvariate(-2.3, 0.9)
        else:
            rt = rng.lognormvariate(-4.2, 0.8)
        yield {
            "remote_addr": ip,
            "remote_user": user,
            "time": ts.replace(microsecond=0),
            "method": method,
            "uri": uri,
            "protocol": protocol,
            "status": status,
            "body_bytes_sent": size,
            "http_referer": referer,
            "http_user_agent": ua,
            "request_time": round(min(rt, 60.0), 3),
        }


def format_line(rec: dict, *, request_time: bool = False) -> str:
    """One nginx log line for a record, in the combined format (plus ` $request_time`)."""
    t = rec["time"]
    local = f"{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year}:{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"
    line = (
        f'{rec["remote_addr"]} - {rec["remote_user"]} [{local}] "{rec["method"]} {rec["uri"]} '
        f'{rec["protocol"]}" {rec["status"]} {rec["body_bytes_sent"]} "{rec["http_referer"]}" '
        f'"{rec["http_user_agent"]}"'
    )
    if request_time:
        line += f" {rec['request_time']:.3f}"
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=22000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", default="2026-11-01", help="first day (UTC), YYYY-MM-DD")
    ap.add_argument("--visitors", type=int, default=1500, help="size of the visitor pool")
    ap.add_argument("--request-time", action="store_true", help="append $request_time to each line")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    args = ap.parse_args(argv)
    start = datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=UTC)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for rec in generate(
            args.lines, seed=args.seed, start=start, days=args.days, n_visitors=args.visitors
        ):
            out.write(format_line(rec, request_time=args.request_time) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
