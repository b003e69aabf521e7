"""`heka agg` and `heka sql` against plain-Python answers over the true records."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from datetime import timedelta

import polars as pl


def _jsonl(res) -> list[dict]:
    assert res.returncode == 0, res.stderr.decode()
    return [json.loads(line) for line in res.stdout.decode().splitlines()]


def test_count_by_status_is_the_default_metric(heka_in, corpus) -> None:
    rows = _jsonl(heka_in("agg", str(corpus.log), "--by", "status"))  # piped: JSONL by default
    assert {r["status"]: r["count"] for r in rows} == dict(Counter(r["status"] for r in corpus.records))


def test_top_urls_with_several_keys_and_metrics(heka_in, corpus) -> None:
    rows = _jsonl(
        heka_in(
            "agg",
            str(corpus.log),
            "--by",
            "request_method",
            "--by",
            "uri",
            "--count",
            "--avg",
            "request_time",
            "--max",
            "body_bytes_sent",
            "--top",
            "5",
        )
    )
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in corpus.records:
        groups[(r["method"], r["uri"].split("?", 1)[0])].append(r)
    expected = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:5]
    assert [(r["request_method"], r["uri"]) for r in rows] == [k for k, _ in expected]
    for row, (_, rs) in zip(rows, expected, strict=True):
        assert row["count"] == len(rs)
        assert abs(row["avg_request_time"] - sum(r["request_time"] for r in rs) / len(rs)) < 1e-12
        assert row["max_body_bytes_sent"] == max(r["body_bytes_sent"] for r in rs)


def test_time_buckets_keep_empty_buckets(heka_in, corpus, tmp_path) -> None:
    # Two requests three hours apart: hourly buckets must show the two empty hours in between.
    lines = corpus.log.read_text().splitlines()
    first = lines[0]
    t0 = corpus.records[0]["time"]
    later = t0 + timedelta(hours=3)
    stamp = later.strftime("%d/%b/%Y:%H:%M:%S +0000")
    second = first.split("[", 1)[0] + f"[{stamp}]" + first.split("]", 1)[1]
    sparse = tmp_path / "sparse.log"
    sparse.write_text(first + "\n" + second + "\n")
    rows = _jsonl(heka_in("agg", str(sparse), "--every", "1h", "--count"))
    assert [r["count"] for r in rows] == [1, 0, 0, 1]
    assert rows[0]["Timestamp"] == t0.replace(minute=0, second=0).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def test_hourly_counts_match(heka_in, corpus) -> None:
    rows = _jsonl(heka_in("agg", str(corpus.log), "--every", "1h", "--count", "--distinct", "remote_addr"))
    hits = Counter(r["time"].strftime("%Y-%m-%dT%H") for r in corpus.records)
    got = {r["Timestamp"][:13]: r["count"] for r in rows if r["count"]}
    assert got == dict(hits)
    keys = [r["Timestamp"] for r in rows]
    assert keys == sorted(keys) and len(keys) == len(set(keys))


def test_where_sort_and_formats(heka_in, corpus, tmp_path) -> None:
    errors = [r for r in corpus.records if r["status"] >= 500]
    res = heka_in(
        "agg",
        str(corpus.log),
        "--by",
        "status",
        "--where",
        "Fields[status] >= 500",
        "--sort",
        "status",
        "--format",
        "csv",
    )
    assert res.returncode == 0, res.stderr.decode()
    table = list(csv.DictReader(io.StringIO(res.stdout.decode())))
    expected = sorted(Counter(r["status"] for r in errors).items())
    assert [(int(r["status"]), int(r["count"])) for r in table] == expected
    out = tmp_path / "by_status.parquet"
    res = heka_in("agg", str(corpus.log), "--by", "status", "--format", "parquet", "--output", str(out))
    assert res.returncode == 0, res.stderr.decode()
    df = pl.read_parquet(out)
    assert dict(zip(df["status"].to_list(), df["count"].to_list(), strict=True)) == dict(
        Counter(r["status"] for r in corpus.records)
    )
    nowhere = tmp_path / "missing" / "by_status.parquet"
    res = heka_in("agg", str(corpus.log), "--by", "status", "--format", "parquet", "--output", str(nowhere))
    assert res.returncode == 3
    assert res.stderr.decode().strip() == f"heka: error: {nowhere}: cannot write: No such file or directory"
    res = heka_in("agg", str(corpus.log), "--by", "status", "--sort", "-status", "--format", "json")
    assert [r["status"] for r in json.loads(res.stdout)] == sorted(
        {r["status"] for r in corpus.records}, reverse=True
    )


def test_user_agent_fields_are_available(heka_in, corpus) -> None:
    rows = _jsonl(
        heka_in(
            "agg", str(corpus.log), "--by", "user_agent_os", "--where", "Fields[http_user_agent] =~ /iPhone/"
        )
    )
    n = sum(1 for r in corpus.records if "iPhone" in r["http_user_agent"])
    assert rows == [{"user_agent_os": "iPhone", "count": n}]


def test_sql(heka_in, corpus) -> None:
    rows = _jsonl(
        heka_in(
            "sql",
            "SELECT status, count(*) AS n, sum(body_bytes_sent) AS bytes FROM logs "
            "WHERE request_method = 'GET' GROUP BY status ORDER BY n DESC",
            str(corpus.log),
        )
    )
    gets = [r for r in corpus.records if r["method"] == "GET"]
    expected = Counter(r["status"] for r in gets)
    assert {r["status"]: r["n"] for r in rows} == dict(expected)
    assert [r["n"] for r in rows] == sorted(expected.values(), reverse=True)
    for r in rows:
        assert r["bytes"] == sum(x["body_bytes_sent"] for x in gets if x["status"] == r["status"])
    # Timestamp is a real datetime in SQL.
    rows = _jsonl(
        heka_in(
            "sql",
            "SELECT date_trunc('day', Timestamp) AS day, count(*) AS n FROM logs GROUP BY day ORDER BY day",
            str(corpus.jsonl),
        )
    )
    per_day = Counter(r["time"].date().isoformat() for r in corpus.records)
    assert {r["day"][:10]: r["n"] for r in rows} == dict(per_day)


def test_usage_errors_are_one_line_exit_2(heka_in, corpus) -> None:
    for args in (
        ("agg", str(corpus.log), "--by", "no_such_field"),
        ("agg", str(corpus.log), "--every", "5 minutes"),
        ("agg", str(corpus.log), "--sum", "remote_addr"),
        ("agg", str(corpus.log), "--sort", "nope"),
        ("agg", str(corpus.log), "--where", "Fields[status] >>> 3"),
        ("sql", "SELEC status FROM logs", str(corpus.log)),
        ("sql", "SELECT nope FROM logs", str(corpus.log)),
    ):
        res = heka_in(*args)
        err = res.stderr.decode()
        assert res.returncode == 2, (args, err)
        assert "Traceback" not in err
        assert err.startswith("heka: error:"), (args, err)


def test_closed_pipe_ends_quietly(corpus) -> None:
    import subprocess
    import sys

    from conftest import heka_cmd

    cmd = " ".join(f"'{a}'" for a in heka_cmd("agg", str(corpus.log), "--by", "remote_addr"))
    res = subprocess.run(
        f"{cmd} | head -n 1", shell=True, capture_output=True, timeout=120, executable="/bin/bash"
    )
    assert res.returncode == 0
    assert len(res.stdout.splitlines()) == 1
    assert b"Traceback" not in res.stderr and b"Error" not in res.stderr, res.stderr
    del sys
