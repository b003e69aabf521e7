"""`heka sandbox run`: develop a Lua filter locally over framed messages, without a daemon."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import typer

from hekacli.errors import EXIT_DATA, InputError, SandboxError, UsageError
from hekacli.framing import Splitter, frame, read_stream
from hekacli.message import Message, to_flat
from hekacli.output import dumps_jsonl
from hekacli.sandbox.host import OUTPUT_TYPE, SandboxFilter
from hekacli.sandbox.runner import FilterSettings, load_script, module_dirs, run_filter, settings_from_toml

sandbox_app = typer.Typer(help="Lua sandbox filters (Heka's SandboxFilter API).", no_args_is_help=True)


class _Printer:
    """Writes what the sandbox injects: payloads as `# type name` + text, messages as JSONL or framed."""

    def __init__(self, out: IO[bytes], fmt: str) -> None:
        self.out = out
        self.fmt = fmt
        self.messages = 0
        self.broken = False

    def __call__(self, msg: Message) -> None:
        if msg.type == "heka.sandbox-terminated" or self.broken:
            return  # terminations are reported on stderr with the exit code
        try:
            self._write(msg)
        except BrokenPipeError:
            self.broken = True  # `| head` went away: finish quietly

    def _write(self, msg: Message) -> None:
        if self.fmt == "heka":
            self.out.write(frame(msg))
        elif msg.type == OUTPUT_TYPE:
            ptype = msg.get_field("payload_type") or "txt"
            pname = msg.get_field("payload_name") or ""
            text = msg.payload or ""
            if text and not text.endswith("\n"):
                text += "\n"
            self.out.write(f"# {ptype} {pname}\n{text}".encode("utf-8", "surrogateescape"))
        else:
            self.out.write((dumps_jsonl(to_flat(msg)) + "\n").encode("utf-8", "surrogateescape"))
        self.messages += 1


def _records(files: list[Path], splitter: Splitter):
    sources = files or [Path("-")]
    for p in sources:
        if str(p) == "-":
            yield from read_stream(sys.stdin.buffer, splitter=splitter)
            continue
        try:
            fh = open(p, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", file=str(p)) from None
        with fh:
            yield from read_stream(fh, splitter=splitter)


def run(
    script: Path = typer.Argument(..., help="The filter script (.lua)."),
    files: list[Path] = typer.Argument(None, help="Framed Heka message files (default: stdin)."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="Heka TOML with the SandboxFilter section: [Name.config] is "
                                            "what read_config sees; ticker_interval and message_matcher "
                                            "are honoured."),
    module_dir: list[Path] = typer.Option([], "--module-dir", "-M",
                                          help="Directory of Lua modules for require (repeatable)."),
    format: str = typer.Option("text", "--format", "-f",
                               help="text: payloads as '# type name' + text, messages as JSONL; "
                                    "heka: everything injected as framed records."),
    preserve: Path | None = typer.Option(None, "--preserve",
                                         help="Restore globals from this .data file if it exists, and "
                                              "write them there at the end (preserve_data)."),
    match: str | None = typer.Option(None, "--match", "-m",
                                     help="message_matcher (overrides the one in --config)."),
) -> None:
    """Run one Lua filter over framed messages: timer_event fires every ticker_interval of
    message time and once at the end of input. Exit 5 when the sandbox fails or is terminated,
    1 when process_message returned errors for some messages."""
    if format not in ("text", "heka"):
        raise UsageError("--format must be text or heka")
    settings = settings_from_toml(config, script) if config else FilterSettings(name=script.stem)
    text = load_script(script)
    matcher_expr = match or settings.message_matcher
    matcher = None
    if matcher_expr and matcher_expr.strip() not in ("", "TRUE"):
        from hekacli.matcher import compile_matcher

        matcher = compile_matcher(matcher_expr)
    out = sys.stdout.buffer
    printer = _Printer(out, format)
    errors: list[str] = []
    sandbox = SandboxFilter(
        settings.name, text, config=settings.config,
        module_dir=module_dirs(*module_dir, settings.module_directory), limits=settings.limits,
        preserve_path=preserve, on_inject=printer, filename=str(script), matcher=matcher,
        log=lambda line: errors.append(line),
    )
    sandbox.load()
    splitter = Splitter()
    undecodable = 0

    def messages():
        nonlocal undecodable
        for rec in _records(list(files or []), splitter):
            try:
                msg = rec.message()
            except Exception as exc:  # noqa: BLE001 - counted and reported, never silent
                undecodable += 1
                sys.stderr.write(f"heka: warning: offset {rec.offset}: undecodable message: {exc}\n")
                continue
            yield msg, rec.message_bytes

    try:
        res = run_filter(sandbox, messages(), ticker_interval=settings.ticker_interval,
                         match=matcher.match_message if matcher else None)
    finally:
        try:
            out.flush()
        except BrokenPipeError:
            printer.broken = True
    if printer.broken:
        raise BrokenPipeError  # the CLI's policy: end quietly, exit 0
    if res.terminated:
        raise SandboxError(f"sandbox {settings.name} terminated: {res.terminated}")
    sandbox.stop()
    dropped = splitter.dropped_total + undecodable
    summary = (f"heka sandbox: {res.processed} processed, {res.skipped} not matched, "
               f"{res.failures} failed, {printer.messages} injected")
    if dropped:
        summary += f", {dropped} input records dropped"
    sys.stderr.write(summary + "\n")
    if res.failures:
        sys.stderr.write(f"heka: error: process_message failed {res.failures} times; "
                         f"last: {res.last_failure}\n")
    if res.failures or dropped:
        raise typer.Exit(EXIT_DATA)


def register(app: typer.Typer) -> None:
    """Add `heka sandbox` (with `run`) to the `heka` app."""
    sandbox_app.command("run")(run)
    app.add_typer(sandbox_app, name="sandbox")
