"""Unit tests for skiff.runtime.containers.logs (docker json-file logs)."""

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

import pytest

from skiff.errors import InvalidArgument
from skiff.runtime.containers import logs
from skiff.runtime.containers.logs import PARTIAL_MAX, LogWriter, parse_size, read_logs

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def entries(path):
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def texts(path):
    return [(e["stream"], e["log"]) for e in entries(path)]


def collect(it, timeout=10.0):
    """Run a read_logs iterator in a thread; return its items (fail if it does not end)."""
    out: list = []
    done = threading.Event()
    err: list = []

    def run():
        try:
            for item in it:
                out.append(item)
        except BaseException as e:  # pragma: no cover - reported below
            err.append(e)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(timeout), "read_logs did not finish in time"
    if err:
        raise err[0]
    return out


@pytest.fixture
def logpath(tmp_path):
    return str(tmp_path / "c-json.log")


# -- writing --------------------------------------------------------------------


def test_lines_and_partial_lines_across_writes(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"one\ntwo\nthr")
    assert texts(logpath) == [("stdout", "one\n"), ("stdout", "two\n")]
    w.write("stdout", b"ee")
    assert len(entries(logpath)) == 2  # still buffered
    w.write("stdout", b"\nfour\n")
    assert texts(logpath) == [
        ("stdout", "one\n"),
        ("stdout", "two\n"),
        ("stdout", "three\n"),
        ("stdout", "four\n"),
    ]
    w.write("stdout", b"tail-no-newline")
    w.flush_partial()
    assert texts(logpath)[-1] == ("stdout", "tail-no-newline")
    w.close()


def test_close_flushes_partial_and_is_idempotent(logpath):
    w = LogWriter(logpath)
    w.write("stderr", b"bye")
    w.close()
    w.close()
    assert texts(logpath) == [("stderr", "bye")]
    with pytest.raises(ValueError):
        w.write("stdout", b"x\n")


def test_partial_flushed_at_16k(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"a" * (PARTIAL_MAX - 1))
    assert entries(logpath) == []
    w.write("stdout", b"bb")  # now 16 KiB + 1 buffered
    got = texts(logpath)
    assert got == [("stdout", "a" * (PARTIAL_MAX - 1) + "b")]
    assert not got[0][1].endswith("\n")
    w.write("stdout", b"\n")
    assert texts(logpath)[1] == ("stdout", "b\n")
    # A long line in one write is cut into 16 KiB pieces too.
    w.write("stdout", b"x" * (2 * PARTIAL_MAX + 5) + b"\n")
    tail = [t for _, t in texts(logpath)[2:]]
    assert tail == ["x" * PARTIAL_MAX, "x" * PARTIAL_MAX, "xxxxx\n"]
    w.close()


def test_16k_cut_does_not_split_utf8_characters(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"a" * (PARTIAL_MAX - 1) + "é".encode() + b"z\n")
    got = [t for _, t in texts(logpath)]
    assert got == ["a" * (PARTIAL_MAX - 1), "éz\n"]
    assert "\ufffd" not in "".join(got)
    w.close()


def test_streams_interleave_with_separate_partial_buffers(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"out-")
    w.write("stderr", b"err-")
    w.write("stderr", b"1\n")
    w.write("stdout", b"1\nout2\n")
    w.write("stderr", b"err2\n")
    w.close()
    assert texts(logpath) == [
        ("stderr", "err-1\n"),
        ("stdout", "out-1\n"),
        ("stdout", "out2\n"),
        ("stderr", "err2\n"),
    ]


