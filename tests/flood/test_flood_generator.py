"""Flood messages: Heka's spacing, byte-exact framing, the fast batch path, the histogram, configs."""

from __future__ import annotations

import math
import random

import pytest

from hekacli.errors import ConfigError, DecodeError
from hekacli.flood.config import config_from_table, load_flood_config, parse_duration
from hekacli.flood.generator import (
    KIND_CORRUPT,
    KIND_OVERSIZED,
    KIND_SIGNED,
    FloodGenerator,
    Framer,
    SignerConfig,
    build_templates,
)
from hekacli.flood.histogram import Histogram
from hekacli.flood.verify import Verifier
from hekacli.framing import Signer, Splitter, frame
from hekacli.message import Message, encode_message

NOW = 1_790_000_000_123_456_789


def heka_spacing(n: int, pct: float) -> list[int]:
    """The send indexes heka-flood marks for a percentage: floor(s·p) changes (written out again)."""
    p = pct / 100
    return [s for s in range(1, n) if math.floor(s * p) != math.floor((s - 1) * p)]


@pytest.mark.parametrize("signer", [None, SignerConfig("test", "md5", "testkey", 1),
                                    SignerConfig("ops", "sha1", "k3y", 7), SignerConfig()])
def test_framer_matches_the_wire_framing(signer):
    body = encode_message(Message(type="TEST", timestamp=1416840893000000000, payload="x" * 300))
    wire_signer = None if signer is None else Signer(signer.name, signer.version, signer.hmac_hash,
                                                     signer.hmac_key.encode())
    assert Framer(signer).frame(body) == frame(body, wire_signer)


def test_spacing_of_signed_and_corrupt_is_hekas():
    templates, oversized = build_templates(variable=False, ascii_only=True)
    gen = FloodGenerator(templates, oversized, run_id="r", signed_percentage=10, corrupt_percentage=3)
    kinds = [gen.next(NOW)[1] for _ in range(1000)]
    corrupt = [i for i, k in enumerate(kinds) if k == KIND_CORRUPT]
    signed = [i for i, k in enumerate(kinds) if k == KIND_SIGNED]
    assert corrupt == heka_spacing(1000, 3)
    # corrupt wins when both are due on the same send; message 0 is never special
    assert signed == [s for s in heka_spacing(1000, 10) if s not in corrupt]
    assert kinds[0] == "plain"
    assert gen.counts.corrupt == len(corrupt) and gen.counts.signed == len(signed)
    assert gen.next_seq == 1000 - len(corrupt)


def test_hundred_percent_signed_is_every_message_but_the_first():
    templates, _ = build_templates(variable=False)
    gen = FloodGenerator(templates, None, run_id="r", signed_percentage=100)
    kinds = [gen.next(NOW)[1] for _ in range(50)]
    assert kinds[0] == "plain" and set(kinds[1:]) == {KIND_SIGNED}


def test_receiver_sees_exact_drops_and_sequence():
    templates, _ = build_templates(variable=False, static_size=200)  # binary payloads
    gen = FloodGenerator(templates, None, run_id="run1", signed_percentage=20, corrupt_percentage=7,
                         signer=SignerConfig("flood", "sha1", "secret", 2))
    data = b"".join(gen.next(NOW + i)[0] for i in range(2000)) + gen.end_marker(NOW)
    splitter = Splitter(signers={"flood_2": b"secret"})
    verifier = Verifier()
    undecodable = 0
    signed = 0
    for rec in splitter.feed(data):
        try:
            msg = rec.message()
        except DecodeError:
            undecodable += 1
            continue
        signed += rec.signer == "flood"
        verifier.add(msg, NOW + 10_000)
    splitter.finish()
    assert sum(splitter.dropped.values()) == 0  # corruption never breaks the framing
    assert undecodable == gen.counts.corrupt == len(heka_spacing(2000, 7))
    assert signed == gen.counts.signed
    (run,) = verifier.summary()["runs"]
    assert run["complete"] and run["lost"] == 0 and run["duplicates"] == 0
    assert run["received"] == run["expected"] == 2000 - gen.counts.corrupt
    assert run["latency_ns"]["count"] == run["received"]


def test_unknown_signer_is_dropped_by_the_receiver():
    templates, _ = build_templates(variable=False)
    gen = FloodGenerator(templates, None, run_id="r", signed_percentage=25)
    data = b"".join(gen.next(NOW)[0] for _ in range(400))
    splitter = Splitter(signers={})
    records = splitter.feed(data)
    assert splitter.dropped["unknown_signer"] == gen.counts.signed == len(heka_spacing(400, 25))
    assert len(records) == 400 - gen.counts.signed


