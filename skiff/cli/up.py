"""skiff up: a one-host cluster (controller + agent in one process), like `k3s server`."""

from __future__ import annotations

import os

from .agent import AGENT_OPTS, agent_config, run_until_signalled
from .controller import CONTROLLER_OPTS, controlplane_options, controllers_from
from .parser import Command, Opt

COMMAND = Command("up", "up --data-dir DIR [--port PORT] [--root ROOT]",
                  "Run a one-host cluster: API server, store, controllers and a local agent", [
                      Opt(("--data-dir",), "data_dir", "str", "Directory of the cluster's state",
                          "DIR", "/var/lib/skiff-cluster"),
                      Opt(("--port",), "port", "int", "API server port on 127.0.0.1", "PORT", 6443),
                      Opt(("--listen",), "listen", "str", "API server address (overrides --port)", "IP:PORT"),
                      Opt(("--root",), "root", "str", "Runtime root of the local agent (default: "
                          "DIR/root)", "ROOT"),
                      *CONTROLLER_OPTS, *AGENT_OPTS], max_args=0)


def main(ctx, values, args) -> int:
    from ..logutil import setup_logging
    setup_logging(values["log_format"])
    from ..agent.agent import Agent
    from ..controller.controlplane import ControlPlane
    data_dir = os.path.abspath(values["data_dir"])
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    listen = values["listen"] or f"127.0.0.1:{values['port']}"
    cp = ControlPlane(data_dir, listen=listen, log_format=values["log_format"], **controlplane_options(values))
    for factory in controllers_from(values):
        cp.add_controller(factory)
    root = values["root"] or ctx.root_path or os.path.join(data_dir, "root")
    state: dict = {}

    async def start():
        await cp.start()
        if not values["node_name"]:
            values["node_name"] = os.uname().nodename.split(".")[0].lower()
        token = await cp.mint_node_token(values["node_name"])
        cfg = agent_config(values, ctx, cp.url, token, root=root)
        cfg.ca_file = cp.ca_file or ""
        agent = state["agent"] = Agent(cfg)
        await agent.start()
        kc = os.path.join(data_dir, "kubeconfig")
        print(f"skiff is up: API server {cp.url}, node {cfg.node_name}\n"
              f"  export KUBECONFIG={kc}\n  skiffctl get nodes    # or: kubectl get nodes", flush=True)

    async def stop():
        agent = state.get("agent")
        if agent is not None:
            await agent.stop()
        await cp.stop()
    return run_until_signalled(start, stop)
