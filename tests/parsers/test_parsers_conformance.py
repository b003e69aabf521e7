"""Conformance: every upstream-test case of decoder-cases.json with expect_match true (spec §9).

Grammar-level cases give Heka's raw capture dict; our records are already in message form, so
`heka_to_record` maps capture names the way Heka's decoders turned them into a message (time ->
Timestamp, pri -> Severity + syslogfacility, syslogtag -> programname + Pid, ...). Values are
compared as float64 where Heka compared doubles; representations are checked on the Heka message
built by `Decoder.to_message`. The decoders run with ``raw_values=True`` here: Heka kept the
server's escapes, our default decodes them (tested in test_parsers_escapes.py).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import VECTORS
from hekacli.parsers import build_decoder, grammar, strftime, times
from hekacli.parsers.derive import user_agent_derived
from hekacli.parsers.rsyslog import parse_structured_data
from hekacli.parsers.useragent import normalize_user_agent

CASES = json.loads((VECTORS / "decoder-cases.json").read_text())
UPSTREAM = [c for c in CASES if c["origin"] == "upstream-test" and c["expect_match"]]


def _ids(cases):
    return [f"{c['id']}-{c['decoder']}-{c['test_function']}" for c in cases]


def _by(*decoders, level=None):
    out = [c for c in UPSTREAM if c["decoder"] in decoders]
    return [c for c in out if level is None or c["level"] == level]


def year_relative(spec: dict) -> int:
    year = datetime.now(UTC).year
    if "tz" in spec:
        dt = datetime(
            year,
            spec["month"],
            spec["day"],
            spec["hour"],
            spec["min"],
            spec["sec"],
            tzinfo=ZoneInfo(spec["tz"]),
        )
        return int(dt.timestamp()) * times.NS
    dt = datetime(year, spec["month"], spec["day"], spec["hour"], spec["min"], spec["sec"], tzinfo=UTC)
    return (int(dt.timestamp()) - spec.get("utc_offset_seconds", 0)) * times.NS


def expected_value(v):
    if isinstance(v, dict) and "$year_relative" in v:
        return year_relative(v["$year_relative"])
    return v


def same(actual, expected) -> bool:
    """Heka compared doubles: numbers as float64, lists element-wise."""
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return (
            isinstance(actual, (int, float))
            and math.isclose(float(actual), float(expected), rel_tol=0, abs_tol=0)
            or float(actual) == float(expected)
        )
    return actual == expected


NAME_MAP = {
    "nginx_access": {"time": "Timestamp"},
    "apache_access": {"time": "Timestamp"},
    "nginx_error": {"time": "Timestamp", "msg": "Payload", "severity": "Severity", "pid": "Pid"},
    "rsyslog": {"timestamp": "Timestamp"},
}


def heka_to_record(decoder: str, expected: dict) -> dict:
    """Heka capture names/shapes -> our record keys (with representations kept aside)."""
    out: dict = {}
    for k, v in expected.items():
        if decoder == "rsyslog":
            if k == "syslogtag":
                out["programname"] = v["programname"]
                if "pid" in v:
                    out["Pid"] = v["pid"]
                continue
            if k == "pri":
                out["Severity"] = v["severity"]
                out["syslogfacility"] = v["facility"]
                continue
            if k == "pri-text":
                # Heka's quirk kept only the facility number under "pri-text"; we decode the whole
                # facility.severity<pri> into Severity + syslogfacility (docs/decoders.md).
                out["syslogfacility"] = v
                continue
            if k in ("syslogpriority", "syslogseverity", "syslogpriority-text", "syslogseverity-text"):
                out["Severity"] = v
                continue
            if k == "syslogfacility-text":
                out["syslogfacility"] = v
                continue
            if k == "structured-data":
                out["structured-data"] = v
                continue
            if k in ("pid",):
                out["Pid"] = v
                continue
            if k == "hostname":
                out["Hostname"] = v
                continue
            if k == "source":
                out.setdefault("Hostname", v)
                continue
            if k == "msg":
                out["Payload"] = v
                continue
        if decoder == "nginx_error" and k == "Fields":
            out.update(v)
            continue
        out[NAME_MAP[decoder].get(k, k)] = v
    return out


def check_record(decoder_name: str, dec, rec: dict, expected: dict) -> None:
    assert rec is not None
    msg = dec.to_message(rec)
    want = heka_to_record(decoder_name, expected)
    for key, exp in want.items():
        if isinstance(exp, dict) and exp.get("$empty_table"):
            assert rec.get(key) is None, key
            continue
        if key == "structured-data":
            assert parse_structured_data(rec[key]) == [exp]
            continue
        rep = None
        if isinstance(exp, dict) and "value" in exp:
            rep, exp = exp.get("representation"), exp["value"]
        exp = expected_value(exp)
        assert key in rec, f"{key} missing from {rec}"
        assert same(rec[key], exp), f"{key}: {rec[key]!r} != {exp!r}"
        if rep is not None:
            f = msg.find_field(key)
            assert f is not None and f.representation == rep, (key, f)


# -- nginx / apache / nginx error / rsyslog at grammar level ------------------------------------------


@pytest.mark.parametrize(
    "case", _by("nginx_access", level="grammar"), ids=_ids(_by("nginx_access", level="grammar"))
)
def test_nginx_grammar(case):
    dec = build_decoder("nginx", log_format=case["format"], raw_values=True)
    rec = dec.decode(case["line"])
    assert rec is not None, dec.explain_failure(case["line"])
    # nginx_upstream_defaults only asserts that the line matches
    check_record("nginx_access", dec, rec, case["expected"])


@pytest.mark.parametrize(
    "case", _by("apache_access", level="grammar"), ids=_ids(_by("apache_access", level="grammar"))
)
def test_apache_grammar(case):
    dec = build_decoder("apache", log_format=case["format"], raw_values=True)
    rec = dec.decode(case["line"])
    assert rec is not None, dec.explain_failure(case["line"])
    check_record("apache_access", dec, rec, case["expected"])


@pytest.mark.parametrize("case", _by("nginx_error"), ids=_ids(_by("nginx_error")))
def test_nginx_error_grammar(case):
    dec = build_decoder("nginx-error")
    rec = dec.decode(case["line"])
    check_record("nginx_error", dec, rec, case["expected"])
    assert rec["Type"] == "nginx.error"


@pytest.mark.parametrize("case", _by("rsyslog", level="grammar"), ids=_ids(_by("rsyslog", level="grammar")))
def test_rsyslog_grammar(case):
    dec = build_decoder("rsyslog", template=case["format"])
    rec = dec.decode(case["line"])
    assert rec is not None, dec.explain_failure(case["line"])
    check_record("rsyslog", dec, rec, case["expected"])


# -- message level ------------------------------------------------------------------------------------


def _message_value(msg, key):
    if key.startswith("Fields."):
        f = msg.find_field(key[7:])
        return None if f is None else (f.values[0] if len(f.values) == 1 else f.values), f
    return getattr(msg, key.lower()), None


MESSAGE_CASES = [
    c
    for c in UPSTREAM
    if c["level"] == "message"
    and c["decoder"] in ("nginx_access", "apache_access", "rsyslog", "rsyslog+nginx_access")
]


@pytest.mark.parametrize("case", MESSAGE_CASES, ids=_ids(MESSAGE_CASES))
def test_message_level(case):
    cfg = case.get("config", {})
    if case["decoder"] in ("nginx_access", "apache_access"):
        kind = "nginx" if case["decoder"] == "nginx_access" else "apache"
        dec = build_decoder(
            kind,
            log_format=cfg["log_format"],
            raw_values=True,
            user_agent="drop" if cfg.get("user_agent_transform") else False,
        )
    elif case["decoder"] == "rsyslog":
        if "decoders_syslog" in cfg:
            dec = build_decoder("rsyslog", template=cfg["decoders_syslog"]["template"])
        else:
            dec = build_decoder(
                "rsyslog", template=cfg["template"], tz=cfg.get("tz"), message_type=cfg.get("type")
            )
    else:
        sub = cfg["decoders_syslog"]["sub_decoders"]["nginx"]
        fmt = cfg["decoders_nginx_access"]["log_format"] if isinstance(sub, str) else sub[0][0][1]
        dec = build_decoder(
            "rsyslog",
            template=cfg["decoders_syslog"]["template"],
            sub_decoders={"nginx": build_decoder("nginx", log_format=fmt, raw_values=True)},
            sub_decoder_mode="replace" if isinstance(sub, str) else "fields",
        )
    rec = dec.decode(case["line"])
    assert rec is not None
    msg = dec.to_message(rec)
    for key, exp in case["expected"].items():
        value, f = _message_value(msg, key)
        if isinstance(exp, dict) and exp.get("$absent"):
            assert value is None, key
            continue
        rep = None
        if isinstance(exp, dict) and "value" in exp:
            rep, exp = exp.get("representation"), exp["value"]
        exp = expected_value(exp)
        assert value is not None, f"{key} missing"
        assert same(value, exp), f"{key}: {value!r} != {exp!r}"
        if rep is not None:
            assert f.representation == rep


# -- functions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _by("user_agent"), ids=_ids(_by("user_agent")))
def test_user_agent(case):
    got = dict(
        zip(
            ("user_agent_browser", "user_agent_version", "user_agent_os"),
            normalize_user_agent(case["line"]),
            strict=True,
        )
    )
    for key, exp in case["expected"].items():
        if isinstance(exp, dict) and exp.get("$absent"):
            assert got[key] is None
        else:
            assert got[key] == exp


@pytest.mark.parametrize(
    "case", _by("lpeg.heka#add_normalized_user_agent"), ids=_ids(_by("lpeg.heka#add_normalized_user_agent"))
)
def test_add_normalized_user_agent(case):
    lpeg = case["config"]["lpeg_heka"]
    mode = "conditional" if lpeg["user_agent_remove"] else "keep"
    d = user_agent_derived("ua", mode, lpeg.get("user_agent_normalized_field_name", "ua"))
    rec = {"ua": case["line"]}
    d.py(rec)
    for key, exp in case["expected"].items():
        name = key.removeprefix("Fields.")
        if isinstance(exp, dict) and exp.get("$absent"):
            assert name not in rec
        else:
            assert rec[name] == exp


DATE_FUNCS = {
    "rfc3339": times.rfc3339_to_ns,
    "clf": times.clf_to_ns,
    "rfc3164": times.rfc3164_to_ns,
    "mysql": times.mysql_to_ns,
    "pgsql": times.pgsql_to_ns,
}
DATE_RX = {
    "rfc3339": grammar.RFC3339_DATE,
    "clf": grammar.CLF_DATE,
    "rfc3164": grammar.RFC3164_DATE,
    "mysql": grammar.MYSQL_DATE,
    "pgsql": grammar.PGSQL_DATE,
}


@pytest.mark.parametrize("case", _by("date_time"), ids=_ids(_by("date_time")))
def test_date_time(case):
    fmt, line = case["format"], case["line"]
    if fmt in DATE_FUNCS:
        assert re.fullmatch(DATE_RX[fmt], line)
        ns = DATE_FUNCS[fmt](line)
    else:
        rx, conv = strftime.compile_strftime(fmt)
        assert re.fullmatch(rx, line)
        ns = conv(line)
    expected = expected_value(case["expected"]["time_ns"])
    # Heka computed (seconds + fraction) * 1e9 in float64; we compute the exact integer. They may differ
    # by Heka's rounding only: at most one float64 ulp of the value.
    assert abs(ns - expected) <= math.ulp(float(expected)), (ns, expected)


INVALID_DATES = [c for c in CASES if c["decoder"] == "date_time" and not c["expect_match"]]


@pytest.mark.parametrize("case", INVALID_DATES, ids=_ids(INVALID_DATES))
def test_date_time_invalid(case):
    assert not re.fullmatch(DATE_RX[case["format"]], case["line"])


@pytest.mark.parametrize("case", _by("ip_address"), ids=_ids(_by("ip_address")))
def test_ip_address(case):
    rx = grammar.IPV6 if case["format"].startswith("v6") else grammar.IPV4
    m = re.fullmatch(rx, case["line"]) if case["anchored"] else re.match(rx, case["line"])
    assert bool(m) == case["expected"]["match"]


def test_every_upstream_case_is_covered():
    covered = {
        c["id"]
        for c in _by(
            "nginx_access",
            "apache_access",
            "nginx_error",
            "rsyslog",
            "user_agent",
            "lpeg.heka#add_normalized_user_agent",
            "date_time",
            "ip_address",
        )
    }
    covered |= {c["id"] for c in MESSAGE_CASES}
    assert {c["id"] for c in UPSTREAM} <= covered


UPSTREAM_FAILURES = [c for c in CASES if c["origin"] == "upstream-test" and not c["expect_match"]]


@pytest.mark.parametrize("case", UPSTREAM_FAILURES, ids=_ids(UPSTREAM_FAILURES))
def test_upstream_expected_failures(case):
    if case["decoder"] == "date_time":
        assert not re.fullmatch(DATE_RX[case["format"]], case["line"])
        return
    cfg = case["config"]
    if case["decoder"] == "rsyslog":
        dec = build_decoder("rsyslog", template=cfg["template"], tz=cfg.get("tz"))
    else:
        kind = "nginx" if case["decoder"] == "nginx_access" else "apache"
        dec = build_decoder(kind, log_format=cfg["log_format"], user_agent="drop")
    assert dec.decode(case["line"]) is None
    assert dec.explain_failure(case["line"]).startswith("column ")
