"""core/v1 Services and Endpoints and discovery.k8s.io/v1 EndpointSlices in the API: the RESOURCES
entries, the schemas (unknown fields refused), Kubernetes' defaults, its validation rules and
messages, the update rules; the Tables kubectl prints; protobuf bodies (kubectl create
service); skiffctl's describe; and over the REST API: create, dry run, the Table, a PUT
without the cluster IP, strategic merge patches of the ports."""
from __future__ import annotations

import copy
import json

import pytest

from skiff.api import tables as T
from skiff.api.resources import RESOURCES, lookup, path_for
from skiff.api.validation import ValidationError, validate, validate_update
from skiff.controller.admission import admit
from skiff.controller.patch import strategic_merge_patch
from tests.unit.apitest import api_test_client

# https://kubernetes.io/docs/concepts/services-networking/service/ (service/simple-service.yaml)
DOCS_SERVICE = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "my-service"},
    "spec": {"selector": {"app.kubernetes.io/name": "MyApp"},
             "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}]},
}


def svc(**spec):
    s = copy.deepcopy(DOCS_SERVICE)
    s["spec"].update(spec)
    return s


def causes(obj):
    with pytest.raises(ValidationError) as ei:
        admit(obj)
    return {c["field"]: c["message"] for c in ei.value.causes}


def test_resources():
    s, e, es = RESOURCES["services"], RESOURCES["endpoints"], RESOURCES["endpointslices"]
    assert (s.group, s.kind, s.short_names, s.categories, s.subresources) == ("", "Service", ("svc",), ("all",),
                                                                             ("status",))
    assert (e.kind, e.short_names, e.categories) == ("Endpoints", ("ep",), ())
    assert (es.group, es.version, es.kind) == ("discovery.k8s.io", "v1", "EndpointSlice")
    assert lookup("svc") is s and lookup("ep") is e and lookup("endpointslices.discovery.k8s.io") is es
    assert path_for("endpointslices", "default") == "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


# -- defaults --------------------------------------------------------------------------------------

