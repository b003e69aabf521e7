"""`heka logstream list|tail|explain|checkpoints` and the `heka-logstreamer -config FILE` alias."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from hekacli.errors import EXIT_DATA, EXIT_INTERRUPTED, EXIT_NETWORK, UsageError
from hekacli.logstream.config import LogstreamConfig, load_config
from hekacli.logstream.status import SectionStatus, config_status, gc_checkpoints, reset_checkpoint

sub = typer.Typer(
    name="logstream",
    help="Tail rotated log streams with Heka-compatible checkpoints (Heka's LogstreamerInput).",
    no_args_is_help=True,
)

CONFIG_HELP = "YAML config (.yaml/.yml) or Heka TOML with LogstreamerInput sections (a file or a directory)."


def _note(msg: str) -> None:
    sys.stderr.write(f"heka logstream: {msg}\n")
    sys.stderr.flush()


def _load(config: Path, journal_directory: str | None) -> LogstreamConfig:
    return load_config(config, journal_directory=journal_directory)


def _echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")


# ---- list --------------------------------------------------------------------------------------
def _print_list(sections: list[SectionStatus]) -> None:
    for sec in sections:
        _echo(f"[{sec.cfg.name}] {len(sec.streams)} stream(s) in {sec.cfg.log_directory}")
        for _name, err in sorted(sec.errors.items()):
            _echo(f"  error: {err}")
        for st in sec.streams:
            _echo(f"  stream {st.name}")
            if st.journal_error:
                _echo(f"    position: journal {st.journal} is unusable: {st.journal_error}")
            elif st.position is None:
                _echo(f"    position: none (no journal at {st.journal})")
            else:
                p = st.position
                state = (
                    "file missing"
                    if st.hash_matches is None
                    else "hash matches"
                    if st.hash_matches
                    else "hash does NOT match"
                )
                _echo(f"    position: {p.file_name} offset {p.seek} ({state})")
            _echo(f"    files, oldest to newest ({len(st.files)}):")
            for f in st.files:
                size = st.sizes.get(f.path)
                _echo(f"      {f.path}  {'?' if size is None else size} bytes")


def _print_heka(sections: list[SectionStatus]) -> None:
    """heka-logstreamer's own output (§4.6), with sections and streams sorted."""
    for sec in sections:
        _echo(f"Found {len(sec.streams)} Logstream(s) for section [{sec.cfg.name}].")
        for st in sec.streams:
            _echo(f"\nLogstream name: [{st.name}]")
            if st.position is not None:
                _echo(f"Stream Choosing Filename: {st.position.file_name}, SeekPosition: {st.position.seek}")
            elif st.reason == "tail":
                _echo(f"Stream Choosing Filename: {st.start_file}, SeekPosition: {st.start_offset}")
            else:
                _echo("Stream Choosing Filename: , SeekPosition: 0")
            _echo(f"Files: {len(st.files)} (printing oldest to newest)")
            for f in st.files:
                _echo(f"\t{f.path}")


def _list(config: Path, fmt: str, journal_directory: str | None) -> int:
    sections = config_status(_load(config, journal_directory))
    if fmt == "json":
        doc = [
            {
                "section": s.cfg.name,
                "log_directory": s.cfg.log_directory,
                "errors": s.errors,
                "streams": [st.to_json() for st in s.streams],
            }
            for s in sections
        ]
        _echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "heka":
        _print_heka(sections)
    elif fmt == "text":
        _print_list(sections)
    else:
        raise UsageError(f"unknown --format {fmt!r} (choose from text, json, heka)")
    return EXIT_DATA if any(s.errors for s in sections) else 0


# ---- tail --------------------------------------------------------------------------------------
def _make_sender(url: str, ca: str | None, insecure: bool, queue_dir: str | None):
    from hekacli.shipping import ReliableSender
    from hekacli.transport import client_ssl_context, parse_endpoint

    ep = parse_endpoint(url)
    if ep.scheme not in ("tcp", "tls"):
        raise UsageError(f"--output {url}: use tcp:// or tls:// (records must be acknowledged by a stream)")
    ssl = client_ssl_context(ca=ca, insecure=insecure) if ep.scheme == "tls" else None
    return ReliableSender(url, ssl=ssl, queue_dir=queue_dir)


