"""Resource metrics without root: the agent's reading of cgroup and /proc files (fixture trees in
tmp dirs, laid out as the kernel does), and the controller's rates between two scrapes."""
from __future__ import annotations

import os
import time

import pytest

from skiff.agent import stats
from skiff.controller import metrics as M
from skiff.controller.metrics_api import cpu_quantity, go_duration, memory_quantity, pod_metrics


def write(base, rel, text):
    path = os.path.join(str(base), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


V2_MEMSTAT = "anon 1048576\nfile 4194304\nactive_file 1048576\ninactive_file 3145728\n"


def test_v2_cgroup_usage(tmp_path):
    d = tmp_path / "skiff" / "podu1" / "c1"
    write(d, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    write(d, "memory.current", "10485760\n")
    write(d, "memory.stat", V2_MEMSTAT)
    u = stats.cgroup_usage({"": str(d)}, 2)
    assert u.cpu_ns == 2_500_000_000
    assert u.memory_usage == 10485760
    assert u.working_set == 10485760 - 3145728    # current - inactive_file
    assert abs(u.time - time.time()) < 5


def test_v2_working_set_never_negative_and_missing_memory(tmp_path):
    write(tmp_path, "a/memory.current", "100\n")
    write(tmp_path, "a/memory.stat", "inactive_file 4096\n")
    write(tmp_path, "a/cpu.stat", "usage_usec 7\n")
    u = stats.cgroup_usage({"": str(tmp_path / "a")}, 2)
    assert u.working_set == 0 and u.cpu_ns == 7000
    write(tmp_path, "b/cpu.stat", "usage_usec 9\n")   # no memory controller enabled here
    u = stats.cgroup_usage({"": str(tmp_path / "b")}, 2)
    assert u.cpu_ns == 9000 and u.working_set is None
    assert stats.usage_doc(u).keys() == {"cpu"}       # no invented memory figure
    assert stats.cgroup_usage({"": str(tmp_path / "gone")}, 2) is None


def test_v1_cgroup_usage(tmp_path):
    cpuacct, mem = tmp_path / "cpuacct" / "x", tmp_path / "memory" / "x"
    write(cpuacct, "cpuacct.usage", "123456789\n")
    write(mem, "memory.usage_in_bytes", "8388608\n")
    write(mem, "memory.stat", "cache 4096\ninactive_file 1\ntotal_inactive_file 2097152\n")
    u = stats.cgroup_usage({"cpuacct": str(cpuacct), "memory": str(mem), "cpu": "/nonexistent"}, 1)
    assert u.cpu_ns == 123456789
    assert u.working_set == 8388608 - 2097152          # total_inactive_file, hierarchical
    # cpu and cpuacct co-mounted: the cpu directory holds cpuacct.usage
    u = stats.cgroup_usage({"cpu": str(cpuacct), "memory": str(mem)}, 1)
    assert u.cpu_ns == 123456789


def test_cgroup_dirs_from_recorded_state():
    v1 = {"version": 1, "parent": "skiff/podU", "name": "cid",
          "mounts": {"memory": "/m", "cpu": "/c", "cpuacct": "/a", "pids": "/p", "freezer": "/f"}}
    assert stats.cgroup_dirs(v1) == ({"memory": "/m/skiff/podU/cid", "cpu": "/c/skiff/podU/cid",
                                      "cpuacct": "/a/skiff/podU/cid"}, 1)
    assert stats.cgroup_dirs(v1, "parent")[0]["cpuacct"] == "/a/skiff/podU"
    v2 = {"version": 2, "parent": "skiff/podU", "name": "cid", "mount": "/sys/fs/cgroup"}
    assert stats.cgroup_dirs(v2) == ({"": "/sys/fs/cgroup/skiff/podU/cid"}, 2)
    assert stats.cgroup_dirs(v2, "parent") == ({"": "/sys/fs/cgroup/skiff/podU"}, 2)
    assert stats.cgroup_dirs(None) is None


def test_node_usage_from_proc(tmp_path):
    write(tmp_path, "stat", "cpu  100 20 30 5000 40 1 2 3 0 0\ncpu0 50 10 15 2500 20 1 1 2 0 0\nintr 1\n")
    write(tmp_path, "meminfo", "MemTotal:        4000 kB\nMemFree:         1000 kB\nMemAvailable:    2500 kB\n"
                               "Inactive(file):   500 kB\n")
    u = stats.node_usage(str(tmp_path))
    hz = os.sysconf("SC_CLK_TCK")
    assert u.cpu_ns == (100 + 20 + 30 + 1 + 2 + 3) * 10**9 // hz   # idle and iowait are not busy
    assert u.memory_usage == 3000 * 1024
    assert u.working_set == 2500 * 1024


class _Runtime:
    def __init__(self, rows):
        self.rows = rows

    def running_cgroups(self, uid):
        return self.rows.get(uid, [])


def test_pod_entry_uses_pod_cgroup_and_newest_instance(tmp_path):
    root = tmp_path / "cg"
    write(root, "skiff/podU/new/cpu.stat", "usage_usec 3000\n")
    write(root, "skiff/podU/old/cpu.stat", "usage_usec 1000\n")
    write(root, "skiff/podU/cpu.stat", "usage_usec 5000\n")
    write(root, "skiff/podU/memory.current", "8192\n")
    write(root, "skiff/podU/memory.stat", "inactive_file 4096\n")

    def cg(name):
        return {"version": 2, "parent": "skiff/podU", "name": name, "mount": str(root)}
    rt = _Runtime({"U": [("main", "2026-01-01T00:00:02Z", cg("new")), ("main", "2026-01-01T00:00:01Z", cg("old")),
                         ("POD", "2026-01-01T00:00:00Z", cg("pause"))]})
    pod = {"metadata": {"name": "web", "namespace": "ns1", "uid": "U"}, "status": {"startTime": "2026-01-01T00:00:00Z"}}
    e = stats.pod_entry(rt, pod)
    assert e["podRef"] == {"name": "web", "namespace": "ns1", "uid": "U"}
    assert e["cpu"]["usageCoreNanoSeconds"] == 5_000_000
    assert e["memory"]["workingSetBytes"] == 4096
    assert [c["name"] for c in e["containers"]] == ["main"]      # not the sandbox, one per name
    assert e["containers"][0]["cpu"]["usageCoreNanoSeconds"] == 3_000_000
    assert "memory" not in e["containers"][0]
    # a hollow pod (no cgroup): listed, with no usage at all
    hollow = stats.pod_entry(_Runtime({"U": [("main", "t", None)]}), pod)
    assert hollow["containers"] == [{"name": "main", "startTime": "t"}] and "cpu" not in hollow


# ---------------------------------------------------------------- the controller's side

def summary(t, node_cpu, pods, node_mem=1 << 30):
    ts = stats.stamp(t)
    return {"node": {"nodeName": "n1", "cpu": {"time": ts, "usageCoreNanoSeconds": node_cpu},
                     "memory": {"time": ts, "workingSetBytes": node_mem}},
            "pods": [{"podRef": {"name": name, "namespace": "default", "uid": uid},
                      "containers": [{"name": c, "startTime": st,
                                      "cpu": {"time": ts, "usageCoreNanoSeconds": cpu},
                                      "memory": {"time": ts, "workingSetBytes": mem}}
                                     for c, st, cpu, mem in ctrs]}
                     for name, uid, ctrs in pods]}


def test_stamp_round_trips():
    t = 1764365000.25
    assert stats.stamp(t) == "2025-11-28T21:23:20.250000Z"
    assert M.parse_time(stats.stamp(t)) == pytest.approx(t, abs=1e-6)


def test_rates_between_two_scrapes():
    t0 = 1_000_000.0
    old = M.parse_summary(summary(t0, 10 * 10**9, [("web", "u1", [("a", "s", 1 * 10**9, 100), ("b", "s", 0, 5)]),
                                                  ("restarted", "u2", [("a", "s1", 5 * 10**9, 1)]),
                                                  ("gone", "u3", [("a", "s", 0, 1)])]))
    new = M.parse_summary(summary(t0 + 2.0, 13 * 10**9, [("web", "u1", [("a", "s", 2 * 10**9, 4096), ("b", "s", 10**8, 8)]),
                                                         ("restarted", "u2", [("a", "s2", 10**8, 1)]),
                                                         ("new", "u4", [("a", "s", 10**9, 1)])]))
    node, pods = M.rates(old, new)
    assert node.cpu == 1_500_000_000 and node.window == pytest.approx(2.0) and node.memory == 1 << 30
    assert set(pods) == {("default", "web")}      # restarted (new start) and new (one reading) have no rate
    web = pods[("default", "web")]
    assert web["a"].cpu == 500_000_000 and web["a"].memory == 4096
    assert web["b"].cpu == 50_000_000
    assert web["a"].timestamp == pytest.approx(t0 + 2.0, abs=1e-5)


def test_rate_needs_a_monotonic_counter_and_time():
    p = M.Point(10.0, 100, 1)
    assert M._rate(p, M.Point(10.0, 200, 1)) is None
    assert M._rate(p, M.Point(11.0, 50, 1)) is None
    assert M._rate(p, M.Point(11.0, None, 1)) is None
    assert M._rate(p, M.Point(12.0, 300, 7)).cpu == 100


def test_pod_missing_a_container_rate_is_left_out():
    t0 = 50.0
    old = M.parse_summary(summary(t0, 0, [("web", "u", [("a", "s", 0, 1)])]))
    new = M.parse_summary(summary(t0 + 1, 0, [("web", "u", [("a", "s", 10, 1), ("b", "s", 10, 1)])]))
    assert M.rates(old, new)[1] == {}


def test_quantities_and_windows():
    assert go_duration(15) == "15s"
    assert go_duration(1.002) == "1.002s"
    assert go_duration(60.5) == "1m0.5s"
    assert go_duration(3600) == "1h0m0s"
    assert (go_duration(0.3), go_duration(0.0015), go_duration(2e-6)) == ("300ms", "1.5ms", "2µs")
    assert cpu_quantity(1234) == "1234n"
    assert memory_quantity(8192) == "8Ki" and memory_quantity(1000) == "1000"
    u = M.Usage(1764365000.0, 15.0, 250_000_000, 4096)
    pm = pod_metrics({"metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}},
                      "spec": {"containers": [{"name": "y"}, {"name": "x"}]}}, {"x": u, "y": u})
    assert [c["name"] for c in pm["containers"]] == ["y", "x"]
    assert pm["window"] == "15s" and pm["timestamp"] == "2025-11-28T21:23:20Z"
    assert pm["containers"][0]["usage"] == {"cpu": "250000000n", "memory": "4Ki"}
    assert pm["metadata"]["labels"] == {"a": "b"}


def test_hollow_node_reports_no_usage():
    """The fake runtime has no cgroups and the host's /proc is not a hollow node's: its summary
    lists the pods with no cpu/memory, and the node with none (never made-up numbers)."""
    from types import SimpleNamespace

    from skiff.agent.fakeruntime import FakePodRuntime
    rt = FakePodRuntime()
    rt.ensure_network("10.244.3.0/24")
    p = {"metadata": {"name": "web", "namespace": "default", "uid": "u1"},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    sb = rt.run_sandbox(p)
    rt.start_container(p, sb, p["spec"]["containers"][0], 0, [])
    agent = SimpleNamespace(name="hollow-0001", runtime=rt, config=SimpleNamespace(runtime="fake"),
                            informer=SimpleNamespace(cache={"default/web": p}))
    mux = SimpleNamespace(agents=[agent])
    doc = stats.agent_summary(mux, "hollow-0001")
    assert doc["node"] == {"nodeName": "hollow-0001"}
    [entry] = doc["pods"]
    assert entry["containers"][0]["name"] == "c" and "cpu" not in entry["containers"][0]
    assert "cpu" not in entry and "memory" not in entry
    assert stats.agent_summary(mux, "other") is None
    # and the controller makes no metrics of it
    node, pods = M.rates(M.parse_summary(doc), M.parse_summary(doc))
    assert node is None and pods == {}
