"""Helpers shared by the commands: resource type resolution and KIND NAME / KIND/NAME arguments."""
from __future__ import annotations

from .client import CtlError


def resolve(kind: str):
    from .discovery import lookup     # the static table, then the server's discovery (custom resources)
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
    from .discovery import learn
    r = lookup(kind)
    if r is not None:
        return [r]
    learn()     # a category takes in the server's custom resources too
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


def pod_for(client, ns: str, ref: str) -> dict:
    """The pod a command on one container means: ``NAME`` or ``pod/NAME``, or for
    ``deploy/NAME``, ``rs/NAME``, ``job/NAME``, ``ds/NAME`` a pod its selector matches, running
    and ready ones first (as kubectl picks one for logs and exec)."""
    if "/" not in ref:
        return client.get("pods", ref, ns)
    kind, _, name = ref.partition("/")
    r = resolve(kind)
    if r.plural == "pods":
        return client.get("pods", name, ns)
    if r.plural not in ("deployments", "replicasets", "jobs", "daemonsets", "statefulsets"):
        raise CtlError(f"error: cannot attach to {r.kind.lower()}/{name}: selector for "
                       f"*{r.kind} not implemented")
    obj = client.get(r.plural, name, ns)
    sel = ((obj.get("spec") or {}).get("selector") or {})
    from skiff.api.validation import label_selector_matches
    pods = [p for p in client.list("pods", ns).get("items") or []
            if label_selector_matches(sel, (p.get("metadata") or {}).get("labels"))
            and not (p.get("metadata") or {}).get("deletionTimestamp")]
    if not pods:
        raise CtlError(f"error: no pods found for {r.singular or r.kind.lower()}/{name}")

    def rank(p):
        st = p.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
        return (st.get("phase") != "Running", not ready, (p.get("metadata") or {}).get("creationTimestamp", ""))
    return sorted(pods, key=rank)[0]


def default_container(pod: dict, container: str | None) -> str:
    """``container``, or the pod's default (its kubectl.kubernetes.io/default-container, else
    the first), saying so on stderr when there was a choice, as kubectl does."""
    import sys
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if container or not names:
        return container or ""
    if len(names) > 1:
        default = ((pod.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        container = default if default in names else names[0]
        print(f'Defaulted container "{container}" out of: {", ".join(names)}', file=sys.stderr)
        return container
    return names[0]


# ------------------------------------------------------------------ --dry-run=none|client|server

def dry_run_flag():
    """kubectl's ``--dry-run``: it takes a value (``--dry-run=server``); bare, it is an error."""
    from .flags import Flag
    return Flag("--dry-run", "dry_run", "optstr", default="none", noopt="unchanged", metavar="=none|client|server",
                help='"none" (default), "client" (only print what would be sent, without sending it) or "server" '
                     "(the server checks the request and persists nothing)")


def dry_run(opts: dict) -> str:
    """The ``--dry-run`` strategy: "none", "client" or "server" (kubectl's GetDryRunStrategy)."""
    v = opts.get("dry_run") or "none"
    if v == "unchanged":
        raise CtlError('error: --dry-run flag without a value was specified. A value must be provided: '
                       '"none", "server", or "client".')
    if v not in ("none", "client", "server"):
        raise CtlError(f'error: Invalid dry-run value ({v}). Must be "none", "server", or "client".')
    return v


def dry_run_suffix(strategy: str) -> str:
    """What kubectl appends to "pod/web created" and the like."""
    return {"client": " (dry run)", "server": " (server dry run)"}.get(strategy, "")


def dry_run_params(strategy: str) -> dict:
    """The query parameters of a write: ``dryRun=All`` for a server dry run."""
    return {"dryRun": "All"} if strategy == "server" else {}
