"""Every evaluation and lexing quirk of spec §7, and where hekacli's strict mode differs."""

from __future__ import annotations

import pytest
from matcher.matcher_support import heka_test_message

from hekacli.errors import MatcherSyntaxError
from hekacli.matcher import compile_matcher, parse_rfc3339
from hekacli.message import Field, Message, ValueType


def matches(expr: str, msg: Message, *, strict: bool = True) -> bool:
    return compile_matcher(expr, strict=strict).match_message(msg)


def test_and_binds_tighter_than_or() -> None:
    msg = Message()
    assert matches("TRUE || FALSE && FALSE", msg)
    assert not matches("(TRUE || FALSE) && FALSE", msg)
    assert matches("FALSE && FALSE || TRUE", msg)
    assert not matches("FALSE && (FALSE || TRUE)", msg)


def test_absent_headers_take_hekas_defaults() -> None:
    empty = Message()
    assert matches("Severity == 7", empty)
    assert matches("Pid == 0 && Timestamp == 0", empty)
    assert matches("Type == '' && Logger == '' && Hostname == '' && Payload == '' && EnvVersion == ''", empty)
    assert matches("Uuid == ''", empty)
    assert not matches("Type != ''", empty)
    assert matches("Severity == 0", Message(severity=0))


def test_uuid_compares_as_dashed_lowercase_hex() -> None:
    msg = heka_test_message()
    assert matches("Uuid == '8e414f01-9d7f-4a48-a5e1-ae92e5954df5'", msg)
    assert not matches("Uuid == '8E414F01-9D7F-4A48-A5E1-AE92E5954DF5'", msg)
    assert matches("Uuid =~ /^8e414f01-/", msg)
    assert matches("Uuid == ''", Message(uuid=b"short"))


def test_numbers_compare_as_float64() -> None:
    msg = Message(timestamp=2**53 + 1)
    # 2^53 + 1 is not a float64: Go rounds it to 2^53 before comparing.
    assert matches("Timestamp == 9007199254740992", msg)
    assert not matches("Timestamp > 9007199254740992", msg)
    assert matches(
        "Fields[n] == 9007199254740992", Message(fields=[Field("n", ValueType.INTEGER, "", [2**53 + 1])])
    )
    assert matches("Severity == 6.0 && Severity < 6.5 && Severity > 5.99", Message(severity=6))
    assert matches("Severity == 6e0 && Severity == .6e1 && Pid == 1e+3", Message(severity=6, pid=1000))


def test_no_negative_numbers() -> None:
    with pytest.raises(MatcherSyntaxError, match="negative"):
        compile_matcher("Severity == -1")
    with pytest.raises(MatcherSyntaxError):
        compile_matcher("Severity == -1", strict=False)


def test_malformed_number_is_zero_in_heka_mode_and_an_error_in_strict_mode() -> None:
    with pytest.raises(MatcherSyntaxError, match="malformed number '1-2'"):
        compile_matcher("Severity == 1-2")
    assert matches("Severity == 1-2", Message(severity=0), strict=False)
    assert not matches("Severity == 1-2", Message(severity=1), strict=False)
    assert matches("Pid < 1e999", Message(pid=0), strict=False) is False  # out of range -> 0; 0 < 0
    # uppercase E is not part of a number: "1E5" lexes as 1 then the unknown name E
    with pytest.raises(MatcherSyntaxError, match="unknown name 'E'"):
        compile_matcher("Pid == 1E5")


def test_newline_ends_the_expression() -> None:
    msg = Message(type="a")
    assert matches("Type == 'a'\n", msg)
    assert matches("Type == 'a'\n  \n", msg)
    # Heka ignores whatever follows the newline ...
    assert matches("Type == 'a'\n&& Type == 'b'", msg, strict=False)
    assert matches("Type == 'a'\0 && FALSE", msg, strict=False)
    # ... which silently changes the meaning, so strict mode refuses it with a pointer to the text.
    with pytest.raises(MatcherSyntaxError, match="line break") as info:
        compile_matcher("Type == 'a'\n&& Type == 'b'")
    assert info.value.column == 1
    # An expression that is incomplete at the newline is an error in both modes.
    with pytest.raises(MatcherSyntaxError):
        compile_matcher("Type ==\n'a'", strict=False)


def test_carriage_return_is_a_syntax_error_but_tab_is_whitespace() -> None:
    with pytest.raises(MatcherSyntaxError, match="unexpected character"):
        compile_matcher("Type == 'a'\r")
    assert matches("Type\t==\t'a'", Message(type="a"))


def test_juxtaposed_expressions() -> None:
    msg = Message()
    assert matches("FALSE TRUE", msg, strict=False)  # Heka: only the last one counts
    assert not matches("TRUE FALSE", msg, strict=False)
    with pytest.raises(MatcherSyntaxError, match="expected '&&', '\\|\\|'"):
        compile_matcher("TRUE FALSE")


