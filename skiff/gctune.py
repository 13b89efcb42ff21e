"""The cyclic garbage collector, set for a daemon (controller, agent, hollow nodes).

CPython's defaults (a young collection every 700 net allocations, a full one whenever a quarter
more objects have lived through two) suit a short script. A server with thousands of requests in
flight has everything in flight outlive the young collections, so it all reaches the old
generation, and full collections of a heap that holds informer caches (10 000 decoded pods are
~1M objects) come again and again. Measured on `bench/scale_bench.py` (1000 hollow nodes, 10 000
pods): the controller spent 24 of its 74 CPU seconds in the collector, 18 of them in 76 full
collections of up to 0.33 s each. With YOUNG at 10 000 / 50 000 / 100 000 the collector took
4.7 / 1.2 / 0.6 s, and the controller's CPU for the 10 000 pods went from 47.8 s to 33.9 / 32.9 /
30.4 s (peak RSS unchanged, 265-291 MB in every run).

Reference counting frees nearly everything here; the collector is only for cycles (tracebacks
of failed tasks and the like). So: collect the young generation every YOUNG net allocations
(a few a second under load, most under 1 ms), and keep what the daemon built at start-up
(modules, classes, its caches as first loaded) out of every collection with ``gc.freeze()``.
Objects of a frozen generation are still freed by reference counting when they are let go."""
from __future__ import annotations

import gc

YOUNG = 100_000     # net allocations of container objects between young collections (default 700)
MIDDLE = 20         # young collections between middle ones (default 10)
OLD = 10            # middle collections before a full one is considered (default 10); CPython also
                    # waits until a quarter more objects have reached the old generation


def for_daemon() -> None:
    """Space the collections out. Call it once, when the daemon starts."""
    gc.set_threshold(YOUNG, MIDDLE, OLD)


def started() -> None:
    """The daemon is up: what it holds now stays out of later collections."""
    gc.collect()
    gc.freeze()
