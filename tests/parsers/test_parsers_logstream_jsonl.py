"""`heka logstream` decoded JSONL through the generated line -> JSON function writes the bytes the
record path writes: decode, add Logger and Hostname, `fast_jsonl` (rejects counted the same)."""

from __future__ import annotations

import importlib.util
import io
import os

import pytest
from conftest import PROJECT_ROOT
from hekacli.parsers import build_decoder

from hekacli.logstream.config import StreamConfig
from hekacli.logstream.journal import Position
from hekacli.logstream.reader import Batch
from hekacli.logstream.sink import FdWriter, Sink, fast_jsonl


def _lines() -> list[bytes]:
    spec = importlib.util.spec_from_file_location(
        "gen_access_log", PROJECT_ROOT / "bench" / "gen_access_log.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lines = [x.encode() for x in mod.generate_lines(2000, seed=5, tricky=0.2)]
    lines[10:10] = [
        b"not a line",
        b'::1 - - [10/Feb/2014:08:46:41 -0800] "GET /\xff HTTP/1.1" 200 1 "-" "bad utf-8"',
        b'::1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 1 "-" "caf\xc3\xa9"',
        b"",
    ]
    return lines


def expected(decoder_opts: dict, lines: list[bytes], stream: str, hostname: str) -> tuple[bytes, int]:
    """The record path of `Sink.write` (decode, setdefault Logger/Hostname, fast_jsonl)."""
    d = build_decoder(**decoder_opts)
    out, rejected = [], 0
    for line in lines:
        rec = d.decode(line.decode("utf-8", "surrogateescape"))
        if rec is None:
            rejected += 1
            continue
        rec.setdefault("Logger", stream)
        rec.setdefault("Hostname", hostname)
        out.append(fast_jsonl(rec))
    return b"".join(out), rejected


@pytest.mark.parametrize(
    "opts",
    [
        {"kind": "nginx"},
        {"kind": "nginx", "user_agent": "keep"},  # no generated function: the record path
        {"kind": "apache", "log_format": "combined"},
    ],
)
@pytest.mark.parametrize("hostname", ["web1", "h\udcffst"])
def test_sink_writes_what_the_record_path_writes(tmp_path, opts, hostname):
    lines = _lines()
    data = b"\n".join(lines) + b"\n"
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        sink = Sink("jsonl", writer=FdWriter(fd), rejects=io.StringIO())
        cfg = StreamConfig(name="web", file_match="x", decoder=dict(opts), hostname=hostname)
        sink.prepare(cfg)
        batch = Batch("web", "access.log", 0, data, len(lines), Position("access.log", len(data)))
        sink.write(batch, cfg)
    finally:
        os.close(fd)
    want, rejected = expected(dict(opts), lines, "web", hostname)
    assert out.read_bytes() == want
    assert sink.rejected == rejected and sink.written == len(lines) - rejected
    assert (sink._line_jsons["web"] is not None) == ("user_agent" not in opts)  # which path ran
