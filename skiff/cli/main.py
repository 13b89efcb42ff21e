"""The `skiff` command: docker's verbs over the daemonless runtime core.

Start-up is on the hot path of every container run, so this module imports
almost nothing; each verb's module is imported only when that verb runs.
"""

from __future__ import annotations

import os
import sys

from ..errors import SkiffError

# verb -> (module in skiff.cli, one-line summary)
VERBS = {
    "run": ("run", "Create and run a new container from an image"),
    "exec": ("exec", "Execute a command in a running container"),
    "attach": ("attach_cmd", "Attach local standard input, output, and error streams to a running container"),
    "ps": ("ps", "List containers"),
    "logs": ("logs", "Fetch the logs of a container"),
    "stop": ("stop", "Stop one or more running containers"),
    "kill": ("kill", "Kill one or more running containers"),
    "rm": ("rm", "Remove one or more containers"),
    "inspect": ("inspect", "Return low-level information on containers or images"),
    "images": ("images", "List images"),
    "import": ("import_", "Import the contents from a tarball to create an image"),
    "mkimage": ("mkimage", "Make a base image from the host (busybox) without a registry"),
    "tag": ("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "rmi": ("rmi", "Remove one or more images"),
    "save": ("save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "load": ("load", "Load an image from a tar archive or STDIN"),
    "network": ("network", "Manage networks"),
    "port": ("port", "List port mappings for the container"),
    "pull": ("pull", "Download an image from a registry"),
    "push": ("push", "Upload an image to a registry"),
    "login": ("login", "Log in to a registry"),
    "logout": ("logout", "Log out from a registry"),
    "commit": ("commit", "Create a new image from a container's changes"),
    "history": ("history", "Show the history of an image"),
    "image": ("image", "Manage images (image prune; image ls/rm/tag/inspect/import)"),
    "system": ("system", "Manage skiff (system df: show disk usage)"),
    "controller": ("controller", "Run the control plane: API server, store and controllers"),
    "agent": ("agent", "Run the node agent that runs this host's pods"),
    "hollow": ("hollow", "Run N hollow nodes (the real agent over a fake runtime) in one process"),
    "up": ("up", "Run a one-host cluster: controller and agent in one process"),
}
ALIASES = {"container": None, "image": None}


class Context:
    """What every verb needs, made on first use."""

    def __init__(self, root_path: str | None):
        self.root_path = root_path
        self._root = self._images = self._containers = None

    @property
    def root(self):
        if self._root is None:
            from ..runtime.root import Root
            self._root = Root(self.root_path)
        return self._root

    @property
    def images(self):
        if self._images is None:
            from ..runtime.images.store import ImageStore
            self._images = ImageStore(self.root)
        return self._images

    @property
    def containers(self):
        if self._containers is None:
            from ..runtime.containers.store import ContainerStore
            self._containers = ContainerStore(self.root)
        return self._containers


def usage() -> str:
    lines = ["", "Usage:  skiff [OPTIONS] COMMAND", "",
             "A daemonless container runtime with docker's verbs.", "",
             "Options:",
             "  --root DIR        State directory (default /var/lib/skiff, or $SKIFF_ROOT)",
             "  -v, --version     Print version information and quit",
             "  -h, --help        Show this help", "", "Commands:"]
    for verb, (_, summary) in VERBS.items():
        lines.append(f"  {verb:<10} {summary}")
    lines += ["", "Run 'skiff COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    code = run(sys.argv[1:] if argv is None else argv)
    # Skip the interpreter's teardown (module GC, ~5-10 ms): nothing is left to flush but stdio.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def run(argv: list[str]) -> int:
    root_path = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if a in ("-h", "--help"):
            sys.stdout.write(usage())
            return 0
        if a in ("-v", "--version"):
            from .. import __version__
            print(f"skiff version {__version__}")
            return 0
        if a == "--root":
            if i + 1 >= len(argv):
                sys.stderr.write("flag needs an argument: --root\nSee 'skiff --help'.\n")
                return 125
            root_path, i = argv[i + 1], i + 2
            continue
        if a.startswith("--root="):
            root_path, i = a.split("=", 1)[1], i + 1
            continue
        sys.stderr.write(f"unknown flag: {a}\nSee 'skiff --help'.\n")
        return 125
    rest = argv[i:]
    if rest and rest[0] in ALIASES and len(rest) > 1:  # `skiff container ls`, `skiff image rm`
        rest = _alias(rest)
    if not rest:
        sys.stdout.write(usage())
        return 0
    verb = rest[0]
    if verb not in VERBS:
        sys.stderr.write(f"skiff: '{verb}' is not a skiff command.\nSee 'skiff --help'\n")
        return 125
    mod = __import__(f"skiff.cli.{VERBS[verb][0]}", fromlist=["COMMAND"])
    from .parser import HelpRequested, parse
    try:
        values, args = parse(mod.COMMAND, rest[1:])
        return mod.main(Context(root_path), values, args) or 0
    except HelpRequested:
        sys.stdout.write(mod.COMMAND.format_help())
        return 0
    except SkiffError as e:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _alias(rest: list[str]) -> list[str]:
    group, verb = rest[0], rest[1]
    table = {("container", "ls"): "ps", ("container", "list"): "ps", ("image", "ls"): "images",
             ("image", "list"): "images", ("image", "rm"): "rmi", ("image", "import"): "import",
             ("image", "tag"): "tag", ("image", "inspect"): "inspect", ("image", "save"): "save", ("image", "history"): "history",
             ("image", "load"): "load", ("image", "pull"): "pull", ("image", "push"): "push",
             ("container", "rm"): "rm", ("container", "inspect"): "inspect",
             ("container", "commit"): "commit", ("container", "logs"): "logs",
             ("container", "stop"): "stop", ("container", "kill"): "kill",
             ("container", "exec"): "exec", ("container", "run"): "run",
             ("container", "port"): "port", ("container", "attach"): "attach"}
    if (group, verb) == ("image", "prune"):  # skiff/cli/image.py: `image prune [-a] [-f]`
        return rest
    return [table.get((group, verb), verb), *rest[2:]]


if __name__ == "__main__":
    main()