def test_unknown_capitalised_name_ends_the_input_in_heka_mode() -> None:
    assert matches("TRUE Bogus == 'x'", Message(), strict=False)
    with pytest.raises(MatcherSyntaxError, match="unknown name 'Bogus'"):
        compile_matcher("TRUE Bogus == 'x'")
    with pytest.raises(MatcherSyntaxError):
        compile_matcher("type == 'x'", strict=False)  # lowercase: an error in Heka too


def test_string_escapes_follow_heka() -> None:
    assert matches(r"Type == 'te\'st'", Message(type="te'st"))
    assert matches(r'Type == "te\"st"', Message(type='te"st'))
    # any other backslash pair keeps both characters
    assert matches(r"Type == 'a\nb'", Message(type="a\\nb"))
    assert matches(r"Type == 'a\"b'", Message(type='a\\"b'))
    assert matches(r"Type == 'a\\'", Message(type="a\\\\"))


def test_regex_literal_escapes() -> None:
    assert matches(r"Payload =~ /a\/b/", Message(payload="a/b"))
    assert matches(r"Payload =~ /a\.b/", Message(payload="a.b"))
    assert not matches(r"Payload =~ /a\.b/", Message(payload="axb"))
    assert matches("Payload =~ /%TIMESTAMP%/", Message(payload="x %TIMESTAMP% y"))
    assert matches("Payload =~ //", Message())


def test_regex_dollar_is_end_of_text_not_before_a_final_newline() -> None:
    msg = Message(payload="Test Payload\n")
    assert not matches("Payload =~ /load$/", msg)
    assert not matches("Payload =~ /l.ad$/", msg)
    assert matches("Payload =~ /load\\n$/", msg)
    assert matches("Payload =~ /(?m)load$/", msg)


def test_regex_has_re2_classes() -> None:
    msg = Message(payload="héllo wörld 42")
    assert matches("Payload =~ /^[[:alpha:]]/", msg)
    assert matches("Payload =~ /\\pL+ \\pL+/", msg)
    assert not matches("Payload =~ /^\\w+ /", msg)  # \w is ASCII in RE2: 'é' is not a word char
    assert matches("Payload =~ /\\d\\d$/", msg)
    assert matches("Payload =~ /(?i)HÉLLO/", msg)


def test_capture_groups_are_allowed() -> None:
    assert matches("Type =~ /(?P<x>ST)/", heka_test_message())


def test_missing_field_fails_every_test_except_eq_nil() -> None:
    msg = Message()
    for expr in [
        "Fields[x] == 'a'",
        "Fields[x] != 'a'",
        "Fields[x] < 1",
        "Fields[x] != 1",
        "Fields[x] =~ /.*/",
        "Fields[x] !~ /a/",
        "Fields[x] == TRUE",
        "Fields[x] == FALSE",
        "Fields[x] != NIL",
    ]:
        assert not matches(expr, msg), expr
    assert matches("Fields[x] == NIL", msg)
    # the same for an array index past the end and a field index past the last same-named field
    msg = Message(fields=[Field("x", ValueType.STRING, "", ["a"])])
    assert not matches("Fields[x][0][1] != 'b'", msg)
    assert matches("Fields[x][0][1] == NIL", msg)
    assert not matches("Fields[x][1] != 'b'", msg)
    assert matches("Fields[x][1] == NIL", msg)


def test_value_type_dispatch() -> None:
    msg = heka_test_message()
    assert not matches("Fields[string] == 43", msg)  # string field, number literal: false
    assert matches("Fields[string] == '43'", msg)
    assert not matches("Fields[zero] == '0'", msg)  # integer field, string literal: false
    assert not matches("Fields[zero] != '0'", msg)
    assert not matches("Fields[int] =~ /999/", msg)  # regex on a number: false
    assert not matches("Fields[int] !~ /999/", msg)
    assert matches("Fields[bytes] =~ /^da/ && Fields[bytes] < 'dz'", msg)
    assert matches("Fields[double] > 99 && Fields[double] < 100", msg)
    assert matches("Fields[number] == 64", msg)


def test_bool_field_quirk() -> None:
    true = Message(fields=[Field("b", ValueType.BOOL, "", [True])])
    false = Message(fields=[Field("b", ValueType.BOOL, "", [False])])
    assert matches("Fields[b] == TRUE", true) and not matches("Fields[b] == FALSE", true)
    assert matches("Fields[b] == FALSE", false) and not matches("Fields[b] == TRUE", false)
    # compared with a string, a number or a regex, a bool field is (value == false), whatever the op
    for expr in [
        "Fields[b] == 'true'",
        "Fields[b] != 'x'",
        "Fields[b] > 5",
        "Fields[b] == 1",
        "Fields[b] =~ /x/",
    ]:
        assert not matches(expr, true), expr
        assert matches(expr, false), expr
    assert matches("Fields[b] != NIL", true) and not matches("Fields[b] == NIL", false)


