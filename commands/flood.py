"""`heka flood`: load-test a Heka receiver (`run`), verify a captured run (`verify`), write log files
under load (`file`). `heka-flood -config flood.toml -test default` is the Heka-compatible alias."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from hekacli.errors import EXIT_DATA, UsageError

flood_app = typer.Typer(
    name="flood",
    help="Load-test a Heka receiver and verify what arrived (heka-flood, plus delivery verification).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _apply_url(cfg: Any, url: str) -> None:
    from hekacli.transport import parse_endpoint

    ep = parse_endpoint(url)
    cfg.ip_address = ep.address
    if ep.scheme == "udp":
        cfg.sender = "udp"
        cfg.use_tls = False
    else:
        cfg.sender = "tcp"
        cfg.use_tls = ep.scheme == "tls"


@flood_app.command("run")
def run_cmd(
    url: str | None = typer.Argument(None, help="Receiver: tcp://host:port, tls://host:port or "
                                                "udp://host:port (overrides ip_address/sender/use_tls)."),
    config: Path | None = typer.Option(None, "--config", help="Heka flood.toml (or .yaml) with test tables."),
    test: str = typer.Option("default", "--test", help="Which test table of the config to run."),
    num_messages: int | None = typer.Option(None, "--num-messages", "-n",
                                            help="Stop after N sends (all connections)."),
    rate: float | None = typer.Option(None, "--rate", help="Messages/s over all connections (open model)."),
    duration: str | None = typer.Option(None, "--duration", help="Stop after this long (10s, 2m, 1m30s)."),
    connections: int | None = typer.Option(None, "--connections", "-c", help="Parallel connections."),
    size: int | None = typer.Option(None, "--size", help="static_message_size: random payload bytes."),
    variable: bool | None = typer.Option(None, "--variable-size/--fixed-size",
                                         help="heka-flood's variable-size message set."),
    ascii_only: bool | None = typer.Option(None, "--ascii-only/--binary", help="Payload bytes 32..125 only."),
    corrupt: float | None = typer.Option(None, "--corrupt-percentage", help="Percent of sends corrupted."),
    signed: float | None = typer.Option(None, "--signed-percentage", help="Percent of sends signed."),
    oversized: float | None = typer.Option(None, "--oversized-percentage",
                                           help="Percent of sends oversized (variable size only)."),
    signer: str | None = typer.Option(None, "--signer", help="name:version:hash:key for signed sends."),
    ca: Path | None = typer.Option(None, "--ca", help="CA file to verify the server (pins it)."),
    cert: Path | None = typer.Option(None, "--cert", help="Client certificate (TLS client auth)."),
    key: Path | None = typer.Option(None, "--key", help="Client key."),
    server_name: str | None = typer.Option(None, "--server-name", help="TLS server name to verify."),
    insecure: bool = typer.Option(False, "--insecure", help="Do not verify the server certificate."),
    max_message_size: int | None = typer.Option(None, "--max-message-size", help="Message size limit."),
    message_interval: str | None = typer.Option(None, "--message-interval",
                                                help="Sleep after each send (heka-flood's closed loop)."),
    reconnect: bool | None = typer.Option(None, "--reconnect/--no-reconnect",
                                          help="On errors, reconnect instead of stopping."),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id carried by every message."),
    end_marker: bool = typer.Option(True, "--end-marker/--no-end-marker",
                                    help="Send a heka.flood.end message per connection at the end."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON on stdout."),
) -> None:
    """Send heka-flood's messages to a receiver, stamped for verification (run id, sequence, send time).

    Once a second: `Sent N messages. X msg/sec Y Mbit/sec` (on stdout, or stderr with --json).
    """
    from hekacli.flood.config import FloodConfig, load_flood_config, parse_duration
    from hekacli.flood.generator import SignerConfig
    from hekacli.framing import Signer

    cfg = load_flood_config(config, test) if config is not None else FloodConfig()
    if url:
        _apply_url(cfg, url)
    if not cfg.ip_address:
        raise UsageError("no receiver: give a URL (tcp://127.0.0.1:5565) or ip_address in --config")
    overrides = {"num_messages": num_messages, "rate": rate, "connections": connections,
                 "static_message_size": size, "variable_size_messages": variable, "ascii_only": ascii_only,
                 "corrupt_percentage": corrupt, "signed_percentage": signed,
                 "oversized_percentage": oversized, "max_message_size": max_message_size,
                 "reconnect_on_error": reconnect, "run_id": run_id}
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.end_marker = end_marker
    if duration is not None:
        cfg.duration = parse_duration(duration, "--duration")
    if message_interval is not None:
        cfg.message_interval = parse_duration(message_interval, "--message-interval")
    if signer is not None:
        s = Signer.parse(signer)
        cfg.signer = SignerConfig(s.name, s.hash, s.key.decode("utf-8", "surrogateescape"), s.version)
    tls_flags = {"root_cafile": ca, "cert_file": cert, "key_file": key, "server_name": server_name}
    for k, v in tls_flags.items():
        if v is not None:
            cfg.tls[k] = str(v)
    if insecure:
        cfg.tls["insecure_skip_verify"] = True
    cfg.validate(str(config) if config else None)
    _run(cfg, as_json)


def _run(cfg: Any, as_json: bool) -> None:
    from hekacli.flood.sender import FloodRunner, RateMeter, clean_shutdown_line
    from hekacli.output import stdout_is_terminal

    runner = FloodRunner(cfg)
    meter = RateMeter()
    live_view = stdout_is_terminal() and not as_json
    line_out = sys.stderr if as_json else sys.stdout

    def on_term(signum: int, frame: Any) -> None:
        runner.stop("signal")

    signal.signal(signal.SIGTERM, on_term)
    if live_view:
        result = _run_live(runner, meter)
    else:
        def tick(r: FloodRunner) -> None:
            line = meter.line(*r.totals())
            if line:
                line_out.write(line + "\n")
                line_out.flush()

        result = runner.run(tick)
        last = meter.line(result.sent, result.bytes)
        if last and result.elapsed >= 1:
            line_out.write(last + "\n")
    summary = result.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        line_out.write(clean_shutdown_line(result.sent, result.delivered) + "\n")
        sys.stderr.write(
            f"flood: run {result.run_id} to {result.target}: {result.sent} sent in {result.elapsed:.2f}s "
            f"({summary['msg_per_sec']:.0f} msg/s, {summary['mbit_per_sec']:.1f} Mbit/s); "
            f"{result.kinds['signed']} signed, {result.kinds['corrupt']} corrupt, "
            f"{result.kinds['oversized']} oversized; {result.expected_at_receiver} should arrive; "
            f"{result.errors} send errors\n")
    if result.errors and result.delivered < result.sent:
        raise SystemExit(EXIT_DATA)


def _run_live(runner: Any, meter: Any) -> Any:
    from rich.live import Live
    from rich.table import Table

    from hekacli.output import make_console

    console = make_console()
    state: dict[str, str] = {"line": "connecting..."}

    def render() -> Table:
        t = Table(title=f"heka flood → {runner.target}", show_header=False)
        sent, nbytes = runner.totals()
        t.add_row("run id", runner.run_id)
        t.add_row("sent", f"{sent:,}")
        t.add_row("bytes", f"{nbytes:,}")
        t.add_row("last second", state["line"].split("messages. ", 1)[-1])
        errors = sum(s.errors for s in runner.stats)
        t.add_row("errors", str(errors))
        return t

    with Live(render(), console=console, refresh_per_second=4, transient=False) as live:
        def tick(r: Any) -> None:
            line = meter.line(*r.totals())
            if line:
                state["line"] = line
            live.update(render())

        result = runner.run(tick)
        live.update(render())
    return result


@flood_app.command("verify")
def verify_cmd(
    files: list[Path] = typer.Argument(..., help="Framed Heka files (e.g. written by heka serve); "
                                                 "- for stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    max_message_size: int = typer.Option(64 * 1024, "--max-message-size", help="Message size limit."),
) -> None:
    """Verify flood runs captured in framed Heka files: received, lost, duplicates, out of order.

    Exit 0 when every run is complete (its end marker arrived) with nothing lost, 1 otherwise.
    No latency here (files carry no receive time): use `heka serve --verify` for latency.
    """
    from hekacli.errors import DecodeError, InputError
    from hekacli.flood.verify import Verifier, summary_lines
    from hekacli.framing import Splitter

    verifier = Verifier()
    undecodable = 0
    dropped: dict[str, int] = {}
    for path in files:
        splitter = Splitter(max_message_size=max_message_size, authenticate=False)
        try:
            fh = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", file=str(path)) from None
        with fh:
            while chunk := fh.read(1 << 20):
                for rec in splitter.feed(chunk):
                    try:
                        verifier.add(rec.message())
                    except DecodeError:
                        undecodable += 1
            splitter.finish()
        for k, v in splitter.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
    summary = verifier.summary()
    summary["undecodable"] = undecodable
    summary["dropped"] = dropped
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        for line in summary_lines(summary):
            sys.stdout.write(line + "\n")
        if undecodable or dropped:
            sys.stdout.write(f"undecodable {undecodable}; dropped by framing {dropped}\n")
    if not verifier.ok:
        raise SystemExit(EXIT_DATA)


@flood_app.command("file")
def file_cmd(
    out: Path = typer.Argument(..., help="Log file to write (created or appended)."),
    fmt: str = typer.Option("nginx", "--format", help="nginx or rsyslog."),
    log_format: str | None = typer.Option(None, "--log-format", help="nginx log_format string "
                                                                     "(default: combined)."),
    rsyslog: str | None = typer.Option(None, "--rsyslog", help="rsyslog template string "
                                                               "(default: RSYSLOG_TraditionalFileFormat)."),
    rate: float = typer.Option(1000.0, "--rate",
                               help="Lines per second (open model); 0 = as fast as possible."),
    duration: str | None = typer.Option(None, "--duration", help="Stop after this long (60s, 2m)."),
    num_lines: int | None = typer.Option(None, "--num-lines", "-n", help="Stop after N lines."),
    rotate: str | None = typer.Option(None, "--rotate", help="create (rename + new file) or copytruncate."),
    every: str | None = typer.Option(None, "--every", help="Rotate this often (10s)."),
    every_lines: int | None = typer.Option(None, "--every-lines", help="Rotate after this many lines."),
    keep: int = typer.Option(5, "--keep", help="Rotated files to keep (OUT.log.1 ... OUT.log.N)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (deterministic content)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Write realistic, sequence-numbered log lines at a rate, rotating as asked.

    A load and chaos source for tailers. nginx lines carry the number in the request path
    (`/flood/<seq>`), rsyslog lines in the message (`seq=<seq>`).
    """
    from hekacli.flood.config import parse_duration
    from hekacli.flood.logwriter import LogFileWriter, make_renderer

    if fmt not in ("nginx", "rsyslog"):
        raise UsageError(f"--format must be nginx or rsyslog, not {fmt!r}")
    if rotate not in (None, "create", "copytruncate"):
        raise UsageError(f"--rotate must be create or copytruncate, not {rotate!r}")
    if rotate and not (every or every_lines):
        raise UsageError("--rotate needs --every DURATION or --every-lines N")
    if duration is None and num_lines is None:
        raise UsageError("give --duration or --num-lines (the writer must stop by itself)")
    renderer = make_renderer(fmt, log_format=log_format, template=rsyslog, seed=seed)
    writer = LogFileWriter(out, renderer, rate=rate,
                           duration=parse_duration(duration, "--duration") if duration else 0.0,
                           num_lines=num_lines or 0, rotate=rotate,
                           every=parse_duration(every, "--every") if every else 0.0,
                           every_lines=every_lines or 0, keep=keep)
    signal.signal(signal.SIGTERM, lambda s, f: writer.stop())
    summary = writer.run()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stderr.write(f"flood file: {summary['lines']} lines to {out} in {summary['elapsed']:.2f}s, "
                         f"{summary['rotations']} rotations\n")


def register(app: typer.Typer) -> None:
    """Add `heka flood` to the `heka` app."""
    app.add_typer(flood_app, name="flood")


def alias_main() -> None:
    """`heka-flood -config flood.toml -test default` (Go-style flags)."""
    from ._alias import run_alias

    if len(sys.argv) == 1:
        # heka-flood printed usage and exited 0 when given no flag at all.
        sys.stderr.write("Usage of heka-flood:\n  -config string\n    \tFlood configuration file "
                         "(default \"flood.toml\")\n  -test string\n    \tTest to run from the config "
                         "(default \"default\")\n")
        raise SystemExit(0)
    args = list(sys.argv[1:])
    names = [a.lstrip("-").split("=", 1)[0] for a in args if a.startswith("-")]
    if "config" not in names:
        args = ["-config", "flood.toml", *args]
    run_alias(["flood", "run"], {"config": "--config", "test": "--test"}, args)
