"""Heka stream framing: records, HMAC signing, and resynchronising splitting (spec §2).

A record is ``0x1E | header_len | Header protobuf | 0x1F | message bytes``. `frame` builds one (byte
for byte as Heka's ``client.CreateHekaStream``), `Splitter` cuts a byte stream back into `Record` s
with Heka's exact resynchronisation rule (on a bad header skip one byte and search again), verifies
signed headers, and counts every dropped record by reason instead of dropping silently.

Differences from Heka, on purpose: a header that names a signer but carries no HMAC is rejected
(`unsigned_hmac`), not credited to that signer; offsets reported for corruption are true byte
offsets in the stream.
"""

from __future__ import annotations

import hashlib
import hmac as hmaclib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import DecodeError, FramingError, UsageError
from .message import (
    Message,
    MessagePrefix,
    TailMemo,
    _as_int64,
    _read_varint,
    _varint,
    _varint9,
    _varint_exact,
    decode_message,
    encode_message,
)

RECORD_SEPARATOR = 0x1E
UNIT_SEPARATOR = 0x1F
HEADER_DELIMITER_SIZE = 2
HEADER_FRAMING_SIZE = 3
MAX_HEADER_SIZE = 255
MAX_MESSAGE_SIZE = 64 * 1024  # Heka's default; inclusive
CAT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024  # heka-cat's default -max-message-size
UUID_SIZE = 16

# 0x1E, header length, the message_length tag: for each length of the message_length varint.
_UNSIGNED_PREFIX = {n: bytes((RECORD_SEPARATOR, n + 1, 0x08)) for n in range(1, 6)}

HASH_MD5 = 0
HASH_SHA1 = 1

# Reasons a Splitter drops bytes or records (keys of `Splitter.dropped`).
DROP_CORRUPT = "corrupt"  # bytes between records that are not a valid record (one count per span)
DROP_TOO_BIG = "too_big"  # a header announcing more than max_message_size bytes
DROP_BAD_SIGNATURE = "bad_signature"  # HMAC mismatch or unknown hash function
DROP_UNKNOWN_SIGNER = "unknown_signer"  # no key for "<signer>_<version>"
DROP_UNSIGNED_HMAC = "unsigned_hmac"  # a signer named without an HMAC (Heka accepted these)
DROP_UNDECODABLE = "undecodable"  # framing fine, protobuf message bytes malformed (counted by readers)
DROP_TRUNCATED = "truncated"  # the stream ended inside a record


@dataclass(frozen=True, slots=True)
class Signer:
    """A message signer as in Heka's `MessageSigningConfig`.

    Exactly ``"sha1"`` selects HMAC-SHA1; any other hash name means HMAC-MD5 (Heka's rule).
    """

    name: str
    version: int = 0
    hash: str = "md5"
    key: bytes = b""

    @property
    def hash_function(self) -> int:
        return HASH_SHA1 if self.hash == "sha1" else HASH_MD5

    @property
    def lookup_key(self) -> str:
        """The receiver-side key name, ``"<name>_<version>"``."""
        return f"{self.name}_{self.version}"

    def sign(self, message_bytes: bytes) -> bytes:
        """The HMAC digest of the message bytes (the header is not covered)."""
        algo = hashlib.sha1 if self.hash_function == HASH_SHA1 else hashlib.md5
        return hmaclib.new(self.key, message_bytes, algo).digest()

    @classmethod
    def parse(cls, spec: str) -> Signer:
        """Parse ``name:version:hash:key`` (the key may itself contain colons)."""
        parts = spec.split(":", 3)
        if len(parts) != 4:
            raise UsageError(f"signer {spec!r} is not name:version:hash:key")
        name, version, hash_, key = parts
        try:
            ver = int(version)
        except ValueError:
            raise UsageError(f"signer {spec!r}: version {version!r} is not an integer") from None
        if not 0 <= ver < 2**32:
            raise UsageError(f"signer {spec!r}: version out of range")
        return cls(name, ver, hash_, key.encode())


