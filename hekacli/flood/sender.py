"""The flood sender: N connections, an open-model rate, heka-flood's stats lines.

Open model: with a target rate, send i of a connection is *scheduled* at start + i/rate and stamped
with that scheduled time. When the receiver (or the sender) falls behind, the sender catches up in
bursts and the delay shows up as latency at the verifier, instead of quietly lowering the rate as a
sleep-after-each-send loop would (that is heka-flood's `message_interval`, kept as it was).
Without a rate, each connection sends batches as fast as the socket takes them.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, NetworkError
from ..shipping import tls_probe
from .config import FloodConfig
from .generator import FloodGenerator, KindCounts, build_templates, new_run_id

BATCH = 256  # sends per sendall when not pacing per message


def split_address(address: str) -> tuple[str, int]:
    """"host:port" (or "[v6]:port") -> (host, port); raises ConfigError."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"ip_address {address!r} is not host:port", field="ip_address")
    return host.strip("[]") or "127.0.0.1", int(port)


def tls_context(tls: dict[str, Any]) -> ssl.SSLContext:
    """A client SSLContext from heka's [tls] table (root_cafile pins the CA; cert/key for client auth)."""
    from ..transport import client_ssl_context  # the wire agent's helper

    cert = tls.get("cert_file") or None
    key = tls.get("key_file") or None
    if bool(cert) != bool(key):
        cert = key = None  # Heka loads the pair only when both are given
    ctx = client_ssl_context(ca=tls.get("root_cafile") or None, cert=cert, key=key,
                             server_hostname=tls.get("server_name") or None,
                             insecure=bool(tls.get("insecure_skip_verify", False)))
    versions = {"SSL30": ssl.TLSVersion.SSLv3, "TLS10": ssl.TLSVersion.TLSv1,
                "TLS11": ssl.TLSVersion.TLSv1_1, "TLS12": ssl.TLSVersion.TLSv1_2,
                "TLS13": ssl.TLSVersion.TLSv1_3}
    if tls.get("min_version"):
        ctx.minimum_version = versions[str(tls["min_version"]).upper()]
    if tls.get("max_version"):
        ctx.maximum_version = versions[str(tls["max_version"]).upper()]
    return ctx


@dataclass
class ConnStats:
    """Counters of one connection (written by its thread only)."""

    sent: int = 0  # attempted sends (heka-flood's "messages sent")
    delivered: int = 0  # sends the socket accepted
    bytes: int = 0
    errors: int = 0
    reconnects: int = 0
    kinds: KindCounts = field(default_factory=KindCounts)
    next_seq: int = 0


@dataclass
class FloodResult:
    """The run summary (`heka flood run --json`)."""

    run_id: str
    target: str
    sender: str
    connections: int
    sent: int
    delivered: int
    bytes: int
    errors: int
    reconnects: int
    elapsed: float
    kinds: dict[str, int]
    expected_at_receiver: int
    rate_target: float
    end_markers: int
    stopped_by: str

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["msg_per_sec"] = round(self.sent / self.elapsed, 1) if self.elapsed > 0 else 0.0
        d["mbit_per_sec"] = round(self.bytes * 8 / 1e6 / self.elapsed, 3) if self.elapsed > 0 else 0.0
        return d


