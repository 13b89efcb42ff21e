"""Execute a command in a container.

Usage:
  skiffctl exec [-i] [-t] (POD | TYPE/NAME) [-c CONTAINER] -- COMMAND [args...]

TYPE/NAME: pod/NAME, or deploy/NAME, rs/NAME and job/NAME for one of their pods (running and ready first).
The exit code is the command's ("command terminated with exit code N" on stderr, as kubectl).

Examples:
  skiffctl exec web-7d6d4677f8-dbxr6 -- cat /etc/config/app.conf
  skiffctl exec -it deploy/web -- sh
  echo hello | skiffctl exec -i web-7d6d4677f8-dbxr6 -c web -- wc -l
"""
from __future__ import annotations

import os
import sys

from .client import CtlError
from .common import default_container, pod_for
from .flags import Flag

FLAGS = [
    Flag("-c --container", "container", "str", help="Container name. If omitted, the pod's default (or first) one"),
    Flag("-i --stdin", "stdin", help="Pass stdin to the container"),
    Flag("-t --tty", "tty", help="Stdin is a TTY"),
    Flag("-q --quiet", "quiet", help="Only print output from the remote session"),
]


def run(ctx, args: list[str], opts: dict) -> int:
    if not args:
        raise CtlError("error: expected 'exec (POD | TYPE/NAME) COMMAND [ARG1] [ARG2] ... [ARGN]'.\n"
                       "POD or TYPE/NAME is a required argument for the exec command")
    if len(args) < 2:
        raise CtlError("error: you must specify at least one command for the container")
    client = ctx.client()
    ns = ctx.namespace
    pod = pod_for(client, ns, args[0])
    name = pod["metadata"]["name"]
    container = default_container(pod, opts["container"])
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        raise CtlError(f"error: cannot exec into a container in a completed pod; current phase is "
                       f"{pod['status']['phase']}")
    tty = bool(opts["tty"])
    if tty and not os.isatty(0):
        if not opts["quiet"]:
            print("Unable to use a TTY - input is not a terminal or the right kind of file", file=sys.stderr)
        tty = False
    params = [("command", a) for a in args[1:]] + [("container", container), ("stdout", "true")]
    if opts["stdin"]:
        params.append(("stdin", "true"))
    if tty:
        params.append(("tty", "true"))
    else:
        params.append(("stderr", "true"))
    from skiff.api.resources import path_for
    path = path_for("pods", ns, name, "exec")
    import asyncio
    code, message = asyncio.run(_session(ctx.config, client, path, params, bool(opts["stdin"]), tty))
    if code and message and not message.startswith("command terminated"):
        raise CtlError(message if message.startswith("error") else f"error: {message}")
    if code and not opts["quiet"]:
        print(f"command terminated with exit code {code}", file=sys.stderr)
    return code


async def _session(config, client, path: str, params: list, stdin: bool, tty: bool) -> tuple[int, str]:
    """Run the remote command over a WebSocket; (exit code, message)."""
    import asyncio
    import aiohttp
    from skiff.api import remotecommand as rc
    url = config.server.rstrip("/") + path
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    from .client import ssl_context
    ssl = ssl_context(config) if url.startswith("https") else None
    async with aiohttp.ClientSession() as s:
        try:
            ws = await s.ws_connect(url, params=params, headers=headers, protocols=(rc.V5, rc.V4),
                                    ssl=ssl, max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            # the server refused before upgrading: ask again plainly for its Status message
            q = dict(params)
            q["command"] = [v for k, v in params if k == "command"][0]
            client.request("GET", path, params=q, verb="exec")
            raise CtlError(f"error: unable to upgrade connection: {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise CtlError(f"Unable to connect to the server: {e}") from None
        proto = ws.protocol
        out, err = sys.stdout.buffer, sys.stderr.buffer
        result = (1, "error: the connection closed before the command's exit status came")
        feeder = _feed_stdin(ws, proto, tty) if stdin else None
        from skiff.cli.attach import RawTerminal
        with RawTerminal(0) if tty and stdin else _Null():
            if tty:
                _watch_size(ws)
            try:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                        continue
                    ch, data = msg.data[0], msg.data[1:]
                    if ch == rc.STDOUT:
                        out.write(data)
                        out.flush()
                    elif ch == rc.STDERR:
                        err.write(data)
                        err.flush()
                    elif ch == rc.ERROR:
                        result = rc.exit_code_of(proto, data)
            finally:
                if feeder is not None:
                    feeder.cancel()
                    await asyncio.gather(feeder, return_exceptions=True)
                await ws.close()
        return result


def _feed_stdin(ws, proto, tty: bool):
    """Our stdin to the command's, from a thread (stdin may be a file, a pipe or a terminal);
    at EOF the close signal (v5)."""
    import asyncio
    import threading
    from skiff.api import remotecommand as rc
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue(maxsize=16)

    def reader():
        while True:
            try:
                data = os.read(0, 65536)
            except OSError:
                data = b""
            asyncio.run_coroutine_threadsafe(q.put(data), loop).result()
            if not data:
                return
    threading.Thread(target=reader, daemon=True).start()

    async def pump():
        while True:
            data = await q.get()
            if not data:
                if proto == rc.V5 and not tty:
                    await ws.send_bytes(bytes([rc.CLOSE, rc.STDIN]))
                return
            await ws.send_bytes(bytes([rc.STDIN]) + data)
    return asyncio.ensure_future(pump())


def _watch_size(ws) -> None:
    """Send the terminal's size now and whenever it changes (SIGWINCH)."""
    import asyncio
    import json
    import signal
    from skiff.api import remotecommand as rc
    from skiff.cli.attach import terminal_size

    def send():
        size = terminal_size(0) or terminal_size(1)
        if size:
            asyncio.ensure_future(ws.send_bytes(bytes([rc.RESIZE]) + json.dumps(
                {"Width": size[1], "Height": size[0]}).encode()))
    send()
    asyncio.get_running_loop().add_signal_handler(signal.SIGWINCH, send)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
