"""`TailMemo` (messages that repeat the last one but for a trailing integer field) and
`Splitter.feed_spans`: both must give exactly what the full decoder and `Splitter.feed` give."""

from __future__ import annotations

import random

import pytest
from conftest import VECTORS
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hekacli.errors import DecodeError
from hekacli.framing import Signer, Splitter, frame, read_stream
from hekacli.message import Field, Message, TailMemo, ValueType, decode_message, encode_field, encode_message

INT64 = st.integers(-(2**63), 2**63 - 1)
EDGE_VALUES = [0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**35, 2**56, 2**63 - 1, -1, -(2**63)]


def _vector_bodies() -> list[bytes]:
    out = []
    for name, count in (("protobuf.log", 7), ("multi.dat", 50)):
        with open(VECTORS / "heka" / name, "rb") as fh:
            records = list(read_stream(fh, max_message_size=4 * 1024 * 1024))
        assert len(records) == count
        out += [r.message_bytes for r in records]
    return out


VECTOR_BODIES = _vector_bodies()


def int_entry(name: str, value: int, representation: str = "") -> bytes:
    """A top-level field entry (tag 10) holding one integer, as Go writes it."""
    body = encode_field(Field(name, ValueType.INTEGER, representation, [value]))
    return b"\x52" + bytes((len(body),)) + body


def check_hit(memo: TailMemo, data: bytes) -> int | None:
    """memo.match(data); when it hits, the hit must be exactly what decode_message gives."""
    value = memo.match(data)
    if value is not None:
        expected = decode_message(data)  # a hit is a promise that the bytes decode
        assert memo.prefix is not None
        assert memo.prefix.materialize(value) == expected
        assert expected.fields[-memo.prefix.width:] == memo.prefix.fields(value)
    return value


@pytest.mark.parametrize("index", range(len(VECTOR_BODIES)))
def test_vectors_with_a_counter_hit_and_equal_the_full_decode(index: int) -> None:
    """Each of the 57 Heka vectors plus a trailing counter: learned once, then every other counter
    value is a hit that equals decoding the bytes (and the vector alone is not)."""
    base = VECTOR_BODIES[index]
    memo = TailMemo()
    first = base + int_entry("seq", 5, "count")
    memo.learn(first, decode_message(first))
    assert memo.prefix is not None
    assert memo.prefix.names == ("seq",) and memo.prefix.representations == ("count",)
    for v in EDGE_VALUES:
        assert check_hit(memo, base + int_entry("seq", v, "count")) == v
    assert memo.match(base) is None
    assert memo.match(base + int_entry("seq", 5, "other")) is None  # another representation
    assert memo.match(base + int_entry("sequ", 5, "count")) is None  # another name
    assert memo.match(base[:-1] + int_entry("seq", 5, "count")) is None  # another prefix


def test_flood_messages_hit_after_one_decode() -> None:
    prefix = encode_message(Message(uuid=bytes(16), timestamp=1_700_000_000_000_000_000, type="hekabench",
                                    severity=6, payload="x" * 100, pid=1, hostname="h",
                                    fields=[Field("flood_run", ValueType.STRING, "", ["r1"])]))
    memo = TailMemo()
    hits = 0
    for seq in range(3000):
        data = prefix + int_entry("flood_seq", seq)
        if check_hit(memo, data) is None:
            memo.learn(data, decode_message(data))
        else:
            hits += 1
    assert hits == 2999


def test_paced_flood_messages_hit_with_two_trailing_counters() -> None:
    """heka flood --rate stamps every send: flood_sent and flood_seq both change. One miss with a
    one-field prefix, then the memo learns both fields and hits with (sent, seq)."""
    prefix = encode_message(Message(uuid=bytes(16), timestamp=1_700_000_000_000_000_000, type="hekabench",
                                    payload="x" * 100,
                                    fields=[Field("flood_run", ValueType.STRING, "", ["r1"])]))
    memo = TailMemo()
    misses = 0
    for seq in range(3000):
        sent = 1_700_000_000_000_000_000 + seq * 5_000
        data = prefix + int_entry("flood_sent", sent, "ns") + int_entry("flood_seq", seq)
        got = check_hit(memo, data)
        if got is None:
            misses += 1
            memo.learn(data, decode_message(data))
        else:
            assert got == (sent, seq)
    assert misses == 2 and memo.width == 2
    assert memo.prefix is not None and memo.prefix.names == ("flood_sent", "flood_seq")
    assert memo.head(1) is None and memo.head_size == 0  # runs are cut for one-field prefixes only


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, len(VECTOR_BODIES) - 1), a=INT64, b=INT64, c=INT64, d=INT64,
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
       cut=st.integers(0, 3))
