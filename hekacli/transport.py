"""Network endpoints shared by every command: tcp://, tls:// and udp:// on asyncio, plus TLS contexts.

Heka sends framed records one way over a plain connection and never reads anything back; so do we.
UDP datagrams may carry one or more framed records each. Every failure to connect, listen or
complete a handshake is raised as `NetworkError` (exit 4); a bad URL or certificate file is a
`UsageError`/`ConfigError` naming it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError, NetworkError, UsageError

SCHEMES = ("tcp", "tls", "udp")
DEFAULT_PORT = 5565
MAX_DATAGRAM = 65507  # the largest UDP payload over IPv4

TLS_VERSIONS = {
    "SSL30": ssllib.TLSVersion.SSLv3,
    "TLS10": ssllib.TLSVersion.TLSv1,
    "TLS11": ssllib.TLSVersion.TLSv1_1,
    "TLS12": ssllib.TLSVersion.TLSv1_2,
    "TLS13": ssllib.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed ``scheme://host:port``."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port`` (Heka's `-heka` flag form)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def parse_endpoint(url: str, default_scheme: str = "tcp") -> Endpoint:
    """Parse ``tcp://host:port``, ``tls://…``, ``udp://…``, or a bare ``host:port`` (then
    `default_scheme`). Raises UsageError naming the URL when it does not fit."""
    text = url.strip()
    if "://" not in text:
        text = f"{default_scheme}://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"bad endpoint {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        choices = ", ".join(s + "://" for s in SCHEMES)
        raise UsageError(f"bad endpoint {url!r}: scheme must be one of {choices}")
    host = parts.hostname or ""
    if not host:
        raise UsageError(f"bad endpoint {url!r}: no host")
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(f"bad endpoint {url!r}: unexpected path or query")
    return Endpoint(scheme, host, DEFAULT_PORT if port is None else port)


# -- TLS ------------------------------------------------------------------------------------------

def _tls_version(name: str | None) -> ssllib.TLSVersion | None:
    if name is None:
        return None
    key = str(name).upper().replace(".", "").replace("V", "").replace("_", "")
    key = {"TLS1": "TLS10", "SSL3": "SSL30"}.get(key, key)
    if key not in TLS_VERSIONS:
        raise ConfigError(f"unknown TLS version {name!r} (choose from {', '.join(TLS_VERSIONS)})")
    return TLS_VERSIONS[key]


def _load_chain(ctx: ssllib.SSLContext, cert: str | Path, key: str | Path | None) -> None:
    for p in (cert, key):
        if p is not None and not Path(p).is_file():
            raise ConfigError("no such certificate/key file", file=str(p))
    try:
        ctx.load_cert_chain(str(cert), str(key) if key is not None else None)
    except (ssllib.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load certificate/key: {exc}", file=str(cert)) from None


def _load_ca(ctx: ssllib.SSLContext, ca: str | Path) -> None:
    if not Path(ca).is_file():
        raise ConfigError("no such CA file", file=str(ca))
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except (ssllib.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load CA file: {exc}", file=str(ca)) from None


def server_ssl_context(cert: str | Path, key: str | Path | None, client_ca: str | Path | None = None,
                       require_client_cert: bool = False,
                       min_version: str | None = None) -> ssllib.SSLContext:
    """A server-side TLS context. With `require_client_cert` the client must present a certificate
    signed by `client_ca` (Heka's RequireAndVerifyClientCert); with only `client_ca` one is verified
    if given."""
    ctx = ssllib.SSLContext(ssllib.PROTOCOL_TLS_SERVER)
    version = _tls_version(min_version)
    if version is not None:
        ctx.minimum_version = version
    _load_chain(ctx, cert, key)
    if require_client_cert and client_ca is None:
        raise ConfigError("requiring client certificates needs a client CA file")
    if client_ca is not None:
        _load_ca(ctx, client_ca)
        ctx.verify_mode = ssllib.CERT_REQUIRED if require_client_cert else ssllib.CERT_OPTIONAL
    return ctx


def client_ssl_context(ca: str | Path | None = None, cert: str | Path | None = None,
                       key: str | Path | None = None, server_hostname: str | None = None,
                       insecure: bool = False, min_version: str | None = None) -> ssllib.SSLContext:
    """A client-side TLS context: verifies the server against `ca` (or the system store) unless
    `insecure`; presents `cert`/`key` when given. `server_hostname` is kept on the context as
    ``hekacli_server_hostname`` for `send_framed`/`open_connection` to use."""
    ctx = ssllib.SSLContext(ssllib.PROTOCOL_TLS_CLIENT)
    version = _tls_version(min_version)
    if version is not None:
        ctx.minimum_version = version
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssllib.CERT_NONE
    elif ca is not None:
        _load_ca(ctx, ca)
    else:
        ctx.load_default_certs()
    if cert is not None:
        _load_chain(ctx, cert, key)
    elif key is not None:
        raise ConfigError("a client key needs a client certificate (--cert)")
    ctx.hekacli_server_hostname = server_hostname  # type: ignore[attr-defined]
    return ctx


def _server_hostname(ctx: ssllib.SSLContext, ep: Endpoint) -> str:
    return getattr(ctx, "hekacli_server_hostname", None) or ep.host


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssllib.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc}"
    if isinstance(exc, ssllib.SSLError):
        if exc.reason == "UNEXPECTED_EOF_WHILE_READING" or isinstance(exc, ssllib.SSLEOFError):
            return "the server closed the TLS connection (does it require a client certificate?)"
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# -- blocking client ------------------------------------------------------------------------------

def split_datagrams(data: bytes, limit: int = MAX_DATAGRAM) -> list[bytes]:
    """Group framed records into datagrams of at most `limit` bytes, never splitting a record."""
    if len(data) <= limit:
        return [data]
    from .framing import CAT_MAX_MESSAGE_SIZE, Splitter

    sp = Splitter(max_message_size=CAT_MAX_MESSAGE_SIZE, authenticate=False)
    out: list[bytes] = []
    cur = bytearray()
    for rec in sp.feed(data):
        if cur and len(cur) + len(rec.raw) > limit:
            out.append(bytes(cur))
            cur.clear()
        cur += rec.raw
    if cur:
        out.append(bytes(cur))
    return out


def send_framed(url: str | Endpoint, data: bytes, ssl: ssllib.SSLContext | None = None,
                timeout: float = 10) -> None:
    """Connect, send `data` (framed records), close. For tls:// a client context is required
    (`ssl`). Raises NetworkError naming the endpoint on any failure."""
    ep = url if isinstance(url, Endpoint) else parse_endpoint(url)
    try:
        if ep.scheme == "udp":
            family = socket.AF_INET6 if ":" in ep.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                for datagram in split_datagrams(data):
                    s.sendto(datagram, (ep.host, ep.port))
            return
        with socket.create_connection((ep.host, ep.port), timeout=timeout) as raw:
            if ep.scheme == "tls":
                ctx = ssl if ssl is not None else client_ssl_context()
                with ctx.wrap_socket(raw, server_hostname=_server_hostname(ctx, ep)) as s:
                    s.sendall(data)
                    _tls_close(s)
            else:
                raw.sendall(data)
                raw.shutdown(socket.SHUT_WR)
    except (OSError, ssllib.SSLError) as exc:
        raise NetworkError(f"cannot send to {ep.url}: {_describe(exc)}") from None


def _tls_close(s: ssllib.SSLSocket) -> None:
    """Exchange close_notify so a server that rejected us after the handshake is noticed.

    With TLS 1.3 the client certificate is checked after the client's handshake has finished, so
    `sendall` succeeds even when the server refuses us; the refusal (an alert, or a closed connection)
    only shows at shutdown.
    """
    try:
        s.unwrap()
    except ssllib.SSLError:
        raise
    except OSError as exc:
        raise OSError(exc.errno, "the server closed the TLS connection before acknowledging it "
                                 "(does it require a client certificate?)") from None


# -- asyncio --------------------------------------------------------------------------------------

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
DatagramHandler = Callable[[bytes, tuple], None]


async def open_connection(url: str | Endpoint, ssl: ssllib.SSLContext | None = None,
                          timeout: float = 10) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio connection to a tcp:// or tls:// endpoint; NetworkError on failure."""
    ep = url if isinstance(url, Endpoint) else parse_endpoint(url)
    if ep.scheme == "udp":
        raise UsageError(f"{ep.url}: open_connection needs tcp:// or tls://")
    ctx = None
    if ep.scheme == "tls":
        ctx = ssl if ssl is not None else client_ssl_context()
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(ep.host, ep.port, ssl=ctx,
                                    server_hostname=_server_hostname(ctx, ep) if ctx else None),
            timeout)
    except (OSError, ssllib.SSLError, TimeoutError) as exc:
        raise NetworkError(f"cannot connect to {ep.url}: {_describe(exc)}") from None


