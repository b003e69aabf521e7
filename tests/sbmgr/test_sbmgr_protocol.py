"""The control message, the submitted filter config, sbmgr.toml, and the Go-flag aliases."""

from __future__ import annotations

import time

import pytest
from hekacli.commands.sbmgr import alias_argv
from hekacli.commands.sbmgrload import alias_argv as load_alias_argv

from hekacli.errors import ConfigError, InputError
from hekacli.framing import Signer, Splitter, frame
from hekacli.message import ValueType, decode_message, encode_message
from hekacli.sbmgr import (
    CONTROL_TYPE,
    COUNTER_LUA,
    build_control_message,
    control_action,
    counter_config,
    full_filter_name,
    load_sbmgr_config,
    normalize_name,
    parse_filter_config,
    skew_seconds,
)


def test_load_message_shape_matches_heka_sbmgr():
    msg = build_control_message("load", script="-- lua", config="[X]\n", hostname="h")
    assert (msg.type, msg.logger, msg.hostname, msg.payload) == (CONTROL_TYPE, "hekad", "h", "-- lua")
    assert len(msg.uuid) == 16
    assert abs(time.time_ns() - msg.timestamp) < 5 * 10**9
    # config first (representation "toml"), action always last
    assert [(f.name, f.value_type, f.representation, f.values) for f in msg.fields] == [
        ("config", ValueType.STRING, "toml", ["[X]\n"]),
        ("action", ValueType.STRING, "", ["load"]),
    ]


def test_unload_message_carries_the_unprefixed_name():
    msg = build_control_message("unload", name="Example")
    assert [(f.name, f.representation, f.values) for f in msg.fields] == [
        ("name", "", ["Example"]),
        ("action", "", ["unload"]),
    ]
    assert msg.payload is None
    assert control_action(msg) == "unload"


def test_signed_control_message_round_trips_through_a_verifying_splitter():
    msg = build_control_message("load", script="x = 1", config="[A]\n")
    signer = Signer("ops", 1, "sha1", b"secret")
    data = frame(msg, signer)
    good = Splitter(signers={"ops_1": b"secret"})
    records = good.feed(data)
    assert [r.signer for r in records] == ["ops"]
    back = records[0].message()
    assert back.fields[-1].values == ["load"] and back.fields[0].representation == "toml"
    assert decode_message(encode_message(back)).payload == "x = 1"
    wrong = Splitter(signers={"ops_1": b"other"})
    assert wrong.feed(data) == [] and sum(wrong.dropped.values()) == 1


def test_skew_is_whole_seconds_either_way():
    msg = build_control_message("load", timestamp=100 * 10**9)
    assert skew_seconds(msg, now_ns=105 * 10**9 - 1) == 4
    assert skew_seconds(msg, now_ns=105 * 10**9) == 5
    assert skew_seconds(msg, now_ns=95 * 10**9) == 5


@pytest.mark.parametrize(
    ("manager", "section", "full"),
    [
        ("PlatformDevs", "Example", "PlatformDevs-Example"),
        ("my mgr.1", "a-b/c", "my_mgr_1-a_b_c"),
        ("Mgr", "café", "Mgr-caf_"),  # ASCII \W: non-ASCII letters become _ (Go RE2)
    ],
)
def test_full_names_follow_heka(manager, section, full):
    assert full_filter_name(manager, section) == full
    assert normalize_name("Mgr-Flt") == "Mgr_Flt"


def test_filter_config_parses_and_reports_forced_settings():
    spec = parse_filter_config(
        '[Example]\ntype = "SandboxFilter"\nmessage_matcher = "Type == \'x\'"\nticker_interval = 5\n'
        'preserve_data = true\nmemory_limit = 999999999\nfilename = "a.lua"\n[Example.config]\nrows = 3\n'
    )
    assert (spec.section, spec.message_matcher, spec.ticker_interval, spec.preserve_data) == (
        "Example",
        "Type == 'x'",
        5,
        True,
    )
    assert spec.config == {"rows": 3}
    assert spec.ignored == ["filename", "memory_limit"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[A]\ntype = "SandboxFilter"\nmessage_matcher = "TRUE"\n[B]\ntype = "SandboxFilter"\n',
            "exactly one section",
        ),
        ("x = 1\n", "top-level keys"),
        (
            '[A]\ntype = "LogstreamerInput"\nmessage_matcher = "TRUE"\n',
            "Plugin must be a SandboxFilter, received LogstreamerInput",
        ),
        (
            '[A]\ntype = "SandboxFilter"\nmessage_matcher = "TRUE"\nbogus = 1\n',
            "field 'bogus': unknown config setting",
        ),
        ('[A]\ntype = "SandboxFilter"\nmessage_matcher = "TRUE"\nticker_interval = "5"\n', "expects a int"),
        ('[A]\ntype = "SandboxFilter"\n', "message_matcher is required"),
        ("[A\n", "invalid TOML"),
    ],
)
def test_filter_config_errors_name_the_problem(text, expected):
    with pytest.raises(ConfigError) as err:
        parse_filter_config(text, source="x.toml")
    assert expected in str(err.value)
    assert str(err.value).startswith("x.toml")


