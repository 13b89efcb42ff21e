#!/usr/bin/env bash
# The main job: set up, make the busybox base image if there is none, and run a container.
# With no arguments: an interactive shell in a fresh busybox container.
# With arguments: they are passed to `skiff`, e.g.  scripts/run.sh ps -a
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! .venv/bin/skiff inspect --type image busybox:latest >/dev/null 2>&1; then
  .venv/bin/skiff mkimage busybox >/dev/null
fi
if [ $# -eq 0 ]; then
  if [ -t 0 ]; then set -- run --rm -it busybox sh; else set -- run --rm -i busybox sh; fi
fi
exec .venv/bin/skiff "$@"
