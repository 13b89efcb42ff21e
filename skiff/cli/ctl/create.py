"""Create a resource from the command line.

Usage:
  skiffctl create -f FILE|DIR|- [-f ...]
  skiffctl create namespace NAME
  skiffctl create deployment NAME --image IMAGE [--image ...] [--replicas N] [--port P] [-- COMMAND ARGS...]
  skiffctl create configmap NAME [--from-literal KEY=VALUE ...] [--from-file [KEY=]PATH ...]
  skiffctl create secret generic NAME [--from-literal KEY=VALUE ...] [--from-file [KEY=]PATH ...] [--type T]

--dry-run=server sends the request with dryRun=All (`namespace/team-a created (server dry
run)`: checked by the server, nothing persisted); --dry-run=client sends nothing.

Examples:
  skiffctl create -f web.yaml
  skiffctl create namespace team-a
  skiffctl create deployment web --image busybox --replicas 3 -- sleep 3600
"""
from __future__ import annotations

import base64
import os
import re
import sys

from .client import APIError, CtlError
from .common import dry_run, dry_run_flag, dry_run_params, dry_run_suffix
from .flags import Flag
from . import printers as P

FLAGS = [
    Flag("-f --filename", "filename", "list", help="File, directory or - (stdin) with the objects to create"),
    dry_run_flag(),
    Flag("--image", "image", "list", help="deployment: image(s) of the containers"),
    Flag("-r --replicas", "replicas", "int", default=1, help="deployment: number of replicas (default 1)"),
    Flag("--port", "port", "int", default=-1, help="deployment: the port the container exposes"),
    Flag("--from-literal", "from_literal", "list", help="configmap/secret: KEY=VALUE"),
    Flag("--from-file", "from_file", "list", help="configmap/secret: [KEY=]PATH"),
    Flag("--type", "type", "str", help="secret: the secret's type (default Opaque)"),
]

ALIASES = {"namespace": "namespace", "ns": "namespace", "deployment": "deployment", "deploy": "deployment",
           "configmap": "configmap", "cm": "configmap", "secret": "secret"}


def run(ctx, args: list[str], opts: dict) -> int:
    strategy = dry_run(opts)
    if opts["filename"]:
        if args:
            raise CtlError(f"error: Unexpected args: {args}\nSee 'skiffctl create -h' for help and examples")
        return create_from_files(ctx, opts["filename"], strategy)
    if not args:
        raise CtlError("error: you must specify what to create: namespace, deployment, configmap or secret\n"
                       "See 'skiffctl create --help' for usage.")
    what = ALIASES.get(args[0])
    if what is None:
        raise CtlError(f'error: unknown command "{args[0]}" for "skiffctl create"\n'
                       "See 'skiffctl create --help' for usage.")
    rest = args[1:]
    if what == "secret":
        if not rest or rest[0] != "generic":
            raise CtlError("error: only `skiffctl create secret generic NAME` is supported")
        rest = rest[1:]
    if not rest:
        raise CtlError("error: exactly one NAME is required, got 0")
    name, extra = rest[0], rest[1:]
    if what == "namespace":
        plural, obj = "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    elif what == "deployment":
        plural, obj = "deployments", deployment_object(name, opts["image"], opts["replicas"], opts["port"], extra)
        extra = []
    elif what == "configmap":
        plural = "configmaps"
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
               "data": _data(opts, binary=False)}
    else:
        plural = "secrets"
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
               "type": opts["type"] or "Opaque", "data": _data(opts, binary=True)}
    if extra:
        raise CtlError(f"error: exactly one NAME is required, got {len(rest)}")
    from skiff.api.resources import RESOURCES, path_for
    res = RESOURCES.get(plural)
    if res is None:
        raise CtlError(f'error: the server doesn\'t have a resource type "{plural}"')
    ns = ctx.namespace if res.namespaced else None
    if ns:
        obj["metadata"]["namespace"] = ns
    if strategy != "client":
        client = ctx.client()
        try:
            client.request("POST", path_for(plural, ns), params={"fieldManager": "kubectl-create",
                                                                 **dry_run_params(strategy)}, body=obj)
        except APIError as e:
            print(str(e), file=sys.stderr)
            return 1
    print(f"{P.kind_name(res, name=name)} created{dry_run_suffix(strategy)}")
    return 0


def create_from_files(ctx, files: list[str], strategy: str) -> int:
    """``create -f``: every document checked first (all or nothing, as apply), then each object
    created as written (no last-applied annotation); an object that exists is an error."""
    from .apply import plan_documents
    plan = plan_documents(ctx, files, need_name=False)
    if plan is None:
        return 1
    params = {"fieldManager": "kubectl-create", **dry_run_params(strategy)}
    rc = 0
    for d, res, ns, obj in plan:
        name = obj["metadata"].get("name") or ""
        if strategy != "client":
            try:
                out = ctx.client().request("POST", res.path(ns), params, obj, verb="creating", what=d.source)
            except APIError as e:
                print(str(e), file=sys.stderr)
                rc = 1
                continue
            name = ((out or {}).get("metadata") or {}).get("name") or name     # generateName's
        print(f"{P.kind_name(res, name=name)} created{dry_run_suffix(strategy)}")
        sys.stdout.flush()
    return rc


def _container_name(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-") or "container"


def deployment_object(name: str, images: list[str], replicas: int, port: int, command: list[str]) -> dict:
    """What `kubectl create deployment` builds: labels/selector app=NAME, one container per image
    named after the image."""
    if not images:
        raise CtlError('error: required flag(s) "image" not set')
    if command and len(images) > 1:
        raise CtlError("error: cannot specify multiple --image options and command")
    labels = {"app": name}
    containers = []
    for img in images:
        c: dict = {"name": _container_name(img), "image": img}
        if command:
            c["command"] = list(command)
        if port >= 0:
            c["ports"] = [{"containerPort": port}]
        containers.append(c)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}}}}


def _data(opts: dict, binary: bool) -> dict:
    data: dict = {}
    for lit in opts["from_literal"]:
        k, eq, v = lit.partition("=")
        if not eq or not k:
            raise CtlError(f'error: invalid literal source {lit}, expected key=value')
        if k in data:
            raise CtlError(f'error: cannot add key {k}, another key by that name already exists')
        data[k] = base64.b64encode(v.encode()).decode() if binary else v
    for src in opts["from_file"]:
        k, eq, path = src.partition("=")
        if not eq:
            k, path = os.path.basename(src), src
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise CtlError(f"error: error reading {path}: {e.strerror}") from None
        if binary:
            data[k] = base64.b64encode(raw).decode()
        else:
            try:
                data[k] = raw.decode()
            except UnicodeDecodeError:
                raise CtlError(f"error: {path} is not UTF-8 (binaryData is not supported)") from None
    return data