def test_defaults_cluster_ip():
    out, warns = admit(svc(ports=[{"name": "a", "port": 80},
                                  {"name": "b", "port": 53, "protocol": "UDP", "targetPort": "dns"}]))
    s = out["spec"]
    assert warns == []
    assert (s["type"], s["sessionAffinity"], s["internalTrafficPolicy"]) == ("ClusterIP", "None", "Cluster")
    assert "externalTrafficPolicy" not in s and "sessionAffinityConfig" not in s
    assert s["ports"][0] == {"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80}
    assert s["ports"][1]["targetPort"] == "dns"
    # what the allocator fills in later is not there yet
    assert "clusterIP" not in s and "ipFamilies" not in s


def test_defaults_by_type():
    s = admit(svc(type="NodePort"))[0]["spec"]
    assert (s["externalTrafficPolicy"], s["internalTrafficPolicy"]) == ("Cluster", "Cluster")
    s = admit(svc(type="LoadBalancer"))[0]["spec"]
    assert s["allocateLoadBalancerNodePorts"] is True and s["externalTrafficPolicy"] == "Cluster"
    s = admit(svc(externalIPs=["192.0.2.7"]))[0]["spec"]
    assert s["externalTrafficPolicy"] == "Cluster"        # externally accessible
    en = svc(type="ExternalName", externalName="db.example.com")
    del en["spec"]["ports"]
    s = admit(en)[0]["spec"]
    assert "internalTrafficPolicy" not in s and "externalTrafficPolicy" not in s
    s = admit(svc(sessionAffinity="ClientIP"))[0]["spec"]
    assert s["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    s = admit(svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))[0]["spec"]
    assert s["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 60
    # null is unset; clusterIPs mirrors clusterIP; a config with affinity None is dropped
    s = admit(svc(clusterIP="10.96.0.10", type=None, sessionAffinityConfig={"clientIP": {}}))[0]["spec"]
    assert s["type"] == "ClusterIP" and s["clusterIPs"] == ["10.96.0.10"] and "sessionAffinityConfig" not in s
    s = admit(svc(clusterIP="None"))[0]["spec"]
    assert s["clusterIPs"] == ["None"]


def test_endpoints_and_slice_defaults():
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
          "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]}
    assert admit(ep)[0]["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1"},
          "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 80}]}
    assert admit(es)[0]["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


# -- validation ------------------------------------------------------------------------------------

def test_ports():
    c = causes(svc(ports=[{"port": 80}, {"port": 81}]))
    assert c == {"spec.ports[0].name": "Required value", "spec.ports[1].name": "Required value"}
    c = causes(svc(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}]))
    assert c == {"spec.ports[1].name": 'Duplicate value: "http"'}
    c = causes(svc(ports=[{"name": "Web_1", "port": 0, "targetPort": 70000}]))
    assert c["spec.ports[0].name"].startswith('Invalid value: "Web_1": a lowercase RFC 1123 label')
    assert c["spec.ports[0].port"] == "Invalid value: 0: must be between 1 and 65535, inclusive"
    assert c["spec.ports[0].targetPort"] == "Invalid value: 70000: must be between 1 and 65535, inclusive"
    with pytest.raises(ValidationError) as ei:
        admit(svc(ports=[{"port": 80, "targetPort": "my--port-name-too-long"}]))
    assert [x["message"] for x in ei.value.causes] == [
        'Invalid value: "my--port-name-too-long": must be no more than 15 characters',
        'Invalid value: "my--port-name-too-long": must not contain consecutive hyphens']
    assert causes(svc(ports=[{"port": 80, "targetPort": "8080"}])) == {
        "spec.ports[0].targetPort": 'Invalid value: "8080": must contain at least one letter (a-z)'}
    c = causes(svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}, {"name": "c", "port": 80,
                                                                                  "protocol": "UDP"}]))
    assert c == {"spec.ports[1]": 'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
                                  'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, '
                                  'IntVal:0, StrVal:""}, NodePort:0}'}
    assert causes(svc(ports=[{"port": 80, "protocol": "HTTP"}])) == {
        "spec.ports[0].protocol": 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'}
    assert causes(svc(ports=[{"port": 80, "appProtocol": "not valid"}]))["spec.ports[0].appProtocol"].startswith(
        'Invalid value: "not valid": name part must consist of')
    assert causes(svc(ports=[])) == {"spec.ports": "Required value"}


def test_type_rules():
    assert causes(svc(type="Magic")) == {"spec.type": 'Unsupported value: "Magic": supported values: '
                                                      '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'}
    en = svc(type="ExternalName")
    assert causes(en) == {"spec.externalName": "Required value"}
    assert causes(svc(type="ExternalName", externalName="Bad_Name")) == {
        "spec.externalName": 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
                             "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                             "character (e.g. 'example.com')"}
    admit(svc(type="ExternalName", externalName="db.example.com."))     # a trailing dot is fine
    c = causes(svc(type="ExternalName", externalName="db.example.com", clusterIP="10.96.0.5",
                   ipFamilyPolicy="SingleStack"))
    assert c == {"spec.clusterIPs": "Forbidden: may not be set for ExternalName services",
                 "spec.ipFamilyPolicy": "Forbidden: may not be set for ExternalName services"}
    assert causes(svc(type="NodePort", clusterIP="None")) == {
        "spec.clusterIPs[0]": 'Invalid value: "None": may not be set to \'None\' for NodePort services'}
    assert causes(svc(type="LoadBalancer", clusterIP="None")) == {
        "spec.clusterIPs[0]": 'Invalid value: "None": may not be set to \'None\' for LoadBalancer services'}
    assert causes(svc(ports=[{"port": 80, "nodePort": 30080}])) == {
        "spec.ports[0].nodePort": "Forbidden: may not be used when `type` is 'ClusterIP'"}
    c = causes(svc(type="NodePort", ports=[{"name": "a", "port": 80, "nodePort": 30080},
                                           {"name": "b", "port": 81, "nodePort": 30080}]))
    assert c == {"spec.ports[1].nodePort": "Duplicate value: 30080"}
    # a headless service needs no ports; LoadBalancer may not expose the kubelet's port
    headless = svc(clusterIP="None")
    del headless["spec"]["ports"]
    admit(headless)
    assert causes(svc(type="LoadBalancer", ports=[{"port": 10250}])) == {
        "spec.ports[0]": "Invalid value: 10250: may not expose port 10250 externally since it is used by kubelet"}
    # LoadBalancer: accepted without a warning (the ServiceLB controller serves it)
    _, warns = admit(svc(type="LoadBalancer"))
    assert warns == []
    assert causes(svc(allocateLoadBalancerNodePorts=False)) == {
        "spec.allocateLoadBalancerNodePorts": "Forbidden: may only be used when `type` is 'LoadBalancer'"}
    assert causes(svc(externalTrafficPolicy="Local")) == {
        "spec.externalTrafficPolicy": 'Invalid value: "Local": may only be set for externally-accessible services'}
    assert causes(svc(type="NodePort", healthCheckNodePort=30001)) == {
        "spec.healthCheckNodePort": "Invalid value: 30001: may only be set when `type` is 'LoadBalancer' and "
                                    "`externalTrafficPolicy` is 'Local'"}
    assert causes(svc(loadBalancerSourceRanges=["10.0.0.0/8"])) == {
        "spec.LoadBalancerSourceRanges": "Forbidden: may only be used when `type` is 'LoadBalancer'"}
    assert causes(svc(trafficDistribution="Anywhere")) == {
        "spec.trafficDistribution": 'Unsupported value: "Anywhere": supported values: "PreferClose"'}


def test_cluster_ips_selector_affinity_external_ips():
    assert causes(svc(clusterIP="10.96.0.300")) == {
        "spec.clusterIPs[0]": 'Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or '
                              '2001:db8::ffff)'}
    assert causes(svc(clusterIP="10.96.0.10", clusterIPs=["10.96.0.11"])) == {
        "spec.clusterIPs": 'Invalid value: []string{"10.96.0.11"}: first value must match `clusterIP`'}
    assert causes(svc(clusterIPs=["10.96.0.11"])) == {
        "spec.clusterIPs": 'Invalid value: []string{"10.96.0.11"}: must be empty when `clusterIP` is not specified'}
    assert causes(svc(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10", "10.96.0.11"])) == {
        "spec.clusterIPs": 'Invalid value: []string{"10.96.0.10", "10.96.0.11"}: may specify no more than one IP '
                           'for each IP family'}
    assert causes(svc(clusterIP="10.96.0.10", ipFamilies=["IPv6"])) == {
        "spec.clusterIPs[0]": 'Invalid value: "10.96.0.10": expected an IPv6 value as indicated by `ipFamilies[0]`'}
    c = causes(svc(selector={"app": "no spaces allowed", "bad key!": "x"}))
    assert set(c) == {"spec.selector"}
    assert causes(svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}})) == {
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds": "Invalid value: 0: must be greater than 0 and less "
                                                              "than 86400"}
    assert causes(svc(sessionAffinity="Sticky"))["spec.sessionAffinity"].startswith('Unsupported value: "Sticky"')
    c = causes(svc(externalIPs=["127.0.0.1", "nope"]))
    assert c == {"spec.externalIPs[0]": 'Invalid value: "127.0.0.1": may not be in the loopback range '
                                        '(127.0.0.0/8, ::1/128)',
                 "spec.externalIPs[1]": 'Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or '
                                        '2001:db8::ffff)'}


