"""Heka's own logstreamer test tree and hash vectors (spec §6.2-6.4)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

from conftest import VECTORS

from hekacli.logstream.config import StreamConfig
from hekacli.logstream.discovery import StreamMatcher
from hekacli.logstream.journal import (
    NULL_HASH,
    Position,
    hash_at,
    parse_journal,
    read_journal,
    write_journal,
)
from hekacli.logstream.locate import resolve_start

TREE = VECTORS / "heka" / "logstreamer" / "testdir"
FH = TREE / "filehandling"


def heka_section(**kw) -> StreamConfig:
    base = dict(
        name="LogstreamerInput",
        log_directory=str(FH),
        file_match=r"/(?P<Year>\d+)/(?P<Month>\d+)/(?P<Type>\w+)\.log(\.(?P<Seq>\d+))?",
        priority=["Year", "Month", "^Seq"],
        differentiator=["website-", "Type"],
        oldest_duration=0,
    )
    base.update(kw)
    return StreamConfig(**base)


def test_logstream_null_hash_is_sha1_of_500_nuls():
    assert NULL_HASH == "fc56d4b3c72a8bfe593373c740d558ec1340ac73"
    assert NULL_HASH == hashlib.sha1(b"\0" * 500).hexdigest()


def test_logstream_hash_vectors():
    assert hash_at(str(VECTORS / "heka" / "short.log"), 51) == "4a9ab34da77c10e87cb6566bbf061d9715985551"
    assert hash_at(str(TREE / "shortlog" / "short.log"), 51) == "4a9ab34da77c10e87cb6566bbf061d9715985551"
    assert hash_at(str(FH / "2010/07/error.log.2"), 500) == "dc6d00ed4a287968635b8b5b96a505547e9161d3"
    assert hash_at(str(FH / "2013/08/error.log"), 1969) == "72781af95a1583690cc97548fdcf3bb0efbe3119"
    assert hash_at(str(FH / "2013/08/error.log"), 0) == NULL_HASH
    assert hash_at(str(FH / "2013/08/error.log"), 1970) is None  # past the end


def test_logstream_heka_tree_streams_and_order():
    m = StreamMatcher(heka_section())
    result = m.scan()
    assert sorted(result.streams) == ["website-access", "website-error"]
    errors = [f.path[len(str(FH)) + 1 :] for f in result.streams["website-error"]]
    assert len(errors) == 26
    expected = []
    for ym, seqs in [
        ("2010/07", 2),
        ("2010/08", 3),
        ("2012/04", 1),
        ("2012/09", 5),
        ("2013/01", 3),
        ("2013/04", 1),
        ("2013/08", 4),
    ]:
        expected += [f"{ym}/error.log.{i}" for i in range(seqs, 0, -1)] + [f"{ym}/error.log"]
    assert errors == expected
    # Every error.log file of the tree is in the stream.
    assert len(list(FH.glob("*/*/error.log*"))) == 26


def test_logstream_seq_priority_example(tmp_path):
    for n in ("access.log", "access.log.1", "access.log.2", "access.log.3", "other.log"):
        (tmp_path / n).write_text("x\n")
    cfg = StreamConfig(
        name="s",
        log_directory=str(tmp_path),
        file_match=r"access\.log\.?(?P<Seq>\d*)",
        priority=["^Seq"],
        oldest_duration=0,
    )
    files = StreamMatcher(cfg).scan().streams["s"]
    assert [f.path.rsplit("/", 1)[1] for f in files] == [
        "access.log.3",
        "access.log.2",
        "access.log.1",
        "access.log",
    ]


def test_logstream_no_priority_multiple_files_is_an_error(tmp_path):
    (tmp_path / "a.log").write_text("")
    (tmp_path / "a.log.1").write_text("")
    cfg = StreamConfig(name="s", log_directory=str(tmp_path), file_match=r"a\.log.*", oldest_duration=0)
    result = StreamMatcher(cfg).scan()
    assert result.streams == {}
    assert result.errors == {"s": "Found multiple logfiles without Priority to sort on for name: s"}


def test_logstream_translation_month_day_names(tmp_path):
    for n in ("app-Feb-mon.log", "app-Jan-tue.log", "app-january-sun.log", "app-Feb-sunday.log"):
        (tmp_path / n).write_text("")
    cfg = StreamConfig(
        name="s",
        log_directory=str(tmp_path),
        file_match=r"app-(?P<MonthName>\w+)-(?P<DayName>\w+)\.log",
        priority=["MonthName", "DayName"],
        oldest_duration=0,
    )
    files = [f.path.rsplit("/", 1)[1] for f in StreamMatcher(cfg).scan().streams["s"]]
    assert files == ["app-Jan-tue.log", "app-january-sun.log", "app-Feb-mon.log", "app-Feb-sunday.log"]
    cfg2 = StreamConfig(
        name="s",
        log_directory=str(tmp_path),
        file_match=r"app-(?P<Env>[a-z]+)\.log",
        priority=["Env"],
        translation={"Env": {"dev": 2, "prod": 1}},
        oldest_duration=0,
    )
    (tmp_path / "app-dev.log").write_text("")
    (tmp_path / "app-prod.log").write_text("")
    files = [f.path.rsplit("/", 1)[1] for f in StreamMatcher(cfg2).scan().streams["s"]]
    assert files == ["app-prod.log", "app-dev.log"]


def test_logstream_journal_format_is_hekas(tmp_path):
    pos = Position("/var/log/a&b<c>.log", 1969, "72781af95a1583690cc97548fdcf3bb0efbe3119")
    text = pos.to_json()
    assert text == (
        '{"seek":1969,"file_name":"/var/log/a\\u0026b\\u003cc\\u003e.log",'
        '"last_hash":"72781af95a1583690cc97548fdcf3bb0efbe3119"}'
    )
    assert parse_journal(text) == pos
    path = tmp_path / "j" / "stream"
    write_journal(str(path), pos)
    assert path.read_text() == text
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o660 & ~umask  # Heka's mode, through the umask as Go's
    assert [p.name for p in path.parent.iterdir()] == ["stream"]  # no temp file left behind
    assert read_journal(str(path)) == pos


def test_logstream_hekas_own_journal_relocates_into_our_tree():
    """location.json was written on the author's machine: its path is gone, its hash is found here."""
    pos = read_journal(str(TREE / "reader" / "location.json"))
    assert pos.seek == 1969 and pos.file_name.startswith("/Users/ben/")
    m = StreamMatcher(heka_section())
    files = m.scan().streams["website-error"]
    d = resolve_start(files, pos, m)
    assert d.reason == "relocated"
    assert d.path == str(FH / "2013/08/error.log") and d.offset == 1969


