"""A pod's /etc/hosts and /etc/resolv.conf (hostAliases, dnsPolicy, dnsConfig) with a real
controller and agent: the files the containers see. The addresses are only written, never used."""
from __future__ import annotations

import pytest

from tests.conftest import needs_root
from tests.e2e.cluster import wait_for
from tests.integration.onehost import ctr, host, pod  # noqa: F401 - host is a fixture

pytestmark = [needs_root, pytest.mark.timeout(120)]


def test_host_aliases_and_dns_config(host):
    script = "cat /etc/hosts; echo ===; cat /etc/resolv.conf; echo DONE; exec sleep 3600"
    host.apply(pod("dnspod", ctr("main", script), ctr("second", "cat /etc/hosts; exec sleep 3600"),
                   hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
                   dnsPolicy="None",
                   dnsConfig={"nameservers": ["192.0.2.53"], "searches": ["ns1.svc.example", "example"],
                              "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    host.wait_phase("dnspod", "Running")
    out = wait_for(lambda: (lambda t: t if "DONE" in t else None)(host.ctl("logs", "dnspod", "-c", "main").stdout),
                   20, what="the pod's files")
    hosts, resolv = out.split("===\n")
    assert "10.1.2.3\tfoo.local\n" in hosts and "10.1.2.3\tbar.local\n" in hosts
    assert "\tdnspod\n" in hosts                      # the pod's own name and IP, as before
    assert resolv == "nameserver 192.0.2.53\nsearch ns1.svc.example example\noptions ndots:2 edns0\nDONE\n"
    # every container of the pod shares the sandbox's files
    wait_for(lambda: "foo.local" in host.ctl("logs", "dnspod", "-c", "second").stdout, 20, what="second's hosts")
    host.ctl("delete", "pod", "dnspod", "--grace-period", "0")


def test_dns_config_merges_with_the_default_policy(host):
    host.apply(pod("dnsmerge", ctr("main", "cat /etc/resolv.conf; echo DONE; exec sleep 3600"),
                   dnsPolicy="Default",   # (ClusterFirst names the node's cluster DNS: test_cluster_dns)
                   dnsConfig={"searches": ["extra.example"], "options": [{"name": "ndots", "value": "3"}]}))
    host.wait_phase("dnsmerge", "Running")
    out = wait_for(lambda: (lambda t: t if "DONE" in t else None)(host.ctl("logs", "dnsmerge").stdout), 20,
                   what="resolv.conf")
    from skiff.runtime.containers.create import host_resolv
    servers, search, _ = host_resolv()
    lines = out.splitlines()
    want = servers[:3] or ["8.8.8.8", "8.8.4.4"]      # the runtime's fallback, as docker's
    assert [ln.split()[1] for ln in lines if ln.startswith("nameserver")] == want
    assert next(ln for ln in lines if ln.startswith("search")).split()[1:] == search + ["extra.example"]
    assert "ndots:3" in next(ln for ln in lines if ln.startswith("options")).split()
    host.ctl("delete", "pod", "dnsmerge", "--grace-period", "0")
