"""CustomResourceDefinitions with the real kubectl 1.32 (controller + a real agent): the CronTab
of Kubernetes' documentation applied and Established (kubectl wait), custom resources applied,
listed with the printer columns (-o wide for priority 1), by short name and through `get all`,
api-resources, patched (merge), refused with kube-apiserver's message, the status
subresource, explain, and the CRD's deletion taking its resources along."""
from __future__ import annotations

import json

from tests.integration.kubectl import kube, row, table  # noqa: F401 (kube is a fixture)

CRD = "crontabs.stable.example.com"

CRONTAB_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              description: The desired schedule of the CronTab.
              properties:
                cronSpec:
                  type: string
                  description: The cron schedule.
                  pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'
                image:
                  type: string
                replicas:
                  type: integer
                  minimum: 1
                  maximum: 10
                  default: 1
            status:
              type: object
              properties:
                replicas:
                  type: integer
      subresources:
        status: {}
      additionalPrinterColumns:
      - name: Spec
        type: string
        description: The cron spec defining the interval a CronJob is run
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        description: The number of jobs launched by the CronJob
        jsonPath: .spec.replicas
      - name: Image
        type: string
        priority: 1
        jsonPath: .spec.image
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames:
    - ct
    categories:
    - all
"""

CRONTABS = """\
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: ct-one
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
---
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: ct-two
  labels: {tier: b}
spec:
  cronSpec: "*/10 * * * *"
  image: other-image
  replicas: 3
