"""The Message protobuf codec: byte-exact with Heka's Go encoder, tolerant like its decoder (spec §1.4)."""

from __future__ import annotations

import struct
import uuid

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st

from hekacli.errors import DecodeError
from hekacli.framing import read_stream
from hekacli.heka_pb import PBMessage
from hekacli.message import (
    Field,
    Message,
    ValueType,
    decode_message,
    encode_message,
    encode_message_py,
    from_flat,
    to_flat,
)

TEST_MSG_BYTES = bytes.fromhex("10 80 c4 8c 94 91 a9 e8 d4 13 1a 04 54 45 53 54")


def test_encoder_test_vector_message_bytes() -> None:
    # client/encoders_test.go: Type "TEST", timestamp 1416840893000000000, nothing else (no uuid).
    msg = Message(type="TEST", timestamp=1416840893000000000)
    assert encode_message(msg) == TEST_MSG_BYTES
    assert decode_message(TEST_MSG_BYTES) == msg


def test_go_field_shape_value_type_and_representation_always_written() -> None:
    f = Field("string0", ValueType.STRING, "", ["value0"])
    body = encode_message(Message(fields=[f]))
    inner = bytes.fromhex("0a 07") + b"string0" + bytes.fromhex("10 00 1a 00 22 06") + b"value0"
    assert body == bytes([0x52, len(inner)]) + inner


def test_negative_int32_is_five_bytes_and_both_forms_decode() -> None:
    body = encode_message(Message(severity=-1, pid=-2))
    assert body == bytes.fromhex("28 ff ff ff ff 0f 40 fe ff ff ff 0f")
    # The standard 10-byte sign-extended form (what Python's protobuf writes) decodes the same.
    ten = bytes.fromhex("28 ff ff ff ff ff ff ff ff ff 01")
    assert decode_message(ten).severity == -1


def test_numeric_arrays_are_packed_even_for_one_value() -> None:
    body = encode_message(Message(fields=[Field("n", ValueType.INTEGER, "", [1])]))
    assert body.endswith(bytes.fromhex("32 01 01"))
    d = encode_message(Message(fields=[Field("d", ValueType.DOUBLE, "", [1.5, -2.0])]))
    assert d.endswith(bytes.fromhex("3a 10") + struct.pack("<2d", 1.5, -2.0))
    b = encode_message(Message(fields=[Field("b", ValueType.BOOL, "", [True, False, True])]))
    assert b.endswith(bytes.fromhex("42 03 01 00 01"))


def test_unpacked_arrays_and_unknown_fields_are_accepted() -> None:
    field = (
        bytes.fromhex("0a 01")
        + b"x"
        + bytes.fromhex("10 02")
        + bytes.fromhex("30 05 30 7f")
        + bytes.fromhex("7a 02 aa bb")
    )  # value_integer unpacked twice, unknown field 15 (bytes)
    body = bytes([0x52, len(field)]) + field + bytes.fromhex("f8 01 07")  # unknown varint field 31
    msg = decode_message(body)
    assert msg.fields[0].values == [5, 127]
    assert msg.fields[0].value_type is ValueType.INTEGER


def test_missing_required_fields_decode() -> None:
    # No uuid, no timestamp, field without a name: Go never enforced "required".
    assert decode_message(b"\x52\x00").fields == [Field("", ValueType.STRING, "", [])]
    msg = decode_message(bytes.fromhex("52 02 10 00"))
    assert msg.uuid is None and msg.timestamp is None
    assert msg.fields == [Field("", ValueType.STRING, "", [])]
    assert msg.severity_or_default == 7


def test_non_utf8_strings_round_trip_byte_for_byte() -> None:
    raw = b"\xff\xfe bad \xc3 utf8 \xed\xa0\x80"
    body = bytes.fromhex("32") + bytes([len(raw)]) + raw  # payload
    msg = decode_message(body)
    assert isinstance(msg.payload, str)
    assert encode_message(msg) == body
    # also inside field names and string values
    f = Field(
        raw.decode("utf-8", "surrogateescape"), ValueType.STRING, "", [raw.decode("utf-8", "surrogateescape")]
    )
    again = decode_message(encode_message(Message(fields=[f])))
    assert again.fields[0] == f