def test_names_and_unknown_fields():
    bad = svc()
    bad["metadata"]["name"] = "1web"
    assert causes(bad)["metadata.name"].startswith('Invalid value: "1web": a DNS-1035 label must consist of lower')
    assert causes(svc(clusterIp="10.96.0.1")) == {"spec.clusterIp": 'unknown field "spec.clusterIp"'}
    c = causes(svc(ports=[{"port": 80, "nodeport": 30001}]))
    assert c == {"spec.ports[0].nodeport": 'unknown field "spec.ports[0].nodeport"'}
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "1web"}, "subsets": [{"extra": 1}]}
    assert causes(ep) == {"subsets[0].extra": 'unknown field "subsets[0].extra"',
                          "subsets[0]": "Required value: must specify `addresses` or `notReadyAddresses`"}


def test_manifest_is_checked_as_the_server_will_default_it():
    # skiffctl validates manifests before sending them: the defaults are not there yet
    for spec in ({"ports": [{"port": 80}]}, {"type": "NodePort", "ports": [{"port": 80}]},
                 {"type": "LoadBalancer", "ports": [{"port": 80}]}, {"clusterIP": "10.96.0.10", "ports": [{"port": 1}]},
                 {"clusterIP": "None"}, {"type": "ExternalName", "externalName": "x.example.com"}):
        validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "m"}, "spec": spec})


