"""Fixtures for the wire tests: a test PKI, and `heka serve` run as a real subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import heka_cmd

from hekacli.certs import PKI, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A CA, server and client certificate made for this test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


class ServeProcess:
    """`heka serve ...` on 127.0.0.1 port 0; `urls` are read from its 'listening on' lines."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        env = {**os.environ, "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            heka_cmd("serve", *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.urls: list[str] = []
        self.stderr_head = b""
        expected = sum(1 for a in args if a in ("--listen", "-l"))
        assert self.proc.stderr is not None
        while len(self.urls) < expected:
            line = self.proc.stderr.readline()
            if not line:
                out, err = self.proc.communicate(timeout=30)
                raise AssertionError(f"heka serve exited early: {self.stderr_head + line + err!r}")
            self.stderr_head += line
            m = re.search(rb"listening on (\S+)", line)
            if m:
                self.urls.append(m.group(1).decode())

    def url(self, scheme: str) -> str:
        return next(u for u in self.urls if u.startswith(scheme + "://"))

    def finish(self, timeout: float = 60) -> tuple[int, bytes, bytes]:
        """Wait for it to end by itself (--count); returns (code, stdout, stderr)."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, self.stderr_head + err

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, bytes, bytes]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


@pytest.fixture
def serve() -> Iterator[type[ServeProcess]]:
    """`serve(*args)` starts `heka serve`; every process started is killed at teardown."""
    started: list[ServeProcess] = []

    def start(*args: str, cwd: Path | None = None) -> ServeProcess:
        p = ServeProcess(*args, cwd=cwd)
        started.append(p)
        return p

    try:
        yield start  # type: ignore[misc]
    finally:
        for p in started:
            p.kill()


def _heka_inproc(*args: object, input: bytes = b"") -> subprocess.CompletedProcess:
    """Run `heka ARGS...` in this process (same entry point and error policy as the console script,
    without a new interpreter's start-up cost); stdout/stderr captured as bytes."""
    import contextlib
    import io
    import sys

    from hekacli.commands.main import main

    stdin = io.TextIOWrapper(io.BytesIO(input), encoding="utf-8")
    out_buf, err_buf = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out_buf, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err_buf, encoding="utf-8", write_through=True)
    saved_stdin = sys.stdin
    code: int | str | None = 0
    try:
        sys.stdin = stdin
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.stdin = saved_stdin
    stdout.flush()
    stderr.flush()
    rc = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["heka", *map(str, args)], rc, out_buf.getvalue(), err_buf.getvalue())


@pytest.fixture
def heka_inproc():
    """`heka_inproc(*args, input=b"")` -> CompletedProcess, run in-process (see `_heka_inproc`)."""
    return _heka_inproc


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC for the duration of the test (heka-cat's txt prints local time)."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