@pytest.mark.parametrize("interval", [0, 1500])
def test_batch_fast_path_equals_per_message_path(interval):
    templates, _ = build_templates(variable=False, static_size=50)
    fast = FloodGenerator(templates, None, run_id="abc", conn=3)
    slow = FloodGenerator(templates, None, run_id="abc", conn=3)
    blob = fast.batch(200, NOW, interval)  # 1- and 2-byte sequence numbers
    want = b"".join(slow.next(NOW + i * interval)[0] for i in range(200))
    fast.next_seq = slow.next_seq = 16300  # across the 2- to 3-byte boundary (16384)
    blob += fast.batch(200, NOW + 200 * interval, interval)
    want += b"".join(slow.next(NOW + (200 + i) * interval)[0] for i in range(200))
    got = [r.message() for r in Splitter().feed(blob)]
    expected = [r.message() for r in Splitter().feed(want)]
    assert len(got) == len(expected) == 400
    for a, b in zip(got, expected, strict=True):
        assert a.get_field("flood_seq") == b.get_field("flood_seq")
        assert a.get_field("flood_sent") == b.get_field("flood_sent")
        assert a.get_field("flood_run") == "abc" and a.get_field("flood_conn") == 3
        assert a.payload == b.payload
    assert [m.get_field("flood_seq") for m in got] == [*range(200), *range(16300, 16500)]
    assert fast.next_seq == 16500


def test_variable_mode_has_hekas_shape_and_oversized_is_too_big():
    templates, oversized = build_templates(variable=True, rng=random.Random(1))
    assert len(templates) == 64 and oversized is not None
    gen = FloodGenerator(templates, oversized, run_id="v", oversized_percentage=10)
    data = b"".join(gen.next(NOW)[0] for _ in range(60))
    splitter = Splitter()
    msgs = [r.message() for r in splitter.feed(data)]
    splitter.finish()
    assert splitter.dropped["too_big"] == gen.counts.oversized == len(heka_spacing(60, 10))
    assert len(msgs) == 60 - gen.counts.oversized
    m = msgs[0]
    assert m.type == "hekabench" and m.logger == "flood" and m.severity is None
    assert m.find_field("filler") is not None


def test_oversized_needs_variable_mode():
    with pytest.raises(ConfigError, match="variable_size_messages"):
        config_from_table({"ip_address": "127.0.0.1:1", "oversized_percentage": 5}).validate()
    templates, _ = build_templates(variable=False)
    with pytest.raises(ConfigError):
        FloodGenerator(templates, None, run_id="r", oversized_percentage=1)
    assert KIND_OVERSIZED == "oversized"


def test_histogram_percentiles_within_one_percent():
    rng = random.Random(7)
    values = [int(rng.lognormvariate(13, 1.5)) for _ in range(20000)]
    h = Histogram()
    for v in values:
        h.record(v)
    values.sort()
    for p in (50, 90, 99, 99.9):
        exact = values[math.ceil(len(values) * p / 100) - 1]
        got = h.percentile(p)
        assert exact <= got <= exact * 1.01 + 1, p
    assert h.percentile(100) == h.max == values[-1]
    other = Histogram()
    other.record(5)
    h.merge(other)
    assert h.count == 20001 and h.min == min(values[0], 5)


def test_flood_toml_read_as_heka_wrote_it(tmp_path):
    toml = tmp_path / "flood.toml"
    toml.write_text('''
[default]
ip_address = "127.0.0.1:5565"
sender = "tcp"
pprof_file = ""
encoder = "protobuf"
num_messages = 0
message_interval = "10ms"
corrupt_percentage = 0.0001
signed_percentage = 0.00011
variable_size_messages = true
ascii_only = false
max_message_size = 131072
reconnect_on_error = true
reconnect_interval = 0
use_tls = false

[default.signer]
name = "test"
hmac_hash = "md5"
hmac_key = "4865ey9urgkidls xtb0[7lf9rzcivthkm"
version = 0

[default.tls]
cert_file = "heka.crt"
key_file = "heka.key"
client_auth = "NoClientCert"
prefer_server_ciphers = true
min_version = "TLS11"
max_version = "TLS12"
''')
    cfg = load_flood_config(toml).validate()
    assert cfg.message_interval == pytest.approx(0.01)
    assert cfg.signer == SignerConfig("test", "md5", "4865ey9urgkidls xtb0[7lf9rzcivthkm", 0)
    assert cfg.reconnect_interval == 5.0  # < 1 means 5, as heka-flood
    assert cfg.variable_size_messages and cfg.max_message_size == 131072
    yaml_file = tmp_path / "flood.yaml"
    yaml_file.write_text("udp:\n  ip_address: 127.0.0.1:5565\n  sender: udp\n  num_messages: 10\n")
    assert load_flood_config(yaml_file, "udp").sender == "udp"


@pytest.mark.parametrize("text,match", [
    ("[default]\nip_adress = '1:2'\n", "ip_adress"),
    ("[default]\nnum_messages = 'ten'\n", "num_messages"),
    ("[other]\nnum_messages = 1\n", "no test named 'default'"),
    ("[default]\nmessage_interval = '10 parsecs'\n", "message_interval"),
])
def test_bad_configs_name_file_and_key(tmp_path, text, match):
    path = tmp_path / "flood.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as exc:
        load_flood_config(path)
    assert str(path) in str(exc.value)


def test_durations():
    assert parse_duration("1m30s") == 90
    assert parse_duration("250ms") == 0.25
    assert parse_duration(3) == 3.0
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_sample_configs_load():
    from conftest import SAMPLE_LOGS

    for test in ("default", "variable", "udp", "paced"):
        load_flood_config(SAMPLE_LOGS / "flood" / "flood.toml", test).validate()
    for test in ("default", "tls"):
        load_flood_config(SAMPLE_LOGS / "flood" / "flood.yaml", test).validate()