@pytest.mark.parametrize(
    "body", [b"\x0a\x05ab", b"\x10", b"\x10\xff", b"\x52\x03\x0a\x05a", b"\x0f", b"\x52\x04\x3a\x03abc"]
)
def test_malformed_bytes_raise_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(body)


@pytest.mark.parametrize("name", ["protobuf.log", "multi.dat"])
def test_sample_streams_reencode_byte_identically(name: str) -> None:
    with open(VECTORS / "heka" / name, "rb") as fh:
        records = list(read_stream(fh, max_message_size=4 * 1024 * 1024))
    assert len(records) == {"protobuf.log": 7, "multi.dat": 50}[name]
    for rec in records:
        assert encode_message(rec.message()) == rec.message_bytes


def test_protobuf_log_content() -> None:
    with open(VECTORS / "heka" / "protobuf.log", "rb") as fh:
        msgs = [r.message() for r in read_stream(fh)]
    assert {m.type for m in msgs} == {"hekabench"}
    assert {m.logger for m in msgs} == {"flood"}
    assert {m.severity for m in msgs} == {0}
    kinds = {f.value_type for m in msgs for f in m.fields}
    assert kinds == set(ValueType)
    filler = [m.find_field("filler") for m in msgs]
    assert all(f is not None and f.value_type is ValueType.BYTES for f in filler)


def test_multi_dat_content() -> None:
    with open(VECTORS / "heka" / "multi.dat", "rb") as fh:
        records = list(read_stream(fh))
    assert len(records[-1].raw) == 215
    first = records[0].message()
    assert first.type == "heka.httpdata.request"
    assert first.logger == "TestInput"
    assert first.severity == 6
    assert first.payload == '{"test": 1}'
    assert [f.name for f in first.fields] == ["Protocol", "UserAgent", "ContentType"]


# -- against the protobuf package as an independent reference -------------------------------------


def _pb_bytes(msg: Message) -> bytes:
    p = PBMessage()
    for attr in ("uuid",):
        if getattr(msg, attr) is not None:
            setattr(p, attr, getattr(msg, attr))
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
            name=f.name.encode("utf-8", "surrogateescape"),
            value_type=int(f.value_type),
            representation=f.representation.encode(),
        )
        target = {
            0: pf.value_string,
            1: pf.value_bytes,
            2: pf.value_integer,
            3: pf.value_double,
            4: pf.value_bool,
        }[int(f.value_type)]
        target.extend(v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v for v in f.values)
    return p.SerializeToString(deterministic=True)


_text = st.text(max_size=20)
_field = st.one_of(
    st.builds(lambda n, v: Field(n, ValueType.STRING, "", v), _text, st.lists(_text, max_size=3)),
    st.builds(
        lambda n, v: Field(n, ValueType.BYTES, "rep", v), _text, st.lists(st.binary(max_size=9), max_size=3)
    ),
    st.builds(
        lambda n, v: Field(n, ValueType.INTEGER, "", v),
        _text,
        st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4),
    ),
    st.builds(
        lambda n, v: Field(n, ValueType.DOUBLE, "ns", v),
        _text,
        st.lists(st.floats(allow_nan=False), max_size=4),
    ),
    st.builds(lambda n, v: Field(n, ValueType.BOOL, "", v), _text, st.lists(st.booleans(), max_size=4)),
)
_messages = st.builds(
    Message,
    uuid=st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
    timestamp=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    type=st.one_of(st.none(), _text),
    logger=st.one_of(st.none(), _text),
    severity=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    payload=st.one_of(st.none(), st.text(max_size=200)),
    env_version=st.one_of(st.none(), _text),
    pid=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    hostname=st.one_of(st.none(), _text),
    fields=st.lists(_field, max_size=5),
)


