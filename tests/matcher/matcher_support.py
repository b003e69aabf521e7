"""Shared helpers for the matcher tests: the message Heka's own matcher tests run against (spec §7.3)."""

from __future__ import annotations

import uuid

from hekacli.message import Field, Message, ValueType

TEST_UUID = uuid.UUID("8e414f01-9d7f-4a48-a5e1-ae92e5954df5").bytes


def heka_test_message() -> Message:
    """getTestMessage() plus the fields MatcherSpecificationSpec adds, in the same order."""
    msg = Message(
        uuid=TEST_UUID,
        timestamp=1_764_288_000_000_000_000,
        type="TEST",
        logger="GoSpec",
        severity=6,
        payload="Test Payload",
        env_version="0.8",
        pid=4242,
        hostname="my.host.name",
    )
    msg.fields += [
        Field("foo", ValueType.STRING, "", ["bar"]),
        Field("number", ValueType.INTEGER, "", [64]),
        Field("bytes", ValueType.BYTES, "", [b"data"]),
        Field("int", ValueType.INTEGER, "", [999, 1024]),
        Field("double", ValueType.DOUBLE, "", [99.9]),
        Field("bool", ValueType.BOOL, "", [True]),
        Field("foo", ValueType.STRING, "", ["alternate"]),
        Field("Payload", ValueType.STRING, "", ["name=test;type=web;"]),
        Field("Timestamp", ValueType.STRING, "date-time", ["Mon Jan 02 15:04:05 -0700 2006"]),
        Field("zero", ValueType.INTEGER, "", [0]),
        Field("string", ValueType.STRING, "", ["43"]),
    ]
    return msg


# -- hypothesis strategies shared by the property and polars tests -------------------------------

from hypothesis import strategies as st  # noqa: E402

STRING_LITS = st.sampled_from(
    ["'a'", "'TEST'", "''", '"b\'c"', "'A'", "'é'", "'43'", "'TRUE'", "'\\x'", "'ab'"]
)
REGEX_LITS = st.sampled_from(
    [
        "/a/",
        "/^T/",
        "/t$/",
        "/[[:upper:]]+/",
        "/\\d/",
        "/(?i)test/",
        "/^a$/",
        "//",
        "/b|c/",
        "/\\bA/",
        "/\\pL/",
        "/.$/",
        "/(?m)^x/",
    ]
)
NUMBER_LITS = st.sampled_from(["0", "6", "7", "1e3", ".5", "64", "99.9", "1000", "1795824000000000000"])
FIELD_NAMES = st.sampled_from(["s", "n", "d", "b", "by", "l", "li", "missing"])
OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


@st.composite
def leaf(draw: st.DrawFn, *, field_index: bool = True) -> str:
    kind = draw(st.sampled_from(["str", "re", "num", "time", "field", "field", "field", "const"]))
    if kind == "const":
        return draw(st.sampled_from(["TRUE", "FALSE"]))
    if kind == "str":
        var = draw(st.sampled_from(["Type", "Logger", "Payload", "EnvVersion", "Hostname", "Uuid"]))
        return f"{var} {draw(OPS)} {draw(STRING_LITS)}"
    if kind == "re":
        var = draw(st.sampled_from(["Type", "Logger", "Payload", "Hostname"]))
        return f"{var} {draw(st.sampled_from(['=~', '!~']))} {draw(REGEX_LITS)}"
    if kind == "num":
        return f"{draw(st.sampled_from(['Severity', 'Pid', 'Timestamp']))} {draw(OPS)} {draw(NUMBER_LITS)}"
    if kind == "time":
        when = draw(
            st.sampled_from(["'2026-11-28T00:00:00Z'", "'1970-01-01'", "'2026-11-28T00:00:00.5+01:00'"])
        )
        return f"Timestamp {draw(OPS)} {when}"
    name = draw(FIELD_NAMES)
    ref = f"Fields[{name}]"
    if draw(st.booleans()):
        fi = draw(st.integers(0, 1)) if field_index else 0
        ref += f"[{fi}]"
        if draw(st.booleans()):
            ref += f"[{draw(st.integers(0, 2))}]"
    test = draw(st.sampled_from(["num", "str", "re", "bool", "nil"]))
    if test == "num":
        return f"{ref} {draw(OPS)} {draw(NUMBER_LITS)}"
    if test == "str":
        return f"{ref} {draw(OPS)} {draw(STRING_LITS)}"
    if test == "re":
        return f"{ref} {draw(st.sampled_from(['=~', '!~']))} {draw(REGEX_LITS)}"
    if test == "bool":
        return f"{ref} == {draw(st.sampled_from(['TRUE', 'FALSE']))}"
    return f"{ref} {draw(st.sampled_from(['==', '!=']))} NIL"


def expressions(*, field_index: bool = True) -> st.SearchStrategy[str]:
    """Random, well-formed matcher expressions built from the whole grammar."""

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from([" && ", " || ", "&&", " ||"]), inner).map("".join),
            inner.map(lambda e: f"({e})"),
        )

    return st.recursive(leaf(field_index=field_index), extend, max_leaves=6)


STR_VALUES = st.sampled_from(["a", "TEST", "", "A", "é", "43", "TRUE", "ab", "x\na", "\\x"])


@st.composite
def messages(draw: st.DrawFn, *, unique_fields: bool = False) -> Message:
    """Random messages: optional headers and fields of every value type, some repeated."""
    opt = st.none() | STR_VALUES
    msg = Message(
        uuid=draw(st.none() | st.just(TEST_UUID) | st.binary(min_size=16, max_size=16)),
        timestamp=draw(st.none() | st.sampled_from([0, 1_795_824_000_000_000_000, 2**53 + 1, 1_000])),
        type=draw(opt),
        logger=draw(opt),
        payload=draw(opt),
        env_version=draw(opt),
        hostname=draw(opt),
        severity=draw(st.none() | st.integers(0, 7)),
        pid=draw(st.none() | st.sampled_from([0, 6, 64, 1000])),
    )
    kinds = {
        "s": (ValueType.STRING, STR_VALUES),
        "n": (ValueType.INTEGER, st.sampled_from([0, 6, 7, 64, 999, 1000, 2**53 + 1])),
        "d": (ValueType.DOUBLE, st.sampled_from([0.5, 6.0, 99.9, -1.0])),
        "b": (ValueType.BOOL, st.booleans()),
        "by": (ValueType.BYTES, st.sampled_from([b"a", b"TEST", b"\xff", b""])),
        "l": (ValueType.STRING, STR_VALUES),
        "li": (ValueType.INTEGER, st.sampled_from([0, 6, 64])),
    }
    names = draw(st.lists(st.sampled_from(sorted(kinds)), max_size=6, unique=unique_fields))
    for name in names:
        vtype, values = kinds[name]
        count = draw(st.integers(1, 3)) if name in ("l", "li") else draw(st.integers(0, 2))
        msg.fields.append(Field(name, vtype, "", draw(st.lists(values, min_size=count, max_size=count))))
    return msg
