"""`skiffctl`: the cluster client, shaped like kubectl.

    skiffctl [--kubeconfig F] [-n NS] [--server URL] [--token T] [-v N] COMMAND ...

Each command's module is imported only when it runs; simple commands never import
aiohttp or asyncio.
"""
from __future__ import annotations

import os
import sys

from .flags import Flag, HelpRequested, UsageError, format_flags, parse

COMMANDS = {
    "apply": "Apply a configuration to a resource by file name or stdin",
    "create": "Create a resource from a file or stdin (-f), or a namespace, deployment, configmap or secret",
    "get": "Display one or many resources",
    "describe": "Show details of a specific resource or group of resources",
    "delete": "Delete resources by file names, stdin, resources and names, or by resources and label selector",
    "scale": "Set a new size for a deployment or replica set",
    "rollout": "Manage the rollout of a deployment (status, history, undo, restart, pause, resume)",
    "logs": "Print the logs for a container in a pod",
    "exec": "Execute a command in a container",
    "port-forward": "Forward one or more local ports to a pod",
    "events": "List events",
    "token": "Manage join tokens (token create --node)",
    "version": "Print the client and server version information",
    "api-resources": "Print the supported API resources on the server",
}

GLOBAL_FLAGS = [
    Flag("--kubeconfig", "kubeconfig", "str", help="Path to the kubeconfig file to use for CLI requests."),
    Flag("-n --namespace", "namespace", "str", help="If present, the namespace scope for this CLI request"),
    Flag("-s --server", "server", "str", help="The address and port of the API server"),
    Flag("--token", "token", "str", help="Bearer token for authentication to the API server"),
    Flag("--certificate-authority", "ca_file", "str", help="Path to a cert file for the certificate authority"),
    Flag("--insecure-skip-tls-verify", "insecure", help="If true, the server's certificate will not be checked "
         "for validity. This will make your HTTPS connections insecure"),
    Flag("-v --v", "verbosity", "optint", default=0, help="Number for the log level verbosity (6: requests)"),
    Flag("--request-timeout", "request_timeout", "str",
         help="How long to wait for a single server request (0: no timeout)"),
]

USAGE = """skiffctl controls a skiff cluster (kubectl's commands and output).

Basic Commands:
{commands}

Usage:
  skiffctl [flags] [options]

Global options:
{flags}
"""


class Context:
    """What every command needs: the parsed global flags, the config and a client, lazily."""

    def __init__(self, opts: dict):
        self.opts = opts
        self._config = None
        self._client = None
        from . import discovery
        discovery.CONTEXT = self    # custom resources are looked up through the server's discovery

    @property
    def config(self):
        if self._config is None:
            from .client import load_config
            self._config = load_config(self.opts.get("kubeconfig"), self.opts.get("server"),
                                       self.opts.get("token"), self.opts.get("ca_file"),
                                       bool(self.opts.get("insecure")))
        return self._config

    @property
    def namespace(self) -> str:
        return self.opts.get("namespace") or self.config.namespace or "default"

    @property
    def explicit_namespace(self) -> bool:
        return bool(self.opts.get("namespace"))

    def client(self, timeout="default"):
        if self._client is None:
            from .client import Client
            t = 30.0
            rt = self.opts.get("request_timeout")
            if rt:
                from .flags import parse_duration
                t = parse_duration(rt) or None
            self._client = Client(self.config, timeout=t, verbosity=self.opts.get("verbosity") or 0)
        return self._client


def _split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The command is the first argument that is neither a global flag nor its value."""
    takes_value = {n for f in GLOBAL_FLAGS if f.kind in ("str", "int") for n in f.names}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return None, argv
        if a.startswith("-"):
            name = a.split("=", 1)[0]
            if name in takes_value and "=" not in a:
                i += 2
                continue
            if name in ("-v", "--v") and "=" not in a and i + 1 < len(argv) and argv[i + 1].isdigit():
                i += 2
                continue
            i += 1
            continue
        return a, argv[:i] + argv[i + 1:]
    return None, argv


def usage() -> str:
    cmds = "\n".join(f"  {c:<14} {h}" for c, h in COMMANDS.items())
    return USAGE.format(commands=cmds, flags=format_flags(GLOBAL_FLAGS))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd, rest = _split_command(argv)
    if cmd is None:
        if any(a in ("-h", "--help") for a in argv) or not argv:
            sys.stdout.write(usage())
            return 0
        sys.stderr.write("error: you must specify a command\n" + usage())
        return 1
    if cmd == "help":
        sys.stdout.write(usage())
        return 0
    if cmd not in COMMANDS:
        sys.stderr.write(f'error: unknown command "{cmd}" for "skiffctl"\n'
                         "Run 'skiffctl --help' for usage.\n")
        return 1
    import importlib
    mod = importlib.import_module(f"skiff.cli.ctl.{cmd.replace('-', '_')}")
    flags = GLOBAL_FLAGS + list(getattr(mod, "FLAGS", []))
    try:
        try:
            opts, args = parse(rest, flags, cmd=cmd)
        except HelpRequested:
            sys.stdout.write((mod.__doc__ or "").strip() + "\n\nOptions:\n"
                             + format_flags(getattr(mod, "FLAGS", [])) + "\n\nGlobal options:\n"
                             + format_flags(GLOBAL_FLAGS) + "\n")
            return 0
        ctx = Context(opts)
        try:
            return int(mod.run(ctx, args, opts) or 0)
        finally:
            if ctx._client is not None:
                ctx._client.close()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001
        from skiff.errors import SkiffError
        if isinstance(e, SkiffError):
            msg = str(e)
            print(msg if msg.startswith(("error:", "Error", "The ", "Unable", "Warning")) else f"error: {msg}",
                  file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