def _tail(
    config: Path,
    follow: bool,
    fmt: str,
    output: str | None,
    streams: list[str],
    batch_lines: int,
    batch_bytes: int,
    checkpoint: bool,
    journal_directory: str | None,
    rejects: Path | None,
    quiet: bool,
    verbose: bool,
    ca: str | None,
    insecure: bool,
    queue_dir: str | None,
) -> int:
    from hekacli.logstream.sink import Sink
    from hekacli.logstream.tailer import Tailer

    cfg = _load(config, journal_directory)
    notify = (lambda m: None) if quiet else _note
    sender = _make_sender(output, ca, insecure, queue_dir) if output else None
    reject_file = open(rejects, "a", encoding="utf-8") if rejects else None  # noqa: SIM115 - closed below
    try:
        sink = Sink(fmt, sender=sender, durable_queue=bool(queue_dir), rejects=reject_file, notify=_note)
        tailer = Tailer(
            cfg,
            sink,
            follow=follow,
            batch_records=batch_lines,
            batch_bytes=batch_bytes,
            checkpoint=checkpoint,
            only=set(streams) or None,
            notify=notify,
            verbose=_note if verbose and not quiet else None,
        )
        stopped = tailer.run()
    finally:
        if sender is not None:
            sender.close()
        if reject_file is not None:
            reject_file.close()
    t = tailer.totals()
    if not quiet:
        _note(
            f"{sink.written} record(s) written from {len(tailer.streams)} stream(s); "
            f"{sink.rejected} rejected, {sink.filtered} filtered out by where, {t['cut']} cut"
        )
    if tailer.pending:
        _note(
            f"{len(tailer.pending)} batch(es) were not confirmed by {output}: their checkpoints were not "
            "saved, so they will be read and sent again next time"
        )
        return EXIT_NETWORK
    if stopped == 2:  # SIGINT
        return EXIT_INTERRUPTED
    return EXIT_DATA if (sink.rejected or t["cut"]) else 0


# ---- explain / checkpoints -------------------------------------------------------------------------
def _explain(config: Path, fmt: str, journal_directory: str | None) -> int:
    sections = config_status(_load(config, journal_directory))
    if fmt == "json":
        _echo(json.dumps([st.to_json() for s in sections for st in s.streams], indent=2, ensure_ascii=False))
        return 0
    for sec in sections:
        for _name, err in sorted(sec.errors.items()):
            _echo(f"[{sec.cfg.name}] {err}: the stream is skipped (set `priority` to order its files)")
        for st in sec.streams:
            where = f"{st.start_file} offset {st.start_offset}" if st.start_file else "nowhere yet"
            _echo(f"stream {st.name} [{sec.cfg.name}]: next read starts at {where}")
            _echo(f"  why: {st.detail} ({st.reason})")
    return 0


def _checkpoints(
    config: Path, action: str, stream: str | None, journal_directory: str | None, dry_run: bool
) -> int:
    cfg = _load(config, journal_directory)
    if action == "ls":
        for sec in config_status(cfg):
            for st in sec.streams:
                if st.journal_error:
                    _echo(f"{st.name}\t{st.journal}\tCORRUPT: {st.journal_error}")
                elif st.position is None:
                    _echo(f"{st.name}\t{st.journal}\t(none)")
                else:
                    ok = {True: "hash ok", False: "hash mismatch", None: "file missing"}[st.hash_matches]
                    _echo(f"{st.name}\t{st.journal}\t{st.position.file_name}\t{st.position.seek}\t{ok}")
        return 0
    if action == "reset":
        if not stream:
            raise UsageError("checkpoints reset needs a STREAM name (see `heka logstream list`)")
        removed = reset_checkpoint(cfg, stream)
        if not removed:
            _note(f"stream {stream}: no journal to reset")
        for r in removed:
            _echo(f"removed {r}")
        return 0
    if action == "gc":
        for r in gc_checkpoints(cfg, dry_run=dry_run):
            _echo(f"{'would remove' if dry_run else 'removed'} {r}")
        return 0
    raise UsageError(f"unknown checkpoints action {action!r} (choose from ls, reset, gc)")


