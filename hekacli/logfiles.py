"""Opening a log for reading: a file or stdin (``-``), gunzipped when it starts with the gzip magic,
with read errors (I/O, damaged gzip data) reported as one-line errors naming it."""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError, read_errors

GZIP_MAGIC = b"\x1f\x8b"


def display_name(path: str | Path) -> str:
    """How errors and reports name an input: ``<stdin>`` for ``-``."""
    return "<stdin>" if str(path) == "-" else str(path)


@contextlib.contextmanager
def open_binary(path: str | Path) -> Iterator[Any]:
    """A log file (``-``: stdin, left open) opened for reading bytes, gunzipped when it starts with
    the gzip magic; a read error in the block is an InputError naming the file."""
    name = display_name(path)
    try:
        f = _stdin_binary() if name == "<stdin>" else open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=name) from exc
    with contextlib.nullcontext(f) if name == "<stdin>" else f, read_errors(name):
        yield gzip.GzipFile(fileobj=f) if f.peek(2)[:2] == GZIP_MAGIC else f


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes (``-``: stdin's), gunzipped when they start with the gzip magic."""
    with open_binary(path) as stream:
        return stream.read()


def is_gzip(path: str | Path) -> bool:
    """Whether the file starts with the gzip magic (an unreadable file is an InputError)."""
    with read_errors(str(path)), open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _stdin_binary() -> Any:
    """stdin's bytes, in a reader that can peek (a test may have put a plain BytesIO there)."""
    raw = sys.stdin.buffer
    return raw if hasattr(raw, "peek") else io.BufferedReader(raw)
