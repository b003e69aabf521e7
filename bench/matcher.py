"""Benchmark: message_matcher evaluations per second against hand-written Python lambdas.

Run from the repo root:  python bench/matcher.py [--n 100000] [--repeat 5]

For each case the compiled matcher and a hand-written lambda doing the same test run over the same
in-memory items (Message objects and flat-record dicts), with the same harness
(``sum(map(fn, items))``, best of --repeat, the two timed alternately). Prints evaluations/s
and the matcher/lambda time ratio.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import re2  # noqa: E402

from hekacli.matcher import compile_matcher  # noqa: E402
from hekacli.message import Field, Message, ValueType, to_flat  # noqa: E402

TYPES = ["nginx.access", "nginx.error", "x", "syslog"]
PATHS = ["/api/v1/users", "/api/v2/orders/17", "/static/app.js", "/index.html", "/api/health"]


def make_messages(n: int) -> list[Message]:
    rnd = random.Random(42)
    out = []
    for i in range(n):
        method = rnd.choice(["GET", "GET", "POST"])
        path = rnd.choice(PATHS)
        out.append(
            Message(
                timestamp=1_795_824_000_000_000_000 + i,
                type=rnd.choice(TYPES),
                logger="bench",
                severity=rnd.randint(0, 7),
                payload=f'203.0.113.{i % 250} - - "{method} {path} HTTP/1.1" {rnd.choice([200, 404, 502])}',
                hostname="web1",
                fields=[
                    Field("request", ValueType.STRING, "", [f"{method} {path} HTTP/1.1"]),
                    Field("status", ValueType.INTEGER, "", [rnd.choice([200, 200, 304, 404, 500, 502])]),
                    Field("bytes", ValueType.INTEGER, "", [rnd.randint(0, 50000)]),
                ],
            )
        )
    return out


def timed(fn: Callable[[object], bool], items: Sequence[object]) -> tuple[float, int]:
    t0 = time.perf_counter()
    hits = sum(map(fn, items))
    return time.perf_counter() - t0, hits


def compare(
    ours: Callable[[object], bool], theirs: Callable[[object], bool], items: Sequence[object], repeat: int
) -> tuple[float, float, int, int]:
    """Best rates of two predicates, timed alternately so machine load hits both alike."""
    best = [float("inf"), float("inf")]
    hits = [0, 0]
    for _ in range(repeat):
        for i, fn in enumerate((ours, theirs)):
            dt, hits[i] = timed(fn, items)
            best[i] = min(best[i], dt)
    return len(items) / best[0], len(items) / best[1], hits[0], hits[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    msgs = make_messages(args.n)
    recs = [to_flat(m) for m in msgs]
    api = r"GET /api/v[0-9]+/"
    rx = re.compile(api)
    rx2 = re2.compile(api.encode())  # bytes in, as the matcher's google-re2 fallback does

    def first(m: Message, name: str) -> object:
        f = m.find_field(name)
        return f.values[0] if f is not None and f.values else None

    cases = [
        (
            "a: Type == 'x'",
            "Type == 'x'",
            lambda m: m.type == "x",
            lambda r: r.get("Type") == "x",
        ),
        (
            "b: Type && Fields[status] >= 500 && Payload =~ /regex/",
            "Type == 'nginx.access' && Fields[status] >= 500 && Payload =~ /GET \\/api\\/v[0-9]+\\//",
            lambda m: (
                m.type == "nginx.access"
                and (s := first(m, "status")) is not None
                and s >= 500
                and rx.search(m.payload or "") is not None
            ),
            lambda r: (
                r.get("Type") == "nginx.access"
                and (s := r.get("status")) is not None
                and s >= 500
                and rx.search(r.get("Payload") or "") is not None
            ),
        ),
        (
            "c: Fields[request] =~ /^GET \\/api/ (prefix fast path)",
            "Fields[request] =~ /^GET \\/api/",
            lambda m: (v := first(m, "request")) is not None and v.startswith("GET /api"),
            lambda r: (v := r.get("request")) is not None and v.startswith("GET /api"),
        ),
    ]

    print(f"# matcher benchmark: {args.n} items, best of {args.repeat}")
    print(f"# python {platform.python_version()}, {platform.machine()}, nproc {_nproc()}")
    header = f"{'case':<58} {'items':<8} {'matcher ev/s':>13} {'lambda ev/s':>12} {'ratio':>6}"
    print(header)
    for title, expr, hand_msg, hand_rec in cases:
        m = compile_matcher(expr)
        for label, fn, hand, items in [
            ("Message", m.match_message, hand_msg, msgs),
            ("record", m.match_record, hand_rec, recs),
        ]:
            ours, theirs, hits, hand_hits = compare(fn, hand, items, args.repeat)
            assert hits == hand_hits, (title, label, hits, hand_hits)
            print(f"{title:<58} {label:<8} {ours:>13,.0f} {theirs:>12,.0f} {theirs / ours:>6.2f}")

    # What the RE2 -> re translation buys: the same regex searched with google-re2.
    payloads = [m.payload for m in msgs]
    py_rate, re2_rate, _, _ = compare(
        lambda s: rx.search(s) is not None,
        lambda s: rx2.search(s.encode("utf-8", "surrogateescape")) is not None,
        payloads,
        args.repeat,
    )
    print(
        f"{'regex alone: Python re (translated) vs google-re2':<58} {'str':<8} {py_rate:>13,.0f} "
        f"{re2_rate:>12,.0f} {re2_rate / py_rate:>6.2f}"
    )
    t0 = time.perf_counter()
    for i in range(200):
        expr = f"Type == 'nginx.access' && Fields[status] >= {i} && Payload =~ /GET \\/api{i}/"
        compile_matcher(expr).match_message  # noqa: B018 - generated on first access
    per = (time.perf_counter() - t0) / 200 * 1e6
    print(f"# compile: {per:,.0f} us per new expression (parse + regex + codegen)")
    print("# ratio = matcher time / lambda time (1.00 = as fast as the hand-written lambda)")


def _nproc() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
