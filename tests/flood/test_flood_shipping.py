"""ReliableSender (hekacli.shipping): reconnect, the disk queue, full-queue policies, TLS + signing,
against a real `heka serve` (in-process) on 127.0.0.1 that goes away and comes back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conftest import free_port

from hekacli.flood.generator import FloodGenerator, build_templates
from hekacli.framing import Signer, read_stream
from hekacli.serve.daemon import ServeDaemon
from hekacli.shipping import ReliableSender
from hekacli.transport import client_ssl_context


def numbered(n: int, run_id: str = "ship") -> list[bytes]:
    """n framed messages carrying flood_seq 0..n-1."""
    templates, _ = build_templates(variable=False, static_size=40, ascii_only=True)
    gen = FloodGenerator(templates, None, run_id=run_id)
    return [gen.next(time.time_ns())[0] for _ in range(n)]


def receiver(port: int, out: Path, **extra) -> ServeDaemon:
    return ServeDaemon({"listeners": [f"tcp://127.0.0.1:{port}"],
                        "output": {"path": str(out), "format": "heka"}, **extra}, log=lambda text: None)


def seqs(*files: Path) -> list[int]:
    out = []
    for f in files:
        if f.exists():
            with open(f, "rb") as fh:
                out += [r.message().get_field("flood_seq") for r in read_stream(fh)]
    return out


def test_receiver_stopped_and_restarted_mid_stream_loses_nothing(tmp_path):
    port = free_port()
    records = numbered(3000)
    sender = ReliableSender(f"tcp://127.0.0.1:{port}", queue_dir=tmp_path / "q", settle=2.0,
                            backoff_initial=0.05, backoff_max=0.4)
    first, second = tmp_path / "one.heka", tmp_path / "two.heka"

    def stream(lo: int, hi: int) -> None:
        # a steady stream (the receiver runs on a thread of this process: leave it the GIL now and then)
        for i in range(lo, hi, 100):
            for rec in records[i:min(i + 100, hi)]:
                sender.send(rec)
            time.sleep(0.01)

    try:
        with receiver(port, first).running():
            stream(0, 1500)  # the last of these are in flight when the receiver goes
        stream(1500, 2200)  # receiver down: these wait in the disk queue
        time.sleep(0.3)
        with receiver(port, second).running():
            stream(2200, 3000)
            assert sender.flush(timeout=60)
            stats = sender.stats()
    finally:
        sender.close(timeout=1)
    got = seqs(first, second)
    assert set(got) == set(range(3000))  # every record at least once
    assert stats["connects"] >= 2 and stats["queue_bytes"] == 0 and stats["dropped"] == 0


def test_disk_queue_survives_the_sender_and_is_sent_first(tmp_path):
    port = free_port()
    records = numbered(150)
    q = tmp_path / "q"
    sender = ReliableSender(f"tcp://127.0.0.1:{port}", queue_dir=q, backoff_initial=0.05, backoff_max=0.2)
    for rec in records[:100]:
        sender.send(rec)
    assert sender.close(timeout=0.3) is False  # nobody listening: kept on disk
    assert sum(p.stat().st_size for p in q.glob("*.log")) == sum(map(len, records[:100]))
    out = tmp_path / "out.heka"
    with receiver(port, out).running():
        again = ReliableSender(f"tcp://127.0.0.1:{port}", queue_dir=q, settle=0.2, backoff_initial=0.05)
        try:
            assert again.stats()["recovered_bytes"] == sum(map(len, records[:100]))
            for rec in records[100:]:
                again.send(rec)
            assert again.flush(timeout=30)
        finally:
            again.close(timeout=1)
    assert seqs(out) == list(range(150))  # the old queue first, then the new records, in order
    assert not list(q.glob("*.log"))  # everything confirmed: the queue is empty


def test_drop_oldest_counts_what_it_drops(tmp_path):
    port = free_port()
    records = numbered(30)
    size = len(records[0])
    assert all(len(r) == size for r in records[:30])
    sender = ReliableSender(f"tcp://127.0.0.1:{port}", queue_max_bytes=10 * size, on_full="drop-oldest",
                            settle=0.2, backoff_initial=0.05, backoff_max=0.2)
    out = tmp_path / "out.heka"
    try:
        for rec in records:
            sender.send(rec)
        assert sender.stats()["dropped"] == 20
        with receiver(port, out).running():
            assert sender.flush(timeout=30)
    finally:
        sender.close(timeout=1)
    assert seqs(out) == list(range(20, 30))


def test_block_waits_for_the_receiver(tmp_path):
    port = free_port()
    records = numbered(40)
    sender = ReliableSender(f"tcp://127.0.0.1:{port}", queue_max_bytes=5 * len(records[0]), on_full="block",
                            settle=0.1, backoff_initial=0.05, backoff_max=0.2)
    out = tmp_path / "out.heka"
    done = threading.Event()

    def produce():
        for rec in records:
            sender.send(rec)
        done.set()

    t = threading.Thread(target=produce, daemon=True)
    try:
        t.start()
        assert not done.wait(0.5)  # the queue is full and nobody listens: send() blocks
        assert sender.stats()["queue_bytes"] <= 5 * len(records[0])
        with receiver(port, out).running():
            assert done.wait(30)
            assert sender.flush(timeout=30)
    finally:
        sender.close(timeout=1)
        t.join(5)
    assert seqs(out) == list(range(40))
    assert sender.stats()["dropped"] == 0


def test_tls_client_cert_and_signing(tmp_path, pki):
    port = free_port()
    listener = {"url": f"tls://127.0.0.1:{port}", "cert": str(pki.server_cert), "key": str(pki.server_key),
                "client_ca": str(pki.ca_cert), "require_client_cert": True}
    out = tmp_path / "out.heka"
    daemon = ServeDaemon({"listeners": [listener], "signers": {"ship_3": "s3cret"},
                          "output": {"path": str(out), "format": "heka", "message_signer": "ship"}},
                         log=lambda text: None)
    records = numbered(200)
    with daemon.running() as d:
        ctx = client_ssl_context(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key)
        sender = ReliableSender(f"tls://127.0.0.1:{port}", ssl=ctx, settle=0.2,
                                signer=Signer("ship", 3, "sha1", b"s3cret"))
        try:
            for rec in records:
                sender.send(rec)
            assert sender.flush(timeout=30)
        finally:
            sender.close(timeout=1)
        summary = d.summary()
    assert summary["accepted"] == 200 and summary["dropped_total"] == 0
    assert seqs(out) == list(range(200))  # the output takes only messages verified as signed by "ship"


def test_bad_options_are_config_errors():
    import pytest

    from hekacli.errors import ConfigError, UsageError

    with pytest.raises(ConfigError):
        ReliableSender("tcp://127.0.0.1:1", on_full="never")
    with pytest.raises(ConfigError):
        ReliableSender("tcp://127.0.0.1:1", backoff_initial=5, backoff_max=1)
    with pytest.raises(UsageError):
        ReliableSender("udp2://127.0.0.1:1")


def test_disk_queue_segments_roll_commit_and_repair(tmp_path):
    from hekacli.shipping import DiskQueue

    records = numbered(200)
    q = DiskQueue(tmp_path / "q", segment_bytes=4096)
    for rec in records:
        q.append(rec)
    assert len(list((tmp_path / "q").glob("*.log"))) > 3  # rolled into several segments
    pos, got = 0, b""
    while pos < q.tail:
        data = q.read(pos, 1000)  # whole records only, never across a segment end
        got += data
        pos += len(data)
        if pos < q.tail // 2:
            q.commit(pos)
    assert got == b"".join(records)
    confirmed = q.head
    segments_left = len(list((tmp_path / "q").glob("*.log")))
    q._lock_fh.close()  # "crash": no close(); then a half-written record at the end
    last = max((tmp_path / "q").glob("*.log"))
    with open(last, "ab") as fh:
        fh.write(records[0][:10])
    again = DiskQueue(tmp_path / "q", segment_bytes=4096)
    assert again.head == confirmed and again.tail == sum(map(len, records))  # the partial record is cut
    assert len(list((tmp_path / "q").glob("*.log"))) == segments_left
    data = again.read(confirmed, 1 << 20)  # picks up at the checkpoint
    assert data and b"".join(records)[confirmed:].startswith(data)
    again.close()
