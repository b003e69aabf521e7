"""Fixtures for the matcher tests."""

from __future__ import annotations

import pytest
from matcher.matcher_support import heka_test_message

from hekacli.message import Message


@pytest.fixture
def test_message() -> Message:
    """The message Heka's own matcher tests run against (spec §7.3)."""
    return heka_test_message()
