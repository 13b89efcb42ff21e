"""How an agent comes to trust the API server's certificate (the k3s way).

A join token may carry the SHA-256 of the cluster's CA bundle: ``K10<64 hex>::<secret>``
(``skiffctl token create --node`` prints it so). On first contact the agent fetches the CA from
the server's public ``/cacerts`` without verifying the connection, checks that its hash is the
one in the token, and keeps it (``<root>/agent/ca.crt``); every later connection verifies
against that CA only. A token without a hash needs ``--ca-file`` (or a CA saved earlier) for an
``https://`` server.
"""
from __future__ import annotations

import hashlib
import os
import re
import ssl
import urllib.error
import urllib.request

from skiff.errors import SkiffError

__all__ = ["TrustError", "split_token", "secure_token", "ensure_ca"]

_SECURE = re.compile(r"^K10([0-9a-f]{64})::(.+)$")


class TrustError(SkiffError):
    """The server's CA cannot be found or does not match the join token."""


def secure_token(ca_hash: str, secret: str) -> str:
    return f"K10{ca_hash}::{secret}"


def split_token(token: str) -> tuple[str | None, str]:
    """(CA hash or None, the secret to send as the bearer token)."""
    m = _SECURE.match(token or "")
    if m:
        return m.group(1), m.group(2)
    return None, token


def fetch_cacerts(server: str, timeout: float = 10) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # checked against the token's hash below, never used unchecked
    url = server.rstrip("/") + "/cacerts"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return r.read()
    except (urllib.error.URLError, OSError) as e:
        raise TrustError(f"cannot fetch the cluster CA from {url}: {getattr(e, 'reason', e)}") from None


def ensure_ca(server: str, token: str, dest: str, ca_file: str | None = None) -> str | None:
    """The CA file to verify ``server`` with (None for plain http). Order: an explicit
    ``ca_file``; the CA pinned by the token's hash (fetched and saved to ``dest`` when ``dest``
    holds no CA with that hash); a CA saved at ``dest`` by an earlier join."""
    if not server.startswith("https:"):
        return None
    if ca_file:
        if not os.path.exists(ca_file):
            raise TrustError(f"--ca-file {ca_file}: no such file")
        return ca_file
    want, _ = split_token(token)
    saved = None
    try:
        with open(dest, "rb") as f:
            saved = f.read()
    except FileNotFoundError:
        pass
    if want is None:
        if saved is not None:
            return dest
        raise TrustError(f"cannot verify {server}: the token carries no CA hash (K10<sha256>::...) "
                         f"and no --ca-file was given")
    if saved is not None and hashlib.sha256(saved).hexdigest() == want:
        return dest
    pem = fetch_cacerts(server)
    got = hashlib.sha256(pem).hexdigest()
    if got != want:
        raise TrustError(f"the CA served by {server} has hash {got}, the join token says {want}: "
                         f"refusing to join")
    from skiff.runtime.fsutil import atomic_write
    os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
    atomic_write(dest, pem, mode=0o644)
    return dest
