"""skiff agent: the node agent (the kubelet) of one host."""

from __future__ import annotations

from ..errors import InvalidArgument
from .parser import Command, Opt

AGENT_OPTS = [
    Opt(("--node-name",), "node_name", "str", "Name of this node (default: the hostname)", "NAME"),
    Opt(("--node-ip",), "node_ip", "str", "Address other hosts reach this node at (default: the one "
        "that routes to the server)", "IP"),
    Opt(("--node-labels",), "labels", "list", "Label for the Node (repeatable)", "KEY=VALUE"),
    Opt(("--log-port",), "log_port", "int", "Port of the log server (0: any free one)", "PORT", 10250),
    Opt(("--lease-duration",), "lease", "int", "Node lease duration in seconds", "SECONDS", 40),
    Opt(("--pod-bridge",), "bridge", "str", "Bridge of the pod network", "NAME", "skiffpods0"),
    Opt(("--backoff",), "backoff", "str", "Restart back-off: initial,cap,reset seconds", "I,C,R",
        "10,300,600"),
    Opt(("--sync-frequency",), "sync_frequency", "int", "How often the ConfigMaps and Secrets of "
        "mounted volumes are read again, and changed files written", "SECONDS", 60),
    Opt(("--log-format",), "log_format", "str", "Log line format: text or json", "FORMAT", "text"),
    Opt(("--cgroup-parent",), "cgroup_parent", "str", "Parent cgroup of the pods", "PATH", "skiff"),
    Opt(("--ca-file",), "ca_file", "str", "CA to verify the API server with (default: the one the "
        "join token's hash pins, fetched at the first join)", "FILE"),
    Opt(("--insecure-registries",), "insecure", help="Pull over plain HTTP"),
    Opt(("--runtime",), "runtime", "str", "Pod runtime: real, or fake (a hollow node: containers "
        "run in memory; no root, bridge or images needed)", "RUNTIME", "real"),
    Opt(("--cluster-domain",), "cluster_domain", "str", "Domain of the cluster DNS the agent serves "
        "on the pod gateway (<svc>.<ns>.svc.DOMAIN)", "DOMAIN", "cluster.local"),
    Opt(("--resolv-conf",), "resolv_conf", "str", "Resolver file whose nameservers the cluster DNS "
        "forwards other names to, and whose search domains ClusterFirst pods get", "FILE",
        "/etc/resolv.conf"),
]

COMMAND = Command("agent", "agent --server URL --token TOKEN [OPTIONS]",
                  "Run the node agent: register this host and run the pods bound to it", [
                      Opt(("--server",), "server", "str", "URL of the API server", "URL"),
                      Opt(("--token",), "token", "str", "Join token (or node token)", "TOKEN"),
                      *AGENT_OPTS], max_args=0)


def agent_config(values, ctx, server: str, token: str, root: str | None = None):
    from ..agent.agent import AgentConfig
    try:
        initial, cap, reset = (float(x) for x in values["backoff"].split(","))
    except ValueError:
        raise InvalidArgument(f"invalid --backoff {values['backoff']!r}: want INITIAL,CAP,RESET seconds") from None
    labels = {}
    for item in values["labels"]:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise InvalidArgument(f"invalid --node-labels {item!r}: want KEY=VALUE")
        labels[k] = v
    from ..agent.clusterdns import normalize_domain
    try:
        domain = normalize_domain(values.get("cluster_domain") or "cluster.local")
    except ValueError as e:
        raise InvalidArgument(f"invalid --cluster-domain: {e}") from None
    sync_frequency = values["sync_frequency"]
    if sync_frequency <= 0:
        raise InvalidArgument(f"invalid --sync-frequency {sync_frequency}: want a number of seconds above 0")
    runtime = values.get("runtime") or "real"
    if runtime not in ("real", "fake"):
        raise InvalidArgument(f"invalid --runtime {runtime!r}: want real or fake")
    return AgentConfig(runtime=runtime, server=server, token=token, node_name=values["node_name"] or "",
                       root=root or ctx.root.path, node_ip=values["node_ip"] or "",
                       log_port=values["log_port"], lease_duration=values["lease"],
                       pod_bridge=values["bridge"], labels=labels, backoff_initial=initial,
                       backoff_cap=cap, backoff_reset=reset, insecure_registries=values["insecure"],
                       cgroup_parent=values["cgroup_parent"], ca_file=values.get("ca_file") or "",
                       cluster_domain=domain, sync_frequency=sync_frequency,
                       resolv_conf=values.get("resolv_conf") or "/etc/resolv.conf")


def run_until_signalled(start, stop) -> int:
    """Run ``start()`` then wait for SIGINT/SIGTERM, then ``stop()``; with the garbage
    collector set for a daemon (skiff.gctune)."""
    import asyncio
    import signal

    from .. import gctune

    async def body():
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        gctune.for_daemon()
        try:
            await start()
            gctune.started()
            await done.wait()
        finally:
            await stop()
    asyncio.run(body())
    return 0


def main(ctx, values, args) -> int:
    if not values["server"] or not values["token"]:
        raise InvalidArgument("skiff agent needs --server URL and --token TOKEN")
    from ..logutil import setup_logging
    setup_logging(values["log_format"])
    from ..agent.agent import Agent
    agent = Agent(agent_config(values, ctx, values["server"], values["token"]))
    return run_until_signalled(agent.start, agent.stop)
