"""A decoded-log cache hit needs no format sniffing, and keeps what the decode reported (units)."""

from __future__ import annotations

import pytest

from hekacli.analysis import sources

LINE = '10.0.0.{i} - - [10/Feb/2014:08:46:{s:02d} -0800] "GET /p{i} HTTP/1.1" 200 {i} 1500'


@pytest.fixture()
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HEKA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HEKA_CACHE_MIN_MB", "0")
    monkeypatch.delenv("HEKA_NO_CACHE", raising=False)
    return tmp_path


def _write(path, n=500):
    path.write_text("".join(LINE.format(i=i, s=i % 60) + "\n" for i in range(n)))


def test_warm_hit_keeps_units_of_the_decode(cache_env):
    log = cache_env / "apache.log"
    _write(log)
    choice = sources.DecoderChoice("apache", {"log_format": '%h %l %u %t "%r" %>s %b %D'})
    cold_lf, cold, _ = sources.load_log(str(log), choice)
    warm_lf, warm, _ = sources.load_log(str(log), choice)
    assert cold.units["request_time"] == warm.units["request_time"] == "us"
    assert warm.rows == cold.rows == 500
    assert warm_lf.collect().equals(cold_lf.collect())


def test_second_run_skips_sniffing_until_the_file_changes(cache_env, monkeypatch):
    log = cache_env / "access.log"
    _write(log)
    log.write_text(log.read_text().replace(" 1500\n", "\n"))  # the format (common) is sniffed
    choice = sources.DecoderChoice()
    first, info1, _ = sources.load_log(str(log), choice)
    calls = []
    real = sources.choose_decoder_factory

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(sources, "choose_decoder_factory", counting)
    second, info2, _ = sources.load_log(str(log), choice)
    assert calls == []  # answered from the cache without building a decoder
    assert info2.decoder == info1.decoder == "nginx common"
    assert second.collect().equals(first.collect())
    with log.open("a") as f:  # a changed file is sniffed (and decoded) again
        f.write(LINE.format(i=7, s=7).replace(" 1500", "") + "\n")
    third, info3, _ = sources.load_log(str(log), choice)
    assert len(calls) == 1 and info3.rows == info1.rows + 1
