"""The streaming path (decode) and the bulk path (frame / frame_file) agree line for line."""

from __future__ import annotations

import gzip
import importlib.util
import json

import pytest
from conftest import PROJECT_ROOT, SAMPLE_LOGS, VECTORS
from hekacli.parsers import build_decoder

from .conftest import assert_paths_agree

CASES = json.loads((VECTORS / "decoder-cases.json").read_text())


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_access_log", PROJECT_ROOT / "bench" / "gen_access_log.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    "opts", [{}, {"raw_values": True}, {"user_agent": "keep"}, {"user_agent": "drop"}, {"log_format": "main"}]
)
def test_generated_log_with_tricky_lines(opts):
    lines = list(_generator().generate_lines(3000, seed=7, tricky=0.3))
    recs = assert_paths_agree(build_decoder("nginx", **opts), lines)
    if "log_format" not in opts:
        assert len(recs) == len(lines)


def test_bundled_sample_log_and_frame_file(tmp_path):
    sample = SAMPLE_LOGS / "nginx" / "access.log"
    if not sample.exists():
        pytest.skip("sample_logs/nginx/access.log is provided by the analyzer")
    lines = sample.read_text().splitlines()[:3000]
    d = build_decoder("nginx")
    recs = assert_paths_agree(d, lines)
    # frame_file reads plain and gzipped files into the same frame as frame(lines)
    plain = tmp_path / "a.log"
    plain.write_text("\n".join(lines) + "\n")
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert d.frame_file(plain).equals(d.frame(lines))
    assert d.frame_file(gz).equals(d.frame(lines))
    assert d.frame_file(plain).height == len(recs)


def test_frame_file_keeps_line_numbers_of_rejects(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(
        b'::1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 1 "-" "-"\n\nbad \xff line\r\n'
        b'::1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 1 "-" "-"\r\n'
    )
    d = build_decoder("nginx")
    df = d.frame_file(p)
    assert df.height == 2
    assert d.rejects["lineno"].to_list() == [2, 3]
    assert d.rejects["line"].to_list() == ["", "bad \\xff line"]


@pytest.mark.parametrize("decoder", ["nginx_access", "apache_access", "rsyslog"])
def test_conformance_lines(decoder):
    cases = [c for c in CASES if c["decoder"] == decoder and c["level"] == "grammar" and c["format"]]
    for c in cases:
        kind = {"nginx_access": "nginx", "apache_access": "apache", "rsyslog": "rsyslog"}[decoder]
        opt = "template" if kind == "rsyslog" else "log_format"
        try:
            d = build_decoder(kind, **{opt: c["format"]})
        except Exception:  # noqa: BLE001 - formats Heka rejected at build time are not lines to compare
            continue
        assert_paths_agree(d, [c["line"], c["line"] + " trailing", "x" + c["line"]])


def test_nginx_error_and_syslog_lines():
    err = [
        '2014/03/01 11:29:39 [notice] 16842#0: *8878 using inherited sockets from "6;"',
        "2014/03/01 11:29:39 [error] 1#1: *2 connect() failed (111: Connection refused)",
        "2014/03/01 11:29:39 [bogus] 1#1: x",
        "",
    ]
    assert len(assert_paths_agree(build_decoder("nginx-error"), err)) == 2


def test_chunked_bulk_path(monkeypatch):
    from hekacli.parsers import core

    lines = list(_generator().generate_lines(1200, seed=3, tricky=0.2)) + ["bad line"] + ["", "x"]
    d = build_decoder("nginx")
    whole = d.frame(lines)
    whole_rejects = d.rejects
    monkeypatch.setattr(core, "_CHUNK_ROWS", 250)
    assert d.frame(lines).equals(whole)
    assert d.rejects.equals(whole_rejects)
    assert d.rejects["lineno"].to_list() == [1201, 1202, 1203]
    assert_paths_agree(d, lines)
