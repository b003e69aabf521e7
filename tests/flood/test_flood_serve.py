"""flood -> heka serve --verify on 127.0.0.1: TCP, UDP, TLS with client certificates, signed and
corrupt sends, several connections, the CLI and the heka-flood alias."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_heka

from hekacli.errors import NetworkError
from hekacli.flood.config import FloodConfig
from hekacli.flood.generator import SignerConfig
from hekacli.flood.sender import FloodRunner


def test_tcp_counts_are_exact_with_several_connections(fl):
    with fl.serve(["tcp://127.0.0.1:0"]) as d:
        cfg = FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=3000, connections=3,
                          static_message_size=64)
        result = FloodRunner(cfg.validate()).run()
        summary = fl.wait_complete(d, connections=3)
    assert result.sent == result.delivered == 3000 and result.errors == 0
    (run,) = summary["runs"]
    assert run["run"] == result.run_id and run["connections"] == 3
    assert run["complete"] and run["expected"] == run["received"] == run["unique"] == 3000
    assert run["lost"] == run["duplicates"] == 0
    lat = run["latency_ns"]
    assert lat["count"] == 3000 and 0 <= lat["p50"] <= lat["p99"] <= lat["max"]


def test_signed_and_corrupt_give_exact_drops_at_the_receiver(fl):
    # The receiver knows no key for the flood signer: every signed send must be dropped as unknown.
    with fl.serve(["tcp://127.0.0.1:0"]) as d:
        cfg = FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=2000, signed_percentage=10,
                          corrupt_percentage=4, signer=SignerConfig("flood", "md5", "k", 1))
        result = FloodRunner(cfg.validate()).run()
        verify = fl.wait_complete(d)
        summary = d.summary()
    # independently: heka's floor(s*p) spacing over 2000 sends, corrupt first
    corrupt = {s for s in range(1, 2000) if (s * 4) // 100 != ((s - 1) * 4) // 100}
    signed = {s for s in range(1, 2000) if (s * 10) // 100 != ((s - 1) * 10) // 100} - corrupt
    assert result.kinds == {"plain": 2000 - len(corrupt) - len(signed), "signed": len(signed),
                            "corrupt": len(corrupt), "oversized": 0}
    assert summary["dropped"] == {"undecodable": len(corrupt), "unknown_signer": len(signed)}
    assert summary["accepted"] == 2000 - len(corrupt) - len(signed) + 1  # + the end marker
    (run,) = verify["runs"]
    # the signed sends carry sequence numbers, so the verifier reports them lost
    assert run["complete"] and run["lost"] == len(signed) and run["expected"] == 2000 - len(corrupt)


def test_signed_sends_accepted_when_the_receiver_has_the_key(fl):
    with fl.serve(["tcp://127.0.0.1:0"], signers={"flood_1": "k"}) as d:
        cfg = FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=1000, signed_percentage=50,
                          signer=SignerConfig("flood", "sha1", "k", 1))
        result = FloodRunner(cfg.validate()).run()
        verify = fl.wait_complete(d)
        summary = d.summary()
    assert result.kinds["signed"] == 499
    assert summary["dropped_total"] == 0
    (run,) = verify["runs"]
    assert run["complete"] and run["lost"] == 0 and run["received"] == 1000


def test_tls_with_client_certificates(fl, pki):
    listener = {"url": "tls://127.0.0.1:0", "cert": str(pki.server_cert), "key": str(pki.server_key),
                "client_ca": str(pki.ca_cert), "require_client_cert": True}
    with fl.serve([listener]) as d:
        tls = {"root_cafile": str(pki.ca_cert), "cert_file": str(pki.client_cert),
               "key_file": str(pki.client_key)}
        cfg = FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=1500, connections=2, use_tls=True,
                          tls=tls)
        result = FloodRunner(cfg.validate()).run()
        verify = fl.wait_complete(d, connections=2)
        # without a client certificate the server refuses the handshake: nothing arrives
        no_cert = FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=10, use_tls=True,
                              tls={"root_cafile": str(pki.ca_cert)})
        with pytest.raises(NetworkError):
            FloodRunner(no_cert.validate()).run()
        # and a flood that does not trust the server's CA never connects
        with pytest.raises(NetworkError):
            FloodRunner(FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=10, use_tls=True,
                                    tls={"cert_file": str(pki.client_cert),
                                         "key_file": str(pki.client_key)}).validate()).run()
        after = fl.wait_idle(d, quiet=0.3)
    assert result.sent == 1500
    (run,) = verify["runs"]
    assert run["complete"] and run["received"] == run["expected"] == 1500 and run["lost"] == 0
    assert after["accepted"] == 1500 + 2  # + one end marker per connection; nothing from the others


def test_udp_loss_is_reported_not_hidden(fl):
    with fl.serve(["udp://127.0.0.1:0"]) as d:
        cfg = FloodConfig(ip_address=fl.host_port(d.urls[0]), sender="udp", num_messages=3000,
                          static_message_size=200)
        result = FloodRunner(cfg.validate()).run()
        fl.wait_idle(d, quiet=0.5)
        summary = d.summary()
        verify = next(p for p in d.plugins() if p.name == "verify").verifier.summary()
    assert result.sent == 3000
    (run,) = verify["runs"]
    # whatever UDP lost is accounted: every sequence number is either received or reported lost
    assert 0 < run["unique"] <= run["expected"]
    assert run["unique"] + run["lost"] == run["expected"]
    assert 0 <= summary["accepted"] - run["received"] <= 3  # the end marker is sent 3 times over UDP
    if run["complete"]:
        assert run["expected"] == 3000


def test_cli_run_json_and_rate(fl, tmp_path):
    with fl.serve(["tcp://127.0.0.1:0"]) as d:
        proc = run_heka("flood", "run", d.urls[0], "-n", "400", "--rate", "2000", "--json", "--size", "32",
                        timeout=60)
        verify = fl.wait_complete(d)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["sent"] == 400 and summary["expected_at_receiver"] == 400
    assert summary["rate_target"] == 2000
    (run,) = verify["runs"]
    assert run["run"] == summary["run_id"] and run["received"] == 400 and run["lost"] == 0


def test_alias_reads_flood_toml_and_prints_hekas_lines(fl, tmp_path):
    with fl.serve(["tcp://127.0.0.1:0"]) as d:
        (tmp_path / "flood.toml").write_text(
            f'[default]\nip_address = "{fl.host_port(d.urls[0])}"\nsender = "tcp"\nnum_messages = 300\n'
            f'static_message_size = 100\n\n[other]\nip_address = "127.0.0.1:1"\n')
        proc = subprocess.run([sys.executable, "-c", "from hekacli.commands.flood import alias_main; "
                               "alias_main()", "-test", "default"], cwd=tmp_path, capture_output=True,
                              timeout=60, text=True)
        verify = fl.wait_complete(d)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.endswith("Clean shutdown:  300  messages sent;  300  messages delivered.")
    assert verify["runs"][0]["received"] == 300


def test_alias_without_flags_prints_usage_and_exits_0(fl):
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['heka-flood']; "
                           "from hekacli.commands.flood import alias_main; alias_main()"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "-config" in proc.stderr


def test_connection_refused_is_one_line_exit_4(fl):
    from conftest import free_port

    proc = run_heka("flood", "run", f"tcp://127.0.0.1:{free_port()}", "-n", "10")
    assert proc.returncode == 4
    assert proc.stderr.decode().startswith("heka: error: cannot connect")
    assert b"Traceback" not in proc.stderr


def test_ctrl_c_ends_an_unbounded_run_cleanly(fl):
    import signal
    import time

    from conftest import heka_cmd

    with fl.serve(["tcp://127.0.0.1:0"]) as d:
        proc = subprocess.Popen(heka_cmd("flood", "run", d.urls[0], "--rate", "500", "--json"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and d.summary()["accepted"] < 200:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        verify = fl.wait_complete(d)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["stopped_by"] == "interrupt" and summary["end_markers"] == 1
    (run,) = verify["runs"]
    assert run["complete"] and run["lost"] == 0 and run["received"] == summary["sent"] >= 200


def test_verify_section_writes_json_on_stop_and_rejects_unknown_keys(fl, tmp_path):
    from hekacli.errors import ConfigError
    from hekacli.flood.verify import build_serve_plugins

    out = tmp_path / "verify.json"
    section = {"json": str(out), "message_matcher": "Type == 'hekabench'"}
    with fl.serve(["tcp://127.0.0.1:0"], verify=section) as d:
        cfg = FloodConfig(ip_address=fl.host_port(d.urls[0]), num_messages=100)
        result = FloodRunner(cfg.validate()).run()
        fl.wait_idle(d, quiet=0.3)
    summary = json.loads(out.read_text())
    (run,) = summary["runs"]
    # the matcher keeps the end marker (Type heka.flood.end) away: the run is seen but not complete
    assert run["run"] == result.run_id and run["received"] == 100 and not run["complete"]
    assert run["lost"] == 0 and summary["other_messages"] == 0
    with pytest.raises(ConfigError, match="verify"):
        build_serve_plugins({"jsn": "x"}, None)
    assert build_serve_plugins(False, None) == []

