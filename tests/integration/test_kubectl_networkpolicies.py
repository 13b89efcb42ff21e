"""networking.k8s.io/v1 NetworkPolicies with the real kubectl 1.32: discovery (api-resources,
the netpol short name), defaulting, get's columns, describe's layout and kube-apiserver's
validation errors. Enforcement is tests/integration/test_network_policy.py."""
from __future__ import annotations

import re

from tests.integration.kubectl import kube  # noqa: F401 (kube is a fixture)

DB = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np-db"},
      "spec": {"podSelector": {"matchLabels": {"app": "db"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "api"}},
                                      "namespaceSelector": {"matchLabels": {"team": "a"}}},
                                     {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                            "ports": [{"port": 5432}, {"protocol": "UDP", "port": 3000, "endPort": 3100}]},
                           {}],
               "egress": [{"to": [{"namespaceSelector": {}}]}]}}
DENY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np-deny"},
        "spec": {"podSelector": {}}}


def test_networkpolicies_with_kubectl(kube):
    k = kube.kubectl
    try:
        out = k.ok("api-resources", "--api-group=networking.k8s.io")
        assert re.search(r"^networkpolicies\s+netpol\s+networking.k8s.io/v1\s+true\s+NetworkPolicy$", out, re.M), out
        k.ok("apply", "-f", kube.file("np.yaml", DB, DENY))
        obj = k.json("get", "netpol", "np-db")
        assert obj["spec"]["policyTypes"] == ["Ingress", "Egress"]           # egress rules given
        assert obj["spec"]["ingress"][0]["ports"][0]["protocol"] == "TCP"     # the default protocol
        assert k.json("get", "networkpolicy", "np-deny")["spec"]["policyTypes"] == ["Ingress"]
        lines = k.ok("get", "netpol").splitlines()
        assert re.split(r"\s{2,}", lines[0].strip()) == ["NAME", "POD-SELECTOR", "AGE"]
        rows = {r.split()[0]: r.split()[1] for r in lines[1:]}
        assert rows == {"np-db": "app=db", "np-deny": "<none>"}
        text = k.ok("describe", "networkpolicy", "np-db")
        body = text[text.index("Spec:"):]
        assert body == (
            "Spec:\n"
            "  PodSelector:     app=db\n"
            "  Allowing ingress traffic:\n"
            "    To Port: 5432/TCP\n"
            "    To Port Range: 3000-3100/UDP\n"
            "    From:\n"
            "      NamespaceSelector: team=a\n"
            "      PodSelector: role=api\n"
            "    From:\n"
            "      IPBlock:\n"
            "        CIDR: 10.0.0.0/8\n"
            "        Except: 10.1.0.0/16\n"
            "    ----------\n"
            "    To Port: <any> (traffic allowed to all ports)\n"
            "    From: <any> (traffic not restricted by source)\n"
            "  Allowing egress traffic:\n"
            "    To Port: <any> (traffic allowed to all ports)\n"
            "    To:\n"
            "      NamespaceSelector: <none>\n"
            "  Policy Types: Ingress, Egress\n"), text
        # skiffctl's describe says the same
        ours = kube.host.ctl("describe", "networkpolicy", "np-db").stdout
        assert ours[ours.index("Spec:"):] == body
        assert "Created on:" in ours and "Created on:" in text

        bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np-bad"},
               "spec": {"podSelector": {}, "ingress": [{"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8"},
                                                                       "podSelector": {}}],
                                                        "ports": [{"port": 90, "endPort": 80}]}]}}
        err = k.fails("apply", "-f", kube.file("bad.yaml", bad))
        assert 'The NetworkPolicy "np-bad" is invalid:' in err, err
        for msg in ("spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`",
                    "spec.ingress[0].from[0]: Required value: must specify a peer",
                    "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer"):
            assert msg in err, err
    finally:
        k("delete", "netpol", "np-db", "np-deny", "--ignore-not-found")
