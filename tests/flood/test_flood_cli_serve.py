"""The CLIs together: `heka flood run` into `heka serve --verify` (subprocesses), and flood's
reconnect through a receiver killed mid-run, with the verifier reporting what Heka's protocol lost."""

from __future__ import annotations

import json
import signal
import time

from conftest import free_port, run_heka

from hekacli.framing import read_stream


def test_cli_flood_into_cli_serve_verify(fl, tmp_path):
    """`heka serve --verify --count N` + `heka flood run`: the verifier's JSON is in --stats-file."""
    port = free_port()
    stats = tmp_path / "stats.json"
    # heka's floor(s*p) spacing, per connection (1000 sends each)
    signed = 2 * len([s for s in range(1, 1000) if (s * 5) // 100 != ((s - 1) * 5) // 100])
    accepted = 2000 - signed + 2  # + one end marker per connection
    serve = fl.start_serve(port, tmp_path / "unused.heka", "--verify", "--count", str(accepted),
                           "--stats-file", str(stats))
    try:
        proc = run_heka("flood", "run", f"tcp://127.0.0.1:{port}", "-n", "2000", "-c", "2",
                        "--signed-percentage", "5", "--signer", "ops:1:md5:key", timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        serve.wait(60)
    finally:
        fl.stop_proc(serve)
    err = serve.stderr.read().decode()
    summary = json.loads(stats.read_text())
    # serve knows no key for ops_1: exactly the signed sends are dropped, and the verifier names them lost
    assert summary["dropped"] == {"unknown_signer": signed}
    (plugin,) = [p for p in summary["plugins"] if p["name"] == "verify"]
    (run,) = plugin["stats"]["runs"]
    assert run["complete"] and run["lost"] == signed and run["received"] == 2000 - signed
    assert f"lost {signed} duplicates 0" in err and "latency ms: p50" in err
    last = proc.stdout.decode().strip().splitlines()[-1]
    assert last.endswith("Clean shutdown:  2000  messages sent;  2000  messages delivered.")


def test_flood_reconnects_and_the_verifier_reports_what_was_lost(fl, tmp_path):
    """flood --reconnect through a receiver killed mid-run: Heka's protocol loses what was in flight,
    and the verifier says how much (flood does not retransmit; `heka send` does)."""
    import threading

    from hekacli.flood.config import FloodConfig
    from hekacli.flood.sender import FloodRunner
    from hekacli.flood.verify import Verifier

    port = free_port()
    one, two = tmp_path / "one.heka", tmp_path / "two.heka"
    serve1 = fl.start_serve(port, one)
    serve2 = None
    cfg = FloodConfig(ip_address=f"127.0.0.1:{port}", num_messages=3000, rate=2000, reconnect_on_error=True,
                      reconnect_interval=1).validate()
    runner = FloodRunner(cfg, log=lambda text: None)
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("result", runner.run()), daemon=True)
    try:
        t.start()
        time.sleep(0.7)
        fl.stop_proc(serve1, signal.SIGKILL)
        serve2 = fl.start_serve(port, two)
        t.join(60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the end marker is in the second capture
            verifier = Verifier()
            with open(two, "rb") as fh:
                for rec in read_stream(fh):
                    verifier.add(rec.message())
            if verifier.ok or any(r["complete"] for r in verifier.summary()["runs"]):
                break
            time.sleep(0.2)
    finally:
        fl.stop_proc(serve1, signal.SIGKILL)
        if serve2 is not None:
            fl.stop_proc(serve2)
    result = box["result"]
    assert result.sent == 3000 and result.errors >= 1 and result.reconnects >= 1
    with open(one, "rb") as fh:
        first = [r.message().get_field("flood_seq") for r in read_stream(fh)]
    (run,) = verifier.summary()["runs"]
    # the second receiver got the end marker: it knows 3000 were sent and reports its gap honestly
    assert run["complete"] and run["expected"] == 3000
    assert run["lost"] == 3000 - run["unique"] >= len(set(first)) > 0
