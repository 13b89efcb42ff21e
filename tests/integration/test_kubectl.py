"""The real kubectl 1.32 against a real skiff controller and a real agent: discovery, get (server-side
Tables, output formats, watches), describe, logs, label/annotate/patch/edit, cordon, delete, errors.

One cluster serves the whole module (the `kube` fixture); each test uses objects of its own names.
Assertions are on what kubectl prints, as a user would see it.
"""
from __future__ import annotations

import json
import re

import yaml

from tests.integration.kubectl import ctr, deployment, kube, pod, row, table  # noqa: F401 (kube is a fixture)

WEB = pod("web", ctr("main", "echo hello; echo two; trap 'exit 0' TERM; sleep 3600 & wait", env=[{"name": "A", "value": "1"}]),
          ctr("side", "echo side-car; trap 'exit 0' TERM; sleep 3600 & wait"),
          labels={"app": "web", "tier": "fe"})


def _web(kube) -> None:
    """The two-container pod `web`, created once and Running."""
    k = kube.kubectl
    if k("get", "pod", "web", "-o", "name").returncode != 0:
        k.ok("apply", "-f", kube.file("web.yaml", WEB))
    kube.wait_running("web")


# ------------------------------------------------------------------ discovery

def test_version_and_api_resources(kube):
    k = kube.kubectl
    assert re.search(r"^Server Version: v1\.32\.", k.ok("version"), re.M)
    out = k.ok("api-resources")
    head, _ = table(out)
    assert head == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    want = {"pods": ("po", "v1", "true", "Pod"), "nodes": ("no", "v1", "false", "Node"),
            "namespaces": ("ns", "v1", "false", "Namespace"), "events": ("ev", "v1", "true", "Event"),
            "deployments": ("deploy", "apps/v1", "true", "Deployment"),
            "replicasets": ("rs", "apps/v1", "true", "ReplicaSet"),
            "services": ("svc", "v1", "true", "Service"), "endpoints": ("ep", "v1", "true", "Endpoints"),
            "serviceaccounts": ("sa", "v1", "true", "ServiceAccount"),
            "replicationcontrollers": ("rc", "v1", "true", "ReplicationController"),
            "priorityclasses": ("pc", "scheduling.k8s.io/v1", "false", "PriorityClass")}
    for name, cells in want.items():
        assert tuple(row(out, name).values())[1:] == cells, out
    assert k.ok("api-resources", "--categories=all", "-o", "name").split() == [
        "pods", "replicationcontrollers", "services", "daemonsets.apps", "deployments.apps", "replicasets.apps", "statefulsets.apps",
        "horizontalpodautoscalers.autoscaling", "cronjobs.batch", "jobs.batch"]


def test_the_kubernetes_service(kube):
    """Every cluster has default/kubernetes (the API server's own Service), and every pod gets
    its KUBERNETES_SERVICE_HOST and _PORT, whatever its namespace."""
    k = kube.kubectl
    kube.wait(lambda: k("get", "svc", "kubernetes").returncode == 0, 15, "the kubernetes service")
    r = row(k.ok("get", "svc", "kubernetes"), "kubernetes")
    assert (r["TYPE"], r["CLUSTER-IP"], r["PORT(S)"]) == ("ClusterIP", "10.96.0.1", "443/TCP"), r
    try:
        k.ok("create", "namespace", "kenv")
        k.ok("apply", "-n", "kenv", "-f", kube.file("kenv.yaml", pod("kenv", ctr("main", "env; sleep 3600"),
                                                                     enableServiceLinks=False)))
        kube.wait(lambda: "KUBERNETES_SERVICE_HOST" in k("logs", "-n", "kenv", "kenv").stdout, 20, "the pod's env")
        env = dict(line.split("=", 1) for line in k.ok("logs", "-n", "kenv", "kenv").splitlines() if "=" in line)
        assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("10.96.0.1", "443")
    finally:
        k("delete", "namespace", "kenv", "--wait=false")


