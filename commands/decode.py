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

from hekacli.errors import EXIT_DATA, OutputError, UsageError

OUTPUT_FORMATS = ("jsonl", "json", "table", "csv", "tsv", "parquet", "heka")
MAX_STDERR_REJECTS = 20
TABLE_ROWS = 200  # records shown by `--format table` (the default on a terminal)
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
    """(line number, line) of a file or stdin ('-'), gunzipping transparently; undecodable bytes
    kept as ``\\xHH``. A read error is a one-line InputError naming the file."""
    import io

    from hekacli.logfiles import open_binary

    with open_binary(name) as src:
        bar = None if name == "-" else _progress(progress, Path(name).stat().st_size, Path(name).name)
        fh = io.TextIOWrapper(src, encoding="utf-8", errors="backslashreplace", newline="\n")
        try:
            if bar is None:
                yield from enumerate(fh, 1)
                return
            base = getattr(src, "fileobj", src)  # (the file's own offset: a .gz is read compressed)
            for number, line in enumerate(fh, 1):
                if number % 20000 == 0:
                    bar.update(bar.task_ids[0], completed=base.tell())
                yield number, line
        finally:
            if bar is not None:
                bar.stop()
            fh.detach()  # (the stream is open_binary's to close: stdin stays open)


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
            # (a table of whole records is for a look at a few: rich takes ~4 ms a row to lay it out)
            writer = RecordWriter(
                fmt, out_t, title=f"{decoder.message_type} records", max_table_rows=TABLE_ROWS
            )
            emit = writer.write
            close = writer.close
            if fmt == "jsonl" and decoder.kind != "json":
                emit = _fast_jsonl(out_t)  # with --where: the record is needed anyway
        if fmt == "jsonl" and match is None:
            # the hot path: blocks of lines straight to JSON text (same bytes as the writer's)
            from hekacli.parsers.streaming import stream_jsonl

            decoded = kept = stream_jsonl(
                decoder, paths, out_t, rej.add, lambda total, label: _progress(progress, total, label)
            )
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


def _bulk_parquet(decoder: Any, paths: list[str], output: str, matcher: Any, rej: Rejects) -> tuple[int, int]:
    """The bulk path: files decoded column-wise with polars, chunk by chunk, into one Parquet file.

    With a decoder whose columns do not depend on the input, each chunk is written while the next
    ones are decoded; otherwise (JSON lines) the files are joined first, columns as the union."""
    import polars as pl

    from hekacli.parquet import write_parquet_frames

    counts = {"decoded": 0}

    def chunks() -> Iterator[pl.DataFrame]:
        for name in paths:
            display = "<stdin>" if name == "-" else name
            # (`-` is stdin; a missing or unreadable file is a clear InputError)
            for df, rejects in decoder.frame_file_chunks(name):
                counts["decoded"] += df.height
                for number, text_line, reason in rejects.iter_rows():
                    rej.add(display, number, text_line, reason)
                yield _for_parquet(df, matcher)

    frames: Iterator[pl.DataFrame] = chunks()
    if not decoder.fixed_schema:
        parts = list(frames)
        frames = iter([pl.concat(parts, how="diagonal_relaxed")] if parts else [])
    kept = write_parquet_frames(frames, output)
    return counts["decoded"], kept


def _for_parquet(df: Any, matcher: Any) -> Any:
    """A chunk of rows as written: only those `matcher` keeps, Timestamp as a UTC datetime."""
    import polars as pl

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
    return df


def register(app: typer.Typer) -> None:
    """Add `heka decode` to the app."""
    app.command("decode")(decode)
