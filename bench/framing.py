"""Benchmark: encode and decode throughput of framed Heka messages, ours vs the protobuf package.

Run from the repo root:  python bench/framing.py [--seconds 1.0] [--repeat 3]

Three message shapes: "tiny" (the spec §2.5 test vector: Type and Timestamp, 16 bytes), "small"
(what heka-inject sends plus two fields, ~165 bytes) and "4KiB" (a 4 KiB payload, same header and
fields). For each it measures, on one core:

- ours encode: `frame(Message)` (protobuf encode + framing header) per message; `encode_message`
  builds Go's bytes with the protobuf package where that gives the same bytes, else in Python
- ours encode, pure Python: `encode_message_py` alone (no framing), the fallback encoder
- ours decode: `Splitter.feed(stream)` + `Record.message()` (framing + protobuf decode to `Message`)
- ours split:  `Splitter.feed(stream)` alone (framing only, messages left undecoded)
- ours check only: `well_formed(body)` (does `decode_message` accept it? what `heka serve --verify`
  does instead of decoding ordinary messages), against `decode_message(body)` in the same run
- pb encode / pb decode: the protobuf package (upb) on the same bytes, as the reference peer:
  `SerializeToString()` of a prebuilt message object, and `ParseFromString()` into a fresh object,
  framing excluded. This is the peer's floor: it stops at protobuf objects.
- pb round trip via Message: what a protobuf-package codec for hekacli would have to do: Message ->
  pb object -> bytes, and bytes -> pb object -> Message.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hekacli.framing import Splitter, frame  # noqa: E402
from hekacli.heka_pb import PBMessage  # noqa: E402
from hekacli.message import (  # noqa: E402
    Field,
    Message,
    ValueType,
    decode_message,
    encode_message,
    encode_message_py,
    well_formed,
)

BATCH = 2000  # messages per timed call


def make_messages() -> dict[str, Message]:
    def base(payload: str) -> Message:
        return Message(
            uuid=bytes(range(16)),
            timestamp=1_700_000_000_123_456_789,
            type="inject.message",
            logger="Inject Client",
            severity=6,
            payload=payload,
            pid=4242,
            hostname="web-01.example.com",
            fields=[
                Field("status", ValueType.INTEGER, "", [200]),
                Field("path", ValueType.STRING, "", ["/index.html"]),
            ],
        )

    return {
        "tiny": Message(type="TEST", timestamp=1416840893000000000),  # the §2.5 test vector, 16 bytes
        "small": base("hello world, this is a short payload"),
        "4KiB": base("x" * 4096),
    }


def to_pb(msg: Message) -> PBMessage:
    p = PBMessage()
    if msg.uuid is not None:
        p.uuid = msg.uuid
    if msg.timestamp is not None:
        p.timestamp = msg.timestamp
    for attr in ("type", "logger", "payload", "env_version", "hostname"):
        v = getattr(msg, attr)
        if v is not None:
            setattr(p, attr, v.encode("utf-8", "surrogateescape"))
    if msg.severity is not None:
        p.severity = msg.severity
    if msg.pid is not None:
        p.pid = msg.pid
    for f in msg.fields:
        pf = p.fields.add(
            name=f.name.encode(), value_type=int(f.value_type), representation=f.representation.encode()
        )
        target = (pf.value_string, pf.value_bytes, pf.value_integer, pf.value_double, pf.value_bool)[
            f.value_type
        ]
        target.extend(v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v for v in f.values)
    return p


def from_pb(p: PBMessage) -> Message:
    def s(name: str) -> str | None:
        return getattr(p, name).decode("utf-8", "surrogateescape") if p.HasField(name) else None

    fields = []
    for pf in p.fields:
        vt = ValueType(pf.value_type)
        src = (pf.value_string, pf.value_bytes, pf.value_integer, pf.value_double, pf.value_bool)[vt]
        vals = [v.decode("utf-8", "surrogateescape") for v in src] if vt == ValueType.STRING else list(src)
        fields.append(
            Field(
                pf.name.decode("utf-8", "surrogateescape"),
                vt,
                pf.representation.decode("utf-8", "surrogateescape"),
                vals,
            )
        )
    return Message(
        uuid=p.uuid if p.HasField("uuid") else None,
        timestamp=p.timestamp if p.HasField("timestamp") else None,
        type=s("type"),
        logger=s("logger"),
        severity=p.severity if p.HasField("severity") else None,
        payload=s("payload"),
        env_version=s("env_version"),
        pid=p.pid if p.HasField("pid") else None,
        hostname=s("hostname"),
        fields=fields,
    )


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items/second over one run of at least `seconds`."""
    n = 0
    start = time.perf_counter()
    while True:
        n += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def run(seconds: float, repeat: int) -> list[dict[str, object]]:
    cases: list[tuple[str, str, Callable[[], int], int]] = []
    for shape, msg in make_messages().items():
        body = encode_message(msg)
        record = frame(msg)
        stream = record * BATCH
        pb_obj = to_pb(msg)
        assert pb_obj.SerializeToString(deterministic=True) == body

        def ours_encode(msg: Message = msg) -> int:
            for _ in range(BATCH):
                frame(msg)
            return BATCH

        def ours_encode_py(msg: Message = msg) -> int:
            for _ in range(BATCH):
                encode_message_py(msg)
            return BATCH

        def ours_decode(stream: bytes = stream) -> int:
            for rec in Splitter().feed(stream):
                rec.message()
            return BATCH

        def ours_split(stream: bytes = stream) -> int:
            return len(Splitter().feed(stream))

        def ours_decode_body(body: bytes = body) -> int:
            for _ in range(BATCH):
                decode_message(body)
            return BATCH

        def ours_check(body: bytes = body) -> int:
            for _ in range(BATCH):
                well_formed(body)
            return BATCH

        def pb_encode(p: PBMessage = pb_obj) -> int:
            for _ in range(BATCH):
                p.SerializeToString()
            return BATCH

        def pb_decode(body: bytes = body) -> int:
            for _ in range(BATCH):
                PBMessage().ParseFromString(body)
            return BATCH

        def pb_encode_msg(msg: Message = msg) -> int:
            for _ in range(BATCH):
                to_pb(msg).SerializeToString()
            return BATCH

        def pb_decode_msg(body: bytes = body) -> int:
            for _ in range(BATCH):
                p = PBMessage()
                p.ParseFromString(body)
                from_pb(p)
            return BATCH

        for name, fn, size in (
            ("ours encode (frame)", ours_encode, len(record)),
            ("ours encode, pure Python", ours_encode_py, len(body)),
            ("ours decode (split+decode)", ours_decode, len(record)),
            ("ours split only", ours_split, len(record)),
            ("ours decode_message only", ours_decode_body, len(body)),
            ("ours check only (well_formed)", ours_check, len(body)),
            ("pb encode (prebuilt object)", pb_encode, len(body)),
            ("pb decode (to pb object)", pb_decode, len(body)),
            ("pb encode via Message", pb_encode_msg, len(body)),
            ("pb decode to Message", pb_decode_msg, len(body)),
        ):
            cases.append((shape, name, fn, size))
    # Rounds over every case, keeping each case's best: a busy machine slows all cases alike.
    best = [0.0] * len(cases)
    for _ in range(repeat):
        for i, (_, _, fn, _) in enumerate(cases):
            best[i] = max(best[i], rate(fn, seconds))
    return [
        {"shape": shape, "bytes": size, "case": name, "msgs_s": r, "mb_s": r * size / 1e6}
        for (shape, name, _, size), r in zip(cases, best, strict=True)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum seconds per measurement")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    args = ap.parse_args()
    import google.protobuf
    from google.protobuf.internal import api_implementation

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# python {platform.python_version()}, protobuf {google.protobuf.__version__} "
        f"({api_implementation.Type()}), nproc {os.cpu_count()}, one core, best of {args.repeat} "
        f"interleaved rounds, load average {load:.1f}"
    )
    rows = run(args.seconds, args.repeat)
    print(f"{'shape':6} {'bytes':>6}  {'case':30} {'msgs/s':>12} {'MB/s':>9}")
    for r in rows:
        print(f"{r['shape']:6} {r['bytes']:>6}  {r['case']:30} {r['msgs_s']:>12,.0f} {r['mb_s']:>9.1f}")
    print("\n# ratios (ours / peer, >1 means ours is faster)")
    for shape in ("tiny", "small", "4KiB"):
        by = {r["case"]: r["msgs_s"] for r in rows if r["shape"] == shape}
        enc, dec = by["ours encode (frame)"], by["ours decode (split+decode)"]
        print(
            f"{shape}: encode vs pb-via-Message {enc / by['pb encode via Message']:.2f}x, "
            f"decode vs pb-to-Message {dec / by['pb decode to Message']:.2f}x, "
            f"encode vs pb-prebuilt {enc / by['pb encode (prebuilt object)']:.2f}x, "
            f"decode vs pb-object {dec / by['pb decode (to pb object)']:.2f}x, "
            f"well_formed vs decode_message "
            f"{by['ours check only (well_formed)'] / by['ours decode_message only']:.2f}x"
        )


if __name__ == "__main__":
    main()
