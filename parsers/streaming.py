"""The streaming decode path to JSON Lines, as fast as this Python gets (`heka decode -f jsonl`).

Input is read in blocks of whole lines; each block goes through the format's line -> JSON-text
function (`jsonout`), lines it does not take through ``dumps_jsonl(decoder.decode(line))``, so the
bytes are always exactly what `RecordWriter("jsonl")` writes. A regular file of `PARALLEL_MIN_BYTES`
or more is cut at line starts into ranges that worker processes decode (fork: they share the compiled
decoder); the output stays in input order (a worker writes its range itself when its turn has come,
otherwise hands the bytes to the parent) and rejected lines keep their file line numbers.
`HEKA_DECODE_JOBS` sets the number of workers (1: none).

Callers supply what is theirs: `on_reject(file, line, text, reason)` (reason: a callable, so only
reported rejects pay for the explanation) and a progress factory ``(total bytes, label) -> bar``
returning a ``rich.progress.Progress`` with one task, or None.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from hekacli.errors import OutputClosed, UsageError
from hekacli.logfiles import open_binary

RejectFn = Callable[[str, int, str, Callable[[], str]], None]
ProgressFactory = Callable[[int, str], Any] | None

BLOCK_BYTES = 256 * 1024  # read size of the streaming JSONL path
PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # files this big are decoded by worker processes
PARALLEL_CHUNK_BYTES = 2 * 1024 * 1024  # one worker task
TURN_WAIT = 0.02  # seconds a worker waits for its turn to write before handing its bytes to the parent
JOBS_ENV = "HEKA_DECODE_JOBS"  # worker processes for a file: 1 = none; unset: 2 for big files


class JsonlLines:
    """Blocks of lines -> JSONL text, exactly as `RecordWriter("jsonl")` writes their records."""

    def __init__(self, decoder: Any) -> None:
        from hekacli.parsers.jsonout import compile_line_json

        from hekacli.output import dumps_jsonl

        self.fast = compile_line_json(decoder)
        decode = decoder.decode

        def reference(line: str) -> str | None:
            rec = decode(line)
            return None if rec is None else dumps_jsonl(rec)

        self.reference = reference

    def block(self, data: bytes, lines: list[str]) -> tuple[str, list[int]]:
        """(JSONL text of the lines that decode, indexes of those that do not). `data`: their bytes."""
        from hekacli.parsers.jsonout import is_plain_block

        fast = self.fast
        if fast is None:
            texts = [self.reference(x) for x in lines]
        else:
            fn = fast.plain if is_plain_block(data) else fast
            texts = [fn(x) for x in lines]
        bad: list[int] = []
        if None in texts:
            reference = self.reference
            for i, t in enumerate(texts):
                if t is None:
                    t = texts[i] = reference(lines[i])
                    if t is None:
                        bad.append(i)
            if bad:
                texts = [t for t in texts if t is not None]
        return ("\n".join(texts) + "\n" if texts else ""), bad  # type: ignore[arg-type]


def split_lines(data: bytes, final: bool) -> tuple[list[str], bytes]:
    """Complete lines of `data` (UTF-8, undecodable bytes kept as ``\\xHH``) and the unfinished rest."""
    if final:
        complete, rest = data, b""
    else:
        cut = data.rfind(b"\n") + 1
        complete, rest = data[:cut], data[cut:]
    if not complete:
        return [], rest
    # cut at a newline, so no UTF-8 sequence is split: the same text as an incremental decoder's
    text = complete.decode("utf-8", "backslashreplace")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines, rest


def blocks(name: str, progress: ProgressFactory = None) -> Iterator[tuple[bytes, list[str]]]:
    """(bytes, lines) blocks of a file or stdin ('-'), gunzipping transparently; lines without newline.
    A read error is a one-line InputError naming the file."""
    with open_binary(name) as src:
        bar = progress(Path(name).stat().st_size, Path(name).name) if progress and name != "-" else None
        base = getattr(src, "fileobj", src)  # (the file's own offset: a .gz is read compressed)
        # read1: what is there (a pipe from `tail -f` is decoded as it comes, not once 1 MB arrived)
        read = src.read1 if hasattr(src, "read1") else src.read
        rest = b""
        try:
            while True:
                chunk = read(BLOCK_BYTES)
                data = rest + chunk if rest else chunk
                lines, rest = split_lines(data, final=not chunk)
                if lines:
                    yield data[: len(data) - len(rest)], lines
                if bar is not None:
                    bar.update(bar.task_ids[0], completed=base.tell())
                if not chunk:
                    return
        finally:
            if bar is not None:
                bar.stop()


def jobs_for(name: str) -> int:
    """How many worker processes decode this input (1: decode in this process)."""
    import stat

    env = os.environ.get(JOBS_ENV, "").strip()
    try:
        jobs = int(env) if env else 0
    except ValueError:
        raise UsageError(f"{JOBS_ENV} must be a number, not {env!r}") from None
    if name == "-":
        return 1
    try:
        st = os.stat(name)
    except OSError:
        return 1  # the sequential reader reports the error
    if not stat.S_ISREG(st.st_mode):
        return 1  # a pipe or device is read once, from the start
    if not env:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        jobs = 2 if cpus >= 2 and st.st_size >= PARALLEL_MIN_BYTES else 1
    if jobs <= 1:
        return 1
    try:
        with open(name, "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                return 1  # a gzip stream cannot be split at byte offsets
    except OSError:
        return 1
    return jobs


def stream_jsonl(
    decoder: Any, paths: list[str], out: IO[str], on_reject: RejectFn, progress: ProgressFactory = None
) -> int:
    """Decode every input (a path, or "-" for stdin) to JSONL on `out`, exactly the bytes
    `RecordWriter("jsonl")` writes for `decoder.decode` records; lines that do not decode go to
    `on_reject(file, line number, text, reason)`. Returns how many lines decoded."""
    conv = JsonlLines(decoder)
    decoded = 0
    write = out.write
    for name in paths:
        display = "<stdin>" if name == "-" else name
        jobs = jobs_for(name)
        if jobs > 1:
            done = _parallel_jsonl(conv, decoder, name, display, jobs, out, on_reject, progress)
            if done is not None:
                decoded += done
                continue
        number = 0
        for data, lines in blocks(name, progress):
            text, bad = conv.block(data, lines)
            for i in bad:
                body = lines[i].rstrip("\n").rstrip("\r")
                on_reject(display, number + i + 1, body, lambda b=body: decoder.explain_failure(b))
            decoded += len(lines) - len(bad)
            number += len(lines)
            write(text)
    return decoded


# -- worker processes (a file split at line boundaries; output written in input order) --------
_WORKER: JsonlLines | None = None  # set in the parent before the workers fork
_TURN: Any = None  # (condition, shared counter, output fd): the workers write the output themselves


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the workers


def _worker_task(task: tuple[int, str, int, int | None]) -> tuple[bytes, int, list[tuple[int, str]], str]:
    """Decode one byte range: (JSONL as UTF-8, number of lines, [(index, line) of rejected lines],
    "written" (by this worker; the bytes returned are empty), "closed" (the reader is gone) or
    "parent" (the parent writes them))."""
    index, name, start, end = task
    assert _WORKER is not None
    with open(name, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    lines, _ = split_lines(data, final=True)
    text, bad = _WORKER.block(data, lines)
    # JSONL text is valid UTF-8 (the writer replaced lone surrogates)
    out = text.encode("utf-8")
    rejected = [(i, lines[i]) for i in bad]
    if _TURN is None:
        return out, len(lines), rejected, "parent"
    # Write straight to the output once the ranges before this one are written (no copy to the
    # parent). If that takes long (the other worker is held up), hand the bytes to the parent instead
    # and go on with the next range.
    cond, turn, fd = _TURN
    with cond:
        mine = cond.wait_for(lambda: turn.value == index, timeout=TURN_WAIT)
    if not mine:
        return out, len(lines), rejected, "parent"
    status = "written"
    try:
        view = memoryview(out)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        status = "closed"
    finally:
        with cond:
            turn.value = index + 1
            cond.notify_all()
    return b"", len(lines), rejected, status


def _chunk_offsets(name: str, jobs: int) -> list[tuple[int, str, int, int | None]]:
    """Byte ranges of about PARALLEL_CHUNK_BYTES, each starting at a line start; the last to EOF."""
    size = os.path.getsize(name)
    step = max(16 * 1024, min(PARALLEL_CHUNK_BYTES, size // (jobs * 8) or 1))
    starts = [0]
    with open(name, "rb") as f:
        while starts[-1] + step < size:
            f.seek(starts[-1] + step)
            f.readline()
            pos = f.tell()
            if pos >= size:
                break
            starts.append(pos)
    ends: list[int | None] = [*starts[1:], None]
    return [(i, name, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def _utf8_buffer(out: IO[str]) -> IO[bytes] | None:
    """The binary stream under `out` when writing UTF-8 bytes there equals writing text to `out`."""
    import codecs

    buffer = getattr(out, "buffer", None)
    try:
        utf8 = codecs.lookup(out.encoding).name == "utf-8" and out.errors == "strict"
    except (AttributeError, LookupError, TypeError):
        return None
    if buffer is None or not utf8:
        return None
    out.flush()  # text written before goes first
    return buffer


def _parallel_jsonl(
    conv: JsonlLines,
    decoder: Any,
    name: str,
    display: str,
    jobs: int,
    out: IO[str],
    on_reject: RejectFn,
    progress: ProgressFactory,
) -> int | None:
    """`stream_jsonl` for one file with `jobs` worker processes (fork: they share the decoder).

    None (nothing written) when worker processes cannot be started here.
    """
    import multiprocessing
    from collections import deque

    global _WORKER, _TURN
    tasks = _chunk_offsets(name, jobs)
    _WORKER = conv
    try:
        ctx = multiprocessing.get_context("fork")
        fd = _output_fd(out)
        if fd is not None:
            _TURN = (ctx.Condition(), ctx.RawValue("q", 0), fd)
        pool = ctx.Pool(jobs, initializer=_worker_init)
    except (OSError, ValueError, ImportError):  # no fork or no semaphores here: one process
        _WORKER = _TURN = None
        return None
    bar = progress(os.path.getsize(name), Path(name).name) if progress else None
    decoded = number = 0
    try:
        with pool:
            pending: deque[Any] = deque()
            todo = iter(tasks)
            def take() -> None:
                nonlocal decoded, number
                decoded, number = _take(
                    pending.popleft(), decoded, number, decoder, display, out, on_reject, bar
                )

            for task in todo:  # a bounded window: results wait for a slow reader, not pile up
                pending.append((task, pool.apply_async(_worker_task, (task,))))
                if len(pending) >= 2 * jobs:
                    take()
            while pending:
                take()
    finally:
        _WORKER = _TURN = None
        if bar is not None:
            bar.stop()
    return decoded


def _output_fd(out: IO[str]) -> int | None:
    """The file descriptor workers may write the JSONL bytes to directly (everything before flushed)."""
    binary = _utf8_buffer(out)
    if binary is None:
        return None
    try:
        binary.flush()
        return binary.fileno()
    except (OSError, ValueError, AttributeError):  # not a real file (io.UnsupportedOperation)
        return None


def _take(
    item: tuple[tuple[int, str, int, int | None], Any],
    decoded: int,
    number: int,
    decoder: Any,
    display: str,
    out: IO[str],
    on_reject: RejectFn,
    bar: Any,
) -> tuple[int, int]:
    """Write one finished range (in input order); returns the running decoded and line counts."""
    task, result = item
    data, n, bad, status = result.get()
    for i, line in bad:
        body = line.rstrip("\n").rstrip("\r")
        on_reject(display, number + i + 1, body, lambda b=body: decoder.explain_failure(b))
    if status == "closed":
        raise OutputClosed()  # a worker found the reader gone (`| head`)
    if status == "parent":
        binary = _utf8_buffer(out)
        if binary is not None:
            binary.write(data)
            binary.flush()  # before the next range's worker writes to the same file
        else:
            out.write(data.decode("utf-8"))
        if _TURN is not None:  # every range before the next one is written now
            cond, turn, _ = _TURN
            with cond:
                turn.value = task[0] + 1
                cond.notify_all()
    if bar is not None:
        bar.update(bar.task_ids[0], completed=task[3] if task[3] is not None else os.path.getsize(task[1]))
    return decoded + n - len(bad), number + n
