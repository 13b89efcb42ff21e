import random

from skiff.controller.scheduler.cache import SchedulerCache
from skiff.controller.scheduler.filters import PodInfo, fits_resources
from skiff.controller.scheduler.score import (
    FitTable, RoundRobin, least_allocated, score_nodes, select_host, spread_score)
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


def _reference(pi, order, want, rr):
    """NodeResourcesFit, then select_host(score_nodes): what fit_and_select must answer."""
    fit, unfit = [], []
    for ni in order:
        if fits_resources(pi, ni):
            unfit.append(ni)
            continue
        fit.append(ni)
        if len(fit) >= want:
            break
    return (select_host(fit, score_nodes(pi, fit), rr) if fit else None), len(fit) + len(unfit), fit, unfit


def test_fit_table_same_answer_as_reference():
    """Random nodes (some small enough to fill up, some not sorted by name), pods of a few shapes
    and owners, windows smaller than the cluster: each cycle's choice, window and misfits are
    the reference's, with one table per shape kept up to date from the cache's change log."""
    rnd = random.Random(7)
    nodes = [node(f"n{i:02d}", cpu=rnd.choice(["300m", "2", "4"]), mem=rnd.choice(["512Mi", "4Gi", "8Gi"]))
             for i in range(30)]
    c1, c2 = cache(*nodes), cache(*nodes)
    rr1, rr2 = RoundRobin(), RoundRobin()
    tables: dict = {}
    backwards = c2.node_list[::-1]
    start = 0
    updated = 0
    for i in range(900):
        p = pod(f"p{i}", cpu=rnd.choice(["0", "50m", "100m"]), mem=rnd.choice(["0", "64Mi", "100Mi"]),
                labels={"app": rnd.choice(["x", "y"])} if rnd.random() < .5 else None,
                owner=rnd.choice([None, "web", "db"]))
        want = rnd.choice([5, 12, 30])
        pi = PodInfo(p)
        shape = (pi.cpu, pi.mem, pi.nz_cpu, pi.nz_mem, pi.group)
        # a third of the time the nodes come in another order (the tie-break by name then
        # cannot bisect the table's order)
        nodes2 = c2.node_list if i % 300 < 200 else backwards
        t = tables.get(shape)
        changed = None if t is None or t.nodes is not nodes2 else c2.changes_since(t.pos)
        if changed is None:
            t = tables[shape] = FitTable(shape, nodes2, c2.changes_end)
        else:
            t.update(changed, c2.changes_end)
            updated += 1
        s2 = start if nodes2 is c2.node_list else len(nodes) - 1 - start
        order1 = [c1.nodes[n.name] for n in nodes2[s2:] + nodes2[:s2]]     # the same window
        a, looked_a, fit_a, unfit_a = _reference(PodInfo(p), order1, want, rr1)
        b, looked_b, unfit_b = t.select(s2, want, rr2)
        assert (looked_a, [n.name for n in unfit_a]) == (looked_b, [nodes2[j].name for j in unfit_b]), i
        assert (a and a.name) == (b and b.name), i
        if a is not None:
            c1.assume(PodInfo(p), a.name)
            c2.assume(pi, b.name)
        if i % 50 == 49:        # some pods go away: their nodes change
            for key in rnd.sample(sorted(c1.pods), 10):
                c1.remove_pod(key)
                c2.remove_pod(key)
        start = (start + looked_a) % len(nodes)
    assert updated > 600        # the tables were updated from the log, not rebuilt
    assert sum(n.npods for n in c1.node_list) > 300


def test_the_change_log_stays_bounded_without_a_table_reading_it():
    """Pods come and go with no FitTable looking (every pod with terms, say): the cache's log of
    changed nodes is forgotten past its bound, and a table behind that is rebuilt."""
    c = cache(node("a"), node("b"))
    pi0 = PodInfo(pod("p", cpu="0", mem="0"))
    old = c.changes_end
    for i in range(3000):
        pi = PodInfo(pod(f"p{i}", cpu="10m", mem="1Mi"))
        c.assume(pi, "a" if i % 2 else "b")
        c.remove_pod(pi.key)
    assert len(c.changes) <= 1024 + 2 * len(c.nodes)
    assert c.changes_since(old) is None and c.changes_since(c.changes_end) == []
    assert FitTable((pi0.cpu, pi0.mem, pi0.nz_cpu, pi0.nz_mem, pi0.group), c.node_list, c.changes_end) \
        .select(0, 2)[0].name == "a"


def test_fit_table_tie_break_follows_names_across_the_wrap():
    """Equal nodes: the pick is the first name after the last one chosen, wherever the window
    starts and wraps, as select_host's round-robin."""
    c = cache(*[node(f"n{i}") for i in range(6)])
    pi = PodInfo(pod("p", cpu="0", mem="0"))
    t = FitTable((pi.cpu, pi.mem, pi.nz_cpu, pi.nz_mem, pi.group), c.node_list, c.changes_end)
    rr = RoundRobin()
    rr.last = "n3"
    assert t.select(4, 4, rr)[0].name == "n4"     # window n4 n5 n0 n1
    assert t.select(4, 3, rr)[0].name == "n5"
    rr.last = "n5"
    assert t.select(4, 4, rr)[0].name == "n0"     # nothing after n5: the smallest, past the wrap
    rr.last = "n1"
    assert t.select(4, 4, rr)[0].name == "n4"     # n2, n3 are not in the window
    assert t.select(1, 2, None)[0].name == "n1"


def test_num_feasible_nodes_to_find():
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(1000, 100) == 1000
    assert num_feasible_nodes_to_find(150) == 100
    assert num_feasible_nodes_to_find(10000) == 500    # adaptive percentage bottoms out at 5 %
