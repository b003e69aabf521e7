"""Matcher.polars_expr() selects exactly the rows match_record accepts."""

from __future__ import annotations

import os

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from matcher.matcher_support import STR_VALUES, expressions
from matcher.test_matcher_re2 import TEXTS, re2_valid, regexes

from hekacli.matcher import compile_matcher
from hekacli.re2compat import compile_re2

# more examples for a longer run: HEKA_MATCHER_EXAMPLES=2000 pytest tests/matcher
EXAMPLES = int(os.environ.get("HEKA_MATCHER_EXAMPLES", "50"))

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCHEMA = {
    "Timestamp": pl.Int64,
    "Type": pl.String,
    "Logger": pl.Categorical,
    "Payload": pl.String,
    "Hostname": pl.String,
    "Severity": pl.Int32,
    "Pid": pl.Int64,
    "Uuid": pl.String,
    "s": pl.String,
    "n": pl.Int64,
    "d": pl.Float64,
    "b": pl.Boolean,
    "by": pl.Binary,
    "l": pl.List(pl.String),
    "li": pl.List(pl.Int64),
}
VALUES = {
    "Timestamp": st.sampled_from([0, 1_795_824_000_000_000_000, 2**53 + 1]),
    "Type": STR_VALUES,
    "Logger": STR_VALUES,
    "Payload": STR_VALUES,
    "Hostname": STR_VALUES,
    "Severity": st.integers(0, 7),
    "Pid": st.sampled_from([0, 6, 64, 1000]),
    "Uuid": st.sampled_from(["8e414f01-9d7f-4a48-a5e1-ae92e5954df5", ""]),
    "s": STR_VALUES,
    "n": st.sampled_from([0, 6, 64, 999, 1000, 2**53 + 1]),
    "d": st.sampled_from([0.5, 6.0, 99.9, -1.0]),
    "b": st.booleans(),
    "by": st.sampled_from([b"a", b"TEST", b""]),
    "l": st.lists(STR_VALUES | st.none(), max_size=3),
    "li": st.lists(st.sampled_from([0, 6, 64]), max_size=3),
}


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(1, 6))
    columns = {name: [draw(st.none() | VALUES[name]) for _ in range(rows)] for name in SCHEMA}
    return pl.DataFrame(columns, schema=SCHEMA)


def selected(df: pl.DataFrame, expr: pl.Expr) -> list[bool]:
    return df.with_columns(expr.alias("__m")).get_column("__m").to_list()


UNVECTORISABLE = (
    "(?i)",
    "\\pL",
    "Fields[by] =~",
    "Fields[by] !~",
    "Fields[by][0] =~",
    "Fields[by][0] !~",
    "Fields[by][0][0] =~",
    "Fields[by][0][0] !~",
)


@SETTINGS
@given(expr=expressions(), df=frames())
def test_polars_expr_agrees_with_match_record(expr: str, df: pl.DataFrame) -> None:
    m = compile_matcher(expr)
    vectorised = m.polars_expr(df.schema)
    expected = [m.match_record(r) for r in df.to_dicts()]
    if vectorised is None:
        assert any(token in expr for token in UNVECTORISABLE), expr
        return
    assert selected(df, vectorised) == expected
    assert df.filter(vectorised).height == sum(expected)
    schema_free = m.polars_expr()  # dtypes learnt from each batch
    if schema_free is None:  # a regex only google-re2 can run, which the schema showed unused
        assert "(?i)" in expr or "\\pL" in expr, expr
        return
    assert set(schema_free.meta.root_names()) == set(m.columns)
    if set(m.columns) <= set(df.columns):
        assert df.lazy().filter(schema_free).collect().equals(df.filter(vectorised))


def test_missing_columns_are_missing_fields_and_default_headers() -> None:
    df = pl.DataFrame({"x": [1, 2]})
    for expr, want in [
        ("Fields[nope] == NIL", [True, True]),
        ("Fields[nope] != NIL", [False, False]),
        ("Severity == 7 && Pid == 0 && Type == ''", [True, True]),
        ("Fields[x] > 1", [False, True]),
    ]:
        m = compile_matcher(expr)
        assert selected(df, m.polars_expr(df.schema)) == want
        assert [m.match_record(r) for r in df.to_dicts()] == want


def test_without_a_schema_the_types_come_from_the_data() -> None:
    df = pl.DataFrame(
        {
            "Type": ["nginx.access", "x", None],
            "status": [502, 200, 503],
            "code": ["502", "200", "503"],  # a string field: a number literal never matches it
            "request": ["GET /a", "POST /b", "GET /c"],
            "raw": [b"GET /", b"x", None],
        }
    )
    cases = {
        "Type == 'nginx.access' && Fields[status] >= 500 || Fields[request] =~ /^GET \\/c$/": 2,
        "Fields[code] >= 500": 0,
        "Fields[code] == '502' && Fields[status] != NIL": 1,
        "Fields[raw] =~ /^GET/": 1,  # no vectorised regex on Binary: row by row inside the batch
    }
    for expr, count in cases.items():
        m = compile_matcher(expr)
        assert df.lazy().filter(m.polars_expr()).collect().height == count, expr
        assert sum(m.match_record(r) for r in df.to_dicts()) == count, expr
    # the columns must exist without a schema (with one, a missing column is a missing field)
    m = compile_matcher("Severity == 7 && Fields[nope] == NIL")
    assert m.columns == ["Severity", "nope"]
    assert df.filter(m.polars_expr(df.schema)).height == 3
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        df.lazy().filter(m.polars_expr()).collect()
    assert compile_matcher("TRUE || FALSE").polars_expr() is not None


def test_datetime_timestamp_column() -> None:
    df = pl.DataFrame({"Timestamp": [1_795_824_000_000_000_000, 1_795_824_000_000_000_001]}).with_columns(
        pl.col("Timestamp").cast(pl.Datetime("ns"))
    )
    m = compile_matcher("Timestamp > '2026-11-28T00:00:00Z'")
    assert selected(df, m.polars_expr(df.schema)) == [False, True]


def test_regex_that_needs_re2_is_not_vectorised() -> None:
    assert compile_matcher("Type =~ /(?i)get/").polars_expr() is None
    assert compile_matcher("Type =~ /\\p{Greek}/").polars_expr() is None


@SETTINGS
@given(pattern=regexes(), texts=TEXTS)
def test_rust_translation_agrees_with_re2(pattern: str, texts: list[str]) -> None:
    assume(re2_valid(pattern) and pattern.count("(?P<g>") <= 1)
    compiled = compile_re2(pattern)
    assume(compiled.rust is not None)
    if "\\B" in pattern:
        texts = [t for t in texts if t.isascii()]  # see test_matcher_re2: C++ RE2 tests \B per byte
    got = pl.Series(texts, dtype=pl.String).str.contains(compiled.rust).to_list()
    assert got == [compiled.matches(t) for t in texts], (pattern, compiled.rust)
