"""Stream framing, signing and resynchronisation (spec §2), with Heka's own test vectors."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import random

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st

from hekacli.errors import DecodeError, FramingError
from hekacli.framing import (
    MAX_MESSAGE_SIZE,
    Header,
    Signer,
    Splitter,
    decode_header,
    frame,
    read_stream,
)
from hekacli.message import Message, encode_message

TEST_MSG = Message(type="TEST", timestamp=1416840893000000000)
UNSIGNED = bytes.fromhex("1e 02 08 10 1f 10 80 c4 8c 94 91 a9 e8 d4 13 1a 04 54 45 53 54")
SIGNED = bytes.fromhex(
    "1e 1c 08 10 22 04 74 65 73 74 28 00 32 10 78 35 7e 36 35 38 3f 9f bc 75 98 46 1b 05 ef 2d 1f"
) + bytes.fromhex("10 80 c4 8c 94 91 a9 e8 d4 13 1a 04 54 45 53 54")


# -- §2.5 byte vectors (client/encoders_test.go) --------------------------------------------------


def test_unsigned_vector() -> None:
    assert frame(TEST_MSG) == UNSIGNED


def test_signed_vector_md5_empty_key() -> None:
    assert frame(TEST_MSG, Signer("test", 0, "", b"")) == SIGNED
    # The HMAC covers the message bytes only.
    digest = hmac.new(b"", SIGNED[-16:], hashlib.md5).hexdigest()
    assert digest == "78357e3635383f9fbc7598461b05ef2d"


def test_any_hash_but_exactly_sha1_is_md5_and_leaves_the_hash_field_out() -> None:
    for name in ("md5", "", "MD5", "sha256", "SHA1"):
        rec = frame(TEST_MSG, Signer("test", 0, name, b"k"))
        header = decode_header(rec[2 : 2 + rec[1]])
        assert header is not None and header.hmac_hash_function is None
        assert header.hmac == hmac.new(b"k", encode_message(TEST_MSG), hashlib.md5).digest()
    rec = frame(TEST_MSG, Signer("test", 0, "sha1", b"k"))
    assert rec[2 : 2 + rec[1]].count(b"\x18\x01") == 1
    header = decode_header(rec[2 : 2 + rec[1]])
    assert (
        header is not None and header.hmac == hmac.new(b"k", encode_message(TEST_MSG), hashlib.sha1).digest()
    )


def test_message_too_big_text() -> None:
    msg = Message(type="TEST", timestamp=1416840893000000000, payload="x" * 65536)
    with pytest.raises(FramingError) as exc:
        frame(msg)
    assert str(exc.value) == "Message too big, requires 65556 (MAX_MESSAGE_SIZE = 65536)"


def test_header_too_big_text() -> None:
    with pytest.raises(FramingError) as exc:
        frame(TEST_MSG, Signer("x" * 255, 0, "md5", b""))
    assert str(exc.value) == "Message header too big, requires 280 (MAX_HEADER_SIZE = 255)"


def test_max_message_size_is_inclusive() -> None:
    body = b"\x32" + bytes([0x80 | 0x7A, 0x7F, 0x03])  # payload, length 65530 as a varint (3 bytes)
    body += b"x" * (MAX_MESSAGE_SIZE - len(body))
    assert len(body) == MAX_MESSAGE_SIZE
    rec = frame(body)
    sp = Splitter()
    assert [r.raw for r in sp.feed(rec)] == [rec]
    over = frame(body + b"x", max_message_size=MAX_MESSAGE_SIZE + 1)
    sp = Splitter()
    assert sp.feed(over) == []
    sp.finish()
    assert sp.dropped["too_big"] == 1


# -- splitting and resynchronisation (pipeline/splitters_test.go) ----------------------------------


def _rec67(i: int) -> bytes:
    # A 67-byte record with header 08 3e: a 62-byte message.
    body = b"\x32\x3c" + (b"message %02d " % i).ljust(60, b".")
    assert len(body) == 62
    rec = b"\x1e\x02\x08\x3e\x1f" + body
    assert len(rec) == 67
    return rec


def _split(data: bytes, **kw: object) -> tuple[list, list[tuple[int, int]], Splitter]:
    corrupt: list[tuple[int, int]] = []
    sp = Splitter(on_corrupt=lambda off, n: corrupt.append((off, n)), **kw)  # type: ignore[arg-type]
    recs = sp.feed(data)
    sp.finish()
    return recs, corrupt, sp


def test_bogus_between_records_resyncs() -> None:
    # Heka consumed 67, 67, 72 (5 garbage + record), then 5 trailing garbage bytes.
    data = _rec67(1) + _rec67(2) + b"BOGUS" + _rec67(3) + b"BOGUS"
    recs, corrupt, sp = _split(data)
    assert [r.offset for r in recs] == [0, 67, 139]
    assert all(len(r) == 67 for r in recs)
    assert corrupt == [(134, 5), (206, 5)]
    assert sp.dropped == {"corrupt": 2}
    assert sp.corrupt_bytes == 10


def test_invalid_header_skips_one_byte_only() -> None:
    # `1e 02 08 3e ff` (no unit separator) then a good record: n=72, record at offset 5.
    data = bytes.fromhex("1e 02 08 3e ff") + _rec67(1)
    recs, corrupt, _ = _split(data)
    assert [r.offset for r in recs] == [5]
    assert corrupt == [(0, 5)]


def test_record_inside_a_bad_header_span_is_found() -> None:
    # A bogus header claims 200 header bytes; skipping one byte finds the real record inside.
    data = b"\x1e\xc8" + _rec67(1) + b"\x00" * 140
    recs, corrupt, _ = _split(data)
    assert [r.offset for r in recs] == [2]
    assert corrupt == [(0, 2), (69, 140)]


def test_byte_by_byte_feeding_gives_the_same_records() -> None:
    data = (
        b"xx"
        + _rec67(1)
        + b"\x1e\x02\x08"
        + _rec67(2)
        + frame(TEST_MSG, Signer("test", 1, "md5", b"testkey"))
    )
    whole, corrupt_whole, _ = _split(data, signers={"test_1": b"testkey"})
    corrupt: list[tuple[int, int]] = []
    sp = Splitter(signers={"test_1": b"testkey"}, on_corrupt=lambda o, n: corrupt.append((o, n)))
    pieces = []
    for i in range(len(data)):
        pieces += sp.feed(data[i : i + 1])
    sp.finish()
    assert [(r.offset, r.raw, r.signer) for r in pieces] == [(r.offset, r.raw, r.signer) for r in whole]
    assert corrupt == corrupt_whole == [(0, 2), (69, 3)]
    assert whole[-1].signer == "test"


def test_truncated_record_at_eof_is_counted() -> None:
    recs, corrupt, sp = _split(_rec67(1) + _rec67(2)[:30])
    assert len(recs) == 1
    assert sp.dropped == {"truncated": 1, "corrupt": 1}
    assert corrupt == [(67, 30)]


@pytest.mark.parametrize("name,count", [("protobuf.log", 7), ("multi.dat", 50)])
def test_sample_files_split_completely(name: str, count: int) -> None:
    with open(VECTORS / "heka" / name, "rb") as fh:
        sp = Splitter()
        records = list(read_stream(fh, chunk_size=4096, splitter=sp))
    assert len(records) == count
    assert sp.dropped_total == 0
    assert sum(len(r) for r in records) == (VECTORS / "heka" / name).stat().st_size


# -- verification on receive ----------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["md5", "sha1"])
def test_signed_testkey_version_1_accepted(hash_name: str) -> None:
    rec = frame(TEST_MSG, Signer("test", 1, hash_name, b"testkey"))
    recs, _, sp = _split(rec, signers={"test_1": b"testkey"})
    assert [r.signer for r in recs] == ["test"]
    assert recs[0].message() == TEST_MSG


def test_version_11_is_an_unknown_signer() -> None:
    rec = frame(TEST_MSG, Signer("test", 11, "md5", b"testkey"))
    recs, _, sp = _split(rec, signers={"test_1": b"testkey"})
    assert recs == []
    assert sp.dropped == {"unknown_signer": 1}


def test_wrong_key_is_a_bad_signature() -> None:
    rec = frame(TEST_MSG, Signer("test", 1, "sha1", b"wrong"))
    recs, _, sp = _split(rec, signers={"test_1": b"testkey"})
    assert recs == [] and sp.dropped == {"bad_signature": 1}


def test_signer_without_hmac_is_rejected_unlike_heka() -> None:
    body = encode_message(TEST_MSG)
    header = Header(len(body), hmac_signer="test", hmac_key_version=1).encode()
    # Heka would accept this and credit it to "test" without any check (spec §10.2).
    rec = b"\x1e" + bytes([len(header)]) + header + b"\x1f" + body
    recs, _, sp = _split(rec, signers={"test_1": b"testkey"})
    assert recs == [] and sp.dropped == {"unsigned_hmac": 1}


def test_unsigned_records_pass_and_authentication_can_be_skipped() -> None:
    signed = frame(TEST_MSG, Signer("test", 1, "md5", b"other"))
    recs, _, sp = _split(UNSIGNED + signed, authenticate=False)
    assert len(recs) == 2 and all(r.signer is None for r in recs)
    assert sp.dropped_total == 0


def test_signer_parse() -> None:
    s = Signer.parse("ops:3:sha1:se:cret")
    assert (s.name, s.version, s.hash, s.key) == ("ops", 3, "sha1", b"se:cret")
    assert s.lookup_key == "ops_3"


# -- robustness ------------------------------------------------------------------------------------


def test_one_megabyte_of_random_bytes() -> None:
    data = random.Random(1234).randbytes(1 << 20)
    sp = Splitter()
    records = list(read_stream(io.BytesIO(data), splitter=sp))
    for rec in records:
        try:
            rec.message()
        except DecodeError:
            pass
    # Every byte is accounted for: in a record, or in a reported corrupt span.
    assert sp.corrupt_bytes + sum(len(r) for r in records) == len(data)
    assert sp.dropped["corrupt"] >= 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([_rec67(1), UNSIGNED, SIGNED])), max_size=8)
)
def test_records_survive_any_surrounding_garbage(parts: list[bytes]) -> None:
    data = b"".join(parts)
    recs, corrupt, sp = _split(data, authenticate=False)
    # Every byte is either in a record or reported as corruption, exactly once, in order.
    spans = sorted([(r.offset, len(r)) for r in recs] + corrupt)
    pos = 0
    for off, n in spans:
        assert off == pos
        pos += n
    assert pos == len(data)


def test_random_bytes_from_os_urandom_do_not_hang() -> None:
    data = os.urandom(256 * 1024)
    recs, corrupt, sp = _split(data)
    assert sum(n for _, n in corrupt) + sum(len(r) for r in recs) == len(data)
