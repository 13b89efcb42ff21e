"""Restart back-off for crashing containers, as the kubelet does it.

The first restart after an exit is immediate; each later one waits ``initial`` (10 s),
then twice that, up to ``cap`` (5 min). A container that ran for ``reset_after`` (10 min)
or longer before it exited starts over at no wait. Times are seconds (floats) so that
tests can use a fake clock.
"""
from __future__ import annotations


class Backoff:
    def __init__(self, initial: float = 10.0, cap: float = 300.0, reset_after: float = 600.0):
        self.initial = initial
        self.cap = cap
        self.reset_after = reset_after
        self._delay: dict[tuple, float] = {}   # key -> the wait before the next restart

    def wait_left(self, key: tuple, started: float, finished: float, now: float) -> float:
        """Seconds still to wait before restarting the container ``key`` that ran from
        ``started`` to ``finished``; 0 when it may restart now."""
        if finished - started >= self.reset_after:
            self._delay.pop(key, None)
        delay = self._delay.get(key)
        if delay is None:
            return 0.0
        return max(0.0, finished + delay - now)

    def restarted(self, key: tuple) -> None:
        """Record a restart: the next one waits longer."""
        delay = self._delay.get(key)
        self._delay[key] = self.initial if delay is None else min(self.cap, delay * 2)

    def forget(self, key_prefix) -> None:
        """Drop every entry whose key starts with ``key_prefix`` (a pod's uid)."""
        for k in [k for k in self._delay if k[0] == key_prefix]:
            del self._delay[k]
