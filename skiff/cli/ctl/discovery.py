"""What the server serves beyond skiff's static table: the custom resources of its CRDs.

skiffctl knows the built-in resources from :data:`skiff.api.resources.RESOURCES`; a name it
does not know there (``crontabs``, ``ct``, ``crontab.stable.example.com``), a category, or a
manifest's unknown kind makes it read the server's discovery once (``/apis`` and each group's
preferred version, as kubectl does) and add what it finds to that table for this run.
"""
from __future__ import annotations

CONTEXT = None      # the command's Context (main sets it): discovery needs its client
_learned = False


def learn() -> bool:
    """Read discovery once per run; True when it was read now (so a caller may look again)."""
    global _learned
    if _learned or CONTEXT is None:
        return False
    _learned = True
    from skiff.api.errors import APIError
    from skiff.api.resources import RESOURCES, Resource
    client = CONTEXT.client()
    try:
        groups = client.request("GET", "/apis").get("groups") or []
    except (APIError, OSError):
        return False
    known = {(r.group, r.version) for r in RESOURCES.values()}
    learned: list = []
    for g in groups:
        pv = (g.get("preferredVersion") or {}).get("version")
        if not pv or (g.get("name"), pv) in known:
            continue
        try:
            lst = client.request("GET", f"/apis/{g['name']}/{pv}")
        except (APIError, OSError):
            continue
        entries = lst.get("resources") or []
        subs: dict[str, list[str]] = {}
        for e in entries:
            base, _, sub = (e.get("name") or "").partition("/")
            if sub:
                subs.setdefault(base, []).append(sub)
        for e in entries:
            name = e.get("name") or ""
            if "/" in name or not name or name in RESOURCES:
                continue
            learned.append(name)
            RESOURCES[name] = Resource(name, e.get("kind") or "", g["name"], pv, bool(e.get("namespaced")),
                                       e.get("singularName") or (e.get("kind") or "").lower(),
                                       tuple(e.get("shortNames") or ()), tuple(e.get("categories") or ()),
                                       tuple(subs.get(name, ())), tuple(e.get("verbs") or ()))
    if learned:
        _printer_columns(client, learned)
    return True


def _printer_columns(client, plurals: list) -> None:
    """The Table columns of custom resources (their CRDs' additionalPrinterColumns), so that
    ``get`` prints what kubectl prints; without the right to read CRDs, NAME and AGE."""
    from types import SimpleNamespace
    from skiff.api import tables as T
    from skiff.api.errors import APIError
    from skiff.api.resources import RESOURCES
    from skiff.controller.crd.printing import cells_for, columns_for
    try:
        crds = client.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions").get("items") or []
    except (APIError, OSError):
        return
    for crd in crds:
        spec = crd.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural")
        r = RESOURCES.get(plural)
        if plural not in plurals or r is None or r.group != spec.get("group"):
            continue
        v = next((v for v in spec.get("versions") or [] if v.get("name") == r.version), None)
        if v is None:
            continue
        ck = SimpleNamespace(columns=list(v.get("additionalPrinterColumns") or []))
        T.COLUMNS[plural] = columns_for(ck)
        T.CELLS[plural] = cells_for(ck)


def lookup(name: str):
    """:func:`skiff.api.resources.lookup`, reading discovery when the name is unknown."""
    from skiff.api.resources import lookup as static_lookup
    r = static_lookup(name)
    if r is None and learn():
        r = static_lookup(name)
    return r


def resource_for_kind(api_version: str, kind: str):
    """The resource of a manifest's kind: built in (in its stored version or one the server
    serves by conversion, such as autoscaling/v1 HorizontalPodAutoscalers), or custom."""
    from skiff.api.resources import served_resource_for_kind as static
    r = static(api_version, kind)
    if r is None and learn():
        r = static(api_version, kind)
    return r


def load_manifests(paths: list[str]) -> list:
    """:func:`skiff.api.manifests.load_manifests`, where the documents of kinds skiff has no
    schema for on this side (custom resources, CustomResourceDefinitions) are left to the
    server to validate."""
    from skiff.api.manifests import parse_manifests, validate_all
    from skiff.api.resources import CONVERTED_VERSIONS
    from skiff.api.validation import kind_of
    docs = parse_manifests(paths)
    custom = [d for d in docs if isinstance(d.obj, dict) and kind_of(d.obj) is None
              and d.obj.get("apiVersion") and d.obj.get("kind")
              and (d.obj.get("apiVersion"), d.obj.get("kind")) not in CONVERTED_VERSIONS
              and ((d.obj.get("apiVersion"), d.obj.get("kind")) == ("apiextensions.k8s.io/v1",
                                                                    "CustomResourceDefinition")
                   or resource_for_kind(d.obj["apiVersion"], d.obj["kind"]) is not None
                   or "." in d.obj["apiVersion"].partition("/")[0])]
    validate_all([d for d in docs if d not in custom])
    return docs
