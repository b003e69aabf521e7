"""Flood messages: heka-flood's fixed and variable message sets, stamped for verification.

As heka-flood, the messages are built once (fixed mode: one message and its signed copy; variable
mode: 64 of each plus one oversized) and reused. Unlike heka-flood, every send carries three fields
a receiver can check (`heka serve --verify`):

- ``flood_run`` (string): the run id, shared by every message of one `heka flood` run,
- ``flood_conn`` (integer): which connection of the run sent it (one sequence space per connection;
  left out for connection 0),
- ``flood_seq`` (integer): 0, 1, 2, ... per connection, over the sends that should arrive,
- ``flood_sent`` (integer, representation "ns"): the send time, also written as the Timestamp.

To make that cheap enough for hundreds of thousands of sends a second, the message template is
encoded once and only the timestamp and those fields are encoded per send (protobuf allows a message
to be built by concatenating its entries).

Corrupt, signed and oversized sends are spaced as heka-flood spaced them: with p = pct/100 and s the
sends so far, a kind is due when floor(s·p) changes, so the first send is never special. Corruption
differs on purpose: heka-flood overwrote a random byte anywhere, so a "corrupt" message could arrive
altered or take its neighbour with it. Here the corrupt byte is the first byte of the message, set to
a protobuf tag with the invalid wire type 7: the framing stays intact and the receiver rejects exactly
that one record as undecodable, so receivers can be checked against exact counts. Corrupt and
oversized sends carry no ``flood_seq`` (they must not arrive).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import random
import socket
import time
from dataclasses import dataclass

from ..message import Field, Message, ValueType, encode_message

MAX_MESSAGE_SIZE = 64 * 1024
END_TYPE = "heka.flood.end"

KIND_PLAIN = "plain"
KIND_SIGNED = "signed"
KIND_CORRUPT = "corrupt"
KIND_OVERSIZED = "oversized"
KINDS = (KIND_PLAIN, KIND_SIGNED, KIND_CORRUPT, KIND_OVERSIZED)

# Protobuf tags with wire type 7 (invalid): any protobuf decoder must reject a message starting so.
_INVALID_TAGS = bytes((k << 3) | 7 for k in range(16))


def varint(v: int) -> bytes:
    """Unsigned protobuf varint."""
    if v < 0x80:
        return bytes((v,))
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _ld(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + varint(len(data)) + data


def _field_prefix(name: str, vtype: ValueType, representation: str = "") -> bytes:
    """Field entries up to (not including) the values, as Go's NewField writes them."""
    return _ld(0x0A, name.encode()) + b"\x10" + varint(int(vtype)) + _ld(0x1A, representation.encode())


def encode_string_field(name: str, value: str, representation: str = "") -> bytes:
    """A whole message entry (tag 10) for a one-value string field."""
    return _ld(0x52, _field_prefix(name, ValueType.STRING, representation) + _ld(0x22, value.encode()))


class IntFieldEncoder:
    """Encodes a one-value integer field as a message entry, fast (prefix computed once)."""

    __slots__ = ("_prefix",)

    def __init__(self, name: str, representation: str = "") -> None:
        self._prefix = _field_prefix(name, ValueType.INTEGER, representation) + b"\x32"

    def __call__(self, value: int) -> bytes:
        if 0x100000000000000 <= value < 0x8000000000000000:  # nanosecond times: 9 bytes, unrolled
            v = bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, ((value >> 14) & 0x7F) | 0x80,
                       ((value >> 21) & 0x7F) | 0x80, ((value >> 28) & 0x7F) | 0x80,
                       ((value >> 35) & 0x7F) | 0x80, ((value >> 42) & 0x7F) | 0x80,
                       ((value >> 49) & 0x7F) | 0x80, value >> 56))
        else:
            v = varint(value)
        body = self._prefix + bytes((len(v),)) + v
        return b"\x52" + varint(len(body)) + body


@dataclass(frozen=True, slots=True)
class SignerConfig:
    """heka-flood's [signer] table: name, hmac_hash ("sha1" or anything else = MD5), key, version."""

    name: str = ""
    hmac_hash: str = "md5"
    hmac_key: str = ""
    version: int = 0

    @property
    def is_sha1(self) -> bool:
        return self.hmac_hash == "sha1"  # exactly "sha1", as Heka; anything else is MD5


