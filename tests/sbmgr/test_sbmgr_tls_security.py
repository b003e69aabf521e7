"""Remote sandbox management over real TLS with client certificates made here (hekacli.certs.make_pki).

A `heka serve` daemon (in-process, on 127.0.0.1) has a TLS listener that requires client
certificates, two signers (ops, dev), a SandboxManager accepting only `ops`, and the dashboard.
Control messages are built, signed and sent exactly as `heka sbmgr` does.
"""

from __future__ import annotations

import contextlib
import re
import stat
import time

from hekacli.errors import NetworkError
from hekacli.framing import Header, Signer, frame
from hekacli.message import encode_message
from hekacli.sbmgr import build_control_message, client_ssl, send_control, wait_for_outcome
from hekacli.transport import client_ssl_context, send_framed

OPS_KEY = "ops-secret"  # as in conftest
SCRIPT = """
count = 0
function process_message() count = count + 1 return 0 end
function timer_event(ns) end
"""


def filter_toml(section: str) -> str:
    return f'[{section}]\ntype = "SandboxFilter"\nmessage_matcher = "Type == \'tick\'"\n'


def manager_of(d):
    return next(p for p in d.plugins() if p.name == "SandboxManager")


def test_only_a_correctly_signed_load_over_verified_tls_runs(pki, tmp_path, start_daemon, client_config):
    with start_daemon(tmp_path / "state") as (d, dash, _):
        url = d.urls[0]
        good = client_config(url)

        # 1. wrong key for the right signer name, 2. unknown signer, 3. a configured signer that is not
        # the manager's, 4. stale timestamp (5 s skew), 5. a signer named in the header without an HMAC,
        # 6. no client certificate at all.
        send_control(client_config(url, hmac_key="guessed"), [build_control_message(
            "load", script=SCRIPT, config=filter_toml("WrongKey"))])
        send_control(client_config(url, name="eve", version=0), [build_control_message(
            "load", script=SCRIPT, config=filter_toml("Unknown"))])
        dev = client_config(url, name="dev", version=0, hmac_key="dev-secret", hmac_hash="md5")
        send_control(dev, [build_control_message("load", script=SCRIPT, config=filter_toml("DevSigned"))])
        stale = build_control_message("load", script=SCRIPT, config=filter_toml("Stale"),
                                      timestamp=time.time_ns() - 5 * 10**9)
        send_control(good, [stale])
        body = encode_message(build_control_message("load", script=SCRIPT, config=filter_toml("NoHmac")))
        header = Header(len(body), hmac_signer="ops", hmac_key_version=1).encode()
        no_hmac = bytes([0x1E, len(header)]) + header + b"\x1f" + body
        send_framed(url, no_hmac, ssl=client_ssl(good))
        no_cert = client_ssl_context(ca=pki.ca_cert)
        with contextlib.suppress(NetworkError):  # TLS 1.3 may only notice the refusal after sending
            send_framed(url, frame(build_control_message("load", script=SCRIPT, config=filter_toml("NoCert")),
                                   Signer("ops", 1, "sha1", OPS_KEY.encode())), ssl=no_cert)

        # finally the right key: it runs
        msg = build_control_message("load", script=SCRIPT, config=filter_toml("Good"))
        send_control(good, [msg])
        outcome = wait_for_outcome(dash, msg.uuid_string, timeout=15)
        assert (outcome.ok, outcome.name, outcome.state) == (True, "SandboxManager-Good", "running")

        summary = d.summary()
        assert summary["dropped"] == {"bad_signature": 1, "unknown_signer": 1, "unsigned_hmac": 1}
        manager = manager_of(d)
        assert manager.rejected == {"signer": 1, "skew": 1}
        reasons = sorted(e["reason"] for e in manager.recent_events() if e["outcome"] == "rejected")
        assert re.fullmatch(r"Discarded control message: [56] seconds skew", reasons[0])
        assert reasons[1] == "control message from signer 'dev' refused (message_signer is 'ops')"
        # the no-certificate connection delivered nothing: only the good and the daemon-checked ones arrived
        listener = summary["listeners"][url]
        assert listener["accepted"] == 3  # dev-signed, stale, good: all verified, gated by the manager
        assert listener["tls_failures"] == 1  # the no-certificate handshake, refused and counted
        names = [sb["name"] for sb in dash.sandboxes()]
        assert names == ["SandboxManager-Good"]
        files = sorted(p.name for p in (tmp_path / "state" / "sbxmgrs").iterdir())
        assert files == ["SandboxManager-Good.lua", "SandboxManager-Good.toml"]
        for p in (tmp_path / "state" / "sbxmgrs").iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "state" / "sbxmgrs").stat().st_mode) == 0o700


def test_max_filters_refused_with_the_reason(tmp_path, start_daemon, client_config):
    with start_daemon(tmp_path / "state", max_filters=2) as (d, dash, _):
        good = client_config(d.urls[0])
        msgs = [build_control_message("load", script=SCRIPT, config=filter_toml(f"F{i}")) for i in range(3)]
        send_control(good, msgs)
        outcomes = [wait_for_outcome(dash, m.uuid_string, timeout=15) for m in msgs]
        assert [o.ok for o in outcomes] == [True, True, False]
        assert outcomes[2].reason == "SandboxManager attempted to load more than 2 filters"
        assert sorted(sb["name"] for sb in dash.sandboxes()) == ["SandboxManager-F0", "SandboxManager-F1"]
        # the same name twice: no reload, an error
        again = build_control_message("load", script=SCRIPT, config=filter_toml("F0"))
        unload = build_control_message("unload", name="F1")
        send_control(good, [unload, again])
        assert wait_for_outcome(dash, unload.uuid_string, timeout=15).ok
        dup = wait_for_outcome(dash, again.uuid_string, timeout=15)
        assert (dup.ok, dup.reason) == (False, "loadSandbox failed: SandboxManager-F0 is already running")


def test_loaded_filter_survives_a_restart_and_an_unloaded_one_does_not(tmp_path, start_daemon, client_config):
    state = tmp_path / "state"
    with start_daemon(state, max_filters=3) as (d, dash, _):
        good = client_config(d.urls[0])
        keep = build_control_message("load", script=SCRIPT, config=filter_toml("Keep"))
        drop = build_control_message("load", script=SCRIPT, config=filter_toml("Drop"))
        send_control(good, [keep, drop])
        assert all(wait_for_outcome(dash, m.uuid_string, 15).ok for m in (keep, drop))
        unload = build_control_message("unload", name="Drop")
        send_control(good, [unload])
        assert wait_for_outcome(dash, unload.uuid_string, 15).ok
    with start_daemon(state, max_filters=3) as (d, dash, _):
        assert [sb["name"] for sb in dash.sandboxes()] == ["SandboxManager-Keep"]
        assert dash.sandboxes()[0]["state"] == "running"
        assert [e["name"] for e in manager_of(d).recent_events()] == ["SandboxManager-Keep"]
