"""Helpers shared by the commands: resource type resolution and KIND NAME / KIND/NAME arguments."""
from __future__ import annotations

from .client import CtlError


def resolve(kind: str):
    from skiff.api.resources import lookup
    r = lookup(kind)
    if r is None:
        raise CtlError(f'error: the server doesn\'t have a resource type "{kind}"')
    return r


# the order kubectl prints a category's kinds in (its discovery order)
_CATEGORY_ORDER = ["pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets",
                   "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs"]


def expand(kind: str) -> list:
    """A kind name, or a category ("all") -> the resources it names."""
    from skiff.api.resources import RESOURCES, lookup
    r = lookup(kind)
    if r is not None:
        return [r]
    cat = kind.lower()
    members = [r for r in RESOURCES.values() if cat in (r.categories or ())]
    if not members:
        return [resolve(kind)]
    order = {p: i for i, p in enumerate(_CATEGORY_ORDER)}
    return sorted(members, key=lambda r: (order.get(r.plural, len(order)), r.plural))


def targets(args: list[str], allow_no_name: bool = True) -> list[tuple[object, list[str]]]:
    """`pods web db`, `pods,nodes`, `pod/web node/n1` -> [(Resource, [names])]."""
    if not args:
        raise CtlError("error: you must specify the type of resource to get")
    if any("/" in a for a in args):
        out: list[tuple[object, list[str]]] = []
        for a in args:
            if "/" not in a:
                raise CtlError("error: there is no need to specify a resource type as a separate argument "
                               "when passing arguments in resource/name form (e.g. 'skiffctl get resource/<resource_name>' "
                               "instead of 'skiffctl get resource resource/<resource_name>'")
            k, _, n = a.partition("/")
            r = resolve(k)
            if out and out[-1][0] is r:
                out[-1][1].append(n)
            else:
                out.append((r, [n]))
        return out
    kinds = [r for k in args[0].split(",") if k for r in expand(k)]
    names = args[1:]
    if names and len(kinds) > 1:
        raise CtlError("error: arguments in resource/name form must have a single resource and name")
    return [(r, list(names)) for r in kinds]


def ns_for(res, ctx, all_namespaces: bool = False):
    if not res.namespaced or all_namespaces:
        return None
    return ctx.namespace
