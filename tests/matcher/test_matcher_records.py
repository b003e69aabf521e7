"""Flat records (decoder output, analysis rows) are matched directly, with the same semantics."""

from __future__ import annotations

import datetime as dt

from hekacli.matcher import compile_matcher


def rec(expr: str, record: dict) -> bool:
    return compile_matcher(expr).match_record(record)


NGINX = {
    "Timestamp": 1_795_824_000_000_000_000,
    "Type": "nginx.access",
    "Hostname": "web1",
    "remote_addr": "203.0.113.9",
    "request": "GET /index.html HTTP/1.1",
    "status": 502,
    "body_bytes_sent": 0,
    "request_time": 0.25,
    "cached": False,
    "tags": ["a", "b"],
    "codes": [200, 404],
}


def test_header_and_field_tests_on_a_decoder_record() -> None:
    assert rec("Type == 'nginx.access' && Fields[status] >= 500", NGINX)
    assert rec("Fields[request] =~ /^GET /", NGINX)
    assert rec("Fields[request_time] > 0.2 && Fields[body_bytes_sent] == 0", NGINX)
    assert rec("Fields[cached] == FALSE", NGINX)
    assert rec("Hostname == 'web1' && Logger == '' && Severity == 7 && Pid == 0", NGINX)
    assert not rec("Fields[status] == '502'", NGINX)  # an int field is numeric
    assert rec("Timestamp >= '2026-11-28T00:00:00Z' && Timestamp < '2026-11-28T00:00:01Z'", NGINX)


def test_lists_are_field_values_indexed_by_the_array_index() -> None:
    assert rec("Fields[tags] == 'a' && Fields[tags][0][1] == 'b'", NGINX)
    assert rec("Fields[tags][0][2] == NIL && Fields[tags][1] == NIL", NGINX)
    assert rec("Fields[codes][0][1] == 404", NGINX)
    assert not rec("Fields[codes][1] == 404", NGINX)
    assert rec("Fields[empty] == NIL", {"empty": []})
    assert rec("Fields[status][0][1] == NIL", NGINX)  # a scalar has only element 0


def test_none_is_a_missing_value() -> None:
    r = {"Type": None, "Severity": None, "x": None, "l": [None, 1]}
    assert rec("Type == '' && Severity == 7", r)
    assert rec("Fields[x] == NIL && Fields[l] == NIL && Fields[l][0][1] == 1", r)
    assert not rec("Fields[x] != 'a'", r)


def test_field_names_that_shadow_headers_use_the_fields_key() -> None:
    r = {"Payload": "header", "Fields[Payload]": "field"}
    assert rec("Payload == 'header' && Fields[Payload] == 'field'", r)


def test_odd_python_values() -> None:
    r = {
        "Uuid": bytes(range(16)),
        "Type": b"bytes-type",
        "Severity": True,
        "Timestamp": dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
        "raw": b"\xffdata",
        "when": dt.date(2026, 1, 1),
        "big": 2**53 + 1,
    }
    assert rec("Uuid == '00010203-0405-0607-0809-0a0b0c0d0e0f'", r)
    assert rec("Type == 'bytes-type'", r)
    assert rec("Severity == 1", r)
    assert rec("Timestamp == '2026-11-28T00:00:00Z'", r)
    assert rec("Fields[raw] =~ /data$/ && Fields[raw] > 'z'", r)
    # a value with no Heka value type exists (!= NIL) but fails every other test
    assert rec("Fields[when] != NIL", r) and not rec("Fields[when] == NIL", r)
    assert not rec("Fields[when] == '2026-01-01'", r)
    assert rec("Fields[big] == 9007199254740992", r)
    assert rec("Uuid == 'abc'", {"Uuid": "ABC"})
    assert rec("Severity == 3 && Pid == 12", {"Severity": "3", "Pid": 12.0})
