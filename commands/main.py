"""The `heka` command: one Typer app, a subcommand per module, and the error/exit-code policy."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence

import typer

from hekacli import __version__
from hekacli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, HekaError

from . import (
    agg,
    cat,
    certs,
    decode,
    flood,
    inject,
    logstream,
    report,
    sandbox,
    sbmgr,
    sbmgrload,
    send,
    serve,
    sql,
)

# Each module adds its own command(s) or sub-app; order here is the order in `heka --help`.
COMMAND_MODULES = (decode, agg, sql, report, logstream, cat, inject, send, serve, flood, sandbox, sbmgr,
                   sbmgrload, certs)

app = typer.Typer(
    name="heka",
    help="Mozilla Heka's tools as one modern, pipe-friendly CLI and local log analyzer.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"heka {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Mozilla Heka's tools as one modern, pipe-friendly CLI and local log analyzer."""


for _module in COMMAND_MODULES:
    _module.register(app)


def report_error(exc: BaseException) -> int:
    """Print `exc` as one line on stderr and return the exit code for it."""
    if isinstance(exc, HekaError):
        sys.stderr.write(f"heka: error: {exc}\n")
        return exc.exit_code
    sys.stderr.write(f"heka: internal error: {type(exc).__name__}: {exc} (HEKA_DEBUG=1 shows the traceback)\n")
    return EXIT_INTERNAL


def _quiet_broken_pipe() -> None:
    # `heka ... | head`: the reader went away. Point stdout at /dev/null so the interpreter's
    # final flush does not raise again, and end quietly.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def run(entry: Callable[[], object]) -> int:
    """Run a Typer/click entry point with hekacli's error policy; return the exit code."""
    try:
        entry()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        if os.environ.get("HEKA_DEBUG"):
            traceback.print_exc()
        return report_error(exc)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point for `heka` and `hekacli`."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = run(lambda: app(args=args, prog_name="heka", standalone_mode=True))
    sys.exit(code)
