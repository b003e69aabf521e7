"""`scripts/test` (and so CI) requires the compiled line scanner: a build failure must not pass
silently as a slower run (setup.py marks the extension optional for users without a compiler)."""

from __future__ import annotations

import os

import pytest
from hekacli.parsers import build_decoder, linescan


@pytest.mark.skipif(os.environ.get("HEKA_REQUIRE_LINESCAN") != "1", reason="only where scripts/test asks")
def test_the_line_scanner_is_built_and_used():
    assert linescan._linescan is not None, "parsers/_linescan.c did not build (see pip's output)"
    assert linescan.available()
    assert build_decoder("nginx").scan_program is not None


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("HEKA_LINESCAN", "0")
    assert not linescan.available()