@settings(max_examples=100, deadline=None)
@given(_messages)
def test_matches_protobuf_package_and_round_trips(msg: Message) -> None:
    body = encode_message(msg)
    assert body == _pb_bytes(msg)
    assert encode_message_py(msg) == body  # the two encoders behind encode_message agree
    back = decode_message(body)
    assert back == msg
    p = PBMessage()
    p.ParseFromString(body)
    assert p.SerializeToString(deterministic=True) == body


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_never_crashes_on_junk(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except DecodeError:
        return
    assert isinstance(msg, Message)


# -- flat records ---------------------------------------------------------------------------------


def test_to_flat_shape() -> None:
    u = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    msg = Message(
        uuid=u.bytes,
        timestamp=5,
        type="t",
        severity=3,
        payload="p",
        fields=[
            Field("a", ValueType.INTEGER, "", [1]),
            Field("b", ValueType.STRING, "", ["x", "y"]),
            Field("a", ValueType.INTEGER, "", [2]),
            Field("Type", ValueType.STRING, "", ["clash"]),
        ],
    )
    flat = to_flat(msg)
    assert list(flat) == ["Timestamp", "Type", "Severity", "Uuid", "Payload", "a", "b", "Fields[Type]"]
    assert flat["Uuid"] == str(u)
    assert flat["a"] == [1, 2]
    assert flat["b"] == ["x", "y"]
    assert flat["Fields[Type]"] == "clash"


def test_from_flat_types_schema_and_defaults() -> None:
    rec = {
        "Timestamp": "2024-01-02T03:04:05.123456789Z",
        "Type": "nginx.access",
        "status": 200,
        "ratio": 0.5,
        "ok": True,
        "raw": b"\x00",
        "tags": ["a", "b"],
        "missing": None,
        "Uuid": "12345678-1234-4234-8234-123456789abc",
    }
    msg = from_flat(rec, {"status": (ValueType.DOUBLE, "count")}, Hostname="h", logger="L")
    assert msg.timestamp == 1704164645123456789
    assert msg.hostname == "h" and msg.logger == "L" and msg.type == "nginx.access"
    f = {x.name: x for x in msg.fields}
    assert f["status"] == Field("status", ValueType.DOUBLE, "count", [200.0])
    assert f["ratio"].value_type is ValueType.DOUBLE
    assert f["ok"].values == [True] and f["ok"].value_type is ValueType.BOOL
    assert f["raw"].value_type is ValueType.BYTES
    assert f["tags"].values == ["a", "b"]
    assert "missing" not in f
    assert msg.uuid == uuid.UUID(rec["Uuid"]).bytes


def test_from_flat_bad_value_names_the_field() -> None:
    with pytest.raises(DecodeError) as exc:
        from_flat({"status": "abc"}, {"status": (ValueType.INTEGER, "")})
    assert exc.value.field == "status"


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_flat_round_trip(msg: Message) -> None:
    # With a schema (value type + representation per field) a flat record keeps everything, as long
    # as field names are unique (same-named fields merge into one list).
    names = [f.name for f in msg.fields]
    if len(set(names)) != len(names) or any(n.startswith("Fields[") for n in names):
        return
    schema = {f.name: (f.value_type, f.representation) for f in msg.fields}
    assert from_flat(to_flat(msg), schema) == msg


@settings(max_examples=100, deadline=None)
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans()), max_size=3),
)
def test_negative_int32_and_odd_values_use_the_python_encoder_consistently(
    sev: int, pid: int, ints: list
) -> None:
    msg = Message(severity=sev, pid=pid, fields=[Field("i", ValueType.INTEGER, "", ints)])
    body = encode_message(msg)
    assert body == encode_message_py(msg)
    back = decode_message(body)
    assert back.severity == sev and back.pid == pid
    assert back.fields[0].values == [int(v) for v in ints]
