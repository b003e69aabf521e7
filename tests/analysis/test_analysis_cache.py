"""The decoded-log cache: a repeated query gives the same answer without decoding; any change is a miss."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def cache_env(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HEKA_CACHE_DIR", str(cache))
    monkeypatch.setenv("HEKA_CACHE_MIN_MB", "0")  # the test logs are small
    monkeypatch.delenv("HEKA_NO_CACHE", raising=False)
    return cache


def _entries(cache) -> list:
    return (
        sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith("."))
        if cache.exists()
        else []
    )


def _counts(res) -> dict:
    assert res.returncode in (0, 1), res.stderr.decode()
    return {r["status"]: r["count"] for r in map(json.loads, res.stdout.decode().splitlines())}


def test_second_run_is_served_from_the_cache(heka_in, corpus, cache_env, tmp_path) -> None:
    log = tmp_path / "access.log"
    lines = corpus.log.read_text().splitlines()
    lines.insert(10, "garbage line")
    log.write_text("\n".join(lines) + "\n")
    first = heka_in("agg", str(log), "--by", "status")
    assert first.returncode == 1 and f"{log}:11:" in first.stderr.decode()
    (entry,) = _entries(cache_env)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["rows"] == len(corpus.records) and meta["rejected"] == 1
    # Prove the second run reads the cache: damage the decoder input it would otherwise need... by
    # checking the entry is used (its use time moves) and that the answer and warnings are identical.
    before = (entry / "meta.json").stat().st_mtime_ns
    second = heka_in("agg", str(log), "--by", "status")
    assert second.stdout == first.stdout
    assert second.returncode == 1 and second.stderr == first.stderr
    assert (entry / "meta.json").stat().st_mtime_ns >= before
    assert _entries(cache_env) == [entry]
    # Other commands reuse the same entry (it holds every decoded column).
    rep = heka_in("report", str(log), "--json")
    assert json.loads(rep.stdout)["overview"]["failed_requests"] == 1
    assert _entries(cache_env) == [entry]


def test_a_changed_file_or_format_is_a_miss(heka_in, corpus, cache_env, tmp_path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(corpus.log.read_bytes())
    base = _counts(heka_in("agg", str(log), "--by", "status"))
    with log.open("a") as f:  # the log grows (same inode, new size and mtime)
        f.write(corpus.log.read_text().splitlines()[0] + "\n")
    grown = _counts(heka_in("agg", str(log), "--by", "status"))
    first_status = corpus.records[0]["status"]
    assert grown[first_status] == base[first_status] + 1
    assert len(_entries(cache_env)) == 2
    # Another format for the same file is another entry (here: the plain combined format).
    heka_in("agg", str(log), "--by", "status", "--nginx")
    assert len(_entries(cache_env)) == 3


def test_no_cache_option(heka_in, corpus, cache_env) -> None:
    res = heka_in("agg", str(corpus.log), "--by", "status", "--no-cache")
    assert res.returncode == 0
    assert _entries(cache_env) == []
