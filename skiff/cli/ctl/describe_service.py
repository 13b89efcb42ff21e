"""``describe service|endpoints|endpointslice``: kubectl's layouts (its describeService, which
reads the service's EndpointSlices, describeEndpoints and describeEndpointSlice)."""
from __future__ import annotations

from skiff.api.tables import label_string, host_port

from . import printers as P
from .describe import W, annotations, events_section, kv_map

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_MAX = 3


def slice_endpoints(slices: list[dict] | None, port_name: str | None) -> str:
    """The Endpoints line of one service port: ip:port of the ready endpoints of the slices'
    port with that name (addresses only for slices without ports), 3 then "+ N more...";
    <none> when the service has no slices."""
    if not slices:
        return "<none>"
    listed: list[str] = []
    count = 0
    for es in slices:
        ready = [e for e in es.get("endpoints") or [] if isinstance(e, dict) and e.get("addresses")
                 and (e.get("conditions") or {}).get("ready") is not False]
        ports = [p for p in es.get("ports") or [] if isinstance(p, dict)]
        if not ports:
            for e in ready:
                if len(listed) < _MAX:
                    listed.append(e["addresses"][0])
                count += 1
            continue
        for p in ports:
            if port_name is not None and (p.get("name") or "") != port_name:
                continue
            for e in ready:
                if len(listed) < _MAX:
                    listed.append(host_port(e["addresses"][0], p.get("port")))
                count += 1
    text = ",".join(listed)
    return f"{text} + {count - _MAX} more..." if count > _MAX else text


def describe_service(svc: dict, events, slices: list[dict] | None) -> str:
    md, spec = P.meta(svc), svc.get("spec") or {}
    st = svc.get("status") or {}
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"Selector:\t{label_string(spec.get('selector'))}")
    w.w(0, f"Type:\t{spec.get('type', '')}")
    if spec.get("ipFamilyPolicy"):
        w.w(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}")
    w.w(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or '<none>'}")
    w.w(0, f"IP:\t{spec.get('clusterIP', '')}")
    w.w(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or '<none>'}")
    if spec.get("externalIPs"):
        w.w(0, f"External IPs:\t{','.join(spec['externalIPs'])}")
    if spec.get("loadBalancerIP"):
        w.w(0, f"IP:\t{spec['loadBalancerIP']}")
    if spec.get("externalName"):
        w.w(0, f"External Name:\t{spec['externalName']}")
    if spec.get("loadBalancerClass"):
        w.w(0, f"LoadBalancer Class:\t{spec['loadBalancerClass']}")
    ingress = ((st.get("loadBalancer") or {}).get("ingress")) or []
    if ingress:
        w.w(0, "LoadBalancer Ingress:\t" + ", ".join(
            (i.get("ip") or i.get("hostname") or "") + (f" ({i['ipMode']})" if i.get("ipMode") else "")
            for i in ingress if isinstance(i, dict)))
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        proto = p.get("protocol") or "TCP"
        w.w(0, f"Port:\t{name}\t{p.get('port')}/{proto}")
        w.w(0, f"TargetPort:\t{p.get('targetPort', p.get('port'))}/{proto}")
        if p.get("nodePort"):
            w.w(0, f"NodePort:\t{name}\t{p['nodePort']}/{proto}")
        w.w(0, f"Endpoints:\t{slice_endpoints(slices, p.get('name') or '')}")
    w.w(0, f"Session Affinity:\t{spec.get('sessionAffinity', '')}")
    if spec.get("externalTrafficPolicy"):
        w.w(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}")
    if spec.get("internalTrafficPolicy"):
        w.w(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}")
    if spec.get("healthCheckNodePort"):
        w.w(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}")
    if spec.get("loadBalancerSourceRanges"):
        w.w(0, f"LoadBalancer Source Ranges:\t{','.join(spec['loadBalancerSourceRanges'])}")
    if spec.get("trafficDistribution"):
        w.w(0, f"Traffic Distribution:\t{spec['trafficDistribution']}")
    events_section(w, events)
    return w.render()


def _ports_table(w: W, ports: list, level: int) -> None:
    w.w(level, "Name\tPort\tProtocol")
    w.w(level, "----\t----\t--------")
    for p in ports:
        if isinstance(p, dict):
            port = p.get("port")
            w.w(level, f"{p.get('name') or '<unset>'}\t{'<unset>' if port is None else port}\t"
                       f"{p.get('protocol') or 'TCP'}")


def describe_endpoints(ep: dict, events) -> str:
    md = P.meta(ep)
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, "Subsets:")
    for ss in ep.get("subsets") or []:
        ready = ",".join(a.get("ip", "") for a in ss.get("addresses") or [])
        not_ready = ",".join(a.get("ip", "") for a in ss.get("notReadyAddresses") or [])
        w.w(1, f"Addresses:\t{ready or '<none>'}")
        w.w(1, f"NotReadyAddresses:\t{not_ready or '<none>'}")
        if ss.get("ports"):
            w.w(1, "Ports:")
            _ports_table(w, ss["ports"], 2)
        else:
            w.w(1, "Ports:\t<none>")
        w.w(0, "")
    events_section(w, events)
    return w.render()


def describe_endpointslice(es: dict, events) -> str:
    md = P.meta(es)
    w = W()
    w.w(0, f"Name:\t{md.get('name', '')}")
    w.w(0, f"Namespace:\t{md.get('namespace', '')}")
    kv_map(w, "Labels", md.get("labels"))
    annotations(w, md.get("annotations"))
    w.w(0, f"AddressType:\t{es.get('addressType', '')}")
    if es.get("ports"):
        w.w(0, "Ports:")
        _ports_table(w, es["ports"], 1)
    else:
        w.w(0, "Ports:\t<unset>")
    if es.get("endpoints"):
        w.w(0, "Endpoints:")
        for e in es["endpoints"]:
            w.w(1, f"- Addresses:\t{','.join(e.get('addresses') or [])}")
            w.w(2, "Conditions:")
            for c in ("ready", "serving", "terminating"):      # the ones that are set
                v = (e.get("conditions") or {}).get(c)
                if v is not None:
                    w.w(3, f"{c.capitalize()}:\t{str(v).lower()}")
            w.w(2, f"Hostname:\t{e.get('hostname') or '<unset>'}")
            ref = e.get("targetRef")
            if ref:
                w.w(2, f"TargetRef:\t{ref.get('kind', '')}/{ref.get('name', '')}")
            w.w(2, f"NodeName:\t{e.get('nodeName') or '<unset>'}")
            w.w(2, f"Zone:\t{e.get('zone') or '<unset>'}")
    else:
        w.w(0, "Endpoints:\t<none>")
    events_section(w, events)
    return w.render()
