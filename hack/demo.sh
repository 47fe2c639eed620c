#!/usr/bin/env bash
# The main job (README.md): installs what is missing, then runs the local demo — a real
# control plane, the rate limiter under supervisord, the operator, and one incident from fault
# to verified fix. `hack/demo.sh down` stops it all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hack/setup.sh
exec .venv/bin/python hack/demo.py "$@"
