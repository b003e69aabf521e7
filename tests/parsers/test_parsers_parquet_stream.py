"""`heka decode -f parquet` writes each chunk while the next ones decode (`hekacli.parquet`,
`Decoder.frame_file_chunks`, `hekacli.ordered_map`): the file holds every row in order, rejects keep
their file line numbers, and a failure midway leaves what was at the output path untouched."""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
import time

import polars as pl
import pytest
from conftest import run_heka
from hekacli.parsers import build_decoder, core

from hekacli.errors import InputError, OutputError
from hekacli.ordered_map import ordered_map
from hekacli.parquet import write_parquet_frames

GOOD = '10.0.{a}.{b} - - [10/Feb/2014:08:46:{s:02d} -0800] "GET /p/{n} HTTP/1.1" {st} {n} "-" "curl/{n}"\n'


def _log_lines(n: int) -> list[str]:
    lines = []
    for i in range(n):
        if i % 97 == 13:
            lines.append(f"not a log line {i}\n")
        else:
            lines.append(GOOD.format(a=i // 250, b=i % 250, s=i % 60, n=i, st=(200, 404, 502)[i % 3]))
    return lines


def _heka_here(*args: object) -> int:
    """`heka ARGS` in this process (so a test can shrink the chunk size); its exit code."""
    from hekacli.commands.main import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


@pytest.mark.parametrize("scanner", ["1", "0"])
def test_decode_parquet_over_many_chunks_equals_one_frame(tmp_path, monkeypatch, capsys, scanner):
    monkeypatch.setenv("HEKA_LINESCAN", scanner)
    monkeypatch.setattr(core, "_CHUNK_BYTES", 4096)  # ~40 chunks
    lines = _log_lines(3000)
    log = tmp_path / "access.log"
    log.write_text("".join(lines))
    out, rejects = tmp_path / "out.parquet", tmp_path / "rejects.jsonl"
    code = _heka_here("decode", "nginx", log, "-f", "parquet", "-o", out, "--rejects", rejects)
    assert code == 1  # some lines were rejected
    bad = [i + 1 for i, line in enumerate(lines) if line.startswith("not")]
    assert f"{3000 - len(bad)} decoded, {len(bad)} rejected" in capsys.readouterr().err

    decoder = build_decoder("nginx")
    want = decoder.frame([line.rstrip("\n") for line in lines])
    want = want.with_columns(pl.from_epoch("Timestamp", time_unit="ns").dt.replace_time_zone("UTC"))
    got = pl.read_parquet(out)
    assert got.schema == want.schema
    assert got.equals(want)
    kept = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [r["line"] for r in kept] == bad
    assert all(r["text"] == lines[r["line"] - 1].rstrip("\n") for r in kept)


def test_decode_parquet_where_filters_every_chunk(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "_CHUNK_BYTES", 4096)
    log = tmp_path / "access.log"
    log.write_text("".join(line for line in _log_lines(2000) if not line.startswith("not")))
    out = tmp_path / "out.parquet"
    code = _heka_here("decode", "nginx", log, "-f", "parquet", "-o", out, "--where", "Fields[status] == 404")
    assert code == 0
    got = pl.read_parquet(out)
    assert got.height > 600 and set(got["status"]) == {404}
    assert got["body_bytes_sent"].is_sorted()  # input order kept across chunks
    assert f", {got.height} matched --where" in capsys.readouterr().err


def test_decode_parquet_failure_midway_keeps_the_old_output(tmp_path, monkeypatch):
    # the second input is missing: decoding fails after the first file's rows were written
    monkeypatch.setattr(core, "_CHUNK_BYTES", 4096)
    log = tmp_path / "access.log"
    log.write_text("".join(_log_lines(1000)))
    out = tmp_path / "out.parquet"
    out.write_bytes(b"what was here before")
    r = run_heka("decode", "nginx", log, tmp_path / "missing.log", "-f", "parquet", "-o", out)
    assert r.returncode == 3, r.stderr
    assert "missing.log: cannot read" in r.stderr.decode() and b"Traceback" not in r.stderr
    assert out.read_bytes() == b"what was here before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["access.log", "out.parquet"]  # no part file left


def test_decode_parquet_to_dev_stdout_into_a_pipe(tmp_path):
    """`-o /dev/stdout | …`: no rename is possible there; written in place, opened once."""
    log = tmp_path / "access.log"
    log.write_text("".join(_log_lines(500)))
    r = run_heka("decode", "nginx", log, "-f", "parquet", "-o", "/dev/stdout", "--allow-rejects")
    assert r.returncode == 0, r.stderr
    want = tmp_path / "want.parquet"
    assert run_heka("decode", "nginx", log, "-f", "parquet", "-o", want, "--allow-rejects").returncode == 0
    assert pl.read_parquet(io.BytesIO(r.stdout)).equals(pl.read_parquet(want))


def test_decode_parquet_to_an_unwritable_place_names_the_output(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("".join(_log_lines(10)))
    r = run_heka("decode", "nginx", log, "-f", "parquet", "-o", tmp_path / "no" / "such" / "dir.parquet")
    assert r.returncode == 3
    err = r.stderr.decode()
    assert "dir.parquet: cannot write" in err and ".part" not in err and "Traceback" not in err


def test_decode_parquet_from_stdin_plain_and_gzipped(tmp_path):
    text = "".join(_log_lines(1500))
    log = tmp_path / "access.log"
    log.write_text(text)
    from_file = tmp_path / "file.parquet"
    r = run_heka("decode", "nginx", log, "-f", "parquet", "-o", from_file, "--allow-rejects")
    assert r.returncode == 0
    want = pl.read_parquet(from_file)
    for data in (text.encode(), gzip.compress(text.encode())):
        out = tmp_path / "stdin.parquet"
        r = run_heka("decode", "nginx", "-f", "parquet", "-o", out, "--rejects", tmp_path / "rej.jsonl",
                     input=data)
        assert r.returncode == 1, r.stderr
        assert pl.read_parquet(out).equals(want)
        first = json.loads((tmp_path / "rej.jsonl").read_text().splitlines()[0])
        assert first["file"] == "<stdin>" and first["line"] == 14


# -- write_parquet_frames ---------------------------------------------------------------------------


def _frames(n: int, rows: int = 1000) -> list[pl.DataFrame]:
    return [
        pl.DataFrame({"i": range(k * rows, (k + 1) * rows), "s": [f"v{k}-{j}" for j in range(rows)]})
        for k in range(n)
    ]


def test_write_parquet_frames_keeps_every_row_in_order(tmp_path):
    out = tmp_path / "x.parquet"
    frames = _frames(12)
    assert write_parquet_frames(iter(frames), str(out)) == 12_000
    assert pl.read_parquet(out).equals(pl.concat(frames))


def test_write_parquet_frames_casts_to_the_first_schema_and_refuses_other_columns(tmp_path):
    out = tmp_path / "x.parquet"
    first = pl.DataFrame({"a": [1, 2], "b": ["x", None]})
    all_null = pl.DataFrame({"a": [3], "b": [None]})  # b is of dtype Null here
    assert write_parquet_frames([first, all_null], str(out)) == 3
    got = pl.read_parquet(out)
    assert got.schema == first.schema and got["a"].to_list() == [1, 2, 3]
    with pytest.raises(ValueError, match="columns"):
        write_parquet_frames([first, pl.DataFrame({"a": [1]})], str(out))


def test_write_parquet_frames_with_no_frames_writes_an_empty_file(tmp_path):
    out = tmp_path / "x.parquet"
    assert write_parquet_frames([], str(out)) == 0
    assert pl.read_parquet(out).shape == (0, 0)


def test_write_parquet_frames_error_midway_leaves_the_file_alone(tmp_path):
    out = tmp_path / "x.parquet"
    out.write_bytes(b"old")

    def failing():
        yield from _frames(3)
        raise InputError("cannot read: gone", file="b.log")

    with pytest.raises(InputError, match="gone"):
        write_parquet_frames(failing(), str(out))
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.parquet"]


def test_write_parquet_frames_into_a_pipe(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    frames = _frames(4)
    write_parquet_frames(frames, str(fifo))  # a pipe cannot be renamed over: written in place
    reader.join(10)
    assert pl.read_parquet(io.BytesIO(got[0])).equals(pl.concat(frames))
    assert fifo.is_fifo()


def test_write_parquet_frames_unwritable_path_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot write") as exc:
        write_parquet_frames(_frames(1), str(tmp_path / "missing" / "x.parquet"))
    assert "missing/x.parquet" in str(exc.value)


# -- ordered_map ----------------------------------------------------------------------------------


def test_ordered_map_keeps_the_input_order():
    def slow_for_evens(i: int) -> int:
        time.sleep(0.002 if i % 2 == 0 else 0)
        return i * i

    assert list(ordered_map(slow_for_evens, range(50), 2)) == [i * i for i in range(50)]
    assert list(ordered_map(slow_for_evens, range(5), 1)) == [0, 1, 4, 9, 16]
    assert list(ordered_map(slow_for_evens, [], 2)) == []


def test_ordered_map_takes_items_only_as_results_are_taken():
    taken: list[int] = []

    def items():
        for i in range(100):
            taken.append(i)
            yield i

    results = ordered_map(lambda i: i, items(), 2)
    for n, value in enumerate(results):
        assert value == n
        assert len(taken) <= n + 3  # at most workers + 1 ahead of the consumer
        if n == 10:
            break
    results.close()
    assert len(taken) <= 13


def test_ordered_map_raises_the_first_error_in_order():
    def boom_at_3(i: int) -> int:
        if i == 3:
            raise KeyError(i)
        return i

    seen = []
    with pytest.raises(KeyError):
        for value in ordered_map(boom_at_3, range(20), 2):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_write_parquet_frames_through_a_symlink_keeps_the_link_and_the_mode(tmp_path):
    real = tmp_path / "data" / "x.parquet"
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "latest.parquet"
    link.symlink_to(real)
    frames = _frames(2)
    write_parquet_frames(frames, str(link))
    assert link.is_symlink() and pl.read_parquet(link).equals(pl.concat(frames))
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["x.parquet"]
