"""Heka's own matcher conformance lists (message/message_matcher_test.go), run against the same
test message, on Message objects, on flat records, and in Heka-compatible (lenient) mode."""

from __future__ import annotations

import pytest
from matcher.matcher_support import heka_test_message

from hekacli.errors import EXIT_USAGE, MatcherSyntaxError
from hekacli.matcher import compile_matcher
from hekacli.message import to_flat

MALFORMED = [
    "",
    "bogus",
    "Type = 'test'",
    "Pid == 'test='",
    "Type == 'test' && (Severity==7 || Payload == 'Test Payload'",
    "Invalid == 'bogus'",
    "Fields[]",
    "Fields[test][]",
    "Fields[test][a]",
    "Fields[test][0][]",
    "Fields[test][0][a]",
    "Fields[test][0][0][]",
    "Fields[test][xxxx",
    "Pid =~ /6/",
    "Pid !~ /6/",
    "Type =~ /test",
    "Type == /test/",
    "Type =~ 'test'",
    "Type =~ /\\ytest/",
    "Type != 'test\"",
    "Pid =~ 6",
    "NIL",
    "Type == NIL",
    "Fields[test] > NIL",
]

NEGATIVE = [
    "FALSE",
    "Type == 'test'&&(Severity==7||Payload=='Test Payload')",
    "EnvVersion == '0.9'",
    "EnvVersion != '0.8'",
    "EnvVersion > '0.9'",
    "EnvVersion >= '0.9'",
    "EnvVersion < '0.8'",
    "EnvVersion <= '0.7'",
    "Severity == 5",
    "Severity != 6",
    "Severity < 6",
    "Severity <= 5",
    "Severity > 6",
    "Severity >= 7",
    "Fields[foo] == 'ba'",
    "Fields[foo][1] == 'bar'",
    "Fields[foo][0][1] == 'bar'",
    "Fields[bool] == FALSE",
    "Type =~ /Test/",
    "Type !~ /TEST/",
    "Payload =~ /^Payload/",
    'Type == "te\'st"',
    "Type == 'te\"st'",
    "Fields[int] =~ /999/",
    'Fields[zero] == "0"',
    "Fields[string] == 43",
    "Fields[int] == NIL",
    "Fields[int][0][1] == NIL",
    "Fields[missing] != NIL",
    "Type =~ /^te/",
    "Type =~ /st$/",
    "Type !~ /^TE/",
    "Type !~ /ST$/",
    "Logger =~ /./ && Type =~ /^anything/",
]

POSITIVE = [
    "TRUE",
    "(Severity == 7 || Payload == 'Test Payload') && Type == 'TEST'",
    'EnvVersion == "0.8"',
    "EnvVersion == '0.8'",
    "EnvVersion != '0.9'",
    "EnvVersion > '0.7'",
    "EnvVersion >= '0.8'",
    "EnvVersion < '0.9'",
    "EnvVersion <= '0.8'",
    "Hostname != ''",
    "Logger == 'GoSpec'",
    "Pid != 0",
    "Severity != 5",
    "Severity < 7",
    "Severity <= 6",
    "Severity == 6",
    "Severity > 5",
    "Severity >= 6",
    "Timestamp > 0",
    "Type != 'test'",
    "Type == 'TEST' && Severity == 6",
    "Type == 'test' && Severity == 7 || Payload == 'Test Payload'",
    "Type == 'TEST'",
    "Type == 'foo' || Type == 'bar' || Type == 'TEST'",
    "Uuid == '8e414f01-9d7f-4a48-a5e1-ae92e5954df5'",
    "Fields[foo] == 'bar'",
    "Fields[foo][0] == 'bar'",
    "Fields[foo][0][0] == 'bar'",
    "Fields[foo][1] == 'alternate'",
    "Fields[foo][1][0] == 'alternate'",
    "Fields[bytes] == 'data'",
    "Fields[int] == 999",
    "Fields[int][0][1] == 1024",
    "Fields[double] == 99.9",
    "Fields[bool] == TRUE",
    "Type =~ /TEST/",
    "Type !~ /bogus/",
    "Type =~ /TEST/ && Payload =~ /Payload/",
    "Fields[foo][1] =~ /alt/",
    "Fields[Payload] =~ /name=\\w+/",
    "Type =~ /(ST)/",
    "Fields[int] != NIL",
    "Fields[int][0][1] != NIL",
    "Fields[int][0][2] == NIL",
    "Fields[missing] == NIL",
    "Type =~ /^TE/",
    "Type =~ /ST$/",
    "Type !~ /^te/",
    "Type !~ /st$/",
]

MODES = [pytest.param(True, id="strict"), pytest.param(False, id="heka")]


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("expr", MALFORMED)
def test_malformed_expressions_are_rejected(expr: str, strict: bool) -> None:
    with pytest.raises(MatcherSyntaxError) as info:
        compile_matcher(expr, strict=strict)
    assert info.value.exit_code == EXIT_USAGE
    assert "invalid message matcher" in str(info.value)


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("expr", POSITIVE)
def test_positive_expressions_match_the_test_message(expr: str, strict: bool) -> None:
    assert compile_matcher(expr, strict=strict).match_message(heka_test_message()) is True


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("expr", NEGATIVE)
def test_negative_expressions_do_not_match(expr: str, strict: bool) -> None:
    assert compile_matcher(expr, strict=strict).match_message(heka_test_message()) is False


def _needs_field_index(expr: str) -> bool:
    # A flat record merges same-named fields into one list, so Fields[foo][1] (the second `foo`
    # field) is Fields[foo][0][1] there; every other expression must give the same answer.
    return "Fields[foo][1]" in expr


@pytest.mark.parametrize("expr", [e for e in POSITIVE + NEGATIVE if not _needs_field_index(e)])
def test_flat_record_gives_the_same_answer(expr: str) -> None:
    msg = heka_test_message()
    record = to_flat(msg)
    m = compile_matcher(expr)
    assert m.match_record(record) is m.match_message(msg)
    assert m.match(record) is m.match(msg)


def test_flat_record_field_index_is_the_list_position() -> None:
    record = to_flat(heka_test_message())
    assert record["foo"] == ["bar", "alternate"]
    assert compile_matcher("Fields[foo][0][1] == 'alternate'").match_record(record)
    assert compile_matcher("Fields[foo][1] == NIL").match_record(record)
    assert compile_matcher("Fields[foo][1] == 'alternate'").match_record(record) is False