def test_entry_format_and_time(logpath):
    before = time.time()
    w = LogWriter(logpath)
    w.write("stdout", b'say "hi"\t\\\n')
    w.close()
    after = time.time()
    with open(logpath, "rb") as f:
        raw = f.read()
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")
    e = json.loads(raw)
    assert set(e) == {"log", "stream", "time"}
    assert e["log"] == 'say "hi"\t\\\n'
    assert e["stream"] == "stdout"
    assert TIME_RE.match(e["time"]), e["time"]
    secs = time.mktime(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert before - 2 <= secs <= after + 2
    assert logs._timestamp(1_700_000_000_000_000_007) == "2023-11-14T22:13:20.000000007Z"


def test_invalid_utf8_is_replaced(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"bad \xff\xfe bytes\n")
    w.close()
    assert texts(logpath) == [("stdout", "bad \ufffd\ufffd bytes\n")]
    got = collect(read_logs(logpath))
    assert got == [("stdout", "bad \ufffd\ufffd bytes\n".encode())]


def test_one_os_write_per_call(logpath, monkeypatch):
    w = LogWriter(logpath)
    calls = []
    real = os.write
    monkeypatch.setattr(logs.os, "write", lambda fd, data: calls.append(bytes(data)) or real(fd, data))
    w.write("stdout", b"a\nb\nc\n")
    assert len(calls) == 1 and calls[0].count(b"\n") == 3
    monkeypatch.undo()
    w.close()


def test_appends_to_existing_file(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"first\n")
    with LogWriter(logpath) as w:
        w.write("stdout", b"second\n")
    assert [t for _, t in texts(logpath)] == ["first\n", "second\n"]


# -- rotation -------------------------------------------------------------------


def _write_numbered(w, n, start=0):
    for i in range(start, start + n):
        w.write("stdout", b"line %05d\n" % i)


def test_rotation_max_files_1_drops_old_content(logpath):
    w = LogWriter(logpath, max_size=300, max_files=1)
    _write_numbered(w, 50)
    w.close()
    d = os.path.dirname(logpath)
    assert sorted(os.listdir(d)) == ["c-json.log"]
    size = os.path.getsize(logpath)
    assert 0 < size <= 300
    got = [t for _, t in texts(logpath)]
    assert got[-1] == "line 00049\n"
    assert "line 00000\n" not in got
    # Consecutive: the newest entries survive.
    assert got == ["line %05d\n" % i for i in range(50 - len(got), 50)]


def test_rotation_max_files_3(logpath):
    w = LogWriter(logpath, max_size=300, max_files=3)
    _write_numbered(w, 100)
    w.close()
    d = os.path.dirname(logpath)
    assert sorted(os.listdir(d)) == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for name in os.listdir(d):
        assert 0 < os.path.getsize(os.path.join(d, name)) <= 300
    # Oldest first: .2, .1, current; they hold the newest entries, consecutively.
    got = []
    for p in (logpath + ".2", logpath + ".1", logpath):
        got += [t for _, t in texts(p)]
    assert got[-1] == "line 00099\n"
    assert got == ["line %05d\n" % i for i in range(100 - len(got), 100)]
    assert len(got) < 100  # the oldest were dropped
    # read_logs sees the same, in order
    assert [d for _, d in collect(read_logs(logpath))] == [g.encode() for g in got]


def test_rotation_within_one_write_batch(logpath):
    w = LogWriter(logpath, max_size=200, max_files=5)
    w.write("stdout", b"".join(b"batch %03d\n" % i for i in range(20)))
    w.close()
    files = [logpath + ".%d" % k for k in range(4, 0, -1)] + [logpath]
    for p in files:
        assert os.path.getsize(p) <= 200
    got = [t for p in files for _, t in texts(p)]
    assert got == ["batch %03d\n" % i for i in range(20 - len(got), 20)]


def test_oversized_entry_still_written(logpath):
    w = LogWriter(logpath, max_size=50, max_files=2)
    w.write("stdout", b"x" * 200 + b"\n")
    w.write("stdout", b"y\n")
    w.close()
    assert [t for _, t in texts(logpath + ".1")] == ["x" * 200 + "\n"]
    assert [t for _, t in texts(logpath)] == ["y\n"]


def test_writer_rejects_bad_options(logpath):
    with pytest.raises(InvalidArgument):
        LogWriter(logpath, max_files=0)
    with pytest.raises(InvalidArgument):
        LogWriter(logpath, max_size=0)


# -- parse_size -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,size",
    [
        ("100", 100),
        ("1k", 1024),
        ("1K", 1024),
        ("10m", 10 << 20),
        ("10M", 10 << 20),
        ("2g", 2 << 30),
        ("10mb", 10 << 20),
        ("10MiB", 10 << 20),
        ("1.5k", 1536),
        (" 3k ", 3072),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "x", "k", "10q", "-1", "0", "1.k", "1..5m", "1,5m", "²"])
def test_parse_size_invalid(text):
    with pytest.raises(InvalidArgument) as ei:
        parse_size(text)
    assert str(ei.value) == f'invalid log-opt max-size "{text}"'


# -- reading --------------------------------------------------------------------


def test_read_missing_file(logpath):
    assert collect(read_logs(logpath)) == []
    assert collect(read_logs(logpath, tail=3)) == []
    assert collect(read_logs(logpath, follow=True)) == []


def test_read_all_and_streams(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"a\n")
        w.write("stderr", b"b\n")
        w.write("stdout", b"c\n")
    assert collect(read_logs(logpath)) == [("stdout", b"a\n"), ("stderr", b"b\n"), ("stdout", b"c\n")]


def test_read_ignores_incomplete_last_line(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"a\n")
    with open(logpath, "ab") as f:
        f.write(b'{"log":"half')
    assert collect(read_logs(logpath)) == [("stdout", b"a\n")]
    assert collect(read_logs(logpath, tail=5)) == [("stdout", b"a\n")]


