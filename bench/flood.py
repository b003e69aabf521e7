#!/usr/bin/env python3
"""Benchmark `heka flood` and `heka serve --verify` on loopback, in one run.

    python bench/flood.py            # from the repo root; --quick for a smaller run

Measures:
1. flood send rate into a sink that only reads and discards (small fixed messages; variable sizes),
   against two peers run here: a heka-flood-style sender (one prebuilt message's bytes sent over and
   over, as heka-flood did: no per-message work at all, so an upper bound) and a naive per-message
   Python sender (build Message, encode, frame, send each);
2. serve's ingest rate with verification on: `heka serve --verify --count N` (a subprocess) fed by
   flood, N / (time from the first send until serve has accepted all N and exited), the loss the
   verifier reports, and N / (CPU seconds serve used meanwhile): the rate it would reach with a
   core to itself (the machine is shared, so this one varies less with load). Flood repeats one
   message with a new sequence number, which serve recognises without decoding it; so the same is
   measured with N *distinct* small messages (ordinary traffic: every one checked) as well;
3. end-to-end latency p50/p99 at 50% of that ingest rate (open-model `--rate`), from the verifier.
Published peer: hekad took ~200k msg/s from heka-flood (2013, Go, unknown machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hekacli.flood.config import FloodConfig  # noqa: E402
from hekacli.flood.sender import FloodRunner  # noqa: E402
from hekacli.framing import frame  # noqa: E402
from hekacli.message import Message, encode_message  # noqa: E402

HEKAD_2013 = 200_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """A TCP server that reads and discards everything (measures the sender alone)."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.bytes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        buf = bytearray(1 << 20)
        with conn:
            while n := conn.recv_into(buf):
                self.bytes += n


def flood_to_sink(sink: Sink, n: int, variable: bool) -> tuple[float, float]:
    cfg = FloodConfig(ip_address=f"127.0.0.1:{sink.port}", num_messages=n, static_message_size=100,
                      variable_size_messages=variable, end_marker=False).validate()
    r = FloodRunner(cfg).run()
    return r.sent / r.elapsed, r.bytes * 8 / 1e6 / r.elapsed


