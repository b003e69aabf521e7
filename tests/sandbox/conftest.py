"""Fixtures for the sandbox tests: build a SandboxFilter from Lua text and collect what it injects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hekacli.message import Field, Message, ValueType
from hekacli.sandbox.host import Limits, SandboxFilter


def spec_test_message() -> Message:
    """Heka's conformance test message (spec section 10)."""
    m = Message(uuid=bytes(range(16)), timestamp=5123456789, type="TEST", logger="GoSpec", severity=6,
                env_version="0.8", payload="Test Payload", hostname="example.com", pid=7)
    m.fields = [
        Field("foo", ValueType.STRING, "", ["bar"]),
        Field("bytes", ValueType.BYTES, "", [b"data"]),
        Field("int", ValueType.INTEGER, "", [999, 1024]),
        Field("double", ValueType.DOUBLE, "", [99.9]),
        Field("bool", ValueType.BOOL, "", [True]),
        Field("foo", ValueType.STRING, "", ["alternate"]),
        Field("false", ValueType.BOOL, "", [False]),
        Field("empty_bytes", ValueType.BYTES, "", []),
    ]
    return m


class Harness:
    """A loaded SandboxFilter plus the messages it injected."""

    def __init__(self, src: str, **kwargs) -> None:
        self.injected: list[Message] = []
        self.logs: list[str] = []
        kwargs.setdefault("limits", Limits())
        self.f = SandboxFilter(kwargs.pop("name", "test"), src, on_inject=self.injected.append,
                               log=self.logs.append, **kwargs)

    def load(self) -> Harness:
        self.f.load()
        return self

    def payloads(self) -> list[str]:
        return [m.payload for m in self.injected if m.type == "heka.sandbox-output"]

    def last_payload(self) -> str:
        return self.payloads()[-1]

    def terminated(self) -> list[Message]:
        return [m for m in self.injected if m.type == "heka.sandbox-terminated"]


@pytest.fixture
def sandbox() -> Callable[..., Harness]:
    """`sandbox(src, **SandboxFilter kwargs)` -> a loaded Harness."""
    return lambda src, **kw: Harness(src, **kw).load()


@pytest.fixture
def lua_timer(sandbox) -> Callable[[str], str]:
    """Run Lua statements inside timer_event and return the injected payload text."""

    def run(body: str, prelude: str = "") -> str:
        src = prelude + "\nfunction process_message() return 0 end\nfunction timer_event(ns)\n" + body
        src += '\ninject_payload("txt", "t")\nend\n'
        h = sandbox(src, limits=Limits(instructions=0))
        h.f.timer_event(0)
        assert h.f.state == "running", h.f.last_error
        return h.last_payload() if h.payloads() else ""

    return run


@pytest.fixture
def tmp_data(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.data"


@pytest.fixture
def test_message() -> Message:
    return spec_test_message()
