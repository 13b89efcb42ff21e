"""spec.affinity and spec.topologySpreadConstraints in the scheduler (NodeAffinity, InterPodAffinity,
PodTopologySpread): each case runs the scheduler's own cycle (Scheduler.schedule) on its cache,
without the API; a chosen node is assumed, as the scheduler does before binding."""
from collections import Counter

import pytest

from skiff.controller.scheduler import Scheduler
from skiff.controller.scheduler.filters import PodInfo, R_SELECTOR, fit_error_message
from skiff.controller.scheduler.interpod import R_AFFINITY, R_ANTI_AFFINITY, R_EXISTING_ANTI_AFFINITY
from skiff.controller.scheduler.score import node_affinity_scores
from skiff.controller.scheduler.spread import R_SPREAD, R_SPREAD_LABEL
from skiff.controller.scheduler.terms import node_selector_terms

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def node(name, labels=None, cpu="4", mem="8Gi", hostname=True):
    labels = {**({HOST: name} if hostname else {}), **(labels or {})}
    return {"metadata": {"name": name, "labels": labels}, "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name, labels=None, ns="default", affinity=None, spread=None, selector=None, node_name="",
        cpu="100m", mem="128Mi", deleting=False):
    md = {"name": name, "namespace": ns, "uid": "u-" + name, "labels": labels or {}}
    if deleting:
        md["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    spec = {"nodeName": node_name, "containers": [
        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}
    if affinity:
        spec["affinity"] = affinity
    if spread:
        spec["topologySpreadConstraints"] = spread
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": md, "spec": spec, "status": {}}


def scheduler(*nodes, pods=(), namespaces=None):
    s = Scheduler(None)
    for n in nodes:
        s.cache.set_node(n)
    for p in pods:
        s.cache.set_pod(p)
    for name, labels in (namespaces or {}).items():
        s.namespaces.cache[name] = {"metadata": {"name": name, "labels": labels}}
    return s


def cycle(s, p):
    """(node chosen and assumed, "") or (None, the FailedScheduling message)."""
    pi = PodInfo(p)
    ni, _, reasons, total = s.schedule(pi)
    if ni is None:
        return None, fit_error_message(total, reasons)
    s.cache.assume(pi, ni.name)
    return ni.name, ""


def feasible(s, p):
    pi = PodInfo(p)
    nodes, _, _ = s.find_feasible(pi, *s.plugin_states(pi))
    return sorted(ni.name for ni in nodes)


def required_nodes(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


def term(key, value, topology=HOST, **extra):
    return {"labelSelector": {"matchLabels": {key: value}}, "topologyKey": topology, **extra}


def anti(*terms, preferred=()):
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms),
                                "preferredDuringSchedulingIgnoredDuringExecution": list(preferred)}}


