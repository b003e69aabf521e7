"""`heka serve`: receive Heka streams over tcp/tls/udp, route them to outputs, verifiers and sandboxes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from hekacli.errors import EXIT_DATA, UsageError


def serve(
    listen: list[str] = typer.Option([], "--listen", "-l",
                                     help="tcp://, tls:// or udp://HOST:PORT (repeatable)."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="YAML config (listeners, signers, output, plugin sections); "
                                            "flags add to it."),
    cert: Path | None = typer.Option(None, "--cert", help="Server certificate for tls:// --listen URLs."),
    key: Path | None = typer.Option(None, "--key", help="Server key for tls:// --listen URLs."),
    client_ca: Path | None = typer.Option(None, "--client-ca", help="CA for client certificates."),
    require_client_cert: bool = typer.Option(False, "--require-client-cert",
                                             help="Reject TLS clients without a valid certificate."),
    min_version: str | None = typer.Option(None, "--min-version", help="Minimum TLS version (TLS12, TLS13)."),
    signer: list[str] = typer.Option([], "--signer", help="Accept messages signed with name:version:hash:key "
                                                          "(repeatable)."),
    output: str | None = typer.Option(None, "--output", "-o",
                                      help="'-' (stdout, default), a file (*.heka: framed), or 'none'."),
    format: str | None = typer.Option(None, "--format", "-f", help="jsonl or heka (framed records)."),
    match: str | None = typer.Option(None, "--match", "-m", help="message_matcher for the output."),
    count: int | None = typer.Option(None, "--count", "-n", min=1, help="Stop after N accepted messages."),
    verify: bool = typer.Option(False, "--verify", help="Verify heka flood runs (sets the verify section; "
                                                        "output defaults to none)."),
    dashboard: str | None = typer.Option(None, "--dashboard", help="Dashboard on HOST:PORT."),
    max_message_size: int | None = typer.Option(None, "--max-message-size", help="Largest message (bytes)."),
    state_dir: Path | None = typer.Option(None, "--state-dir", help="Plugins' state directory."),
    stats_file: Path | None = typer.Option(None, "--stats-file", help="Write the JSON summary here on stop."),
) -> None:
    """Receive Heka framed streams and write what is accepted as JSONL (or framed records).

    Signed records are checked against the configured signers; a wrong key, an unknown signer or a
    signer header without an HMAC is dropped and counted. Stops on SIGINT/SIGTERM (or --count) and
    prints a summary per listener on stderr. Exit 1 if anything was dropped or a plugin's check
    (e.g. --verify) failed.
    """
    from hekacli.framing import Signer
    from hekacli.serve.config import ListenerConfig, OutputConfig, ServeConfig
    from hekacli.serve.daemon import ServeDaemon

    cfg = ServeConfig.from_yaml(config) if config else ServeConfig()
    tls_opts = any(v is not None for v in (cert, key, client_ca, min_version)) or require_client_cert
    for url in listen:
        lc = ListenerConfig(url=url)
        if lc.scheme == "tls":
            lc.cert = str(cert) if cert else None
            lc.key = str(key) if key else None
            lc.client_ca = str(client_ca) if client_ca else None
            lc.require_client_cert = require_client_cert
            lc.min_version = min_version
        cfg.listeners.append(lc)
    if tls_opts and not any(lc.scheme == "tls" for lc in cfg.listeners):
        raise UsageError("--cert/--key/--client-ca/--min-version need a tls:// --listen URL")
    for spec in signer:
        s = Signer.parse(spec)
        cfg.signers[s.lookup_key] = s.key
    if verify:
        cfg.plugins.setdefault("verify", True)
    if dashboard:
        cfg.plugins["dashboard"] = dashboard
    if output is not None or format is not None or match is not None:
        base = cfg.output
        cfg.output = OutputConfig(path=output if output is not None else base.path,
                                  format=format or base.format,
                                  message_matcher=match if match is not None else base.message_matcher,
                                  message_signer=base.message_signer, name=base.name)
    elif verify and not (config and cfg.source and _has_output(config)):
        cfg.output = OutputConfig(path="none")
    if max_message_size is not None:
        if not 1024 < max_message_size < 2**32 - 1:
            raise UsageError("--max-message-size must be > 1024 and < 2^32-1")
        cfg.max_message_size = max_message_size
    if state_dir is not None:
        cfg.state_dir = state_dir
    cfg.count = count
    cfg.stats_file = str(stats_file) if stats_file else None
    cfg.validate()

    daemon = ServeDaemon(cfg)

    async def main() -> None:
        await daemon.start()
        for url in daemon.urls:
            daemon.log(f"listening on {url}")
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, daemon.request_stop, signal.Signals(sig).name)
        try:
            await daemon.wait()
        finally:
            await daemon.stop()

    asyncio.run(main())
    for line in daemon.summary_lines():
        daemon.log(line)
    sys.stderr.flush()
    summary = daemon.summary()
    if summary["dropped_total"] or summary["failed_plugins"]:
        raise typer.Exit(EXIT_DATA)


def _has_output(path: Path) -> bool:
    from hekacli.config import load_yaml

    return "output" in load_yaml(path)


def register(app: typer.Typer) -> None:
    """Add `heka serve` to the app."""
    app.command("serve")(serve)