def test_short_names(kube):
    k = kube.kubectl
    for short in ("po", "deploy", "rs", "no", "ns", "ev", "sa"):
        p = k("get", short)
        assert p.returncode == 0 and "doesn't have a resource type" not in p.stderr, (short, p.stderr)
    assert kube.node in k.ok("get", "no")
    assert re.search(r"^default\s", k.ok("get", "ns"), re.M)
    # aggregated discovery: a cold cache costs /api and /apis only, no per-group-version documents
    p = k("get", "po", "-v=6")
    assert re.search(r"GET https://\S+/api\?timeout=32s 200", p.stderr), p.stderr
    assert not re.search(r"GET https://\S+/(api/v1|apis/apps/v1)\?timeout=32s", p.stderr), p.stderr


# ------------------------------------------------------------------ get

def test_get_pods_table(kube):
    _web(kube)
    k = kube.kubectl
    out = k.ok("get", "pods")
    assert table(out)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    r = row(out, "web")
    assert (r["READY"], r["STATUS"], r["RESTARTS"]) == ("2/2", "Running", "0"), out
    wide = k.ok("get", "pod", "web", "-o", "wide")
    assert table(wide)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                              "NOMINATED NODE", "READINESS GATES"]
    r = row(wide, "web")
    ip = k.ok("get", "pod", "web", "-o", "jsonpath={.status.podIP}")
    assert (r["IP"], r["NODE"], r["NOMINATED NODE"], r["READINESS GATES"]) == (ip, kube.node, "<none>", "<none>")


