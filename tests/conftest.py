"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = PROJECT_ROOT / "sample_logs"
VECTORS = Path(__file__).resolve().parent / "vectors"  # copies of ../shared/vectors the tests need


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def heka_cmd(*args: str) -> list[str]:
    """The argv that runs the installed `heka` CLI with this interpreter."""
    return [sys.executable, "-m", "hekacli.commands", *map(str, args)]


def run_heka(*args: str, input: bytes | str | None = None, timeout: float = 120, env: dict | None = None,
             cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run `heka ARGS...` to completion, capturing stdout/stderr as bytes."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    if isinstance(input, str):
        input = input.encode()
    return subprocess.run(heka_cmd(*args), input=input, capture_output=True, timeout=timeout, env=full_env,
                          cwd=cwd)


@pytest.fixture
def heka():
    """`heka(*args, input=...)` -> CompletedProcess (bytes stdout/stderr)."""
    return run_heka
