"""Helpers for the decoder tests: run real servers (nginx, apache2, rsyslogd) for a few seconds."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hekacli.parsers.core import Decoder


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Block until 127.0.0.1:port accepts connections (fail early if the server died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"server exited with {proc.returncode}: {out}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"server did not listen on {port} within {timeout}s")


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    *,
    port: int | None = None,
    ready=None,
    cwd: str | Path | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Iterator[subprocess.Popen]:
    """Start a server in its own process group; always stop it (and its children) on exit."""
    binary = argv[0]
    if not (os.path.exists(binary) or shutil.which(binary)):
        pytest.fail(f"{binary} is not installed (scripts/test installs it)")
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
    )
    try:
        if port is not None:
            wait_for_port(port, proc)
        if ready is not None:
            assert wait_for(ready), f"{binary} did not become ready"
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, stop_signal)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def assert_paths_agree(decoder: Decoder, lines: list[str]) -> list[dict]:
    """The streaming records equal the bulk frame's rows (nulls = absent), rejects on the same lines."""
    frame = decoder.frame(lines)
    rows = frame.to_dicts()
    rejected = set(decoder.rejects["lineno"].to_list()) if decoder.rejects is not None else set()
    records = []
    it = iter(rows)
    for number, line in enumerate(lines, 1):
        rec = decoder.decode(line)
        if rec is None:
            assert number in rejected, f"line {number} rejected by decode() but not by frame(): {line!r}"
            continue
        assert number not in rejected, f"line {number} decoded by decode() but rejected by frame(): {line!r}"
        row = {k: v for k, v in next(it).items() if v is not None}
        assert row == rec, f"line {number}: {line!r}\nstreaming {rec}\nbulk      {row}"
        records.append(rec)
    assert next(it, None) is None
    return records
