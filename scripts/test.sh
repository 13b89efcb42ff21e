#!/usr/bin/env bash
# The whole test suite: set up, then unit, integration (root, real kernel objects) and e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