"""


def test_crontab_crd_with_kubectl(kube):
    k = kube.kubectl
    try:
        out = k.ok("apply", "-f", kube.file("crd.yaml", CRONTAB_CRD))
        assert out == f"customresourcedefinition.apiextensions.k8s.io/{CRD} created\n", out
        assert k.ok("wait", "--for", "condition=established", f"crd/{CRD}", "--timeout=20s") == \
            f"customresourcedefinition.apiextensions.k8s.io/{CRD} condition met\n"
        crd = k.json("get", "crd", CRD)
        assert crd["status"]["acceptedNames"]["shortNames"] == ["ct"]
        assert crd["status"]["storedVersions"] == ["v1"]
        assert table(k.ok("get", "crd", CRD))[0] == ["NAME", "CREATED AT"]

        # an update (kubectl sends a strategic merge patch for the CRD itself); CEL is accepted, not enforced
        cel = CRONTAB_CRD.replace("              description: The desired schedule of the CronTab.\n",
                                  "              description: The desired schedule of the CronTab.\n"
                                  "              x-kubernetes-validations:\n"
                                  "              - rule: self.replicas <= 10\n")
        p = k("apply", "-f", kube.file("crd2.yaml", cel))
        assert p.returncode == 0 and p.stdout == f"customresourcedefinition.apiextensions.k8s.io/{CRD} configured\n", p
        assert "x-kubernetes-validations (CEL) rules are accepted but not enforced by skiff" in p.stderr, p.stderr
        res = k.ok("api-resources", "--api-group=stable.example.com")
        assert table(res)[1] == [["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]], res

        out = k.ok("apply", "-f", kube.file("cts.yaml", CRONTABS))
        assert out == "crontab.stable.example.com/ct-one created\ncrontab.stable.example.com/ct-two created\n", out
        out = k.ok("get", "crontabs")
        assert table(out)[0] == ["NAME", "SPEC", "REPLICAS", "AGE"], out
        r = row(out, "ct-one")
        assert (r["SPEC"], r["REPLICAS"]) == ("* * * * */5", "1"), out   # replicas: the schema's default
        assert row(out, "ct-two")["REPLICAS"] == "3"
        wide = k.ok("get", "ct", "-o", "wide")
        assert table(wide)[0] == ["NAME", "SPEC", "REPLICAS", "IMAGE", "AGE"]
        assert row(wide, "ct-one")["IMAGE"] == "my-awesome-cron-image" and row(wide, "ct-two")["IMAGE"] == "other-image"
        assert "crontab.stable.example.com/ct-one" in k.ok("get", "all")
        assert k.ok("get", "ct", "-l", "tier=b", "-o", "name") == "crontab.stable.example.com/ct-two\n"

        out = k.ok("patch", "crontab", "ct-one", "--type=merge", "-p", '{"spec":{"replicas":5}}')
        assert out == "crontab.stable.example.com/ct-one patched\n"
        one = k.json("get", "ct", "ct-one")
        assert one["spec"]["replicas"] == 5 and one["metadata"]["generation"] == 2
        err = k.fails("patch", "crontab", "ct-one", "-p", '{"spec":{"replicas":6}}')   # strategic: refused
        assert "UnsupportedMediaType" in err or "unknown format" in err or "strategic merge patch" in err, err

        bad = CRONTABS.split("---")[0].replace("ct-one", "ct-bad").replace('"* * * * */5"', "5")
        err = k.fails("apply", "-f", kube.file("bad.yaml", bad))
        assert 'The CronTab "ct-bad" is invalid: spec.cronSpec: Invalid value: "integer": ' \
               'spec.cronSpec in body must be of type string: "integer"' in err or \
               'The CronTab "ct-bad" is invalid: spec.cronSpec: Invalid value: 5: ' \
               'spec.cronSpec in body must be of type string: "integer"' in err, err
        bad = CRONTABS.split("---")[0].replace("ct-one", "ct-bad").replace("image: my", "replicas: 20\n  image: my")
        err = k.fails("apply", "-f", kube.file("bad2.yaml", bad))
        assert 'The CronTab "ct-bad" is invalid: spec.replicas: Invalid value: 20: spec.replicas in body should ' \
               'be less than or equal to 10' in err, err

        three = CRONTABS.split("---")[0].replace("ct-one", "ct-three")
        assert k.ok("apply", "--server-side", "-f", kube.file("ssa.yaml", three)) == \
            "crontab.stable.example.com/ct-three serverside-applied\n"
        mf = json.loads(k.ok("get", "ct", "ct-three", "-o", "json", "--show-managed-fields"))["metadata"]["managedFields"]
        assert [(m["manager"], m["operation"]) for m in mf] == [("kubectl", "Apply")], mf
        assert k.ok("delete", "ct", "ct-three", "--dry-run=server") == \
            'crontab.stable.example.com "ct-three" deleted (server dry run)\n'
        assert k.json("get", "ct", "ct-three")["spec"]["replicas"] == 1
        # a second served version (conversion None): the same objects under another apiVersion
        import yaml
        two = yaml.safe_load(cel)
        two["spec"]["versions"].append({**two["spec"]["versions"][0], "name": "v1beta1", "storage": False})
        k.ok("apply", "-f", kube.file("crd3.yaml", two))
        kube.wait(lambda: "v1beta1" in k.ok("api-versions"), 10, "stable.example.com/v1beta1 in discovery")
        assert k.ok("get", "crontabs.v1beta1.stable.example.com", "ct-one", "-o", "jsonpath={.apiVersion}") == \
            "stable.example.com/v1beta1"
        four = CRONTABS.split("---")[0].replace("ct-one", "ct-four").replace("stable.example.com/v1",
                                                                             "stable.example.com/v1beta1")
        assert k.ok("apply", "-f", kube.file("v1beta1.yaml", four)) == "crontab.stable.example.com/ct-four created\n"
        assert k.ok("get", "ct", "ct-four", "-o", "jsonpath={.apiVersion}") == "stable.example.com/v1"
        k.ok("delete", "-f", kube.file("v1beta1.yaml", four))
        out = k.ok("patch", "crontab", "ct-one", "--subresource=status", "--type=merge",
                   "-p", '{"status":{"replicas":5}}')
        assert k.json("get", "ct", "ct-one")["status"] == {"replicas": 5}, out
        d = k.ok("describe", "ct", "ct-one")
        assert "Kind:         CronTab" in d and "Cron Spec:  * * * * */5" in d and "Replicas:  5" in d, d
        ex = k.ok("explain", "crontab.spec")
        assert "KIND:       CronTab" in ex and "cronSpec" in ex and "The cron schedule." in ex, ex

        # skiffctl finds the custom kinds through discovery
        from tests.integration.test_skiffctl import Ctl
        ctl = Ctl(kube.kubeconfig, "", "")
        out = ctl.ok("get", "ct")
        assert table(out)[0] == ["NAME", "SPEC", "REPLICAS", "AGE"], out
        assert row(out, "ct-two")["REPLICAS"] == "3"
        assert row(ctl.ok("get", "crontabs.stable.example.com", "-o", "wide"), "ct-one")["IMAGE"] == \
            "my-awesome-cron-image"
        assert "ct-one" in ctl.ok("get", "all")
        assert ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"] in table(ctl.ok("api-resources"))[1]
        assert "replicas: 5" in ctl.ok("get", "crontab", "ct-one", "-o", "yaml")
        desc = ctl.ok("describe", "ct", "ct-one")
        kdesc = k.ok("describe", "ct", "ct-one")
        assert desc == kdesc, f"skiffctl:\n{desc}\nkubectl:\n{kdesc}"
        out = ctl.ok("apply", "-f", kube.file("cts3.yaml", CRONTABS.replace("other-image", "third-image")))
        assert "crontab.stable.example.com/ct-two configured" in out, out
        assert k.json("get", "ct", "ct-two")["spec"]["image"] == "third-image"
        assert k.ok("delete", "ct", "ct-two") == 'crontab.stable.example.com "ct-two" deleted\n'
        k.ok("delete", "crd", CRD, "--timeout=30s")
        assert kube.gone("crd", CRD)
        err = k.fails("get", "crontabs.stable.example.com")
        assert "the server doesn't have a resource type" in err, err
    finally:
        k("delete", "crd", CRD, "--ignore-not-found", "--timeout=30s")
