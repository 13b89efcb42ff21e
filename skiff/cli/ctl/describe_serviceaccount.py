"""``skiffctl describe serviceaccount``, laid out as kubectl's: the secrets a ServiceAccount names
(those missing marked "(not found)") and its token secrets (skiff makes none, but a user's
``kubernetes.io/service-account-token`` secret for it is listed)."""
from __future__ import annotations

from .client import APIError
from .describe import W, annotations, events_section, kv_map
from . import printers as P

TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"

# kubectl pads its headers to one width itself and prints them in this (sorted) order
_HEADERS = ("Image pull secrets:", "Mountable secrets: ", "Tokens:            ")


def account_secrets(client, sa: dict) -> list[dict] | None:
    """The secrets of the ServiceAccount's namespace, or None when they cannot be listed (kubectl
    then describes without the "(not found)" marks)."""
    try:
        return client.list("secrets", P.meta(sa).get("namespace")).get("items") or []
    except APIError:
        return None


def describe_serviceaccount(sa: dict, events, secrets: list[dict] | None) -> str:
    md = P.meta(sa)
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    pulls = [s.get("name", "") for s in sa.get("imagePullSecrets") or [] if isinstance(s, dict)]
    mounts = [s.get("name", "") for s in sa.get("secrets") or [] if isinstance(s, dict)]
    tokens: list[str] = []
    missing: set[str] = set()
    if secrets is not None:
        for s in secrets:
            ann = P.meta(s).get("annotations") or {}
            if s.get("type") == TOKEN_TYPE and ann.get(SA_NAME_ANNOTATION) == md.get("name") \
                    and ann.get(SA_UID_ANNOTATION) == md.get("uid"):
                tokens.append(P.meta(s).get("name", ""))
        have = {P.meta(s).get("name") for s in secrets}
        missing = {n for n in pulls + mounts if n not in have}
    for header, names in zip(_HEADERS, (pulls, mounts, tokens)):
        if not names:
            w.w(0, f"{header}\t<none>")
            continue
        prefix = header
        for n in names:
            w.w(0, f"{prefix}\t{n} (not found)" if n in missing else f"{prefix}\t{n}")
            prefix = " " * len(header)
    if events is not None:
        events_section(w, events)
    return w.render()