def test_hypothesis_two_field_hits_equal_the_full_decode(index: int, a: int, b: int, c: int, d: int,
                                                          edits: list[tuple[int, int]], cut: int) -> None:
    assume(a != c)
    base = VECTOR_BODIES[index]
    memo = TailMemo()
    for t, n in ((a, b), (c, d)):  # the second learn (after a one-field miss) takes both fields
        data = base + int_entry("t", t, "ns") + int_entry("n", n)
        assert check_hit(memo, data) is None
        memo.learn(data, decode_message(data))
    assert memo.width == 2
    assert check_hit(memo, base + int_entry("t", d, "ns") + int_entry("n", c)) == (d, c)
    data = bytearray(base + int_entry("t", b, "ns") + int_entry("n", d))
    for pos, byte in edits:
        data[pos % len(data)] = byte
    check_hit(memo, bytes(data[:len(data) - cut]))


@pytest.mark.parametrize("tail", [
    b"\x52\x0d\x0a\x03seq\x10\x02\x1a\x002\x02\x80\x00",  # a padded (non-canonical) 2-byte zero
    b"\x52\x0d\x0a\x03seq\x10\x02\x1a\x002\x02\x80\x80",  # continuation bit on the last byte
    b"\x52\x0d\x0a\x03seq\x10\x02\x1a\x002\x02\x05\x05",  # two values, not one 2-byte varint
    b"\x52\x0c\x0a\x03seq\x10\x02\x1a\x002\x01\x80",  # truncated varint
    b"\x52\x0c\x0a\x03seq\x10\x03\x1a\x002\x01\x05",  # another value type
    b"\x52\x0e\x0a\x03seq\x10\x02\x1a\x002\x03\xff\xff\x7f",
    b"\x52\x0d\x0a\x03seq\x10\x02\x1a\x002\x01\x05\x00",  # a stray byte after the value
])
def test_odd_tails_hit_only_when_they_decode_to_the_same(tail: bytes) -> None:
    base = VECTOR_BODIES[0]
    memo = TailMemo()
    first = base + int_entry("seq", 1)
    memo.learn(first, decode_message(first))
    data = base + tail
    try:
        decode_message(data)
    except DecodeError:
        assert memo.match(data) is None  # never a hit for what the decoder rejects
        return
    check_hit(memo, data)


def test_learn_needs_an_entry_boundary_not_lookalike_bytes() -> None:
    """The last field is a counter, but the last entry is a payload (written after the fields)
    whose bytes end like a counter field: nothing is learned from it, so a changed payload is never
    taken for a new counter value."""
    head = encode_message(Message(type="t", fields=[Field("seq", ValueType.INTEGER, "", [1])]))

    def with_payload(v: int) -> bytes:
        content = b"ppp" + int_entry("seq", v)
        return head + b"\x32" + bytes((len(content),)) + content

    data = with_payload(7)
    msg = decode_message(data)
    assert msg.fields[-1] == Field("seq", ValueType.INTEGER, "", [1])
    memo = TailMemo()
    memo.learn(data, msg)
    assert memo.prefix is None
    assert memo.match(with_payload(9)) is None
    assert decode_message(with_payload(9)).payload.endswith("\t")


def test_only_one_value_integer_fields_are_learned() -> None:
    memo = TailMemo()
    for fields in ([Field("a", ValueType.STRING, "", ["x"])], [Field("a", ValueType.INTEGER, "", [1, 2])],
                   [Field("a", ValueType.DOUBLE, "", [1.0])], []):
        data = encode_message(Message(type="t", fields=fields))
        memo.learn(data, decode_message(data))
        assert memo.prefix is None


