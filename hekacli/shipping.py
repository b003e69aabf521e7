"""Reliable shipping of framed Heka records to a remote endpoint (Heka's TcpOutput, made safer).

`ReliableSender` owns one connection (tcp://, tls:// with client certificates and CA pinning, or
udp://) and a bounded queue (on disk when `queue_dir` is given, else in memory):

- `send(framed)` appends the record to the queue and returns (on disk: written to the OS, so it
  survives our own crash); when the queue is full it blocks, or drops the oldest records and counts
  them (`on_full="drop-oldest"`).
- A background thread connects (exponential back-off with jitter and a cap), writes queued records
  to the socket, and *confirms* them. Heka's protocol has no acknowledgements, so "written to the
  socket" proves nothing: a record counts as delivered only once the peer's TCP stack has acked it
  (Linux SIOCOUTQ = 0) and the connection stayed up for `settle` seconds after it was written. When
  the connection breaks, everything not yet confirmed is sent again after reconnecting, so a receiver
  that dies and comes back gets every record at least once (duplicates are possible; `heka serve
  --verify` counts them). Only confirmed records leave the queue.
- With a disk queue, records not confirmed when the process stops stay in `queue_dir` and are sent
  first when a new `ReliableSender` opens the same directory.

The disk queue is a directory of framed segment files named by their first logical byte offset
(``00000000000000000000.log``) plus ``checkpoint.txt`` holding the confirmed offset, so `heka cat`
can read the segments.
"""

from __future__ import annotations

import bisect
import collections
import fcntl
import os
import random
import select
import socket
import ssl as ssllib
import struct
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError, FramingError, NetworkError, OutputError, UsageError

DEFAULT_QUEUE_MAX_BYTES = 256 * 1024 * 1024
SEGMENT_BYTES = 16 * 1024 * 1024
READ_CHUNK = 256 * 1024
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0x5411)