def test_section_named_sandboxfilter_needs_no_type():
    assert parse_filter_config('[SandboxFilter]\nmessage_matcher = "TRUE"\n').section == "SandboxFilter"


def test_sbmgr_toml_as_heka_wrote_it(tmp_path):
    # Heka's decoder matched keys case-insensitively ([TLS] fills the tls table)
    path = tmp_path / "sbmgr.toml"
    path.write_text(
        'IP_Address = "127.0.0.1:5566"\nuse_tls = true\ndashboard = "127.0.0.1:4352"\n'
        '[signer]\nname = "ops"\nhmac_hash = "sha1"\nhmac_key = "k"\nversion = 2\n'
        '[TLS]\ncert_file = "c.pem"\nkey_file = "k.pem"\nroot_cafile = "ca.pem"\nmin_version = "TLS12"\n'
    )
    cfg = load_sbmgr_config(path)
    assert cfg.url == "tls://127.0.0.1:5566"
    assert (cfg.signer.name, cfg.signer.hmac_hash, cfg.signer.hmac_key, cfg.signer.version) == (
        "ops",
        "sha1",
        "k",
        2,
    )
    assert cfg.tls["root_cafile"] == "ca.pem" and cfg.dashboard == "127.0.0.1:4352"


def test_sbmgr_toml_without_signer_signs_with_the_zero_signer(tmp_path):
    path = tmp_path / "sbmgr.toml"
    path.write_text('ip_address = "127.0.0.1:5565"\n')
    cfg = load_sbmgr_config(path)
    assert (cfg.url, cfg.signer.name, cfg.signer.hmac_key, cfg.signer_given) == (
        "tcp://127.0.0.1:5565",
        "",
        "",
        False,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('ip_adress = "x"\n', "field 'ip_adress': unknown key in the top level"),
        ('[signer]\nkey = "x"\n', "field 'key': unknown key in [signer]"),
        ('use_tls = "yes"\n', "field 'use_tls': expects a bool"),
        ('[tls]\nmin_version = "TLS9"\n', "invalid TLS version"),
    ],
)
def test_sbmgr_toml_errors(tmp_path, text, expected):
    path = tmp_path / "sbmgr.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_sbmgr_config(path)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_missing_sbmgr_toml_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        load_sbmgr_config(tmp_path / "nope.toml")


def test_heka_sbmgr_alias_flags():
    assert alias_argv(
        ["-config", "s.toml", "-action", "load", "-script", "x.lua", "-scriptconfig=x.toml"]
    ) == ["sbmgr", "load", "x.lua", "--scriptconfig", "x.toml", "--config", "s.toml"]
    assert alias_argv(["-action=unload", "-filtername", "Example"]) == [
        "sbmgr",
        "unload",
        "Example",
        "--config",
        "sbmgr.toml",
    ]
    # Heka's defaults when no flag is given
    assert alias_argv([]) == [
        "sbmgr",
        "load",
        "xyz.lua",
        "--scriptconfig",
        "xyz.toml",
        "--config",
        "sbmgr.toml",
    ]
    with pytest.raises(SystemExit) as exc:
        alias_argv(["-action", "reload"])
    assert exc.value.code == 2
    assert load_alias_argv(["-config", "l.toml", "-action", "unload", "-num", "3"]) == [
        "sbmgrload",
        "--config",
        "l.toml",
        "--action",
        "unload",
        "--num",
        "3",
    ]


def test_sbmgrload_counter_config_is_valid():
    spec = parse_filter_config(counter_config(3))
    assert (spec.section, spec.message_matcher, spec.ticker_interval, spec.preserve_data) == (
        "CounterSandbox3",
        "Type == 'hekabench'",
        1,
        True,
    )
    assert "Got %d messages. %0.2f msg/sec" in COUNTER_LUA