def test_streams_that_never_repeat_learn_less_often_but_recover() -> None:
    """Unique messages back the learning off; a repeating stream afterwards still gets hits soon."""
    memo = TailMemo()
    rng = random.Random(7)
    for i in range(2000):
        data = encode_message(Message(uuid=rng.randbytes(16), type="t", fields=[
            Field("n", ValueType.INTEGER, "", [i])]))
        assert check_hit(memo, data) is None
        memo.learn(data, decode_message(data))
    base = encode_message(Message(uuid=bytes(16), type="t"))
    first_hit = None
    for i in range(1000):
        data = base + int_entry("n", i)
        if check_hit(memo, data) is None:
            memo.learn(data, decode_message(data))
        elif first_hit is None:
            first_hit = i
    assert first_hit is not None and first_hit <= 300


def test_materialize_shares_nothing_with_the_prefix() -> None:
    data = encode_message(Message(type="t", fields=[Field("a", ValueType.STRING, "", ["x"])]))
    data += int_entry("n", 1)
    memo = TailMemo()
    memo.learn(data, decode_message(data))
    assert memo.prefix is not None
    m = memo.prefix.materialize(2)
    m.fields[0].values.append("changed")
    m.fields.append(Field("b", ValueType.STRING, "", []))
    assert memo.prefix.materialize(3) == decode_message(data[:-1] + b"\x03")


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(VECTOR_BODIES) - 1), learned=INT64, value=INT64,
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
       cut=st.integers(0, 3))
def test_hypothesis_hits_always_equal_the_full_decode(index: int, learned: int, value: int,
                                                       edits: list[tuple[int, int]], cut: int) -> None:
    """Random counter values, byte edits and truncations: a hit always equals decode_message, and
    an unchanged prefix with a new counter always hits."""
    base = VECTOR_BODIES[index]
    memo = TailMemo()
    first = base + int_entry("flood_seq", learned)
    memo.learn(first, decode_message(first))
    assert check_hit(memo, base + int_entry("flood_seq", value)) == value
    data = bytearray(base + int_entry("flood_seq", value))
    for pos, byte in edits:
        data[pos % len(data)] = byte
    check_hit(memo, bytes(data[:len(data) - cut]))


# -- Splitter.feed_spans ----------------------------------------------------------------------------

KEY = Signer("ops", 1, "sha1", b"secret")


def _stream(rng: random.Random, n: int) -> bytes:
    """Records of every kind (small, 2-byte lengths, signed, bad signature, too big) and garbage."""
    parts = []
    for i in range(n):
        kind = rng.randrange(7)
        msg = Message(type="t", payload="x" * rng.choice([0, 5, 200, 3000]), fields=[
            Field("n", ValueType.INTEGER, "", [i])])
        if kind == 0:
            parts.append(rng.randbytes(rng.randrange(1, 20)))
        elif kind == 1:
            parts.append(frame(msg, KEY))
        elif kind == 2:
            parts.append(frame(msg, Signer("ops", 1, "sha1", b"wrong")))
        elif kind == 3:
            parts.append(frame(msg, max_message_size=1 << 20)[:-1])  # cut short: resync
        else:
            parts.append(frame(msg))
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(6))
def test_feed_spans_cuts_exactly_what_feed_cuts(seed: int) -> None:
    rng = random.Random(seed)
    data = _stream(rng, 300)
    a = Splitter(max_message_size=2048, signers={KEY.lookup_key: KEY.key})
    b = Splitter(max_message_size=2048, signers={KEY.lookup_key: KEY.key})
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 7, 100, 4096, 65536])
        chunk = data[pos:pos + step]
        pos += step
        base = b.offset
        records = a.feed(chunk)
        buf, spans = b.feed_spans(chunk)
        assert [(r.offset, r.raw, r.header_len, r.signer) for r in records] == [
            (base + i, buf[i:end], hlen, signer) for i, hlen, end, _h, signer in spans]
        assert a.dropped == b.dropped and a.records == b.records and a.offset == b.offset
    a.finish()
    b.finish()
    assert a.dropped == b.dropped and a.corrupt_bytes == b.corrupt_bytes
    assert a.dropped["bad_signature"] > 0 and a.dropped["too_big"] > 0 and a.dropped["corrupt"] > 0


# -- RepeatCutter: runs of hits cut whole --------------------------------------------------------