def heka_flood_style(sink: Sink, n: int) -> float:
    """heka-flood's loop: the same prebuilt framed message, sent over and over (batched like ours)."""
    data = frame(Message.new(type="hekabench", payload="hekabench: x - " + "y" * 100, severity=6))
    batch = data * 256
    with socket.create_connection(("127.0.0.1", sink.port)) as s:
        t0 = time.perf_counter()
        for _ in range(n // 256):
            s.sendall(batch)
        return (n // 256) * 256 / (time.perf_counter() - t0)


def naive_python(sink: Sink, n: int) -> float:
    """What a quick script does: a Message per send with the same four verification fields."""
    with socket.create_connection(("127.0.0.1", sink.port)) as s:
        t0 = time.perf_counter()
        for i in range(n):
            msg = Message.new(type="hekabench", payload="hekabench: x - " + "y" * 100, severity=6)
            msg.add_field("flood_run", "naive")
            msg.add_field("flood_seq", i)
            msg.add_field("flood_sent", time.time_ns(), "ns")
            s.sendall(frame(encode_message(msg)))
        return n / (time.perf_counter() - t0)


def serve_run(n: int, rate: float = 0.0, connections: int = 1, variable: bool = False) -> dict:
    """flood N messages into `heka serve --verify --count N+conns`; returns rates and the verifier's view.

    `variable`: heka-flood's set of 64 messages of different sizes, sent in turn (consecutive messages
    differ, so serve decodes every one: the cost of ordinary traffic); otherwise one 100-byte message
    repeated with a new sequence number (serve recognises the repeats without decoding them)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "hekacli.commands", "serve", "-l", f"tcp://127.0.0.1:{port}", "--verify",
               "--count", str(n + connections), "-o", "none", "--stats-file", str(stats)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            cfg = FloodConfig(ip_address=f"127.0.0.1:{port}", num_messages=n, static_message_size=100,
                              rate=rate, connections=connections, variable_size_messages=variable).validate()
            cpu0 = _cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            result = FloodRunner(cfg).run()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc.wait(600)
            elapsed = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # now including serve's whole run
            if cpu0 is not None:
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) - cpu0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        summary = json.loads(stats.read_text())
    verify = next(p for p in summary["plugins"] if p["name"] == "verify")["stats"]["runs"][0]
    return {"sent_per_s": result.sent / result.elapsed, "ingest_per_s": n / elapsed, "lost": verify["lost"],
            "received": verify["received"], "latency_ns": verify["latency_ns"],
            "per_cpu_s": n / cpu if cpu else None}


def serve_distinct(n: int) -> dict:
    """`heka serve --verify --count N` fed N *distinct* small messages (each its own uuid, timestamp and
    payload, like ordinary traffic; prebuilt, so the sender costs nothing): none is a repeat, so every
    one is checked in full (and decoded when the verifier finds flood fields in it)."""
    def one(i: int) -> bytes:
        msg = Message.new(type="nginx.access", payload=f"GET /p/{i} HTTP/1.1 200 {i * 7 % 5000}",
                          severity=6, hostname="web-1", pid=4242)
        msg.add_field("status", 200 + i % 5)
        msg.add_field("request_time", i / 1e4, "s")
        return frame(msg)

    body = b"".join(one(i) for i in range(n))
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "hekacli.commands", "serve", "-l", f"tcp://127.0.0.1:{port}", "--verify",
               "--count", str(n), "-o", "none", "--stats-file", str(stats)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    conn = socket.create_connection(("127.0.0.1", port), timeout=0.2)
                    conn.settimeout(None)  # the short timeout was for connecting only
                    break
                except OSError:
                    time.sleep(0.05)
            t0 = time.perf_counter()
            with conn:
                conn.sendall(body)
                proc.wait(600)
            elapsed = time.perf_counter() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        summary = json.loads(stats.read_text())
    return {"ingest_per_s": n / elapsed, "bytes": len(body) / n, "accepted": summary.get("accepted")}


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a process used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts")
    args = ap.parse_args()
    k = 0.2 if args.quick else 1.0
    # serve: 300k messages, so its fixed costs (stop, interpreter exit: ~0.05 s) weigh little.
    n_small, n_var, n_serve = int(300_000 * k), int(3_000 * k), int(300_000 * k)
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
          f"load average {load:.1f}")
    sink = Sink()
    ours, _ = flood_to_sink(sink, n_small, variable=False)
    const = heka_flood_style(sink, n_small)
    naive = naive_python(sink, n_small // 10)
    var_rate, var_mbit = flood_to_sink(sink, n_var, variable=True)
    print(f"flood send, fixed 100-byte payload, {n_small} msgs: {ours:,.0f} msg/s "
          f"(heka-flood-style constant bytes {const:,.0f} msg/s, ratio {ours / const:.2f}; "
          f"naive per-message Python {naive:,.0f} msg/s, ratio {ours / naive:.1f}x)")
    print(f"flood send, variable sizes (heka-flood's 64-message set), {n_var} msgs: {var_rate:,.0f} msg/s, "
          f"{var_mbit:,.0f} Mbit/s")
    ingest = serve_run(n_serve)
    cpu = f", {ingest['per_cpu_s']:,.0f} msg per serve CPU-second" if ingest["per_cpu_s"] else ""
    print(f"serve --verify ingest, {n_serve} msgs over TCP: {ingest['ingest_per_s']:,.0f} msg/s "
          f"(flood sent at {ingest['sent_per_s']:,.0f} msg/s{cpu}), lost {ingest['lost']}; "
          f"ratio to hekad's published 200k: {ingest['ingest_per_s'] / HEKAD_2013:.2f}")
    n_distinct = int(100_000 * k)
    distinct = serve_distinct(n_distinct)
    print(f"serve --verify ingest, {n_distinct} distinct small messages ({distinct['bytes']:.0f} bytes "
          f"framed, none a repeat: each checked, decoded only if a plugin needs it): "
          f"{distinct['ingest_per_s']:,.0f} msg/s, "
          f"accepted {distinct['accepted']}")
    half = ingest["ingest_per_s"] / 2
    # At most 100k paced messages, to keep the bench short. (Until session 4, FloodRunner.run without
    # a tick callback spun after its first second and longer paced runs fell behind: no longer.)
    n_lat = int(max(2000, min(half * 5, 100_000 * k)))
    lat = serve_run(n_lat, rate=half)
    ln = lat["latency_ns"]
    print(f"end-to-end latency at 50% of that ({half:,.0f} msg/s, {n_lat} msgs): "
          f"p50 {ln['p50'] / 1e6:.2f} ms, "
          f"p99 {ln['p99'] / 1e6:.2f} ms, p99.9 {ln['p99.9'] / 1e6:.2f} ms, max {ln['max'] / 1e6:.2f} ms, "
          f"lost {lat['lost']}")


if __name__ == "__main__":
    main()