class FloodRunner:
    """Runs one flood test. `run()` blocks until done (num_messages, duration, or `stop()`)."""

    def __init__(self, cfg: FloodConfig, *, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.host, self.port = split_address(cfg.ip_address)
        self.udp = cfg.sender.startswith("udp")
        self.run_id = cfg.run_id or new_run_id()
        self.log = log or (lambda text: sys.stderr.write(text + "\n"))
        self.ssl_ctx = tls_context(cfg.tls) if cfg.use_tls else None
        self.templates, self.oversized = build_templates(
            variable=cfg.variable_size_messages, static_size=cfg.static_message_size,
            ascii_only=cfg.ascii_only, max_message_size=cfg.max_message_size)
        self.stats = [ConnStats() for _ in range(cfg.connections)]
        self._stop = threading.Event()
        self.stopped_by = "done"
        self.start_ns = 0
        self.end_markers = 0
        self._lock = threading.Lock()

    # -- connections ----------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        family = socket.AF_INET6 if self.cfg.sender.endswith("6") else 0
        try:
            if self.udp:
                infos = socket.getaddrinfo(self.host, self.port, family, socket.SOCK_DGRAM)
                af, kind, proto, _, addr = infos[0]
                sock = socket.socket(af, kind, proto)
                sock.connect(addr)
                return sock
            sock = socket.create_connection((self.host, self.port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_ctx is not None:
                server_name = self.cfg.tls.get("server_name") or self.host
                sock = self.ssl_ctx.wrap_socket(sock, server_hostname=server_name)
                tls_probe(sock)
            sock.settimeout(None)
            return sock
        except (OSError, ssl.SSLError) as exc:
            raise NetworkError(f"cannot connect to {self.target}: {exc}") from exc

    @property
    def target(self) -> str:
        scheme = "udp" if self.udp else ("tls" if self.ssl_ctx is not None else "tcp")
        return f"{scheme}://{self.host}:{self.port}"

    def _reconnect(self, st: ConnStats) -> socket.socket | None:
        while not self._stop.is_set():
            self.log("Attempting to reconnect...")
            try:
                sock = self._connect()
                st.reconnects += 1
                return sock
            except NetworkError as exc:
                self.log(f"Error creating sender: {exc}")
                self._stop.wait(self.cfg.reconnect_interval)
        return None

    # -- the send loop --------------------------------------------------------------------
    def _quota(self, idx: int) -> int | None:
        n = self.cfg.num_messages
        if not n:
            return None
        per, extra = divmod(n, self.cfg.connections)
        return per + (1 if idx < extra else 0)

    def _worker(self, idx: int, sock: socket.socket, errors: list[BaseException],
                done: threading.Event) -> None:
        cfg = self.cfg
        st = self.stats[idx]
        gen = FloodGenerator(self.templates, self.oversized, run_id=self.run_id, conn=idx,
                             signer=cfg.signer, corrupt_percentage=cfg.corrupt_percentage,
                             signed_percentage=cfg.signed_percentage,
                             oversized_percentage=cfg.oversized_percentage)
        quota = self._quota(idx)
        rate = cfg.rate / cfg.connections if cfg.rate > 0 else 0.0
        interval_ns = int(1e9 / rate) if rate else 0
        per_send = bool(cfg.message_interval) or self.udp
        batch_max = 1 if cfg.message_interval else BATCH
        start = self.start_ns
        end = start + int(cfg.duration * 1e9) if cfg.duration else 0
        time_ns = time.time_ns
        nxt = gen.next
        frames: list[bytes] = []
        blob = b""
        try:
            while not self._stop.is_set():
                now = time_ns()
                if end and now >= end:
                    self.stopped_by = "duration"
                    break
                n = batch_max
                if quota is not None:
                    n = min(n, quota - gen.sends)
                    if n <= 0:
                        break
                if rate:
                    due = (now - start) // interval_ns + 1 - gen.sends
                    if due <= 0:
                        self._stop.wait((start + gen.sends * interval_ns - now) / 1e9)
                        continue
                    n = min(n, due)
                    first = start + gen.sends * interval_ns
                    if per_send:
                        frames = [nxt(first + i * interval_ns)[0] for i in range(n)]
                    else:
                        blob = gen.batch(n, first, interval_ns)
                elif per_send:
                    frames = [nxt(now)[0] for _ in range(n)]
                else:
                    blob = gen.batch(n, now)
                st.sent += n
                # counted even when the send fails, as heka-flood
                st.bytes += sum(map(len, frames)) if per_send else len(blob)
                try:
                    if per_send:
                        for f in frames:
                            try:
                                sock.send(f)
                                st.delivered += 1
                            except (ConnectionRefusedError, OSError) as exc:
                                if not self.udp:
                                    raise
                                st.errors += 1  # UDP: the datagram is lost; the verifier reports it
                                if st.errors <= 3:
                                    self.log(f"Error sending message: {exc}")
                    else:
                        sock.sendall(blob)
                        st.delivered += n
                except (OSError, ssl.SSLError) as exc:
                    st.errors += 1
                    self.log(f"Error sending message: {exc}")
                    sock.close()
                    if not cfg.reconnect_on_error:
                        break
                    new = self._reconnect(st)
                    if new is None:
                        break
                    sock = new
                if cfg.message_interval:
                    self._stop.wait(cfg.message_interval)
                st.kinds = gen.counts
                st.next_seq = gen.next_seq
            st.kinds = gen.counts
            st.next_seq = gen.next_seq
            if self.cfg.end_marker:
                marker = gen.end_marker()
                try:
                    for _ in range(3 if self.udp else 1):  # UDP may lose it: repeats are harmless
                        sock.sendall(marker) if not self.udp else sock.send(marker)
                    with self._lock:
                        self.end_markers += 1
                except OSError:
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            errors.append(exc)
        finally:
            try:
                if isinstance(sock, ssl.SSLSocket):
                    sock.settimeout(2)  # don't wait long for the peer's close_notify
                    sock.unwrap()  # close_notify, so the receiver sees a clean end
            except (OSError, ValueError):
                pass
            sock.close()
            done.set()

    def stop(self, reason: str = "stopped") -> None:
        """Ask every connection to finish (safe from a signal handler or another thread)."""
        self.stopped_by = reason
        self._stop.set()

    def totals(self) -> tuple[int, int]:
        """(messages sent, bytes sent) so far, over all connections."""
        return sum(s.sent for s in self.stats), sum(s.bytes for s in self.stats)

    def run(self, tick: Callable[[FloodRunner], None] | None = None,
            tick_interval: float = 1.0) -> FloodResult:
        """Connect every connection (fails fast unless reconnect_on_error), send, return the summary."""
        socks: list[socket.socket] = []
        try:
            for _ in range(self.cfg.connections):
                socks.append(self._connect())
        except NetworkError:
            for s in socks:
                s.close()
            if not self.cfg.reconnect_on_error:
                raise
            socks = []
            for st in self.stats:
                s = self._reconnect(st)
                if s is None:
                    raise
                socks.append(s)
        self.start_ns = time.time_ns()
        t0 = time.monotonic()
        errors: list[BaseException] = []
        # Completion is signalled with events, not Thread.join: a join interrupted by Ctrl-C can
        # afterwards return while the thread still runs (a CPython quirk), losing the end markers.
        done = [threading.Event() for _ in socks]
        threads = [threading.Thread(target=self._worker, args=(i, s, errors, done[i]), daemon=True,
                                    name=f"flood-{i}") for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        try:
            next_tick = t0 + tick_interval
            while not all(e.is_set() for e in done):
                for e in done:
                    e.wait(timeout=max(0.0, min(0.1, next_tick - time.monotonic())))
                if time.monotonic() >= next_tick:
                    # (next_tick moves on without a tick too: a deadline left in the past would
                    # make the waits above return at once, a busy loop holding the GIL that the
                    # sender threads need: paced runs then fell behind after the first second)
                    if tick is not None:
                        tick(self)
                    next_tick += tick_interval
        except KeyboardInterrupt:
            self.stop("interrupt")
            deadline = time.monotonic() + 10
            for e in done:
                while not e.is_set() and time.monotonic() < deadline:
                    try:
                        e.wait(0.1)
                    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                        deadline = 0
        elapsed = time.monotonic() - t0
        if errors:
            raise errors[0]
        kinds = KindCounts()
        for st in self.stats:
            for k, v in st.kinds.as_dict().items():
                setattr(kinds, k, getattr(kinds, k) + v)
        return FloodResult(
            run_id=self.run_id, target=self.target, sender=self.cfg.sender, connections=self.cfg.connections,
            sent=sum(s.sent for s in self.stats), delivered=sum(s.delivered for s in self.stats),
            bytes=sum(s.bytes for s in self.stats), errors=sum(s.errors for s in self.stats),
            reconnects=sum(s.reconnects for s in self.stats), elapsed=round(elapsed, 6),
            kinds=kinds.as_dict(), expected_at_receiver=sum(s.next_seq for s in self.stats),
            rate_target=self.cfg.rate, end_markers=self.end_markers, stopped_by=self.stopped_by)


class RateMeter:
    """heka-flood's once-a-second line: cumulative count, rates over the last interval."""

    def __init__(self) -> None:
        self.last_sent = 0
        self.last_bytes = 0
        self.last_t = time.monotonic()

    def line(self, sent: int, nbytes: int) -> str | None:
        now = time.monotonic()
        dt = max(now - self.last_t, 1e-9)
        if sent == 0:
            return None  # nothing is printed until the first message
        msgs = (sent - self.last_sent) / dt
        mbit = (nbytes - self.last_bytes) * 8 / 1e6 / dt
        self.last_sent, self.last_bytes, self.last_t = sent, nbytes, now
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        return f"{stamp} Sent {sent} messages. {msgs:0.2f} msg/sec {mbit:0.2f} Mbit/sec"


def clean_shutdown_line(sent: int, delivered: int) -> str:
    """heka-flood's last line, double spaces included (Go Println between operands)."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    return f"{stamp} Clean shutdown:  {sent}  messages sent;  {delivered}  messages delivered."
