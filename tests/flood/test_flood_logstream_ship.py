"""Joint with logstream: `heka logstream tail --follow --output tcp://…` ships numbered lines while
`heka serve` is killed (SIGKILL) and restarted: every number arrives at least once, none lost."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import free_port, heka_cmd

from hekacli.framing import read_stream

ENV = {**os.environ, "NO_COLOR": "1"}


def numbers(*files: Path) -> set[int]:
    got: set[int] = set()
    for f in files:
        if f.exists():
            with open(f, "rb") as fh:
                for rec in read_stream(fh):
                    m = re.match(r"line (\d+)", rec.message().payload or "")
                    if m:
                        got.add(int(m.group(1)))
    return got


def test_logstream_output_survives_a_receiver_killed_and_restarted(fl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    log.write_text("")
    cfg = tmp_path / "stream.yaml"
    cfg.write_text("journal_directory: journals\nstreams:\n  app:\n    log_directory: logs\n"
                   "    file_match: 'app\\.log'\n")
    port = free_port()
    one, two = tmp_path / "one.heka", tmp_path / "two.heka"
    serve1 = fl.start_serve(port, one)
    serve2 = None
    tail = subprocess.Popen(heka_cmd("logstream", "tail", str(cfg), "--follow", "--output",
                                     f"tcp://127.0.0.1:{port}", "--queue-dir", str(tmp_path / "q"), "-q"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path)

    def write(lo: int, hi: int) -> None:
        with open(log, "a") as fh:
            for i in range(lo, hi, 50):
                fh.write("".join(f"line {n}\n" for n in range(i, min(i + 50, hi))))
                fh.flush()
                time.sleep(0.02)

    try:
        write(0, 1000)
        time.sleep(0.5)
        serve1.send_signal(signal.SIGKILL)
        serve1.wait(10)
        write(1000, 2000)
        serve2 = fl.start_serve(port, two)
        write(2000, 3000)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(numbers(one, two)) < 3000:
            time.sleep(0.5)
        assert tail.poll() is None, tail.stderr.read().decode()
    finally:
        for proc in (tail, serve1, serve2):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    got = numbers(one, two)
    assert got == set(range(3000)), f"missing {sorted(set(range(3000)) - got)[:20]}"