def test_update_rules():
    cur = admit(svc(clusterIP="10.96.0.10"))[0]
    cur["spec"]["ipFamilies"], cur["spec"]["ipFamilyPolicy"] = ["IPv4"], "SingleStack"
    new = copy.deepcopy(cur)
    new["spec"]["clusterIP"], new["spec"]["clusterIPs"] = "10.96.0.11", ["10.96.0.11"]
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, new)
    assert ei.value.causes == [{"field": "spec.clusterIPs[0]", "reason": "FieldValueInvalid",
                                "message": 'Invalid value: []string{"10.96.0.11"}: may not change once set'}]
    new = copy.deepcopy(cur)
    new["spec"]["ipFamilies"] = ["IPv6"]
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, new)
    assert ei.value.causes[0]["message"] == 'Invalid value: []core.IPFamily{"IPv6"}: may not change once set'
    new = copy.deepcopy(cur)
    del new["spec"]["clusterIPs"]
    with pytest.raises(ValidationError) as ei:
        validate_update(cur, new)
    assert ei.value.causes[0]["message"] == "Invalid value: []string{}: primary clusterIP can not be unset"
    # to and from ExternalName the cluster IPs may go and come
    en = copy.deepcopy(cur)
    en["spec"] = {"type": "ExternalName", "externalName": "x.example.com", "sessionAffinity": "None"}
    validate_update(cur, en)
    validate_update(en, cur)
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "a"},
          "addressType": "IPv4", "endpoints": []}
    with pytest.raises(ValidationError) as ei:
        validate_update(es, {**es, "addressType": "IPv6"})
    assert ei.value.causes[0] == {"field": "addressType", "reason": "FieldValueInvalid",
                                  "message": 'Invalid value: "IPv6": field is immutable'}


def test_endpoints_and_slices():
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
          "subsets": [{"addresses": [{"ip": "10.244.0.5", "nodeName": "n1", "hostname": "web-0",
                                      "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"}}],
                       "notReadyAddresses": [{"ip": "10.244.0.6"}],
                       "ports": [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}]}]}
    admit(ep)
    bad = copy.deepcopy(ep)
    bad["subsets"][0]["addresses"][0]["ip"] = "0.0.0.0"
    bad["subsets"][0]["ports"][1]["name"] = ""
    c = causes(bad)
    assert c == {"subsets[0].addresses[0].ip": 'Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
                 "subsets[0].ports[1].name": "Required value"}
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-x1"},
          "addressType": "IPv4",
          "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}, "nodeName": "n1"}],
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    admit(es)
    admit({**es, "endpoints": None, "ports": None})          # what Go writes for an empty slice
    c = causes({**es, "endpoints": [{"addresses": ["fd00::1"]}, {"addresses": []}],
                "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]})
    assert c == {"endpoints[0].addresses[0]": 'Invalid value: "fd00::1": must be a valid IPv4 address',
                 "endpoints[1].addresses": "Required value: must contain at least 1 address",
                 "ports[1].name": 'Duplicate value: "http"'}
    assert "addressType" in causes({**es, "addressType": "IPX"})
    assert causes({**es, "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"alive": True}}]}) == {
        "endpoints[0].conditions.alive": 'unknown field "endpoints[0].conditions.alive"'}


# -- strategic merge patches -----------------------------------------------------------------------

def test_strategic_merge_patch_keys_service_ports_by_port():
    live = admit(svc(ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}]))[0]
    out = strategic_merge_patch(live, {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                                                "ports": [{"port": 443, "targetPort": 8443}]}})
    assert [(p["port"], p["targetPort"]) for p in out["spec"]["ports"]] == [(443, 8443), (80, 80)]
    out = strategic_merge_patch(live, {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}})
    assert [p["port"] for p in out["spec"]["ports"]] == [443]
    # the ports and addresses of endpoints are atomic: replaced whole
    ep = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    assert strategic_merge_patch(ep, {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]}) == \
        {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]}
    es = {"ports": [{"name": "a", "port": 80}]}
    assert strategic_merge_patch(es, {"ports": [{"name": "b", "port": 81}]}) == {"ports": [{"name": "b", "port": 81}]}
    # a container's ports still merge by containerPort
    pod = {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}
    out = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 81}]}]}})
    assert [p["containerPort"] for p in out["spec"]["containers"][0]["ports"]] == [80, 81]


