"""The dashboard's cbuf charts and its HTTP API, served on a real socket."""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request

import pytest
from conftest import free_port

from hekacli.errors import ConfigError
from hekacli.message import Field, Message, ValueType
from hekacli.serve.dashboard import Dashboard, build_serve_plugins, parse_cbuf, render_cbuf_svg
from hekacli.serve.plugin import Delivery

# sandbox-api §6: the cbuf vector after the documented calls
CBUF = (
    '{"time":1379660400,"rows":3,"columns":2,"seconds_per_row":60,"column_info":[{"name":"Requests",'
    '"unit":"count","aggregation":"sum"},{"name":"Max_Size","unit":"KiB","aggregation":"max"}]}\n'
    "nan\tnan\n3\t12.5\n3\t9.25\n"
)


class OutputsPlugin:
    """The smallest thing the dashboard lists as a sandbox: a plugin with stats() and outputs()."""

    def __init__(self, name: str, outputs: dict) -> None:
        self.name, self.message_matcher, self.message_signer = name, "TRUE", None
        self._outputs = outputs

    def stats(self) -> dict:
        return {"processed": 42, "memory": 2048, "last_error": "", "state": "running"}

    def outputs(self) -> dict:
        return self._outputs


def test_parse_cbuf_vector():
    data = parse_cbuf(CBUF)
    assert (data.time, data.seconds_per_row) == (1379660400, 60)
    assert [c["name"] for c in data.columns] == ["Requests", "Max_Size"]
    assert math.isnan(data.rows[0][0]) and data.rows[1:] == [[3.0, 12.5], [3.0, 9.25]]


def test_parse_cbuf_with_annotation_line():
    data = parse_cbuf('{"annotations":[]}\n' + CBUF)
    assert data.extra == {"annotations": []} and len(data.rows) == 3


def test_svg_draws_one_series_per_column_with_gaps():
    svg = render_cbuf_svg(parse_cbuf(CBUF), "Stats")
    assert svg.count('class="series"') == 2
    assert 'data-points="4"' in svg  # the NaN row is a gap, not a point
    assert 'data-column="Requests"' in svg
    # the x axis starts at the first row holding data (row 1) and ends at the current row
    assert "2013-09-20 07:01:00Z" in svg and "2013-09-20 07:02:00Z" in svg
    # each series starts after the gap (M) and draws to the last row (L)
    for d in [part.split('d="')[1].split('"')[0] for part in svg.split('class="series"')[1:]]:
        assert d.startswith("M") and d.count("L") == 1


def test_svg_draws_isolated_points_as_dots():
    text = CBUF.split("\n")[0] + "\n1\tnan\nnan\tnan\n2\tnan\n"
    svg = render_cbuf_svg(parse_cbuf(text), "x")
    assert svg.count("<circle") == 2 and svg.count('class="series"') == 1


def test_svg_of_an_empty_buffer_says_no_data():
    empty = CBUF.split("\n")[0] + "\nnan\tnan\nnan\tnan\nnan\tnan\n"
    assert "no data" in render_cbuf_svg(parse_cbuf(empty), "x")


def test_build_from_config_forms():
    assert build_serve_plugins("127.0.0.1:0", None)[0].port == 0
    d = build_serve_plugins({"address": ":4399", "refresh": 2}, None)[0]
    assert (d.host, d.port, d.refresh) == ("0.0.0.0", 4399, 2)
    with pytest.raises(ConfigError):
        build_serve_plugins({"adress": "x:1"}, None)
    with pytest.raises(ConfigError):
        build_serve_plugins("no-port", None)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), exc.read()


def test_http_routes(local_ctx):
    port = free_port()

    async def scenario():
        ctx = local_ctx
        outputs = {"HTTP Status": ("cbuf", CBUF), "note": ("txt", "<b>hi</b>")}
        ctx.add_plugin(OutputsPlugin("HttpStatus", outputs))
        dash = Dashboard(f"127.0.0.1:{port}")
        await dash.start(ctx)
        # an output from a sandbox that does not run here (e.g. another Heka), and a termination
        out = Message.new(type="heka.sandbox-output", logger="Remote", payload="remote text")
        out.fields += [Field("payload_type", ValueType.STRING, "file-extension", ["txt"]),
                       Field("payload_name", ValueType.STRING, "", ["r"])]
        dash.process(Delivery(out, b"", listener="tcp://127.0.0.1:5565"))
        term = Message.new(type="heka.sandbox-terminated", logger="hekad", payload="boom")
        term.fields.append(Field("plugin", ValueType.STRING, "", ["Gone"]))
        dash.process(Delivery(term, b""))
        base = f"http://127.0.0.1:{port}"
        results = {}
        for path in ("/", "/api/status", "/api/sandboxes/HttpStatus", "/api/sandboxes/Nope",
                     "/data/sandboxes.json", "/data/HttpStatus.HTTPStatus.cbuf",
                     "/chart/HttpStatus/HTTP Status.svg", "/nope"):
            results[path] = await asyncio.to_thread(_get, base + urllib.request.quote(path))
        req = urllib.request.Request(base + "/api/status", method="POST", data=b"x")
        results["POST"] = await asyncio.to_thread(_get, req)
        await dash.stop()
        return results

    r = asyncio.run(scenario())
    status, ctype, body = r["/"]
    page = body.decode()
    assert status == 200 and ctype.startswith("text/html")
    assert 'data-name="HttpStatus"' in page and '<svg' in page and "&lt;b&gt;hi&lt;/b&gt;" in page
    assert "Gone" in page and "boom" in page  # the termination log
    doc = json.loads(r["/api/status"][2])
    names = {sb["name"]: sb for sb in doc["sandboxes"]}
    assert names["HttpStatus"]["processed"] == 42 and names["HttpStatus"]["state"] == "running"
    assert names["Remote"]["state"] == "remote" and names["Remote"]["outputs"][0]["text"] == "remote text"
    assert doc["terminated"][0]["plugin"] == "Gone"
    assert json.loads(r["/api/sandboxes/HttpStatus"][2])["memory"] == 2048
    assert r["/api/sandboxes/Nope"][0] == 404
    heka_index = json.loads(r["/data/sandboxes.json"][2])
    entry = {"Name": "HTTP Status", "Filename": "data/HttpStatus.HTTPStatus.cbuf"}
    assert entry in heka_index["sandboxes"][0]["Outputs"]
    assert r["/data/HttpStatus.HTTPStatus.cbuf"][2].decode() == CBUF
    assert r["/chart/HttpStatus/HTTP Status.svg"][2].startswith(b"<svg")
    assert r["/nope"][0] == 404 and r["POST"][0] == 405
