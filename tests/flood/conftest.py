"""Fixtures for the flood/shipping tests: an in-process `heka serve` with the verifier, and a PKI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hekacli.certs import make_pki
from hekacli.serve.daemon import ServeDaemon


@contextmanager
def serve(listeners: list[Any], **extra: Any) -> Iterator[ServeDaemon]:
    """Run a ServeDaemon with the verify plugin on a background thread (always stopped)."""
    config = {"listeners": listeners, "output": {"path": "none"}, "verify": True, **extra}
    daemon = ServeDaemon(config, log=lambda text: None)
    with daemon.running() as d:
        yield d


def verifier_of(daemon: ServeDaemon):
    return next(p for p in daemon.plugins() if getattr(p, "name", "") == "verify").verifier


def wait_complete(daemon: ServeDaemon, connections: int = 1, timeout: float = 60) -> dict:
    """Wait until the end markers of `connections` connections arrived (TCP keeps order, so then all
    their messages were processed); return the verifier summary."""
    deadline = time.monotonic() + timeout
    v = verifier_of(daemon)
    while time.monotonic() < deadline:
        if sum(sum(s.announced is not None for s in run.streams.values()) for run in v.runs.values()) \
                >= connections:
            break
        time.sleep(0.02)
    return v.summary()


def wait_idle(daemon: ServeDaemon, quiet: float = 0.5, timeout: float = 30) -> dict:
    """Wait until the daemon's received count stops changing for `quiet` seconds; return its summary."""
    deadline = time.monotonic() + timeout
    last = -1
    since = time.monotonic()
    while time.monotonic() < deadline:
        n = daemon.summary()["received"]
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.05)
    return daemon.summary()


def start_serve(port: int, out: Path, *extra: str) -> subprocess.Popen:
    """`heka serve -l tcp://127.0.0.1:PORT -o OUT ...` as a subprocess, returned once it listens."""
    from conftest import heka_cmd  # tests/conftest.py (on sys.path)

    proc = subprocess.Popen(heka_cmd("serve", "-l", f"tcp://127.0.0.1:{port}", "-o", str(out), *extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "NO_COLOR": "1"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"heka serve exited: {proc.stderr.read().decode()}") from None
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError("heka serve did not start listening")


def stop_proc(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Signal a child and wait for it (kill after 15 s)."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def host_port(url: str) -> str:
    return url.split("://", 1)[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


class Helpers:
    """The helpers above, handed to tests as the `fl` fixture (tests/flood is not on sys.path)."""

    serve = staticmethod(serve)
    verifier_of = staticmethod(verifier_of)
    wait_complete = staticmethod(wait_complete)
    wait_idle = staticmethod(wait_idle)
    host_port = staticmethod(host_port)
    start_serve = staticmethod(start_serve)
    stop_proc = staticmethod(stop_proc)


@pytest.fixture
def fl() -> type[Helpers]:
    return Helpers
