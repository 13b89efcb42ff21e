"""Unit tests for skiff.runtime.containers.state and Container.state() (a dead monitor)."""

import calendar
import json
import os
import re
import subprocess
import sys
import time

import pytest

from skiff.runtime.containers.create import CreateOptions, create
from skiff.runtime.containers.state import (CREATED, EXITED, RUNNING, State, now_rfc3339,
                                            parse_rfc3339, proc_start_time)
from skiff.runtime.containers.store import ContainerStore
from skiff.runtime.root import Root

# -- State load/save ---------------------------------------------------------------------


def test_state_defaults():
    st = State()
    assert st.status == CREATED == "created"
    assert (st.pid, st.monitor_pid, st.exit_code) == (0, 0, 0)
    assert st.oom_killed is False and st.error == "" and st.cgroup is None
    assert st.running is False and st.monitor_alive is False


def test_state_missing_file_is_created(tmp_path):
    st = State.load(str(tmp_path / "state.json"))
    assert st == State()


def test_state_round_trip(tmp_path):
    path = str(tmp_path / "state.json")
    st = State(status=RUNNING, pid=12, pid_start=34, monitor_pid=56, monitor_start=78,
               exit_code=3, oom_killed=True, error="boom", started_at="2024-01-01T00:00:00.1Z",
               finished_at="2024-01-01T00:00:01.2Z", cgroup={"v": 2, "path": "/sys/fs/cgroup/x"})
    st.save(path)
    back = State.load(path)
    assert back == st
    assert back.cgroup == {"v": 2, "path": "/sys/fs/cgroup/x"}
    with open(path) as f:
        assert json.load(f)["status"] == "running"
    assert [n for n in os.listdir(tmp_path) if n != "state.json"] == []  # no temp file left


def test_state_save_overwrites(tmp_path):
    path = str(tmp_path / "state.json")
    State(status=RUNNING, pid=1).save(path)
    State(status=EXITED, exit_code=2).save(path)
    back = State.load(path)
    assert (back.status, back.exit_code, back.pid) == (EXITED, 2, 0)


def test_state_load_ignores_unknown_keys(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"status": "exited", "exit_code": 1, "future_field": 5}))
    st = State.load(str(path))
    assert (st.status, st.exit_code) == ("exited", 1)


# -- proc_start_time ------------------------------------------------------------------------


def test_proc_start_time_self():
    t = proc_start_time(os.getpid())
    assert isinstance(t, int) and t > 0
    assert proc_start_time(os.getpid()) == t


def test_proc_start_time_differs_between_processes():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        t = proc_start_time(p.pid)
        assert isinstance(t, int)
        assert t >= proc_start_time(os.getpid())
    finally:
        p.kill()
        p.wait()


def test_proc_start_time_reaped_child_is_none():
    p = subprocess.Popen(["true"])
    p.wait()
    assert proc_start_time(p.pid) is None