def test_read_skips_garbage_lines(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"a\n")
    with open(logpath, "ab") as f:
        f.write(b"not json\n[1,2]\n")
    with open(logpath, "ab") as f:
        f.write(json.dumps({"log": "b\n", "stream": "stderr", "time": "t"}).encode() + b"\n")
    assert collect(read_logs(logpath)) == [("stdout", b"a\n"), ("stderr", b"b\n")]
    assert collect(read_logs(logpath, tail=2)) == [("stdout", b"a\n"), ("stderr", b"b\n")]


def test_timestamps_prefix(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"hello\n")
    (stream, data), = collect(read_logs(logpath, timestamps=True))
    ts, rest = data.split(b" ", 1)
    assert stream == "stdout" and rest == b"hello\n"
    assert TIME_RE.match(ts.decode())
    assert ts.decode() == entries(logpath)[0]["time"]


def test_tail(logpath):
    with LogWriter(logpath) as w:
        _write_numbered(w, 10)
    data = lambda items: [d for _, d in items]  # noqa: E731
    assert data(collect(read_logs(logpath, tail=3))) == [b"line %05d\n" % i for i in (7, 8, 9)]
    assert collect(read_logs(logpath, tail=0)) == []
    assert len(collect(read_logs(logpath, tail=100))) == 10
    assert len(collect(read_logs(logpath, tail=-1))) == 10


def test_tail_big_file_reads_backwards(logpath, monkeypatch):
    monkeypatch.setattr(logs, "_BLOCK", 256)
    with LogWriter(logpath) as w:
        _write_numbered(w, 2000)
    size = os.path.getsize(logpath)
    reads = []
    real = os.pread
    monkeypatch.setattr(logs.os, "pread", lambda fd, n, off: reads.append(n) or real(fd, n, off))
    got = collect(read_logs(logpath, tail=5))
    assert [d for _, d in got] == [b"line %05d\n" % i for i in range(1995, 2000)]
    assert sum(reads) < size // 10  # did not read the whole file
    # block boundaries anywhere: every tail length is right
    monkeypatch.setattr(logs.os, "pread", real)
    for n in (1, 7, 33, 150, 1999, 2000, 2500):
        got = [d for _, d in collect(read_logs(logpath, tail=n))]
        assert got == [b"line %05d\n" % i for i in range(max(0, 2000 - n), 2000)]


def test_tail_across_rotated_files(logpath, monkeypatch):
    w = LogWriter(logpath, max_size=200, max_files=4)
    _write_numbered(w, 40)
    w.close()
    all_items = [d for _, d in collect(read_logs(logpath))]
    assert all_items[-1] == b"line 00039\n"
    assert all_items == [b"line %05d\n" % i for i in range(40 - len(all_items), 40)]
    cur = len(entries(logpath))
    one = len(entries(logpath + ".1"))
    n = cur + one + 2  # reaches into .2
    assert n <= len(all_items)
    assert [d for _, d in collect(read_logs(logpath, tail=n))] == all_items[-n:]
    # tail within the current file only: rotated files are not opened
    opened = []
    real_open = logs._open
    monkeypatch.setattr(logs, "_open", lambda p: opened.append(p) or real_open(p))
    assert [d for _, d in collect(read_logs(logpath, tail=cur))] == all_items[-cur:]
    assert opened == [logpath]


# -- follow ---------------------------------------------------------------------


