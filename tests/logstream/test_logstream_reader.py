"""The reader through the library, one rotation/truncation situation at a time (no follow; the
rotations happen while the tailer is stopped, which is the case Heka and its peers get wrong)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from hekacli.logstream.config import load_config
from hekacli.logstream.journal import NULL_HASH, hash_window, read_journal
from hekacli.logstream.sink import FdWriter, Sink
from hekacli.logstream.tailer import Tailer


class Stream:
    """A log directory with one stream `app` (app.log, app.log.1, app.log.2.gz ...) and a runner."""

    def __init__(self, root: Path, extra: str = "") -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir()
        self.config = root / "ls.yaml"
        self.config.write_text(
            "journal_directory: journals\nstreams:\n  app:\n    log_directory: logs\n"
            "    file_match: 'app\\.log(\\.(?P<Seq>\\d+))?(\\.gz)?'\n    priority: ['^Seq']\n"
            "    oldest_duration: '0'\n    rotate_wait: 50ms\n" + extra
        )
        self.notes: list[str] = []

    def path(self, name: str = "app.log") -> Path:
        return self.logs / name

    def write(self, data: str | bytes, name: str = "app.log", mode: str = "a") -> None:
        with open(self.path(name), mode + "b") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    def age(self, name: str) -> None:
        """Make a rotated file look quiet (older than rotate_wait)."""
        t = time.time() - 10
        os.utime(self.path(name), (t, t))

    def tail(self, fmt: str = "raw", **kw) -> bytes:
        out = self.root / "out"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            sink = Sink(fmt, writer=FdWriter(fd), notify=self.notes.append)
            self.tailer = Tailer(load_config(self.config), sink, follow=False, notify=self.notes.append, **kw)
            self.tailer.run()
            self.sink = sink
        finally:
            os.close(fd)
        return out.read_bytes()

    def journal(self):
        return read_journal(str(self.root / "journals" / "app"))


@pytest.fixture
def st(tmp_path):
    return Stream(tmp_path)


def test_logstream_tiny_file_resumes_exactly(st):
    st.write("a\nb\n")
    assert st.tail() == b"a\nb\n"
    j = st.journal()
    assert (j.seek, j.last_hash) == (4, hash_window(b"a\nb\n"))
    for _ in range(3):  # Heka #972: files under 500 bytes were replayed on every restart
        assert st.tail() == b""
    st.write("c\n")
    assert st.tail() == b"c\n"


def test_logstream_zero_byte_file_then_data(st):
    st.write("")
    assert st.tail() == b""
    st.write("first\n")
    assert st.tail() == b"first\n"


def test_logstream_last_line_without_newline_is_held(st):
    st.write("one\ntw")
    assert st.tail() == b"one\n"
    assert st.journal().seek == 4
    st.write("o\n")
    assert st.tail() == b"two\n"


def test_logstream_unterminated_last_line_is_emitted_when_rotated_away(st):
    st.write("one\ntw")
    assert st.tail() == b"one\n"
    os.rename(st.path(), st.path("app.log.1"))
    st.age("app.log.1")
    st.write("three\n")
    assert st.tail() == b"tw\nthree\n"
    assert st.tail() == b""


def test_logstream_long_lines_are_cut_and_reported(tmp_path):
    st = Stream(tmp_path, "    max_line_bytes: 100\n")
    st.write("short\n" + "L" * 1000 + "\nafter\n" + "M" * 150)
    out = st.tail()
    assert out == b"short\n" + b"L" * 100 + b"\nafter\n" + b"M" * 100 + b"\n"
    assert st.tailer.totals()["cut"] == 2
    assert any("cut to 100 bytes" in n and "offset 6" in n for n in st.notes)
    st.write("M" * 10 + "\nnext\n")  # the rest of the cut line is skipped, not emitted as a record
    assert st.tail() == b"next\n"


def test_logstream_rename_while_stopped_continues_in_renamed_file(st):
    st.write("".join(f"line {i}\n" for i in range(100)))
    st.tail()
    st.write("".join(f"line {i}\n" for i in range(100, 150)))
    os.rename(st.path(), st.path("app.log.1"))
    st.age("app.log.1")
    st.write("".join(f"line {i}\n" for i in range(150, 160)))
    out = st.tail()
    assert out == "".join(f"line {i}\n" for i in range(100, 160)).encode()
    assert any("was rotated" in n and "app.log.1" in n for n in st.notes)


def test_logstream_two_rotations_while_stopped_with_gzip(st):
    """Offsets in a .gz are decompressed bytes; the journal hash works across the compression."""
    st.write("".join(f"line {i}\n" for i in range(50)))
    st.tail()
    st.write("".join(f"line {i}\n" for i in range(50, 80)))
    with open(st.path(), "rb") as src, gzip.open(st.path("app.log.2.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    st.path().unlink()
    st.write("".join(f"line {i}\n" for i in range(80, 90)), name="app.log.1")
    st.write("".join(f"line {i}\n" for i in range(90, 95)))
    for n in ("app.log.2.gz", "app.log.1"):
        st.age(n)
    out = st.tail()
    assert out == "".join(f"line {i}\n" for i in range(50, 95)).encode()
    assert any("app.log.2.gz" in n for n in st.notes)


def test_logstream_copytruncate_while_stopped(st):
    st.write("".join(f"line {i}\n" for i in range(100)))
    st.tail()
    st.write("".join(f"line {i}\n" for i in range(100, 120)))
    shutil.copy(st.path(), st.path("app.log.1"))
    os.truncate(st.path(), 0)
    st.age("app.log.1")
    # more new data than the old offset: a size check alone would miss the truncation
    st.write("".join(f"line {i}\n" for i in range(120, 400)))
    out = st.tail()
    assert out == "".join(f"line {i}\n" for i in range(100, 400)).encode()


class Killed(Exception):
    """Stands for a `kill -9` between writing a batch and saving its checkpoint."""


class KilledAtFirstBatchOf(Sink):
    """Writes batches, then dies at the first records read from `path` (before their checkpoint)."""

    def __init__(self, path: Path, fd: int) -> None:
        super().__init__("raw", writer=FdWriter(fd))
        self.path = str(path)

    def write(self, batch, cfg) -> None:
        super().write(batch, cfg)
        if batch.file == self.path and batch.count:
            raise Killed


@pytest.mark.parametrize("rotation", ["copytruncate", "rename"])
def test_logstream_kill_right_after_moving_to_the_next_file_loses_nothing(st, rotation):
    """Killed after moving on to the next file but before saving a batch from it, then that file is
    rotated away while stopped: the restart must still read it (found from the end of the previous
    file), not start the new file under the same name at 0. Seen under load with logrotate."""

    def rotate() -> None:  # app.log.1 -> app.log.2, app.log -> app.log.1, a new empty app.log
        if st.path("app.log.1").exists():
            os.rename(st.path("app.log.1"), st.path("app.log.2"))
            st.age("app.log.2")
        if rotation == "copytruncate":
            shutil.copy(st.path(), st.path("app.log.1"))
            os.truncate(st.path(), 0)
        else:
            os.rename(st.path(), st.path("app.log.1"))
            st.write("")
        st.age("app.log.1")

    lines = ["".join(f"line {i}\n" for i in range(a, b)) for a, b in ((0, 100), (100, 150), (150, 160))]
    st.write(lines[0])
    assert st.tail() == lines[0].encode()
    rotate()
    st.write(lines[1])
    fd = os.open(st.root / "out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with pytest.raises(Killed):
            Tailer(load_config(st.config), KilledAtFirstBatchOf(st.path(), fd), follow=False).run()
    finally:
        os.close(fd)
    assert (st.root / "out").read_bytes() == lines[1].encode()  # written, its checkpoint not saved
    assert st.journal().seek > 0  # an offset-0 journal could not tell the old app.log from the new
    rotate()
    st.write(lines[2])
    assert st.tail() == (lines[1] + lines[2]).encode()  # the unsaved batch repeats; nothing is lost
    assert st.tail() == b""


def test_logstream_search_in_a_listing_whose_copy_vanished_says_look_again(st):
    """copytruncate + compress: logrotate deletes the plain copy once its .gz is written. A listing taken
    just before that names the copy but not the .gz; searching it must answer "unsettled, look again",
    never "no file holds the bytes" (which restarts the file at 0 and skips the rest of the copy)."""
    from hekacli.logstream.discovery import StreamMatcher
    from hekacli.logstream.locate import find_by_hash

    data = "".join(f"line {i}\n" for i in range(200)).encode()
    st.write(data)
    seek, wanted = 700, hash_window(data[:700])
    shutil.copy(st.path(), st.path("app.log.1"))
    os.truncate(st.path(), 0)
    matcher = StreamMatcher(load_config(st.config).sections[0])
    listing = matcher.scan().streams["app"]
    with open(st.path("app.log.1"), "rb") as src, gzip.open(st.path("app.log.1.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    st.path("app.log.1").unlink()
    assert find_by_hash(listing, seek, wanted) == (None, b"", True)
    found, window, unsettled = find_by_hash(matcher.scan().streams["app"], seek, wanted)
    assert (found, window, unsettled) == (str(st.path("app.log.1.gz")), data[200:700], False)


@pytest.mark.parametrize("how", ["truncate", "replace"])
def test_logstream_truncated_or_replaced_without_copy_restarts_at_zero(st, how):
    st.write("".join(f"old {i}\n" for i in range(100)))
    st.tail()
    if how == "truncate":
        os.truncate(st.path(), 0)
    else:
        st.path().unlink()
    st.write("".join(f"new {i}\n" for i in range(300)))
    out = st.tail()
    assert out == "".join(f"new {i}\n" for i in range(300)).encode()
    assert any("restarting it at offset 0" in n for n in st.notes)


def test_logstream_inode_reuse_is_not_trusted(st):
    st.write("".join(f"first {i}\n" for i in range(40)))
    st.tail()
    old_ino = st.path().stat().st_ino
    st.path().unlink()
    st.write("".join(f"second {i}\n" for i in range(60)))  # often gets the freed inode back
    assert st.tail() == "".join(f"second {i}\n" for i in range(60)).encode()
    # whether or not the inode was reused, identity comes from the content hash
    assert isinstance(old_ino, int)


def test_logstream_corrupt_journal_is_reported_and_restarts_from_oldest(st):
    st.write("a\n", name="app.log.1")
    st.write("b\n")
    jdir = st.root / "journals"
    jdir.mkdir()
    (jdir / "app").write_text('{"seek":12,"file_name":"/x/app.log","last_ha')
    out = st.tail()
    assert out == b"a\nb\n"
    note = next(n for n in st.notes if "corrupt journal" in n)
    assert str(jdir / "app") in note and f"oldest file {st.path('app.log.1')} at offset 0" in note
    assert (jdir / "app.corrupt").exists()
    assert st.journal().file_name == str(st.path())


def test_logstream_stale_journal_starts_at_next_file(st):
    st.write("a\n", name="app.log.2")
    st.write("b\n", name="app.log.1")
    st.write("c\n")
    jdir = st.root / "journals"
    jdir.mkdir()
    gone = st.path("app.log.3")
    (jdir / "app").write_text(json.dumps({"seek": 5, "file_name": str(gone), "last_hash": NULL_HASH[::-1]}))
    assert st.tail() == b"a\nb\nc\n"  # .2, .1 and app.log sort after the vanished .3
    assert any("stale journal" in n for n in st.notes)


def test_logstream_multiline_records(tmp_path):
    st = Stream(tmp_path, "    multiline: {start: '^\\d{4}-'}\n")
    st.write("2024-01-01 boom\n  at a\n  at b\n2024-01-02 ok\n2024-01-03 pending\n  more\n")
    out = st.tail(fmt="jsonl")
    lines = [json.loads(x)["line"] for x in out.decode().splitlines()]
    # without --follow the pending last record is complete at the end of the input
    assert lines == ["2024-01-01 boom\n  at a\n  at b", "2024-01-02 ok", "2024-01-03 pending\n  more"]


def test_logstream_open_files_stay_bounded(tmp_path):
    st = Stream(tmp_path)
    for i in range(300, 0, -1):
        st.write(f"file {i}\n", name=f"app.log.{i}")
        st.age(f"app.log.{i}")
    st.write("current\n")
    before = len(os.listdir("/proc/self/fd"))
    cfg = load_config(st.config)
    sink = Sink("raw", writer=FdWriter(os.open(os.devnull, os.O_WRONLY)))
    t = Tailer(cfg, sink, follow=False)
    t.setup()
    peak = 0
    reader = t.streams["app"].reader
    count = 0
    while True:
        b = reader.next_batch(100, 1 << 20)
        peak = max(peak, len(os.listdir("/proc/self/fd")))
        if b is None:
            if reader.done:
                break
            continue
        count += b.count
    os.close(sink.writer.fd)
    reader.close()
    assert count == 301
    assert peak <= before + 2  # the sink's fd and one log file


def test_logstream_jsonl_and_heka_formats(st):
    from hekacli.framing import Splitter

    st.write("hello\nworld\n")
    out = st.tail(fmt="jsonl", checkpoint=False)
    recs = [json.loads(x) for x in out.decode().splitlines()]
    assert recs == [
        {"stream": "app", "file": str(st.path()), "offset": 0, "line": "hello"},
        {"stream": "app", "file": str(st.path()), "offset": 6, "line": "world"},
    ]
    out = st.tail(fmt="heka")
    msgs = [r.message() for r in Splitter().feed(out)]
    assert [(m.type, m.logger, m.payload) for m in msgs] == [
        ("logfile", "app", "hello\n"),
        ("logfile", "app", "world\n"),
    ]
    assert all(m.hostname and m.uuid and m.timestamp for m in msgs)


def test_logstream_initial_tail_starts_at_end_and_saves_a_true_hash(tmp_path):
    st = Stream(tmp_path, "    initial_tail: true\n")
    st.write("".join(f"old {i}\n" for i in range(200)) + "partial")
    assert st.tail() == b""
    st.write(" line\nnew\n")
    assert st.tail() == b"partial line\nnew\n"
    j = st.journal()
    assert j.last_hash == hash_window(st.path().read_bytes())
    assert st.tail() == b""


@pytest.mark.parametrize("seed", [1, 2])
def test_logstream_cuts_exactly_the_long_lines(tmp_path, seed):
    import random

    rng = random.Random(seed)
    lines = [bytes([97 + i % 26]) * rng.choice([0, 1, 5, 99, 100, 101, 150, 250, 999]) for i in range(400)]
    expected = b"".join(line[:100] + b"\n" for line in lines)
    data = b"".join(line + b"\n" for line in lines)
    (tmp_path / "whole").mkdir()
    whole = Stream(tmp_path / "whole", "    max_line_bytes: 100\n")
    whole.write(data)
    assert whole.tail() == expected
    assert whole.tailer.totals()["cut"] == sum(len(line) > 100 for line in lines)
    # The same file growing in pieces that end mid-line, with a restart after each piece.
    (tmp_path / "pieces").mkdir()
    pieces = Stream(tmp_path / "pieces", "    max_line_bytes: 100\n")
    out = b""
    for i in range(0, len(data), 7919):
        pieces.write(data[i : i + 7919])
        out += pieces.tail()
    assert out == expected


def test_logstream_explain_reasons(tmp_path):
    from hekacli.logstream.status import config_status

    def reason(st: Stream) -> tuple[str, str | None, int]:
        (s,) = config_status(load_config(st.config))[0].streams
        return s.reason, s.start_file and os.path.basename(s.start_file), s.start_offset

    st = Stream(tmp_path)
    st.write("".join(f"l{i}\n" for i in range(100)))
    assert reason(st) == ("fresh", "app.log", 0)
    st.tail()
    size = st.path().stat().st_size
    assert reason(st) == ("journal", "app.log", size)
    os.rename(st.path(), st.path("app.log.1"))
    st.write("new\n")
    assert reason(st) == ("relocated", "app.log.1", size)
    st.path("app.log.1").unlink()
    st.path().unlink()
    st.write("z\n", name="app.log.2")
    assert reason(st) == ("stale", "app.log.2", 0)  # nothing sorts after app.log: the newest file
    st.path("app.log.2").unlink()
    st.write("".join(f"l{i}\n" for i in range(100)))
    st.tail()
    st.write("x" * 10, mode="w")  # replaced by something shorter
    assert reason(st) == ("replaced", "app.log", 0)
    (st.root / "journals" / "app").write_text("{nope")
    assert reason(st) == ("corrupt", "app.log", 0)


def test_logstream_where_on_raw_lines(tmp_path):
    st = Stream(tmp_path, "    where: 'Payload =~ /ERROR/'\n")
    st.write("ok 1\nERROR boom\nok 2\nERROR again\n")
    assert st.tail() == b"ERROR boom\nERROR again\n"
    assert st.sink.filtered == 2
    assert st.journal().seek == st.path().stat().st_size  # filtered lines are consumed too


def test_logstream_pipe_writes_are_whole_lines_of_at_most_pipe_buf():
    import select

    class Recording(FdWriter):
        def __init__(self, fd):
            super().__init__(fd)
            self.calls: list[bytes] = []

        def _write_all(self, data):
            self.calls.append(bytes(data))
            super()._write_all(data)

    r, w = os.pipe()
    try:
        writer = Recording(w)
        assert writer.limit == select.PIPE_BUF
        lines = b"".join(b"%05d %s\n" % (i, b"y" * (i % 97)) for i in range(300))  # ~16 KB: fits the pipe
        writer.write_lines(lines)
        writer.write_records([b"rec %d\n" % i for i in range(2000)])
    finally:
        os.close(w)
        got = bytearray()
        while chunk := os.read(r, 1 << 16):
            got += chunk
        os.close(r)
    assert bytes(got) == lines + b"".join(b"rec %d\n" % i for i in range(2000))
    assert all(0 < len(c) <= select.PIPE_BUF and c.endswith(b"\n") for c in writer.calls)
    assert len(writer.calls) > 4


def test_logstream_multiline_whitespace_continuations_and_max_size(tmp_path):
    st = Stream(tmp_path, "    multiline: {continuation: whitespace, max_bytes: 40}\n")
    st.write(
        "Traceback:\n  File a\n  File b\nnext record\n"
        + "big\n"
        + "".join(f"  cont {i}\n" for i in range(10))
    )
    out = [json.loads(x)["line"] for x in st.tail(fmt="jsonl").decode().splitlines()]
    assert out[:2] == ["Traceback:\n  File a\n  File b", "next record"]
    assert out[2].startswith("big\n  cont 0") and len(out[2]) <= 40  # cut at max_bytes, reported
    assert st.tailer.totals()["cut"] >= 1
    assert "".join(out[2:]).count("cont 9") == 1  # the rest is not lost: it follows as records
