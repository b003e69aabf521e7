"""Malformed expressions: one message with the expression, a caret under the failing column and
what was expected; exit code 2 on the command line."""

from __future__ import annotations

import pytest
from conftest import VECTORS, run_heka

from hekacli.errors import EXIT_USAGE, MatcherSyntaxError
from hekacli.matcher import compile_matcher


def error_of(expr: str) -> MatcherSyntaxError:
    with pytest.raises(MatcherSyntaxError) as info:
        compile_matcher(expr)
    return info.value


def caret_column(err: MatcherSyntaxError) -> int:
    """The 1-based column the caret line points at (relative to the echoed expression)."""
    lines = str(err).splitlines()
    assert len(lines) == 3, str(err)
    shown, caret = lines[1], lines[2]
    assert caret.strip() == "^"
    indent = len(shown) - len(shown.lstrip(" ")) if shown.strip() else len(caret) - 1
    return len(caret) - indent


@pytest.mark.parametrize(
    ("expr", "column", "expected"),
    [
        ("Type = 'test'", 6, "expected '==' or '=~'"),
        ("Pid == 'test='", 8, "Pid is numeric: expected a number"),
        ("Type == 'a' && (Severity == 7", 30, "expected ')' to close the '(' at column 16"),
        ("Type == 'a' && Severity == 7)", 29, "unbalanced ')'"),
        ("Invalid == 'bogus'", 1, "unknown name 'Invalid'"),
        ("Fields[] == 1", 7, "empty field name"),
        ("Fields[test][a] == 1", 14, "field index must be digits"),
        ("Fields[test][0][x1] == 1", 17, "array index must be digits"),
        ("Fields[test][xxxx", 13, "missing ']'"),
        ("Pid =~ /6/", 5, "=~ and !~ apply to string variables"),
        ("Type =~ /test", 9, "unterminated regular expression"),
        ("Type == /test/", 6, "use =~ or !~"),
        ("Type =~ 'test'", 9, "expected a regular expression"),
        ("Type =~ /\\ytest/", 9, "invalid escape sequence"),
        ("Type != 'test\"", 9, "unterminated string: missing closing '"),
        ("Type == NIL", 9, "NIL can only be compared with Fields"),
        ("Fields[test] > NIL", 14, "NIL only works with == and !="),
        ("Type == 'x' &&", 15, "found the end of the expression"),
        ("Type == 'x' & Logger == 'y'", 13, "expected '&&'"),
        ("Severity == -1", 13, "negative"),
        ("Type == 'x' Logger == 'y'", 13, "expected '&&', '||' or the end"),
        ("", 1, "empty expression"),
    ],
)
def test_caret_points_at_the_failure(expr: str, column: int, expected: str) -> None:
    err = error_of(expr)
    text = str(err)
    assert text.startswith(f"invalid message matcher at column {column}: ")
    assert expected in text.splitlines()[0]
    assert text.splitlines()[1] == "    " + expr
    assert caret_column(err) == column
    assert err.column == column and err.expression == expr
    assert err.exit_code == EXIT_USAGE


def test_tabs_are_shown_as_spaces_so_the_caret_lines_up() -> None:
    err = error_of("Type\t= 'x'")
    assert str(err).splitlines()[1:] == ["    Type = 'x'", "         ^"]


def test_non_string_expression() -> None:
    with pytest.raises(MatcherSyntaxError):
        compile_matcher(None)  # type: ignore[arg-type]


def test_cli_match_error_is_one_diagnostic_and_exit_2() -> None:
    res = run_heka("cat", "--match", "Type = 'x'", str(VECTORS / "heka" / "multi.dat"))
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "heka: error: invalid message matcher at column 6: expected '==' or '=~'" in err
    assert "    Type = 'x'\n         ^" in err
    assert "Traceback" not in err
    assert res.stdout == b""


def test_cli_match_selects_messages() -> None:
    path = str(VECTORS / "heka" / "multi.dat")
    res = run_heka("cat", "--format", "jsonl", "--match", 'Payload =~ /"test": 4\\d?}$/', path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert len(lines) == 11  # {"test": 4} and {"test": 40} .. {"test": 49}
    res = run_heka(
        "cat", "--format", "jsonl", "--match", "Fields[Protocol] == 'HTTP/1.1' && Severity == 6", path
    )
    assert len(res.stdout.decode().splitlines()) == 50
