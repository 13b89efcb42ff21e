"""Storage for the control plane: the :class:`Storage` interface, the SQLite backend and the
in-memory :class:`WatchCache` that serves lists and watches."""
from .base import (ADDED, DELETED, MODIFIED, Storage, StoreError, WatchCache, key_for,
                   prefix_for)
from .sqlite import SqliteStore


__all__ = ["ADDED", "DELETED", "MODIFIED", "Storage", "StoreError", "SqliteStore",
           "WatchCache", "key_for", "prefix_for"]
