"""Typed errors and the exit codes they map to.

Library code raises a `HekaError` subclass carrying where things went wrong (file, line, offset,
field); the CLI turns it into one line on stderr and the subclass's exit code. Never a traceback.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Exit codes shared by every command (documented in the README).
EXIT_OK = 0
EXIT_DATA = 1  # some input was rejected/dropped (records counted and reported), or a check failed
EXIT_USAGE = 2  # bad command line, bad config, malformed matcher expression
EXIT_IO = 3  # cannot open/read/write a file
EXIT_NETWORK = 4  # cannot connect/listen, TLS failure
EXIT_SANDBOX = 5  # a Lua sandbox failed or was terminated
EXIT_INTERNAL = 70  # a bug in hekacli (traceback shown with HEKA_DEBUG=1)
EXIT_INTERRUPTED = 130  # SIGINT


class HekaError(Exception):
    """Base of every error hekacli reports to a user.

    `where` is rendered before the message: ``file:line: message`` or ``file: offset N: message``.
    """

    exit_code = EXIT_DATA

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        offset: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.offset = offset
        self.field = field

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            loc = str(self.file)
            if self.line is not None:
                loc += f":{self.line}"
            parts.append(loc)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class UsageError(HekaError):
    """Bad command-line input."""

    exit_code = EXIT_USAGE


class ConfigError(HekaError):
    """A config file (YAML or Heka TOML) is malformed or has unknown keys."""

    exit_code = EXIT_USAGE


class MatcherSyntaxError(HekaError):
    """A message_matcher expression does not parse (message carries the caret diagram)."""

    exit_code = EXIT_USAGE


class InputError(HekaError):
    """A file cannot be opened or read."""

    exit_code = EXIT_IO


class OutputError(HekaError):
    """An output cannot be opened or written."""

    exit_code = EXIT_IO


class DecodeError(HekaError):
    """A record or line could not be decoded."""

    exit_code = EXIT_DATA


class FramingError(HekaError):
    """A message or header cannot be framed (too big), or a stream is unusable."""

    exit_code = EXIT_DATA


class NetworkError(HekaError):
    """Cannot connect, listen, or complete a TLS handshake."""

    exit_code = EXIT_NETWORK


class SandboxError(HekaError):
    """A Lua sandbox failed to load, errored or was terminated."""

    exit_code = EXIT_SANDBOX


class OutputClosed(BrokenPipeError):
    """The reader of our output went away (`heka ... | head`): the CLI ends quietly with exit 0.

    Raised without an errno on purpose: Click turns an EPIPE `OSError` into exit status 1 before
    hekacli's own handler sees it, but lets other OSErrors through. Still a BrokenPipeError, so
    code that catches that keeps working.
    """


@contextlib.contextmanager
def read_errors(file: str) -> Iterator[None]:
    """Read errors in the block become an `InputError` naming `file`: an I/O error ("cannot read:
    Input/output error") or damaged gzip data, which Python reports as `zlib.error`, `EOFError` or
    `gzip.BadGzipFile` ("bad gzip data: ..."). Keep the block to reading: in a generator, put the
    ``yield`` inside it (errors of the consumer are not thrown into the generator)."""
    try:
        yield
    except HekaError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        # (gzip.BadGzipFile by name: gzip is not imported for every command)
        damaged = isinstance(exc, (EOFError, zlib.error)) or type(exc).__name__ == "BadGzipFile"
        text = f"bad gzip data: {exc}" if damaged else f"cannot read: {exc.strerror or exc}"
        raise InputError(text, file=file) from exc


def reading(items: Iterable[T], file: str) -> Iterator[T]:
    """`items` (a generator that reads `file` as it goes), with its read errors reported as by
    `read_errors`."""
    with read_errors(file):
        yield from items