class Header:
    """The framing header protobuf (spec §1.3). None means "not present"."""

    __slots__ = ("message_length", "hmac_hash_function", "hmac_signer", "hmac_key_version", "hmac")

    def __init__(self, message_length: int = 0, hmac_hash_function: int | None = None,
                 hmac_signer: str | None = None, hmac_key_version: int | None = None,
                 hmac: bytes | None = None) -> None:
        self.message_length = message_length
        self.hmac_hash_function = hmac_hash_function
        self.hmac_signer = hmac_signer
        self.hmac_key_version = hmac_key_version
        self.hmac = hmac

    @property
    def signed(self) -> bool:
        return self.hmac_signer is not None or self.hmac is not None

    def encode(self) -> bytes:
        out = bytearray(b"\x08")
        out += _varint(self.message_length)
        if self.hmac_hash_function is not None:
            out.append(0x18)
            out += _varint(self.hmac_hash_function)
        if self.hmac_signer is not None:
            name = self.hmac_signer.encode("utf-8", "surrogateescape")
            out.append(0x22)
            out += _varint(len(name))
            out += name
        if self.hmac_key_version is not None:
            out.append(0x28)
            out += _varint(self.hmac_key_version & 0xFFFFFFFF)
        if self.hmac is not None:
            out.append(0x32)
            out += _varint(len(self.hmac))
            out += self.hmac
        return bytes(out)

    def __repr__(self) -> str:
        return (f"Header(message_length={self.message_length}, hmac_hash_function={self.hmac_hash_function}, "
                f"hmac_signer={self.hmac_signer!r}, hmac_key_version={self.hmac_key_version}, "
                f"hmac={self.hmac!r})")


def decode_header(data: bytes) -> Header | None:
    """Parse a header protobuf; None when it does not parse (the splitter then resyncs)."""
    h = Header()
    pos = 0
    end = len(data)
    try:
        while pos < end:
            tag, pos = _read_varint(data, pos)
            wt = tag & 7
            num = tag >> 3
            if wt == 0:
                v, pos = _read_varint(data, pos)
                if num == 1:
                    h.message_length = v & 0xFFFFFFFF
                elif num == 3:
                    h.hmac_hash_function = v & 0xFFFFFFFF
                elif num == 5:
                    h.hmac_key_version = v & 0xFFFFFFFF
            elif wt == 2:
                ln, pos = _read_varint(data, pos)
                stop = pos + ln
                if stop > end:
                    return None
                if num == 4:
                    h.hmac_signer = data[pos:stop].decode("utf-8", "surrogateescape")
                elif num == 6:
                    h.hmac = bytes(data[pos:stop])
                pos = stop
            elif wt == 1:
                pos += 8
            elif wt == 5:
                pos += 4
            else:
                return None
    except (IndexError, ValueError):
        return None
    return h if pos == end else None


def frame(msg: Message | bytes, signer: Signer | None = None,
          max_message_size: int = MAX_MESSAGE_SIZE) -> bytes:
    """One framed record for `msg` (a Message or already-serialized message bytes), optionally signed.

    Raises FramingError with Heka's texts when the message or the header is too big.
    """
    body = encode_message(msg) if isinstance(msg, Message) else bytes(msg)
    if len(body) > max_message_size:
        raise FramingError(f"Message too big, requires {len(body)} (MAX_MESSAGE_SIZE = {max_message_size})")
    if signer is None:
        ml = _varint(len(body))
        return b"".join((_UNSIGNED_PREFIX[len(ml)], ml, b"\x1f", body))
    header = Header(
        len(body),
        hmac_hash_function=HASH_SHA1 if signer.hash_function == HASH_SHA1 else None,  # MD5 left out
        hmac_signer=signer.name,
        hmac_key_version=signer.version,
        hmac=signer.sign(body),
    ).encode()
    if len(header) > MAX_HEADER_SIZE:
        raise FramingError(
            f"Message header too big, requires {len(header)} (MAX_HEADER_SIZE = {MAX_HEADER_SIZE})")
    return b"".join((b"\x1e", bytes((len(header),)), header, b"\x1f", body))


