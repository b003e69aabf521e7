"""`heka report --json`: every panel checked against plain-Python counts over the true records."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from urllib.parse import urlsplit

import pytest
from conftest import SAMPLE_LOGS, run_heka

TOP = 10
STATIC_EXT = {"css", "js", "svg", "webp", "ico", "woff2", "txt"}  # of the generator's extensions


def _ua_truth(ua: str) -> tuple[str, str]:
    """(browser family, OS) of each agent the generator uses, worked out by hand from the decoder
    spec §3 rules (not by running the classifier)."""
    if (
        "Googlebot" in ua
        or "bingbot" in ua
        or ua.startswith(("curl/", "python-requests/", "Go-http-client/"))
        or "zgrab" in ua
    ):
        return "Unknown", "Unknown"
    if "Trident/7.0" in ua:
        return "MSIE", "Windows 7"
    if ua.startswith("Opera/9.80"):
        return "Opera", "Windows 7"
    if "iPhone" in ua:
        return "Safari", "iPhone"
    if "iPad" in ua:
        return "Safari", "iPad"
    if "Android" in ua:
        return "Chrome", "Android"
    if "Ubuntu" in ua:
        return "Firefox", "Linux"
    if "Macintosh" in ua:
        return ("Chrome" if "Chrome/" in ua else "Safari"), "Macintosh"
    if "Windows NT 10.0" in ua:
        return ("Firefox" if "Firefox/" in ua else "Chrome"), "Windows 10"
    if "Windows NT 6.1" in ua:
        return "Chrome", "Windows 7"
    raise AssertionError(f"test table misses {ua!r}")


def _is_static(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in STATIC_EXT


def _visitor(r: dict) -> tuple:
    return (r["remote_addr"], r["time"].date(), r["http_user_agent"])


def _path(r: dict) -> str:
    return r["uri"].split("?", 1)[0]


def _quantile(sorted_values: list[float], q: float) -> float:
    # Linear interpolation between closest ranks (numpy's default, polars "linear").
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _top(records: list[dict], key, n: int = TOP, with_time: bool = False) -> tuple[list[dict], int]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        k = key(r)
        if k is not None:
            groups[k].append(r)
    rows = []
    for k, rs in groups.items():
        row = {
            "key": k,
            "hits": len(rs),
            "visitors": len({_visitor(r) for r in rs}),
            "bytes": sum(r["body_bytes_sent"] for r in rs),
        }
        if with_time:
            row["avg_time"] = sum(r["request_time"] for r in rs) / len(rs)
            row["max_time"] = max(r["request_time"] for r in rs)
        rows.append(row)
    rows.sort(key=lambda x: (-x["hits"], x["key"]))
    return rows[:n], len(groups)


@pytest.fixture(scope="module")
def report(corpus) -> dict:
    res = run_heka("report", str(corpus.log), "--json", "--top", str(TOP))
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


def _panel(report: dict, pid: str) -> dict:
    return next(p for p in report["panels"] if p["id"] == pid)


def _check_rows(got: dict, expected: list[dict], total: int, valid: int) -> None:
    assert got["total"] == total
    assert len(got["rows"]) == len(expected)
    for g, e in zip(got["rows"], expected, strict=True):
        assert g["key"] == e["key"]
        assert g["hits"] == e["hits"]
        assert g["visitors"] == e["visitors"]
        assert g["bytes"] == e["bytes"]
        assert g["hits_pct"] == pytest.approx(e["hits"] * 100 / valid, abs=0.006)
        if "avg_time" in e:
            assert g["avg_time"] == pytest.approx(e["avg_time"], rel=1e-9)
            assert g["max_time"] == pytest.approx(e["max_time"])


def test_overview(report, corpus) -> None:
    recs = corpus.records
    ov = report["overview"]
    assert ov["total_requests"] == len(recs) == ov["valid_requests"]
    assert ov["failed_requests"] == 0
    assert ov["unique_visitors"] == len({_visitor(r) for r in recs})
    assert ov["bandwidth"] == sum(r["body_bytes_sent"] for r in recs)
    assert ov["unique_files"] == len({_path(r) for r in recs if not _is_static(_path(r))})
    assert ov["unique_static_files"] == len({_path(r) for r in recs if _is_static(_path(r))})
    assert ov["unique_not_found"] == len({_path(r) for r in recs if r["status"] == 404})
    assert ov["unique_referrers"] == len({r["http_referer"] for r in recs if r["http_referer"] != "-"})
    assert ov["log_size"] == corpus.log.stat().st_size
    assert ov["first"] == min(r["time"] for r in recs).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ov["last"] == max(r["time"] for r in recs).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ov["sources"][0]["decoder"] == "nginx combined + $request_time"


def test_visitors_per_day(report, corpus) -> None:
    recs = corpus.records
    days = sorted({r["time"].date() for r in recs})
    rows = _panel(report, "visitors")["rows"]
    assert [r["key"] for r in rows] == [d.isoformat() for d in days]
    for row, day in zip(rows, days, strict=True):
        on_day = [r for r in recs if r["time"].date() == day]
        assert row["hits"] == len(on_day)
        assert row["visitors"] == len({_visitor(r) for r in on_day})
        assert row["bytes"] == sum(r["body_bytes_sent"] for r in on_day)


def test_requests_static_and_404(report, corpus) -> None:
    recs = corpus.records
    valid = len(recs)
    pages = [r for r in recs if not _is_static(_path(r)) and r["status"] != 404]
    rows, total = _top(pages, _path, with_time=True)
    _check_rows(_panel(report, "requests"), rows, total, valid)
    static = [r for r in recs if _is_static(_path(r)) and r["status"] != 404]
    rows, total = _top(static, _path, with_time=True)
    _check_rows(_panel(report, "static"), rows, total, valid)
    rows, total = _top([r for r in recs if r["status"] == 404], _path)
    _check_rows(_panel(report, "not_found"), rows, total, valid)


def test_hosts(report, corpus) -> None:
    rows, total = _top(corpus.records, lambda r: r["remote_addr"])
    _check_rows(_panel(report, "hosts"), rows, total, len(corpus.records))


def test_operating_systems_and_browsers(report, corpus) -> None:
    recs = corpus.records
    rows, total = _top(recs, lambda r: _ua_truth(r["http_user_agent"])[1])
    _check_rows(_panel(report, "os"), rows, total, len(recs))
    rows, total = _top(recs, lambda r: _ua_truth(r["http_user_agent"])[0])
    _check_rows(_panel(report, "browsers"), rows, total, len(recs))


def test_visit_times(report, corpus) -> None:
    hits = Counter(r["time"].hour for r in corpus.records)
    rows = _panel(report, "visit_times")["rows"]
    assert [r["key"] for r in rows] == [f"{h:02d}:00" for h in range(24)]
    assert [r["hits"] for r in rows] == [hits.get(h, 0) for h in range(24)]
    for h, row in enumerate(rows):
        assert row["visitors"] == len({_visitor(r) for r in corpus.records if r["time"].hour == h})


def test_referrers_and_sites(report, corpus) -> None:
    recs = [r for r in corpus.records if r["http_referer"] != "-"]
    rows, total = _top(recs, lambda r: r["http_referer"])
    _check_rows(_panel(report, "referrers"), rows, total, len(corpus.records))
    rows, total = _top(recs, lambda r: urlsplit(r["http_referer"]).hostname)
    _check_rows(_panel(report, "referring_sites"), rows, total, len(corpus.records))


def test_status_codes(report, corpus) -> None:
    by_code = Counter(r["status"] for r in corpus.records)
    by_class = Counter(r["status"] // 100 for r in corpus.records)
    rows = _panel(report, "status_codes")["rows"]
    groups = [r for r in rows if r["level"] == 0]
    assert [r["hits"] for r in groups] == [by_class[c] for c in sorted(by_class)]
    assert [r["key"][:3] for r in groups] == [f"{c}xx" for c in sorted(by_class)]
    codes = {int(r["key"]): r["hits"] for r in rows if r["level"] == 1}
    assert codes == dict(by_code)


def test_time_served(report, corpus) -> None:
    values = sorted(r["request_time"] for r in corpus.records)
    panel = _panel(report, "time_served")
    pct = {p["key"]: p["value"] for p in panel["percentiles"]}
    for key, q in (("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert pct[key] == pytest.approx(_quantile(values, q), rel=1e-9)
    assert pct["max"] == pytest.approx(values[-1])
    assert pct["mean"] == pytest.approx(sum(values) / len(values))
    bounds = [0.001, 0.01, 0.1, 0.5, 1.0, 5.0, math.inf]
    expected, lower = [], -math.inf
    for upper in bounds:
        expected.append(sum(1 for v in values if lower <= v < upper))
        lower = upper
    assert [r["hits"] for r in panel["rows"]] == expected


def test_plain_combined_log_has_no_time_panel(heka_in, corpus) -> None:
    res = heka_in("report", str(corpus.plain_combined), "--json")
    assert res.returncode == 0, res.stderr.decode()
    rep = json.loads(res.stdout)
    assert rep["overview"]["sources"][0]["decoder"] == "nginx combined"
    assert "time_served" not in {p["id"] for p in rep["panels"]}
    assert any("request time" in n for n in rep["notes"])
    assert rep["overview"]["valid_requests"] == len(corpus.records)


def test_rejected_lines_are_counted_and_named(heka_in, corpus, tmp_path) -> None:
    bad = tmp_path / "mixed.log"
    lines = corpus.log.read_text().splitlines()[:200]
    lines.insert(100, "this is not an access log line")
    lines.insert(150, '1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1 "-" "x" 0.1')
    bad.write_text("\n".join(lines) + "\n")
    res = heka_in("report", str(bad), "--json")
    assert res.returncode == 1
    rep = json.loads(res.stdout)
    assert rep["overview"]["failed_requests"] == 2
    assert rep["overview"]["valid_requests"] == 200
    err = res.stderr.decode()
    assert f"{bad}:101:" in err and f"{bad}:151:" in err
    assert "Traceback" not in err


def test_a_log_in_another_format_is_a_clear_error(tmp_path) -> None:
    other = tmp_path / "syslog.log"
    other.write_text("Nov 28 00:42:17 host sshd[123]: Accepted publickey for root\n" * 5)
    res = run_heka("report", str(other))
    assert res.returncode == 1
    err = res.stderr.decode().strip()
    assert err.startswith(f"heka: error: {other}:1: not an nginx combined access log")
    assert "--log-format" in err and len(err.splitlines()) == 1


def test_terminal_report_of_the_bundled_sample() -> None:
    # The README's quick start: every panel title appears, with bars and the daily sparkline.
    res = run_heka("report", str(SAMPLE_LOGS / "nginx" / "access.log"), env={"COLUMNS": "160"})
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    for title in (
        "heka report",
        "Unique visitors per day",
        "Requested files (URLs)",
        "Static requests",
        "Not found URLs (404s)",
        "Visitor hostnames and IPs",
        "Operating systems",
        "Browsers",
        "Visit times",
        "Referrer URLs",
        "Referring sites",
        "HTTP status codes",
        "Time served",
    ):
        assert title in out, title
    assert "█" in out and any(ch in out for ch in "▁▂▃▄▅▆▇")
    assert "\x1b[" not in out  # NO_COLOR (set by run_heka) and a pipe: no escape codes


def test_records_without_access_log_fields(heka_in, tmp_path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    res = heka_in("report", str(other), "--json")
    assert res.returncode == 0, res.stderr.decode()
    rep = json.loads(res.stdout)
    assert rep["overview"]["valid_requests"] == 3
    assert rep["panels"] == []
    assert any("none of the access-log fields" in n for n in rep["notes"])


def test_apache_microseconds_are_reported_in_seconds(heka_in, tmp_path) -> None:
    micros = [1000, 250_000, 2_000_000, 40_000]
    log = tmp_path / "apache.log"
    log.write_text(
        "".join(
            f'192.0.2.{i} - - [02/Nov/2026:09:14:4{i} +0000] "GET /p{i} HTTP/1.1" 200 12 {us}\n'
            for i, us in enumerate(micros)
        )
    )
    res = heka_in("report", str(log), "--apache", '%h %l %u %t "%r" %>s %b %D', "--json")
    assert res.returncode == 0, res.stderr.decode()
    panel = next(p for p in json.loads(res.stdout)["panels"] if p["id"] == "time_served")
    pct = {p["key"]: p["value"] for p in panel["percentiles"]}
    assert pct["max"] == pytest.approx(2.0)
    assert pct["p50"] == pytest.approx(_quantile(sorted(us / 1e6 for us in micros), 0.5))
