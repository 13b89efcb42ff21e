"""imagePullSecrets: a pod's image in a registry that wants a password (the real CNCF registry
with htpasswd on loopback) is pulled with the credentials of its kubernetes.io/dockerconfigjson
Secret, for that pull only; without the Secret the pull is refused."""
from __future__ import annotations

import base64
import json
import os

import pytest

from tests.conftest import Skiff, needs_root
from tests.e2e.cluster import wait_for
from tests.integration.onehost import ctr, host, pod  # noqa: F401 - host is a fixture
from tests.integration.registry_fixture import PASSWORD, USER, auth_registry  # noqa: F401

pytestmark = [needs_root, pytest.mark.timeout(180)]


def test_image_pull_secret(host, auth_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("SKIFF_CONFIG", str(tmp_path / "pusher-config"))   # the pusher's login only
    image = f"{auth_registry.host}/private/bb:1"
    rt = Skiff(host.root)
    rt.ok("tag", "busybox", image)
    rt.ok("login", "-u", USER, "--password-stdin", auth_registry.host, input=PASSWORD + "\n")
    rt.ok("push", image)
    rt.ok("rmi", image)                  # the agent must pull it

    def status_of(name):
        p = host.pod(name)
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        return p, cs.get("state", {})

    # without credentials: the registry says no
    host.apply(pod("nocreds", ctr("main", "exec sleep 3600", image=image)))
    _, st = wait_for(lambda: (lambda r: r if r[1].get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
                                          else None)(status_of("nocreds")), 40, what="a refused pull")
    assert "unauthorized" in st["waiting"]["message"]

    cfg = {"auths": {auth_registry.host: {"username": USER, "password": PASSWORD,
                                          "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}
    host.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64.b64encode(json.dumps(cfg).encode()).decode()}})
    p = pod("withcreds", ctr("main", "echo pulled; exec sleep 3600", image=image),
            imagePullSecrets=[{"name": "regcred"}, {"name": "not-there"}])
    host.apply(p)
    evs = lambda: [e for e in host.get("events")["items"] if e["involvedObject"]["name"] == "withcreds"]  # noqa: E731
    try:
        host.wait_phase("withcreds", "Running", 60)
    except AssertionError:
        raise AssertionError([(e["reason"], e["message"]) for e in evs()]) from None
    evs = evs()
    assert any(e["reason"] == "FailedToRetrieveImagePullSecret" and "(not-there)" in e["message"] for e in evs)
    assert any(e["reason"] == "Pulled" and "Successfully pulled" in e["message"] for e in evs)
    # the credentials were the pull's only: nothing left in the agent's root
    tmp = os.path.join(host.root, "tmp")
    assert not os.path.isdir(tmp) or not [n for n in os.listdir(tmp) if n.startswith("pull-auth-")]
    for name in ("nocreds", "withcreds"):
        host.ctl("delete", "pod", name, "--grace-period", "0")
