#!/usr/bin/env python3
"""A Deployment of real containers on 3 real agents (run by hand, as root).

A controller and 3 agents, each in its own network namespace (tests/e2e/cluster.py). A
Deployment of N busybox `sleep` replicas (300 by default) is applied; the time until it is
available (status.availableReplicas == N) is measured. Then its template is changed (an env
value) to roll all N replicas over with maxSurge 25%, and the time until the rollout is done
(updatedReplicas == availableReplicas == N, no old replicas) is measured. Prints both, and the
RSS of the controller and of the agents.

    .venv/bin/python bench/deployment_bench.py [--replicas 300]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.pod_latency_bench import rss_kb  # noqa: E402
from tests.e2e.cluster import Cluster, wait_for  # noqa: E402


def deployment(n: int, version: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "bench"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {
                         "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                                         "env": [{"name": "VERSION", "value": version}]}]}}}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=300)
    args = ap.parse_args()
    n = args.replicas
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp:
        c = Cluster(tmp, n_hosts=3, lease_duration=10, lease_grace=40)
        try:
            c.start_with_agents("--log-format", "text")
            wait_for(lambda: len([x for x in c.get_json("nodes")["items"]
                                  if x.get("spec", {}).get("podCIDR")]) == 3, 60, what="3 nodes")
            path = os.path.join(tmp, "d.json")

            def apply(version: str) -> float:
                with open(path, "w") as f:
                    json.dump(deployment(n, version), f)
                t0 = time.monotonic()
                c.ctl("apply", "-f", path)
                return t0

            def status() -> dict:
                return c.get_json("deployment", "bench").get("status", {})

            def done() -> bool:
                d = c.get_json("deployment", "bench")
                st = d.get("status", {})
                return (st.get("observedGeneration") == d["metadata"].get("generation")
                        and st.get("updatedReplicas") == n and st.get("availableReplicas") == n
                        and st.get("replicas") == n)
            t0 = apply("1")
            wait_for(done, 1800, interval=1.0, what="available")
            t_avail = time.monotonic() - t0
            t0 = apply("2")
            wait_for(done, 1800, interval=1.0, what="rolled out")
            t_roll = time.monotonic() - t0
            print(f"Deployment of {n} replicas on 3 agents: available in {t_avail:.1f} s "
                  f"({n / t_avail:.1f} pods/s)")
            print(f"rolling update of all {n} (maxSurge 25%, maxUnavailable 0): {t_roll:.1f} s")
            print(f"controller RSS {rss_kb(c.controller.proc.pid) / 1024:.1f} MB; agents RSS " +
                  ", ".join(f"{rss_kb(h.proc.pid) / 1024:.1f} MB" for h in c.hosts))
            print("final status:", json.dumps(status()))
        finally:
            c.close()


if __name__ == "__main__":
    main()
