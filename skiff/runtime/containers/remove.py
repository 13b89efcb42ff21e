"""`rm`: delete a stopped container (or, with force, kill it first)."""

from __future__ import annotations

import signal

from ...errors import Conflict
from .stop import _signal, wait_stopped
from .store import Container


def remove(c: Container, force: bool = False) -> None:
    st = c.state()
    if st.running:
        if not force:
            raise Conflict(f"You cannot remove a running container {c.id}. Stop the container "
                           f"before attempting removal or force remove")
        _signal(st, signal.SIGKILL)
        st = wait_stopped(c, 10)
    c.store.remove_files(c)
