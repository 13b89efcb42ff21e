"""The remote-command stream protocol of ``pods/NAME/exec`` (Kubernetes' channel.k8s.io
WebSocket subprotocols), shared by the agent that runs the command, the API server that
relays it and skiffctl that drives it.

Every WebSocket message is binary: one channel byte, then the data. Channels: 0 stdin,
1 stdout, 2 stderr (client-bound), 3 the error channel, 4 terminal resize (JSON
``{"Width": w, "Height": h}``, server-bound), and in v5 255 "close" (the data is the
channel id the client will send no more on: stdin's EOF).

On the error channel, v4 and v5 send one ``metav1.Status``: ``Success``, or ``Failure`` with
reason ``NonZeroExitCode`` and a cause ``{"reason": "ExitCode", "message": "<code>"}`` (what
kubectl turns into its own exit code), or ``Failure`` with another reason and a message.
The older subprotocols send the message as text (nothing on success).
"""
from __future__ import annotations

import json

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
# those served, newest first (which one a session uses is the first of these the client
# offers, in the client's order: aiohttp's negotiation)
PROTOCOLS = (V5, V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def offered(header: str | None) -> list[str]:
    """The subprotocols in a ``Sec-WebSocket-Protocol`` header."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def exit_status(code: int, argv: list[str]) -> dict:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"{json.dumps(argv)}, exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_status(message: str, reason: str = "InternalError", code: int = 500) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def error_frame(protocol: str | None, status: dict) -> bytes:
    """The error-channel message carrying ``status`` in ``protocol``."""
    if protocol in (V5, V4):
        return bytes([ERROR]) + json.dumps(status).encode()
    if status.get("status") == "Success":
        return bytes([ERROR])
    return bytes([ERROR]) + str(status.get("message", "")).encode()


def exit_code_of(protocol: str | None, payload: bytes) -> tuple[int, str]:
    """(exit code, message) from an error-channel message: 0 for success, the command's code
    for NonZeroExitCode, 1 with the message for any other failure."""
    if protocol not in (V5, V4):
        text = payload.decode(errors="replace")
        return (1, text) if text else (0, "")
    try:
        st = json.loads(payload or b"{}")
    except ValueError:
        return 1, payload.decode(errors="replace")
    if st.get("status") == "Success":
        return 0, ""
    if st.get("reason") == "NonZeroExitCode":
        for c in (st.get("details") or {}).get("causes") or []:
            if c.get("reason") == "ExitCode" and str(c.get("message", "")).isdigit():
                return int(c["message"]), str(st.get("message", ""))
    return 1, str(st.get("message", "")) or "error executing command"
