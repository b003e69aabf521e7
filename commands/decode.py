"""`heka decode KIND [FILE...]`: log lines -> structured records (JSONL, table, CSV/TSV, Parquet, Heka)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import typer

from hekacli.errors import EXIT_DATA, OutputClosed, OutputError, UsageError

OUTPUT_FORMATS = ("jsonl", "json", "table", "csv", "tsv", "parquet", "heka")
MAX_STDERR_REJECTS = 20
PROGRESS_MIN_BYTES = 8 * 1024 * 1024


class Rejects:
    """Lines that did not decode: counted, written to --rejects (JSONL) or summarised on stderr."""

    def __init__(self, path: str | None) -> None:
        self.count = 0
        self.path = path
        self.fh: IO[str] | None = None
        if path is not None:
            try:
                self.fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise OutputError(f"cannot open: {exc.strerror or exc}", file=path) from None

    def add(self, file: str, lineno: int, text: str, reason: Callable[[], str] | str) -> None:
        self.count += 1
        if self.fh is None and self.count > MAX_STDERR_REJECTS:
            return
        why = reason() if callable(reason) else reason
        if self.fh is not None:
            self.fh.write(
                json.dumps({"file": file, "line": lineno, "reason": why, "text": text}, ensure_ascii=False)
                + "\n"
            )
        else:
            sys.stderr.write(f"heka: {file}:{lineno}: rejected: {why}\n")

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        elif self.count > MAX_STDERR_REJECTS:
            sys.stderr.write(
                f"heka: ... and {self.count - MAX_STDERR_REJECTS} more rejected lines "
                "(use --rejects FILE to keep them all)\n"
            )


def _build(
    kind: str,
    *,
    log_format: str | None,
    template: str | None,
    nginx_conf: str | None,
    apache_conf: str | None,
    rsyslog_conf: str | None,
    log_format_name: str | None,
    template_name: str | None,
    pattern: str | None,
    raw_values: bool,
    user_agent: str | None,
    tz: str | None,
    message_type: str | None,
    log_file: str | None,
) -> Any:
    from hekacli.parsers import build_decoder

    options: dict[str, Any] = {
        "log_format": log_format,
        "template": template,
        "nginx_conf": nginx_conf,
        "apache_conf": apache_conf,
        "rsyslog_conf": rsyslog_conf,
        "log_format_name": log_format_name,
        "template_name": template_name,
        "pattern": pattern,
        "tz": tz,
        "message_type": message_type,
    }
    if raw_values:
        options["raw_values"] = True
    if user_agent:
        options["user_agent"] = user_agent
    if log_file and (nginx_conf or apache_conf or rsyslog_conf):
        options["log_file"] = log_file
    return build_decoder(kind, **options)


def _progress(enabled: bool, total: int, label: str) -> Any:
    """A rich progress bar on stderr, only on a terminal and for big inputs."""
    if not enabled or total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from hekacli.output import stderr_console

    prog = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    )
    prog.start()
    prog.add_task(label, total=total)
    return prog


def _lines(name: str, progress: bool) -> Iterator[tuple[int, str]]:
    """(line number, line) of a file or stdin ('-'), gunzipping transparently."""
    from hekacli.parsers.core import open_text_lines

    if name == "-":
        import gzip
        import io

        raw = sys.stdin.buffer
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        src: Any = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        fh = io.TextIOWrapper(src, encoding="utf-8", errors="backslashreplace", newline="\n")
        yield from enumerate(fh, 1)
        return
    fh = open_text_lines(name)
    size = Path(name).stat().st_size
    bar = _progress(progress, size, Path(name).name)
    try:
        if bar is None:
            yield from enumerate(fh, 1)
            return
        raw = fh.buffer
        base = getattr(raw, "fileobj", raw)
        for number, line in enumerate(fh, 1):
            if number % 20000 == 0:
                bar.update(bar.task_ids[0], completed=base.tell())
            yield number, line
    finally:
        if bar is not None:
            bar.stop()
        fh.close()


def _explain(decoder: Any, line: str | None) -> int:
    from hekacli.output import render_table

    render_table(decoder.explain(), title=f"{decoder.kind} format ({decoder.message_type})")
    if line is None:
        return 0
    rows = decoder.explain_line(line)
    if rows and decoder.decode(line) is not None:
        render_table(rows, title="how the line splits")
        return 0
    sys.stdout.write(f"the line does not decode: {decoder.explain_failure(line)}\n")
    return EXIT_DATA


def decode(
    kind: str = typer.Argument(
        ..., metavar="KIND", help="nginx | nginx-error | apache | rsyslog | syslog | json | regex"
    ),
    files: list[str] = typer.Argument(None, metavar="FILE", help="Log files (.gz ok); stdin when none."),
    log_format: str | None = typer.Option(
        None,
        "--log-format",
        "-F",
        help="nginx log_format / Apache LogFormat text, or a built-in "
        "name (nginx: combined, main; apache: common, combined, "
        "vhost_combined).",
    ),
    template: str | None = typer.Option(
        None, "--template", "-T", help="rsyslog template text or built-in name (RSYSLOG_FileFormat ...)."
    ),
    nginx_conf: str | None = typer.Option(
        None, "--nginx-conf", help="Read the log_format from this nginx.conf."
    ),
    apache_conf: str | None = typer.Option(
        None, "--apache-conf", help="Read the LogFormat from this config."
    ),
    rsyslog_conf: str | None = typer.Option(
        None, "--rsyslog-conf", help="Read the template from this config."
    ),
    log_format_name: str | None = typer.Option(
        None,
        "--log-format-name",
        help="Which log_format / LogFormat nickname of the config "
        "(default: the one the file is written with, or the only one).",
    ),
    template_name: str | None = typer.Option(
        None, "--template-name", help="Which template of --rsyslog-conf."
    ),
    pattern: str | None = typer.Option(
        None, "--pattern", "-p", help="regex decoder: a regex with named groups."
    ),
    raw_values: bool = typer.Option(
        False, "--raw-values", help='Keep values as logged (no decoding of \\xHH, \\" ... escapes).'
    ),
    user_agent: str | None = typer.Option(
        None,
        "--user-agent",
        "-u",
        metavar="MODE",
        help="Add user_agent_browser/_version/_os: keep (keep the user "
        "agent), drop (Heka's user_agent_transform) or conditional.",
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="rsyslog: time zone of dates written without an offset."
    ),
    message_type: str | None = typer.Option(None, "--type", help="Message Type (default e.g. nginx.access)."),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="jsonl | json | table | csv | tsv | parquet | heka "
        "(default: table on a terminal, jsonl when piped).",
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write here instead of stdout (parquet: required)."
    ),
    where: str | None = typer.Option(
        None, "--where", "-w", help="Keep only records matching this message_matcher."
    ),
    rejects: str | None = typer.Option(
        None,
        "--rejects",
        help="Write rejected lines (JSONL: file, line, reason, text) here instead of to stderr.",
    ),
    allow_rejects: bool = typer.Option(
        False, "--allow-rejects", help="Exit 0 even when lines were rejected."
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Print the compiled format (pieces, fields, types)."
    ),
    line: str | None = typer.Option(None, "--line", help="With --explain: show how this sample line splits."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Progress bar on stderr (terminal only)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary on stderr."),
) -> None:
    """Decode log lines into structured records with the server's own format.

    Paste nginx's log_format, Apache's LogFormat or an rsyslog template, or point at the server's
    config with --nginx-conf / --apache-conf / --rsyslog-conf. Rejected lines are never lost: each is
    reported with file, line number and reason. Exit 0 when every line decoded, 1 when any line was
    rejected (unless --allow-rejects), 2 on a bad format or option, 3 when a file cannot be read.
    """
    from hekacli.output import default_format

    if line is not None and not explain:
        raise UsageError("--line needs --explain")
    fmt = fmt or default_format()
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"unknown --format {fmt!r} (choose from {', '.join(OUTPUT_FORMATS)})")
    if fmt == "parquet" and not output:
        raise UsageError("--format parquet needs --output FILE")
    paths = list(files or []) or ["-"]
    first_file = next((p for p in paths if p != "-"), None)
    decoder = _build(
        kind,
        log_format=log_format,
        template=template,
        nginx_conf=nginx_conf,
        apache_conf=apache_conf,
        rsyslog_conf=rsyslog_conf,
        log_format_name=log_format_name,
        template_name=template_name,
        pattern=pattern,
        raw_values=raw_values,
        user_agent=user_agent,
        tz=tz,
        message_type=message_type,
        log_file=first_file,
    )
    if explain:
        raise typer.Exit(_explain(decoder, line))
    matcher = None
    if where:
        from hekacli.matcher import compile_matcher

        matcher = compile_matcher(where)
    rej = Rejects(rejects)
    try:
        if fmt == "parquet":
            decoded, kept = _bulk_parquet(decoder, paths, output or "", matcher, rej)
        else:
            decoded, kept = _stream(decoder, paths, fmt, output, matcher, rej, progress)
    except BrokenPipeError:
        # `heka decode ... | head`: the reader has what it wanted. End quietly with 0 (click would
        # turn EPIPE into exit 1 before hekacli's own handler sees it).
        _silence_stdout()
        raise typer.Exit(0) from None
    finally:
        rej.close()
    if not quiet:
        extra = f", {kept} matched --where" if matcher is not None else ""
        sys.stderr.write(f"heka decode: {decoded} decoded, {rej.count} rejected{extra}\n")
    if rej.count and not allow_rejects:
        raise typer.Exit(EXIT_DATA)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _open_out(output: str | None, binary: bool) -> IO[Any]:
    if output is None or output == "-":
        return sys.stdout.buffer if binary else sys.stdout
    try:
        return open(output, "wb" if binary else "w", encoding=None if binary else "utf-8")  # noqa: SIM115
    except OSError as exc:
        raise OutputError(f"cannot open output: {exc.strerror or exc}", file=output) from None


def _stream(
    decoder: Any, paths: list[str], fmt: str, output: str | None, matcher: Any, rej: Rejects, progress: bool
) -> tuple[int, int]:
    """The streaming path: line in, record out."""
    decoded = kept = 0
    match = matcher.match_record if matcher is not None else None
    with ExitStack() as stack:
        if fmt == "heka":
            from hekacli.framing import frame

            out_b = _open_out(output, True)
            if out_b is not sys.stdout.buffer:
                stack.callback(out_b.close)

            def emit(rec: dict[str, Any]) -> None:
                out_b.write(frame(decoder.to_message(rec)))

            close: Callable[[], None] = out_b.flush
        else:
            from hekacli.output import RecordWriter

            out_t = _open_out(output, False)
            if out_t is not sys.stdout:
                stack.callback(out_t.close)
            writer = RecordWriter(fmt, out_t, title=f"{decoder.message_type} records")
            emit = writer.write
            close = writer.close
            if fmt == "jsonl" and decoder.kind != "json":
                emit = _fast_jsonl(out_t)  # with --where: the record is needed anyway
        if fmt == "jsonl" and match is None:
            # the hot path: blocks of lines straight to JSON text (same bytes as the writer's)
            decoded = kept = _stream_jsonl(decoder, paths, out_t, rej, progress)
            close()
            return decoded, kept
        decode_line = decoder.decode
        for name in paths:
            display = "<stdin>" if name == "-" else name
            for number, text in _lines(name, progress):
                rec = decode_line(text)
                if rec is None:
                    body = text.rstrip("\n").rstrip("\r")
                    rej.add(display, number, body, lambda b=body: decoder.explain_failure(b))
                    continue
                decoded += 1
                if match is not None and not match(rec):
                    continue
                kept += 1
                emit(rec)
        close()
    return decoded, kept


def _fast_jsonl(out: IO[str]) -> Callable[[dict[str, Any]], None]:
    """JSONL exactly as `RecordWriter("jsonl")` writes it, faster, for records from format decoders.

    Their values are str (valid UTF-8 text: undecodable bytes were kept as \\xHH), int, finite float
    or lists of those, so the generic JSON-safety pass is not needed; timestamps are formatted once
    per second.
    """
    from hekacli.output import format_timestamp

    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    days: dict[int, str] = {}
    write = out.write

    def emit(rec: dict[str, Any]) -> None:
        ts = rec.get("Timestamp")
        if ts is not None:
            sec, frac = divmod(ts, 1_000_000_000)
            day, rem = divmod(sec, 86400)
            date = days.get(day)
            if date is None:
                if len(days) > 4096:
                    days.clear()
                # "YYYY-MM-DD" exactly as format_timestamp spells it (minus "T00:00:00.000000000Z")
                date = days[day] = format_timestamp(day * 86_400_000_000_000)[:-20]
            h, rem = divmod(rem, 3600)
            m, s = divmod(rem, 60)
            # the record is ours and written once: replace the value in place (key order unchanged)
            rec["Timestamp"] = f"{date}T{h:02d}:{m:02d}:{s:02d}.{frac:09d}Z"
        write(dumps(rec) + "\n")

    return emit


BLOCK_BYTES = 256 * 1024  # read size of the streaming JSONL path
PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # files this big are decoded by worker processes
PARALLEL_CHUNK_BYTES = 2 * 1024 * 1024  # one worker task
TURN_WAIT = 0.02  # seconds a worker waits for its turn to write before handing its bytes to the parent
JOBS_ENV = "HEKA_DECODE_JOBS"  # worker processes for a file: 1 = none; unset: 2 for big files


class _JsonlLines:
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


def _split_lines(data: bytes, final: bool) -> tuple[list[str], bytes]:
    """Complete lines of `data` (decoded as `open_text_lines` does) and the unfinished rest."""
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


def _blocks(name: str, progress: bool) -> Iterator[tuple[bytes, list[str]]]:
    """(bytes, lines) blocks of a file or stdin ('-'), gunzipping transparently; lines without newline."""
    import gzip

    from hekacli.parsers.core import open_text_lines

    bar = None
    if name == "-":
        raw: Any = sys.stdin.buffer
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        src: Any = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        closer = None
    else:
        fh = open_text_lines(name)
        src = fh.buffer
        closer = fh.close
        bar = _progress(progress, Path(name).stat().st_size, Path(name).name)
    base = getattr(src, "fileobj", src)
    # read1: what is there (a pipe from `tail -f` is decoded as it comes, not once 1 MB arrived)
    read = src.read1 if hasattr(src, "read1") else src.read
    rest = b""
    try:
        while True:
            chunk = read(BLOCK_BYTES)
            data = rest + chunk if rest else chunk
            lines, rest = _split_lines(data, final=not chunk)
            if lines:
                yield data[: len(data) - len(rest)], lines
            if bar is not None:
                bar.update(bar.task_ids[0], completed=base.tell())
            if not chunk:
                return
    finally:
        if bar is not None:
            bar.stop()
        if closer is not None:
            closer()


def _jobs_for(name: str) -> int:
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


def _stream_jsonl(decoder: Any, paths: list[str], out: IO[str], rej: Rejects, progress: bool) -> int:
    """Decode every input to JSONL on `out`; returns how many lines decoded."""
    conv = _JsonlLines(decoder)
    decoded = 0
    write = out.write
    for name in paths:
        display = "<stdin>" if name == "-" else name
        jobs = _jobs_for(name)
        if jobs > 1:
            done = _parallel_jsonl(conv, decoder, name, display, jobs, out, rej, progress)
            if done is not None:
                decoded += done
                continue
        number = 0
        for data, lines in _blocks(name, progress):
            text, bad = conv.block(data, lines)
            for i in bad:
                body = lines[i].rstrip("\n").rstrip("\r")
                rej.add(display, number + i + 1, body, lambda b=body: decoder.explain_failure(b))
            decoded += len(lines) - len(bad)
            number += len(lines)
            write(text)
    return decoded


# -- worker processes (a file split at line boundaries; output written in input order) --------
_WORKER: _JsonlLines | None = None  # set in the parent before the workers fork
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
    lines, _ = _split_lines(data, final=True)
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
    conv: _JsonlLines,
    decoder: Any,
    name: str,
    display: str,
    jobs: int,
    out: IO[str],
    rej: Rejects,
    progress: bool,
) -> int | None:
    """`_stream_jsonl` for one file with `jobs` worker processes (fork: they share the decoder).

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
    bar = _progress(progress, os.path.getsize(name), Path(name).name)
    decoded = number = 0
    try:
        with pool:
            pending: deque[Any] = deque()
            todo = iter(tasks)
            for task in todo:  # a bounded window: results wait for a slow reader, not pile up
                pending.append((task, pool.apply_async(_worker_task, (task,))))
                if len(pending) < 2 * jobs:
                    continue
                decoded, number = _take(pending.popleft(), decoded, number, decoder, display, out, rej, bar)
            while pending:
                decoded, number = _take(pending.popleft(), decoded, number, decoder, display, out, rej, bar)
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
    rej: Rejects,
    bar: Any,
) -> tuple[int, int]:
    """Write one finished range (in input order); returns the running decoded and line counts."""
    task, result = item
    data, n, bad, status = result.get()
    for i, line in bad:
        body = line.rstrip("\n").rstrip("\r")
        rej.add(display, number + i + 1, body, lambda b=body: decoder.explain_failure(b))
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


