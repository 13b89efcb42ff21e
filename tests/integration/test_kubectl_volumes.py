"""PersistentVolumeClaims with the real kubectl 1.32 on skiff (controller + a real agent running
busybox containers): the default local-path StorageClass; a pod writes into its claim (provisioned
on the pod's node, bind-mounted into the container), is deleted, and a new pod reads the file
back; a read-only claim mount; deleting the claim deletes its volume and the agent removes the
directory; a static hostPath volume with Retain keeps its data; get/describe pv, pvc, sc;
kube-apiserver's validation messages."""
from __future__ import annotations

import os
import re

from tests.integration.kubectl import ctr, kube, pod, table  # noqa: F401 (kube is a fixture)


def row(out: str, name: str) -> dict:
    """The row of ``name`` as {COLUMN: cell}, cut at the header's column positions (cells may be
    empty, which splitting on runs of spaces would lose)."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    head = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", head)]
    names = [head[a:b].strip() for a, b in zip(starts, starts[1:] + [len(head) + 1000])]
    for ln in lines[1:]:
        cells = [ln[a:b].strip() for a, b in zip(starts, starts[1:] + [len(ln) + 1000])]
        if cells[0] == name:
            return dict(zip(names, cells))
    raise AssertionError(f"no row {name!r} in:\n{out}")


def claim(name: str, size: str = "64Mi", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}}


def with_claim(name: str, script: str, claim_name: str, read_only: bool = False, sub_path: str = "",
               restart: str = "Never") -> dict:
    mount = {"name": "data", "mountPath": "/data"}
    if sub_path:
        mount["subPath"] = sub_path
    src = {"claimName": claim_name}
    if read_only:
        src["readOnly"] = True
    return pod(name, ctr("main", script, volumeMounts=[mount]), restartPolicy=restart,
               volumes=[{"name": "data", "persistentVolumeClaim": src}])


def storage_dir(kube) -> str:
    return os.path.join(os.path.abspath(kube.host.root), "storage")


def test_a_claim_keeps_its_data_across_pods_and_goes_with_its_volume(kube):
    k = kube.kubectl
    try:
        out = k.ok("get", "sc")
        assert table(out)[0] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION",
                                 "AGE"]
        r = row(out, "local-path (default)")
        assert (r["PROVISIONER"], r["RECLAIMPOLICY"], r["VOLUMEBINDINGMODE"], r["ALLOWVOLUMEEXPANSION"]) == (
            "skiff.dev/local-path", "Delete", "WaitForFirstConsumer", "false")

        assert k.ok("apply", "-f", kube.file("pvc.yaml", claim("data"))) == \
            "persistentvolumeclaim/data created\n"
        out = k.ok("get", "pvc")
        assert table(out)[0] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                                 "VOLUMEATTRIBUTESCLASS", "AGE"]
        r = row(out, "data")
        assert (r["STATUS"], r["STORAGECLASS"], r["VOLUMEATTRIBUTESCLASS"]) == ("Pending", "local-path", "<unset>")
        kube.wait(lambda: "waiting for first consumer to be created before binding" in
                  k.ok("describe", "pvc", "data"), 10, "the WaitForFirstConsumer event")

        k.ok("apply", "-f", kube.file("writer.yaml", with_claim(
            "writer", "echo hello-from-writer > /data/f && mkdir -p /data/sub && echo in-sub > /data/sub/g", "data")))
        kube.wait(lambda: kube.pod_phase("writer") == "Succeeded", 60, "the writer to finish")
        pvc = k.json("get", "pvc", "data")
        uid = pvc["metadata"]["uid"]
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == f"pvc-{uid}"
        assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == kube.node
        r = row(k.ok("get", "pvc"), "data")
        assert (r["STATUS"], r["VOLUME"], r["CAPACITY"], r["ACCESS MODES"]) == ("Bound", f"pvc-{uid}", "64Mi", "RWO")
        out = k.ok("get", "pv")
        assert table(out)[0] == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM",
                                 "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
        r = row(out, f"pvc-{uid}")
        assert (r["CAPACITY"], r["ACCESS MODES"], r["RECLAIM POLICY"], r["STATUS"], r["CLAIM"], r["STORAGECLASS"]) \
            == ("64Mi", "RWO", "Delete", "Bound", "default/data", "local-path")
        # the data is in the agent's storage directory, under k3s's name
        d = os.path.join(storage_dir(kube), f"pvc-{uid}_default_data")
        with open(os.path.join(d, "f")) as f:
            assert f.read() == "hello-from-writer\n"
        assert k.json("get", "pv", f"pvc-{uid}")["spec"]["hostPath"]["path"] == d

        # a new pod with the same claim reads it back (and a subPath of it)
        k.ok("delete", "pod", "writer", timeout=60)
        k.ok("apply", "-f", kube.file("reader.yaml", with_claim("reader", "cat /data/f", "data")))
        kube.wait(lambda: kube.pod_phase("reader") == "Succeeded", 60, "the reader to finish")
        assert k.ok("logs", "reader") == "hello-from-writer\n"
        k.ok("apply", "-f", kube.file("sub.yaml", with_claim("sub", "cat /data/g", "data", sub_path="sub")))
        kube.wait(lambda: kube.pod_phase("sub") == "Succeeded", 60, "the subPath reader to finish")
        assert k.ok("logs", "sub") == "in-sub\n"
        # readOnly on the claim: the mount is read-only
        k.ok("apply", "-f", kube.file("ro.yaml", with_claim(
            "ro", "cat /data/f; (echo x > /data/new) 2>/dev/null && echo wrote || echo refused", "data", read_only=True)))
        kube.wait(lambda: kube.pod_phase("ro") == "Succeeded", 60, "the read-only pod to finish")
        assert k.ok("logs", "ro") == "hello-from-writer\nrefused\n"
        assert not os.path.exists(os.path.join(d, "new"))

        out = k.ok("describe", "pvc", "data")
        assert re.search(r"^Status:\s+Bound$", out, re.M) and re.search(rf"^Volume:\s+pvc-{uid}$", out, re.M), out
        assert re.search(r"^StorageClass:\s+local-path$", out, re.M), out
        assert re.search(r"^Used By:\s+(reader|ro|sub)", out, re.M), out
        assert re.search(r"Normal\s+ProvisioningSucceeded\s+.*Successfully provisioned volume pvc-", out), out
        out = k.ok("describe", "pv", f"pvc-{uid}")
        assert re.search(r"^Source:\s*$", out, re.M) and re.search(rf"^\s+Path:\s+{re.escape(d)}$", out, re.M), out
        assert re.search(rf"^Claim:\s+default/data$", out, re.M), out
        assert re.search(r"^Reclaim Policy:\s+Delete$", out, re.M), out
        assert re.search(rf"Term 0:\s+kubernetes.io/hostname in \[{kube.node}\]", out), out
        out = k.ok("describe", "sc", "local-path")
        assert re.search(r"^IsDefaultClass:\s+Yes$", out, re.M) and \
            re.search(r"^VolumeBindingMode:\s+WaitForFirstConsumer$", out, re.M), out
        # skiffctl prints the same
        ctl = kube.host.ctl
        out = ctl("describe", "pvc", "data").stdout
        assert re.search(rf"^Volume:\s+pvc-{uid}$", out, re.M) and re.search(r"^Used By:\s+\S+", out, re.M), out
        assert re.search(r"ProvisioningSucceeded", out), out
        out = ctl("describe", "pv", f"pvc-{uid}").stdout
        assert re.search(rf"^\s+Path:\s+{re.escape(d)}$", out, re.M), out
        assert re.search(rf"Term 0:\s+kubernetes.io/hostname in \[{kube.node}\]", out), out
        assert re.search(r"^IsDefaultClass:\s+Yes$", ctl("describe", "sc", "local-path").stdout, re.M)
        out = ctl("describe", "pod", "ro").stdout
        assert re.search(r"Type:\s+PersistentVolumeClaim \(a reference to a PersistentVolumeClaim in the same "
                         r"namespace\)\n\s+ClaimName:\s+data\n\s+ReadOnly:\s+true", out), out
        assert row(ctl("get", "pv").stdout, f"pvc-{uid}")["CLAIM"] == "default/data"
        assert row(ctl("get", "pvc").stdout, "data")["STATUS"] == "Bound"

        # deleting the claim (once no pod uses it) deletes the volume; the agent removes the directory
        for p in ("reader", "sub", "ro"):
            k.ok("delete", "pod", p, timeout=60)
        assert k.ok("delete", "pvc", "data", timeout=60) == 'persistentvolumeclaim "data" deleted\n'
        kube.wait(lambda: kube.gone("pv", f"pvc-{uid}"), 30, "the volume to be deleted")
        assert not os.path.exists(d)
        assert os.path.isdir(storage_dir(kube))
    finally:
        for p in ("writer", "reader", "sub", "ro"):
            k("delete", "pod", p, "--ignore-not-found", timeout=60)
        k("delete", "pvc", "data", "--ignore-not-found", timeout=60)


def test_a_static_volume_with_retain_keeps_its_data(kube):
    k = kube.kubectl
    path = os.path.join(kube.host.workdir, "static-pv")
    try:
        pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "static"},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                       "hostPath": {"path": path, "type": "DirectoryOrCreate"}}}
        k.ok("apply", "-f", kube.file("static.yaml", pv, claim("st", storageClassName="manual")))
        kube.wait(lambda: k.json("get", "pvc", "st")["status"].get("phase") == "Bound", 20, "the claim bound")
        r = row(k.ok("get", "pv"), "static")
        assert (r["RECLAIM POLICY"], r["STATUS"], r["CLAIM"], r["STORAGECLASS"]) == ("Retain", "Bound", "default/st",
                                                                                     "manual")
        k.ok("apply", "-f", kube.file("st-writer.yaml", with_claim("st-writer", "echo kept > /data/k", "st")))
        kube.wait(lambda: kube.pod_phase("st-writer") == "Succeeded", 60, "the writer to finish")
        k.ok("delete", "pod", "st-writer", timeout=60)
        k.ok("delete", "pvc", "st", timeout=60)
        kube.wait(lambda: row(k.ok("get", "pv"), "static")["STATUS"] == "Released", 20, "the volume Released")
        with open(os.path.join(path, "k")) as f:
            assert f.read() == "kept\n"
    finally:
        k("delete", "pod", "st-writer", "--ignore-not-found", timeout=60)
        k("delete", "pvc", "st", "--ignore-not-found", timeout=60)
        k("delete", "pv", "static", "--ignore-not-found", timeout=60)


def test_validation_messages(kube):
    k = kube.kubectl
    bad = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bad"},
           "spec": {"accessModes": ["ReadWriteSometimes"]}}
    err = k.fails("apply", "-f", kube.file("bad.yaml", bad))
    assert 'The PersistentVolumeClaim "bad" is invalid' in err, err
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", ' \
           '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"' in err, err
    assert "spec.resources[storage]: Required value" in err, err
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "nfs"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                   "nfs": {"server": "x", "path": "/"}}}
    err = k.fails("apply", "-f", kube.file("nfs.yaml", pv))
    assert "spec.nfs: spec.nfs is not supported by skiff" in err, err
    try:
        k.ok("apply", "-f", kube.file("imm.yaml", claim("imm", storageClassName="manual")))
        err = k.fails("patch", "pvc", "imm", "-p", '{"spec":{"accessModes":["ReadWriteMany"]}}')
        assert "spec: Forbidden: spec is immutable after creation except resources.requests and " \
               "volumeAttributesClassName for bound claims" in err, err
    finally:
        k("delete", "pvc", "imm", "--ignore-not-found", timeout=60)


def test_discovery_and_short_names(kube):
    k = kube.kubectl
    out = k.ok("api-resources")
    want = {"persistentvolumes": ("pv", "v1", "false", "PersistentVolume"),
            "persistentvolumeclaims": ("pvc", "v1", "true", "PersistentVolumeClaim"),
            "storageclasses": ("sc", "storage.k8s.io/v1", "false", "StorageClass")}
    for name, cells in want.items():
        assert tuple(row(out, name).values())[1:] == cells, out
    for short in ("pv", "pvc", "sc"):
        p = k("get", short)
        assert p.returncode == 0 and "doesn't have a resource type" not in p.stderr, (short, p.stderr)
