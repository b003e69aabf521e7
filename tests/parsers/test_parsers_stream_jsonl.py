"""`heka decode -f jsonl` (block reader, generated JSON, worker processes) writes what the line-by-line
reference writes: the same bytes on stdout, the same rejects with the same file:line numbers."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import subprocess

import pytest
from conftest import PROJECT_ROOT, heka_cmd, run_heka
from hekacli.parsers import build_decoder

from hekacli.output import RecordWriter


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_access_log", PROJECT_ROOT / "bench" / "gen_access_log.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mixed_log(n: int = 6_000) -> bytes:
    """A combined log of about 1 MB with every kind of line the reader must keep straight."""
    lines = [x.encode() for x in _generator().generate_lines(n, seed=3, tricky=0.1)]
    odd = [
        b"",
        b"not an access line",
        b'127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET /\xff\xfe HTTP/1.1" 200 1 "-" "bad utf-8"',
        b'127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET /caf\xc3\xa9 HTTP/1.1" 200 1 "-" "crlf"\r',
        b'127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 1 "-" "ctl \x01"',
        b'127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 1 "-" "cut \xe2\x82',
    ]
    for k, extra in enumerate(odd * 40):
        lines.insert((k * 997) % len(lines), extra)
    # the last line has no newline
    return b"\n".join(lines)


def reference(data: bytes, tmp_path, name: str = "<stdin>") -> tuple[bytes, list[tuple[int, str]]]:
    """The line-by-line path: TextIOWrapper lines, `decode`, `RecordWriter("jsonl")`."""
    path = tmp_path / "ref.log"
    path.write_bytes(data)
    d = build_decoder("nginx")
    out = io.StringIO()
    w = RecordWriter("jsonl", out)
    rejects = []
    # (how a text file is read line by line, undecodable bytes kept as \xHH)
    with open(path, encoding="utf-8", errors="backslashreplace", newline="\n") as fh:
        for number, line in enumerate(fh, 1):
            rec = d.decode(line)
            if rec is None:
                rejects.append((number, line.rstrip("\n").rstrip("\r")))
            else:
                w.write(rec)
    return out.getvalue().encode("utf-8"), rejects


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    data = mixed_log()
    path = tmp / "access.log"
    path.write_bytes(data)
    want_out, want_rejects = reference(data, tmp)
    return path, data, want_out, want_rejects


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_file_output_and_rejects_match_the_reference(mixed, tmp_path, jobs):
    path, _, want_out, want_rejects = mixed
    rej = tmp_path / "rejects.jsonl"
    r = run_heka(
        "decode", "nginx", str(path), "-f", "jsonl", "--rejects", str(rej), env={"HEKA_DECODE_JOBS": jobs}
    )
    assert r.returncode == 1, r.stderr
    assert r.stdout == want_out
    got = [json.loads(x) for x in rej.read_text().splitlines()]
    assert [(e["line"], e["text"]) for e in got] == want_rejects
    assert all(e["file"] == str(path) and e["reason"] for e in got)
    decoded = want_out.count(b"\n")
    assert r.stderr.decode().strip() == f"heka decode: {decoded} decoded, {len(want_rejects)} rejected"


def test_stdin_gzip_and_two_files(mixed, tmp_path):
    path, data, want_out, want_rejects = mixed
    r = run_heka("decode", "nginx", "-f", "jsonl", "--allow-rejects", input=data)
    assert r.returncode == 0 and r.stdout == want_out
    err = r.stderr.decode().splitlines()
    number, _ = want_rejects[0]
    assert err[0].startswith(f"heka: <stdin>:{number}: rejected: ")
    decoded = want_out.count(b"\n")
    assert err[-1] == f"heka decode: {decoded} decoded, {len(want_rejects)} rejected"
    gz = tmp_path / "access.log.gz"
    gz.write_bytes(gzip.compress(data))
    # a .gz file (one process), then a plain one (workers), then the .gz again: output in order
    r = run_heka(
        "decode",
        "nginx",
        str(gz),
        str(path),
        str(gz),
        "-f",
        "jsonl",
        "--allow-rejects",
        env={"HEKA_DECODE_JOBS": "2"},
    )
    assert r.returncode == 0 and r.stdout == want_out * 3
    err = r.stderr.decode()
    assert f"heka: {gz}:{number}: rejected:" in err
    assert f"{3 * len(want_rejects) - 20} more rejected lines" in err  # 20 shown


def test_where_and_other_kinds_keep_the_record_path(mixed, tmp_path):
    path, _, want_out, _ = mixed
    r = run_heka(
        "decode", "nginx", str(path), "-f", "jsonl", "--allow-rejects", "--where", "Fields[status] == 404"
    )
    want = [x for x in want_out.splitlines(keepends=True) if b'"status":404,' in x]
    assert r.returncode == 0 and r.stdout.splitlines(keepends=True) == want
    lines = b'{"a": 1}\n[2]\n{"Timestamp": 1, "b": "x"}'
    r = run_heka("decode", "json", "-f", "jsonl", "--allow-rejects", input=lines)
    assert (
        r.stdout
        == b'{"Type":"json","a":1}\n{"Timestamp":"1970-01-01T00:00:00.000000001Z","Type":"json","b":"x"}\n'
    )
    assert b"<stdin>:2: rejected" in r.stderr


def test_head_ends_quietly_with_workers(mixed):
    path = mixed[0]
    cmd = (
        " ".join(heka_cmd("decode", "nginx", str(path), "-f", "jsonl"))
        + " | head -n 2; echo rc=${PIPESTATUS[0]} >&2"
    )
    r = subprocess.run(
        ["bash", "-c", cmd],
        capture_output=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(PROJECT_ROOT),
            "HOME": "/tmp",
            "HEKA_DECODE_JOBS": "2",
        },
    )
    assert len(r.stdout.splitlines()) == 2
    assert b"Traceback" not in r.stderr and b"rc=0" in r.stderr, r.stderr


def test_bad_jobs_value_is_a_usage_error(mixed):
    r = run_heka("decode", "nginx", str(mixed[0]), "-f", "jsonl", env={"HEKA_DECODE_JOBS": "many"})
    assert r.returncode == 2 and b"HEKA_DECODE_JOBS" in r.stderr and b"Traceback" not in r.stderr


def test_workers_hand_their_output_to_a_text_stream_that_is_not_utf8(mixed):
    # stdout in latin-1: the workers cannot write bytes themselves, the parent writes their text
    path, _, want_out, _ = mixed
    r = run_heka(
        "decode",
        "nginx",
        str(path),
        "-f",
        "jsonl",
        "--allow-rejects",
        env={"HEKA_DECODE_JOBS": "2", "PYTHONIOENCODING": "latin-1"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == want_out.decode("utf-8").encode("latin-1")


def test_workers_write_an_output_file_in_order(mixed, tmp_path):
    path, _, want_out, want_rejects = mixed
    out = tmp_path / "out.jsonl"
    out.write_text("old content that must go\n" * 50_000)
    r = run_heka("decode", "nginx", str(path), str(path), "-o", str(out), env={"HEKA_DECODE_JOBS": "2"})
    assert r.returncode == 1 and r.stdout == b""
    assert out.read_bytes() == want_out * 2
    assert f"{2 * len(want_rejects)} rejected" in r.stderr.decode()


@pytest.mark.parametrize("wait", [0.0, 5.0])
def test_workers_and_parent_share_the_writing_in_order(mixed, tmp_path, monkeypatch, wait):
    # wait 0: a worker whose turn has not come hands its bytes to the parent at once (the path taken
    # when the other worker is held up); wait 5: the workers write nearly everything themselves
    from hekacli.commands.decode import Rejects
    from hekacli.parsers import streaming

    path, _, want_out, want_rejects = mixed
    monkeypatch.setattr(streaming, "TURN_WAIT", wait)
    monkeypatch.setenv("HEKA_DECODE_JOBS", "3")
    out_path = tmp_path / "out.jsonl"
    rej = Rejects(str(tmp_path / "rejects.jsonl"))
    with open(out_path, "w", encoding="utf-8") as out:
        out.write("before\n")
        decoded = streaming.stream_jsonl(build_decoder("nginx"), [str(path), str(path)], out, rej.add)
        out.write("after\n")
    rej.close()
    assert out_path.read_bytes() == b"before\n" + want_out * 2 + b"after\n"
    assert decoded == 2 * want_out.count(b"\n")
    got = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(e["line"], e["text"]) for e in got] == want_rejects * 2
