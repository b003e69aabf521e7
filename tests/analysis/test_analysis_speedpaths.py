"""`heka report --json` on the inputs that steer its shortcuts, checked against plain-Python counts.

The report groups by request URI and cuts the query string once per distinct URI when URIs repeat, and
per record when they hardly do; referring sites likewise. Paths reached through several URIs, sites
reached through several referrers, 404s and other answers on one path, records without some fields and
days before 1970 are all here, in both regimes and in the three ways a path can arrive (`uri`,
`request_uri`, or only `request`).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

TOP = 5
STATIC_EXT = {"css", "js", "png"}  # the extensions used below (all in the report's static list)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
# (browser, OS) by the decoder spec §3 rules, worked out by hand; None = no user agent logged.
AGENTS = {
    CHROME: ("Chrome", "Windows 10"),
    IPHONE: ("Safari", "iPhone"),
    FIREFOX: ("Firefox", "Linux"),
    "curl/8.5.0": ("Unknown", "Unknown"),
    None: ("Unknown", "Unknown"),
}
FEW_URIS = [
    "/",
    "/about",
    "/search?q=heka",
    "/search?q=lua",
    "/search?q=tls",
    "/app.js",
    "/app.js?v=2",
    "/site.CSS",
    "/img/logo.png?w=64",
    "/missing",
    "/missing?x=1",
    "/docs/",
    "/docs/?page=2",
]
FEW_REFERRERS = [
    None,
    "-",
    "https://example.com/blog/",
    "https://example.com/",
    "HTTPS://EXAMPLE.COM/news?id=1",
    "https://www.google.com/",
    "http://news.example.org:8080/item?id=7",
    "android-app://com.google/",
]
START = datetime(1969, 12, 30, 21, tzinfo=UTC)  # the log starts before 1970


def _records(n: int, many: bool, seed: int) -> list[dict]:
    rng = random.Random(seed)
    hosts = [f"192.0.2.{i}" for i in range(1, 40)] + [None]
    out = []
    for i in range(n):
        if many:  # (nearly) every URI and referrer its own: the per-record way
            uri = f"/p{i % 7}{rng.choice(['', '.js'])}?id={i}"
            ref = rng.choice([None, f"https://s{i % 5}.example/{i}", f"https://S{i % 5}.example/x?{i}"])
        else:
            uri = rng.choice(FEW_URIS)
            ref = rng.choice(FEW_REFERRERS)
        out.append(
            {
                "time": START + timedelta(seconds=rng.randrange(0, 3 * 86400)),
                "remote_addr": rng.choice(hosts),
                "http_user_agent": rng.choice(list(AGENTS)),
                "request_uri": uri,
                "status": rng.choice([200, 200, 200, 404, 304, 500]),
                "body_bytes_sent": rng.randrange(0, 50_000),
                "http_referer": ref,
            }
        )
    return out


def _write(records: list[dict], path_field: str, dest) -> None:
    with dest.open("w", encoding="utf-8") as f:
        for r in records:
            row = {k: v for k, v in r.items() if k not in ("time", "request_uri") and v is not None}
            row["Timestamp"] = r["time"].strftime("%Y-%m-%dT%H:%M:%SZ")
            if path_field == "request":
                row["request"] = f"GET {r['request_uri']} HTTP/1.1"
            elif path_field == "uri":
                row["uri"] = r["request_uri"].split("?", 1)[0]
            else:
                row["request_uri"] = r["request_uri"]
            f.write(json.dumps(row) + "\n")


def _path(r: dict) -> str:
    return r["request_uri"].split("?", 1)[0]


def _is_static(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in STATIC_EXT


def _visitor(r: dict) -> tuple:
    return (r["remote_addr"], r["time"].date(), r["http_user_agent"])


def _real_referrer(r: dict) -> bool:
    return r["http_referer"] not in (None, "-", "")


def _site(r: dict) -> str | None:
    ref = r["http_referer"]
    return urlsplit(ref).hostname if "://" in ref and ref[0].isalpha() else None


def _top(records: list[dict], key) -> tuple[list[tuple], int]:
    groups: dict = defaultdict(list)
    for r in records:
        k = key(r)
        if k is not None:
            groups[k].append(r)
    rows = [
        (k, len(rs), len({_visitor(r) for r in rs}), sum(r["body_bytes_sent"] for r in rs))
        for k, rs in groups.items()
    ]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return rows[:TOP], len(groups)


def _panel(report: dict, pid: str) -> tuple[list[tuple], int]:
    panel = next(p for p in report["panels"] if p["id"] == pid)
    return [(r["key"], r["hits"], r["visitors"], r["bytes"]) for r in panel["rows"]], panel["total"]


@pytest.fixture(scope="module", params=[False, True], ids=["few-distinct", "many-distinct"])
def records(request) -> list[dict]:
    return _records(1200 if not request.param else 600, request.param, seed=7)


@pytest.mark.parametrize("path_field", ["request_uri", "request", "uri"])
def test_panels_match_plain_counts(heka_in, tmp_path, records, path_field) -> None:
    log = tmp_path / "records.jsonl"
    _write(records, path_field, log)
    res = heka_in("report", str(log), "--json", "--top", str(TOP))
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)

    found = [r for r in records if r["status"] != 404]
    assert _panel(report, "requests") == _top([r for r in found if not _is_static(_path(r))], _path)
    assert _panel(report, "static") == _top([r for r in found if _is_static(_path(r))], _path)
    assert _panel(report, "not_found") == _top([r for r in records if r["status"] == 404], _path)
    assert _panel(report, "hosts") == _top(records, lambda r: r["remote_addr"])
    assert _panel(report, "os") == _top(records, lambda r: AGENTS[r["http_user_agent"]][1])
    assert _panel(report, "browsers") == _top(records, lambda r: AGENTS[r["http_user_agent"]][0])
    refs = [r for r in records if _real_referrer(r)]
    assert _panel(report, "referrers") == _top(refs, lambda r: r["http_referer"])
    assert _panel(report, "referring_sites") == _top(refs, _site)

    ov = report["overview"]
    paths = {_path(r) for r in records}
    assert ov["unique_files"] == len({p for p in paths if not _is_static(p)})
    assert ov["unique_static_files"] == len({p for p in paths if _is_static(p)})
    assert ov["unique_not_found"] == len({_path(r) for r in records if r["status"] == 404})
    assert ov["unique_referrers"] == len({r["http_referer"] for r in refs})
    assert ov["unique_visitors"] == len({_visitor(r) for r in records})


def test_days_and_hours_before_1970(heka_in, tmp_path, records) -> None:
    log = tmp_path / "records.jsonl"
    _write(records, "request_uri", log)
    res = heka_in("report", str(log), "--json")
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    days = sorted({r["time"].date() for r in records})
    assert days[0].year == 1969
    per_day = next(p for p in report["panels"] if p["id"] == "visitors")["rows"]
    assert [row["key"] for row in per_day] == [d.isoformat() for d in days]
    for row, day in zip(per_day, days, strict=True):
        on_day = [r for r in records if r["time"].date() == day]
        assert (row["hits"], row["visitors"]) == (len(on_day), len({_visitor(r) for r in on_day}))
    per_hour = next(p for p in report["panels"] if p["id"] == "visit_times")["rows"]
    for hour, row in enumerate(per_hour):
        at = [r for r in records if r["time"].hour == hour]
        assert (row["hits"], row["visitors"]) == (len(at), len({_visitor(r) for r in at}))


@pytest.mark.parametrize("path_field", ["request_uri", "request", "uri"])
def test_agg_by_path_matches_plain_counts(heka_in, tmp_path, records, path_field) -> None:
    # `agg --by uri` groups by request URI and cuts each distinct one when that is exact (counts, integer
    # sums, minimums, maximums); the answer must be the per-path one either way.
    log = tmp_path / "records.jsonl"
    _write(records, path_field, log)
    metrics = ["--count", "--sum", "body_bytes_sent", "--min", "body_bytes_sent", "--max", "body_bytes_sent"]
    res = heka_in("agg", str(log), "--by", "uri", "--by", "status", *metrics, "-f", "jsonl")
    assert res.returncode == 0, res.stderr.decode()
    got = {(r["uri"], r["status"]): r for r in map(json.loads, res.stdout.decode().splitlines())}
    groups: dict = defaultdict(list)
    for r in records:
        groups[(_path(r), r["status"])].append(r["body_bytes_sent"])
    assert set(got) == set(groups)
    for key, sizes in groups.items():
        row = got[key]
        assert (row["count"], row["sum_body_bytes_sent"]) == (len(sizes), sum(sizes))
        assert (row["min_body_bytes_sent"], row["max_body_bytes_sent"]) == (min(sizes), max(sizes))

    res = heka_in("agg", str(log), "--by", "uri", "--every", "1d", "-f", "jsonl")
    assert res.returncode == 0, res.stderr.decode()
    per_day = defaultdict(int)
    for r in records:
        per_day[(r["time"].strftime("%Y-%m-%dT00:00:00.000000000Z"), _path(r))] += 1
    rows = [json.loads(line) for line in res.stdout.decode().splitlines()]
    assert {(r["Timestamp"], r["uri"]): r["count"] for r in rows} == per_day
    assert [(r["Timestamp"], r["uri"]) for r in rows] == sorted(per_day)  # time, then path


def test_request_uri_null_in_every_record(heka_in, tmp_path) -> None:
    # JSON Lines where the field is null throughout read it as the Null type: still paths (none) to
    # count, not an internal error.
    log = tmp_path / "nulls.jsonl"
    log.write_text('{"request_uri": null, "status": 404}\n{"request_uri": null, "status": 200}\n')
    res = heka_in("report", str(log), "--json")
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["overview"]["unique_files"] == 0
    assert _panel(report, "requests") == ([], 0)
    res = heka_in("agg", str(log), "--by", "uri", "-f", "jsonl")
    assert res.returncode == 0, res.stderr.decode()
    assert [json.loads(x) for x in res.stdout.decode().splitlines()] == [{"uri": None, "count": 2}]
