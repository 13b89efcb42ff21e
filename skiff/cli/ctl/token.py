"""Manage join tokens.

Usage:
  skiffctl token create --node [--ttl 24h]

Prints the new join token, then the command that joins a new host to the cluster:
  skiff agent --server <URL> --token <TOKEN>
"""
from __future__ import annotations

import sys

from .client import CtlError
from .flags import Flag, parse_duration

FLAGS = [
    Flag("--node", "node", help="Create a join token for a node (agent)"),
    Flag("--ttl", "ttl", "str", default="24h", help="How long the token stays valid (0: the server's default)"),
    Flag("-o --output", "output", "str", help="json: print the JoinToken object"),
]


def run(ctx, args: list[str], opts: dict) -> int:
    if not args or args[0] != "create":
        raise CtlError("error: usage: skiffctl token create --node [--ttl 24h]")
    if len(args) > 1:
        raise CtlError(f"error: unexpected arguments: {' '.join(args[1:])}")
    if not opts["node"]:
        raise CtlError("error: say what the token is for: skiffctl token create --node")
    ttl = parse_duration(opts["ttl"]) if opts["ttl"] else 0
    body = {"ttlSeconds": int(ttl)} if ttl else {}
    client = ctx.client()
    tok = client.request("POST", "/apis/skiff.dev/v1/jointokens", body=body)
    if opts["output"] == "json":
        from .printers import to_json
        sys.stdout.write(to_json(tok))
        return 0
    token = tok.get("token")
    if not token:
        raise CtlError("error: the server returned no token")
    print(token)
    exp = f" (expires {tok['expiration']})" if tok.get("expiration") else ""
    print(f"# join a host to this cluster{exp}:", file=sys.stderr)
    print(f"skiff agent --server {client.config.server} --token {token}")
    return 0