def test_get_nodes_and_namespaces_tables(kube):
    k = kube.kubectl
    out = k.ok("get", "nodes")
    assert table(out)[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    r = row(out, kube.node)
    assert r["STATUS"] == "Ready" and r["ROLES"] == "<none>" and r["VERSION"].startswith("v1.32"), out
    wide = k.ok("get", "nodes", "-o", "wide")
    assert table(wide)[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
                              "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    r = row(wide, kube.node)
    assert r["INTERNAL-IP"] == "127.0.0.1" and r["CONTAINER-RUNTIME"].startswith("skiff://"), wide
    ns = k.ok("get", "namespaces")
    assert table(ns)[0] == ["NAME", "STATUS", "AGE"]
    assert row(ns, "default")["STATUS"] == "Active"


def test_get_output_formats(kube):
    _web(kube)
    k = kube.kubectl
    y = yaml.safe_load(k.ok("get", "pod", "web", "-o", "yaml"))
    assert (y["kind"], y["apiVersion"], y["metadata"]["name"]) == ("Pod", "v1", "web")
    assert [c["name"] for c in y["spec"]["containers"]] == ["main", "side"]
    j = json.loads(k.ok("get", "pods", "-o", "json"))
    assert j["kind"] == "List" and "web" in [i["metadata"]["name"] for i in j["items"]]
    assert all(i["kind"] == "Pod" for i in j["items"])
    assert "pod/web" in k.ok("get", "pods", "-o", "name").split()
    assert k.ok("get", "pod", "web", "-o", "jsonpath={.metadata.labels.tier} {.spec.containers[*].name}") == "fe main side"
    assert k.ok("get", "pod", "web", "-o", "custom-columns=N:.metadata.name,NODE:.spec.nodeName",
                "--no-headers").split() == ["web", kube.node]


def test_get_all_namespaces_selector_show_labels(kube):
    _web(kube)
    k = kube.kubectl
    out = k.ok("get", "pods", "-A")
    assert table(out)[0][:2] == ["NAMESPACE", "NAME"]
    assert row(out, "web")["NAMESPACE"] == "default", out
    sel = k.ok("get", "pods", "-l", "tier=fe")
    assert [r[0] for r in table(sel)[1]] == ["web"]
    assert "No resources found in default namespace." in k("get", "pods", "-l", "tier=nothing").stderr
    shown = k.ok("get", "pod", "web", "--show-labels")
    assert table(shown)[0][-1] == "LABELS"
    assert row(shown, "web")["LABELS"] == "app=web,tier=fe"
    col = k.ok("get", "pod", "web", "-L", "tier")
    assert row(col, "web")["TIER"] == "fe"


def test_get_watch(kube):
    _web(kube)
    k = kube.kubectl
    with k.stream("get", "pods", "-w") as w:
        w.wait_for(r"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$")
        w.wait_for(r"^web\s+2/2\s+Running\s+0\s")
        k.ok("apply", "-f", kube.file("watched.yaml", pod("watched", ctr("c"))))
        w.wait_for(r"^watched\s+0/1\s+(Pending|ContainerCreating)\s+0\s")
        w.wait_for(r"^watched\s+1/1\s+Running\s+0\s")
        k.ok("delete", "pod", "watched", "--wait=false")
        w.wait_for(r"^watched\s+\S+\s+(Terminating|Completed|Succeeded)\s")
    # the initial list was printed once, not replayed by the watch
    assert sum(1 for line in w.lines if line.startswith("web ")) == 1, w.lines


def test_get_events_watch(kube):
    k = kube.kubectl
    with k.stream("get", "events", "-w", "--field-selector", "involvedObject.name=evw") as w:
        k.ok("apply", "-f", kube.file("evw.yaml", pod("evw", ctr("c"))))
        line = w.wait_for(r"Scheduled")
        assert re.search(rf"\bNormal\s+Scheduled\s+pod/evw\s+Successfully assigned default/evw to {kube.node}", line), line
        w.wait_for(r"Normal\s+Started\s+pod/evw\s+Started container c")
    assert re.match(r"LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE", w.lines[0]), w.lines
    out = k.ok("get", "events", "--field-selector", "involvedObject.name=evw")
    assert re.search(r"Normal\s+Scheduled\s+pod/evw", out), out
    k.ok("delete", "pod", "evw", "--wait=false")


# ------------------------------------------------------------------ describe

def test_describe_pod(kube):
    _web(kube)
    out = kube.kubectl.ok("describe", "pod", "web")
    assert re.search(r"^Name:\s+web$", out, re.M)
    assert re.search(rf"^Node:\s+{kube.node}/127\.0\.0\.1$", out, re.M)
    assert re.search(r"^Status:\s+Running$", out, re.M)
    assert re.search(r"^Labels:\s+app=web\n\s+tier=fe$", out, re.M)
    assert re.search(r"^  main:\n\s+Container ID:\s+skiff://", out, re.M)
    assert re.search(r"^\s+A:\s+1$", out, re.M)
    assert re.search(r"^Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message", out, re.M)
    assert re.search(rf"Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned default/web to {kube.node}", out)
    assert re.search(r"Normal\s+Started\s+.*kubelet\s+Started container side", out)


def test_describe_node(kube):
    _web(kube)
    out = kube.kubectl.ok("describe", "node", kube.node)
    assert re.search(rf"^Name:\s+{kube.node}$", out, re.M)
    assert re.search(r"^\s+Ready\s+True\s.*KubeletReady", out, re.M)
    assert re.search(r"^\s+InternalIP:\s+127\.0\.0\.1$", out, re.M)
    assert re.search(r"^Non-terminated Pods:\s+\(\d+ in total\)", out, re.M)
    assert re.search(r"^\s+default\s+web\s", out, re.M)
    assert re.search(r"^Events:", out, re.M)


def test_describe_node_has_events(kube):
    """`describe node` shows the node's own events (Kubernetes' kubelet records e.g. Starting,
    NodeReady, NodeNotSchedulable)."""
    out = kube.kubectl.ok("describe", "node", kube.node)
    events = out.split("\nEvents:", 1)[1].strip()
    assert events != "<none>", "no events recorded for the node"
    assert re.search(r"Normal\s+Starting\s+\S+\s+kubelet\s+Starting skiff agent\.", events), events
    assert re.search(rf"Normal\s+NodeReady\s+\S+\s+kubelet\s+Node {kube.node} status is now: NodeReady",
                     events), events


# ------------------------------------------------------------------ logs

def test_logs(kube):
    _web(kube)
    k = kube.kubectl
    p = k("logs", "web")
    assert p.returncode == 0 and p.stdout == "hello\ntwo\n", p
    assert 'Defaulted container "main" out of: main, side' in p.stderr
    assert k.ok("logs", "web", "-c", "side") == "side-car\n"
    assert k.ok("logs", "web", "-c", "main", "--tail", "1") == "two\n"
    # one request per container (kubectl keeps them in a map: any order)
    assert sorted(k.ok("logs", "pod/web", "--all-containers").splitlines()) == ["hello", "side-car", "two"]
    err = k.fails("logs", "nope")
    assert 'error from server (NotFound): pods "nope" not found in namespace "default"' in err, err


def test_logs_of_a_container_that_never_started(kube):
    """The kubelet's words for a container without logs (validateContainerLogStatus)."""
    k = kube.kubectl
    try:
        k.ok("apply", "-f", kube.file("never.yaml", pod(
            "never", ctr("main", imagePullPolicy="Never", image="skiff-test/absent:0"))))
        kube.wait(lambda: k.ok("get", "pod", "never", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
                  == "ErrImageNeverPull", 20, "ErrImageNeverPull")
        err = k.fails("logs", "never")
        assert 'container "main" in pod "never" is waiting to start: ErrImageNeverPull' in err, err
        err = k.fails("logs", "never", "--previous")
        assert 'previous terminated container "main" in pod "never" not found' in err, err
    finally:
        k("delete", "pod", "never", "--grace-period=0", "--wait=false")


def test_logs_follow(kube):
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("ticker.yaml", pod(
        "ticker", ctr("t", "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"))))
    kube.wait_running("ticker")
    with k.stream("logs", "-f", "ticker", "--tail", "1") as s:
        first = int(s.wait_for(r"^tick \d+$").split()[1])
        # lines keep arriving while the process runs, in order
        s.wait_for(rf"^tick {first + 3}$", timeout=10)
    assert s.lines[0] == f"tick {first}"
    k.ok("delete", "pod", "ticker", "--wait=false")


def test_logs_previous(kube):
    k = kube.kubectl
    # the first run writes a mark in an emptyDir (kept across restarts) and fails; the second runs on
    script = ("if [ -f /data/ran ]; then echo second run; trap 'exit 0' TERM; sleep 3600 & wait; "
              "else touch /data/ran; echo first run; exit 3; fi")
    k.ok("apply", "-f", kube.file("twice.yaml", pod(
        "twice", ctr("c", script, volumeMounts=[{"name": "d", "mountPath": "/data"}]),
        volumes=[{"name": "d", "emptyDir": {}}])))
    kube.wait(lambda: k.ok("get", "pod", "twice", "-o",
                           "jsonpath={.status.containerStatuses[0].restartCount}/{.status.phase}") == "1/Running",
              20, "pod twice restarted once")
    assert k.ok("logs", "twice", "--previous") == "first run\n"
    assert k.ok("logs", "twice", "-p", "-c", "c") == "first run\n"
    assert k.ok("logs", "twice") == "second run\n"
    out = k.ok("get", "pod", "twice")
    assert row(out, "twice")["RESTARTS"].startswith("1 ("), out  # "1 (3s ago)"
    k.ok("delete", "pod", "twice", "--wait=false")


# ------------------------------------------------------------------ exec

def test_exec_output_stderr_and_exit_code(kube):
    _web(kube)
    k = kube.kubectl
    p = k("exec", "web", "-c", "main", "--", "sh", "-c", "echo out $A; echo err >&2; exit 3")
    assert (p.returncode, p.stdout) == (3, "out 1\n"), p
    assert "err\n" in p.stderr and "command terminated with exit code 3" in p.stderr, p.stderr
    # the command runs in the container: its hostname, its filesystem, its process namespace
    assert k.ok("exec", "web", "-c", "side", "--", "hostname") == "web\n"
    assert k.ok("exec", "web", "-c", "main", "--", "cat", "/proc/1/cmdline").startswith("sh")
    err = k.fails("exec", "web", "-c", "main", "--", "no-such-binary")
    assert 'executable file not found in $PATH' in err, err
    err = k.fails("exec", "web", "-c", "nope", "--", "true")
    assert "container nope is not valid for pod web" in err, err


def test_exec_stdin_reaches_eof(kube):
    _web(kube)
    # kubectl sends stdin, then v5's close signal: wc sees EOF and the command ends
    p = kube.kubectl("exec", "-i", "web", "-c", "main", "--", "sh", "-c", "wc -l; cat", input="a\nb\nc\n",
                     timeout=20)
    assert (p.returncode, p.stdout.split()) == (0, ["3"]), p


def test_exec_ends_the_command_when_the_client_goes(kube):
    _web(kube)
    k = kube.kubectl
    with k.stream("exec", "web", "-c", "main", "--", "sh", "-c", "echo started; exec sleep 4242") as s:
        s.wait_for("^started$")
        assert "sleep 4242" in k.ok("exec", "web", "-c", "main", "--", "ps", "-o", "args")
    kube.wait(lambda: "sleep 4242" not in k.ok("exec", "web", "-c", "main", "--", "ps", "-o", "args"),
              10, "the exec'd command to be killed")


def test_exec_with_a_terminal_over_the_websocket(kube):
    """What `exec -it` does, driven here without a terminal: tty=true, a resize, stdin."""
    _web(kube)
    import asyncio
    import aiohttp
    from skiff.api import remotecommand as rc
    from skiff.cli.ctl.client import load_config, ssl_context
    cfg = load_config(kube.kubeconfig)

    async def session():
        url = f"{cfg.server}/api/v1/namespaces/default/pods/web/exec"
        params = [("command", "sh"), ("container", "main"), ("stdin", "true"), ("stdout", "true"),
                  ("tty", "true")]
        out, status = b"", None
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url, params=params, protocols=(rc.V5, rc.V4), ssl=ssl_context(cfg),
                                    headers={"Authorization": f"Bearer {cfg.token}"}) as ws:
                assert ws.protocol == rc.V5
                await ws.send_bytes(bytes([rc.RESIZE]) + json.dumps({"Width": 91, "Height": 33}).encode())
                await ws.send_bytes(bytes([rc.STDIN]) + b"tty; stty size; exit 5\n")
                async for msg in ws:
                    ch, data = msg.data[0], msg.data[1:]
                    if ch == rc.STDOUT:
                        out += data
                    elif ch == rc.ERROR:
                        status = json.loads(data)
        return out.decode(errors="replace"), status
    out, status = asyncio.run(asyncio.wait_for(session(), 20))
    # the terminal is the container's own (its devpts names it), with the size the client sent
    assert re.search(r"^/dev/pts/\d+\r?$", out, re.M), out
    assert re.search(r"^33 91\r?$", out, re.M), out
    assert rc.exit_code_of(rc.V5, json.dumps(status).encode())[0] == 5, status


def test_run_interactive_and_attach(kube):
    """kubectl run -i --rm (attach through the container's monitor; stdinOnce closes stdin when
    the session ends; the exit code comes back) and kubectl attach -i to a pod that keeps its
    stdin open across sessions."""
    k = kube.kubectl
    p = k("run", "-i", "--rm", "--restart=Never", "runi", "--image=busybox", "--", "sh",
          input="echo hello-$((6*7)); exit 3\n", timeout=60)
    assert p.returncode == 3 and "hello-42" in p.stdout, p
    kube.wait(lambda: k("get", "pod", "runi").returncode != 0, 30, "pod runi deleted (--rm)")
    k.ok("apply", "-f", kube.file("att.yaml", pod("att", ctr("main", "while read l; do echo in:$l; done; echo stdin-closed",
                                                         stdin=True))))
    kube.wait_running("att")
    import subprocess
    from tests.integration.kubectl import KUBECTL
    for word in ("one", "two"):         # two sessions: the container keeps its stdin
        s = subprocess.Popen([KUBECTL, "attach", "-i", "att"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=k.env())
        try:
            s.stdin.write(f"{word}\n")
            s.stdin.close()             # our EOF: the session goes on, the container's stdin too
            assert s.stdout.readline() == f"in:{word}\n"
        finally:
            s.kill()
            s.wait(timeout=10)
            s.stdout.close()
            s.stderr.close()
    kube.wait(lambda: "in:two" in k.ok("logs", "att"), 10, "both lines in one container's log")
    assert k.ok("logs", "att").splitlines() == ["in:one", "in:two"]
    _web(kube)
    err = k.fails("attach", "web", "-c", "main")     # skiff attaches to stdin/tty containers only
    assert "started without stdin or a terminal" in err, err
    k.ok("delete", "pod", "att", "--wait=false")


def test_port_forward(kube):
    """kubectl port-forward: SPDY streams in a WebSocket, relayed through the agent into the pod's
    network namespace (the server listens on the pod's 127.0.0.1 only); two connections at once
    carry 2 MiB each intact; a port nobody listens on reports the kubelet's error."""
    import hashlib
    import urllib.request
    _web(kube)
    k = kube.kubectl
    k.ok("exec", "web", "-c", "side", "--", "sh", "-c",
         "mkdir -p /www && head -c 2097152 /dev/urandom > /www/blob && echo hi > /www/hi && "
         "(httpd -p 127.0.0.1:8181 -h /www &)")
    want = k.ok("exec", "web", "-c", "side", "--", "sha256sum", "/www/blob").split()[0]
    with k.stream("port-forward", "pod/web", ":8181") as s:
        local = int(re.search(r"127\.0\.0\.1:(\d+) -> 8181", s.wait_for("Forwarding from 127.0.0.1")).group(1))
        assert urllib.request.urlopen(f"http://127.0.0.1:{local}/hi", timeout=10).read() == b"hi\n"
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda _: hashlib.sha256(urllib.request.urlopen(
                f"http://127.0.0.1:{local}/blob", timeout=20).read()).hexdigest(), range(2)))
        assert got == [want, want]
    with k.stream("port-forward", "pod/web", ":8182") as s:
        local = int(re.search(r"127\.0\.0\.1:(\d+) ->", s.wait_for("Forwarding from 127.0.0.1")).group(1))
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
        except OSError:
            pass
        s.proc.wait(timeout=15)     # kubectl gives up on an error from the pod's side
        err = s.stderr()
        assert "connect: connection refused" in err and "8182" in err, err


