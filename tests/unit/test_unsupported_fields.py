"""validation._unsupported walks the object once for all the rules: it must report what
walking each rule's path on its own reports, in the same order."""
import copy
import random

from skiff.api import validation as V


def _reference(obj, rules):
    def walk(o, parts, prefix):
        if not parts:
            yield prefix, o
            return
        head, rest = parts[0], parts[1:]
        name, star = (head[:-3], True) if head.endswith("[*]") else (head, False)
        if not isinstance(o, dict) or name not in o:
            return
        val = o[name]
        if star:
            if isinstance(val, list):
                for i, item in enumerate(val):
                    yield from walk(item, rest, prefix + [name, i])
        else:
            yield from walk(val, rest, prefix + [name])
    out = []
    for path, action, pred in rules:
        for parts, value in walk(obj, path.split("."), []):
            if pred(value):
                out.append((action, V.json_path(parts)))
    return out


def _container(rnd, i):
    c = {"name": f"c{i}", "image": "busybox"}
    if rnd.random() < .5:
        c["lifecycle"] = {"preStop": {"exec": {"command": ["x"]}}}
    if rnd.random() < .5:
        c["securityContext"] = {"privileged": rnd.random() < .5, "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}
    if rnd.random() < .5:
        c["env"] = [{"name": f"E{j}", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
                    if rnd.random() < .5 else {"name": f"E{j}", "value": "1"} for j in range(3)]
    if rnd.random() < .5:
        c["volumeMounts"] = [{"name": "v", "mountPath": f"/m{j}", "subPathExpr": "$(X)",
                              "mountPropagation": "HostToContainer"} for j in range(2)]
    if rnd.random() < .3:
        c["livenessProbe"] = {"grpc": {"port": 1}}
    return c


def test_one_walk_reports_what_a_walk_per_rule_reports():
    rnd = random.Random(7)
    for _ in range(300):
        spec = {"containers": [_container(rnd, i) for i in range(rnd.randint(1, 3))]}
        if rnd.random() < .5:
            spec["initContainers"] = [_container(rnd, 9)]
        for k, v in (("hostPID", True), ("priorityClassName", "high"),
                     ("securityContext", {"fsGroup": 1, "sysctls": []}),
                     ("volumes", [{"name": "v", "emptyDir": {"medium": "Memory"}}]), ("priority", None),
                     ("readinessGates", [{}]), ("hostUsers", False)):
            if rnd.random() < .4:
                spec[k] = copy.deepcopy(v)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
        causes, warnings = V._unsupported(pod, V.POD_RULES)
        got = [(V.REJECT, c["field"]) for c in causes] + [(V.WARN, w.field) for w in warnings]
        want = _reference(pod, V.UNSUPPORTED_POD_FIELDS)
        assert got == [x for x in want if x[0] == V.REJECT] + [x for x in want if x[0] == V.WARN]
