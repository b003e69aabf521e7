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
from typing import BinaryIO

from .errors import DecodeError, FramingError, UsageError
from .message import Message, _read_varint, _varint, decode_message, encode_message

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
        buf = self._pending + data if self._pending else bytes(data)
        base = self._base
        n = len(buf)
        out: list[Record] = []
        pos = 0
        find = buf.find
        max_size = self.max_message_size
        while True:
            i = find(b"\x1e", pos)
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
            if hlen == 2 and buf[i + 2] == 0x08 and buf[i + 3] < 0x80:
                mlen = buf[i + 3]
            elif hlen == 3 and buf[i + 2] == 0x08 and buf[i + 3] >= 0x80 and buf[i + 4] < 0x80:
                mlen = (buf[i + 3] & 0x7F) | (buf[i + 4] << 7)
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
            start = base + i
            if start > self._good_end:
                self._corrupt(self._good_end, start)
            self._good_end = base + rend
            pos = rend
            signer = None
            if header is not None and self.authenticate and header.signed:
                signer = self._verify(header, buf[hend + 1:rend])
                if signer is None:
                    continue
            self.records += 1
            out.append(Record(start, buf[i:rend], hlen, header, signer))
        self._pending = buf[pos:]
        self._base = base + pos
        return out

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
