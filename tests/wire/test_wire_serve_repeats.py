"""`heka serve`'s fast path for repeated messages (a stream that repeats one message with a new
trailing counter, as heka flood sends): plugins see exactly what the full decode gives, in stream
order; undecodable records in between are dropped and counted as before; --count is exact."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from hekacli.framing import Signer, Splitter, frame
from hekacli.message import Field, Message, MessagePrefix, ValueType, decode_message, encode_message
from hekacli.serve.daemon import ServeDaemon
from hekacli.serve.plugin import Delivery, LazyDelivery
from hekacli.serve.router import Router
from hekacli.transport import send_framed

KEY = Signer("ops", 0, "md5", b"k")


class Plain:
    """A plugin that keeps every delivery (it needs whole messages)."""

    message_signer: str | None = None

    def __init__(self, name: str, matcher: str | None = None) -> None:
        self.name = name
        self.message_matcher = matcher
        self.got: list[Delivery] = []

    async def start(self, ctx: Any) -> None:
        pass

    def process(self, delivery: Delivery) -> None:
        self.got.append(delivery)

    async def stop(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}


class Batched(Plain):
    """A plugin that also takes runs of repeated messages whole; logs (message, received) pairs."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.seen: list[Message] = []
        self.batches = 0

    def process(self, delivery: Delivery) -> None:
        super().process(delivery)
        self.seen.append(delivery.message)

    def process_repeats(self, prefix: MessagePrefix, tails: list[int], received_ns: int) -> None:
        self.batches += 1
        self.seen += [prefix.materialize(t) for t in tails]


def _msg(seq: int, kind: str = "a") -> Message:
    return Message(uuid=bytes(16), timestamp=1_700_000_000_000_000_000, type=kind, payload="p" * 150,
                   hostname="h", fields=[Field("flood_run", ValueType.STRING, "", ["r"]),
                                         Field("flood_seq", ValueType.INTEGER, "", [seq])])


def _corrupt(seq: int) -> bytes:
    body = bytearray(encode_message(_msg(seq)))
    body[0] = 0x0F  # wire type 7: undecodable, framing intact
    return frame(bytes(body))


def _stream() -> tuple[bytes, list[Message], int]:
    """Framed records: runs of repeats, another kind, signed ones, undecodable ones; the messages
    that should arrive in order, and the undecodable count."""
    parts: list[bytes] = []
    expected: list[Message] = []
    bad = 0
    for seq in range(1200):
        if seq % 97 == 50:
            parts.append(_corrupt(seq))
            bad += 1
            continue
        kind = "b" if seq % 300 == 299 else "a"
        m = _msg(seq, kind)
        parts.append(frame(m, KEY) if seq % 251 == 0 else frame(m))
        expected.append(m)
    return b"".join(parts), expected, bad