# -- tables ----------------------------------------------------------------------------------------

def test_service_table_cells():
    s = {"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
         "spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"],
                  "selector": {"tier": "fe", "app": "web"},
                  "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}}
    now = T.parse_time("2026-01-01T00:05:00Z")
    assert [c["name"] for c in T.columns("services")] == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)",
                                                          "Age", "Selector"]
    assert T.columns("services")[-1]["priority"] == 1
    assert T.cells("services", s, now) == ["web", "NodePort", "10.96.0.5", "<none>", "80:30080/TCP,53/UDP", "5m",
                                           "app=web,tier=fe"]
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.6"], "ports": []}}
    assert T.cells("services", lb)[2:5] == ["10.96.0.6", "<pending>", "<none>"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}, {"hostname": "lb.example.com"}]}}
    lb["spec"]["externalIPs"] = ["198.51.100.1"]
    assert T.cells("services", lb)[3] == "192.0.2.9,lb.example.com,198.51.100.1"
    en = {"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert T.cells("services", en)[1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]
    hl = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
                                                 "externalIPs": ["192.0.2.1"], "ports": [{"port": 80}]}}
    assert T.cells("services", hl)[2:6][:3] == ["None", "192.0.2.1", "80/TCP"]


def test_endpoints_and_slice_cells():
    assert [c["name"] for c in T.columns("endpoints")] == ["Name", "Endpoints", "Age"]
    ep = {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": f"10.244.0.{i}"} for i in (5, 6)], "ports": [{"port": 80}, {"port": 443}]}]}
    assert T.cells("endpoints", ep)[1] == "10.244.0.5:80,10.244.0.6:80,10.244.0.5:443 + 1 more..."
    assert T.cells("endpoints", {"metadata": {"name": "x"}})[1] == "<none>"
    assert T.cells("endpoints", {"metadata": {"name": "x"}, "subsets": [
        {"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})[1] == ""
    assert T.cells("endpoints", {"metadata": {"name": "x"}, "subsets": [
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}, {"addresses": [{"ip": "10.0.0.9"}]}]})[1] == \
        "[fd00::1]:80,10.0.0.9"
    assert [c["name"] for c in T.columns("endpointslices")] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    es = {"metadata": {"name": "web-x"}, "addressType": "IPv4",
          "ports": [{"name": "a", "port": 80}, {"name": "b"}, {"port": None}, {"port": 9}],
          "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    assert T.cells("endpointslices", es)[1:4] == ["IPv4", "80,b,* + 1 more...",
                                                  "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]
    assert T.cells("endpointslices", {"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": None})[2:4] == \
        ["<unset>", "<unset>"]


# -- protobuf (kubectl create service) -------------------------------------------------------------

from tests.unit.pbenc import fld, num  # noqa: E402


def test_protobuf_service():
    from skiff.api.protobuf import decode
    port = fld(1, b"80-8080") + fld(2, b"TCP") + num(3, 80) + fld(4, num(2, 8080)) + num(5, 0)
    named = fld(1, b"web") + num(3, 81) + fld(4, num(1, 1) + fld(3, b"http"))
    spec = (fld(1, port) + fld(1, named) + fld(2, fld(1, b"app") + fld(2, b"web")) + fld(4, b"ClusterIP")
            + fld(3, b"") + num(13, 0) + num(20, 0))
    body = b"k8s\x00" + fld(1, fld(1, b"v1") + fld(2, b"Service")) + fld(2, fld(1, fld(1, b"web")) + fld(2, spec)
                                                                         + fld(3, fld(1, b"")))
    out = decode(body)
    assert out == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                                      {"name": "web", "port": 81, "targetPort": "http"}],
                            "selector": {"app": "web"}, "type": "ClusterIP",
                            "allocateLoadBalancerNodePorts": False}}


# -- controller options ----------------------------------------------------------------------------

def test_controller_options():
    from skiff.cli.controller import CONTROLLER_OPTS, controlplane_options
    from skiff.cli.parser import UsageError
    names = {n for o in CONTROLLER_OPTS for n in o.names}
    assert {"--service-cidr", "--service-node-port-range"} <= names
    opts = controlplane_options({"pod_eviction_timeout": "300"})
    assert (opts["service_cidr"], opts["node_port_range"]) == ("10.96.0.0/12", "30000-32767")
    opts = controlplane_options({"service_cidr": "10.43.0.0/16", "node_port_range": "31000-31999"})
    assert (opts["service_cidr"], opts["node_port_range"]) == ("10.43.0.0/16", "31000-31999")
    for bad in ({"service_cidr": "10.43.0.1/16"}, {"service_cidr": "10.0.0.0/31"}, {"service_cidr": "nope"},
                {"node_port_range": "32000-31000"}, {"node_port_range": "a-b"}):
        with pytest.raises(UsageError):
            controlplane_options(bad)


# -- skiffctl describe -----------------------------------------------------------------------------

def test_describe_service():
    from skiff.cli.ctl.describe_service import describe_service
    s = {"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
         "spec": {"type": "NodePort", "selector": {"app": "web"}, "ipFamilyPolicy": "SingleStack",
                  "ipFamilies": ["IPv4"], "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"],
                  "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}],
                  "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"}}
    slices = [{"ports": [{"name": "http", "port": 8080}],
               "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.0.6"], "conditions": {"ready": False}},
                             {"addresses": ["10.244.1.7"]}]}]
    text = describe_service(s, [], slices)
    assert text.splitlines() == [
        "Name:                     web",
        "Namespace:                default",
        "Labels:                   app=web",
        "Annotations:              <none>",
        "Selector:                 app=web",
        "Type:                     NodePort",
        "IP Family Policy:         SingleStack",
        "IP Families:              IPv4",
        "IP:                       10.96.0.5",
        "IPs:                      10.96.0.5",
        "Port:                     http  80/TCP",
        "TargetPort:               http/TCP",
        "NodePort:                 http  30080/TCP",
        "Endpoints:                10.244.0.5:8080,10.244.1.7:8080",
        "Session Affinity:         None",
        "External Traffic Policy:  Cluster",
        "Internal Traffic Policy:  Cluster",
        "Events:                   <none>"]
    assert "Endpoints:                <none>" in describe_service(s, None, [])


