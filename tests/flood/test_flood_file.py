"""`heka flood file`: realistic sequence-numbered lines through nginx/rsyslog formats, with rotation;
every line decodes with hekacli's own decoders. And `heka flood verify` on captured streams."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import run_heka
from hekacli.parsers import build_decoder

from hekacli.errors import UsageError
from hekacli.flood.generator import FloodGenerator, build_templates
from hekacli.flood.logwriter import NGINX_COMBINED, LogFileWriter, make_renderer

NGINX_TIMED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
               '"$http_referer" "$http_user_agent" $request_time ${upstream_response_time} $msec')
RSYSLOG_3339 = ("%timestamp:::date-rfc3339% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%"
                "%msg:::drop-last-lf%\\n")


def all_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(out.name + "*"))


def decoded_seqs(files: list[Path], decoder, pattern: str, field: str) -> list[int]:
    seqs = []
    for f in files:
        for line in f.read_text().splitlines():
            record = decoder.decode(line)
            assert record is not None, f"{f.name}: {line!r}: {decoder.explain_failure(line)}"
            seqs.append(int(re.search(pattern, str(record[field])).group(1)))
    return seqs


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_nginx_lines_with_rotation_decode_and_are_numbered(tmp_path, mode):
    out = tmp_path / "access.log"
    proc = run_heka("flood", "file", str(out), "--format", "nginx", "--log-format", NGINX_TIMED,
                    "--rate", "0", "--num-lines", "5000", "--rotate", mode, "--every-lines", "1200",
                    "--keep", "10", "--json", "--seed", "3")
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["lines"] == 5000 and summary["rotations"] == 4
    files = all_files(out)
    assert [f.name for f in files] == ["access.log", *(f"access.log.{i}" for i in range(1, 5))]
    seqs = decoded_seqs(files, build_decoder("nginx", log_format=NGINX_TIMED), r"/flood/(\d+)", "request")
    assert sorted(seqs) == list(range(5000))  # each line exactly once, none lost to rotation
    # the newest rotated file holds the lines just before the live file's
    assert seqs[:5] == [4800, 4801, 4802, 4803, 4804]


def test_rsyslog_template_by_duration_with_time_rotation(tmp_path):
    out = tmp_path / "messages"
    writer = LogFileWriter(out, make_renderer("rsyslog", template=RSYSLOG_3339, seed=1), rate=4000,
                           duration=1.2, rotate="create", every=0.3, keep=20)
    summary = writer.run()
    files = all_files(out)
    assert summary["rotations"] == len(files) - 1 >= 1
    seqs = decoded_seqs(files, build_decoder("rsyslog", template=RSYSLOG_3339), r"seq=(\d+)", "Payload")
    assert sorted(seqs) == list(range(summary["lines"]))


def test_keep_limits_rotated_files(tmp_path):
    out = tmp_path / "a.log"
    LogFileWriter(out, make_renderer("nginx", seed=1), rate=0, num_lines=1000, rotate="create",
                  every_lines=100, keep=3).run()
    assert [f.name for f in all_files(out)] == ["a.log", "a.log.1", "a.log.2", "a.log.3"]
    decoder = build_decoder("nginx", log_format=NGINX_COMBINED)
    seqs = decoded_seqs(all_files(out), decoder, r"/flood/(\d+)", "request")
    # 10 rotations (the last right after line 999 leaves a.log empty); the oldest files were deleted,
    # as logrotate's "rotate 3" does
    assert (out.stat().st_size, sorted(seqs)) == (0, list(range(700, 1000)))


def test_formats_that_cannot_carry_the_sequence_are_refused(tmp_path):
    with pytest.raises(UsageError, match="sequence"):
        make_renderer("nginx", log_format="$remote_addr $status")
    with pytest.raises(UsageError, match="msg"):
        make_renderer("rsyslog", template="%HOSTNAME%\\n")
    proc = run_heka("flood", "file", str(tmp_path / "x.log"), "--log-format", "$nope $request", "-n", "1")
    assert proc.returncode == 2 and b"$nope" in proc.stderr


def _stream(n: int, run_id: str = "offline") -> list[bytes]:
    templates, _ = build_templates(variable=False, static_size=30)
    gen = FloodGenerator(templates, None, run_id=run_id)
    return [gen.next(time.time_ns())[0] for _ in range(n)] + [gen.end_marker()]


def test_flood_verify_offline_counts_loss_duplicates_and_order(tmp_path):
    records = _stream(100)
    good = tmp_path / "good.heka"
    good.write_bytes(b"".join(records))
    proc = run_heka("flood", "verify", str(good), "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    (run,) = json.loads(proc.stdout)["runs"]
    assert run["received"] == 100 and run["lost"] == 0 and run["complete"]
    assert run["latency_ns"] is None  # files carry no receive time
    # drop seq 10 and 11, duplicate 50, move 70 after 80
    bad_records = (records[:10] + records[12:70] + [records[50]] + records[71:81] + [records[70]]
                   + records[81:])
    bad = tmp_path / "bad.heka"
    bad.write_bytes(b"".join(bad_records))
    proc = run_heka("flood", "verify", str(bad))
    assert proc.returncode == 1
    text = proc.stdout.decode()
    assert "expected 100 received 99 lost 2 duplicates 1 out_of_order 2" in text
    assert "first missing (conn:seq): 0:10 0:11" in text