class Record:
    """One framed record cut from a stream."""

    __slots__ = ("offset", "raw", "header_len", "_header", "signer", "_message")

    def __init__(self, offset: int, raw: bytes, header_len: int, header: Header | None,
                 signer: str | None) -> None:
        self.offset = offset  # true byte offset of the 0x1E in the stream
        self.raw = raw  # the whole framed record, header and signature included
        self.header_len = header_len
        self._header = header  # None: parsed from raw when asked for
        self.signer = signer  # verified signer name, None when unsigned or not authenticated
        self._message: Message | None = None

    @property
    def header(self) -> Header:
        """The framing header (parsed on first use for plain unsigned records)."""
        if self._header is None:
            self._header = decode_header(self.raw[2:2 + self.header_len]) or Header(
                len(self.raw) - self.header_len - HEADER_FRAMING_SIZE)
        return self._header

    @property
    def message_bytes(self) -> bytes:
        return self.raw[self.header_len + HEADER_FRAMING_SIZE:]

    def __len__(self) -> int:
        return len(self.raw)

    def message(self) -> Message:
        """The decoded message (cached). Raises DecodeError carrying the record's offset."""
        if self._message is None:
            try:
                # Decode in place: no copy of the message bytes out of the record.
                self._message = decode_message(self.raw, self.header_len + HEADER_FRAMING_SIZE)
            except DecodeError as exc:
                raise DecodeError(exc.message, offset=self.offset) from None
        return self._message

    def __repr__(self) -> str:
        return f"Record(offset={self.offset}, len={len(self.raw)}, signer={self.signer!r})"


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


CorruptCallback = Callable[[int, int], None]
# (start, header_len, end, header or None, verified signer or None): see `Splitter.feed_spans`;
# or, from `Splitter.iter_spans` with a claim, (start, RUN, end, the claim's run object, None).
Span = tuple[int, int, int, Any, str | None]
RUN = -1  # the header_len of a span that is a claimed run of records
# claim(buf, pos, n) -> (end, run) or None; ``run.count`` is how many records it took.
RunClaim = Callable[[bytes, int, int], "tuple[int, Any] | None"]


