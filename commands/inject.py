"""`heka inject` (alias `heka-inject`): send one Heka message to a tcp/tls/udp endpoint."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import typer

from hekacli.errors import ConfigError, UsageError
from hekacli.framing import Signer, frame
from hekacli.message import Field, Message, ValueType

ALIAS_FLAGS = {"heka": "--heka", "type": "--type", "logger": "--logger", "severity": "--severity",
               "payload": "--payload", "pid": "--pid", "hostname": "--hostname"}
CONFIG_KEYS = ("ip_address", "heka", "use_tls", "signer", "tls")
SIGNER_KEYS = ("name", "hmac_hash", "hmac_key", "version")
TLS_KEYS = ("cert_file", "key_file", "root_cafile", "server_name", "insecure_skip_verify", "min_version")
_PREFIXES = {"int": ValueType.INTEGER, "double": ValueType.DOUBLE, "bool": ValueType.BOOL,
             "bytes": ValueType.BYTES, "string": ValueType.STRING}


def parse_field(spec: str) -> Field:
    """``name=value`` with an optional type prefix on the value: ``int:``, ``double:``, ``bool:``,
    ``bytes:`` (the UTF-8 bytes of the rest), ``string:`` (explicit text)."""
    name, sep, value = spec.partition("=")
    if not sep or not name:
        raise UsageError(f"--field {spec!r} is not name=value")
    prefix, psep, rest = value.partition(":")
    vtype = _PREFIXES.get(prefix) if psep else None
    if vtype is None:
        return Field(name, ValueType.STRING, "", [value])
    try:
        if vtype == ValueType.INTEGER:
            v: Any = int(rest, 0)
            if not -(2**63) <= v < 2**63:
                raise ValueError("out of int64 range")
        elif vtype == ValueType.DOUBLE:
            v = float(rest)
        elif vtype == ValueType.BOOL:
            low = rest.strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            v = low in ("true", "1")
        elif vtype == ValueType.BYTES:
            v = rest.encode("utf-8", "surrogateescape")
        else:
            v = rest
    except ValueError as exc:
        raise UsageError(f"--field {spec!r}: {exc}") from None
    return Field(name, vtype, "", [v])


def _load_config(path: str) -> dict[str, Any]:
    from hekacli.config import check_keys, load_toml, load_yaml

    data = load_toml(path) if path.endswith(".toml") else load_yaml(path)
    check_keys(data, CONFIG_KEYS, file=path)
    for section, keys in (("signer", SIGNER_KEYS), ("tls", TLS_KEYS)):
        sub = data.get(section)
        if sub is not None:
            if not isinstance(sub, dict):
                raise ConfigError(f"{section} must be a table", file=path, field=section)
            check_keys(sub, keys, file=path, section=section)
    return data


def inject(
    heka: str = typer.Option("127.0.0.1:5565", "--heka", help="host:port or a tcp/tls/udp URL."),
    type: str = typer.Option("inject.message", "--type", help="Message Type."),
    logger: str = typer.Option("Inject Client", "--logger", help="Message Logger."),
    severity: int = typer.Option(7, "--severity", help="Message Severity (syslog level)."),
    payload: str = typer.Option("", "--payload", help="Message Payload."),
    pid: int = typer.Option(0, "--pid", help="Message Pid (0 = this process)."),
    hostname: str = typer.Option("", "--hostname", help="Message Hostname ('' = this host)."),
    field: list[str] = typer.Option([], "--field", help="name=value; typed with int: double: bool: bytes: "
                                                        "(repeatable)."),
    tls: bool = typer.Option(False, "--tls", help="Use TLS (same as a tls:// URL)."),
    ca: Path | None = typer.Option(None, "--ca", help="CA file to verify the server with."),
    cert: Path | None = typer.Option(None, "--cert", help="Client certificate (TLS)."),
    key: Path | None = typer.Option(None, "--key", help="Client certificate key."),
    server_name: str | None = typer.Option(None, "--server-name", help="TLS server name to verify."),
    insecure: bool = typer.Option(False, "--insecure", help="Do not verify the server certificate."),
    signer: str | None = typer.Option(None, "--signer", help="Sign: name:version:hash:key."),
    config: str | None = typer.Option(None, "--config",
                                      help="YAML or TOML file with heka/ip_address, use_tls, [signer], [tls] "
                                           "(heka-sbmgr's config shape)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for the connection."),
) -> None:
    """Send one message, as heka-inject did. Unlike heka-inject it fails (exit 4) with a clear message
    when it cannot connect, and it can sign, use TLS and UDP, and add typed fields."""
    from hekacli.transport import client_ssl_context, parse_endpoint, send_framed

    sign: Signer | None = Signer.parse(signer) if signer else None
    tls_cfg: dict[str, Any] = {}
    if config:
        cfg = _load_config(config)
        if "heka" in cfg or "ip_address" in cfg:
            heka = str(cfg.get("heka") or cfg.get("ip_address"))
        tls = tls or bool(cfg.get("use_tls", False))
        tls_cfg = dict(cfg.get("tls") or {})
        s = cfg.get("signer")
        if s is not None and sign is None:
            sign = Signer(str(s.get("name", "")), int(s.get("version", 0)), str(s.get("hmac_hash", "md5")),
                          str(s.get("hmac_key", "")).encode())
    endpoint = parse_endpoint(heka)
    if tls and endpoint.scheme == "tcp":
        endpoint = parse_endpoint(f"tls://{endpoint.address}")
    if tls and endpoint.scheme == "udp":
        raise UsageError("--tls cannot be used with a udp:// endpoint")
    ssl_ctx = None
    if endpoint.scheme == "tls":
        ssl_ctx = client_ssl_context(
            ca=ca or tls_cfg.get("root_cafile"), cert=cert or tls_cfg.get("cert_file"),
            key=key or tls_cfg.get("key_file"), server_hostname=server_name or tls_cfg.get("server_name"),
            insecure=insecure or bool(tls_cfg.get("insecure_skip_verify", False)),
            min_version=tls_cfg.get("min_version"))
    elif ca or cert or key:
        raise UsageError("--ca/--cert/--key need TLS (--tls or a tls:// URL)")
    msg = Message.new(type=type, logger=logger, severity=severity, payload=payload,
                      pid=pid or os.getpid(), hostname=hostname or socket.gethostname(),
                      fields=[parse_field(f) for f in field])
    send_framed(endpoint, frame(msg, sign), ssl=ssl_ctx, timeout=timeout)


def register(app: typer.Typer) -> None:
    """Add `heka inject` to the app."""
    app.command("inject")(inject)


def alias_main() -> None:
    """`heka-inject`: Heka's single-dash flags (`-heka 127.0.0.1:5565 -type x -payload y`)."""
    import sys

    from ._alias import run_alias

    # heka-inject with no flag at all printed its usage and exited 0.
    run_alias(["inject"], ALIAS_FLAGS, sys.argv[1:] or ["--help"])
