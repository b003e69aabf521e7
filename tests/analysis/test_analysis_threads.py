"""Raw logs decoded in many chunks on two threads give the same rows and rejects as one chunk."""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from hekacli.parsers.core import line_chunks

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


def test_lines_longer_than_a_chunk_and_reused_buffers(tmp_path, monkeypatch):
    """Lines longer than a chunk (read on into the same buffer), many chunks on two threads with
    reused buffers, no newline at the end: the same rows as one chunk. (Whether a buffer still in
    use is written again depends on thread timing here; the next test checks that contract
    directly.)"""
    lines, _ = _log(1500)
    for i in range(0, len(lines), 40):
        lines[i] = lines[i].replace('"ua ', '"' + "u" * (10_000 + i) + " ")  # each spans several chunks
    path = tmp_path / "long.log"
    path.write_bytes(("\n".join(lines)).encode())  # and no newline at the end
    choice = sources.DecoderChoice()

    def load(chunk: int, threads: int) -> pl.DataFrame:
        monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
        monkeypatch.setattr(sources, "DECODE_THREADS", threads)
        return sources.load_log(str(path), choice, use_cache=False)[0].collect()

    whole = load(1 << 30, 1)
    assert whole.height == 1500 - len([i for i in range(1, 1501) if i % 97 == 0])
    assert whole["http_user_agent"].str.len_chars().max() > 10_000
    for chunk in (4096, 9000):
        assert load(chunk, 2).equals(whole)


@pytest.mark.parametrize("ring", [0, 2, 3, 4])  # 0: a buffer of its own for every chunk
def test_a_chunk_buffer_is_written_again_only_ring_chunks_later(ring):
    """`line_chunks`' contract, checked directly: when chunk n is handed out, the `ring - 1` chunks
    before it are untouched, also across lines longer than a chunk; the chunks join up to the input."""
    import io

    rows = [("x" * (n % 7 * 3000 + 5)) for n in range(200)]  # many lines longer than a 4 KB chunk
    data = ("\n".join(rows) + "\n").encode()
    held: list[tuple[memoryview, bytes]] = []
    out = bytearray()
    for chunk, _ in line_chunks(io.BytesIO(data), 4096, ring=ring):
        for view, copy in held[-(ring - 1) :] if ring else held:
            assert bytes(view) == copy, "a chunk still in use was overwritten"
        held.append((chunk, bytes(chunk)))
        out += chunk
    assert bytes(out) == data


def test_a_ring_reuses_its_buffers_when_part_lines_carry_over():
    """The point of a ring: fresh memory costs a page fault per 4 KB. Chunks end mid-line, so each
    read starts with a carried part line; the ring's buffers have room for it and are used again."""
    import io

    data = "".join(f"line {n} {'y' * (n % 50)}\n" for n in range(20000)).encode()
    buffers: list[object] = []  # (held, so that no id is reused)
    for chunk, _ in line_chunks(io.BytesIO(data), 4096, ring=3):
        if all(chunk.obj is not b for b in buffers):
            buffers.append(chunk.obj)
    assert len(buffers) == 3