def record_length(head: bytes) -> int | None:
    """Total length of the framed record whose first bytes are `head`, or None if `head` is too short.

    Raises FramingError when `head` does not start a record."""
    if len(head) < 2:
        return None
    if head[0] != 0x1E:
        raise FramingError("queue corrupt: no record separator")
    hlen = head[1]
    if len(head) < hlen + 3:
        return None
    if head[hlen + 2] != 0x1F:
        raise FramingError("queue corrupt: no unit separator")
    # message_length is field 1 (varint) of the header; Heka writes it first.
    pos = 2
    end = 2 + hlen
    while pos < end:
        tag = head[pos]
        pos += 1
        if tag == 0x08:
            shift = value = 0
            while True:
                b = head[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    return hlen + 3 + value
        break
    raise FramingError("queue corrupt: header without message_length")


def tls_probe(sock: ssllib.SSLSocket, wait: float = 0.2) -> None:
    """Raise NetworkError when the server rejected the TLS handshake after the fact.

    With TLS 1.3 the client finishes its handshake before the server checks the client
    certificate; a rejection only shows up as an alert on the next read. Heka's protocol never
    reads, so look once, briefly, right after connecting."""
    sock.settimeout(wait)
    try:
        data = sock.recv(1)
    except (TimeoutError, ssllib.SSLWantReadError, BlockingIOError):
        return
    except (ssllib.SSLError, OSError) as exc:
        raise NetworkError(f"TLS handshake rejected by the server: {exc}") from None
    finally:
        sock.settimeout(None)
    if data == b"":
        raise NetworkError("the server closed the connection right after the TLS handshake")


# -- queues -------------------------------------------------------------------------------------
class MemoryQueue:
    """Records in memory, addressed by logical byte offsets."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._recs: list[bytes] = []
        self._first = 0  # index of the oldest record still queued
        self.head = 0  # confirmed offset (first byte still queued)
        self.tail = 0  # offset after the last queued byte

    def append(self, record: bytes) -> None:
        self._starts.append(self.tail)
        self._recs.append(record)
        self.tail += len(record)

    def read(self, pos: int, max_bytes: int) -> bytes:
        """Whole records from `pos` (a record boundary), about `max_bytes` of them (at least one)."""
        i = bisect.bisect_left(self._starts, pos, self._first)
        out: list[bytes] = []
        size = 0
        while i < len(self._recs):
            rec = self._recs[i]
            if out and size + len(rec) > max_bytes:
                break
            out.append(rec)
            size += len(rec)
            i += 1
        return b"".join(out)

    def commit(self, pos: int) -> None:
        i = bisect.bisect_right(self._starts, pos - 1, self._first)  # records starting before pos...
        while i > self._first and self._starts[i - 1] + len(self._recs[i - 1]) > pos:
            i -= 1  # ...and ending after it stay
        for j in range(self._first, i):
            self._recs[j] = b""
        self._first = i
        self.head = pos
        if self._first > 4096 and self._first * 2 > len(self._recs):  # compact now and then
            del self._starts[:self._first]
            del self._recs[:self._first]
            self._first = 0

    def drop_oldest(self) -> int:
        """Drop the oldest record; returns its length."""
        n = len(self._recs[self._first])
        self.commit(self._starts[self._first] + n)
        return n

    def close(self) -> None:
        pass


class DiskQueue:
    """Framed segment files + checkpoint.txt in a directory (see the module docstring)."""

    def __init__(self, directory: str | Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock_fh = open(self.dir / "lock", "a+b")  # noqa: SIM115 - held for the queue's life
        except OSError as exc:
            raise OutputError(f"cannot use queue directory: {exc.strerror}", file=str(self.dir)) from None
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError("queue directory is in use by another sender", file=str(self.dir)) from None
        self.segment_bytes = segment_bytes
        self.head = self._read_checkpoint()
        self.segments: list[int] = sorted(int(p.stem) for p in self.dir.glob("*.log") if p.stem.isdigit())
        self.tail = 0
        if self.segments:
            self._repair_last()
            last = self.segments[-1]
            self.tail = last + self._path(last).stat().st_size
            self.head = max(self.head, self.segments[0])
            if self.head > self.tail:
                self.head = self.tail
        else:
            self.tail = self.head
        self._writer: Any = None
        self._writer_start = -1
        self._readers: dict[int, Any] = {}

    def _path(self, start: int) -> Path:
        return self.dir / f"{start:020d}.log"

    def _read_checkpoint(self) -> int:
        try:
            text = (self.dir / "checkpoint.txt").read_text().split()
            return int(text[-1]) if text else 0
        except (OSError, ValueError):
            return 0

    def _repair_last(self) -> None:
        """Cut a partial record at the end of the last segment (we were killed mid-write)."""
        start = self.segments[-1]
        path = self._path(start)
        data = path.read_bytes()
        pos = 0
        try:
            while pos < len(data):
                n = record_length(data[pos:pos + 300])
                if n is None or pos + n > len(data):
                    break
                pos += n
        except FramingError:
            pass
        if pos < len(data):
            with open(path, "r+b") as fh:
                fh.truncate(pos)

    def _write_checkpoint(self) -> None:
        tmp = self.dir / "checkpoint.txt.tmp"
        tmp.write_text(f"{self.head}\n")
        os.replace(tmp, self.dir / "checkpoint.txt")

    def append(self, record: bytes) -> None:
        if self._writer is None:
            if not self.segments or self.tail - self.segments[-1] >= self.segment_bytes:
                self.segments.append(self.tail)
            self._writer_start = self.segments[-1]
            self._writer = open(self._path(self._writer_start), "ab")  # noqa: SIM115
        elif self.tail - self._writer_start >= self.segment_bytes:
            self._writer.close()
            self.segments.append(self.tail)
            self._writer_start = self.tail
            self._writer = open(self._path(self._writer_start), "ab")  # noqa: SIM115
        self._writer.write(record)
        self._writer.flush()  # in the OS: survives our own crash
        self.tail += len(record)

    def _segment_for(self, pos: int) -> int:
        seg = self.segments[0]
        for s in self.segments:
            if s <= pos:
                seg = s
            else:
                break
        return seg

    def read(self, pos: int, max_bytes: int) -> bytes:
        if pos >= self.tail:
            return b""
        seg = self._segment_for(pos)
        idx = self.segments.index(seg)
        seg_end = self.segments[idx + 1] if idx + 1 < len(self.segments) else self.tail
        fh = self._readers.get(seg)
        if fh is None:
            for s in list(self._readers):
                self._readers.pop(s).close()
            fh = self._readers[seg] = open(self._path(seg), "rb")  # noqa: SIM115
        fh.seek(pos - seg)
        data = fh.read(min(max_bytes, seg_end - pos))
        # cut to whole records (commits must land on record boundaries)
        end = 0
        while end < len(data):
            n = record_length(data[end:end + 300])
            if n is None or end + n > len(data):
                break
            end += n
        if end == 0 and data:  # one record bigger than max_bytes
            n = record_length(data[:300]) or len(data)
            fh.seek(pos - seg)
            return fh.read(n)
        return data[:end]

    def commit(self, pos: int) -> None:
        self.head = pos
        while len(self.segments) > 1 and self.segments[1] <= pos:
            old = self.segments.pop(0)
            fh = self._readers.pop(old, None)
            if fh is not None:
                fh.close()
            self._path(old).unlink(missing_ok=True)
        self._write_checkpoint()

    def drop_oldest(self) -> int:
        seg = self._segment_for(self.head)
        with open(self._path(seg), "rb") as fh:
            fh.seek(self.head - seg)
            n = record_length(fh.read(300)) or 0
        self.commit(self.head + n)
        return n

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for fh in self._readers.values():
            fh.close()
        self._readers.clear()
        if self.head >= self.tail:  # everything confirmed: leave an empty, tidy directory
            for s in self.segments:
                self._path(s).unlink(missing_ok=True)
            self.segments = []
        self._write_checkpoint()
        self._lock_fh.close()


# -- the sender ---------------------------------------------------------------------------------
class ReliableSender:
    """Ship framed records to `url` with reconnect, back-off and a bounded queue (see module doc)."""

    def __init__(self, url: str, *, ssl: ssllib.SSLContext | None = None, signer: Any = None,
                 queue_dir: str | Path | None = None, queue_max_bytes: int = DEFAULT_QUEUE_MAX_BYTES,
                 on_full: str = "block", backoff_initial: float = 0.1, backoff_max: float = 10.0,
                 settle: float = 2.0, connect_timeout: float = 10.0,
                 log: Callable[[str], None] | None = None) -> None:
        from .transport import parse_endpoint

        if on_full not in ("block", "drop-oldest"):
            raise ConfigError(f"on_full must be block or drop-oldest, not {on_full!r}")
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ConfigError("back-off: need 0 < initial <= max")
        self.endpoint = parse_endpoint(url)
        if self.endpoint.scheme == "tls" and ssl is None:
            from .transport import client_ssl_context

            ssl = client_ssl_context()
        if self.endpoint.scheme != "tls" and ssl is not None:
            raise UsageError(f"TLS options given but {url} is not tls://")
        self.ssl = ssl
        self.signer = signer
        self.udp = self.endpoint.scheme == "udp"
        self.queue: MemoryQueue | DiskQueue = DiskQueue(queue_dir) if queue_dir else MemoryQueue()
        self.queue_max_bytes = queue_max_bytes
        self.on_full = on_full
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.settle = settle
        self.connect_timeout = connect_timeout
        self.send_timeout = 30.0  # a receiver that stops reading this long is treated as gone
        self._conn_base = 0  # queue offset where the current connection started
        self._conn_written = 0  # bytes written on the current connection
        self.log = log or (lambda text: None)
        self._cond = threading.Condition()
        self._closing = False
        self._stopped = False
        self._read_pos = self.queue.head  # next byte to write to the socket
        self._inflight: collections.deque[tuple[int, float]] = collections.deque()  # (end offset, time)
        self._sock: socket.socket | None = None
        self.counters = {"queued": 0, "dropped": 0, "dropped_bytes": 0, "bytes_written": 0,
                         "bytes_confirmed": 0, "replayed_bytes": 0, "connects": 0, "disconnects": 0,
                         "connect_failures": 0, "udp_errors": 0}
        self.recovered_bytes = self.queue.tail - self.queue.head  # left over from a previous run
        self.last_error: str | None = None
        self._rng = random.Random()
        self._thread = threading.Thread(target=self._run, name="heka-shipper", daemon=True)
        self._thread.start()

    # -- producer side ----------------------------------------------------------------------
    def send(self, framed: bytes) -> None:
        """Queue one framed record (re-signed when a signer is set); returns once it is queued."""
        if self.signer is not None:
            framed = self._resign(framed)
        n = len(framed)
        if n > self.queue_max_bytes:
            raise OutputError(f"record of {n} bytes is larger than the whole queue ({self.queue_max_bytes})")
        with self._cond:
            if self._closing:
                raise OutputError("sender is closed")
            while self.queue.tail - self.queue.head + n > self.queue_max_bytes:
                if self.on_full == "drop-oldest":
                    dropped = self.queue.drop_oldest()
                    self.counters["dropped"] += 1
                    self.counters["dropped_bytes"] += dropped
                    if self._read_pos < self.queue.head:
                        self._read_pos = self.queue.head
                    while self._inflight and self._inflight[0][0] <= self.queue.head:
                        self._inflight.popleft()
                else:
                    self._cond.wait(0.5)
                    if self._stopped:
                        raise OutputError("sender stopped while the queue was full")
            try:
                self.queue.append(framed)
            except OSError as exc:
                raise OutputError(f"cannot write to the queue: {exc.strerror or exc}") from None
            self.counters["queued"] += 1
            self._cond.notify_all()

    def _resign(self, framed: bytes) -> bytes:
        from .framing import Splitter, frame

        limit = max(len(framed), 64 * 1024)
        splitter = Splitter(authenticate=False, max_message_size=limit)
        recs = splitter.feed(framed)
        if not recs or sum(splitter.dropped.values()) or splitter.pending:
            raise FramingError("send: not one or more whole framed Heka records")
        return b"".join(frame(r.message_bytes, self.signer, max_message_size=limit) for r in recs)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is confirmed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.queue.head < self.queue.tail:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.1 if remaining is None else min(0.1, remaining))
            return True

    def close(self, timeout: float = 5.0) -> bool:
        """Flush for up to `timeout` seconds, then stop. Returns True when nothing is left unconfirmed
        (with a disk queue, leftovers stay in queue_dir for the next run)."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=max(1.0, self.connect_timeout))
        with self._cond:
            self.queue.close()
        return done

    def stats(self) -> dict[str, Any]:
        """Counters: queued, dropped, bytes written/confirmed/replayed, connects, queue size..."""
        with self._cond:
            out: dict[str, Any] = dict(self.counters)
            out["queue_bytes"] = self.queue.tail - self.queue.head
            out["connected"] = self._sock is not None
            out["recovered_bytes"] = self.recovered_bytes
            out["last_error"] = self.last_error
            return out

    # -- the shipping thread ----------------------------------------------------------------
    def _connect(self) -> socket.socket:
        ep = self.endpoint
        if self.udp:
            sock = socket.socket(socket.AF_INET6 if ":" in ep.host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((ep.host, ep.port))
            return sock
        sock = socket.create_connection((ep.host, ep.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl is not None:
            name = getattr(self.ssl, "hekacli_server_hostname", None) or ep.host
            sock = self.ssl.wrap_socket(sock, server_hostname=name)
            tls_probe(sock)
        sock.settimeout(self.send_timeout)
        return sock

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_initial * (2 ** min(attempt, 30)))
        return self._rng.uniform(cap / 2, cap)  # "equal jitter": never less than half the step

    def _peer_state(self, sock: socket.socket) -> str:
        """"alive", "eof" (the peer closed) or "reset" (a Heka receiver never sends us data, so
        readability means the connection ended)."""
        try:
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return "alive"
            if isinstance(sock, ssllib.SSLSocket):
                # Readable may be a TLS 1.3 session ticket, not EOF: look without blocking.
                sock.settimeout(0.0)
                try:
                    data = sock.recv(1)
                finally:
                    sock.settimeout(self.send_timeout)
            else:
                data = sock.recv(1, socket.MSG_PEEK)
            return "eof" if data == b"" else "alive"
        except (ssllib.SSLWantReadError, ssllib.SSLWantWriteError, BlockingIOError):
            return "alive"
        except ssllib.SSLZeroReturnError:
            return "eof"
        except (OSError, ValueError):
            return "reset"

    @staticmethod
    def _unacked(sock: socket.socket) -> int:
        try:
            buf = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
            return struct.unpack("i", buf)[0]
        except OSError:
            return 0

    def _drop_connection(self, sock: socket.socket, why: str) -> None:
        self.last_error = why
        self.log(f"connection to {self.endpoint} lost: {why}")
        try:
            sock.close()
        except OSError:
            pass
        with self._cond:
            self._sock = None
            self.counters["disconnects"] += 1
            # everything not confirmed goes again
            replay = self._read_pos - self.queue.head
            self.counters["replayed_bytes"] += replay
            self._read_pos = self.queue.head
            self._inflight.clear()

    def _confirm(self, sock: socket.socket | None, now: float, force_udp: bool = False) -> None:
        """Move the queue's head past records the peer has acked and that have settled."""
        with self._cond:
            if not self._inflight:
                return
            if force_udp:
                end = self._inflight[-1][0]
                self._inflight.clear()
            else:
                if sock is None:
                    return
                unacked = self._unacked(sock)
                if isinstance(sock, ssllib.SSLSocket):
                    # TLS adds its own bytes to the socket queue: only "all acked" maps back.
                    acked = self._read_pos if unacked == 0 else -1
                else:
                    acked = self._conn_base + self._conn_written - unacked
                end = -1
                while self._inflight and self._inflight[0][0] <= acked \
                        and now - self._inflight[0][1] >= self.settle:
                    end = self._inflight.popleft()[0]
                if end < 0:
                    return
            self.counters["bytes_confirmed"] += end - self.queue.head
            self.queue.commit(end)
            self._cond.notify_all()

    def _run(self) -> None:
        attempt = 0
        sock: socket.socket | None = None
        while True:
            with self._cond:
                if self._stopped:
                    break
            if sock is None:
                try:
                    sock = self._connect()
                except (OSError, ssllib.SSLError, NetworkError) as exc:
                    self.last_error = str(exc)
                    self.counters["connect_failures"] += 1
                    if attempt == 0:
                        self.log(f"cannot connect to {self.endpoint}: {exc}; retrying with back-off")
                    delay = self._backoff(attempt)
                    attempt += 1
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopped, timeout=delay)
                    continue
                attempt = 0
                with self._cond:
                    self._sock = sock
                    self.counters["connects"] += 1
                    self._conn_base = self._read_pos
                    self._conn_written = 0
                self.log(f"connected to {self.endpoint}")
            with self._cond:
                pending = self._read_pos < self.queue.tail
                data = self.queue.read(self._read_pos, READ_CHUNK) if pending else b""
                if not data:
                    self._cond.wait(0.05 if self._inflight else 0.2)
            now = time.monotonic()
            state = "alive" if self.udp else self._peer_state(sock)
            if state != "alive":
                # What settled before the close counts; the rest goes again. A clean close is no proof:
                # a receiver killed after reading (but before processing) closes just the same.
                self._confirm(sock, time.monotonic())
                self._drop_connection(sock, "peer closed the connection" if state == "eof"
                                      else "connection reset by peer")
                sock = None
                continue
            if data:
                try:
                    if self.udp:
                        self._send_datagrams(sock, data)
                    else:
                        sock.sendall(data)
                except (OSError, ssllib.SSLError) as exc:
                    self._drop_connection(sock, str(exc))
                    sock = None
                    continue
                with self._cond:
                    self._read_pos += len(data)
                    self._conn_written += len(data)
                    self.counters["bytes_written"] += len(data)
                    self._inflight.append((self._read_pos, now))
            self._confirm(sock, time.monotonic(), force_udp=self.udp)
        if sock is not None:
            try:
                if isinstance(sock, ssllib.SSLSocket):
                    sock.settimeout(2)  # don't wait long for the peer's close_notify
                    sock.unwrap()
            except (OSError, ValueError, ssllib.SSLError):
                pass
            sock.close()
            with self._cond:
                self._sock = None

    def _send_datagrams(self, sock: socket.socket, data: bytes) -> None:
        """One datagram per record. UDP cannot be retried meaningfully: failures are counted."""
        pos = 0
        while pos < len(data):
            n = record_length(data[pos:pos + 300]) or (len(data) - pos)
            try:
                sock.send(data[pos:pos + n])
            except OSError as exc:  # nobody listening (ICMP), too big for a datagram...
                with self._cond:
                    self.counters["udp_errors"] += 1
                    self.last_error = str(exc)
            pos += n


def sender_from_options(url: str, *, ca: str | None = None, cert: str | None = None,
                        key: str | None = None, server_name: str | None = None, insecure: bool = False,
                        **kwargs: Any) -> ReliableSender:
    """A ReliableSender with a TLS context built from file options (for commands)."""
    from .transport import client_ssl_context, parse_endpoint

    ssl = None
    if parse_endpoint(url).scheme == "tls":
        ssl = client_ssl_context(ca=ca, cert=cert, key=key, server_hostname=server_name, insecure=insecure)
    elif any((ca, cert, key, server_name, insecure)):
        raise UsageError(f"TLS options need a tls:// URL, not {url}")
    return ReliableSender(url, ssl=ssl, **kwargs)
