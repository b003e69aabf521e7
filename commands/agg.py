"""`heka agg`: group-by aggregations, percentiles, top-N and time buckets over logs.

Also holds the input options shared by `heka agg`, `heka sql` and `heka report` (FILES, the decoder
choice, `--input-format`) and the helper that loads them and reports rejected lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from hekacli.errors import EXIT_DATA, UsageError
from hekacli.output import RecordWriter, default_format, stderr_console

if TYPE_CHECKING:  # polars and the analyzer are imported when a command runs, not on every `heka`
    import polars as pl

    from hekacli.analysis.sources import Dataset, DecoderChoice

NGINX_COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)

# --- input options shared by agg, sql and report ---------------------------------------------------------

FILES_ARG = typer.Argument(
    ...,
    help="Log files, globs, JSONL/Parquet/Heka stream files (.gz too), or - for stdin.",
    show_default=False,
)
INPUT_FORMAT = typer.Option(
    "auto", "--input-format", "-I", help="auto (sniffed from the first bytes), log, jsonl, parquet or heka."
)
NGINX = typer.Option(
    False, "--nginx", help="Decode raw lines as nginx combined (the default guess for logs)."
)
LOG_FORMAT = typer.Option(None, "--log-format", help="nginx log_format string of the raw lines.")
NGINX_CONF = typer.Option(None, "--nginx-conf", help="nginx.conf to take the log_format from.")
LOG_FORMAT_NAME = typer.Option(
    None,
    "--log-format-name",
    help="Which log_format of --nginx-conf (default: the one used by access_log, else the first).",
)
APACHE = typer.Option(None, "--apache", help="Apache LogFormat string of the raw lines.")
APACHE_CONF = typer.Option(None, "--apache-conf", help="Apache config to take the LogFormat from.")
RSYSLOG = typer.Option(None, "--rsyslog", help="rsyslog template string of the raw lines.")
RSYSLOG_CONF = typer.Option(None, "--rsyslog-conf", help="rsyslog.conf to take the template from.")
TEMPLATE_NAME = typer.Option(None, "--template-name", help="Which template of --rsyslog-conf.")
DECODER = typer.Option(
    None,
    "--decoder",
    help="Decoder kind for raw lines: nginx, nginx-error, apache, rsyslog, syslog, json, regex.",
)
PATTERN = typer.Option(None, "--pattern", help="Regular expression with named groups (--decoder regex).")
NO_CACHE = typer.Option(
    False, "--no-cache", help="Decode raw logs again instead of using (and filling) the decoded-log cache."
)
OUTPUT_FORMAT = typer.Option(
    None,
    "--format",
    "-f",
    help="table, jsonl, json, csv, tsv or parquet (default: table on a terminal, jsonl when piped).",
)
OUTPUT_FILE = typer.Option(None, "--output", "-o", help="Write to this file (needed for parquet).")
WHERE = typer.Option(
    None,
    "--where",
    "-w",
    help="Keep records matching this message_matcher expression, e.g. 'Fields\\[status] >= 500'.",
)


def tune_allocator() -> None:
    """Have polars' allocator (jemalloc) hand freed pages back soon, before polars is imported.

    Decoding makes many short-lived buffers. Returning them after 100 ms (not jemalloc's default
    10 s) keeps the peak memory of a one-shot analysis near its working set; returning them at once
    (decay 0) saved another ~15 MiB but cost 1.5-2.5 s of system time per million decoded lines
    (every chunk faulted its pages in again). A user's own setting wins.
    """
    if "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:100,muzzy_decay_ms:0")


DECODER_OPTIONS = ("nginx", "log_format", "nginx_conf", "log_format_name", "apache", "apache_conf", "rsyslog",
                   "rsyslog_conf", "template_name", "decoder", "pattern")


def decoder_choice_from(params: Mapping[str, Any]) -> DecoderChoice:
    """`decoder_choice` from a command's parameters (its `locals()`): the input options are the same
    in agg, sql and report."""
    return decoder_choice(**{name: params[name] for name in DECODER_OPTIONS})


def decoder_choice(
    *,
    nginx: bool = False,
    log_format: str | None = None,
    nginx_conf: str | None = None,
    log_format_name: str | None = None,
    apache: str | None = None,
    apache_conf: str | None = None,
    rsyslog: str | None = None,
    rsyslog_conf: str | None = None,
    template_name: str | None = None,
    decoder: str | None = None,
    pattern: str | None = None,
) -> DecoderChoice:
    """The decoder the options ask for (None kind = auto-detect nginx formats)."""
    from hekacli.analysis.sources import DecoderChoice

    opts: dict[str, Any] = {}
    kind = decoder
    families = [
        name
        for name, given in (
            ("nginx", nginx or log_format or nginx_conf),
            ("apache", apache or apache_conf),
            ("rsyslog", rsyslog or rsyslog_conf),
        )
        if given
    ]
    if len(families) > 1:
        raise UsageError(f"choose one log family, not {' and '.join(families)}")
    if nginx or log_format or nginx_conf:
        kind = kind or "nginx"
        if log_format:
            opts["log_format"] = log_format
        elif nginx_conf:
            opts["nginx_conf"] = nginx_conf
            if log_format_name:
                opts["log_format_name"] = log_format_name
        else:
            opts["log_format"] = NGINX_COMBINED
    elif apache or apache_conf:
        kind = kind or "apache"
        if apache:
            opts["log_format"] = apache
        else:
            opts["apache_conf"] = apache_conf
            if log_format_name:
                opts["log_format_name"] = log_format_name
    elif rsyslog or rsyslog_conf:
        kind = kind or "rsyslog"
        if rsyslog:
            opts["template"] = rsyslog
        else:
            opts["rsyslog_conf"] = rsyslog_conf
            if template_name:
                opts["template_name"] = template_name
    if pattern:
        opts["pattern"] = pattern
        kind = kind or "regex"
    return DecoderChoice(kind, opts)


def load_inputs(
    files: list[str],
    input_format: str,
    choice: DecoderChoice,
    columns: set[str] | None = None,
    use_cache: bool = True,
) -> Dataset:
    """Load FILES (only `columns`, if given) with a progress bar for big inputs on a terminal."""
    from hekacli.analysis.progress import reading_progress
    from hekacli.analysis.sources import input_size, load

    with reading_progress(input_size(files), "reading logs") as on_progress:
        return load(
            files,
            kind=input_format,
            decoder=choice,
            on_progress=on_progress,
            columns=columns,
            use_cache=use_cache,
        )


def warn_rejects(ds: Dataset) -> int:
    """Tell stderr how many lines were rejected (and the first ones); return the exit code to use."""
    if not ds.rejected:
        return 0
    console = stderr_console()
    for src in ds.sources:
        if src.rejected:
            total = (src.rows or 0) + src.rejected
            console.print(
                f"heka: {src.path}: {src.rejected:,} of {total:,} records rejected"
                + (f" by {src.decoder}" if src.decoder else ""),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    for rej in ds.rejects[:5]:
        console.print(f"heka: {rej}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_DATA


def check_output(fmt: str | None, output: str | None) -> None:
    """Reject a bad --format/--output before any input is read (not after minutes of decoding)."""
    from hekacli.output import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "parquet" and not output:
        raise UsageError("--format parquet needs --output FILE")


def write_frame(df: pl.DataFrame, fmt: str | None, output: str | None, title: str | None = None) -> None:
    """Write a result frame with hekacli.output (Timestamps as RFC 3339 text except in Parquet)."""
    from hekacli.analysis.columns import timestamp_to_text

    fmt = fmt or default_format()
    if fmt == "parquet":
        if not output:
            raise UsageError("--format parquet needs --output FILE")
        from hekacli.parquet import write_parquet_frames

        write_parquet_frames([df], output)  # (an unwritable path is a one-line OutputError)
        return
    stream = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    try:
        writer = RecordWriter(fmt, stream, title=title)
        for row in timestamp_to_text(df).iter_rows(named=True):
            writer.write(row)
        writer.close()
    finally:
        if output:
            stream.close()


def register(app: typer.Typer) -> None:
    """Add `heka agg`."""

    @app.command("agg")
    def agg_command(
        files: list[str] = FILES_ARG,
        by: list[str] = typer.Option([], "--by", "-b", help="Group by this field (repeatable)."),
        count: bool = typer.Option(False, "--count", "-c", help="Count records (the default metric)."),
        sum_: list[str] = typer.Option([], "--sum", help="Sum of a numeric field (repeatable)."),
        avg: list[str] = typer.Option([], "--avg", help="Mean of a numeric field."),
        min_: list[str] = typer.Option([], "--min", help="Minimum of a field."),
        max_: list[str] = typer.Option([], "--max", help="Maximum of a field."),
        p50: list[str] = typer.Option([], "--p50", help="Median of a numeric field."),
        p90: list[str] = typer.Option([], "--p90", help="90th percentile of a numeric field."),
        p95: list[str] = typer.Option([], "--p95", help="95th percentile of a numeric field."),
        p99: list[str] = typer.Option([], "--p99", help="99th percentile of a numeric field."),
        distinct: list[str] = typer.Option([], "--distinct", help="Number of distinct values of a field."),
        top: int | None = typer.Option(None, "--top", "-n", min=1, help="Keep the N first rows."),
        every: str | None = typer.Option(
            None, "--every", help="Time buckets of this size (30s, 1m, 1h, 1d…); empty buckets are kept."
        ),
        where: str | None = WHERE,
        sort: str | None = typer.Option(
            None,
            "--sort",
            help="Sort by an output column; -COL or COL:desc for "
            "descending. Default: first metric descending (time with --every).",
        ),
        fmt: str | None = OUTPUT_FORMAT,
        output: str | None = OUTPUT_FILE,
        input_format: str = INPUT_FORMAT,
        nginx: bool = NGINX,
        log_format: str | None = LOG_FORMAT,
        nginx_conf: str | None = NGINX_CONF,
        log_format_name: str | None = LOG_FORMAT_NAME,
        apache: str | None = APACHE,
        apache_conf: str | None = APACHE_CONF,
        rsyslog: str | None = RSYSLOG,
        rsyslog_conf: str | None = RSYSLOG_CONF,
        template_name: str | None = TEMPLATE_NAME,
        decoder: str | None = DECODER,
        pattern: str | None = PATTERN,
        no_cache: bool = NO_CACHE,
    ) -> None:
        """Group-by aggregations: counts, sums, averages, percentiles, distinct counts, time buckets.

        Example: heka agg sample_logs/nginx/access.log --by status --count
        """
        check_output(fmt, output)
        tune_allocator()
        from hekacli.analysis.columns import uri_is_derived
        from hekacli.analysis.query import AggSpec, aggregate, analysis_frame, where_columns

        spec = AggSpec(
            by=list(by),
            count=count,
            sums=list(sum_),
            avgs=list(avg),
            mins=list(min_),
            maxs=list(max_),
            percentiles=[("p50", c) for c in p50]
            + [("p90", c) for c in p90]
            + [("p95", c) for c in p95]
            + [("p99", c) for c in p99],
            distinct=list(distinct),
            every=every,
            top=top,
            sort=sort,
        )
        choice = decoder_choice_from(locals())
        needed = where_columns(where)
        ds = load_inputs(
            files,
            input_format,
            choice,
            None if needed is None else needed | set(spec.columns()),
            not no_cache,
        )
        derived = uri_is_derived(ds.lf.collect_schema().names())
        df = aggregate(analysis_frame(ds.lf, where), spec, known=ds.fields, uri_derived=derived)
        write_frame(df, fmt, output)
        code = warn_rejects(ds)
        if code:
            raise typer.Exit(code)