# -- over the REST API -----------------------------------------------------------------------------

SVCS = "/api/v1/namespaces/default/services"
TBL = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.mark.asyncio
async def test_rest(tmp_path):
    async with api_test_client(tmp_path) as (client, reg, token):
        async def call(method, path, body=None, accept=None, ctype="application/json", params=None):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
            if accept:
                headers["Accept"] = accept
            async with client.request(method, path, data=None if body is None else json.dumps(body),
                                      headers=headers, params=params) as r:
                return r.status, await r.json()

        st, res = await call("GET", "/api/v1")
        names = {r["name"]: r for r in res["resources"]}
        assert names["services"]["shortNames"] == ["svc"] and "services/status" in names
        st, res = await call("GET", "/apis/discovery.k8s.io/v1")
        assert st == 200 and [r["name"] for r in res["resources"]] == ["endpointslices"]
        body = copy.deepcopy(DOCS_SERVICE)
        body["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
        st, s = await call("POST", SVCS, body)
        assert st == 201, s
        ip = s["spec"]["clusterIP"]
        assert s["spec"]["clusterIPs"] == [ip] and s["status"] == {"loadBalancer": {}}
        assert (s["spec"]["ipFamilies"], s["spec"]["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
        # dry run: answered with an IP, nothing kept
        dry = copy.deepcopy(DOCS_SERVICE)
        dry["metadata"]["name"] = "dry"
        dry["spec"]["clusterIP"] = "10.96.7.7"
        st, d = await call("POST", SVCS, dry, params={"dryRun": "All"})
        assert st == 201 and d["spec"]["clusterIP"] == "10.96.7.7"
        assert (await call("GET", SVCS + "/dry"))[0] == 404
        dry["spec"]["clusterIP"] = ip
        st, err = await call("POST", SVCS, dry, params={"dryRun": "All"})
        assert st == 422 and err["message"] == (
            f'Service "dry" is invalid: spec.clusterIPs: Invalid value: []string{{"{ip}"}}: failed to allocate IP '
            f'{ip}: provided IP is already allocated')
        dry["spec"]["clusterIP"] = "10.96.7.7"
        st, d = await call("POST", SVCS, dry)
        assert st == 201 and d["spec"]["clusterIP"] == "10.96.7.7"     # the dry run kept nothing
        # a PUT of the manifest (no clusterIP, as kubectl replace/apply send it) keeps the IP
        put = copy.deepcopy(DOCS_SERVICE)
        put["spec"]["ports"][0]["port"] = 8080
        st, s2 = await call("PUT", SVCS + "/my-service", put)
        assert st == 200 and s2["spec"]["clusterIP"] == ip and s2["spec"]["ports"][0]["port"] == 8080
        put["spec"]["clusterIP"] = "10.96.9.9"
        st, err = await call("PUT", SVCS + "/my-service", put)
        assert st == 422 and err["details"]["causes"] == [{
            "field": "spec.clusterIPs[0]", "reason": "FieldValueInvalid",
            "message": 'Invalid value: []string{"10.96.9.9"}: may not change once set'}]
        # kubectl edit's strategic merge patch of the ports, then a type change to NodePort
        st, s3 = await call("PATCH", SVCS + "/my-service",
                            {"spec": {"$setElementOrder/ports": [{"port": 8080}],
                                      "ports": [{"port": 8080, "name": "web"}], "type": "NodePort"}},
                            ctype="application/strategic-merge-patch+json")
        assert st == 200, s3
        assert s3["spec"]["ports"][0]["name"] == "web" and 30000 <= s3["spec"]["ports"][0]["nodePort"] <= 32767
        assert s3["spec"]["externalTrafficPolicy"] == "Cluster"
        # the Tables
        st, t = await call("GET", SVCS, accept=TBL)
        row = next(r for r in t["rows"] if r["cells"][0] == "my-service")
        assert row["cells"][1:5] == ["NodePort", ip, "<none>", f"8080:{s3['spec']['ports'][0]['nodePort']}/TCP"]
        ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "my-service"},
              "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 9376}]}]}
        st, _ = await call("POST", "/api/v1/namespaces/default/endpoints", ep)
        assert st == 201
        st, t = await call("GET", "/api/v1/namespaces/default/endpoints", accept=TBL)
        assert t["rows"][0]["cells"][:2] == ["my-service", "10.244.0.5:9376"]
        es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "my-service-abc", "labels": {"kubernetes.io/service-name": "my-service"}},
              "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 9376}]}
        st, _ = await call("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", es)
        assert st == 201
        st, t = await call("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", accept=TBL,
                           params={"labelSelector": "kubernetes.io/service-name=my-service"})
        assert t["rows"][0]["cells"][:4] == ["my-service-abc", "IPv4", "9376", "10.244.0.5"]
        # deleting frees the IP and the node port
        st, _ = await call("DELETE", SVCS + "/my-service")
        assert st == 200
        assert ip not in reg.service_ips.in_use()[0] and s3["spec"]["ports"][0]["nodePort"] not in \
            reg.service_ips.in_use()[1]
