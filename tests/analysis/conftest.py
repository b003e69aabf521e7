"""Fixtures for the analyzer tests: one generated access log with its true records, in every input form.

The records come from `sample_logs/generate_access_log.py` (seeded), so the tests know the right
answers without decoding anything; the same records are written as a raw nginx log, gzip, JSON Lines,
Parquet and a framed Heka stream with plain-Python code (not the analyzer's).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

N_LINES = 3000
SEED = 1234


def load_generator():
    """The sample-log generator module (a script, not a package)."""
    path = PROJECT_ROOT / "sample_logs" / "generate_access_log.py"
    spec = importlib.util.spec_from_file_location("generate_access_log", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Corpus:
    records: list[dict]
    log: Path  # nginx combined + $request_time
    log_gz: Path
    jsonl: Path
    parquet: Path
    heka: Path
    plain_combined: Path  # the same requests without $request_time


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000


def _flat(rec: dict) -> dict:
    return {
        "Timestamp": _ns(rec["time"]),
        "Type": "nginx.access",
        "remote_addr": rec["remote_addr"],
        "remote_user": rec["remote_user"],
        "request": f"{rec['method']} {rec['uri']} {rec['protocol']}",
        "status": rec["status"],
        "body_bytes_sent": rec["body_bytes_sent"],
        "http_referer": rec["http_referer"],
        "http_user_agent": rec["http_user_agent"],
        "request_time": rec["request_time"],
    }


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    gen = load_generator()
    records = list(
        gen.generate(N_LINES, seed=SEED, start=datetime(2026, 3, 2, tzinfo=UTC), days=3, n_visitors=400)
    )
    d = tmp_path_factory.mktemp("analysis")
    log = d / "access.log"
    log.write_text("".join(gen.format_line(r, request_time=True) + "\n" for r in records), encoding="utf-8")
    plain = d / "plain_access.log"
    plain.write_text("".join(gen.format_line(r) + "\n" for r in records), encoding="utf-8")
    log_gz = d / "access.log.1.gz"
    log_gz.write_bytes(gzip.compress(log.read_bytes()))
    flat = [_flat(r) for r in records]
    jsonl = d / "records.jsonl"
    with jsonl.open("w", encoding="utf-8") as f:
        for r in flat:
            text = dict(r)
            text["Timestamp"] = datetime.fromtimestamp(r["Timestamp"] // 10**9, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000000000Z"
            )
            f.write(json.dumps(text) + "\n")
    import polars as pl

    parquet = d / "records.parquet"
    pl.DataFrame(flat).write_parquet(parquet)
    from hekacli.framing import frame
    from hekacli.message import from_flat

    heka = d / "records.heka"
    with heka.open("wb") as f:
        for r in flat:
            f.write(frame(from_flat(r)))
    return Corpus(records, log, log_gz, jsonl, parquet, heka, plain)


def run_inproc(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run `heka ARGS` inside this process (same entry point and error policy as the console script,
    without the interpreter start-up); returns a CompletedProcess with bytes stdout/stderr."""
    from hekacli.commands.main import app, run

    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdout, sys.stderr, sys.stdin, os.environ.get("NO_COLOR"), os.environ.get("COLUMNS")
    wout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    werr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    sys.stdout, sys.stderr = wout, werr
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(input or b"")), encoding="utf-8")
    os.environ["NO_COLOR"], os.environ["COLUMNS"] = "1", "200"
    try:
        code = run(lambda: app(args=[str(a) for a in args], prog_name="heka", standalone_mode=True))
        wout.flush()
        werr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved[0], saved[1], saved[2]
        for key, value in (("NO_COLOR", saved[3]), ("COLUMNS", saved[4])):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(list(args), code, stdout, stderr)


@pytest.fixture
def heka_in():
    """`heka_in(*args, input=...)`: `heka` run in-process (see `run_inproc`)."""
    return run_inproc