def test_logstream_heka_logstreamer_alias_output(tmp_path):
    (tmp_path / "ls.toml").write_text(
        f'[LogstreamerInput]\nlog_directory = "{FH}"\n'
        "file_match = '/(?P<Year>\\d+)/(?P<Month>\\d+)/(?P<Type>\\w+)\\.log(\\.(?P<Seq>\\d+))?'\n"
        'priority = ["Year", "Month", "^Seq"]\ndifferentiator = ["website-", "Type"]\n'
        'oldest_duration = "0"\n'
    )
    # Heka reads journals from the working directory, named after the stream.
    shutil.copy(TREE / "reader" / "location.json", tmp_path / "website-error")
    code = (
        "import sys; from hekacli.commands.logstream import alias_main; "
        "sys.argv[1:] = sys.argv[2:]; alias_main()"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "x", "-config", str(tmp_path / "ls.toml")],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert out[0] == "Found 2 Logstream(s) for section [LogstreamerInput]."
    assert out[1:5] == [
        "",
        "Logstream name: [website-access]",
        "Stream Choosing Filename: , SeekPosition: 0",
        "Files: 26 (printing oldest to newest)",
    ]
    i = out.index("Logstream name: [website-error]")
    assert out[i + 1].startswith("Stream Choosing Filename: /Users/ben/") and out[i + 1].endswith(
        "SeekPosition: 1969"
    )
    assert out[i + 2] == "Files: 26 (printing oldest to newest)"
    assert out[i + 3] == f"\t{FH}/2010/07/error.log.2"
    # No flag at all: usage, exit 0 (as Heka).
    r = subprocess.run([sys.executable, "-c", code, "x"], capture_output=True, timeout=120)
    assert r.returncode == 0 and b"-config" in r.stderr
