"""Delivery verification of flood runs: loss, duplicates, reordering, latency.

Every flood message carries ``flood_run``, ``flood_conn``, ``flood_seq`` and ``flood_sent`` (see
`generator`). Per run and connection the verifier keeps a bitmap of the sequence numbers seen:

- *received*: flood messages with a sequence number that arrived (duplicates included),
- *duplicates*: arrivals of a number already seen,
- *out_of_order*: arrivals of a number lower than the highest seen before it on that connection,
- *lost*: numbers never seen, below the count the sender announced in its ``heka.flood.end``
  message, or (when that marker did not arrive, e.g. over UDP) below the highest number seen;
  `complete` says which,
- latency: receive time minus ``flood_sent`` in an HDR-style histogram (p50/p90/p99/p99.9/max).

`Verifier` is used by `heka serve --verify` (through `VerifyPlugin`, built by `build_serve_plugins`)
and offline by `heka flood verify FILE.heka` (no receive times there, so no latency).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..message import Field, Message, MessagePrefix, ValueType, decode_message
from .generator import END_TYPE
from .histogram import _LINEAR, _SUB, _SUB_BITS, Histogram, bucket_index

MAX_SEQ = 1 << 28  # per connection; the bitmap is one byte per number
_INTEGER = ValueType.INTEGER  # a global: enum member lookup is slow on Python 3.11, and add() is hot


class StreamState:
    """One connection of one run: a growable bitmap of sequence numbers."""

    __slots__ = ("seen", "unique", "received", "duplicates", "out_of_order", "max_seq", "announced")

    def __init__(self) -> None:
        self.seen = bytearray(1024)
        self.unique = 0
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.max_seq = -1
        self.announced: int | None = None  # flood_next_seq from the end marker

    def add(self, seq: int) -> None:
        self.received += 1
        if seq >= len(self.seen):
            self.seen.extend(bytes(max(len(self.seen), seq + 1 - len(self.seen))))
        if self.seen[seq]:
            self.duplicates += 1
        else:
            self.seen[seq] = 1
            self.unique += 1
        if seq < self.max_seq:
            self.out_of_order += 1
        else:
            self.max_seq = seq

    @property
    def expected(self) -> int:
        return self.announced if self.announced is not None else self.max_seq + 1

    @property
    def lost(self) -> int:
        expected = self.expected
        return expected - self.seen.count(1, 0, expected)  # the bitmap holds only 0 and 1

    def missing(self, limit: int = 20) -> list[int]:
        """The first `limit` missing sequence numbers."""
        out: list[int] = []
        limit = max(limit, 1)  # as ever: at least the first one
        expected = self.expected
        seen = self.seen
        stop = min(expected, len(seen))
        i = seen.find(0, 0, stop)  # the gaps inside the bitmap (C search: runs on every summary)
        while i >= 0 and len(out) < limit:
            out.append(i)
            i = seen.find(0, i + 1, stop)
        out.extend(range(stop, min(expected, stop + limit - len(out))))  # numbers past its end
        return out


class RunState:
    """All connections of one run id, plus its latency histogram."""

    def __init__(self) -> None:
        self.streams: dict[int, StreamState] = {}
        self.latency = Histogram()
        self.unsequenced = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def summary(self, run_id: str) -> dict[str, Any]:
        streams = self.streams.values()
        out: dict[str, Any] = {
            "run": run_id,
            "connections": len(self.streams),
            "expected": sum(s.expected for s in streams),
            "received": sum(s.received for s in streams),
            "unique": sum(s.unique for s in streams),
            "lost": sum(s.lost for s in streams),
            "duplicates": sum(s.duplicates for s in streams),
            "out_of_order": sum(s.out_of_order for s in streams),
            "complete": bool(self.streams) and all(s.announced is not None for s in streams),
            "unsequenced": self.unsequenced,
        }
        missing: list[str] = []
        for conn, s in sorted(self.streams.items()):
            missing += [f"{conn}:{n}" for n in s.missing(20 - len(missing))] if len(missing) < 20 else []
        out["missing_sample"] = missing
        lat = self.latency.summary()
        out["latency_ns"] = lat if lat["count"] else None
        return out


def _int_field(msg: Message, name: str) -> int | None:
    for f in msg.fields:
        if f.name == name:
            if f.value_type is ValueType.INTEGER and f.values:
                return int(f.values[0])
            return None
    return None


def _str_field(msg: Message, name: str) -> str | None:
    for f in msg.fields:
        if f.name == name:
            return str(f.values[0]) if f.values else None
    return None


# What `Verifier` reads from a message's fields: (run, conn, seq, sent, next_seq); and which of
# those a one-value integer field of each name sets.
_NO_FIELDS: tuple[Any, ...] = (None, None, None, None, None)
_SLOTS = {"flood_run": 0, "flood_conn": 1, "flood_seq": 2, "flood_sent": 3, "flood_next_seq": 4}


def _flood_fields(fields: Iterable[Field], start: tuple[Any, ...]) -> tuple[Any, ...]:
    """(run, conn, seq, sent, next_seq) after `fields`, starting from `start` (a later field of the
    same name wins; the numbers count only when their field is an integer one)."""
    run, conn, seq, sent, nxt = start
    for f in fields:  # one pass over the fields, this runs for every message
        name = f.name
        if name == "flood_run":
            run = f.values[0] if f.values else None
        elif f.value_type is _INTEGER and f.values:
            if name == "flood_seq":
                seq = f.values[0]
            elif name == "flood_conn":
                conn = f.values[0]
            elif name == "flood_sent":
                sent = f.values[0]
            elif name == "flood_next_seq":
                nxt = f.values[0]
    return run, conn, seq, sent, nxt


def _record_many(hist: Histogram, value: int, n: int) -> None:
    """`hist.record(value)` n times, in one step."""
    if value < 0:
        value = 0
    hist.counts[bucket_index(value)] += n
    hist.count += n
    hist.total += value * n
    if hist.max is None or value > hist.max:
        hist.max = value
    if hist.min is None or value < hist.min:
        hist.min = value


class Verifier:
    """Accumulates flood messages; `summary()` gives per-run results."""

    def __init__(self) -> None:
        self.runs: dict[str, RunState] = {}
        self.other = 0  # messages that are not flood messages
        self._prefix: MessagePrefix | None = None  # the last prefix `add_repeat` saw, and its fields
        self._prefix_base: tuple[Any, ...] = _NO_FIELDS
        self._prefix_slots: tuple[int | None, ...] = ()
        self._prefix_paced = False
        self._prefix_end = False
        self._prefix_state: RunState | None = None
        self._prefix_stream: StreamState | None = None

    def add(self, msg: Message, received_ns: int | None = None) -> None:
        """Account one received message (`received_ns` None: no latency, e.g. offline)."""
        run, conn, seq, sent, nxt = _flood_fields(msg.fields, _NO_FIELDS)
        self._account(run, conn, seq, sent, nxt, msg.type == END_TYPE, received_ns)

    def add_repeat(self, prefix: MessagePrefix, value: Any, received_ns: int | None = None) -> None:
        """`add` for the message `prefix.message` plus its trailing integer field(s) with `value`
        (a `TailMemo` hit), without that message: what the prefix holds is worked out once."""
        self.add_repeats(prefix, [value], received_ns)

    def add_repeats(self, prefix: MessagePrefix, values: list[Any], received_ns: int | None = None) -> None:
        """`add_repeat` for each of `values` in order (one stream's consecutive messages, received
        together): the same counts, with the per-message bookkeeping done once per batch."""
        if prefix is not self._prefix:
            self._load_prefix(prefix)
        stream = self._prefix_stream
        if stream is None:  # not the usual shape: the general accounting, message by message
            slots = self._prefix_slots
            end = self._prefix_end
            for value in values:
                vals = list(self._prefix_base)
                for slot, v in zip(slots, (value,) if len(slots) == 1 else value, strict=True):
                    if slot is not None:
                        vals[slot] = v
                run, conn, seq, sent, nxt = vals
                self._account(run, conn, seq, sent, nxt, end, received_ns)
            return
        # The usual shapes: the prefix names the run and connection; the values are flood_seq, or
        # (flood_sent, flood_seq) when flood paces its sends. `_account` for them, inlined, with
        # StreamState.add on locals (this runs for every message at full rate).
        state = self._prefix_state
        seen = stream.seen
        size = len(seen)
        max_seq = stream.max_seq
        dups = out_of_order = unseq = 0
        paced = self._prefix_paced
        if paced and received_ns is not None:
            # The same loop as below, plus each message's latency as Histogram.record counts it.
            lat = state.latency
            counts = lat.counts
            total = 0
            low = high = None
            for sent, seq in values:
                if seq < 0 or seq >= MAX_SEQ or seq > 2 * max_seq + (1 << 24):
                    unseq += 1
                    continue
                if seq >= size:
                    seen.extend(bytes(max(size, seq + 1 - size)))
                    size = len(seen)
                if seen[seq]:
                    dups += 1
                else:
                    seen[seq] = 1
                if seq < max_seq:
                    out_of_order += 1
                else:
                    max_seq = seq
                v = received_ns - sent
                if v < _LINEAR:
                    if v < 0:
                        v = 0
                    counts[v] += 1
                else:
                    shift = v.bit_length() - (_SUB_BITS + 1)
                    counts[_LINEAR + (shift - 1) * _SUB + ((v >> shift) - _SUB)] += 1
                total += v
                if high is None or v > high:
                    high = v
                if low is None or v < low:
                    low = v
            if high is not None:
                lat.count += len(values) - unseq
                lat.total += total
                if lat.max is None or high > lat.max:
                    lat.max = high
                if lat.min is None or low < lat.min:  # type: ignore[operator]
                    lat.min = low
        else:
            for seq in ([v[1] for v in values] if paced else values):
                if seq < 0 or seq >= MAX_SEQ or seq > 2 * max_seq + (1 << 24):
                    unseq += 1
                    continue
                if seq >= size:
                    seen.extend(bytes(max(size, seq + 1 - size)))
                    size = len(seen)
                if seen[seq]:
                    dups += 1
                else:
                    seen[seq] = 1
                if seq < max_seq:
                    out_of_order += 1
                else:
                    max_seq = seq
        added = len(values) - unseq
        stream.received += added
        stream.duplicates += dups
        stream.unique += added - dups
        stream.out_of_order += out_of_order
        stream.max_seq = max_seq
        state.unsequenced += unseq
        if received_ns is not None and added:
            state.last_ns = received_ns
            if state.first_ns is None:
                state.first_ns = received_ns
            if not paced and self._prefix_base[3] is not None:
                _record_many(state.latency, received_ns - self._prefix_base[3], added)

    def _load_prefix(self, prefix: MessagePrefix) -> None:
        old = self._prefix
        self._prefix = prefix
        if (old is not None and prefix.message.fields is old.message.fields and prefix.names == old.names
                and prefix.message.type == old.message.type):
            return  # the same prefix with another timestamp (`TailMemo.rebase`): nothing else changes
        base = _flood_fields(prefix.message.fields, _NO_FIELDS)
        self._prefix_base = base
        self._prefix_slots = tuple(_SLOTS.get(name) for name in prefix.names)
        self._prefix_end = prefix.message.type == END_TYPE
        self._prefix_stream = None
        self._prefix_paced = self._prefix_slots == (3, 2)
        usual = self._prefix_slots == (2,) or self._prefix_paced
        if usual and base[0] is not None and not self._prefix_end:
            # Every hit of this prefix goes to one stream; make it now, as its first message would.
            state = self.runs.get(base[0])
            if state is None:
                state = self.runs[base[0]] = RunState()
            conn = base[1] or 0
            stream = state.streams.get(conn)
            if stream is None:
                stream = state.streams[conn] = StreamState()
            self._prefix_state = state
            self._prefix_stream = stream

    def _account(self, run: Any, conn: Any, seq: Any, sent: Any, nxt: Any, end: bool,
                 received_ns: int | None) -> None:
        if run is None:
            self.other += 1
            return
        state = self.runs.get(run)
        if state is None:
            state = self.runs[run] = RunState()
        conn = conn or 0
        stream = state.streams.get(conn)
        if stream is None:
            stream = state.streams[conn] = StreamState()
        if end:
            if nxt is not None:
                stream.announced = nxt
            return
        if seq is None or seq < 0 or seq >= MAX_SEQ or seq > 2 * stream.max_seq + (1 << 24):
            # no number, or one no flood run reaches (a bogus field must not make us allocate GBs)
            state.unsequenced += 1
            return
        stream.add(seq)
        if received_ns is not None:
            state.last_ns = received_ns
            if state.first_ns is None:
                state.first_ns = received_ns
            if sent is not None:
                state.latency.record(received_ns - sent)

    def summary(self) -> dict[str, Any]:
        """`{"runs": [...], "other_messages": n}`; runs sorted by id."""
        # Run ids are strings; a crafted message can make one an integer: sort those after, as text.
        runs = sorted(self.runs.items(), key=lambda item: (not isinstance(item[0], str), str(item[0])))
        return {"runs": [state.summary(run) for run, state in runs],
                "other_messages": self.other}

    @property
    def ok(self) -> bool:
        """True when every run is complete with nothing lost."""
        runs = self.summary()["runs"]
        return bool(runs) and all(r["complete"] and r["lost"] == 0 for r in runs)


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines for a verifier summary (one block per run)."""
    lines: list[str] = []
    for r in summary["runs"]:
        state = "complete" if r["complete"] else "no end marker: losses at the tail cannot be seen"
        lines.append(f"run {r['run']}: expected {r['expected']} received {r['received']} lost {r['lost']} "
                     f"duplicates {r['duplicates']} out_of_order {r['out_of_order']} "
                     f"connections {r['connections']} ({state})")
        lat = r["latency_ns"]
        if lat:
            lines.append(f"  latency ms: p50 {_ms(lat['p50'])} p90 {_ms(lat['p90'])} p99 {_ms(lat['p99'])} "
                         f"p99.9 {_ms(lat['p99.9'])} max {_ms(lat['max'])} (n={lat['count']})")
        if r["missing_sample"]:
            lines.append(f"  first missing (conn:seq): {' '.join(r['missing_sample'])}")
    if not summary["runs"]:
        lines.append("no flood messages received")
    if summary["other_messages"]:
        lines.append(f"{summary['other_messages']} non-flood messages")
    return lines


