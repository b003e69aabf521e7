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

from ..message import Message, ValueType
from .generator import END_TYPE
from .histogram import Histogram

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
        return expected - sum(self.seen[:expected])

    def missing(self, limit: int = 20) -> list[int]:
        """The first `limit` missing sequence numbers."""
        out = []
        for i in range(self.expected):
            if i >= len(self.seen) or not self.seen[i]:
                out.append(i)
                if len(out) >= limit:
                    break
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


class Verifier:
    """Accumulates flood messages; `summary()` gives per-run results."""

    def __init__(self) -> None:
        self.runs: dict[str, RunState] = {}
        self.other = 0  # messages that are not flood messages

    def add(self, msg: Message, received_ns: int | None = None) -> None:
        """Account one received message (`received_ns` None: no latency, e.g. offline)."""
        run = seq = conn = sent = nxt = None
        for f in msg.fields:  # one pass over the fields, this runs for every message
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
        if msg.type == END_TYPE:
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
        return {"runs": [state.summary(run) for run, state in sorted(self.runs.items())],
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
        self.verifier.add(delivery.message, delivery.received_ns or time.time_ns())

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
