"""hekacli.output: the renderers every command shares."""

from __future__ import annotations

import io
import json

from hekacli.output import RecordWriter, dumps_jsonl, format_timestamp


def test_timestamp_is_rfc3339_utc_with_nanoseconds() -> None:
    assert format_timestamp(1416840893000000001) == "2014-11-24T14:54:53.000000001Z"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000000Z"


def test_jsonl_values_are_json_safe() -> None:
    bad_utf8 = b"ok\xff".decode("utf-8", "surrogateescape")  # how non-UTF-8 wire strings arrive
    line = dumps_jsonl({"Timestamp": 1, "s": bad_utf8, "b": b"\x00\x01", "nan": float("nan"), "l": [1, 2]})
    assert json.loads(line) == {"Timestamp": "1970-01-01T00:00:00.000000001Z", "s": "ok\ufffd", "b": "AAE=",
                                "nan": None, "l": [1, 2]}


def test_csv_header_names_fields_that_first_appear_later() -> None:
    out = io.StringIO()
    writer = RecordWriter("csv", out)
    writer.write({"status": 200})
    writer.write({"status": 502, "upstream_status": "502"})
    writer.close()
    assert out.getvalue().splitlines() == ["status,upstream_status", "200,", "502,502"]


def test_csv_field_after_the_header_is_reported_not_silently_dropped(capsys) -> None:
    out = io.StringIO()
    writer = RecordWriter("tsv", out, sniff=1)
    writer.write({"a": 1})
    writer.write({"a": 2, "late": "x"})
    writer.close()
    assert out.getvalue().splitlines() == ["a", "1", "2"]
    assert "'late' (record 2)" in capsys.readouterr().err


def test_table_says_how_many_rows_it_left_out(capsys) -> None:
    out = io.StringIO()
    writer = RecordWriter("table", out, max_table_rows=2)
    for i in range(5):
        writer.write({"i": i})
    writer.close()
    assert "3 more not shown" in capsys.readouterr().err
