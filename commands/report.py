"""`heka report`: the GoAccess-style access-log report (terminal, self-contained HTML, JSON)."""

from __future__ import annotations

import json
import sys
import time

import typer

from hekacli.errors import OutputError
from hekacli.output import jsonable, stderr_console

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
    PATTERN,
    RSYSLOG,
    RSYSLOG_CONF,
    TEMPLATE_NAME,
    WHERE,
    decoder_choice_from,
    load_inputs,
    tune_allocator,
    warn_rejects,
)


def register(app: typer.Typer) -> None:
    """Add `heka report`."""

    @app.command("report")
    def report_command(
        files: list[str] = FILES_ARG,
        html: str | None = typer.Option(
            None,
            "--html",
            help="Also write a self-contained HTML report here "
            "(inline CSS and SVG; no network, no JavaScript).",
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print the report's numbers as JSON instead of tables."
        ),
        top: int = typer.Option(10, "--top", "-n", min=1, help="Rows per panel."),
        where: str | None = WHERE,
        width: int | None = typer.Option(None, "--width", help="Terminal width to lay out for."),
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
        """The access-log report: visitors, URLs, static files, 404s, hosts, OS, browsers, visit times,
        referrers, status codes and time served.

        Example: heka report sample_logs/nginx/access.log --html report.html
        """
        started = time.perf_counter()
        tune_allocator()
        from hekacli.analysis.columns import prepare
        from hekacli.analysis.query import apply_where, where_columns
        from hekacli.analysis.report import REPORT_COLUMNS, build_report

        choice = decoder_choice_from(locals())
        needed = where_columns(where)
        ds = load_inputs(
            files,
            input_format,
            choice,
            None if needed is None else needed | set(REPORT_COLUMNS),
            not no_cache,
        )
        if where:
            ds.lf = apply_where(prepare(ds.lf, datetime=False), where)
        report = build_report(ds, top=top, started=started)
        if html:
            from hekacli.analysis.render_html import render_html

            try:
                with open(html, "w", encoding="utf-8") as f:
                    f.write(render_html(report))
            except OSError as exc:
                raise OutputError(f"cannot write: {exc.strerror or exc}", file=html) from exc
        if as_json:
            json.dump(jsonable(report), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        elif not html or sys.stdout.isatty():
            from hekacli.analysis.render_terminal import render_report

            render_report(report, width=width)
        if html:
            stderr_console().print(f"heka: wrote {html}", markup=False, highlight=False)
        code = warn_rejects(ds)
        if code:
            raise typer.Exit(code)