def test_string_field_compared_with_true_uses_the_token_text() -> None:
    msg = Message(fields=[Field("s", ValueType.STRING, "", ["TRUE"]), Field("n", ValueType.INTEGER, "", [1])])
    assert matches("Fields[s] == TRUE", msg)
    assert not matches("Fields[s] == FALSE", msg)
    assert not matches("Fields[n] == TRUE", msg)


def test_only_eq_with_booleans_and_eq_ne_with_nil() -> None:
    for expr in [
        "Fields[b] != TRUE",
        "Fields[b] < FALSE",
        "Fields[b] >= NIL",
        "Severity == TRUE",
        "Type == FALSE",
    ]:
        with pytest.raises(MatcherSyntaxError):
            compile_matcher(expr)


def test_unknown_value_type_is_false_for_every_test() -> None:
    msg = Message(fields=[Field("u", 9, "", ["x"])])  # type: ignore[arg-type]
    for expr in ["Fields[u] == 'x'", "Fields[u] != 'x'", "Fields[u] == NIL", "Fields[u] != NIL"]:
        assert not matches(expr, msg), expr


def test_string_order_is_bytewise_even_for_non_utf8() -> None:
    # "\udcff" is the byte 0xff (surrogateescape): bigger than any UTF-8 lead byte of 'é' (0xc3)
    raw = Message(type="\udcff")
    assert matches("Type > 'é'", raw)
    assert matches("Type > 'zz'", raw)
    assert not matches("Type < 'é'", raw)
    assert matches("Type < '\U0001f600'", Message(type="\uffff"))
    assert matches("Type =~ /^.$/", raw)


def test_fields_name_may_hold_any_character_but_the_closing_bracket() -> None:
    msg = Message(fields=[Field("a b.c=d'", ValueType.STRING, "", ["v"])])
    assert matches("Fields[a b.c=d'] == 'v'", msg)
    with pytest.raises(MatcherSyntaxError, match="expected '\\['"):
        compile_matcher("Fields [x] == 1")


def test_timestamp_accepts_rfc3339() -> None:
    ns = parse_rfc3339("2026-11-28T00:00:00Z")
    assert ns == 1_795_824_000_000_000_000
    assert parse_rfc3339("2026-11-28T01:00:00.000000001+01:00") == ns + 1
    assert parse_rfc3339("2026-11-28") == ns
    assert parse_rfc3339("2026-11-28 00:00") == ns
    msg = Message(timestamp=ns + 1)
    assert matches("Timestamp > '2026-11-28T00:00:00Z'", msg)
    assert matches("Timestamp == '2026-11-28T00:00:00.000000001Z'", msg)  # exact, not float64
    assert matches('Timestamp >= "2026-11-28" && Timestamp < "2026-11-29"', msg)
    assert compile_matcher("Timestamp > '2026-11-28T00:00:00Z'").match_record({"Timestamp": ns + 1})
    for bad in ["Timestamp > 'yesterday'", "Timestamp > '2026-13-01T00:00:00Z'", "Severity > '2026-11-28'"]:
        with pytest.raises(MatcherSyntaxError):
            compile_matcher(bad)


def test_matchers_are_cached_and_printable() -> None:
    m = compile_matcher("Type == 'x'")
    assert m is compile_matcher("Type == 'x'")
    assert str(m) == "Type == 'x'" and "Type == 'x'" in repr(m)


def test_deeply_nested_expression_compiles() -> None:
    expr = "(" * 150 + "Type == 'a'" + ")" * 150
    assert matches(expr, Message(type="a"))
    long_or = " || ".join(f"Type == '{i}'" for i in range(3000))
    m = compile_matcher(long_or)
    assert m.match_message(Message(type="2999")) and not m.match_message(Message(type="x"))
    assert m.match_record({"Type": "17"})


def test_alternating_deep_nesting_falls_back_to_closures() -> None:
    # 200 alternating && / || levels are too deep for Python's compiler: nested closures take over
    expr = "Type == 'a'"
    for i in range(200):
        expr = f"(Type == 'a' && {expr})" if i % 2 else f"(Logger == 'x{i}' || {expr})"
    m = compile_matcher(expr)
    assert not hasattr(m.match_message, "__source__")  # the closure fallback was used
    assert m.match_message(Message(type="a")) is True
    assert m.match_message(Message(type="b", logger="x0")) is False
    assert m.match_record({"Type": "a"}) is True
    assert m.match_record({"Type": "b", "Logger": "x198"}) is False
    with pytest.raises(MatcherSyntaxError, match="nested too deeply"):
        compile_matcher("(" * 2000 + "TRUE" + ")" * 2000)


def test_values_that_do_not_fit_their_value_type_fail_instead_of_crashing() -> None:
    msg = Message(
        fields=[Field("n", ValueType.INTEGER, "", ["not a number"]), Field("s", ValueType.STRING, "", [5])]
    )
    assert not matches("Fields[n] > 1", msg)
    assert not matches("Fields[s] =~ /5/", msg)
    assert matches("Fields[n] != NIL", msg)