class Framer:
    """Heka stream framing for one signer (or none), hand-rolled for speed; matches `framing.frame`."""

    def __init__(self, signer: SignerConfig | None = None) -> None:
        self.signer = signer
        if signer is not None:
            self._digest = hashlib.sha1 if signer.is_sha1 else hashlib.md5
            self._key = signer.hmac_key.encode()
            self._hash_entry = b"\x18\x01" if signer.is_sha1 else b""
            self._sign_entries = _ld(0x22, signer.name.encode()) + b"\x28" + varint(signer.version)
            self._mac_entry = b"\x32\x14" if signer.is_sha1 else b"\x32\x10"

    def frame(self, body: bytes) -> bytes:
        """0x1E, header length, header, 0x1F, message (no size check: oversized sends need none)."""
        if self.signer is None:
            header = b"\x08" + varint(len(body))
        else:
            mac = hmac.new(self._key, body, self._digest).digest()
            header = (b"\x08" + varint(len(body)) + self._hash_entry + self._sign_entries
                      + self._mac_entry + mac)
        return b"\x1e" + bytes((len(header),)) + header + b"\x1f" + body


class Due:
    """heka-flood's even spacing: due when floor(sent·p) changes from its previous value."""

    __slots__ = ("p", "prev")

    def __init__(self, percentage: float) -> None:
        self.p = percentage / 100.0
        self.prev = 0

    def check(self, sent: int) -> bool:
        """Advance to `sent` sends so far; True when this send is due."""
        if self.p <= 0:
            return False
        cur = math.floor(sent * self.p)
        if cur != self.prev:
            self.prev = cur
            return True
        return False


def _varints(start: int, count: int, length: int) -> list[bytes]:
    """The varints of start..start+count-1, all `length` bytes long (vectorised for 1-3 bytes)."""
    stop = start + count
    if length == 1:
        return [bytes((v,)) for v in range(start, stop)]
    if length == 2:
        return [bytes(((v & 0x7F) | 0x80, v >> 7)) for v in range(start, stop)]
    if length == 3:
        return [bytes(((v & 0x7F) | 0x80, ((v >> 7) & 0x7F) | 0x80, v >> 14)) for v in range(start, stop)]
    return [varint(v) for v in range(start, stop)]


def random_payload(rng: random.Random, n: int, ascii_only: bool) -> bytes:
    """`n` random bytes, 32..125 when ascii_only (heka-flood's byte%94+32)."""
    raw = rng.randbytes(n)
    if ascii_only:
        return bytes(b % 94 + 32 for b in raw)
    return raw


def _str(data: bytes) -> str:
    # Strings are not checked for UTF-8 on the wire; surrogateescape keeps the bytes exact.
    return data.decode("utf-8", "surrogateescape")


@dataclass(slots=True)
class Template:
    """One prebuilt message: encoded bytes before and after the timestamp entry."""

    head: bytes  # the uuid entry
    rest: bytes  # everything after the timestamp, before the flood fields


def _template(msg: Message) -> Template:
    msg.timestamp = None
    data = encode_message(msg)
    cut = 2 + len(msg.uuid or b"") if msg.uuid is not None else 0
    return Template(data[:cut], data[cut:])


def build_templates(*, variable: bool, static_size: int = 1000, ascii_only: bool = False,
                    max_message_size: int = MAX_MESSAGE_SIZE,
                    rng: random.Random | None = None) -> tuple[list[Template], Template | None]:
    """heka-flood's message set: (messages, oversized or None). Fixed mode has one message."""
    rng = rng or random.Random()
    host = socket.gethostname()
    pid = os.getpid()
    if not variable:
        size = static_size or 1000
        payload = f"hekabench: {host} - ".encode() + random_payload(rng, size, ascii_only)
        msg = Message(uuid=rng.randbytes(16), type="hekabench", severity=6, env_version="0.8", pid=pid,
                      hostname=host, payload=_str(payload))
        return [_template(msg)], None
    out = []
    oversized = None
    for i in range(65):
        extra = max_message_size if i == 64 else 0
        payload = f"hekabench: {host} - ".encode() + random_payload(rng, (rng.randrange(3)) * 1024 + extra,
                                                                    ascii_only)
        msg = Message(uuid=rng.randbytes(16), type="hekabench", logger="flood", env_version="0.2", pid=pid,
                      hostname=host, payload=_str(payload))
        for c in range(rng.randrange(5)):
            msg.fields.append(Field(f"string{c}", ValueType.STRING, "", [f"value{c}"]))
        for c in range(rng.randrange(5)):
            msg.fields.append(Field(f"bytes{c}", ValueType.BYTES, "", [bytes([c]) * 8]))
        for c in range(rng.randrange(5)):
            msg.fields.append(Field(f"int{c}", ValueType.INTEGER, "", [c]))
        for c in range(rng.randrange(5)):
            msg.fields.append(Field(f"double{c}", ValueType.DOUBLE, "", [float(c)]))
        for c in range(rng.randrange(5)):
            msg.fields.append(Field(f"bool{c}", ValueType.BOOL, "", [True]))
        msg.fields.append(Field("filler", ValueType.BYTES, "", [bytes(rng.randrange(60) * 1024)]))
        if i == 64:
            oversized = _template(msg)
        else:
            out.append(_template(msg))
    return out, oversized