def test_proc_start_time_zombie_is_none():
    p = subprocess.Popen(["true"])
    try:
        deadline = time.time() + 5
        while time.time() < deadline:  # not reaped yet: a zombie
            with open(f"/proc/{p.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.005)
        assert proc_start_time(p.pid) is None
    finally:
        p.wait()


def test_proc_start_time_odd_comm(tmp_path):
    """A command name with spaces and parentheses must not shift the fields."""
    exe = tmp_path / "a) b ("
    os.symlink(sys.executable, exe)
    p = subprocess.Popen([str(exe), "-c", "import time; time.sleep(5)"])
    try:
        t = proc_start_time(p.pid)
        assert isinstance(t, int)
        with open(f"/proc/{p.pid}/stat", "rb") as f:
            assert int(f.read().rsplit(b")", 1)[1].split()[19]) == t
    finally:
        p.kill()
        p.wait()


def test_proc_start_time_no_such_pid():
    assert proc_start_time(2 ** 22 + 12345) is None


# -- RFC 3339 -------------------------------------------------------------------------------


def test_now_rfc3339_format():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", now_rfc3339())


def test_now_rfc3339_round_trip_to_the_microsecond():
    before = time.time_ns()
    text = now_rfc3339()
    after = time.time_ns()
    t = parse_rfc3339(text)
    assert before / 1e9 - 1e-6 <= t <= after / 1e9 + 1e-6


def test_parse_rfc3339_known_value():
    base = calendar.timegm((2024, 2, 29, 12, 34, 56, 0, 0, 0))
    assert parse_rfc3339("2024-02-29T12:34:56.123456789Z") == pytest.approx(base + 0.123456789, abs=1e-6)
    assert parse_rfc3339("2024-02-29T12:34:56Z") == base
    assert parse_rfc3339("2024-02-29T12:34:56.5Z") == base + 0.5


def test_parse_rfc3339_empty_is_zero():
    assert parse_rfc3339("") == 0.0


def test_now_rfc3339_is_utc():
    text = now_rfc3339()
    assert abs(parse_rfc3339(text) - time.time()) < 5


# -- Container.state() ----------------------------------------------------------------------


class FakeImage:
    id = "sha256:" + "2" * 64
    config = {"config": {"Cmd": ["sh"]}}

    def layer_dirs(self):
        return []


class FakeImages:
    def resolve(self, ref):
        return FakeImage()


@pytest.fixture
def store(tmp_path):
    return ContainerStore(Root(str(tmp_path / "root")))


def new_container(store, **kw):
    return create(store, FakeImages(), CreateOptions(image="busybox", network="none", **kw))


def dead_pid() -> tuple[int, int]:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    start = proc_start_time(p.pid)
    p.kill()
    p.wait()
    return p.pid, start


def test_state_of_new_container_is_created(store):
    c = new_container(store)
    st = c.state()
    assert st.status == CREATED and not st.running
    assert not os.path.exists(os.path.join(c.dir, "state.json"))


def test_dead_monitor_is_reported_exited_137(store):
    c = new_container(store, name="web")
    pid, start = dead_pid()
    State(status=RUNNING, pid=pid, pid_start=start, monitor_pid=pid, monitor_start=start,
          started_at=now_rfc3339()).save(os.path.join(c.dir, "state.json"))
    st = store.get("web").state()
    assert st.status == EXITED
    assert st.exit_code == 137
    assert st.error == "the container's monitor process died"
    assert st.finished_at and parse_rfc3339(st.finished_at) >= parse_rfc3339(st.started_at)
    assert st.cgroup is None
    assert not st.running
    # ...and written back
    on_disk = State.load(os.path.join(c.dir, "state.json"))
    assert on_disk == st
    assert on_disk.status == EXITED and on_disk.exit_code == 137


def test_dead_monitor_keeps_an_existing_finished_at(store):
    c = new_container(store)
    pid, start = dead_pid()
    State(status=RUNNING, monitor_pid=pid, monitor_start=start,
          finished_at="2024-01-01T00:00:00.000000000Z").save(os.path.join(c.dir, "state.json"))
    assert c.state().finished_at == "2024-01-01T00:00:00.000000000Z"


def test_reused_monitor_pid_is_dead(store):
    """A live process with the monitor's pid but another start time is not the monitor."""
    c = new_container(store)
    me = os.getpid()
    State(status=RUNNING, monitor_pid=me, monitor_start=proc_start_time(me) + 1).save(
        os.path.join(c.dir, "state.json"))
    st = c.state()
    assert (st.status, st.exit_code) == (EXITED, 137)


def test_live_monitor_stays_running(store):
    c = new_container(store)
    me = os.getpid()
    State(status=RUNNING, pid=me, monitor_pid=me, monitor_start=proc_start_time(me)).save(
        os.path.join(c.dir, "state.json"))
    st = c.state()
    assert st.status == RUNNING and st.running and st.monitor_alive
    assert State.load(os.path.join(c.dir, "state.json")).status == RUNNING


def test_exited_state_untouched(store):
    c = new_container(store)
    pid, start = dead_pid()
    st0 = State(status=EXITED, exit_code=3, monitor_pid=pid, monitor_start=start,
                finished_at="2024-01-01T00:00:00.000000000Z")
    st0.save(os.path.join(c.dir, "state.json"))
    assert c.state() == st0


def test_dead_monitor_of_autoremove_container_removes_it(store):
    c = new_container(store, name="gone", autoremove=True)
    pid, start = dead_pid()
    State(status=RUNNING, monitor_pid=pid, monitor_start=start).save(
        os.path.join(c.dir, "state.json"))
    st = c.state()
    assert (st.status, st.exit_code) == (EXITED, 137)
    assert not os.path.exists(c.dir)
    assert not os.path.exists(os.path.join(store.root.names, "gone"))
    assert store.list() == []