def test_skiffctl_port_forward(kube):
    """skiffctl's own SPDY client against the same endpoint: data both ways, then the error a
    closed port gives."""
    import subprocess
    import sys
    import urllib.request
    _web(kube)
    kube.kubectl.ok("exec", "web", "-c", "side", "--", "sh", "-c",
                    "mkdir -p /www2 && echo fwd > /www2/f && (httpd -p 127.0.0.1:8281 -h /www2 &)")
    argv = [sys.executable, "-m", "skiff.cli.ctl.main", "--kubeconfig", kube.host.kubeconfig, "port-forward"]
    p = subprocess.Popen(argv + ["pod/web", ":8281", "0:8282"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        first, second = p.stdout.readline(), p.stdout.readline()
        ok = int(re.search(r"127\.0\.0\.1:(\d+) -> 8281", first).group(1))
        bad = int(re.search(r"127\.0\.0\.1:(\d+) -> 8282", second).group(1))
        for _ in range(2):
            assert urllib.request.urlopen(f"http://127.0.0.1:{ok}/f", timeout=10).read() == b"fwd\n"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{bad}/", timeout=10).read()
        except OSError:
            pass
    finally:
        p.kill()
        out, err = p.communicate(timeout=10)
    assert f"Handling connection for {ok}" in out
    assert "an error occurred forwarding" in err and "8282" in err and "connection refused" in err, err


def test_skiffctl_exec(kube):
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("exec-deploy.yaml", deployment("execd", 1, ctr("c"))))
    kube.wait(lambda: k.ok("get", "deploy", "execd", "-o", "jsonpath={.status.availableReplicas}") == "1",
              30, "deployment execd available")
    pod_name = k.ok("get", "pods", "-l", "app=execd", "-o", "jsonpath={.items[0].metadata.name}")
    ctl = kube.host.ctl
    assert ctl("exec", "deploy/execd", "--", "hostname").stdout == pod_name + "\n"
    p = ctl("exec", "-i", pod_name, "--", "sh", "-c", "wc -c; exit 4", input="12345", check=False)
    assert (p.returncode, p.stdout.strip()) == (4, "5"), p
    assert "command terminated with exit code 4" in p.stderr
    p = ctl("exec", pod_name, "-c", "nope", "--", "true", check=False)
    assert p.returncode == 1 and f"container nope is not valid for pod {pod_name}" in p.stderr, p.stderr
    p = ctl("exec", "deploy/execd", check=False)
    assert p.returncode == 1 and "you must specify at least one command" in p.stderr, p.stderr
    assert ctl("logs", "deploy/execd").returncode == 0
    k.ok("delete", "deploy", "execd", "--wait=false")


# ------------------------------------------------------------------ label, annotate, patch, edit

def test_label_and_annotate(kube):
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("lab.yaml", pod("lab", ctr("c"), labels={"app": "lab"})))
    assert k.ok("label", "pod", "lab", "color=blue") == "pod/lab labeled\n"
    err = k.fails("label", "pod", "lab", "color=red")
    assert "'color' already has a value (blue), and --overwrite is false" in err
    assert k.ok("label", "pod", "lab", "color=red", "--overwrite") == "pod/lab labeled\n"
    assert row(k.ok("get", "pod", "lab", "-L", "color"), "lab")["COLOR"] == "red"
    assert k.ok("label", "pod", "lab", "color-") == "pod/lab unlabeled\n"
    assert k.json("get", "pod", "lab")["metadata"]["labels"] == {"app": "lab"}
    assert k.ok("annotate", "pod", "lab", "note=hello world") == "pod/lab annotated\n"
    assert k.json("get", "pod", "lab")["metadata"]["annotations"]["note"] == "hello world"
    assert k.ok("annotate", "pod", "lab", "note-") == "pod/lab annotated\n"
    assert "note" not in (k.json("get", "pod", "lab")["metadata"].get("annotations") or {})
    assert k.ok("label", "pods", "-l", "app=lab", "sel=yes") == "pod/lab labeled\n"
    k.ok("delete", "pod", "lab", "--wait=false")