@dataclass
class KindCounts:
    """How many sends of each kind a generator produced."""

    plain: int = 0
    signed: int = 0
    corrupt: int = 0
    oversized: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"plain": self.plain, "signed": self.signed, "corrupt": self.corrupt,
                "oversized": self.oversized}


class FloodGenerator:
    """Produces the framed bytes of each send for one connection (one sequence space)."""

    def __init__(self, templates: list[Template], oversized: Template | None, *, run_id: str, conn: int = 0,
                 signer: SignerConfig | None = None, corrupt_percentage: float = 0,
                 signed_percentage: float = 0, oversized_percentage: float = 0,
                 rng: random.Random | None = None) -> None:
        if oversized_percentage > 0 and oversized is None:
            from ..errors import ConfigError

            # heka-flood panicked here; say why instead.
            raise ConfigError("oversized_percentage needs variable_size_messages = true "
                              "(fixed mode has no oversized message)", field="oversized_percentage")
        self.templates = templates
        self.oversized = oversized
        self.rng = rng or random.Random()
        self.plain_framer = Framer(None)
        # heka-flood always had a signed copy: a missing [signer] means name "", MD5, empty key.
        self.signed_framer = Framer(signer or SignerConfig())
        # flood_conn is left out for connection 0 (the verifier's default): one field less to decode.
        self._ident = encode_string_field("flood_run", run_id) + (IntFieldEncoder("flood_conn")(conn)
                                                                  if conn else b"")
        self._seq = IntFieldEncoder("flood_seq")
        self._seq_prefix = _field_prefix("flood_seq", ValueType.INTEGER) + b"\x32"
        self._head_cache: dict[int, dict[int, tuple[bytes, bytes]]] = {}
        self._sent_field = IntFieldEncoder("flood_sent", "ns")
        self._corrupt = Due(corrupt_percentage)
        self._signed = Due(signed_percentage)
        self._oversized = Due(oversized_percentage)
        self.sends = 0  # every send, whatever its kind (heka-flood's s)
        self.next_seq = 0  # sequence numbers handed out (sends that should arrive)
        self.counts = KindCounts()
        self.run_id = run_id
        self.conn = conn

    def next(self, send_ns: int) -> tuple[bytes, str]:
        """The framed bytes of the next send and its kind."""
        s = self.sends
        self.sends = s + 1
        corrupt = self._corrupt.check(s)
        signed = self._signed.check(s)
        oversized = self._oversized.check(s)
        ts = b"\x10" + varint(send_ns)
        stamp = self._ident + self._sent_field(send_ns)
        if corrupt:
            t = self.templates[self.rng.randrange(len(self.templates))] if len(self.templates) > 1 \
                else self.templates[0]
            body = t.head + ts + t.rest + stamp
            data = bytearray(self.plain_framer.frame(body))
            data[len(data) - len(body)] = self.rng.choice(_INVALID_TAGS)
            self.counts.corrupt += 1
            return bytes(data), KIND_CORRUPT
        if oversized and not signed:
            t = self.oversized
            assert t is not None
            self.counts.oversized += 1
            return self.plain_framer.frame(t.head + ts + t.rest + stamp), KIND_OVERSIZED
        t = self.templates[self.rng.randrange(len(self.templates))] if len(self.templates) > 1 \
            else self.templates[0]
        body = t.head + ts + t.rest + stamp + self._seq(self.next_seq)
        self.next_seq += 1
        if signed:
            self.counts.signed += 1
            return self.signed_framer.frame(body), KIND_SIGNED
        self.counts.plain += 1
        return self.plain_framer.frame(body), KIND_PLAIN

    @property
    def simple(self) -> bool:
        """True when every send is a plain copy of the one template (the fast path applies)."""
        return (len(self.templates) == 1 and self._corrupt.p <= 0 and self._signed.p <= 0
                and self._oversized.p <= 0)

    def batch(self, n: int, stamp_ns: int, interval_ns: int = 0) -> bytes:
        """`n` consecutive sends as one byte string; send i is stamped stamp_ns + i·interval_ns.

        The common case (one template, no special sends) encodes only the sequence number (and the
        send time, when it varies) per message; everything else goes through `next`.
        """
        if not self.simple:
            return b"".join([self.next(stamp_ns + i * interval_ns)[0] for i in range(n)])
        t = self.templates[0]
        const = t.head + b"\x10" + varint(stamp_ns) + t.rest + self._ident
        if not interval_ns:
            const += self._sent_field(stamp_ns)
        heads = self._heads(len(const) + (len(self._sent_field(stamp_ns)) if interval_ns else 0))
        out: list[bytes] = []
        seq = self.next_seq
        i = 0
        # Runs of sequence numbers with the same varint length share every byte between two of them
        # (frame head, template, fields...), so each run is one `bytes.join` with that as separator.
        while i < n:
            length = len(varint(seq))
            run = min(n - i, (1 << (7 * length)) - seq)
            frame_head, field_head = heads[length]
            vs = _varints(seq, run, length)
            if interval_ns:
                sep = frame_head + const
                times = self._time_fields(stamp_ns + i * interval_ns, run, interval_ns)
                vs = [tf + field_head + v for tf, v in zip(times, vs, strict=True)]
            else:
                sep = frame_head + const + field_head
            out.append(sep)
            out.append(sep.join(vs))
            seq += run
            i += run
        self.sends += n
        self.counts.plain += n
        self.next_seq = seq
        return b"".join(out)

    def _time_fields(self, start: int, count: int, step: int) -> list[bytes]:
        """`flood_sent` entries for start, start+step, ... (ns times: 9-byte varints).

        Only the low 28 bits (the first 4 varint bytes) change between neighbours; the other 5 bytes
        are computed once per 2^28 ns (268 ms) instead of per message."""
        last = start + (count - 1) * step
        if not (1 << 56 <= start and last < 1 << 63):
            return [self._sent_field(start + k * step) for k in range(count)]
        prefix = self._sent_field(1 << 56)[:-9]  # the entry up to the 9 value bytes
        out: list[bytes] = []
        k = 0
        mask = (1 << 28) - 1
        while k < count:
            t = start + k * step
            hi, lo = t >> 28, t & mask
            hi5 = bytes(((hi & 0x7F) | 0x80, ((hi >> 7) & 0x7F) | 0x80, ((hi >> 14) & 0x7F) | 0x80,
                         ((hi >> 21) & 0x7F) | 0x80, hi >> 28))
            m = min(count - k, (mask - lo) // step + 1)
            out += [prefix + bytes(((x & 0x7F) | 0x80, ((x >> 7) & 0x7F) | 0x80, ((x >> 14) & 0x7F) | 0x80,
                                    ((x >> 21) & 0x7F) | 0x80)) + hi5
                    for x in range(lo, lo + m * step, step)]
            k += m
        return out

    def _heads(self, base_len: int) -> dict[int, tuple[bytes, bytes]]:
        """Per varint length of the sequence number: (frame head, seq field head) for a body of base_len."""
        cached = self._head_cache.get(base_len)
        if cached is None:
            cached = {}
            for n in range(1, 11):
                inner = len(self._seq_prefix) + 1 + n
                field_head = b"\x52" + varint(inner) + self._seq_prefix + bytes((n,))
                body_len = base_len + len(field_head) + n
                header = b"\x08" + varint(body_len)
                cached[n] = (b"\x1e" + bytes((len(header),)) + header + b"\x1f", field_head)
            self._head_cache[base_len] = cached
        return cached

    def end_marker(self, send_ns: int | None = None) -> bytes:
        """A `heka.flood.end` message telling a verifier how many sequence numbers were sent."""
        msg = Message.new(type=END_TYPE, logger="flood", hostname=socket.gethostname(), pid=os.getpid())
        if send_ns is not None:
            msg.timestamp = send_ns
        body = encode_message(msg) + self._ident + self._sent_field(msg.timestamp or time.time_ns()) \
            + IntFieldEncoder("flood_next_seq")(self.next_seq)
        return self.plain_framer.frame(body)


def new_run_id() -> str:
    """A short random run id (12 hex digits)."""
    return os.urandom(6).hex()
