"""Pipe manners: a progress bar on stderr only when stderr is a terminal; stdout stays clean data."""

from __future__ import annotations

import json
import os
import pty
import subprocess

from conftest import SAMPLE_LOGS, heka_cmd, run_heka

SAMPLE = SAMPLE_LOGS / "nginx" / "access.log"  # 4.9 MB: above the 4 MB progress threshold


def test_progress_bar_only_on_a_terminal() -> None:
    assert SAMPLE.stat().st_size > 4 * 1024 * 1024
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            heka_cmd("agg", str(SAMPLE), "--by", "status"),
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "COLUMNS": "100"},
        )
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            err += chunk
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    assert proc.returncode == 0
    assert b"reading logs" in err and b"MB" in err
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert sum(r["count"] for r in rows) == 22000
    # Piped stderr: nothing at all.
    res = run_heka("agg", str(SAMPLE), "--by", "status")
    assert res.returncode == 0 and res.stderr == b""
