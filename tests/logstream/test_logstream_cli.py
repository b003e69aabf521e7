"""`heka logstream list|tail|explain|checkpoints` end to end, and config errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading

from conftest import PROJECT_ROOT, SAMPLE_LOGS, run_heka

SAMPLE = SAMPLE_LOGS / "logstream"


def make_stream(tmp_path, extra: str = ""):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = tmp_path / "ls.yaml"
    cfg.write_text(
        "journal_directory: journals\nstreams:\n  app:\n    log_directory: logs\n"
        "    file_match: 'app\\.log(\\.(?P<Seq>\\d+))?'\n    priority: ['^Seq']\n"
        "    oldest_duration: '0'\n" + extra
    )
    return logs, cfg


def test_logstream_yaml_errors_name_file_section_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("streams:\n  web:\n    log_directory: .\n    file_match: 'a\\.log'\n    prioriti: [Seq]\n")
    r = run_heka("logstream", "list", cfg)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.startswith("heka: error: ") and str(cfg) in err and "[web] prioriti: unknown key" in err
    assert "Traceback" not in err
    cfg.write_text(
        "streams:\n  web:\n    log_directory: .\n    file_match: 'a'\n    translation: {Seq: {one: 1}}\n"
    )
    r = run_heka("logstream", "tail", cfg)
    assert r.returncode == 2
    assert (
        "[web] translation: A translation map with one entry ('one') must be specifying a 'missing' key."
        in r.stderr.decode()
    )


def test_logstream_toml_sections_and_missing_file_match(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x.log").write_text("x\n")
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "a.toml").write_text(
        '[hekad]\nmaxprocs = 2\n[one]\ntype = "LogstreamerInput"\n'
        f"log_directory = \"{tmp_path / 'logs'}\"\nfile_match = 'x\\.log'\n"
        'oldest_duration = "0"\nticker_interval = 5\n'
    )
    (conf / "b.toml.bak").write_text("garbage [[[")
    r = run_heka("logstream", "list", conf, "--format", "json", "--journal-directory", tmp_path / "j")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(s["section"], [st["stream"] for st in s["streams"]]) for s in doc] == [("one", ["one"])]
    (conf / "c.toml").write_text('[two]\ntype = "LogstreamerInput"\nlog_directory = "/tmp"\n')
    r = run_heka("logstream", "list", conf)
    assert r.returncode == 2 and "[two] file_match: `file_match` setting is required." in r.stderr.decode()


def test_logstream_sample_config_list_explain_tail_checkpoints(tmp_path):
    j = tmp_path / "j"
    conf = SAMPLE / "logstream.yaml"
    r = run_heka("logstream", "list", conf, "--journal-directory", j)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "stream nginx\n    position: none" in text
    files = [line.split()[0] for line in text.splitlines() if "/nginx/access.log" in line]
    assert [os.path.basename(f) for f in files[:3]] == ["access.log.2.gz", "access.log.1", "access.log"]
    r2 = run_heka("logstream", "list", conf, "--journal-directory", j)
    assert r2.stdout == r.stdout  # deterministic

    r = run_heka(
        "logstream", "tail", conf, "--journal-directory", j, "--format", "jsonl", "--stream", "nginx"
    )
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert len(recs) == 60 and recs[0]["Type"] == "nginx.access" and recs[0]["Logger"] == "nginx"
    assert isinstance(recs[0]["status"], int)

    r = run_heka("logstream", "explain", conf, "--journal-directory", j)
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "stream nginx [nginx]: next read starts at" in out and "journal found and hash matched" in out
    assert "stream nginx-5xx [nginx-errors]: next read starts at" in out and "no journal" in out

    r = run_heka("logstream", "checkpoints", conf, "ls", "--journal-directory", j)
    assert r.returncode == 0
    assert "nginx\t" in r.stdout.decode() and "hash ok" in r.stdout.decode()
    (j / "old-stream").write_text('{"seek":0,"file_name":"/gone","last_hash":"%s"}' % ("0" * 40))
    (j / "not-a-journal.txt").write_text("keep me")
    r = run_heka("logstream", "checkpoints", conf, "gc", "--journal-directory", j)
    assert r.returncode == 0 and "old-stream" in r.stdout.decode()
    assert sorted(p.name for p in j.iterdir()) == ["nginx", "not-a-journal.txt"]
    r = run_heka("logstream", "checkpoints", conf, "reset", "nginx", "--journal-directory", j)
    assert r.returncode == 0 and not (j / "nginx").exists()


def test_logstream_where_decoder_rejects_and_exit_code(tmp_path):
    logs, cfg = make_stream(
        tmp_path,
        "    decoder: {kind: nginx, log_format: combined}\n"
        "    where: 'Fields[status] >= 500'\n    max_line_bytes: 4096\n",
    )
    src = (SAMPLE / "nginx" / "access.log").read_bytes()
    (logs / "app.log").write_bytes(src + b"this is not nginx\n" + b"X" * 5000 + b"\n")
    r = run_heka("logstream", "tail", cfg, "--format", "jsonl", "--rejects", tmp_path / "rej.txt")
    assert r.returncode == 1, r.stderr  # rejected and cut lines are reported with exit 1
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    expected = sum(1 for line in src.decode().splitlines() if line.split('"')[2].split()[0].startswith("5"))
    assert len(recs) == expected and all(x["status"] >= 500 for x in recs)
    rej = (tmp_path / "rej.txt").read_text().splitlines()
    assert rej == ["this is not nginx", "X" * 4096]
    err = r.stderr.decode()
    assert "cut to 4096 bytes" in err and "2 rejected" in err


def test_logstream_tail_ships_to_tcp(tmp_path):
    from hekacli.framing import Splitter

    logs, cfg = make_stream(tmp_path)
    (logs / "app.log").write_text("".join(f"line {i}\n" for i in range(500)))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(60)
    got = bytearray()

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(60)
            while chunk := conn.recv(65536):
                got.extend(chunk)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        port = srv.getsockname()[1]
        r = run_heka("logstream", "tail", cfg, "--output", f"tcp://127.0.0.1:{port}", "--batch-lines", "100")
        assert r.returncode == 0, r.stderr
        t.join(30)
    finally:
        srv.close()
    msgs = [rec.message() for rec in Splitter().feed(bytes(got))]
    assert [m.payload for m in msgs] == [f"line {i}\n" for i in range(500)]
    assert {m.logger for m in msgs} == {"app"}
    journal = json.loads((tmp_path / "journals" / "app").read_text())
    assert journal["seek"] == (logs / "app.log").stat().st_size


def test_logstream_heka_toml_sample_runs_from_repo_root(tmp_path):
    # The sample TOML uses paths relative to the repository root, as Heka would.
    r = run_heka(
        "logstream", "tail", SAMPLE / "heka.toml", "--journal-directory", tmp_path, "-q", cwd=PROJECT_ROOT
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 60
    shutil.rmtree(tmp_path, ignore_errors=True)