def test_patch_merge_json_strategic(kube):
    k = kube.kubectl
    k.ok("apply", "-f", kube.file("pat.yaml", pod("pat", ctr("a"), ctr("b"), labels={"app": "pat"})))
    assert k.ok("patch", "pod", "pat", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}') == "pod/pat patched\n"
    assert k.ok("patch", "pod", "pat", "--type=json",
                "-p", '[{"op":"add","path":"/metadata/labels/j","value":"2"},'
                      '{"op":"remove","path":"/metadata/labels/m"}]') == "pod/pat patched\n"
    assert k.json("get", "pod", "pat")["metadata"]["labels"] == {"app": "pat", "j": "2"}
    # strategic (the default): containers are merged by name, so `a` keeps its command and `b` is untouched
    assert k.ok("patch", "pod", "pat", "-p",
                '{"spec":{"containers":[{"name":"a","image":"busybox:latest"}]}}') == "pod/pat patched\n"
    live = k.json("get", "pod", "pat")
    cs = {c["name"]: c for c in live["spec"]["containers"]}
    assert list(cs) == ["a", "b"] and cs["a"]["image"] == "busybox:latest" and cs["b"]["image"] == "busybox"
    assert cs["a"]["command"] == ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    assert k.ok("patch", "pod", "pat", "-p", '{"metadata":{"labels":{"j":"2"}}}') == "pod/pat patched (no change)\n"
    err = k.fails("patch", "pod", "nope", "-p", '{"metadata":{"labels":{"j":"2"}}}')
    assert 'Error from server (NotFound): pods "nope" not found' in err
    k.ok("delete", "pod", "pat", "--wait=false")


