"""Raw logs decoded in many chunks on two threads give the same rows and rejects as one chunk."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from hekacli.analysis import sources

GOOD = '10.0.0.{i} - - [10/Feb/2014:08:46:{s:02d} -0800] "GET /p{i} HTTP/1.1" {status} {i} "-" "ua {i}"'


def _log(n: int) -> tuple[list[str], set[int]]:
    lines, bad = [], set()
    for i in range(1, n + 1):
        if i % 97 == 0:
            lines.append(f"garbage line {i}")
            bad.add(i)
        else:
            lines.append(GOOD.format(i=i % 250, s=i % 60, status=200 + (i % 4)))
    return lines, bad


@pytest.mark.parametrize("gz", [False, True])
def test_chunks_on_threads_keep_order_and_line_numbers(tmp_path, monkeypatch, gz):
    lines, bad = _log(3000)
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / ("a.log.gz" if gz else "a.log")
    path.write_bytes(gzip.compress(data) if gz else data)
    choice = sources.DecoderChoice()

    def load(chunk: int, threads: int, columns: set[str] | None) -> tuple[pl.DataFrame, object, list]:
        monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
        monkeypatch.setattr(sources, "DECODE_THREADS", threads)
        lf, info, rejects = sources.load_log(str(path), choice, columns=columns, use_cache=False)
        return lf.collect(), info, rejects

    whole, info1, rej1 = load(1 << 30, 1, None)
    many, info2, rej2 = load(4096, 2, None)  # ~70 chunks
    assert many.equals(whole)
    assert info2.rejected == info1.rejected == len(bad)
    assert [r.line for r in rej2] == [r.line for r in rej1] == sorted(bad)[: sources.MAX_KEPT_REJECTS]
    assert all(r.text == f"garbage line {r.line}" for r in rej2)
    # only the status column asked for: same values, same rows
    status, info3, _ = load(4096, 2, {"status"})
    assert status.columns == ["status"]
    assert status["status"].to_list() == whole["status"].to_list()
    assert info3.rejected == len(bad)
    assert "request_uri" in info3.fields  # every field of the format is still known
