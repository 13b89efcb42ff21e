"""Kubeconfig files: find, load and resolve one to (server, token, CA file); write skiff's own.

Resolution follows kubectl: the explicit path (``--kubeconfig``) wins, then ``$KUBECONFIG``
(a ``:``-separated list; the first file that exists is used — skiff does not merge), then
``~/.skiff/kubeconfig``. Inside the file, the context is the one asked for or
``current-context`` (or the only context when there is one); its cluster gives ``server`` and
``certificate-authority`` / ``certificate-authority-data`` / ``insecure-skip-tls-verify``, its
user gives ``token`` or ``tokenFile``. Relative file paths are relative to the kubeconfig's
directory, as in client-go.
"""
from __future__ import annotations

import atexit
import base64
import os
import tempfile
from typing import Any, NamedTuple

import yaml

from skiff.errors import SkiffError

__all__ = ["KubeconfigError", "ClusterAccess", "default_kubeconfig_path", "find_kubeconfig",
           "load_kubeconfig", "resolve_kubeconfig", "write_kubeconfig"]

DEFAULT_PATH = os.path.join("~", ".skiff", "kubeconfig")


class KubeconfigError(SkiffError):
    """A kubeconfig that is missing or cannot be used."""


class ClusterAccess(NamedTuple):
    server: str
    token: str | None
    ca_file: str | None
    insecure: bool = False


def default_kubeconfig_path() -> str:
    return os.path.expanduser(DEFAULT_PATH)


def find_kubeconfig(path: str | None = None) -> str:
    """The kubeconfig file to use: ``path`` > $KUBECONFIG > ~/.skiff/kubeconfig."""
    if path:
        return os.path.expanduser(path)
    env = os.environ.get("KUBECONFIG", "")
    entries = [os.path.expanduser(p) for p in env.split(os.pathsep) if p]
    for p in entries:
        if os.path.exists(p):
            return p
    if entries:
        return entries[0]
    return default_kubeconfig_path()


def load_kubeconfig(path: str | None = None) -> tuple[str, dict[str, Any]]:
    """Read and parse the kubeconfig chosen by ``find_kubeconfig(path)`` -> (path, document)."""
    p = find_kubeconfig(path)
    try:
        with open(p, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise KubeconfigError(f"kubeconfig {p}: no such file (use --kubeconfig or $KUBECONFIG)") from None
    except OSError as e:
        raise KubeconfigError(f"kubeconfig {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {p}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {p}: not a kubeconfig (expected a mapping)")
    return p, doc


def _named(doc: dict, section: str, name: str, path: str) -> dict:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            key = section[:-1]           # clusters -> cluster
            val = entry.get(key)
            return val if isinstance(val, dict) else {}
    raise KubeconfigError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")


def _rel(path: str, base_dir: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


_ca_tmpfiles: list[str] = []


def _ca_data_file(data: str) -> str:
    raw = base64.b64decode(data)
    fd, p = tempfile.mkstemp(prefix="skiff-ca-", suffix=".crt")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    if not _ca_tmpfiles:
        atexit.register(lambda: [os.path.exists(x) and os.unlink(x) for x in _ca_tmpfiles])
    _ca_tmpfiles.append(p)
    return p


def resolve_kubeconfig(path: str | None = None, context: str | None = None) -> ClusterAccess:
    """Load the kubeconfig and resolve ``context`` (default: current-context) to a ClusterAccess,
    which unpacks as ``server, token, ca_file, insecure``."""
    p, doc = load_kubeconfig(path)
    base_dir = os.path.dirname(os.path.abspath(p))
    ctx_name = context or doc.get("current-context")
    contexts = [c for c in doc.get("contexts") or [] if isinstance(c, dict)]
    if not ctx_name:
        if len(contexts) == 1:
            ctx_name = contexts[0].get("name")
        else:
            raise KubeconfigError(f"kubeconfig {p}: current-context is not set")
    ctx = _named(doc, "contexts", ctx_name, p)
    cluster_name = ctx.get("cluster")
    if not cluster_name:
        raise KubeconfigError(f"kubeconfig {p}: context {ctx_name!r} names no cluster")
    cluster = _named(doc, "clusters", cluster_name, p)
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"kubeconfig {p}: cluster {cluster_name!r} has no server")
    ca_file = None
    if cluster.get("certificate-authority"):
        ca_file = _rel(cluster["certificate-authority"], base_dir)
    elif cluster.get("certificate-authority-data"):
        ca_file = _ca_data_file(cluster["certificate-authority-data"])
    insecure = bool(cluster.get("insecure-skip-tls-verify", False))
    token = None
    user_name = ctx.get("user")
    if user_name:
        user = _named(doc, "users", user_name, p)
        token = user.get("token")
        if not token and user.get("tokenFile"):
            tf = _rel(user["tokenFile"], base_dir)
            try:
                with open(tf, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as e:
                raise KubeconfigError(f"kubeconfig {p}: user {user_name!r}: tokenFile {tf}: {e.strerror}") from None
    return ClusterAccess(server.rstrip("/"), token or None, ca_file, insecure)


def write_kubeconfig(path: str, server: str, token: str, name: str = "skiff",
                     ca_file: str | None = None) -> None:
    """Write a one-cluster, one-user kubeconfig whose current-context is ``name``, atomically
    (temporary file + rename in the same directory) and readable only by its owner (0600)."""
    path = os.path.expanduser(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, mode=0o700, exist_ok=True)
    cluster: dict[str, Any] = {"server": server}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    data = yaml.safe_dump(doc, sort_keys=False).encode()
    from skiff.runtime.fsutil import atomic_write
    atomic_write(path, data, mode=0o600)
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
