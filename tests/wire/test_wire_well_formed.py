"""`well_formed` (the check `heka serve` makes instead of decoding when no plugin needs the message)
says True exactly when `decode_message` succeeds; `TailMemo.may_learn` never skips a message the
memo would learn from; and `heka serve --verify` counts ordinary (distinct) traffic, flood traffic
and undecodable records exactly as the full-decode path does."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st

from hekacli.errors import DecodeError
from hekacli.framing import frame, read_stream
from hekacli.message import (
    Field,
    Message,
    TailMemo,
    ValueType,
    _canonical,
    decode_message,
    encode_message,
    encode_message_py,
    well_formed,
)
from hekacli.serve.daemon import ServeDaemon
from hekacli.serve.plugin import Delivery
from hekacli.transport import send_framed


def _decodes(data: bytes) -> bool:
    try:
        decode_message(data)
    except DecodeError:
        return False
    return True


def _mutants(data: bytes) -> list[bytes]:
    """Every truncation, and each byte replaced by 0x00, 0xFF and itself with the top bit flipped."""
    out = [data[:n] for n in range(len(data))]
    for i, b in enumerate(data):
        for v in {0x00, 0xFF, b ^ 0x80, b ^ 0x07}:
            out.append(data[:i] + bytes((v,)) + data[i + 1:])
    return out


def _vector_bodies() -> list[bytes]:
    bodies = []
    for name in ("protobuf.log", "multi.dat"):
        with open(VECTORS / "heka" / name, "rb") as fh:
            bodies += [r.message_bytes for r in read_stream(fh, max_message_size=4 * 1024 * 1024)]
    return bodies


def test_heka_vectors_are_canonical_and_every_mutant_agrees_with_the_decoder() -> None:
    bodies = _vector_bodies()
    assert len(bodies) == 57
    for body in bodies:
        assert _canonical(body) and well_formed(body)  # Heka's bytes take the C check
    small = [b for b in bodies if len(b) < 1000]  # protobuf.log's big payloads: only their ends
    big = [b for b in bodies if len(b) >= 1000][:2]
    for body in small[:3] + small[-2:] + [b[:120] + b[-80:] for b in big]:
        for m in _mutants(body):
            assert well_formed(m) == _decodes(m), m.hex()


def _field_entry(inner: bytes) -> bytes:
    return b"\x52" + bytes((len(inner),)) + inner


@pytest.mark.parametrize("body, ok", [
    (_field_entry(b"\x0a\x01a\x10\x09\x1a\x00"), False),  # value_type 9 (canonical otherwise)
    (_field_entry(b"\x0a\x01a\x10\xff\xff\xff\xff\x0f\x1a\x00"), False),  # value_type -1
    (_field_entry(b"\x0a\x01a\x10\x02\x1a\x00\x30\x05\x30\x06"), True),  # unpacked integers
    (_field_entry(b"\x0a\x01a\x10\x03\x1a\x00\x3a\x07" + b"\x00" * 7), False),  # 7-byte doubles
    (_field_entry(b"\x0a\x01a\x10\x03\x1a\x00\x39" + struct.pack("<d", 1.5)), True),  # unpacked double
    (_field_entry(b"\x0a\x01a\x10\x02\x1a\x00\x32\x02\x80\x80"), False),  # packed varint runs over
    (_field_entry(b"\x0a\x01a\x10\x02\x1a\x00\x32\x0b" + b"\xff" * 10 + b"\x01"), False),  # 11-byte varint
    (_field_entry(b"\x0a\x01a\x10\x02\x10\x01\x1a\x00"), True),  # value_type twice: the last counts
    (_field_entry(b"\x0a\x01a\x10\x09\x10\x01"), True),
    (_field_entry(b"\x0a\x01a\x13\x14"), False),  # a group inside a field
    (b"\x10\x01\x1b\x1c", False),  # a group (wire type 3) at the top
    (b"\x10\x01\x0f", False),  # wire type 7
    (b"\x10\x01\x98\x06\x01", True),  # an unknown varint entry with a two-byte tag
    (b"\xd2\x00\x00", True),  # a field entry (10) under a two-byte tag
    (b"\x10" + b"\xff" * 9 + b"\x7f", True),  # a 10-byte varint
    (b"\x10" + b"\xff" * 10 + b"\x01", False),  # an 11-byte varint
    (b"\x15\x00\x00\x00", False),  # fixed32 cut short
    (b"\x11" + b"\x00" * 8, True),  # an unknown fixed64
    (b"\x28\xff\xff\xff\xff\x0f\x40\x01", True),  # Go's 5-byte negative severity
    (b"", True),
])
def test_non_canonical_and_corrupt_bytes(body: bytes, ok: bool) -> None:
    assert _decodes(body) == ok
    assert well_formed(body) == ok
    assert well_formed(bytearray(body)) == ok


_text = st.text(max_size=12)
_int32 = st.integers(-(2**31), 2**31 - 1)
_field = st.one_of(
    st.builds(lambda n, v: Field(n, ValueType.STRING, "", v), _text, st.lists(_text, max_size=3)),
    st.builds(lambda n, v: Field(n, ValueType.BYTES, "b", v), _text,
              st.lists(st.binary(max_size=6), max_size=2)),
    st.builds(lambda n, r, v: Field(n, ValueType.INTEGER, r, v), _text, st.sampled_from(["", "count"]),
              st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)),
    st.builds(lambda n, v: Field(n, ValueType.DOUBLE, "s", v), _text, st.lists(st.floats(allow_nan=False),
                                                                                max_size=3)),
    st.builds(lambda n, v: Field(n, ValueType.BOOL, "", v), _text, st.lists(st.booleans(), max_size=3)),
)
_messages = st.builds(
    Message,
    uuid=st.one_of(st.none(), st.binary(min_size=16, max_size=16), st.binary(max_size=4)),
    timestamp=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    type=st.one_of(st.none(), _text),
    severity=st.one_of(st.none(), _int32),
    payload=st.one_of(st.none(), st.text(max_size=150)),
    pid=st.one_of(st.none(), _int32),
    hostname=st.one_of(st.none(), _text),
    fields=st.lists(_field, max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(_messages, st.data())
def test_encoded_messages_and_their_mutants_agree_with_the_decoder(msg: Message, data: Any) -> None:
    for body in {encode_message(msg), encode_message_py(msg)}:
        assert well_formed(body)
        if (msg.severity is None or msg.severity >= 0) and (msg.pid is None or msg.pid >= 0):
            assert _canonical(body)  # what Go writes takes the C check
        n = len(body)
        cut = data.draw(st.integers(0, max(n - 1, 0)))
        assert well_formed(body[:cut]) == _decodes(body[:cut])
        if n:
            i = data.draw(st.integers(0, n - 1))
            v = data.draw(st.integers(0, 255))
            m = body[:i] + bytes((v,)) + body[i + 1:]
            assert well_formed(m) == _decodes(m)
            extra = data.draw(st.binary(max_size=6))
            assert well_formed(body + extra) == _decodes(body + extra)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_junk_agrees_with_the_decoder(data: bytes) -> None:
    assert well_formed(data) == _decodes(data)


@settings(max_examples=150, deadline=None)
@given(_messages)
def test_may_learn_skips_only_messages_the_memo_learns_nothing_from(msg: Message) -> None:
    for body in {encode_message(msg), encode_message_py(msg)}:
        memo = TailMemo()
        memo.learn(body, decode_message(body))
        if not TailMemo.may_learn(body):
            assert memo.prefix is None
        if memo.prefix is not None:
            assert TailMemo.may_learn(body)


def test_may_learn_sees_a_trailing_one_value_integer_field() -> None:
    base = Message(uuid=bytes(16), timestamp=1, type="t")
    for value in (0, 1, 127, 128, 300, 2**40, -1):
        body = encode_message(Message(uuid=base.uuid, timestamp=1, type="t",
                                      fields=[Field("seq", ValueType.INTEGER, "", [value])]))
        assert TailMemo.may_learn(body)
        memo = TailMemo()
        memo.learn(body, decode_message(body))
        assert memo.prefix is not None
    for fields in ([Field("d", ValueType.DOUBLE, "", [1.0])], [Field("s", ValueType.INTEGER, "", [1, 2])],
                   []):
        body = encode_message(Message(uuid=base.uuid, timestamp=1, type="t", fields=fields))
        assert not TailMemo.may_learn(body)


# -- heka serve --verify: the undecoded path counts exactly as the decoded one -------------------------

class Plain:
    """A plugin that needs every message decoded (no `process_raw`): with it the daemon decodes."""

    message_matcher = None
    message_signer = None

    def __init__(self) -> None:
        self.name = "plain"
        self.got: list[Delivery] = []

    async def start(self, ctx: Any) -> None:
        pass

    def process(self, delivery: Delivery) -> None:
        self.got.append(delivery)

    async def stop(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}


def _stream() -> tuple[bytes, int, int, int]:
    """Distinct ordinary messages, distinct flood messages (two connections' worth of one run, with
    gaps), undecodable records with intact framing; returns the bytes, the record count, how many
    are undecodable and how many are flood messages."""
    parts: list[bytes] = []
    bad = flood = 0
    for i in range(900):
        if i % 89 == 7:
            body = bytearray(encode_message(Message(uuid=bytes(16), timestamp=i, payload="x" * (i % 50))))
            body[0 if i % 2 else 1] = 0x0F if i % 2 else 0xFF  # wire type 7 / a uuid overrunning
            assert not _decodes(bytes(body))
            parts.append(frame(bytes(body)))
            bad += 1
            continue
        if i % 3 == 0 and i % 9 != 3:  # flood traffic, each message distinct (payload, uuid, time)
            flood += 1
            m = Message.new(type="heka.flood", payload=f"flood {i}" * (i % 4 + 1),
                            fields=[Field("flood_run", ValueType.STRING, "", ["r1"]),
                                    Field("flood_conn", ValueType.INTEGER, "", [i % 2]),
                                    Field("flood_seq", ValueType.INTEGER, "", [i // 2]),
                                    Field("flood_sent", ValueType.INTEGER, "", [time.time_ns() - 1000])])
        else:
            m = Message.new(type="nginx.access", payload=f"GET /p/{i} HTTP/1.1 200", severity=6, pid=4242,
                            hostname="web-1")
            m.add_field("status", 200 + i % 5)
            m.add_field("request_time", i / 1e4, "s")
            if i % 9 == 3:
                m.severity = -1  # not canonical (Go's 5-byte form): checked the slow way
                m.fields.append(Field("flood_runner", ValueType.STRING, "", ["not a run"]))
        parts.append(frame(m))
    assert i % 89 != 7  # the last record is a good one
    return b"".join(parts), 900, bad, flood


def _serve(data: bytes, decoded: bool, accepted: int,
           count: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run `heka serve --verify` (plus a plugin that needs decoded messages when `decoded`), send
    `data`, wait for `accepted` records (the last record is a good one) or the --count stop."""
    d = ServeDaemon({"listeners": ["tcp://127.0.0.1:0"], "output": "none", "verify": True},
                    log=lambda t: None)
    d.config.count = count
    with d.running():
        if decoded:
            import asyncio

            async def add() -> None:
                d.router.add_plugin(Plain())

            asyncio.run_coroutine_threadsafe(add(), d._loop).result(30)  # type: ignore[arg-type]
        assert d.router.takes_raw is not decoded
        send_framed(d.urls[0], data)
        if count is not None:
            assert d.wait_stopped(30)
        deadline = time.monotonic() + 30
        while d.accepted < accepted:
            assert time.monotonic() < deadline, "records not all handled in time"
            time.sleep(0.02)
    s = d.summary()
    verify = next(p for p in s["plugins"] if p["name"] == "verify")
    return s, verify


