"""The verifier's fast paths for repeated messages (`add_repeat`, `add_repeats`, the bitmap
scans) count exactly what `add` counts on the decoded messages."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hekacli.flood.generator import END_TYPE
from hekacli.flood.histogram import Histogram
from hekacli.flood.verify import StreamState, Verifier, _record_many
from hekacli.message import Field, Message, TailMemo, ValueType, decode_message, encode_message


def _prefix(fields: list[Field], type_: str = "hekabench", tail: str = "flood_seq", tail2: str = ""):
    """A MessagePrefix learned from a message with `fields` and a trailing integer field `tail`
    (after another one, `tail2`, when given: the memo learns both once one was not enough)."""
    memo = TailMemo()
    for value in ((0, 1) if tail2 else (0,)):
        extra = [Field(tail2, ValueType.INTEGER, "ns", [value])] if tail2 else []
        data = encode_message(Message(uuid=bytes(16), timestamp=5, type=type_, payload="p", fields=[
            *fields, *extra, Field(tail, ValueType.INTEGER, "", [0])]))
        memo.learn(data, decode_message(data))
    assert memo.prefix is not None and memo.prefix.width == (2 if tail2 else 1)
    return memo.prefix


RUN = Field("flood_run", ValueType.STRING, "", ["r1"])
SENT = Field("flood_sent", ValueType.INTEGER, "ns", [1_000])
PREFIXES = [
    _prefix([RUN, SENT]),  # flood's shape (connection 0)
    _prefix([RUN, Field("flood_conn", ValueType.INTEGER, "", [3]), SENT]),
    _prefix([Field("flood_run", ValueType.STRING, "", ["r2"]), SENT]),
    _prefix([RUN, SENT], tail="flood_next_seq", type_=END_TYPE),  # an end marker
    _prefix([RUN, SENT], tail="flood_conn"),  # the counter is not the sequence number
    _prefix([SENT]),  # no run: not a flood message
    _prefix([RUN], tail="other"),  # no sequence number at all
    _prefix([RUN, Field("flood_seq", ValueType.INTEGER, "", [4])], tail="flood_run"),  # run as integer
    _prefix([RUN], tail2="flood_sent"),  # flood --rate: (flood_sent, flood_seq)
    _prefix([RUN, Field("flood_conn", ValueType.INTEGER, "", [2])], tail2="flood_sent"),
    _prefix([RUN], tail="flood_sent", tail2="flood_seq"),  # the other way round
    _prefix([SENT], tail2="flood_run"),  # no run until the tail sets one (as an integer)
]
PAIRS = [i for i, p in enumerate(PREFIXES) if p.width == 2]


def _value(index: int, v: int) -> object:
    """A tail value for PREFIXES[index]: the int, or a pair for two-field prefixes."""
    return (v * 1000 + 17, v) if index in PAIRS else v

_ops = st.lists(st.tuples(st.integers(0, len(PREFIXES) - 1),
                          st.lists(st.one_of(st.integers(-3, 300), st.sampled_from([2**28, 2**40, -(2**63)])),
                                   min_size=1, max_size=40),
                          st.one_of(st.none(), st.integers(0, 10**6))),
                max_size=12)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_hypothesis_repeats_count_like_add(ops: list) -> None:
    slow, one, many = Verifier(), Verifier(), Verifier()
    for index, values, received in ops:
        prefix = PREFIXES[index]
        tails = [_value(index, v) for v in values]
        for v in tails:
            slow.add(prefix.materialize(v), received)
            one.add_repeat(prefix, v, received)
        many.add_repeats(prefix, tails, received)
    assert _outcome(one) == _outcome(slow)
    assert _outcome(many) == _outcome(slow)


def _outcome(v: Verifier) -> object:
    return v.summary(), v.ok


def test_run_ids_of_mixed_types_still_summarise() -> None:
    """A crafted message can carry an integer flood_run: the summary still works (strings first)."""
    v = Verifier()
    v.add_repeat(PREFIXES[0], 1)
    v.add_repeat(PREFIXES[7], 5)  # flood_run = 5, an integer
    assert [r["run"] for r in v.summary()["runs"]] == ["r1", 5]


def test_a_flood_run_with_gaps_duplicates_and_reordering() -> None:
    rng = random.Random(3)
    seqs = list(range(5000))
    del seqs[100:110]
    seqs += [7, 7, 4999, 20]
    rng.shuffle(seqs)
    end = PREFIXES[3]
    slow, fast = Verifier(), Verifier()
    for i in range(0, len(seqs), 256):
        batch = seqs[i:i + 256]
        for v in batch:
            slow.add(PREFIXES[0].materialize(v), 2_000 + i)
        fast.add_repeats(PREFIXES[0], batch, 2_000 + i)
    slow.add(end.materialize(5000), 9_000)
    fast.add_repeat(end, 5000, 9_000)
    s = fast.summary()
    assert s == slow.summary()
    run = s["runs"][0]
    assert run["lost"] == 10 and run["duplicates"] == 4 and run["complete"]
    assert run["missing_sample"] == [f"0:{n}" for n in range(100, 110)]
    assert run["latency_ns"]["count"] == len(seqs)


@pytest.mark.parametrize("value,n", [(-5, 3), (0, 1), (255, 2), (256, 7), (10**9, 4), (2**62, 1)])
def test_record_many_is_n_records(value: int, n: int) -> None:
    a, b = Histogram(), Histogram()
    a.record(17)
    b.record(17)
    for _ in range(n):
        a.record(value)
    _record_many(b, value, n)
    assert (a.counts, a.count, a.total, a.min, a.max) == (b.counts, b.count, b.total, b.min, b.max)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=60), st.one_of(st.none(), st.integers(0, 4000)),
       st.integers(0, 25))
def test_bitmap_scans_match_the_definition(seqs: list[int], announced: int | None, limit: int) -> None:
    s = StreamState()
    for q in seqs:
        s.add(q)
    s.announced = announced
    expected = s.expected
    assert s.lost == sum(1 for i in range(expected) if i >= len(s.seen) or not s.seen[i])
    gaps = [i for i in range(expected) if i >= len(s.seen) or not s.seen[i]]
    assert s.missing(limit) == gaps[:max(limit, 1)]
