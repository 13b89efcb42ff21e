#!/usr/bin/env bash
# The main job: set up, then bring up a one-host cluster (`skiff up`: API server, SQLite store,
# controllers and an agent in one process) and apply the example specs in specs/, so the
# reconciliation scrolls by: scheduling, pulls, container starts, the crasher's back-off.
# Ctrl-C stops the cluster (its containers keep running and are adopted at the next start).
#
#   bash scripts/run.sh                  # the cluster, with the examples applied
#   bash scripts/run.sh --no-examples    # just the cluster
#   SKIFF_DATA=/some/dir bash scripts/run.sh
#
# In another terminal:  export KUBECONFIG=$SKIFF_DATA/kubeconfig; .venv/bin/skiffctl get pods -o wide
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${SKIFF_DATA:-/var/lib/skiff-cluster}
PORT=${SKIFF_PORT:-6443}
mkdir -p "$DATA"
export SKIFF_ROOT="$DATA/root"
if ! .venv/bin/skiff inspect --type image busybox:latest >/dev/null 2>&1; then
  .venv/bin/skiff mkimage busybox >/dev/null
fi
examples=1
if [ "${1:-}" = "--no-examples" ]; then examples=0; shift; fi
if [ "$examples" = 1 ]; then
  (
    export KUBECONFIG="$DATA/kubeconfig"
    for _ in $(seq 1 100); do
      .venv/bin/skiffctl get nodes 2>/dev/null | grep -q ' Ready ' && break
      sleep 0.2
    done
    echo "--- skiffctl apply -f specs/"
    .venv/bin/skiffctl apply -f specs/
    sleep 5
    echo "--- skiffctl get pods -o wide"
    .venv/bin/skiffctl get pods -o wide
    if command -v kubectl >/dev/null; then
      echo "--- kubectl get deploy,pods  (the real kubectl, the same kubeconfig)"
      kubectl get deploy,pods 2>&1 || true
    fi
    echo "--- skiffctl logs pair -c client"
    .venv/bin/skiffctl logs pair -c client --tail 3 || true
    echo "--- curl http://127.0.0.1:18080/  (the hostPort of pod/published)"
    python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:18080/", timeout=3).read().decode(), end="")' || true
    echo "--- the cluster keeps running; Ctrl-C stops it. In another terminal:"
    echo "    export KUBECONFIG=$DATA/kubeconfig; .venv/bin/skiffctl get pods -w"
  ) &
fi
exec .venv/bin/skiff up --data-dir "$DATA" --port "$PORT" "$@"
