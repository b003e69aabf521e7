"""The same records as a raw log, .gz, JSONL, Parquet and a framed Heka stream give the same answers."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import pytest
from conftest import run_heka

AGG = (
    "--by",
    "status",
    "--count",
    "--sum",
    "body_bytes_sent",
    "--p95",
    "request_time",
    "--distinct",
    "remote_addr",
    "--format",
    "jsonl",
)


def _rows(res) -> list[dict]:
    assert res.returncode == 0, res.stderr.decode()
    return [json.loads(line) for line in res.stdout.decode().splitlines()]


def _expected(records: list[dict]) -> dict[int, dict]:
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["status"]].append(r)
    out = {}
    for status, rs in groups.items():
        times = sorted(r["request_time"] for r in rs)
        pos = (len(times) - 1) * 0.95
        lo, hi = math.floor(pos), math.ceil(pos)
        out[status] = {
            "count": len(rs),
            "sum_body_bytes_sent": sum(r["body_bytes_sent"] for r in rs),
            "p95_request_time": times[lo] + (times[hi] - times[lo]) * (pos - lo),
            "distinct_remote_addr": len({r["remote_addr"] for r in rs}),
        }
    return out


@pytest.mark.parametrize("form", ["log", "log_gz", "jsonl", "parquet", "heka"])
def test_every_input_form_agrees_with_the_truth(heka_in, corpus, form) -> None:
    path = getattr(corpus, form)
    rows = _rows(heka_in("agg", str(path), *AGG))
    expected = _expected(corpus.records)
    got = {r["status"]: r for r in rows}
    assert set(got) == set(expected)
    for status, exp in expected.items():
        g = got[status]
        assert g["count"] == exp["count"]
        assert g["sum_body_bytes_sent"] == exp["sum_body_bytes_sent"]
        assert g["p95_request_time"] == pytest.approx(exp["p95_request_time"], rel=1e-9)
        assert g["distinct_remote_addr"] == exp["distinct_remote_addr"]
    # Sorted by the first metric, biggest first.
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12)
    return a == b


def test_reports_agree_across_forms(heka_in, corpus) -> None:
    reports = {}
    for form in ("log", "jsonl", "parquet", "heka"):
        res = heka_in("report", str(getattr(corpus, form)), "--json")
        assert res.returncode == 0, res.stderr.decode()
        rep = json.loads(res.stdout)
        reports[form] = rep
    base = reports["log"]["panels"]
    for form, rep in reports.items():
        # Floats (means, percentiles) may differ in the last bits with the summation order.
        assert _same(rep["panels"], base), form
        assert rep["overview"]["unique_visitors"] == reports["log"]["overview"]["unique_visitors"]


def test_several_files_glob_and_stdin(heka_in, corpus) -> None:
    n = len(corpus.records)
    # The plain file and its rotated .gz copy through a glob: everything counted twice.
    rows = _rows(heka_in("agg", str(corpus.log.parent / "access.log*"), "--count", "--format", "jsonl"))
    assert rows == [{"count": 2 * n}]
    # Mixed kinds in one command.
    rows = _rows(heka_in("agg", str(corpus.jsonl), str(corpus.heka), "--count", "--format", "jsonl"))
    assert rows == [{"count": 2 * n}]
    # Raw log, JSONL, gzip and a Heka stream on stdin (the first through a real pipe).
    for i, data in enumerate(
        (
            corpus.log.read_bytes(),
            corpus.jsonl.read_bytes(),
            corpus.log_gz.read_bytes(),
            corpus.heka.read_bytes(),
        )
    ):
        runner = run_heka if i == 0 else heka_in
        rows = _rows(runner("agg", "-", "--by", "status", "--format", "jsonl", input=data))
        assert {r["status"]: r["count"] for r in rows} == dict(Counter(r["status"] for r in corpus.records))


def test_missing_file_and_bad_inputs(heka_in, corpus, tmp_path) -> None:
    res = run_heka("agg", str(tmp_path / "nope.log"), "--count")
    assert res.returncode == 3
    assert res.stderr.decode().strip() == f"heka: error: {tmp_path / 'nope.log'}: no such file"
    res = heka_in("agg", str(tmp_path / "*.nothing"), "--count")
    assert res.returncode == 3
    # A JSONL file with one broken line: the line is named and counted, the rest is used.
    broken = tmp_path / "broken.jsonl"
    lines = corpus.jsonl.read_text().splitlines()[:50]
    lines[9] = '{"status": 200, "oops'
    broken.write_text("\n".join(lines) + "\n")
    res = heka_in("agg", str(broken), "--count", "--format", "jsonl")
    assert res.returncode == 1
    assert json.loads(res.stdout) == {"count": 49}
    assert f"{broken}:10: bad JSON" in res.stderr.decode()
    # A damaged Heka stream: the corrupt bytes are counted as dropped, the other records are kept.
    data = bytearray(corpus.heka.read_bytes())
    cut = data.index(b"\x1e", 1000)
    damaged = tmp_path / "damaged.heka"
    damaged.write_bytes(bytes(data[: cut + 3]) + b"garbage" + bytes(data[cut + 3 :]))
    res = heka_in("agg", str(damaged), "--count", "--format", "jsonl")
    assert res.returncode == 1
    count = json.loads(res.stdout)["count"]
    assert len(corpus.records) - 2 <= count < len(corpus.records)
    assert "dropped" in res.stderr.decode()