def spread(key=ZONE, skew=1, when="DoNotSchedule", app="web", **extra):
    return {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": app}}, **extra}


# -- NodeAffinity ------------------------------------------------------------------------------

def test_required_node_affinity_every_operator_and_match_fields():
    s = scheduler(node("a", {"disk": "ssd", "cores": "8"}), node("b", {"disk": "hdd", "cores": "2"}),
                  node("c", {"gpu": "yes", "cores": "many"}), node("d"))
    cases = [
        ([{"matchExpressions": [expr("disk", "In", "ssd")]}], ["a"]),
        ([{"matchExpressions": [expr("disk", "NotIn", "ssd")]}], ["b", "c", "d"]),
        ([{"matchExpressions": [expr("gpu", "Exists")]}], ["c"]),
        ([{"matchExpressions": [expr("disk", "DoesNotExist")]}], ["c", "d"]),
        ([{"matchExpressions": [expr("cores", "Gt", "4")]}], ["a"]),          # "many" is no integer
        ([{"matchExpressions": [expr("cores", "Lt", "4")]}], ["b"]),
        ([{"matchFields": [expr("metadata.name", "In", "b")]}], ["b"]),
        ([{"matchFields": [expr("metadata.name", "NotIn", "b")]}], ["a", "c", "d"]),
        # ANDed within a term, ORed across terms
        ([{"matchExpressions": [expr("disk", "In", "ssd", "hdd"), expr("cores", "Gt", "4")]}], ["a"]),
        ([{"matchExpressions": [expr("disk", "In", "ssd")], "matchFields": [expr("metadata.name", "In", "b")]}], []),
        ([{"matchExpressions": [expr("disk", "In", "ssd")]}, {"matchExpressions": [expr("gpu", "Exists")]}],
         ["a", "c"]),
        # a term without requirements matches nothing
        ([{}], []),
    ]
    for terms, want in cases:          # one scheduler: the static cache must key on the affinity
        assert feasible(s, pod("p", affinity=required_nodes(*terms))) == want, terms
    # ANDed with nodeSelector
    assert feasible(s, pod("p", affinity=required_nodes({"matchExpressions": [expr("disk", "Exists")]}),
                           selector={"cores": "2"})) == ["b"]
    assert cycle(s, pod("p", affinity=required_nodes({}))) == (
        None, f"0/4 nodes are available: 4 {R_SELECTOR}.")


def test_preferred_node_affinity_picks_the_heavier_node():
    nodes = (node("a", {ZONE: "z1"}), node("b", {ZONE: "z2", "disk": "ssd"}))
    prefs = [{"weight": 10, "preference": {"matchExpressions": [expr(ZONE, "In", "z1")]}},
             {"weight": 50, "preference": {"matchExpressions": [expr("disk", "Exists")]}}]
    aff = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": prefs}}
    assert cycle(scheduler(*nodes), pod("p", affinity=aff))[0] == "b"
    prefs[0]["weight"], prefs[1]["weight"] = 60, 10
    assert cycle(scheduler(*nodes), pod("p", affinity=aff))[0] == "a"
    in_z1, has_disk = node_selector_terms([p["preference"] for p in prefs])
    assert node_affinity_scores([(10, in_z1), (40, has_disk)], scheduler(*nodes).cache.node_list) == [25, 100]


# -- InterPodAffinity --------------------------------------------------------------------------

def test_required_anti_affinity_spreads_replicas_one_per_node_and_leaves_the_rest_pending():
    s = scheduler(node("a"), node("b"), node("c"))
    placed = []
    for i in range(4):              # back to back: the earlier replicas are only assumed
        placed.append(cycle(s, pod(f"web-{i}", {"app": "web"}, affinity=anti(term("app", "web")))))
    assert sorted(n for n, _ in placed[:3]) == ["a", "b", "c"]
    assert placed[3] == (None, f"0/3 nodes are available: 3 {R_ANTI_AFFINITY}.")


def test_assumed_pod_counts_for_anti_affinity_and_stays_counted_when_confirmed():
    # the replicas differ in labels (no default spreading between them) and "a" is far bigger:
    # without anti-affinity both would go to "a"
    s = scheduler(node("a", cpu="64", mem="256Gi"), node("b", cpu="1", mem="1Gi"))
    aff = anti(term("app", "web"))
    first = pod("web-0", {"app": "web", "i": "0"}, affinity=aff)
    assert cycle(s, first)[0] == "a"
    assert "default/web-0" in s.cache.assumed
    assert cycle(s, pod("web-1", {"app": "web", "i": "1"}, affinity=aff))[0] == "b"
    s.cache.forget("default/web-1")
    s.cache.set_pod({**first, "spec": {**first["spec"], "nodeName": "a"}})   # the watch confirms it
    assert "default/web-0" not in s.cache.assumed
    assert feasible(s, pod("web-1", {"app": "web", "i": "1"}, affinity=aff)) == ["b"]
    s.cache.remove_pod("default/web-0")
    assert feasible(s, pod("web-1", {"app": "web", "i": "1"}, affinity=aff)) == ["a", "b"]


def test_relabelled_pod_is_seen_by_anti_affinity():
    s = scheduler(node("a"), node("b"), pods=[pod("old", {"app": "web"}, node_name="a")])
    new = pod("new", {"app": "web"}, affinity=anti(term("app", "web")))
    assert feasible(s, new) == ["b"]
    s.cache.set_pod(pod("old", {"app": "retired"}, node_name="a"))
    assert feasible(s, new) == ["a", "b"]


def test_required_affinity_co_locates_with_an_existing_pod():
    nodes = (node("a", {ZONE: "z1"}), node("b", {ZONE: "z1"}), node("c", {ZONE: "z2"}), node("d"))
    s = scheduler(*nodes, pods=[pod("db", {"app": "db"}, node_name="b")])
    near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", "db")]}}
    assert cycle(s, pod("web", {"app": "web"}, affinity=near))[0] == "b"
    same_zone = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", "db", ZONE)]}}
    assert feasible(s, pod("web", {"app": "web"}, affinity=same_zone)) == ["a", "b"]
    # nothing matches and the pod does not match its own term: no node will do
    lonely = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", "cache", ZONE)]}}
    assert cycle(s, pod("web", {"app": "web"}, affinity=lonely)) == (
        None, f"0/4 nodes are available: 4 {R_AFFINITY}.")


def test_first_pod_of_a_group_with_affinity_to_itself():
    s = scheduler(node("a", {ZONE: "z1"}), node("b", {ZONE: "z2"}), node("c"))
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", "cache", ZONE)]}}
    # no pod matches yet and the pod matches its own term: any node with the topology key
    assert feasible(s, pod("cache-0", {"app": "cache"}, affinity=aff)) == ["a", "b"]
    zone = cycle(s, pod("cache-0", {"app": "cache"}, affinity=aff))[0]
    # then the group stays in that zone
    assert feasible(s, pod("cache-1", {"app": "cache"}, affinity=aff)) == [zone]


def test_existing_pods_anti_affinity_is_symmetric():
    guard = pod("guard", {"app": "guard"}, affinity=anti(term("app", "web")), node_name="a")
    s = scheduler(node("a"), node("b"), pods=[guard])
    assert feasible(s, pod("web", {"app": "web"})) == ["b"]
    assert feasible(s, pod("db", {"app": "db"})) == ["a", "b"]
    # the term's namespaces default to its own pod's
    assert feasible(s, pod("web", {"app": "web"}, ns="other")) == ["a", "b"]
    s = scheduler(node("a"), pods=[guard])
    assert cycle(s, pod("web", {"app": "web"})) == (None, f"0/1 nodes are available: 1 {R_EXISTING_ANTI_AFFINITY}.")


def test_namespaces_and_namespace_selector():
    s = scheduler(node("a"), node("b"), pods=[pod("x", {"app": "web"}, ns="team-b", node_name="a")],
                  namespaces={"team-a": {"team": "a"}, "team-b": {"team": "b"}})
    own = anti(term("app", "web"))
    assert feasible(s, pod("p", {"app": "p"}, ns="team-a", affinity=own)) == ["a", "b"]
    listed = anti(term("app", "web", namespaces=["team-b"]))
    assert feasible(s, pod("p", {"app": "p"}, ns="team-a", affinity=listed)) == ["b"]
    by_label = anti(term("app", "web", namespaceSelector={"matchLabels": {"team": "b"}}))
    assert feasible(s, pod("p", {"app": "p"}, ns="team-a", affinity=by_label)) == ["b"]
    other_label = anti(term("app", "web", namespaceSelector={"matchLabels": {"team": "c"}}))
    assert feasible(s, pod("p", {"app": "p"}, ns="team-a", affinity=other_label)) == ["a", "b"]
    everywhere = anti(term("app", "web", namespaceSelector={}))
    assert feasible(s, pod("p", {"app": "p"}, ns="team-a", affinity=everywhere)) == ["b"]


def test_match_label_keys_separate_revisions():
    old = pod("web-old", {"app": "web", "pod-template-hash": "v1"}, node_name="a")
    s = scheduler(node("a"), node("b"), pods=[old])
    aff = anti(term("app", "web", matchLabelKeys=["pod-template-hash"]))
    assert feasible(s, pod("web-new", {"app": "web", "pod-template-hash": "v2"}, affinity=aff)) == ["a", "b"]
    assert feasible(s, pod("web-v1", {"app": "web", "pod-template-hash": "v1"}, affinity=aff)) == ["b"]


def test_preferred_pod_affinity_and_anti_affinity_score():
    # "a" is emptier: least allocated alone picks it
    nodes = (node("a"), node("b"))
    big = pod("big", {"app": "big"}, node_name="b", cpu="1", mem="2Gi")
    db = pod("db", {"app": "db"}, node_name="b")
    near = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": term("app", "db")}]}}
    assert cycle(scheduler(*nodes, pods=[big]), pod("web", {"app": "web"}))[0] == "a"
    assert cycle(scheduler(*nodes, pods=[big, db]), pod("web", {"app": "web"}, affinity=near))[0] == "b"
    # preferred anti-affinity pushes away from the emptier node holding the matching pod
    db_a = pod("db", {"app": "db"}, node_name="a")
    away = anti(preferred=[{"weight": 50, "podAffinityTerm": term("app", "db")}])
    assert cycle(scheduler(*nodes, pods=[big, db_a]), pod("web", {"app": "web"}, affinity=away))[0] == "b"
    # and an existing pod's preferred anti-affinity term, symmetrically
    shy = pod("shy", {"app": "shy"}, node_name="a", affinity=anti(preferred=[
        {"weight": 50, "podAffinityTerm": term("app", "web")}]))
    assert cycle(scheduler(*nodes, pods=[big, shy]), pod("web", {"app": "web"}))[0] == "b"


# -- PodTopologySpread -------------------------------------------------------------------------

ZONES = (node("a1", {ZONE: "z1"}), node("a2", {ZONE: "z1"}), node("b1", {ZONE: "z2"}), node("c1", {ZONE: "z3"}))


def test_do_not_schedule_max_skew_one_over_zones():
    s = scheduler(*ZONES)
    zone_of = {n["metadata"]["name"]: n["metadata"]["labels"][ZONE] for n in ZONES}
    placed = [cycle(s, pod(f"web-{i}", {"app": "web"}, spread=[spread()]))[0] for i in range(6)]
    assert Counter(zone_of[n] for n in placed) == {"z1": 2, "z2": 2, "z3": 2}
    # two in z1 already, none elsewhere: only z2 and z3 keep the skew at 1
    s = scheduler(*ZONES, pods=[pod(f"w{i}", {"app": "web"}, node_name="a1") for i in range(2)])
    assert feasible(s, pod("web", {"app": "web"}, spread=[spread()])) == ["b1", "c1"]
    # pods of another namespace, of another app, or terminating do not count
    s = scheduler(*ZONES, pods=[pod("o", {"app": "web"}, ns="other", node_name="b1"),
                                pod("d", {"app": "db"}, node_name="b1"),
                                pod("t", {"app": "web"}, node_name="c1", deleting=True)])
    assert feasible(s, pod("web", {"app": "web"}, spread=[spread(skew=1)])) == ["a1", "a2", "b1", "c1"]


def test_missing_topology_label_and_message():
    s = scheduler(node("a1", {ZONE: "z1"}), node("b1", {ZONE: "z2"}, cpu="100m"), node("d"),
                  pods=[pod("w", {"app": "web"}, node_name="a1")])
    # z2 is empty (its node is full, it still counts as a domain), so z1 would be skewed 2
    assert cycle(s, pod("web", {"app": "web"}, spread=[spread()], cpu="500m")) == (
        None, f"0/3 nodes are available: 1 Insufficient cpu, 1 {R_SPREAD}, 1 {R_SPREAD_LABEL}.")
    assert R_SPREAD_LABEL == "node(s) didn't match pod topology spread constraints (missing required label)"


def test_min_domains_treats_the_global_minimum_as_zero():
    nodes = (node("a1", {ZONE: "z1"}), node("b1", {ZONE: "z2"}))
    existing = [pod("w1", {"app": "web"}, node_name="a1"), pod("w2", {"app": "web"}, node_name="b1")]
    assert feasible(scheduler(*nodes, pods=existing), pod("web", {"app": "web"}, spread=[spread()])) == ["a1", "b1"]
    s = scheduler(*nodes, pods=existing)
    assert cycle(s, pod("web", {"app": "web"}, spread=[spread(minDomains=3)])) == (
        None, f"0/2 nodes are available: 2 {R_SPREAD}.")


def test_node_affinity_policy_decides_which_nodes_are_domains():
    nodes = (node("a1", {ZONE: "z1", "pool": "x"}), node("b1", {ZONE: "z2", "pool": "x"}),
             node("c1", {ZONE: "z3", "pool": "y"}))
    existing = [pod("w1", {"app": "web"}, node_name="a1"), pod("w2", {"app": "web"}, node_name="b1")]
    honor = pod("web", {"app": "web"}, selector={"pool": "x"}, spread=[spread()])
    assert feasible(scheduler(*nodes, pods=existing), honor) == ["a1", "b1"]
    ignore = pod("web", {"app": "web"}, selector={"pool": "x"}, spread=[spread(nodeAffinityPolicy="Ignore")])
    assert feasible(scheduler(*nodes, pods=existing), ignore) == []       # empty z3 counts: skew 2


def test_match_label_keys_in_spread():
    old = [pod(f"old-{i}", {"app": "web", "pod-template-hash": "v1"}, node_name="a1") for i in range(3)]
    c = spread(matchLabelKeys=["pod-template-hash"])
    assert feasible(scheduler(*ZONES, pods=old),
                    pod("new", {"app": "web", "pod-template-hash": "v2"}, spread=[c])) == ["a1", "a2", "b1", "c1"]
    assert feasible(scheduler(*ZONES, pods=old),
                    pod("v1", {"app": "web", "pod-template-hash": "v1"}, spread=[c])) == ["b1", "c1"]


def test_schedule_anyway_scores_the_emptier_domain_and_never_filters():
    nodes = (node("a1", {ZONE: "z1"}), node("b1", {ZONE: "z2"}))
    # a1 is emptier (b1 holds a big unrelated pod) but z1 holds two matching pods of other groups
    existing = [pod("w1", {"app": "web", "i": "1"}, node_name="a1"),
                pod("w2", {"app": "web", "i": "2"}, node_name="a1"),
                pod("big", {"app": "big"}, node_name="b1", cpu="1", mem="2Gi")]
    plain = pod("web", {"app": "web", "i": "3"})
    assert cycle(scheduler(*nodes, pods=existing), plain)[0] == "a1"
    soft = pod("web", {"app": "web", "i": "3"}, spread=[spread(when="ScheduleAnyway")])
    assert cycle(scheduler(*nodes, pods=existing), soft)[0] == "b1"
    assert cycle(scheduler(nodes[0], pods=existing[:2]), soft)[0] == "a1"


@pytest.mark.asyncio
async def test_the_queue_takes_pending_pods_highest_priority_first():
    """PrioritySort: the scheduler's queue orders pending pods by spec.priority (the Priority
    admission's), first come first served within one priority."""
    s = Scheduler(None)

    class Pods:
        cache = {f"default/{n}": {"metadata": {"name": n}, "spec": {"priority": p} if p is not None else {}}
                 for n, p in (("a", None), ("b", 10), ("c", 2000000000), ("d", 10), ("e", -1))}

        def get(self, key):
            return self.cache.get(key)
    s.pods = Pods()
    for n in "abcde":
        s.queue.add(f"default/{n}")
    assert [await s.queue.get() for _ in range(5)] == ["default/c", "default/b", "default/d", "default/a",
                                                       "default/e"]


def test_the_room_a_preemption_made_is_kept_for_the_nominated_pod():
    """Pods nominated to a node (status.nominatedNodeName) hold their requests there against
    pods of lower priority, not against their own or higher priority (addNominatedPods)."""
    s = scheduler(node("n1", cpu="1"))
    nominated = pod("urgent", cpu="600m")
    nominated["spec"]["priority"] = 1000
    nominated["status"] = {"nominatedNodeName": "n1"}
    s._on_pod("ADDED", nominated, None)
    low = pod("late", cpu="600m")
    low["spec"]["priority"] = 10
    assert cycle(s, low) == (None, "0/1 nodes are available: 1 Insufficient cpu.")
    high = pod("vip", cpu="600m")
    high["spec"]["priority"] = 5000
    assert cycle(s, high) == ("n1", "")
    s.cache.forget("default/vip")
    assert cycle(s, nominated) == ("n1", "")                  # its own room
    # bound (or gone): no longer held
    s.cache.forget("default/urgent")
    s._on_pod("DELETED", nominated, None)
    assert s.nominated == {} and cycle(s, pod("late2", cpu="600m")) == ("n1", "")


def test_the_room_kept_for_a_nominated_pod_includes_its_extended_resources():
    """A nominated pod's extended resources (example.com/dongle) are held for it too: a pod of
    lower priority that would take them does not fit there, in the filter and in preemption's
    fit check, as in kube-scheduler (addNominatedPods counts every resource)."""
    from skiff.controller.scheduler.preemption import select_victims_on_node

    def dongles(p, n):
        p["spec"]["containers"][0]["resources"]["requests"]["example.com/dongle"] = str(n)
        return p
    n1 = node("n1", cpu="4")
    n1["status"]["allocatable"]["example.com/dongle"] = "2"
    s = scheduler(n1)
    nominated = dongles(pod("urgent"), 2)
    nominated["spec"]["priority"] = 1000
    nominated["status"] = {"nominatedNodeName": "n1"}
    s._on_pod("ADDED", nominated, None)
    low = dongles(pod("late"), 1)
    low["spec"]["priority"] = 10
    assert cycle(s, low) == (None, "0/1 nodes are available: 1 Insufficient example.com/dongle.")
    plain = pod("plain")            # asks no dongle: the room kept for "urgent" is not in its way
    plain["spec"]["priority"] = 10
    assert cycle(s, plain) == ("n1", "")
    s.cache.forget("default/plain")
    # preemption: evicting a lower pod that holds no dongle does not make room while "urgent" keeps its two
    other = pod("other", cpu="100m")
    other["spec"]["nodeName"], other["spec"]["priority"] = "n1", 1
    s.cache.set_pod(other)
    pi = PodInfo(low)
    ni = s.cache.nodes["n1"]
    assert select_victims_on_node(pi, ni, [PodInfo(other)], lambda victims: set()) is not None
    assert select_victims_on_node(pi, ni, [PodInfo(other)], lambda victims: set(),
                                  s._nominated_extra(pi, "n1")) is None


def test_victims_are_the_fewest_lowest_priority_pods_and_budgets_are_spared():
    from skiff.controller.scheduler.preemption import pdb_violation_counter, pick_one, select_victims_on_node
    s = scheduler(node("n1", cpu="2"), node("n2", cpu="2"))

    def placed(name, n, cpu, prio, labels=None):
        p = pod(name, labels or {}, cpu=cpu)
        p["spec"]["nodeName"], p["spec"]["priority"] = n, prio
        s.cache.set_pod(p)
        return PodInfo(p)
    on1 = [placed("a", "n1", "1", 1), placed("b", "n1", "500m", 2), placed("c", "n1", "500m", 3)]
    on2 = [placed("d", "n2", "1500m", 1, {"app": "db"}), placed("e", "n2", "500m", 500)]
    want = pod("w", cpu="1")
    want["spec"]["priority"] = 100
    pi = PodInfo(want)
    nobudget = pdb_violation_counter([])
    c1 = select_victims_on_node(pi, s.cache.nodes["n1"], on1, nobudget)
    assert [v.name for v in c1.victims] == ["a"]              # b and c reprieved (higher first)
    c2 = select_victims_on_node(pi, s.cache.nodes["n2"], on2, nobudget)
    assert [v.name for v in c2.victims] == ["d"]
    assert pick_one([c2, c1]).node == "n1"                    # a tie (priority, sum, count): by name
    # a budget with no disruption allowed covers d: n1 wins on violations
    pdb = {"metadata": {"namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "db"}}},
           "status": {"disruptionsAllowed": 0}}
    c2 = select_victims_on_node(pi, s.cache.nodes["n2"], on2, pdb_violation_counter([pdb]))
    assert c2.violations == 1 and pick_one([c2, c1]).node == "n1"
    # nothing of lower priority that would make room: no candidate
    high = pod("x", cpu="3")
    high["spec"]["priority"] = 100
    assert select_victims_on_node(PodInfo(high), s.cache.nodes["n1"], on1, nobudget) is None