class Follower:
    """Runs read_logs(follow=True) in a thread, pushing items to a queue."""

    def __init__(self, path, **kw):
        self.q: queue.Queue = queue.Queue()
        self.running = True
        self.done = threading.Event()
        self.error: list = []
        kw.setdefault("poll", 0.01)
        it = read_logs(path, follow=True, is_running=lambda: self.running, **kw)

        def run():
            try:
                for item in it:
                    self.q.put(item)
            except BaseException as e:  # pragma: no cover
                self.error.append(e)
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def take(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            assert left > 0, f"got only {out!r}"
            try:
                out.append(self.q.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def stop(self, timeout=10.0):
        self.running = False
        assert self.done.wait(timeout), "follow did not stop"
        assert not self.error, self.error
        rest = []
        while not self.q.empty():
            rest.append(self.q.get())
        return rest


def test_follow_picks_up_appended_lines(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"before\n")
    f = Follower(logpath)
    assert f.take(1) == [("stdout", b"before\n")]
    w.write("stderr", b"after 1\n")
    assert f.take(1) == [("stderr", b"after 1\n")]
    w.write("stdout", b"after ")  # partial: buffered by the writer
    time.sleep(0.05)
    assert f.q.empty()
    w.write("stdout", b"2\n")
    assert f.take(1) == [("stdout", b"after 2\n")]
    assert f.stop() == []
    w.close()


def test_follow_retries_incomplete_line(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"a\n")
    f = Follower(logpath)
    assert f.take(1) == [("stdout", b"a\n")]
    line = json.dumps({"log": "b\n", "stream": "stdout", "time": "t"}).encode() + b"\n"
    fd = os.open(logpath, os.O_WRONLY | os.O_APPEND)
    os.write(fd, line[:10])
    time.sleep(0.1)
    assert f.q.empty()
    os.write(fd, line[10:])
    os.close(fd)
    assert f.take(1) == [("stdout", b"b\n")]
    assert f.stop() == []


def test_follow_waits_for_file_to_appear(logpath):
    f = Follower(logpath)
    time.sleep(0.05)
    with LogWriter(logpath) as w:
        w.write("stdout", b"late\n")
    assert f.take(1) == [("stdout", b"late\n")]
    f.stop()


def test_follow_with_tail(logpath):
    w = LogWriter(logpath)
    _write_numbered(w, 5)
    f = Follower(logpath, tail=2)
    assert [d for _, d in f.take(2)] == [b"line 00003\n", b"line 00004\n"]
    w.write("stdout", b"new\n")
    assert f.take(1) == [("stdout", b"new\n")]
    assert f.stop() == []
    w.close()


@pytest.mark.parametrize("max_files", [1, 3])
def test_follow_across_rotation(logpath, max_files):
    w = LogWriter(logpath, max_size=400, max_files=max_files)
    f = Follower(logpath, poll=0.005)
    total = 60

    def writer():
        for i in range(total):
            w.write("stdout" if i % 2 else "stderr", b"line %05d\n" % i)
            time.sleep(0.005)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = f.take(total, timeout=20)
    t.join(10)
    # the file was rotated: 60 entries of ~60 bytes do not fit in 400
    assert os.path.getsize(logpath) <= 400
    assert len(entries(logpath)) < total
    assert os.path.exists(logpath + ".2") == (max_files == 3)
    assert [d for _, d in got] == [b"line %05d\n" % i for i in range(total)]
    assert [s for s, _ in got] == ["stdout" if i % 2 else "stderr" for i in range(total)]
    w.write("stdout", b"more\n")
    assert f.take(1) == [("stdout", b"more\n")]
    assert f.stop() == []
    w.close()


def test_follow_survives_many_rotations_between_polls(logpath):
    # The reader polls slowly; several rotations happen while it sleeps.
    w = LogWriter(logpath, max_size=100, max_files=50)
    f = Follower(logpath, poll=0.3)
    time.sleep(0.05)
    _write_numbered(w, 30)
    got = f.take(30, timeout=20)
    assert os.path.exists(logpath + ".5")
    assert [d for _, d in got] == [b"line %05d\n" % i for i in range(30)]
    assert f.stop() == []
    w.close()


def test_follow_ends_when_not_running(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"x\n")
    f = Follower(logpath)
    assert f.take(1) == [("stdout", b"x\n")]
    time.sleep(0.1)
    assert not f.done.is_set()  # still following while running
    w.write("stdout", b"last\n")
    assert f.take(1) == [("stdout", b"last\n")]
    w.close()
    assert f.stop(timeout=5) == []
    assert f.done.is_set()


def test_follow_final_drain_after_not_running(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"a\n")
    calls = []

    def is_running():
        # The writer emits its last line, then reports the container stopped.
        if not calls:
            w.write("stdout", b"final\n")
        calls.append(1)
        return False

    got = collect(read_logs(logpath, follow=True, is_running=is_running, poll=0.01))
    assert got == [("stdout", b"a\n"), ("stdout", b"final\n")]
    assert len(calls) == 1
    w.close()


def test_follow_handles_truncation(logpath):
    w = LogWriter(logpath)
    w.write("stdout", b"one\ntwo\n")
    f = Follower(logpath)
    assert len(f.take(2)) == 2
    os.truncate(logpath, 0)
    time.sleep(0.1)
    w.write("stdout", b"three\n")
    assert f.take(1) == [("stdout", b"three\n")]
    f.stop()
    w.close()


def test_follow_generator_close_releases_fds(logpath):
    with LogWriter(logpath) as w:
        w.write("stdout", b"a\n")
    it = read_logs(logpath, follow=True, is_running=lambda: True, poll=0.01)
    assert next(it) == ("stdout", b"a\n")
    fds_before = len(os.listdir("/proc/self/fd"))
    it.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before - 1


def test_module_imports_stay_light():
    code = (
        "import sys; before = set(sys.modules);"
        "import skiff.runtime.containers.logs;"
        "new = set(sys.modules) - before;"
        "heavy = {'threading', 'subprocess', 'asyncio', 'skiff.errors', 'datetime'} & new;"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