def _bulk_parquet(decoder: Any, paths: list[str], output: str, matcher: Any, rej: Rejects) -> tuple[int, int]:
    """The bulk path: whole files decoded column-wise with polars, written as Parquet."""
    import polars as pl

    frames = []
    decoded = 0
    for name in paths:
        display = "<stdin>" if name == "-" else name
        if name == "-":
            data = sys.stdin.buffer.read()
            if data[:2] == b"\x1f\x8b":
                import gzip

                data = gzip.decompress(data)
            from hekacli.parsers.core import lines_series_from_bytes

            df = decoder.frame(lines_series_from_bytes(data))
        else:
            df = decoder.frame_file(name)  # a missing/unreadable file is a clear InputError
        decoded += df.height
        if decoder.rejects is not None:
            for number, text_line, reason in decoder.rejects.iter_rows():
                rej.add(display, number, text_line, reason)
        frames.append(df)
    df = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if matcher is not None and df.height:
        try:
            expr = matcher.polars_expr(df.collect_schema())
        except Exception:  # noqa: BLE001 - the vectorised form is an optimisation; rows are matched below
            expr = None
        if expr is not None:
            df = df.filter(expr)
        else:
            df = pl.DataFrame(
                [
                    r
                    for r in df.to_dicts()
                    if matcher.match_record({k: v for k, v in r.items() if v is not None})
                ],
                schema=df.schema,
            )
    if "Timestamp" in df.columns:
        df = df.with_columns(pl.from_epoch("Timestamp", time_unit="ns").dt.replace_time_zone("UTC"))
    try:
        df.write_parquet(output)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", file=output) from None
    return decoded, df.height


def register(app: typer.Typer) -> None:
    """Add `heka decode` to the app."""
    app.command("decode")(decode)
