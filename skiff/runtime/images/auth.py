"""Registry credentials, stored like docker's ``~/.docker/config.json``.

The file is ``$SKIFF_CONFIG/config.json`` when ``SKIFF_CONFIG`` is set, else
``$HOME/.skiff/config.json``::

    {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}

The directory is made with mode 0700 and the file is written with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os

from skiff.errors import SkiffError

HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io", HUB_KEY)


def config_dir() -> str:
    d = os.environ.get("SKIFF_CONFIG")
    if d:
        return d
    return os.path.join(os.path.expanduser("~"), ".skiff")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def registry_key(host: str) -> str:
    """The key credentials of ``host`` are stored under (docker's for the Hub)."""
    host = host.strip()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix) and host != HUB_KEY:
            host = host[len(prefix):].rstrip("/")
    return HUB_KEY if host in _HUB_HOSTS else host


def _load() -> dict:
    path = config_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise SkiffError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        cfg = json.loads(data) if data.strip() else {}
    except ValueError as e:
        raise SkiffError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise SkiffError(f"{path} must hold a JSON object")
    return cfg


def _save(cfg: dict) -> None:
    d = config_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    from ..fsutil import atomic_write
    atomic_write(config_path(), json.dumps(cfg, indent="\t") + "\n", mode=0o600)


def get_credentials(host: str) -> tuple[str, str] | None:
    """(user, password) stored for ``host``, or None."""
    entry = (_load().get("auths") or {}).get(registry_key(host))
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise SkiffError(f"invalid credentials for {host} in {config_path()}") from None
        return user, password
    if entry.get("username"):
        return entry["username"], entry.get("password", "")
    return None


def store_credentials(host: str, user: str, password: str) -> None:
    cfg = _load()
    auths = cfg.setdefault("auths", {})
    auths[registry_key(host)] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _save(cfg)


def erase_credentials(host: str) -> bool:
    """Forget ``host``'s credentials; False when none were stored."""
    cfg = _load()
    auths = cfg.get("auths") or {}
    if registry_key(host) not in auths:
        return False
    del auths[registry_key(host)]
    _save(cfg)
    return True
