"""`heka inject` -> `heka serve` over real sockets on 127.0.0.1: TCP, UDP, TLS with client certificates,
signatures, garbage. `heka serve` runs as a real subprocess; it is always killed at teardown."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import free_port, run_heka

from hekacli.framing import Header, Signer, frame
from hekacli.message import Message, encode_message
from hekacli.serve.daemon import ServeDaemon
from hekacli.transport import send_framed


def _jsonl(out: bytes) -> list[dict]:
    return [json.loads(x) for x in out.splitlines()]


def test_inject_to_serve_over_tcp_with_typed_fields(serve, heka_inproc) -> None:
    srv = serve("--listen", "tcp://127.0.0.1:0", "--count", "2")
    url = srv.url("tcp")
    # One real `heka inject` process, one in-process (same code path, no interpreter start-up).
    res = run_heka(
        "inject",
        "--heka",
        url.removeprefix("tcp://"),
        "--type",
        "t.one",
        "--payload",
        "héllo",
        "--severity",
        "3",
        "--field",
        "n=int:42",
        "--field",
        "ok=bool:true",
    )
    assert res.returncode == 0, res.stderr
    res = heka_inproc(
        "inject",
        "--heka",
        url,
        "--type",
        "t.two",
        "--logger",
        "L",
        "--pid",
        "99",
        "--hostname",
        "h1",
        "--field",
        "d=double:1.5",
        "--field",
        "b=bytes:xyz",
        "--field",
        "s=plain",
    )
    assert res.returncode == 0, res.stderr
    code, out, err = srv.finish()
    assert code == 0, err
    one, two = sorted(_jsonl(out), key=lambda r: r["Type"])
    assert one["Payload"] == "héllo" and one["Severity"] == 3 and one["n"] == 42 and one["ok"] is True
    assert one["Logger"] == "Inject Client"
    assert two["Logger"] == "L" and two["Pid"] == 99 and two["Hostname"] == "h1"
    assert two["d"] == 1.5 and two["b"] == "eHl6" and two["s"] == "plain" and two["Payload"] == ""
    assert b"received 2, accepted 2, dropped 0" in err


def test_inject_to_serve_over_udp(serve, heka_inproc) -> None:
    srv = serve("--listen", "udp://127.0.0.1:0", "--count", "1")
    res = heka_inproc("inject", "--heka", srv.url("udp"), "--payload", "over udp")
    assert res.returncode == 0, res.stderr
    code, out, err = srv.finish()
    assert code == 0, err
    assert _jsonl(out)[0]["Payload"] == "over udp"


def test_inject_to_serve_over_tls_with_client_certificates(serve, heka_inproc, pki) -> None:
    srv = serve(
        "--listen",
        "tls://127.0.0.1:0",
        "--cert",
        pki.server_cert,
        "--key",
        pki.server_key,
        "--client-ca",
        pki.ca_cert,
        "--require-client-cert",
        "--count",
        "1",
    )
    url = srv.url("tls")
    # Without a client certificate: refused, and inject says so (exit 4).
    res = heka_inproc("inject", "--heka", url, "--ca", pki.ca_cert, "--payload", "no cert")
    assert res.returncode == 4
    assert b"heka: error: cannot send to tls://" in res.stderr
    # A server certificate not signed by the CA we trust: refused by us.
    res = heka_inproc(
        "inject", "--heka", url, "--ca", pki.client_cert, "--cert", pki.client_cert, "--key", pki.client_key
    )
    assert res.returncode == 4 and b"certificate" in res.stderr
    res = heka_inproc(
        "inject",
        "--heka",
        url,
        "--ca",
        pki.ca_cert,
        "--cert",
        pki.client_cert,
        "--key",
        pki.client_key,
        "--payload",
        "with cert",
    )
    assert res.returncode == 0, res.stderr
    code, out, err = srv.finish()
    assert code == 0, err
    assert [r["Payload"] for r in _jsonl(out)] == ["with cert"]


def test_signatures_wrong_key_unknown_signer_and_missing_hmac_are_dropped(serve, tmp_path) -> None:
    stats = tmp_path / "stats.json"
    srv = serve(
        "--listen",
        "tcp://127.0.0.1:0",
        "--signer",
        "ops:1:sha1:right",
        "--count",
        "2",
        "--stats-file",
        str(stats),
    )
    body = encode_message(Message.new(type="no.hmac"))
    header = Header(len(body), hmac_signer="ops", hmac_key_version=1).encode()
    stream = b"".join(
        [
            frame(Message.new(type="wrong.key"), Signer("ops", 1, "sha1", b"wrong")),
            frame(Message.new(type="unknown.signer"), Signer("dev", 1, "sha1", b"right")),
            frame(Message.new(type="old.version"), Signer("ops", 0, "sha1", b"right")),
            b"\x1e" + bytes([len(header)]) + header + b"\x1f" + body,
            frame(
                Message.new(type="good.md5"), Signer("ops", 1, "md5", b"right")
            ),  # hash comes from the header
            frame(Message.new(type="unsigned")),
        ]
    )
    send_framed(srv.url("tcp"), stream)
    code, out, err = srv.finish()
    assert code == 1, err  # something was dropped
    assert [r["Type"] for r in _jsonl(out)] == ["good.md5", "unsigned"]
    summary = json.loads(stats.read_text())
    assert summary["dropped"] == {"bad_signature": 1, "unknown_signer": 2, "unsigned_hmac": 1}
    assert summary["accepted"] == 2 and summary["received"] == 6
    assert b"dropped 4 (bad_signature 1, unknown_signer 2, unsigned_hmac 1)" in err


def test_random_megabyte_then_good_message(serve) -> None:
    srv = serve("--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0", "--count", "2")
    data = random.Random(99).randbytes(1 << 20)
    send_framed(srv.url("tcp"), data)
    for i in range(0, 64 * 1024, 8 * 1024):  # garbage datagrams too
        send_framed(srv.url("udp"), data[i : i + 8 * 1024])
    send_framed(srv.url("tcp"), frame(Message.new(type="after.tcp")))
    send_framed(srv.url("udp"), frame(Message.new(type="after.udp")))
    code, out, err = srv.finish(timeout=120)
    assert b"Traceback" not in err
    assert sorted(r["Type"] for r in _jsonl(out)) == ["after.tcp", "after.udp"]
    assert code == 1 and b"corrupt" in err


def test_sigterm_prints_summary_and_framed_output_reads_back(serve, heka_inproc, tmp_path) -> None:
    out_file = tmp_path / "got.heka"
    srv = serve("--listen", "tcp://127.0.0.1:0", "--output", str(out_file))
    for i in range(3):
        send_framed(srv.url("tcp"), frame(Message.new(type="framed", payload=str(i))))
    # Wait until all three are in before stopping (the summary counts them).
    deadline = time.monotonic() + 60
    while (
        out_file.stat().st_size == 0
        or len(heka_inproc("cat", "-f", "jsonl", out_file).stdout.splitlines()) < 3
    ):
        assert time.monotonic() < deadline, "serve did not write the messages"
        time.sleep(0.05)
    code, out, err = srv.terminate(signal.SIGTERM)
    assert code == 0, err
    assert out == b""
    assert b"stopped (SIGTERM)" in err and b"received 3, accepted 3, dropped 0" in err
    res = heka_inproc("cat", "-f", "jsonl", out_file)
    assert [r["Payload"] for r in _jsonl(res.stdout)] == ["0", "1", "2"]


def test_inject_connection_refused_is_exit_4(heka_inproc) -> None:
    res = heka_inproc("inject", "--heka", f"127.0.0.1:{free_port()}", "--timeout", "5")
    assert res.returncode == 4
    assert b"heka: error: cannot send to tcp://127.0.0.1:" in res.stderr


def test_heka_inject_alias_go_flags(serve) -> None:
    srv = serve("--listen", "tcp://127.0.0.1:0", "--count", "1")
    code = "import sys; from hekacli.commands.inject import alias_main; alias_main()"
    addr = srv.url("tcp").removeprefix("tcp://")
    res = subprocess.run(
        [sys.executable, "-c", code, "-heka", addr, "-type=alias.t", "-payload", "y", "-severity", "2"],
        capture_output=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    rc, out, err = srv.finish()
    rec = _jsonl(out)[0]
    assert rec["Type"] == "alias.t" and rec["Payload"] == "y" and rec["Severity"] == 2


def test_inject_config_file_in_heka_sbmgr_shape(heka_inproc, tmp_path, pki) -> None:

    cfg = {
        "listeners": [{"url": "tls://127.0.0.1:0", "cert": str(pki.server_cert), "key": str(pki.server_key)}],
        "signers": {"test_0": "4865ey9urgkidls xtb0[7lf9rzcivthkm"},
        "output": "none",
        "verify": False,
    }
    d = ServeDaemon(cfg, log=lambda t: None)
    got: list = []

    class Keep:
        name, message_matcher, message_signer = "keep", None, "test"

        async def start(self, ctx) -> None: ...

        def process(self, delivery) -> None:
            got.append(delivery)

        async def stop(self) -> None: ...

        def stats(self) -> dict:
            return {}

    toml = tmp_path / "sbmgr.toml"
    with d.running():
        asyncio.run_coroutine_threadsafe(_add_plugin(d, Keep()), d._loop).result(30)
        toml.write_text(
            f'ip_address = "{d.urls[0].removeprefix("tls://")}"\nuse_tls = true\n'
            '[signer]\nname = "test"\nhmac_hash = "md5"\nhmac_key = "4865ey9urgkidls xtb0[7lf9rzcivthkm"\n'
            f'version = 0\n[tls]\nroot_cafile = "{pki.ca_cert}"\n'
        )
        res = heka_inproc("inject", "--config", toml, "--type", "signed.by.config")
        assert res.returncode == 0, res.stderr
        deadline = time.monotonic() + 30
        while not got:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert got[0].signer == "test" and got[0].message.type == "signed.by.config"
    toml.write_text('ip_adress = "x"\n')
    res = heka_inproc("inject", "--config", toml)
    assert res.returncode == 2 and b"ip_adress" in res.stderr


async def _add_plugin(d, plugin) -> None:
    await plugin.start(d.router)
    d.router.add_plugin(plugin)


def test_heka_inject_alias_without_flags_prints_usage(monkeypatch, capsys) -> None:
    from hekacli.commands.inject import alias_main

    monkeypatch.setattr(sys, "argv", ["heka-inject"])
    with pytest.raises(SystemExit) as exc:
        alias_main()
    assert exc.value.code == 0
    assert "--heka" in capsys.readouterr().out
