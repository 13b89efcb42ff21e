"""Attaching to a running container later (``skiff attach``, the agent's pods/attach): the
monitor of a container with stdin or a terminal listens on ``<container dir>/attach.sock``.

A client that connects speaks the monitor's frames (:mod:`.frames`): it gets the output from
then on and the EXIT frame; it may send STDIN, STDIN_EOF (closes the container's stdin, for
docker's and Kubernetes' stdinOnce) and RESIZE. Only root may connect (the socket's directory
is root's, and the peer's credentials are checked). A client too slow to take the output for
a few seconds is dropped rather than stall the container.

The path is reached through ``/proc/self/fd/<dir fd>`` so that a deep root does not exceed
the 108 bytes a socket path may have.
"""
from __future__ import annotations

import os
import socket
import struct

from ...errors import SkiffError

SOCKET = "attach.sock"
SEND_TIMEOUT = 5.0


def _short(cdir: str) -> tuple[int, str]:
    fd = os.open(cdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return fd, f"/proc/self/fd/{fd}/{SOCKET}"


def listen(cdir: str) -> socket.socket:
    dfd, path = _short(cdir)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(path)
        os.chmod(path, 0o600)
        s.listen(8)
        s.setblocking(False)
        return s
    finally:
        os.close(dfd)


def accept(listener: socket.socket) -> int | None:
    """The fd of a new root client (blocking, with a send timeout), or None."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return None
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid != 0:
        conn.close()
        return None
    conn.setblocking(True)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(SEND_TIMEOUT), 0))
    return conn.detach()


def close(listener: socket.socket, cdir: str) -> None:
    listener.close()
    try:
        os.unlink(os.path.join(cdir, SOCKET))
    except OSError:
        pass


def connect(c):
    """An Attachment (:class:`.start.Attachment`) to running container ``c``'s monitor."""
    from .start import Attachment
    st = c.state()
    if not st.running:
        raise SkiffError("You cannot attach to a stopped container, start it first")
    if not (c.spec.stdin or c.spec.tty):
        raise SkiffError(f"container {c.name} was started without stdin or a terminal: skiff attaches "
                         f"to those only (use `skiff logs -f` for its output)")
    dfd, path = _short(c.dir)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SkiffError(f"cannot attach to container {c.name}: {e.strerror}") from None
    finally:
        os.close(dfd)
    fd = s.detach()
    return Attachment(fd, os.dup(fd), st.pid)