async def listen(url: str | Endpoint, handler: ConnectionHandler, ssl: ssllib.SSLContext | None = None,
                 backlog: int = 512) -> asyncio.Server:
    """Start a tcp:// or tls:// server calling `handler(reader, writer)` per connection."""
    ep = url if isinstance(url, Endpoint) else parse_endpoint(url)
    if ep.scheme == "tls" and ssl is None:
        raise ConfigError(f"{ep.url}: a tls:// listener needs a certificate and key")
    try:
        return await asyncio.start_server(handler, ep.host, ep.port, ssl=ssl if ep.scheme == "tls" else None,
                                          backlog=backlog, reuse_address=True,
                                          ssl_handshake_timeout=10 if ep.scheme == "tls" else None)
    except OSError as exc:
        raise NetworkError(f"cannot listen on {ep.url}: {_describe(exc)}") from None


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.handler(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors etc.: nothing to do for a receiver
        pass


async def listen_udp(url: str | Endpoint, handler: DatagramHandler,
                     rcvbuf: int = 4 * 1024 * 1024) -> asyncio.DatagramTransport:
    """Start a udp:// receiver calling `handler(datagram, addr)` for each datagram."""
    ep = url if isinstance(url, Endpoint) else parse_endpoint(url, "udp")
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in ep.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except OSError:
            pass
        sock.bind((ep.host, ep.port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise NetworkError(f"cannot listen on {ep.url}: {_describe(exc)}") from None
    transport, _ = await loop.create_datagram_endpoint(lambda: _DatagramProtocol(handler), sock=sock)
    return transport


def bound_port(server: asyncio.Server | asyncio.DatagramTransport) -> int:
    """The port a listener actually bound (useful with port 0)."""
    if isinstance(server, asyncio.Server):
        return server.sockets[0].getsockname()[1]
    return server.get_extra_info("sockname")[1]
