"""skiff logout: forget the stored credentials of a registry."""

from __future__ import annotations

from .parser import Command

COMMAND = Command("logout", "logout [SERVER]", "Log out from a registry", [], min_args=0, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.images.auth import erase_credentials
    from .login import _server

    server = _server(args[0] if args else "docker.io")
    if erase_credentials(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0
