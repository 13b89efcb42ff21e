import random

from skiff.controller.scheduler.cache import SchedulerCache
from skiff.controller.scheduler.filters import PodInfo
from skiff.controller.scheduler.score import (
    RoundRobin, least_allocated, score_and_select, score_nodes, select_host, spread_score)
from skiff.controller.scheduler.scheduler import num_feasible_nodes_to_find


def node(name, cpu="4", mem="8Gi"):
    return {"metadata": {"name": name}, "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name, cpu="100m", mem="128Mi", labels=None, node_name="", owner=None):
    md = {"name": name, "namespace": "default", "uid": "u" + name, "labels": labels or {}}
    if owner:
        md["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": "rs-" + owner, "controller": True}]
    return {"metadata": md, "spec": {"nodeName": node_name, "containers": [
        {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}


def cache(*nodes):
    c = SchedulerCache()
    for n in nodes:
        c.set_node(n)
    return c


def test_least_allocated():
    assert least_allocated(1000, 1000, 0, 0) == 100
    assert least_allocated(1000, 1000, 500, 500) == 50
    assert least_allocated(1000, 1000, 1000, 0) == 50
    assert least_allocated(1000, 1000, 2000, 2000) == 0
    assert least_allocated(0, 0, 1, 1) == 0


def test_spread_score():
    assert spread_score(0, 0) == 100
    assert spread_score(0, 4) == 100
    assert spread_score(4, 4) == 0
    assert spread_score(1, 4) == 75


def test_least_allocated_prefers_emptier_node():
    c = cache(node("a"), node("b"))
    c.set_pod(pod("x", cpu="2", node_name="a"))
    pi = PodInfo(pod("new"))
    assert select_host(c.node_list, score_nodes(pi, c.node_list)).name == "b"


def test_bigger_node_preferred():
    c = cache(node("a", cpu="2", mem="2Gi"), node("b", cpu="8", mem="16Gi"))
    pi = PodInfo(pod("new", cpu="1", mem="1Gi"))
    assert select_host(c.node_list, score_nodes(pi, c.node_list), RoundRobin()).name == "b"


def test_spread_same_owner():
    c = cache(node("a"), node("b"))
    # "a" is emptier (b holds a big unrelated pod) but holds two replicas of the owner already
    c.set_pod(pod("r1", cpu="10m", mem="1Mi", owner="web", node_name="a"))
    c.set_pod(pod("r2", cpu="10m", mem="1Mi", owner="web", node_name="a"))
    c.set_pod(pod("big", cpu="1", mem="1Gi", node_name="b"))
    pi = PodInfo(pod("r3", cpu="10m", mem="1Mi", owner="web"))
    assert select_host(c.node_list, score_nodes(pi, c.node_list)).name == "b"
    other = PodInfo(pod("o", cpu="10m", mem="1Mi", owner="db"))
    assert select_host(c.node_list, score_nodes(other, c.node_list)).name == "a"


def test_ties_fewest_pods_then_round_robin():
    c = cache(node("a"), node("b"), node("c"))
    rr = RoundRobin()
    picked = []
    for i in range(6):
        pi = PodInfo(pod(f"p{i}", cpu="0", mem="0"))
        ni = select_host(c.node_list, score_nodes(pi, c.node_list), rr)
        c.assume(pi, ni.name)
        picked.append(ni.name)
    assert picked == ["a", "b", "c", "a", "b", "c"]


def test_fast_path_same_answer_as_reference():
    rnd = random.Random(7)
    c1 = cache(*[node(f"n{i:02d}", cpu=rnd.choice(["2", "4", "8"]), mem=rnd.choice(["4Gi", "8Gi"]))
                 for i in range(20)])
    c2 = cache(*[n.node for n in c1.node_list])
    rr1, rr2 = RoundRobin(), RoundRobin()
    for i in range(300):
        p = pod(f"p{i}", cpu=rnd.choice(["0", "50m", "100m", "250m"]), mem=rnd.choice(["0", "64Mi", "100Mi"]),
                labels={"app": rnd.choice(["x", "y"])} if rnd.random() < .7 else None)
        pi = PodInfo(p)
        a = select_host(c1.node_list, score_nodes(pi, c1.node_list), rr1)
        b = score_and_select(pi, c2.node_list, rr2)
        assert a.name == b.name
        c1.assume(pi, a.name)
        c2.assume(PodInfo(p), b.name)


def test_num_feasible_nodes_to_find():
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(1000, 100) == 1000
    assert num_feasible_nodes_to_find(150) == 100
    assert num_feasible_nodes_to_find(10000) == 500    # adaptive percentage bottoms out at 5 %