def test_serve_verify_counts_undecoded_traffic_as_the_decoded_path_does() -> None:
    data, n, bad, flood = _stream()
    fast, fast_verify = _serve(data, False, n - bad)
    slow, slow_verify = _serve(data, True, n - bad)
    assert fast["accepted"] == slow["accepted"] == n - bad
    assert fast["dropped"] == slow["dropped"] == {"undecodable": bad}
    assert fast["router"]["routed"] == slow["router"]["routed"] == n - bad
    assert fast_verify["matched"] == slow_verify["matched"] == n - bad
    for s in (fast_verify["stats"], slow_verify["stats"]):
        for r in s["runs"]:
            r.pop("latency_ns")  # receive times differ between the two runs
    assert fast_verify["stats"] == slow_verify["stats"]
    run = fast_verify["stats"]["runs"][0]
    assert run["run"] == "r1" and run["connections"] == 2 and run["received"] == flood
    assert fast_verify["stats"]["other_messages"] == n - bad - flood


def test_serve_verify_count_is_exact_on_the_undecoded_path() -> None:
    data, _n, _bad, _flood = _stream()
    s, verify = _serve(data, False, 500, count=500)
    assert s["accepted"] == 500 and s["stop_reason"] == "--count 500 reached"
    assert verify["matched"] == 500


