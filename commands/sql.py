"""`heka sql`: polars SQL over decoded records, as the table `logs`."""

from __future__ import annotations

import typer

from .agg import (
    APACHE,
    APACHE_CONF,
    DECODER,
    FILES_ARG,
    INPUT_FORMAT,
    LOG_FORMAT,
    LOG_FORMAT_NAME,
    NGINX,
    NGINX_CONF,
    NO_CACHE,
    OUTPUT_FILE,
    OUTPUT_FORMAT,
    PATTERN,
    RSYSLOG,
    RSYSLOG_CONF,
    TEMPLATE_NAME,
    WHERE,
    check_output,
    decoder_choice_from,
    load_inputs,
    tune_allocator,
    warn_rejects,
    write_frame,
)


def register(app: typer.Typer) -> None:
    """Add `heka sql`."""

    @app.command("sql")
    def sql_command(
        query: str = typer.Argument(
            ...,
            help='SQL over the table logs, e.g. "SELECT status, count(*) AS n '
            'FROM logs GROUP BY status ORDER BY n DESC".',
            show_default=False,
        ),
        files: list[str] = FILES_ARG,
        where: str | None = WHERE,
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
        """Run a SQL query over the records (table name: logs). Timestamp is a UTC datetime.

        Example: heka sql "SELECT status, count(*) AS n FROM logs GROUP BY status" access.log
        """
        check_output(fmt, output)
        tune_allocator()
        from hekacli.analysis.query import analysis_frame, run_sql

        choice = decoder_choice_from(locals())
        ds = load_inputs(files, input_format, choice, None, not no_cache)
        df = run_sql(analysis_frame(ds.lf, where), query)
        write_frame(df, fmt, output)
        code = warn_rejects(ds)
        if code:
            raise typer.Exit(code)
