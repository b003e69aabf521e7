"""`heka send URL [FILE...]`: ship framed Heka messages or JSONL records to a Heka endpoint, with
TLS, signing, reconnect with back-off and a bounded (disk) queue."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import typer

from hekacli.errors import EXIT_DATA, EXIT_NETWORK, InputError, UsageError

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """"64M", "512k", "1G", "1000" -> bytes."""
    s = text.strip().lower()
    num = s.rstrip("kmgib")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        raise UsageError(f"bad size {text!r} (e.g. 64M, 512k, 1G)") from None
    if unit not in _UNITS or value <= 0:
        raise UsageError(f"bad size {text!r} (e.g. 64M, 512k, 1G)")
    return int(value * _UNITS[unit])


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    read = getattr(fh, "read1", fh.read)
    while True:
        chunk = read(1 << 16)
        if not chunk:
            return
        yield chunk


class _Stats:
    def __init__(self) -> None:
        self.records = 0
        self.rejected = 0
        self.framing_dropped: dict[str, int] = {}


def _send_framed(fh: IO[bytes], first: bytes, name: str, sender: Any, stats: _Stats,
                 max_message_size: int) -> None:
    from hekacli.framing import Splitter

    splitter = Splitter(max_message_size=max_message_size, authenticate=False)
    for chunk in ([first] if first else []):
        for rec in splitter.feed(chunk):
            sender.send(rec.raw)
            stats.records += 1
    for chunk in _chunks(fh):
        for rec in splitter.feed(chunk):
            sender.send(rec.raw)
            stats.records += 1
    splitter.finish()
    for k, v in splitter.dropped.items():
        stats.framing_dropped[k] = stats.framing_dropped.get(k, 0) + v
        sys.stderr.write(f"heka send: {name}: {v} {k} record(s) skipped\n")


def _send_jsonl(fh: IO[bytes], first: bytes, name: str, sender: Any, stats: _Stats,
                max_message_size: int) -> None:
    from hekacli.errors import HekaError
    from hekacli.framing import frame
    from hekacli.message import from_flat

    def lines() -> Iterator[bytes]:
        pending = first
        for chunk in _chunks(fh):
            pending += chunk
            *whole, pending = pending.split(b"\n")
            yield from whole
        if pending:
            yield pending

    for lineno, raw in enumerate(lines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            data = frame(from_flat(record), max_message_size=max_message_size)
        except (ValueError, HekaError) as exc:
            stats.rejected += 1
            sys.stderr.write(f"heka send: {name}:{lineno}: rejected: {exc}\n")
            continue
        sender.send(data)
        stats.records += 1


def send_cmd(
    url: str = typer.Argument(..., help="tcp://host:port, tls://host:port or udp://host:port"),
    files: list[Path] = typer.Argument(None, help="Framed Heka files or JSONL files (default: stdin)."),
    input_format: str = typer.Option("auto", "--input-format", help="auto | heka | jsonl"),
    signer: str | None = typer.Option(None, "--signer", help="Sign every message: name:version:hash:key."),
    ca: Path | None = typer.Option(None, "--ca", help="CA file the server certificate must chain to."),
    cert: Path | None = typer.Option(None, "--cert", help="Client certificate (TLS client auth)."),
    key: Path | None = typer.Option(None, "--key", help="Client key."),
    server_name: str | None = typer.Option(None, "--server-name", help="TLS name to verify."),
    insecure: bool = typer.Option(False, "--insecure", help="Do not verify the server certificate."),
    queue_dir: Path | None = typer.Option(None, "--queue-dir", help="Disk queue directory (survives "
                                                                    "restarts; sent first next time)."),
    queue_max: str = typer.Option("256M", "--queue-max", help="Queue size limit (64M, 1G)."),
    on_full: str = typer.Option("block", "--on-full", help="block | drop-oldest (counted)."),
    backoff_initial: float = typer.Option(0.1, "--backoff-initial", help="First reconnect delay (s)."),
    backoff_max: float = typer.Option(10.0, "--backoff-max", help="Reconnect delay cap (s)."),
    settle: float = typer.Option(2.0, "--settle", help="Seconds a record must stay acked on a live "
                                                       "connection before it leaves the queue."),
    wait: float = typer.Option(60.0, "--wait", help="At the end, wait this long for delivery."),
    max_message_size: int = typer.Option(64 * 1024, "--max-message-size", help="Message size limit."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log connects and disconnects on stderr."),
) -> None:
    """Ship framed Heka messages or JSONL records to a Heka endpoint (TcpOutput with a disk queue).

    Heka's protocol has no acknowledgements: records leave the queue once the peer's TCP stack acked
    them and the connection stayed up for --settle seconds; after a broken connection everything
    unconfirmed is sent again (at least once). Prove delivery with `heka serve --verify`.
    Exit 0 when everything was confirmed, 1 when input records were rejected, 4 when some were not
    confirmed in --wait seconds (with --queue-dir they stay queued for the next run).
    """
    from hekacli.framing import Signer
    from hekacli.shipping import sender_from_options

    if input_format not in ("auto", "heka", "jsonl"):
        raise UsageError(f"--input-format must be auto, heka or jsonl, not {input_format!r}")
    if on_full not in ("block", "drop-oldest"):
        raise UsageError(f"--on-full must be block or drop-oldest, not {on_full!r}")
    log = (lambda text: sys.stderr.write(f"heka send: {text}\n")) if verbose else None
    sender = sender_from_options(
        url, ca=str(ca) if ca else None, cert=str(cert) if cert else None, key=str(key) if key else None,
        server_name=server_name, insecure=insecure, signer=Signer.parse(signer) if signer else None,
        queue_dir=queue_dir, queue_max_bytes=parse_size(queue_max), on_full=on_full,
        backoff_initial=backoff_initial, backoff_max=backoff_max, settle=settle, log=log)
    stats = _Stats()
    try:
        for path in files or [Path("-")]:
            name = "<stdin>" if str(path) == "-" else str(path)
            try:
                fh = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
            except OSError as exc:
                raise InputError(f"cannot open: {exc.strerror}", file=name) from None
            with fh:
                first = fh.read(1) if input_format == "auto" else b""
                kind = input_format if input_format != "auto" else ("heka" if first == b"\x1e" else "jsonl")
                handler = _send_framed if kind == "heka" else _send_jsonl
                handler(fh, first, name, sender, stats, max_message_size)
    finally:
        done = sender.close(timeout=wait)
    st = sender.stats()
    summary = {"url": url, "records": stats.records, "rejected": stats.rejected,
               "framing_dropped": stats.framing_dropped, "confirmed": done, **st}
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stderr.write(f"heka send: {stats.records} records to {url}; {st['connects']} connects, "
                         f"{st['replayed_bytes']} bytes replayed, {st['dropped']} dropped (queue full), "
                         f"{st['queue_bytes']} bytes unconfirmed\n")
    if not done:
        sys.stderr.write(f"heka send: error: {st['queue_bytes']} bytes not confirmed within {wait:g}s"
                         + (f" (kept in {queue_dir})" if queue_dir else "") + "\n")
        raise SystemExit(EXIT_NETWORK)
    if stats.rejected or stats.framing_dropped:
        raise SystemExit(EXIT_DATA)


def register(app: typer.Typer) -> None:
    """Add `heka send` to the `heka` app."""
    app.command("send")(send_cmd)
