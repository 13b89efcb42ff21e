"""``skiffctl describe resourcequota`` and ``describe limitrange``, laid out as kubectl's
(describeQuota, describeLimitRange)."""
from __future__ import annotations

from skiff.api.validation_limits import show_quantity

from .describe import W
from . import printers as P


def describe_quota(q: dict) -> str:
    md, spec, st = P.meta(q), q.get("spec") or {}, q.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    if spec.get("scopes"):
        w.w(0, f"Scopes:\t{', '.join(spec['scopes'])}")
    w.w(0, "Resource\tUsed\tHard")
    w.w(0, "--------\t----\t----")
    used, hard = st.get("used") or {}, st.get("hard") or {}
    for k in sorted(hard):
        w.w(0, f"{k}\t{show_quantity(used.get(k, 0))}\t{show_quantity(hard[k])}")
    return w.render()


def describe_limitrange(lr: dict) -> str:
    md = P.meta(lr)
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    w.w(0, "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio")
    w.w(0, "----\t--------\t---\t---\t---------------\t-------------\t-----------------------")
    fields = ("min", "max", "defaultRequest", "default", "maxLimitRequestRatio")
    for item in (lr.get("spec") or {}).get("limits") or ():
        keys = sorted(set().union(*((item.get(f) or {}) for f in fields)))
        for k in keys:
            cells = [show_quantity(item[f][k]) if k in (item.get(f) or {}) else "-" for f in fields]
            w.w(0, "\t".join([item.get("type", ""), k, *cells]))
    return w.render()