def test_edit_with_editor_true(kube):
    _web(kube)
    k = kube.kubectl
    rv = k.ok("get", "pod", "web", "-o", "jsonpath={.metadata.resourceVersion}")
    p = k("edit", "pod", "web", env={"EDITOR": "true", "KUBE_EDITOR": "true"})
    assert p.returncode == 0 and "Edit cancelled, no changes made." in p.stdout + p.stderr, p
    assert k.ok("get", "pod", "web", "-o", "jsonpath={.metadata.resourceVersion}") == rv
    # an editor that changes something: the edit is sent (a strategic merge patch) and saved
    p = k("edit", "pod", "web", env={"EDITOR": "sed -i s/tier:\\ fe/tier:\\ edited/"})
    assert p.returncode == 0 and p.stdout == "pod/web edited\n", p
    assert k.ok("get", "pod", "web", "-o", "jsonpath={.metadata.labels.tier}") == "edited"
    k.ok("label", "pod", "web", "tier=fe", "--overwrite")


# ------------------------------------------------------------------ cordon

def test_cordon_uncordon(kube):
    k, node = kube.kubectl, kube.node
    assert k.ok("cordon", node) == f"node/{node} cordoned\n"
    try:
        assert row(k.ok("get", "nodes"), node)["STATUS"] == "Ready,SchedulingDisabled"
        assert k.ok("cordon", node) == f"node/{node} already cordoned\n"
        k.ok("apply", "-f", kube.file("cord.yaml", pod("cord", ctr("c"))))
        kube.wait(lambda: "1 node(s) were unschedulable" in k.ok("describe", "pod", "cord"), 10,
                  "FailedScheduling event")
        out = k.ok("describe", "pod", "cord")
        assert re.search(r"Warning\s+FailedScheduling\s+.*default-scheduler\s+0/1 nodes are available: "
                         r"1 node\(s\) were unschedulable\.", out), out
        r = row(k.ok("get", "pod", "cord", "-o", "wide"), "cord")
        assert (r["STATUS"], r["NODE"]) == ("Pending", "<none>")
    finally:
        assert k.ok("uncordon", node) == f"node/{node} uncordoned\n"
    assert row(k.ok("get", "nodes"), node)["STATUS"] == "Ready"
    assert k.ok("uncordon", node) == f"node/{node} already uncordoned\n"
    assert k.ok("wait", "--for=condition=Ready", "pod/cord", "--timeout=20s") == "pod/cord condition met\n"
    # the agent saw both changes and said so on the node, as the kubelet does
    kube.wait(lambda: "NodeSchedulable" in k.ok("describe", "node", node), 10, "NodeSchedulable event")
    events = k.ok("describe", "node", node).split("\nEvents:", 1)[1]
    assert re.search(rf"Normal\s+NodeNotSchedulable\s+.*kubelet\s+Node {node} status is now: NodeNotSchedulable",
                     events), events
    assert row(k.ok("get", "pod", "cord", "-o", "wide"), "cord")["NODE"] == node
    k.ok("delete", "pod", "cord", "--wait=false")