class Splitter:
    """Incremental Heka framing splitter: `feed` bytes, get complete `Record` s back.

    `signers` maps ``"<name>_<version>"`` to key bytes. With `authenticate` (the default) a signed
    record whose signer is unknown, whose HMAC does not match, or that names a signer without an
    HMAC is dropped and counted; `authenticate=False` passes every record through (heka-cat).
    `on_corrupt(offset, nbytes)` is called for every span of garbage skipped (true offsets).
    """

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE, signers: Mapping[str, bytes] | None = None,
                 authenticate: bool = True, on_corrupt: CorruptCallback | None = None,
                 start_offset: int = 0) -> None:
        self.max_message_size = max_message_size
        self.signers = {k: _key_bytes(v) for k, v in (signers or {}).items()}
        self.authenticate = authenticate
        self.on_corrupt = on_corrupt
        self.dropped: Counter[str] = Counter()
        self.records = 0  # records returned by feed (accepted framing)
        self.corrupt_bytes = 0
        self._pending = b""
        self._base = start_offset  # stream offset of _pending[0]
        self._good_end = start_offset  # stream offset where the last record (or the start) ended

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet consumed."""
        return self._base

    @property
    def pending(self) -> int:
        """Bytes buffered while waiting for the rest of a record."""
        return len(self._pending)

    def _corrupt(self, start: int, end: int) -> None:
        n = end - start
        if n <= 0:
            return
        self.dropped[DROP_CORRUPT] += 1
        self.corrupt_bytes += n
        if self.on_corrupt is not None:
            self.on_corrupt(start, n)

    def feed(self, data: bytes) -> list[Record]:
        """Add bytes; return the records now complete (signed ones verified unless disabled)."""
        base = self._base
        buf, spans = self.feed_spans(data)
        return [Record(base + i, buf[i:rend], hlen, header, signer)
                for i, hlen, rend, header, signer in spans]

    def feed_spans(self, data: bytes) -> tuple[bytes, list[Span]]:
        """`feed` without building `Record` objects, for hot paths: returns the buffer the records
        were cut from and one ``(start, header_len, end, header, signer)`` tuple per record, where
        ``buf[start:end]`` is the framed record, its message bytes start at
        ``start + header_len + HEADER_FRAMING_SIZE``, and `header` is None for a plain unsigned
        header (see `Record`). Counting and resynchronisation are exactly `feed`'s."""
        buf, spans = self.iter_spans(data)
        return buf, list(spans)

    def iter_spans(self, data: bytes, claim: RunClaim | None = None) -> tuple[bytes, Iterator[Span]]:
        """`feed_spans` one record at a time: what the caller does with a span (a `TailMemo`
        learning from it, say) happens before the next one is cut. Consume the iterator to its end.

        `claim(buf, pos, n)` is offered every record boundary (a record ends at `pos`, no garbage
        before it); it may take a run of whole plain records from `pos` by returning ``(end, run)``:
        the splitter then yields ``(pos, RUN, end, run, None)`` and counts ``run.count`` records
        (the claim guarantees they are well-framed and within max_message_size; see `RepeatCutter`)."""
        buf = self._pending + data if self._pending else bytes(data)
        return buf, self._spans(buf, claim)

    def _spans(self, buf: bytes, claim: RunClaim | None) -> Iterator[Span]:
        base = self._base
        n = len(buf)
        pos = 0
        find = buf.find
        max_size = self.max_message_size
        while True:
            if claim is not None and pos < n and base + pos == self._good_end:
                got = claim(buf, pos, n)
                if got is not None:
                    rend, run = got
                    self._good_end = base + rend
                    self.records += run.count
                    start, pos = pos, rend
                    yield start, RUN, rend, run, None
                    continue
            # A record right where the last one ended (the usual back-to-back stream) needs no search.
            i = pos if pos < n and buf[pos] == RECORD_SEPARATOR else find(b"\x1e", pos)
            if i < 0:
                pos = n
                break
            if i + 2 > n:
                pos = i
                break
            hlen = buf[i + 1]
            hend = i + 2 + hlen  # index of the 0x1F
            if hend >= n:
                pos = i
                break
            if buf[hend] != UNIT_SEPARATOR:
                pos = i + 1
                continue
            # Unsigned headers are just `08 <length varint>`: read those without building a Header.
            header: Header | None = None
            if hlen == 3 and buf[i + 2] == 0x08 and buf[i + 3] >= 0x80 and buf[i + 4] < 0x80:
                mlen = (buf[i + 3] & 0x7F) | (buf[i + 4] << 7)
            elif hlen == 2 and buf[i + 2] == 0x08 and buf[i + 3] < 0x80:
                mlen = buf[i + 3]
            else:
                header = decode_header(buf[i + 2:hend])
                if header is None:
                    pos = i + 1
                    continue
                mlen = header.message_length
            if mlen > max_size:
                self.dropped[DROP_TOO_BIG] += 1
                pos = i + 1
                continue
            rend = hend + 1 + mlen
            if rend > n:
                pos = i
                break
            if base + i > self._good_end:
                self._corrupt(self._good_end, base + i)
            self._good_end = base + rend
            pos = rend
            signer = None
            if header is not None and self.authenticate and header.signed:
                signer = self._verify(header, buf[hend + 1:rend])
                if signer is None:
                    continue
            self.records += 1
            yield i, hlen, rend, header, signer
        self._pending = buf[pos:]
        self._base = base + pos

    def _verify(self, header: Header, body: bytes) -> str | None:
        """The signer name when the HMAC checks out; otherwise count the drop and return None."""
        if header.hmac is None:
            self.dropped[DROP_UNSIGNED_HMAC] += 1
            return None
        name = header.hmac_signer or ""
        key = self.signers.get(f"{name}_{header.hmac_key_version or 0}")
        if key is None:
            self.dropped[DROP_UNKNOWN_SIGNER] += 1
            return None
        func = header.hmac_hash_function or HASH_MD5
        if func not in (HASH_MD5, HASH_SHA1):
            self.dropped[DROP_BAD_SIGNATURE] += 1
            return None
        digest = hmaclib.new(key, body, hashlib.sha1 if func == HASH_SHA1 else hashlib.md5).digest()
        if not hmaclib.compare_digest(digest, header.hmac):
            self.dropped[DROP_BAD_SIGNATURE] += 1
            return None
        return name

    def finish(self) -> None:
        """End of stream: whatever is still buffered is a truncated record or garbage."""
        if self._pending:
            end = self._base + len(self._pending)
            if self._pending[0] == RECORD_SEPARATOR and len(self._pending) > 1:
                self.dropped[DROP_TRUNCATED] += 1
            self._corrupt(self._good_end, end)
            self._good_end = end
            self._base = end
            self._pending = b""
        elif self._base > self._good_end:
            self._corrupt(self._good_end, self._base)
            self._good_end = self._base

    def flush_garbage(self) -> None:
        """Report garbage consumed so far that is not followed by a record yet (for live tails)."""
        if self._base > self._good_end:
            self._corrupt(self._good_end, self._base)
            self._good_end = self._base

    @property
    def dropped_total(self) -> int:
        """Dropped records (garbage spans count once each)."""
        return sum(self.dropped.values())


