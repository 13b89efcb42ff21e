"""skiff login: check credentials against a registry's /v2/ and store them (mode 0600)."""

from __future__ import annotations

import sys

from ..errors import SkiffError
from .parser import Command, Opt

COMMAND = Command("login", "login [OPTIONS] [SERVER]", "Log in to a registry", [
    Opt(("-u", "--username"), "username", "str", "Username", "string"),
    Opt(("-p", "--password"), "password", "str", "Password", "string"),
    Opt(("--password-stdin",), "password_stdin", help="Take the password from stdin"),
    Opt(("--insecure",), "insecure", help="Allow plain HTTP to this registry"),
], min_args=0, max_args=1)


def main(ctx, values, args) -> int:
    from ..runtime.images.auth import store_credentials
    from ..runtime.images.registry import Registry, RegistryError, is_insecure

    server = _server(args[0] if args else "docker.io")
    user, password = values["username"], values["password"]
    if values["password_stdin"]:
        if password:
            raise SkiffError("--password and --password-stdin are mutually exclusive")
        if not user:
            raise SkiffError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not user:
        if not sys.stdin.isatty():
            raise SkiffError("Cannot perform an interactive login from a non TTY device")
        user = input("Username: ").strip()
    if not password:
        import getpass
        if not sys.stdin.isatty():
            raise SkiffError("Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise SkiffError("Non-null Username Required" if not user else "Password Required")
    allowed: list[str] = []
    if not values["insecure"]:
        from ..runtime.network.daemon_config import load_daemon_config
        allowed = load_daemon_config(ctx.root).get("insecure-registries") or []
    reg = Registry(server, insecure=is_insecure(server, allowed, values["insecure"]),
                   credentials=(user, password))
    try:
        reg.authenticate("")
        # a token server may accept anyone for an empty scope; check /v2/ with what we got
        reg.request("GET", "/v2/").read()
    except RegistryError as e:
        raise SkiffError(f"login attempt to {reg.url('/v2/')} failed: {e}", 1) from None
    finally:
        reg.close()
    store_credentials(server, user, password)
    print("Login Succeeded")
    return 0


def _server(s: str) -> str:
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.split("/", 1)[0] if s != "index.docker.io/v1/" else "docker.io"
