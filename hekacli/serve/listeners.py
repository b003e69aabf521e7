"""Inputs of `heka serve`: tcp://, tls:// and udp:// listeners that cut framed records out of the bytes
they receive and hand them to a callback, one batch per read. Every connection has its own task,
splitter and `TailMemo` (repeated messages, see hekacli.message), so a slow or broken client never
stalls the others; each listener keeps its own counters."""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..framing import RepeatCutter, Span, Splitter
from ..message import TailMemo
from ..transport import bound_port, listen, listen_udp, parse_endpoint, server_ssl_context
from .config import ListenerConfig

READ_SIZE = 256 * 1024
DRAIN_IDLE = 0.3  # seconds without new bytes after which a stopping listener stops draining
# Called with every batch of records cut from one read (one chunk or datagram): per-chunk work
# (e.g. the receive timestamp) is then paid once per read, not once per record. Arguments: the buffer
# and the record spans `Splitter.iter_spans` gives (to be consumed whole: the records are cut as the
# sink goes), the listener, and the connection's TailMemo.
RecordSink = Callable[[bytes, Iterator[Span], "Listener", TailMemo], None]


@dataclass
class ListenerStats:
    connections: int = 0  # accepted connections (datagrams for udp)
    active: int = 0
    bytes: int = 0
    records: int = 0  # framed records that passed framing and signature checks
    accepted: int = 0  # decoded and routed
    dropped: Counter[str] = field(default_factory=Counter)
    tls_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"connections": self.connections, "active": self.active, "bytes": self.bytes,
                # records already includes the undecodable ones; garbage spans are not records
                "received": self.records + sum(v for k, v in self.dropped.items()
                                               if k not in ("corrupt", "undecodable")),
                "accepted": self.accepted, "dropped": dict(sorted(self.dropped.items())),
                "tls_failures": self.tls_failures}


class Listener:
    """One configured input endpoint."""

    def __init__(self, config: ListenerConfig, sink: RecordSink, *, signers: dict[str, bytes],
                 max_message_size: int, log: Callable[[str], None]) -> None:
        self.config = config
        self.endpoint = parse_endpoint(config.url)
        self.sink = sink
        self.signers = signers
        self.max_message_size = max_message_size
        self.log = log
        self.stats = ListenerStats()
        self._server: asyncio.Server | None = None
        self._ssl: ssllib.SSLContext | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = self.endpoint.port
        self.closing = False
        self._datagram_memo = TailMemo()  # datagrams of one sender repeat like a stream
        self._datagram_cutter = RepeatCutter(self._datagram_memo, max_message_size)

    @property
    def url(self) -> str:
        """The URL with the port actually bound (useful with port 0)."""
        host = f"[{self.endpoint.host}]" if ":" in self.endpoint.host else self.endpoint.host
        return f"{self.endpoint.scheme}://{host}:{self.port}"

    def _splitter(self) -> Splitter:
        return Splitter(max_message_size=self.max_message_size, signers=self.signers, authenticate=True)

    async def start(self) -> None:
        if self.endpoint.scheme == "udp":
            self._udp = await listen_udp(self.endpoint, self._datagram)
            self.port = bound_port(self._udp)
            return
        endpoint = self.endpoint
        if endpoint.scheme == "tls":
            c = self.config
            self._ssl = server_ssl_context(c.cert or "", c.key, client_ca=c.client_ca,
                                           require_client_cert=c.require_client_cert,
                                           min_version=c.min_version)
            # Accept plain TCP and do the handshake in `_connection`: asyncio's own TLS server
            # drops failed handshakes before any handler runs, and they must be counted.
            endpoint = replace(endpoint, scheme="tcp")
        self._server = await listen(endpoint, self._connection)
        self.port = bound_port(self._server)

    def _datagram(self, data: bytes, addr: tuple) -> None:
        if self.closing:
            return
        try:
            self._handle_datagram(data)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one datagram, not the daemon
            self.stats.dropped["internal_error"] += 1
            self.log(f"{self.url}: datagram handler failed: {type(exc).__name__}: {exc}")

    def _handle_datagram(self, data: bytes) -> None:
        st = self.stats
        st.connections += 1
        st.bytes += len(data)
        sp = self._splitter()
        buf, spans = sp.iter_spans(data, self._datagram_cutter)
        self.sink(buf, spans, self, self._datagram_memo)
        sp.finish()  # a record cut short by the datagram's end is dropped, not carried over
        st.records += sp.records
        st.dropped.update(sp.dropped)

    async def _handshake(self, writer: asyncio.StreamWriter) -> bool:
        """TLS handshake on an accepted connection; a failure is counted and logged, not raised."""
        assert self._ssl is not None
        peer = writer.get_extra_info("peername")
        try:
            await writer.start_tls(self._ssl, ssl_handshake_timeout=10)
        except (TimeoutError, ssllib.SSLError, ConnectionError, OSError) as exc:
            self.stats.tls_failures += 1
            reason = getattr(exc, "reason", None) or type(exc).__name__
            self.log(f"{self.url}: TLS handshake with {peer} failed: {reason}")
            return False
        return True

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        st = self.stats
        st.connections += 1
        st.active += 1
        sp = self._splitter()
        memo = TailMemo()
        cutter = RepeatCutter(memo, self.max_message_size)
        seen: Counter[str] = Counter()
        try:
            if self._ssl is not None and not await self._handshake(writer):
                return
            while not self.closing:
                try:
                    data = await reader.read(READ_SIZE)
                except (ConnectionError, ssllib.SSLError, OSError) as exc:
                    if isinstance(exc, ssllib.SSLError):
                        st.tls_failures += 1
                    break
                if not data:
                    break
                st.bytes += len(data)
                # `closing` only changes in `stop`, which cannot run during this synchronous call
                records = sp.records
                buf, spans = sp.iter_spans(data, cutter)
                self.sink(buf, spans, self, memo)
                st.records += sp.records - records
                if sp.dropped != seen:
                    st.dropped.update(sp.dropped - seen)
                    seen = Counter(sp.dropped)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - a bug must cost one connection, not the daemon
            st.dropped["internal_error"] += 1
            self.log(f"{self.url}: connection handler failed: {type(exc).__name__}: {exc}")
        finally:
            sp.finish()
            st.dropped.update(sp.dropped - seen)
            st.active -= 1
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop. With `grace`, first keep serving while data or connections still arrive (what
        clients sent before the stop, including connections still in the accept queue, is not
        lost), at most `grace` seconds and until DRAIN_IDLE seconds pass without any; then stop
        accepting, close every connection and wait for the handlers."""
        if grace > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace

            def activity() -> tuple[int, int]:
                return self.stats.bytes, self.stats.connections

            last, quiet_since = activity(), loop.time()
            while loop.time() < deadline:
                await asyncio.sleep(0.05)
                now = activity()
                if now != last:
                    last, quiet_since = now, loop.time()
                elif loop.time() - quiet_since >= DRAIN_IDLE:
                    break
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._server is not None:
            self._server.close()
        self.closing = True
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
