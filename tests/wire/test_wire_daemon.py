"""`ServeDaemon` in-process: router contract, plugin failures, loop protection, many clients, config."""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import Any

import pytest

from hekacli.errors import ConfigError, NetworkError
from hekacli.framing import frame
from hekacli.message import Message
from hekacli.serve import plugin as plugin_mod
from hekacli.serve.config import ServeConfig
from hekacli.serve.daemon import ServeDaemon
from hekacli.serve.plugin import Delivery, ServeContext
from hekacli.transport import send_framed


class Recorder:
    """A plugin that keeps what it gets; optionally fails or re-injects."""

    def __init__(
        self,
        name: str,
        *,
        fail_on: str | None = None,
        reinject: bool = False,
        matcher: str | None = None,
        signer: str | None = None,
    ) -> None:
        self.name = name
        self.message_matcher = matcher
        self.message_signer = signer
        self.fail_on = fail_on
        self.reinject = reinject
        self.got: list[Delivery] = []
        self.ctx: ServeContext | None = None
        self.stopped = False

    async def start(self, ctx: ServeContext) -> None:
        self.ctx = ctx

    def process(self, delivery: Delivery) -> None:
        self.got.append(delivery)
        if self.fail_on is not None and delivery.message.type == self.fail_on:
            raise RuntimeError("boom")
        if self.reinject and self.ctx is not None:
            self.ctx.inject(Message.new(type="again"), origin=self.name, loops=delivery.loops)

    async def stop(self) -> None:
        self.stopped = True

    def stats(self) -> dict[str, Any]:
        return {"processed": len(self.got)}