def verify_records(messages: Iterable[Message]) -> Verifier:
    """Offline verification of decoded messages (no latency)."""
    v = Verifier()
    for msg in messages:
        v.add(msg)
    return v


# -- heka serve plugin ------------------------------------------------------------------------
class VerifyPlugin:
    """`heka serve --verify`: verify every flood message routed to it; report on stop.

    Section keys (all optional): ``message_matcher``, ``message_signer``, ``json`` (a path, or "-"
    for stdout, where the JSON summary is written on stop; default: stderr only),
    ``interval`` (seconds between progress lines on stderr; 0 = none).
    """

    def __init__(self, section: dict[str, Any]) -> None:
        self.name = str(section.get("name", "verify"))
        self.message_matcher = section.get("message_matcher")
        self.message_signer = section.get("message_signer")
        self.json_path = section.get("json")
        self.interval = float(section.get("interval", 0) or 0)
        self.verifier = Verifier()
        self.ctx: Any = None
        self._task: Any = None

    async def start(self, ctx: Any) -> None:
        import asyncio

        self.ctx = ctx
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._progress())

    async def _progress(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.interval)
            for line in summary_lines(self.verifier.summary()):
                self._log(line)

    def process(self, delivery: Any) -> None:
        prefix = getattr(delivery, "prefix", None)
        if prefix is not None:  # a repeated message: verified from its prefix, not decoded
            self.verifier.add_repeat(prefix, delivery.tail, delivery.received_ns or time.time_ns())
        else:
            self.verifier.add(delivery.message, delivery.received_ns or time.time_ns())

    def process_raw(self, raw: bytes, received_ns: int) -> None:
        """`process` for a well-formed message given as its bytes (see `Router.route_raw`): one
        without a ``flood_run`` field is counted as a non-flood message without decoding it (no
        field can have that name unless its bytes are in the message); the rest are decoded."""
        if b"flood_run" in raw:
            self.verifier.add(decode_message(raw), received_ns or time.time_ns())
        else:
            self.verifier.other += 1

    def process_repeats(self, prefix: MessagePrefix, tails: list[Any], received_ns: int) -> None:
        """Consecutive messages that are `prefix.message` plus its trailing integer fields with
        `tails` (see `Router.route_repeats`; the verifier reads no Timestamp), verified without
        building them."""
        self.verifier.add_repeats(prefix, tails, received_ns or time.time_ns())

    def _log(self, text: str) -> None:
        if self.ctx is not None:
            self.ctx.log(f"verify: {text}")
        else:
            sys.stderr.write(f"verify: {text}\n")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        summary = self.verifier.summary()
        for line in summary_lines(summary):
            self._log(line)
        if self.json_path:
            text = json.dumps(summary, sort_keys=False)
            if self.json_path == "-":
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
            else:
                Path(self.json_path).write_text(text + "\n")

    def stats(self) -> dict[str, Any]:
        return self.verifier.summary()

    def failed(self) -> bool:
        """True when a run lost messages or never finished: `heka serve --verify` then exits 1."""
        return not self.verifier.ok


def build_serve_plugins(section: Any, ctx: Any) -> list[VerifyPlugin]:
    """Factory for the `verify:` section of the serve config (`true`, `{}` or a mapping of options)."""
    from ..errors import ConfigError

    if section is None or section is False:
        return []
    if section is True:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError("verify: expected true or a mapping", field="verify")
    unknown = set(section) - {"name", "message_matcher", "message_signer", "json", "interval"}
    if unknown:
        raise ConfigError(f"unknown verify setting(s): {', '.join(sorted(unknown))}", field="verify")
    return [VerifyPlugin(section)]
