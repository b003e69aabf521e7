"""`FloodRunner.run` without a progress callback: the calling thread waits without spinning while the
sender threads keep a paced schedule. (It used to spin once the first second had passed, holding the
GIL the senders need: paced runs of more than a second fell behind their rate.)"""

from __future__ import annotations

import socket
import threading
import time

from conftest import free_port

from hekacli.flood.config import FloodConfig
from hekacli.flood.sender import FloodRunner


def _sink(port: int) -> threading.Thread:
    """A receiver on 127.0.0.1 that reads and drops everything, for one connection."""
    server = socket.create_server(("127.0.0.1", port))

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                while conn.recv(1 << 20):
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_caller_sleeps_while_a_paced_run_goes_on() -> None:
    port = free_port()
    sink = _sink(port)
    cfg = FloodConfig(ip_address=f"127.0.0.1:{port}", num_messages=4000, static_message_size=100,
                      rate=2000).validate()
    before = time.thread_time()
    result = FloodRunner(cfg).run()  # 2 s at 2000 msg/s, no tick callback
    used = time.thread_time() - before
    sink.join(10)
    assert result.sent == 4000 and result.errors == 0
    assert result.elapsed >= 1.9  # the schedule was kept, not outrun
    assert used < 0.3, f"the calling thread used {used:.2f} CPU-s while it waited {result.elapsed:.1f} s"
