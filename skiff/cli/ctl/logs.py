"""Print the logs for a container in a pod.

Usage:
  skiffctl logs [-f] [--tail N] [-c CONTAINER] [--previous] [--timestamps] [--since 10s] (POD | TYPE/NAME)

TYPE/NAME: pod/NAME, or deploy/NAME, rs/NAME, job/NAME and ds/NAME for one of their pods (running and ready
first).
"""
from __future__ import annotations

import sys

from .client import CtlError
from .common import default_container, pod_for
from .flags import Flag, parse_duration

FLAGS = [
    Flag("-f --follow", "follow", help="Specify if the logs should be streamed"),
    Flag("--tail", "tail", "int", default=-1, help="Lines of recent log file to display (-1: all)"),
    Flag("-c --container", "container", "str", help="Print the logs of this container"),
    Flag("-p --previous", "previous", help="Print the logs of the previous instance of the container"),
    Flag("--timestamps", "timestamps", help="Include timestamps on each line in the log output"),
    Flag("--since", "since", "str", help="Only return logs newer than a relative duration like 5s, 2m, or 3h"),
    Flag("--limit-bytes", "limit_bytes", "int", help="Maximum bytes of logs to return"),
]


def run(ctx, args: list[str], opts: dict) -> int:
    if len(args) == 2 and "/" not in args[0] and args[0] in ("pod", "pods", "po"):
        args = [args[1]]
    if len(args) == 2 and not opts["container"]:
        args, opts["container"] = [args[0]], args[1]
    if len(args) != 1:
        raise CtlError("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n"
                       "POD or TYPE/NAME is a required argument for the logs command")
    ref = args[0]
    if "/" in ref and ref.partition("/")[0] not in ("pod", "pods", "po", "deploy", "deployment", "deployments",
                                                   "rs", "replicaset", "replicasets", "job", "jobs",
                                                   "ds", "daemonset", "daemonsets",
                                                   "sts", "statefulset", "statefulsets"):
        raise CtlError(f"error: cannot get the logs from {ref.partition('/')[0]}: only pods "
                       f"(and the pods of deployments, replica sets, jobs, daemon sets and stateful sets) "
                       f"have logs")
    client = ctx.client()
    ns = ctx.namespace
    pod = pod_for(client, ns, ref)
    name = pod["metadata"]["name"]
    container = default_container(pod, opts["container"])
    params = {"container": container}
    if opts["follow"]:
        params["follow"] = "true"
    if opts["tail"] is not None and opts["tail"] >= 0:
        params["tailLines"] = opts["tail"]
    if opts["previous"]:
        params["previous"] = "true"
    if opts["timestamps"]:
        params["timestamps"] = "true"
    if opts["since"]:
        params["sinceSeconds"] = max(1, int(parse_duration(opts["since"]) + 0.999))
    if opts["limit_bytes"]:
        params["limitBytes"] = opts["limit_bytes"]
    from skiff.api.resources import path_for
    r = client.stream(path_for("pods", ns, name, "log"), params,
                      timeout=None if opts["follow"] else client.timeout)
    out = sys.stdout.buffer
    try:
        for chunk in r.chunks():
            out.write(chunk)
            out.flush()
    finally:
        r.close()
    return 0