def _repeat_stream(rng: random.Random, n: int) -> bytes:
    """Repeated messages with counters of every varint length near the boundaries, prefix changes,
    tails that are not one varint, undecodable and signed records, garbage between records."""
    payload = "x" * rng.randrange(300)

    def make_prefix(ts: int) -> bytes:
        return encode_message(Message(uuid=bytes(16), timestamp=ts, type="a", payload=payload,
                                      fields=[Field("flood_run", ValueType.STRING, "", ["r"])]))

    ts = 1_700_000_000_000_000_000
    prefix = make_prefix(ts)
    seq = rng.choice([0, 120, 16370, 2**21 - 10])
    paced = False
    parts = []
    for _ in range(n):
        kind = rng.randrange(40)
        seq += 1
        body = prefix + int_entry("flood_seq", seq)
        if kind == 0:  # a new prefix
            prefix = prefix[:-1] + bytes((rng.randrange(32, 127),))
        elif kind in (7, 8, 9):  # a new Timestamp (flood's next batch), rarely of another length
            ts = rng.choice([ts + rng.randrange(1, 10**6), rng.randrange(1, 10**15)]) if kind == 9 else \
                ts + rng.randrange(1, 10**6)
            prefix = make_prefix(ts)[:-1] + prefix[-1:]
        elif kind == 1:  # the value's last byte with a continuation bit: not one varint
            body = body[:-1] + bytes((body[-1] | 0x80,))
        elif kind == 2:  # a non-canonical (padded) value
            body = body[:-1] + bytes((body[-1] | 0x80, 0)) if body[-1] else body
            body = body[:len(prefix) + 1] + bytes((len(body) - len(prefix) - 2,)) + body[len(prefix) + 2:]
        elif kind == 3:  # undecodable
            body = b"\x0f" + body[1:]
        elif kind == 4:
            parts.append(rng.randbytes(rng.randrange(1, 9)))
        elif kind >= 30 and paced:  # flood --rate: a send time per message too
            sent = 10**18 + seq if kind < 39 else rng.randrange(2**56, 2**63)  # rarely: any 9-byte time
            body = prefix + int_entry("flood_sent", sent, "ns") + int_entry("flood_seq", seq)
            if kind == 38 and rng.random() < 0.3:  # a send time that is not one 9-byte varint
                at = len(prefix) + len(int_entry("flood_sent", sent, "ns")) - 9 + rng.randrange(9)
                body = body[:at] + bytes((body[at] ^ 0x80,)) + body[at + 1:]
        if kind == 6:
            paced = not paced
        if kind == 5:
            parts.append(frame(body, KEY))
        else:
            parts.append(frame(body))
    return b"".join(parts)


def _cut_all(data: bytes, steps: list[int], cutter: bool) -> tuple[list, Splitter, int]:
    """What serve does with a stream: (offset, message or None if undecodable) per record."""
    from hekacli.framing import RUN, RepeatCutter

    sp = Splitter(max_message_size=2048, signers={KEY.lookup_key: KEY.key})
    memo = TailMemo()
    cut = RepeatCutter(memo, 2048) if cutter else None
    out: list = []
    runs = stamps = rebased = 0
    pos = 0
    k = 0
    while pos < len(data):
        step = steps[k % len(steps)]
        k += 1
        base = sp.offset
        buf, spans = sp.iter_spans(data[pos:pos + step], cut)
        pos += step
        for i, hlen, end, header, _signer in spans:
            if hlen == RUN:
                runs += 1
                assert end - i == header.count * header.record_len
                for j, v in enumerate(header.values):
                    body = buf[i + j * header.record_len + header.body_start:i + (j + 1) * header.record_len]
                    if header.stamp_at is None:
                        assert memo.match(body) == v  # every record of the run is a hit with that value
                    stamps += header.stamp_at is not None
                    out.append((base + i + j * header.record_len, header.message(buf, i, j)))
                continue
            body = buf[i + hlen + 3:end]
            v = memo.match(body)
            if v is None and memo.rebase(body):  # the prefix with another Timestamp
                rebased += 1
                v = memo.match(body)
            if v is not None:
                out.append((base + i, memo.prefix.materialize(v)))
                continue
            try:
                msg = decode_message(body)
            except DecodeError:
                out.append((base + i, None))
                continue
            memo.learn(body, msg)
            out.append((base + i, msg))
    sp.finish()
    assert stamps > 0 if cutter else rebased > 0  # Timestamp changes took the fast paths
    return out, sp, runs


