"""The `heka` command: one Typer app, a subcommand per module, and the error/exit-code policy."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer

from hekacli import __version__
from hekacli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, HekaError, OutputClosed

# Each module `commands/<name>.py` adds the subcommand `<name>` (a command or a sub-app); the order
# here is the order in `heka --help`. Modules are imported only when needed: `heka cat` should not
# pay for polars or lupa at start-up.
COMMAND_NAMES = ("decode", "agg", "sql", "report", "logstream", "cat", "inject", "send", "serve", "flood",
                 "sandbox", "sbmgr", "sbmgrload", "certs")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"heka {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Mozilla Heka's tools as one modern, pipe-friendly CLI and local log analyzer."""


def build_app(names: Sequence[str] = COMMAND_NAMES) -> typer.Typer:
    """The `heka` Typer app with the given subcommands registered."""
    new_app = typer.Typer(
        name="heka",
        help="Mozilla Heka's tools as one modern, pipe-friendly CLI and local log analyzer.",
        no_args_is_help=True,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    new_app.callback()(_root)
    for name in names:
        importlib.import_module(f"{__package__}.{name}").register(new_app)
    return new_app


def commands_for(args: Sequence[str]) -> Sequence[str]:
    """The subcommands an argv needs: just the one it names, or all (for help and completion)."""
    first = next((a for a in args if not a.startswith("-")), None)
    return (first,) if first in COMMAND_NAMES else COMMAND_NAMES


def __getattr__(name: str) -> Any:
    # `from hekacli.commands.main import app`: the full app, built on first use.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)


def report_error(exc: BaseException) -> int:
    """Print `exc` as one line on stderr and return the exit code for it."""
    if isinstance(exc, HekaError):
        sys.stderr.write(f"heka: error: {exc}\n")
        return exc.exit_code
    sys.stderr.write(
        f"heka: internal error: {type(exc).__name__}: {exc} (HEKA_DEBUG=1 shows the traceback)\n")
    return EXIT_INTERNAL


class _GuardedStream:
    """A stdout wrapper that reports a closed pipe as `OutputClosed` (see there); all else is delegated."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._buffer: _GuardedStream | None = None

    def write(self, data: Any) -> int:
        try:
            return self._stream.write(data)
        except BrokenPipeError as exc:
            raise OutputClosed() from exc

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError as exc:
            raise OutputClosed() from exc

    @property
    def buffer(self) -> Any:
        # One wrapper for the life of the stream: callers compare `out is sys.stdout.buffer`.
        if self._buffer is None:
            self._buffer = _GuardedStream(self._stream.buffer)
        return self._buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


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
            import traceback  # only here: it costs start-up time on every run

            traceback.print_exc()
        return report_error(exc)
    return 0


def main(argv: Sequence[str] | None = None, *, end_process: bool | None = None) -> None:
    """Console-script entry point for `heka` and `hekacli`: run the command, exit with its code.

    With `end_process` (the default when `argv` is None, i.e. for the console script itself) the
    process then ends at once (`end_process_now`); otherwise `SystemExit` is raised, as callers
    that run `heka` inside their own process (tests, the aliases' callers) expect."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not isinstance(sys.stdout, _GuardedStream) and sys.stdout is not None:
        sys.stdout = _GuardedStream(sys.stdout)  # type: ignore[assignment]
    cli = build_app(commands_for(args))
    code = run(lambda: cli(args=args, prog_name="heka", standalone_mode=True))
    if end_process is None:
        end_process = argv is None
    if end_process:
        end_process_now(code)
    sys.exit(code)


def end_process_now(code: int) -> None:
    """End the process with `code` without the interpreter's teardown, which frees every module
    and object one by one (polars alone costs 0.1 s there; `heka` is often run in loops).

    What teardown would do that matters is done first: stdout and stderr are flushed and the
    `atexit` handlers run (they stop multiprocessing workers and flush logging). Teardown also
    waits for threads that are not daemons: with such a thread alive this falls back to `sys.exit`.
    Files the command opened are closed by the command (every output is written in a `with` block
    or closed in a `finally`)."""
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OutputClosed, BrokenPipeError):
            _quiet_broken_pipe()
        except (OSError, ValueError):
            pass  # a stream closed under us: nothing left to flush
    atexit._run_exitfuncs()
    os._exit(code)
