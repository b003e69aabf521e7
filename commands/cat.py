"""`heka cat` (alias `heka-cat`): read framed Heka streams and print their messages."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import typer

from hekacli.errors import EXIT_DATA, InputError, OutputError, UsageError
from hekacli.framing import CAT_MAX_MESSAGE_SIZE, DROP_UNDECODABLE, Record, Splitter
from hekacli.message import Message

FORMATS = ("txt", "json", "jsonl", "heka", "count")
FOLLOW_INTERVAL = 0.5  # seconds between polls at EOF with --follow (heka-cat's 500 ms)
READ_SIZE = 256 * 1024

# Go flag name -> our option, for `heka-cat -format json -match ... file`.
ALIAS_FLAGS = {"match": "--match", "format": "--format", "output": "--output", "tail": "--tail",
               "offset": "--offset", "max-message-size": "--max-message-size"}


def _renderer(fmt: str) -> Callable[[Record, Message], bytes]:
    if fmt == "txt":
        from hekacli.hekatext import message_txt

        return lambda rec, msg: message_txt(msg)
    if fmt == "json":
        from hekacli.hekatext import message_json

        return lambda rec, msg: message_json(msg)
    if fmt == "jsonl":
        from hekacli.message import to_flat
        from hekacli.output import dumps_jsonl

        return lambda rec, msg: (dumps_jsonl(to_flat(msg)) + "\n").encode("utf-8")
    if fmt == "heka":
        return lambda rec, msg: rec.raw
    return lambda rec, msg: b""


class Cat:
    """The reading loop, shared by every input of one `heka cat` run."""

    def __init__(self, fmt: str, out: IO[bytes], match: Callable[[Message], bool] | None,
                 max_message_size: int) -> None:
        self.render = _renderer(fmt)
        self.count_only = fmt == "count"
        self.out = out
        self.match = match
        self.max_message_size = max_message_size
        self.processed = 0
        self.matched = 0
        self.dropped: Counter[str] = Counter()
        self.corrupt_bytes = 0
        self.name = ""

    def _corrupt(self, offset: int, nbytes: int) -> None:
        where = f"{self.name}: " if self.name else ""
        sys.stderr.write(f"{where}Corruption detected at offset: {offset} bytes: {nbytes}\n")

    def _records(self, records: list[Record]) -> None:
        for rec in records:
            self.processed += 1
            try:
                msg = rec.message()
            except Exception as exc:  # noqa: BLE001 - DecodeError; anything else is the same to a reader
                self.dropped[DROP_UNDECODABLE] += 1
                text = getattr(exc, "message", str(exc))
                sys.stderr.write(f"Error unmarshalling message at offset: {rec.offset} error: {text}\n")
                continue
            if self.match is not None and not self.match(msg):
                continue
            self.matched += 1
            if not self.count_only:
                self.out.write(self.render(rec, msg))

    def read(self, name: str, fh: IO[bytes], offset: int, follow: bool) -> None:
        """Read one input to EOF (and keep polling with `follow` until Ctrl-C)."""
        self.name = name if name != "-" else ""
        self._sp = self._splitter(offset)
        try:
            self._loop(name, fh, follow)
        except KeyboardInterrupt:
            if not follow:
                raise
        # Only at a real end of input is what is still buffered a truncated record or garbage (not
        # when the reader of stdout went away: BrokenPipeError passes straight through).
        self._sp.finish()
        self._merge(self._sp)

    def _splitter(self, offset: int) -> Splitter:
        return Splitter(max_message_size=self.max_message_size, authenticate=False, on_corrupt=self._corrupt,
                        start_offset=offset)

    def _loop(self, name: str, fh: IO[bytes], follow: bool) -> None:
        while True:
            chunk = fh.read(READ_SIZE)
            if chunk:
                self._records(self._sp.feed(chunk))
                continue
            if not follow:
                return
            self.out.flush()
            if self._sp.pending == 0:
                self._sp.flush_garbage()  # report trailing garbage now, not only at Ctrl-C
            time.sleep(FOLLOW_INTERVAL)
            if name != "-" and _truncated(fh):
                sys.stderr.write(f"{name}: file was truncated; reading it again from the start\n")
                fh.seek(0)
                self._sp.finish()
                self._merge(self._sp)
                self._sp = self._splitter(0)

    def _merge(self, sp: Splitter) -> None:
        self.dropped.update(sp.dropped)
        self.corrupt_bytes += sp.corrupt_bytes
        sp.dropped.clear()
        sp.corrupt_bytes = 0

    def summary(self) -> str:
        line = f"Processed: {self.processed}, matched: {self.matched} messages"
        if self.dropped:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
            line += f"\nDropped: {reasons}"
            if self.corrupt_bytes:
                line += f" ({self.corrupt_bytes} corrupt bytes)"
        return line


def _truncated(fh: IO[bytes]) -> bool:
    try:
        return os.fstat(fh.fileno()).st_size < fh.tell()
    except (OSError, ValueError):
        return False


def _compile(expr: str | None) -> Callable[[Message], bool] | None:
    if expr is None or expr.strip() == "TRUE":
        return None
    try:
        from hekacli.matcher import compile_matcher
    except ImportError:
        raise UsageError("--match is not available in this build (no message matcher)") from None
    return compile_matcher(expr).match_message


def _open_output(path: str | None) -> IO[bytes]:
    if path is None or path == "-":
        return sys.stdout.buffer
    try:
        return open(path, "wb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise OutputError(f"cannot open output: {exc.strerror or exc}", file=path) from None


def cat(
    files: list[str] = typer.Argument(..., metavar="FILE...", help="Framed Heka stream(s); '-' reads stdin."),
    format: str = typer.Option("txt", "--format", "-f",
                               help="txt | json (as heka-cat prints them), jsonl (flat records), "
                                    "heka (raw framed records), count (only the summary)."),
    match: str = typer.Option("TRUE", "--match", "-m", help="message_matcher expression selecting messages."),
    offset: int = typer.Option(0, "--offset", min=0, help="Start reading each file at this byte offset."),
    follow: bool = typer.Option(False, "--follow", "--tail", help="At end of file keep waiting for more."),
    output: str | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    max_message_size: int = typer.Option(CAT_MAX_MESSAGE_SIZE, "--max-message-size",
                                         help="Largest message accepted (bytes; heka-cat's default 4 MiB)."),
) -> None:
    """Print the messages of framed Heka streams (files, disk-buffer queues, `heka serve --output`).

    Corruption is reported on stderr with its true byte offset and length; the summary (processed,
    matched, dropped by reason) goes to stderr. Exit 1 if anything was corrupt or undecodable.
    """
    if format not in FORMATS:
        raise UsageError(f"unknown --format {format!r} (choose from {', '.join(FORMATS)})")
    if not 0 < max_message_size < 2**32 - 1:
        raise UsageError("--max-message-size must be between 1 and 2^32-2")
    if follow and (len(files) != 1 or files[0] == "-"):
        raise UsageError("--follow needs exactly one file (not stdin)")
    matcher = _compile(match)
    inputs: list[tuple[str, IO[bytes]]] = []
    for name in files:
        if name == "-":
            inputs.append((name, sys.stdin.buffer))
            continue
        p = Path(name)
        try:
            inputs.append((name, open(p, "rb")))  # noqa: SIM115 - closed below
        except OSError as exc:
            for _, fh in inputs:
                if fh is not sys.stdin.buffer:
                    fh.close()
            raise InputError(f"cannot open input: {exc.strerror or exc}", file=name) from None
    out = _open_output(output)
    runner = Cat(format, out, matcher, max_message_size)
    try:
        for name, fh in inputs:
            sys.stderr.write(f"Input:{name}  Offset:{offset}  Match:{match}  Format:{format}  "
                             f"Tail:{'true' if follow else 'false'}  Output:{output or ''}\n")
            start = offset
            if offset:
                start = _skip(name, fh, offset)
            runner.read(name, fh, start, follow)
        out.flush()
    except BrokenPipeError:
        # `heka cat ... | head`: the reader went away; end quietly (exit 0, no summary).
        _quiet_stdout()
        return
    finally:
        for _, fh in inputs:
            if fh is not sys.stdin.buffer:
                fh.close()
        if out is not sys.stdout.buffer:
            out.close()
    sys.stderr.write(runner.summary() + "\n")
    if runner.dropped:
        raise typer.Exit(EXIT_DATA)


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _skip(name: str, fh: IO[bytes], offset: int) -> int:
    """Seek (files) or read past (pipes) `offset` bytes; returns the offset reached."""
    try:
        return fh.seek(offset)
    except OSError:
        pass
    left = offset
    while left > 0:
        chunk = fh.read(min(left, READ_SIZE))
        if not chunk:
            break
        left -= len(chunk)
    return offset - left


def register(app: typer.Typer) -> None:
    """Add `heka cat` to the app."""
    app.command("cat")(cat)


def alias_main() -> None:
    """`heka-cat`: Heka's single-dash flags (`-format json -match ... FILE`)."""
    from ._alias import run_alias

    run_alias(["cat"], ALIAS_FLAGS, bool_flags={"tail"})
