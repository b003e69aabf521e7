"""Fixtures for the sbmgr area: an in-process ServeContext, and a real `heka serve` over TLS."""

from __future__ import annotations

import contextlib
import io
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hekacli.certs import make_pki
from hekacli.message import Message
from hekacli.sbmgr import DashboardClient, SbmgrConfig, SignerConfig
from hekacli.serve.daemon import ServeDaemon
from hekacli.serve.dashboard import Dashboard

OPS_KEY = "ops-secret"
DEV_KEY = "dev-secret"


class LocalContext:
    """A ServeContext for driving the manager and dashboard in-process (no listeners).

    It keeps plugins in a list and records injected messages and log lines, like the daemon's router
    does, so the plugins under test run their real code paths.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._plugins: list[Any] = []
        self.injected: list[tuple[Message, str]] = []
        self.lines: list[str] = []

    def inject(self, message: Message, *, origin: str, loops: int = 0) -> None:
        self.injected.append((message, origin))

    def add_plugin(self, plugin: Any) -> None:
        self._plugins.append(plugin)

    def remove_plugin(self, name: str) -> Any:
        for i, p in enumerate(self._plugins):
            if p.name == name:
                return self._plugins.pop(i)
        return None

    def plugins(self) -> list[Any]:
        return list(self._plugins)

    def log(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def local_ctx(tmp_path) -> LocalContext:
    """A fresh in-process ServeContext whose state_dir is under tmp_path."""
    return LocalContext(tmp_path / "state")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA, a server and a client certificate (hekacli.certs.make_pki), made once per session."""
    return make_pki(tmp_path_factory.mktemp("sbmgr-pki"))


def serve_config(pki, state_dir: Path, max_filters: int = 2, **manager: Any) -> dict[str, Any]:
    """TLS listener requiring client certificates, signers ops_1 and dev_0, a manager taking only
    `ops`, the dashboard on an ephemeral port."""
    return {
        "listeners": [{"url": "tls://127.0.0.1:0", "cert": str(pki.server_cert), "key": str(pki.server_key),
                       "client_ca": str(pki.ca_cert), "require_client_cert": True}],
        "signers": {"ops_1": OPS_KEY, "dev_0": DEV_KEY},
        "output": "none",
        "state_dir": str(state_dir),
        "sandbox_manager": {"message_signer": "ops", "max_filters": max_filters, **manager},
        "dashboard": "127.0.0.1:0",
    }


@pytest.fixture
def start_daemon(pki):
    """`with start_daemon(state_dir, max_filters=.., **manager) as (daemon, dashboard_client, dash_url)`:
    a real `heka serve` daemon on a background thread, stopped when the block ends."""

    @contextlib.contextmanager
    def start(state_dir: Path, **kw: Any):
        lines: list[str] = []
        d = ServeDaemon(serve_config(pki, state_dir, **kw), log=lines.append)
        with d.running() as running:
            dash = next(p for p in running.plugins() if isinstance(p, Dashboard))
            running.test_lines = lines
            url = f"http://127.0.0.1:{dash.port}"
            yield running, DashboardClient(url), url

    return start


@pytest.fixture
def client_config(pki):
    """`client_config(url, **signer_overrides)` -> the SbmgrConfig `heka sbmgr` would build."""

    def make(url: str, **signer: Any) -> SbmgrConfig:
        s = {"name": "ops", "hmac_hash": "sha1", "hmac_key": OPS_KEY, "version": 1, **signer}
        return SbmgrConfig(ip_address=url.split("://", 1)[1], use_tls=True, signer=SignerConfig(**s),
                           tls={"cert_file": str(pki.client_cert), "key_file": str(pki.client_key),
                                "root_cafile": str(pki.ca_cert)})

    return make


@pytest.fixture
def heka_here(monkeypatch):
    """`heka_here(*args)` runs `heka ARGS` in this process (same Typer app and error policy as the
    console script, without an interpreter start) -> CompletedProcess with bytes stdout/stderr."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    from hekacli.commands.main import app, run

    def invoke(*args: Any) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(lambda: app(args=argv, prog_name="heka", standalone_mode=True))
        return subprocess.CompletedProcess(argv, code, out.getvalue().encode(), err.getvalue().encode())

    return invoke
