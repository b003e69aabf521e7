"""The RE2 -> Python `re` translation is exact: a differential test against google-re2."""

from __future__ import annotations

import os
import re

import pytest
import re2
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from hekacli.re2compat import RegexSyntaxError, compile_re2, to_rust, translate

# more examples for a longer run: HEKA_MATCHER_EXAMPLES=2000 pytest tests/matcher
EXAMPLES = int(os.environ.get("HEKA_MATCHER_EXAMPLES", "200"))

OPTS = re2.Options()
OPTS.log_errors = False


def re2_search(pattern: str, text: str) -> bool:
    return re2.compile(pattern, OPTS).search(text) is not None


def re2_valid(pattern: str) -> bool:
    try:
        re2.compile(pattern, OPTS)
    except re2.error:
        return False
    return True


CHARS = [
    "a",
    "b",
    "c",
    "A",
    "_",
    "1",
    " ",
    "\n",
    "\t",
    "é",
    "K",
    ".",
    "-",
    "]",
    "/",
    "\u212a",
    "ſ",
    "\U0001f600",
]
LITERALS = st.sampled_from(
    [
        "a",
        "b",
        "ab",
        "c",
        "A",
        "1",
        " ",
        "é",
        "-",
        "_",
        "\\.",
        "\\$",
        "\\n",
        "\\t",
        "\\x41",
        "\\x{e9}",
        "\\101",
        "\\-",
        "\\]",
        "\\\\",
        "/",
        "\\Qa.\\E",
        "\\Q$\\E",
        "{",
        "a{,2}",
        "}",
    ]
)
ASSERTIONS = st.sampled_from(["^", "$", "\\A", "\\z", "\\b", "\\B"])
PERL = st.sampled_from(["\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "."])
CLASS_ITEMS = st.sampled_from(
    [
        "a",
        "b",
        "é",
        "a-c",
        "A-Z",
        "0-9",
        "\\d",
        "\\W",
        "\\s",
        "\\n",
        "[:alpha:]",
        "[:^digit:]",
        "[:space:]",
        "[:punct:]",
        "[:word:]",
        "[:upper:]",
        "-",
        "\\]",
        ".",
        "$",
        "^",
        "\\x{1F600}",
        "a-\\x{ff}",
    ]
)


@st.composite
def char_class(draw: st.DrawFn) -> str:
    neg = draw(st.booleans())
    items = draw(st.lists(CLASS_ITEMS, min_size=1, max_size=4))
    first = draw(st.sampled_from(["", "]", "-"]))
    return "[" + ("^" if neg else "") + first + "".join(items) + "]"


QUANTS = st.sampled_from(["*", "+", "?", "{2}", "{1,}", "{0,2}", "*?", "+?", "??", "{1,3}?"])
FLAGS = st.sampled_from(["(?m)", "(?s)", "(?ms)", "(?-m)", "(?U)", "(?s-m)"])


def regexes() -> st.SearchStrategy[str]:
    atom = st.one_of(LITERALS, LITERALS, ASSERTIONS, PERL, char_class())

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.tuples(st.sampled_from(["(", "(?:", "(?m:", "(?s:", "(?P<g>"]), inner).map(
            lambda t: t[0] + t[1] + ")"
        )
        quantified = st.tuples(st.one_of(atom, group), QUANTS).map("".join)
        seq = st.lists(st.one_of(inner, group, quantified, FLAGS), min_size=1, max_size=4).map("".join)
        alt = st.lists(inner, min_size=2, max_size=3).map("|".join)
        return st.one_of(seq, alt, group)

    return st.recursive(atom, extend, max_leaves=8)


TEXTS = st.lists(st.text(alphabet=st.sampled_from(CHARS), max_size=8), min_size=1, max_size=6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=regexes(), texts=TEXTS)
# a quantifier after a group applies to all of it, \Q..\E text inside included (found by this test)
@example(pattern="(\\Qa.\\E)*", texts=["", "a", "a.a.", "aa"])
@example(pattern="^(?:\\Qab\\E){2}$", texts=["abab", "abb", "ab"])
def test_translation_agrees_with_google_re2(pattern: str, texts: list[str]) -> None:
    assume(re2_valid(pattern))
    assume(pattern.count("(?P<g>") <= 1)
    compiled = compile_re2(pattern)
    for text in texts:
        if "\\B" in pattern and not text.isascii():
            # C++ RE2 tests \B between the bytes of one UTF-8 character ("é" matches \B); Go,
            # which Heka used, works on characters, as our translation does.
            continue
        assert compiled.matches(text) == re2_search(pattern, text), (pattern, compiled.python, text)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    pattern=st.text(alphabet=st.sampled_from(list("ab()[]{}|*+?.^$\\-:,0123dswbzAQEpPx{}<>=!")), max_size=10)
)
def test_validation_agrees_with_google_re2_on_arbitrary_text(pattern: str) -> None:
    valid = re2_valid(pattern)
    try:
        compiled = compile_re2(pattern)
    except RegexSyntaxError:
        # Go rejects \C and duplicate group names that C++ RE2 accepts; nothing else.
        assert not valid or "\\C" in pattern or pattern.count("(?P<") > 1, pattern
        return
    assert valid, pattern
    for text in ["", "a", "ab\n", "b:a", "{a}", "x\\y"]:
        assert compiled.matches(text) == re2_search(pattern, text), (pattern, compiled.python, text)


@pytest.mark.parametrize(
    ("pattern", "python"),
    [
        ("a+$", r"(?:a)+\Z"),
        ("a.\\z", r"a[\U00000000-\U00000009\U0000000b-\U0010ffff]\Z"),
        ("[[:alpha:]]", "[A-Za-z]"),
        ("\\d+", "(?:[0-9])+"),
        ("(?m)^a$", "(?m:^)a(?m:$)"),
        ("(?:GET|POST) /", r"(?:GET|POST)\U00000020\U0000002f"),
    ],
)
def test_common_patterns_are_translated_not_left_to_re2(pattern: str, python: str) -> None:
    assert translate(pattern) == python
    assert compile_re2(pattern).engine == "re"


@pytest.mark.parametrize(
    ("pattern", "kind", "text"),
    [
        ("^GET /", "prefix", "GET /"),
        ("\\.php$", "suffix", ".php"),
        ("^a\\.b$", "equals", "a.b"),
        ("error", "contains", "error"),
        ("\\Q(x)\\E", "contains", "(x)"),
        ("x{01}", "contains", "x{01}"),  # no leading zeros in a repeat count: literal text
        ("a\\Q\\E", "contains", "a"),
    ],
)
def test_literal_fast_paths(pattern: str, kind: str, text: str) -> None:
    compiled = compile_re2(pattern)
    assert compiled.literal == (kind, text)
    assert compiled.engine == "literal"


@pytest.mark.parametrize("pattern", ["(?i)abc", "\\pL+", "\\p{Greek}", "[\\PN]", "(a+)+$", "(a|aa)*b"])
def test_what_cannot_be_translated_exactly_uses_re2(pattern: str) -> None:
    compiled = compile_re2(pattern)
    assert compiled.engine == "re2" and compiled.python is None
    for text in ["abc", "ABC", "αβγ", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "123"]:
        assert compiled.matches(text) == re2_search(pattern, text)


def test_nested_repetition_stays_linear() -> None:
    # Python's backtracking would take ages on this; RE2 does not.
    compiled = compile_re2("(a+)+$")
    assert not compiled.matches("a" * 5000 + "!")


@pytest.mark.parametrize(
    "pattern", ["a**", "\\C", "(?P<n>a)(?P<n>b)", "x{1001}", "(a", "[z-a]", "\\8", "(?x)a"]
)
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(RegexSyntaxError):
        compile_re2(pattern)


def test_surrogate_escaped_text_is_searchable() -> None:
    # non-UTF-8 bytes arrive as surrogate escapes; both engines must accept such text
    assert compile_re2("a.b").matches("a\udcffb")
    assert compile_re2("(?i)A\\pL").matches("a\udcffb") is False
    assert compile_re2("(?i)A\\pL").matches("aé")


def test_rust_translation_shapes() -> None:
    assert to_rust("^a$") == r"\Aa\z"
    assert to_rust("\\bx") == r"(?-u:\b)x"
    assert to_rust("(?i)x") is None
    assert re.compile(translate("[^a]"), re.ASCII).search("\n")