class RecordRun:
    """Consecutive plain records whose messages are all `TailMemo` hits of one prefix (cut by
    `RepeatCutter`): record j is ``buf[start + j*record_len:start + (j+1)*record_len]``, its message
    bytes start `body_start` bytes in, and it is ``prefix.message`` plus its trailing field(s) with
    ``values[j]`` (an int, or a pair for a two-field prefix), except that when `stamp_at` is set
    (``(offset in the record, length)`` of the Timestamp varint) each has its own Timestamp."""

    __slots__ = ("prefix", "values", "record_len", "body_start", "count", "stamp_at")

    def __init__(self, prefix: MessagePrefix, values: list[Any], record_len: int, body_start: int,
                 stamp_at: tuple[int, int] | None = None) -> None:
        self.prefix = prefix
        self.values = values
        self.record_len = record_len
        self.body_start = body_start
        self.count = len(values)
        self.stamp_at = stamp_at

    def message(self, buf: bytes, start: int, j: int) -> Message:
        """Record j's message (as `decode_message` gives it), built from the prefix."""
        msg = self.prefix.materialize(self.values[j])
        if self.stamp_at is not None:
            at, length = self.stamp_at
            msg.timestamp = _varint_exact(buf, start + j * self.record_len + at, length)
        return msg


class RepeatCutter:
    """A `Splitter.iter_spans` claim for streams that repeat one message with new trailing counters
    (heka flood: a sequence number, and a send time when it paces its sends): it takes whole runs of
    plain records that are all `memo` hits whose values have the same varint lengths (the last one
    1 to 3 bytes). Every record is checked byte for byte as `TailMemo.match` checks a message (same
    template, same varint rules), but a run costs a prefix comparison or two per record and a few
    C-level column reads, not a split and a match each. It claims only while the memo is hitting,
    so other streams pay one check per record."""

    def __init__(self, memo: TailMemo, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self.memo = memo
        self.max_message_size = max_message_size
        self._prefix: MessagePrefix | None = None
        # By value length(s): a hit's record bytes before its (first) value, and for two fields the
        # second field's bytes before its value.
        self._parts: dict[Any, tuple[bytes, bytes]] = {}

    def __call__(self, buf: bytes, pos: int, n: int) -> tuple[int, RecordRun] | None:
        if not self.memo.hits:  # nothing repeats (yet): neither a cut nor a rebase (saves a call a record)
            return None
        got = self._cut(buf, pos, n)
        if got is None and self.memo.hits and self._rebase(buf, pos, n):
            got = self._cut(buf, pos, n)  # the same messages with a new timestamp (flood's next batch)
        return got

    def _rebase(self, buf: bytes, pos: int, n: int) -> bool:
        """`TailMemo.rebase` on the plain record at `pos`, if it is complete."""
        if pos + 5 > n or buf[pos] != RECORD_SEPARATOR or buf[pos + 2] != 0x08:
            return False
        hlen = buf[pos + 1]
        if hlen == 3 and buf[pos + 3] >= 0x80 and buf[pos + 4] < 0x80:
            mlen = (buf[pos + 3] & 0x7F) | (buf[pos + 4] << 7)
        elif hlen == 2 and buf[pos + 3] < 0x80:
            mlen = buf[pos + 3]
        else:
            return False
        body = pos + hlen + HEADER_FRAMING_SIZE
        if body + mlen > n or buf[body - 1] != UNIT_SEPARATOR or mlen > self.max_message_size:
            return False
        return self.memo.rebase(buf, body, body + mlen)

    def _cut(self, buf: bytes, pos: int, n: int) -> tuple[int, RecordRun] | None:
        memo = self.memo
        if not memo.hits or pos + 6 > n or buf[pos] != RECORD_SEPARATOR or buf[pos + 2] != 0x08:
            return None
        prefix = memo.prefix
        if prefix is None:
            return None
        if prefix is not self._prefix:
            self._prefix = prefix
            self._parts = {}
        hlen = buf[pos + 1]  # a plain header: 08 and a 1- or 2-byte length
        if hlen == 3 and buf[pos + 3] >= 0x80 and buf[pos + 4] < 0x80 and buf[pos + 5] == UNIT_SEPARATOR:
            mlen = (buf[pos + 3] & 0x7F) | (buf[pos + 4] << 7)
        elif hlen == 2 and buf[pos + 3] < 0x80 and buf[pos + 4] == UNIT_SEPARATOR:
            mlen = buf[pos + 3]
        else:
            return None
        if mlen > self.max_message_size:
            return None
        body = pos + hlen + HEADER_FRAMING_SIZE
        if prefix.width == 1:
            nb = mlen - memo.head_size
            if not 0 < nb < 4:
                return None
            parts = self._parts.get(nb)
            if parts is None:
                head = memo.head(nb)
                if head is None:
                    return None
                parts = self._parts[nb] = (buf[pos:body] + head, b"")
            first_len = 0
        else:
            key, h1, h2 = memo.parts()
            q = body + len(key) + 2 + len(h1)  # the first value's length byte
            if q >= n:
                return None
            first_len = buf[q]
            nb = mlen - len(key) - len(h1) - len(h2) - 6 - first_len
            if not 0 < first_len < 11 or not 0 < nb < 4:
                return None
            parts = self._parts.get((first_len, nb))
            if parts is None:
                l1 = len(h1) + 1 + first_len
                l2 = len(h2) + 1 + nb
                if l1 >= 0x80 or l2 >= 0x80:
                    return None
                parts = self._parts[(first_len, nb)] = (
                    buf[pos:body] + key + bytes((0x52, l1)) + h1 + bytes((first_len,)),
                    bytes((0x52, l2)) + h2 + bytes((nb,)))
        front, middle = parts
        at_middle = len(front) + first_len
        size = at_middle + len(middle) + nb
        p = pos
        startswith = buf.startswith
        stamp = memo.stamp_span()
        hs = he = 0
        front_a = front_b = b""
        if stamp is not None:
            # The Timestamp varint may differ between records (flood stamps each batch of sends):
            # where the whole front differs, compare around it and go on with that record's front;
            # the Timestamp is checked below to be one varint of the same length in every record.
            hs = body - pos + stamp[0]
            he = body - pos + stamp[1]
            front_a = front[:hs]
            front_b = front[he:]
        cur = front
        width = len(front)
        while p + size <= n:
            if middle:
                while p + size <= n and startswith(cur, p) and startswith(middle, p + at_middle):
                    p += size
            else:
                while p + size <= n and startswith(cur, p):
                    p += size
            if (stamp is not None and p + size <= n and startswith(front_a, p) and startswith(front_b, p + he)
                    and (not middle or startswith(middle, p + at_middle))):
                cur = buf[p:p + width]  # another Timestamp: go on with it
                p += size
            else:
                break
        if p == pos:
            return None
        if stamp is not None:
            k = _varint_columns_end(buf, pos + hs, p, size, he - hs)
            if k == 0:
                return None
            p = pos + k * size
        firsts = None
        if first_len:  # the first values (send times: 9 bytes), one varint each or the run ends
            at = pos + len(front)
            if first_len == 9:
                firsts = _varints9(buf, at, p, size)
            else:
                firsts = [_varint_exact(buf, i, first_len) for i in range(at, p, size)]
            if None in firsts:
                k = firsts.index(None)
                if k == 0:
                    return None
                firsts = firsts[:k]
                p = pos + k * size
            if max(firsts) >> 63:  # type: ignore[operator]
                firsts = [_as_int64(v) for v in firsts]  # type: ignore[arg-type]
        # The last values: column j of the run holds byte j of every record's last varint.
        cols = [buf[pos + size - nb + j:p:size] for j in range(nb)]
        last = cols[-1]
        if not last.isascii() or not _all_high(cols[:-1]):
            # Some record's value is not one varint of nb bytes: the run ends before the first such.
            k = next(j for j in range(len(last)) if last[j] >= 0x80 or any(c[j] < 0x80 for c in cols[:-1]))
            if k == 0:
                return None
            cols = [c[:k] for c in cols]
            p = pos + k * size
        if nb == 1:
            values: list[Any] = list(cols[0])
        elif nb == 2:
            values = [(a & 0x7F) | (b << 7) for a, b in zip(cols[0], cols[1], strict=True)]
        else:
            values = [(a & 0x7F) | ((b & 0x7F) << 7) | (c << 14) for a, b, c in zip(*cols, strict=True)]
        if firsts is not None:
            values = list(zip(firsts, values, strict=False))  # both cut to the shorter run
            p = pos + len(values) * size
        memo.hits += len(values)
        stamp_at = (hs, he - hs) if stamp is not None else None
        return p, RecordRun(prefix, values, size, hlen + HEADER_FRAMING_SIZE, stamp_at)


def _varint_columns_end(buf: bytes, at: int, stop: int, size: int, length: int) -> int:
    """How many records (of `size` bytes from `at - offset`, up to `stop`) in a row hold one varint
    of exactly `length` bytes at `at + j*size`: read as byte columns, C-level."""
    cols = [buf[at + j:stop:size] for j in range(length)]
    last = cols[-1]
    if last.isascii() and _all_high(cols[:-1]):
        return len(last)
    return next(j for j in range(len(last)) if last[j] >= 0x80 or any(c[j] < 0x80 for c in cols[:-1]))


_LOW_BYTES = bytes(range(0x80))
_LOW7 = bytes(b & 0x7F for b in range(256))  # translate table: drop the continuation bit


def _varints9(buf: bytes, at: int, stop: int, size: int) -> list[int | None]:
    """The 9-byte varints at `at`, `at + size`, ... before `stop` (nanosecond send times), None
    for any that is not exactly one 9-byte varint. Read as byte columns: the high bytes of times
    sent within a few ms are the same in every record, so only the changing low ones are combined
    per record."""
    cols = [buf[at + j:stop:size] for j in range(9)]
    if not cols[8].isascii() or not _all_high(cols[:8]):
        return [_varint9(buf, i) for i in range(at, stop, size)]
    cols = [c.translate(_LOW7) for c in cols]
    k = len(cols[0])
    m = 9  # columns m.. hold the same byte in every record
    while m > 1 and cols[m - 1] == cols[m - 1][:1] * k:
        m -= 1
    high = 0
    for j in range(m, 9):
        high |= cols[j][0] << (7 * j)
    if m == 1:
        return [high | a for a in cols[0]]
    if m == 2:
        return [high | a | b << 7 for a, b in zip(cols[0], cols[1], strict=True)]
    if m == 3:
        return [high | a | b << 7 | c << 14 for a, b, c in zip(cols[0], cols[1], cols[2], strict=True)]
    if m == 4:
        return [high | a | b << 7 | c << 14 | d << 21 for a, b, c, d in zip(*cols[:4], strict=True)]
    return [sum(c << (7 * j) for j, c in enumerate(row)) | high for row in zip(*cols[:m], strict=True)]


def _all_high(cols: list[bytes]) -> bool:
    """Every byte of every column has its high bit set (C-level: min() would box each byte)."""
    joined = b"".join(cols)
    return len(joined.translate(None, _LOW_BYTES)) == len(joined)


def read_stream(fileobj: BinaryIO, *, chunk_size: int = 64 * 1024, splitter: Splitter | None = None,
                **splitter_kwargs: object) -> Iterator[Record]:
    """Iterate the records of a binary file object to EOF (then `finish` the splitter).

    Pass `splitter` to read its counters afterwards, or Splitter keyword arguments to make one.
    """
    sp = splitter if splitter is not None else Splitter(**splitter_kwargs)  # type: ignore[arg-type]
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            break
        yield from sp.feed(chunk)
    sp.finish()


def signers_from_config(entries: object, *, file: str | None = None) -> dict[str, bytes]:
    """Signer keys from a config value: a mapping ``"name_version": key`` or a list of
    ``{name, version, hmac_key}`` tables (Heka's signer table shape)."""
    from .errors import ConfigError

    out: dict[str, bytes] = {}
    if entries is None:
        return out
    if isinstance(entries, Mapping):
        for k, v in entries.items():
            if isinstance(v, Mapping):
                v = v.get("hmac_key", "")
            out[str(k)] = _key_bytes(v)
        return out
    if isinstance(entries, list):
        for i, e in enumerate(entries):
            if not isinstance(e, Mapping) or "name" not in e:
                raise ConfigError(f"signers[{i}] needs name, version and hmac_key", file=file,
                                  field="signers")
            out[f"{e['name']}_{int(e.get('version', 0))}"] = _key_bytes(e.get("hmac_key", ""))
        return out
    raise ConfigError("signers must be a mapping or a list", file=file, field="signers")
