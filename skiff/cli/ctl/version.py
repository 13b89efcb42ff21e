"""Print the client and server version information.

Usage:
  skiffctl version
"""
from __future__ import annotations

FLAGS = []


def run(ctx, args, opts) -> int:
    print("Client Version: skiffctl v0.1.0")
    v = ctx.client().request("GET", "/version")
    print(f"Server Version: {v.get('gitVersion', '')}")
    return 0