class RawTaker(Plain):
    """A plugin that takes undecoded bytes (and fails on one of them)."""

    def __init__(self, name: str, matcher: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.message_matcher = matcher
        self.raws: list[bytes] = []

    def process_raw(self, raw: bytes, received_ns: int) -> None:
        if raw == b"boom":
            raise ValueError("boom")
        self.raws.append(raw)


def test_router_takes_raw_only_when_every_plugin_takes_every_message_raw() -> None:
    from hekacli.serve.router import Router

    router = Router(state_dir=".", log=lambda t: None)
    assert not router.takes_raw  # no plugins: the daemon decodes (and drops what does not decode)
    a = RawTaker("a")
    router.add_plugin(a)
    assert router.takes_raw
    router.route_raw(b"\x10\x01", 5)
    router.route_raw(b"boom", 6)  # a failing plugin is counted, never fatal
    assert a.raws == [b"\x10\x01"]
    assert router.stats.routed == 2 and router.plugin_errors == {"a": 1}
    router.add_plugin(Plain())
    assert not router.takes_raw
    router.remove_plugin("plain")
    assert router.takes_raw
    signed = RawTaker("signed")
    signed.message_signer = "ops"  # type: ignore[misc]
    router.add_plugin(signed)
    assert not router.takes_raw
    router.remove_plugin("signed")
    pytest.importorskip("hekacli.matcher")
    router.add_plugin(RawTaker("matched", "Type == 'x'"))
    assert not router.takes_raw