def register(app: typer.Typer) -> None:
    """Add `heka logstream ...` to the `heka` app."""

    @sub.command("list")
    def list_cmd(
        config: Path = typer.Argument(None, help=CONFIG_HELP, show_default=False),
        config_opt: Path = typer.Option(
            None, "--config", help="Same as the CONFIG argument (heka-logstreamer)."
        ),
        fmt: str = typer.Option("text", "--format", help="text, json, or heka (heka-logstreamer's output)."),
        journal_directory: str = typer.Option(
            None, "--journal-directory", help="Read journals from here instead of the config's."
        ),
    ) -> None:
        """Every stream, its files oldest to newest, and its saved position (sorted, deterministic)."""
        path = config or config_opt
        if path is None:
            raise UsageError("a CONFIG file is required")
        raise typer.Exit(_list(path, fmt, journal_directory))

    @sub.command("tail")
    def tail_cmd(
        config: Path = typer.Argument(..., help=CONFIG_HELP),
        follow: bool = typer.Option(
            False, "--follow", "-f", help="Keep reading as files grow, rotate and appear."
        ),
        fmt: str = typer.Option("raw", "--format", help="raw (the lines), jsonl, or heka (framed messages)."),
        output: str = typer.Option(
            None, "--output", help="Ship framed messages to tcp://HOST:PORT or tls://..."
        ),
        stream: list[str] = typer.Option([], "--stream", help="Only this stream (repeatable)."),
        batch_lines: int = typer.Option(
            50000, "--batch-lines", min=1, help="Records per batch; the checkpoint moves after each batch."
        ),
        batch_bytes: int = typer.Option(8 << 20, "--batch-bytes", min=1, help="Bytes per batch at most."),
        no_checkpoint: bool = typer.Option(
            False, "--no-checkpoint", help="Read without moving the journals."
        ),
        journal_directory: str = typer.Option(
            None, "--journal-directory", help="Override journal_directory."
        ),
        rejects: Path = typer.Option(
            None, "--rejects", help="Append lines the decoder rejects to this file."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No notes on stderr (errors still)."),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Also note routine events (file switches)."
        ),
        ca: str = typer.Option(None, "--ca", help="CA certificate for tls:// outputs."),
        insecure: bool = typer.Option(False, "--insecure", help="Do not verify the tls:// server."),
        queue_dir: str = typer.Option(
            None, "--queue-dir", help="Disk queue for --output while disconnected."
        ),
    ) -> None:
        """Read every stream from its checkpoint to the end (with --follow: keep going)."""
        raise typer.Exit(
            _tail(
                config,
                follow,
                fmt,
                output,
                stream,
                batch_lines,
                batch_bytes,
                not no_checkpoint,
                journal_directory,
                rejects,
                quiet,
                verbose,
                ca,
                insecure,
                queue_dir,
            )
        )

    @sub.command("explain")
    def explain_cmd(
        config: Path = typer.Argument(..., help=CONFIG_HELP),
        fmt: str = typer.Option("text", "--format", help="text or json."),
        journal_directory: str = typer.Option(
            None, "--journal-directory", help="Override journal_directory."
        ),
    ) -> None:
        """For each stream, where the next read will start and why."""
        raise typer.Exit(_explain(config, fmt, journal_directory))

    @sub.command("checkpoints")
    def checkpoints_cmd(
        config: Path = typer.Argument(..., help=CONFIG_HELP),
        action: str = typer.Argument("ls", help="ls, reset STREAM, or gc."),
        stream: str = typer.Argument(None, help="The stream to reset."),
        journal_directory: str = typer.Option(
            None, "--journal-directory", help="Override journal_directory."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="gc: only say what would be removed."),
    ) -> None:
        """Show the journals (ls), reset one stream, or drop journals of streams that no longer exist (gc)."""
        raise typer.Exit(_checkpoints(config, action, stream, journal_directory, dry_run))

    app.add_typer(sub, name="logstream")


def alias_main() -> None:
    """`heka-logstreamer -config FILE`: Heka's verifier, journals read from the working directory."""
    from ._alias import translate_go_flags
    from .main import main

    args = sys.argv[1:]
    if not args:
        sys.stderr.write(
            '  -config string\n    \tHeka Logstreamer configuration file (default "logstreamer.toml")\n'
        )
        raise SystemExit(0)
    translated = translate_go_flags(args, {"config": "--config"})
    main(["logstream", "list", "--format", "heka", "--journal-directory", os.getcwd(), *translated])
