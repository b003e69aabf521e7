#!/usr/bin/env python3
"""Generate an nginx combined access log quickly (for benchmarks; deterministic per seed).

    python bench/gen_access_log.py --lines 1000000 --seed 1 > /tmp/access.log
    python bench/gen_access_log.py --lines 1000 --tricky 0.05   # with escapes, IPv6, odd spacing

Lines look like real traffic: a skewed pool of clients and pages, realistic status and size mixes,
one to a few requests per second. `--tricky` mixes in lines that exercise the slow paths: nginx
``\\xHH`` escapes in the user agent and request, IPv6 and hostname clients, doubled spaces.
Other benchmarks import `generate_lines()`.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "-",
]
PAGES = [
    "/",
    "/index.html",
    "/about",
    "/blog/2026/11/heka-is-back",
    "/api/v1/items?page=2&sort=asc",
    "/static/app.js",
    "/static/style.css",
    "/images/logo.png",
    "/favicon.ico",
    "/search?q=log+parser",
    "/wp-login.php",
    "/.env",
    "/api/v1/items/42",
    "/feed.xml",
]
METHODS = ["GET"] * 12 + ["POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]
STATUSES = [200] * 30 + [304] * 6 + [301, 302, 404, 404, 404, 403, 500, 502, 503]
REFERERS = ["-", "-", "-", "https://www.google.com/", "https://example.com/", "https://example.com/blog/"]


def _clf(t: datetime) -> str:
    return f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year}:{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"


def generate_lines(
    n: int, seed: int = 1, tricky: float = 0.0, start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
) -> Iterator[str]:
    """`n` combined-format lines (no newline)."""
    rnd = random.Random(seed)
    clients = [
        f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
        for _ in range(2000)
    ]
    t = start
    for _ in range(n):
        t += timedelta(seconds=rnd.choice((0, 0, 1, 1, 2)))
        ip = clients[min(int(rnd.paretovariate(1.2)) - 1, len(clients) - 1)]
        method, page, status = rnd.choice(METHODS), rnd.choice(PAGES), rnd.choice(STATUSES)
        size = 0 if status in (304, 204) else rnd.randint(120, 250_000)
        ua, ref, user, sep = rnd.choice(AGENTS), rnd.choice(REFERERS), "-", " "
        if tricky and rnd.random() < tricky:
            kind = rnd.randrange(5)
            if kind == 0:
                ua = "Mozilla/5.0 \\x22quoted\\x22 \\x5Cback\\x5C caf\\xC3\\xA9"
            elif kind == 1:
                ip = rnd.choice(["::1", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "host.example.com"])
            elif kind == 2:
                sep = "  "
            elif kind == 3:
                page = "/odd\\x09path?x=\\x22y\\x22"
            else:
                user = "alice"
        yield (f'{ip} - {user} [{_clf(t)}] "{method} {page} HTTP/1.1" {status}{sep}{size} "{ref}" "{ua}"')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--tricky", type=float, default=0.0, help="fraction of lines with escapes/IPv6/odd spacing"
    )
    ap.add_argument("--output", "-o", help="file to write (default stdout)")
    args = ap.parse_args()
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        buf: list[str] = []
        for line in generate_lines(args.lines, args.seed, args.tricky):
            buf.append(line)
            if len(buf) >= 10_000:
                out.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            out.write("\n".join(buf) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