@pytest.mark.parametrize("seed", range(8))
def test_repeat_cutter_gives_what_split_and_decode_give(seed: int) -> None:
    rng = random.Random(seed)
    data = _repeat_stream(rng, 3000)
    steps = [rng.choice([50, 999, 4096, 65536, 262144]) for _ in range(20)]
    expected = []
    plain = Splitter(max_message_size=2048, signers={KEY.lookup_key: KEY.key})
    for rec in plain.feed(data):
        try:
            expected.append((rec.offset, rec.message()))
        except DecodeError:
            expected.append((rec.offset, None))
    plain.finish()
    got, sp, runs = _cut_all(data, steps, cutter=True)
    assert got == expected
    assert runs > 0  # the fast path was taken
    assert (sp.records, sp.dropped, sp.corrupt_bytes, sp.offset) == (
        plain.records, plain.dropped, plain.corrupt_bytes, plain.offset)
    assert _cut_all(data, steps, cutter=False)[0] == expected


def _with_stamp(body: bytes, ts: int) -> bytes | None:
    """`body` with its Timestamp entry's varint replaced by `ts` (None if the length differs)."""
    msg = decode_message(body)
    if msg.timestamp is None:
        return None
    old = encode_message(Message(timestamp=msg.timestamp))[1:]
    new = encode_message(Message(timestamp=ts))[1:]
    at = body.find(b"\x10" + old)
    if at < 0 or len(old) != len(new):
        return None
    return body[:at + 1] + new + body[at + 1 + len(old):]


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, len(VECTOR_BODIES) - 1), ts=st.integers(2**56, 2**63 - 1), value=INT64,
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=2))
def test_hypothesis_rebase_learns_a_new_timestamp_exactly(index: int, ts: int, value: int,
                                                          edits: list[tuple[int, int]]) -> None:
    base = VECTOR_BODIES[index]
    memo = TailMemo()
    first = base + int_entry("seq", 1)
    memo.learn(first, decode_message(first))
    other = _with_stamp(base, ts)
    assume(other is not None and other != base)
    data = other + int_entry("seq", value)
    assert memo.match(data) is None
    assert memo.rebase(data)
    assert check_hit(memo, data) == value
    assert memo.prefix is not None and memo.prefix.message.timestamp == decode_message(data).timestamp
    mutated = bytearray(data)
    for pos, byte in edits:
        mutated[pos % len(mutated)] = byte
    if memo.rebase(bytes(mutated)):  # only ever for bytes that decode to the prefix, restamped
        check_hit(memo, bytes(mutated))


def test_rebase_refuses_other_changes() -> None:
    base = VECTOR_BODIES[0]
    memo = TailMemo()
    memo.learn(base + int_entry("seq", 1), decode_message(base + int_entry("seq", 1)))
    assert memo.stamp_span() is not None
    shorter = _with_stamp(base, 5)
    assert shorter is None  # another varint length: not a rebase (the caller decodes)
    changed = bytearray(base + int_entry("seq", 2))
    changed[-20] ^= 1  # a byte outside the Timestamp
    assert not memo.rebase(bytes(changed))
    assert not TailMemo().rebase(base)  # nothing learned yet


@settings(max_examples=200, deadline=None)
@given(base=st.integers(2**56, 2**63 - 1), steps=st.lists(st.integers(0, 2**40), min_size=1, max_size=40),
       pad=st.integers(0, 5), flips=st.lists(st.integers(0, 10**4), max_size=2))
def test_varints9_reads_columns_like_varint9(base: int, steps: list[int], pad: int, flips: list[int]) -> None:
    """The run reader of 9-byte varints (send times) against the one-at-a-time reader."""
    from hekacli.framing import _varints9
    from hekacli.message import _varint9

    values = [min(base + s, 2**63 - 1) for s in steps]
    size = 9 + pad
    buf = bytearray()
    for v in values:
        buf += encode_message(Message(timestamp=v))[1:] + b"\xaa" * pad
    for f in flips:
        buf[f % len(buf)] ^= 0x80
    buf = bytes(buf)
    assert _varints9(buf, 0, len(buf), size) == [_varint9(buf, i) for i in range(0, len(buf), size)]
