#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for skiff: system packages, a venv, skiff itself.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# busybox-static: the base image without a registry; runc, crun: the benchmark's peers;
# nftables, iproute2: networking; python3-venv: the virtualenv; podman, skopeo, umoci,
# docker-registry, apache2-utils (htpasswd): the image interop tests and benchmarks.
PACKAGES=(busybox-static runc crun nftables iproute2 python3-venv ca-certificates podman skopeo umoci docker-registry apache2-utils)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.skiff-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]'
  touch "$stamp"
fi

# pip's console-script wrapper imports re (enum, functools...: ~5 ms, a tenth of a whole
# `skiff run`). Replace it with a launcher that imports only skiff.
cat > .venv/bin/skiff <<EOF
#!$PWD/.venv/bin/python
import sys
from skiff.cli.main import main
sys.exit(main())
EOF
chmod 755 .venv/bin/skiff
cat > .venv/bin/skiffctl <<EOF
#!$PWD/.venv/bin/python
import sys
from skiff.cli.ctl.main import main
sys.exit(main())
EOF
chmod 755 .venv/bin/skiffctl
# Byte-compile skiff now: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
# command would otherwise compile its modules from source, ~20 ms per `skiff run`.
.venv/bin/python -m compileall -q skiff >/dev/null