def _wait(cond, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _add(d: ServeDaemon, plugin: Any) -> None:
    import asyncio

    async def add() -> None:
        await plugin.start(d.router)
        d.router.add_plugin(plugin)

    assert d._loop is not None
    asyncio.run_coroutine_threadsafe(add(), d._loop).result(30)


def test_plain_plugins_and_the_output_get_what_the_full_decode_gives() -> None:
    data, expected, bad = _stream()
    out = io.BytesIO()
    d = ServeDaemon({"listeners": ["tcp://127.0.0.1:0"], "signers": {"ops_0": "k"},
                     "output": {"path": "-", "format": "heka"}}, log=lambda t: None, stdout=out)
    plain = Plain("plain")
    with d.running():
        _add(d, plain)
        send_framed(d.urls[0], data)
        _wait(lambda: d.accepted == len(expected))
    assert [x.message for x in plain.got] == expected
    for x in plain.got:
        assert x.message == decode_message(x.raw)
        assert x.listener == d.urls[0] and x.received_ns > 0
    assert [x.signer for x in plain.got] == ["ops" if m.fields[1].values[0] % 251 == 0 else None
                                              for m in expected]
    assert sum(isinstance(x, LazyDelivery) for x in plain.got) > len(expected) // 2  # the fast path ran
    assert [r.message() for r in Splitter().feed(out.getvalue())] == expected
    assert d.summary()["dropped"] == {"undecodable": bad}


def test_runs_go_whole_to_plugins_that_take_them_and_in_order_to_the_rest() -> None:
    data, expected, bad = _stream()
    d = ServeDaemon({"listeners": ["tcp://127.0.0.1:0"], "signers": {"ops_0": "k"}, "output": "none"},
                    log=lambda t: None)
    batched = Batched("batched")
    with d.running():
        _add(d, batched)
        send_framed(d.urls[0], data)
        _wait(lambda: d.accepted == len(expected))
        assert batched.seen == expected
        assert batched.batches > 0 and len(batched.got) < len(expected) // 2
        # A plugin that needs deliveries: from now on every message reaches both, one by one.
        plain = Plain("plain")
        _add(d, plain)
        send_framed(d.urls[0], data)
        _wait(lambda: d.accepted == 2 * len(expected))
    assert batched.seen == expected + expected
    assert [x.message for x in plain.got] == expected
    s = d.summary()
    assert s["dropped"] == {"undecodable": 2 * bad}
    assert s["router"]["routed"] == 2 * len(expected)
    assert {p["name"]: p["matched"] for p in s["plugins"]} == {"batched": 2 * len(expected),
                                                               "plain": len(expected)}


def test_count_is_exact_when_runs_are_batched() -> None:
    n = 700
    d = ServeDaemon({"listeners": ["tcp://127.0.0.1:0"], "output": "none", "verify": True},
                    log=lambda t: None)
    d.config.count = n
    with d.running():
        send_framed(d.urls[0], b"".join(frame(_msg(seq)) for seq in range(n + 300)))
        assert d.wait_stopped(30)
    s = d.summary()
    assert s["accepted"] == n and s["stop_reason"] == f"--count {n} reached"
    verify = next(p for p in s["plugins"] if p["name"] == "verify")
    assert verify["matched"] == n
    run = verify["stats"]["runs"][0]
    assert run["received"] == n and run["unique"] == n and run["lost"] == 0


def test_route_repeats_offers_deliveries_to_matchers_and_counts_errors() -> None:
    pytest.importorskip("hekacli.matcher")
    router = Router(state_dir=".", log=lambda t: None)
    batched = Batched("batched")
    matching = Plain("matching", matcher="Fields[flood_seq] >= 3 && Type == 'a'")

    class Failing(Batched):
        def process_repeats(self, prefix: MessagePrefix, tails: list[int], received_ns: int) -> None:
            raise RuntimeError("boom")

    failing = Failing("failing")
    for p in (batched, matching, failing):
        router.add_plugin(p)
    assert not router.takes_repeats  # `matching` needs deliveries
    first = encode_message(_msg(0))
    from hekacli.message import TailMemo

    memo = TailMemo()
    memo.learn(first, decode_message(first))
    assert memo.prefix is not None
    raws = [encode_message(_msg(seq)) for seq in range(6)]
    tails = [memo.match(r) for r in raws]
    assert tails == list(range(6))
    router.route_repeats(memo.prefix, tails, 42, lambda: [LazyDelivery(r, None, "x", 42, memo.prefix, t)
                                                          for r, t in zip(raws, tails, strict=True)])
    assert batched.seen == [_msg(seq) for seq in range(6)]
    assert [x.message for x in matching.got] == [_msg(seq) for seq in range(3, 6)]
    summary = {p["name"]: (p["matched"], p["errors"]) for p in router.plugin_summary()}
    assert summary == {"batched": (6, 0), "matching": (3, 0), "failing": (6, 1)}
    assert router.stats.routed == 6
    router.remove_plugin("matching")
    assert router.takes_repeats