def _wait(cond, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _add(d: ServeDaemon, plugin: Recorder) -> None:
    """Start a plugin on the daemon's loop and route to it, as the SandboxManager does."""
    import asyncio

    async def add() -> None:
        await plugin.start(d.router)
        d.router.add_plugin(plugin)

    assert d._loop is not None
    asyncio.run_coroutine_threadsafe(add(), d._loop).result(30)


def _daemon(**cfg: Any) -> ServeDaemon:
    base: dict[str, Any] = {"listeners": ["tcp://127.0.0.1:0"], "output": "none"}
    base.update(cfg)
    return ServeDaemon(base, log=lambda text: None)


def test_plugin_errors_are_counted_and_do_not_stop_the_daemon() -> None:
    d = _daemon()
    bad = Recorder("bad", fail_on="explode")
    good = Recorder("good")
    with d.running():
        _add(d, bad)
        _add(d, good)
        assert [p.name for p in d.plugins()] == ["bad", "good"]  # output "none" is not a plugin
        send_framed(d.urls[0], b"".join(frame(Message.new(type=t)) for t in ("a", "explode", "b", "explode")))
        _wait(lambda: len(good.got) == 4)
    s = d.summary()
    assert s["accepted"] == 4 and s["plugin_errors"] == 2
    assert {p["name"]: p["errors"] for p in s["plugins"]} == {"bad": 2, "good": 0}
    assert bad.stopped and good.stopped  # the daemon stops every plugin still routed


def test_inject_is_loop_protected() -> None:
    d = _daemon(max_message_loops=3)
    looper = Recorder("looper", reinject=True)
    with d.running():
        _add(d, looper)
        send_framed(d.urls[0], frame(Message.new(type="seed")))
        _wait(lambda: d.router.stats.dropped["loop"] == 1)
    # seed (loops 0) -> again (1) -> again (2) -> again (3) -> 4th inject dropped
    assert [x.loops for x in looper.got] == [0, 1, 2, 3]
    assert d.summary()["router"] == {"routed": 4, "injected": 3, "dropped": {"loop": 1}}


def test_signer_and_matcher_routing() -> None:
    pytest.importorskip("hekacli.matcher")
    d = _daemon(signers={"ops_0": "k"})
    only_ops = Recorder("ops", signer="ops")
    only_b = Recorder("typeb", matcher="Type == 'b'")
    from hekacli.framing import Signer

    with d.running():
        _add(d, only_ops)
        _add(d, only_b)
        send_framed(
            d.urls[0],
            frame(Message.new(type="a"), Signer("ops", 0, "md5", b"k")) + frame(Message.new(type="b")),
        )
        _wait(lambda: d.accepted == 2)
    assert [x.message.type for x in only_ops.got] == ["a"]
    assert only_ops.got[0].signer == "ops"
    assert [x.message.type for x in only_b.got] == ["b"]


def test_many_clients_and_a_stalled_one_do_not_block_each_other() -> None:
    out = io.BytesIO()
    d = ServeDaemon(
        {"listeners": ["tcp://127.0.0.1:0"], "output": {"path": "-", "format": "jsonl"}},
        log=lambda t: None,
        stdout=out,
    )
    clients, per_client = 40, 25
    with d.running():
        host, port = d.urls[0].removeprefix("tcp://").rsplit(":", 1)
        # A client that sends half a record and then just sits there.
        stalled = socket.create_connection((host, int(port)))
        rec = frame(Message.new(type="stalled"))
        stalled.sendall(rec[: len(rec) // 2])
        # And one that connects and never sends anything.
        idle = socket.create_connection((host, int(port)))
        errors: list[BaseException] = []

        def client(i: int) -> None:
            try:
                data = b"".join(
                    frame(Message.new(type="c", pid=i, payload=str(j))) for j in range(per_client)
                )
                send_framed(d.urls[0], data)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        _wait(lambda: d.accepted == clients * per_client)
        stalled.sendall(rec[len(rec) // 2 :])
        _wait(lambda: d.accepted == clients * per_client + 1)
        stalled.close()
        idle.close()
    assert out.getvalue().count(b"\n") == clients * per_client + 1
    st = d.summary()["listeners"][d.urls[0]]
    assert st["connections"] == clients + 2 and st["dropped"] == {}


def test_count_stops_the_daemon() -> None:
    d = ServeDaemon({"listeners": ["tcp://127.0.0.1:0"], "output": "none"}, log=lambda t: None)
    d.config.count = 3
    with d.running():
        send_framed(d.urls[0], b"".join(frame(Message.new(type="x")) for _ in range(5)))
        assert d.wait_stopped(30)
    s = d.summary()
    assert s["accepted"] == 3 and s["stop_reason"] == "--count 3 reached"


def test_plugin_section_with_missing_module_is_a_config_error_only_when_used(monkeypatch) -> None:
    monkeypatch.setitem(plugin_mod.PLUGIN_FACTORIES, "bogus", "hekacli.no_such_module:build_serve_plugins")
    # Not used: fine.
    with _daemon().running():
        pass
    with pytest.raises(ConfigError) as exc:
        with _daemon(bogus={"x": 1}).running():
            pass
    assert "bogus" in str(exc.value) and "not available" in str(exc.value)


def test_listen_failure_is_a_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(NetworkError):
            with _daemon(listeners=[f"tcp://127.0.0.1:{port}"]).running():
                pass


def test_config_errors_name_file_and_key(tmp_path) -> None:
    p = tmp_path / "serve.yaml"
    p.write_text("listeners: [tcp://127.0.0.1:0]\nlisteners_typo: 1\n")
    with pytest.raises(ConfigError) as exc:
        ServeConfig.from_yaml(p)
    assert str(p) in str(exc.value) and "listeners_typo" in str(exc.value)
    p.write_text("listeners:\n  - url: tls://127.0.0.1:0\n    certfile: x\n")
    with pytest.raises(ConfigError) as exc:
        ServeConfig.from_yaml(p)
    assert "listeners[0].certfile" in str(exc.value)
    p.write_text("listeners: [ftp://x:1]\n")
    with pytest.raises(ConfigError) as exc:
        ServeConfig.from_yaml(p)
    assert "listeners[0].url" in str(exc.value)
    p.write_text("listeners: [tcp://127.0.0.1:0\n")
    with pytest.raises(ConfigError) as exc:
        ServeConfig.from_yaml(p)
    assert exc.value.line is not None


def test_yaml_config_with_tls_and_signers(tmp_path, pki) -> None:
    p = tmp_path / "serve.yaml"
    p.write_text(
        "listeners:\n"
        f"  - url: tls://127.0.0.1:0\n    cert: {pki.server_cert}\n    key: {pki.server_key}\n"
        "signers:\n  - {name: ops, version: 2, hmac_key: s3cret}\n"
        "output: {path: none}\nmax_message_size: 2000\n"
    )
    cfg = ServeConfig.from_yaml(p)
    assert cfg.signers == {"ops_2": b"s3cret"} and cfg.max_message_size == 2000
    from hekacli.transport import client_ssl_context

    d = ServeDaemon(cfg, log=lambda t: None)
    with d.running():
        ctx = client_ssl_context(ca=pki.ca_cert)
        from hekacli.framing import Signer

        send_framed(
            d.urls[0],
            frame(Message.new(type="s"), Signer("ops", 2, "md5", b"s3cret"))
            + frame(Message.new(payload="x" * 3000)),
            ssl=ctx,
        )
        _wait(lambda: d.summary()["received"] >= 1 and d.accepted == 1)
        time.sleep(0.1)
    s = d.summary()
    assert s["accepted"] == 1
    assert s["dropped"].get("too_big") == 1


def test_a_plugin_check_that_failed_is_reported() -> None:
    class Checker(Recorder):
        def failed(self) -> bool:
            return not any(d.message.type == "expected" for d in self.got)

    d = _daemon()
    checker = Checker("checker")
    with d.running():
        _add(d, checker)
        send_framed(d.urls[0], frame(Message.new(type="other")))
        _wait(lambda: d.accepted == 1)
    assert d.summary()["failed_plugins"] == ["checker"]
    assert any("checker: matched 1, errors 0 (its check FAILED)" in line for line in d.summary_lines())


def test_stop_drains_what_clients_already_sent() -> None:
    d = _daemon()
    n = 3000
    data = b"".join(frame(Message.new(type="bulk", payload="x" * 200)) for _ in range(n))
    with d.running():
        send_framed(d.urls[0], data)  # returns once the kernel has it; the daemon may lag behind
    assert d.accepted == n
    assert d.summary()["dropped"] == {}


def test_output_matcher_and_framed_stdout() -> None:
    pytest.importorskip("hekacli.matcher")
    from hekacli.framing import Splitter

    out = io.BytesIO()
    cfg = {
        "listeners": ["udp://127.0.0.1:0"],
        "output": {"path": "-", "format": "heka", "message_matcher": "Severity < 4"},
    }
    d = ServeDaemon(cfg, log=lambda t: None, stdout=out)
    with d.running():
        send_framed(d.urls[0], b"".join(frame(Message.new(type=f"s{s}", severity=s)) for s in range(8)))
        _wait(lambda: d.accepted == 8)
    records = Splitter().feed(out.getvalue())
    assert [r.message().type for r in records] == ["s0", "s1", "s2", "s3"]
