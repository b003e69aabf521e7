"""Property tests: random expressions from the grammar against an independent tree-walking
reference written straight from Heka's Go evaluator (regexes through google-re2)."""

from __future__ import annotations

import operator
import os

import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matcher.matcher_support import expressions, messages

from hekacli.errors import MatcherSyntaxError
from hekacli.matcher import NUMERIC_VARS, STRING_VARS, And, Const, Or, _closure, compile_matcher, parse
from hekacli.matcher import Test as LeafNode
from hekacli.message import Message, ValueType, to_flat

# more examples for a longer run: HEKA_MATCHER_EXAMPLES=2000 pytest tests/matcher
EXAMPLES = int(os.environ.get("HEKA_MATCHER_EXAMPLES", "60"))

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
RE2_OPTS = re2.Options()
RE2_OPTS.log_errors = False
ATTR = {
    "Type": "type",
    "Logger": "logger",
    "Payload": "payload",
    "EnvVersion": "env_version",
    "Hostname": "hostname",
    "Timestamp": "timestamp",
    "Severity": "severity",
    "Pid": "pid",
}


def go_string(s: str) -> str:
    # Go matches an invalid UTF-8 byte as U+FFFD; we carry such bytes as surrogate escapes.
    return "".join("\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in s)


def ref_string_test(s: str, t: LeafNode) -> bool:
    if t.kind == "number":
        return False
    if t.kind == "nil":
        return t.op == "!="
    if t.kind == "regex":
        found = re2.compile(t.value.pattern, RE2_OPTS).search(go_string(s)) is not None
        return found if t.op == "=~" else not found
    literal = t.value if t.kind == "string" else ("TRUE" if t.value else "FALSE")
    enc = lambda x: x.encode("utf-8", "surrogateescape")  # noqa: E731 - Go compares bytes
    return OPS[t.op](enc(s), enc(literal))


def ref_numeric_test(f: float, t: LeafNode) -> bool:
    if t.kind == "nil":
        return t.op == "!="
    if t.kind != "number":
        return False
    return OPS[t.op](f, t.value)


def reference(node: object, msg: Message) -> bool:
    if isinstance(node, Const):
        return node.value
    if isinstance(node, And):
        return all(reference(x, msg) for x in node.items)
    if isinstance(node, Or):
        return any(reference(x, msg) for x in node.items)
    assert isinstance(node, LeafNode)
    if node.var in STRING_VARS:
        s = msg.uuid_string if node.var == "Uuid" else (getattr(msg, ATTR[node.var]) or "")
        return ref_string_test(s, node)
    if node.var in NUMERIC_VARS:
        raw = getattr(msg, ATTR[node.var])
        raw = (7 if node.var == "Severity" else 0) if raw is None else raw
        if node.kind == "time":
            return OPS[node.op](raw, node.value)
        return ref_numeric_test(float(raw), node)
    nonexistent = node.kind == "nil" and node.op == "=="
    fields = [f for f in msg.fields if f.name == node.name]
    if node.fi >= len(fields):
        return nonexistent
    field = fields[node.fi]
    if node.ai >= len(field.values):
        return nonexistent if field.value_type in ValueType._value2member_map_ else False
    v = field.values[node.ai]
    if field.value_type == ValueType.STRING:
        return ref_string_test(v, node)
    if field.value_type == ValueType.BYTES:
        return ref_string_test(v.decode("utf-8", "surrogateescape"), node)
    if field.value_type in (ValueType.INTEGER, ValueType.DOUBLE):
        return ref_numeric_test(float(v), node)
    if field.value_type == ValueType.BOOL:
        if node.kind == "nil":
            return node.op == "!="
        return v if (node.kind == "bool" and node.value) else not v
    return False


@SETTINGS
@given(text=st.text(max_size=40), strict=st.booleans())
def test_arbitrary_text_never_crashes_the_parser(text: str, strict: bool) -> None:
    try:
        m = compile_matcher(text, strict=strict)
    except MatcherSyntaxError as exc:
        assert str(exc).startswith("invalid message matcher")
        return
    assert m.match_message(Message()) in (True, False)
    assert m.match_record({}) in (True, False)


@SETTINGS
@given(
    text=st.text(
        alphabet=st.sampled_from(list("TypeFields[]()0.e+-'\"/=!~<>&| \tNILTRUEFALSE\n\\aS")), max_size=30
    )
)
def test_near_grammar_noise_never_crashes_the_parser(text: str) -> None:
    for strict in (True, False):
        try:
            compile_matcher(text, strict=strict).match_message(Message())
        except MatcherSyntaxError:
            pass


@SETTINGS
@given(expr=expressions(), msg=messages())
def test_compiled_matcher_agrees_with_the_reference_evaluator(expr: str, msg: Message) -> None:
    m = compile_matcher(expr)
    expected = reference(parse(expr), msg)
    assert m.match_message(msg) is expected
    assert _closure(m.tree, "m")(msg) is expected  # the fallback for very deep expressions


@SETTINGS
@given(a=expressions(), b=expressions(), msg=messages())
def test_and_is_commutative(a: str, b: str, msg: Message) -> None:
    ab = compile_matcher(f"({a}) && ({b})")
    ba = compile_matcher(f"({b}) && ({a})")
    assert ab.match_message(msg) == ba.match_message(msg)
    record = to_flat(msg)
    assert ab.match_record(record) == ba.match_record(record)


@SETTINGS
@given(a=expressions(), msg=messages())
def test_or_false_is_identity(a: str, msg: Message) -> None:
    m = compile_matcher(a)
    assert compile_matcher(f"{a} || FALSE").match_message(msg) == m.match_message(msg)
    assert compile_matcher(f"({a}) || FALSE").match_message(msg) == m.match_message(msg)
    assert compile_matcher(f"FALSE || ({a})").match_record(to_flat(msg)) == m.match_record(to_flat(msg))


@SETTINGS
@given(expr=expressions(field_index=False), msg=messages(unique_fields=True))
def test_flat_record_agrees_with_message(expr: str, msg: Message) -> None:
    # With one field per name (what decoders produce) and field index 0, flattening a message
    # must not change any answer.
    m = compile_matcher(expr)
    assert m.match_record(to_flat(msg)) is m.match_message(msg)