# ------------------------------------------------------------------ delete

def test_delete_waits_for_the_object_to_go(kube):
    k = kube.kubectl
    path = kube.file("del.yaml", pod("del1", ctr("c")), pod("del2", ctr("c")))
    assert k.ok("apply", "-f", path) == "pod/del1 created\npod/del2 created\n"
    kube.wait_running("del1")
    # KIND NAME: kubectl waits (a watch filtered on metadata.name) until the pod is really gone
    assert k.ok("delete", "pod", "del1") == 'pod "del1" deleted\n'
    assert 'pods "del1" not found' in k.fails("get", "pod", "del1")
    assert k.ok("delete", "-f", path, "--ignore-not-found") == 'pod "del2" deleted\n'
    assert 'pods "del2" not found' in k.fails("get", "pod", "del2")
    err = k.fails("delete", "-f", path)
    assert f'Error from server (NotFound): error when deleting "{path}": pods "del1" not found' in err, err
    err = k.fails("delete", "pod", "nope")
    assert err.strip() == 'Error from server (NotFound): pods "nope" not found'


# ------------------------------------------------------------------ errors

def test_error_messages(kube):
    k = kube.kubectl
    assert k.fails("get", "pod", "nope").strip() == 'Error from server (NotFound): pods "nope" not found'
    assert k.fails("get", "deploy", "nope").strip() == \
        'Error from server (NotFound): deployments.apps "nope" not found'
    # 422, printed from the Status causes
    bad = pod("bad", {"name": "c"})
    err = k.fails("create", "-f", kube.file("bad.yaml", bad))
    assert err.strip() == 'The Pod "bad" is invalid: spec.containers[0].image: Required value', err
    bad2 = pod("bad2", {"name": "c"}, {"name": "c", "image": "busybox"})
    err = k.fails("apply", "-f", kube.file("bad2.yaml", bad2))
    assert err.startswith('The Pod "bad2" is invalid: \n* spec.containers[0].image: Required value\n'), err
    assert 'spec.containers[1].name: Duplicate value: "c"' in err
    err = k.fails("get", "pods", "--field-selector", "spec.nope=1")
    assert err.startswith("Error from server (BadRequest):"), err
