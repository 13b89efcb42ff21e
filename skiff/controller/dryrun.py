"""Server-side dry run (``?dryRun=All``): the request goes through every step a real one goes
through (authorization, admission, validation, patches, preconditions, conflicts) but nothing
is persisted, and the answer is the object as it would have been stored.

The registry reads and writes through ``Registry.storage``; during a dry-run request (the
:data:`DRY_RUN` context variable, set by the API server for that request's task) that is a
:class:`DryRunStorage` view: reads go to the real store, writes are checked against it and
answered without being written. ``kubectl apply|create|delete --dry-run=server`` and
``kubectl diff`` depend on this.
"""
from __future__ import annotations

import contextlib
import contextvars
import uuid
from typing import Any

from skiff.api.timefmt import rfc3339
from skiff.controller.storage.base import StoreError, already_exists, conflict

__all__ = ["DRY_RUN", "DryRunStorage", "check_dry_run", "dry_run_scope"]

DRY_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("skiff_dry_run", default=False)


def check_dry_run(values: list[str]) -> bool:
    """The ``dryRun`` query values -> whether to dry-run; only ``All`` is defined."""
    from skiff.api import errors as E
    bad = [v for v in values if v != "All"]
    if bad:
        raise E.bad_request(f'Invalid dryRun value: "{bad[0]}": supported values: "All"')
    return bool(values)


@contextlib.contextmanager
def dry_run_scope(values):
    """Dry-run what runs inside when ``values`` (the query's or DeleteOptions' ``dryRun``)
    asks for it; the previous state is restored on the way out."""
    if not values:
        yield
        return
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        from skiff.api import errors as E
        raise E.bad_request("dryRun must be a list of strings")
    token = DRY_RUN.set(check_dry_run([str(v) for v in values]))
    try:
        yield
    finally:
        DRY_RUN.reset(token)


class DryRunStorage:
    """The real store for reads; writes are verified and simulated, never persisted."""

    def __init__(self, real: Any):
        self._real = real

    def __getattr__(self, name: str) -> Any:    # get, list, watch...: the real store
        return getattr(self._real, name)

    async def _current(self, key: str, expect_rv: str | None) -> dict:
        cur = await self._real.get(key)        # not found: the store's own 404
        rv = (cur.get("metadata") or {}).get("resourceVersion")
        if expect_rv is not None and str(expect_rv) != str(rv):
            raise conflict(key, str(expect_rv), str(rv))
        return cur

    async def create(self, key: str, obj: dict) -> dict:
        try:
            await self._real.get(key)
        except StoreError as e:
            if e.reason != "NotFound":   # only "it is not there" lets a create go on
                raise
        else:
            raise already_exists(key)
        md = dict(obj.get("metadata") or {})
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", rfc3339())
        md.pop("resourceVersion", None)
        return {**obj, "metadata": md}

    async def update(self, key: str, obj: dict, expect_rv: str | None = None) -> dict:
        cur = await self._current(key, expect_rv)
        cmd = cur.get("metadata") or {}
        md = dict(obj.get("metadata") or {})
        md["resourceVersion"] = cmd.get("resourceVersion")
        md.setdefault("uid", cmd.get("uid"))
        md.setdefault("creationTimestamp", cmd.get("creationTimestamp"))
        return {**obj, "metadata": md}

    async def delete(self, key: str, expect_rv: str | None = None) -> dict:
        return await self._current(key, expect_rv)
