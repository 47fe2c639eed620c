#!/usr/bin/env bash
# The main job (README.md): installs what is missing, brings the whole local system up
# (`aiops up`: a real control plane, the rate limiter under supervisord, the operator, the
# example Subject) and runs the live demo (`aiops demo ratelimiter`, options passed through).
# `hack/demo.sh down` stops it all (`aiops down`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hack/setup.sh
exec .venv/bin/python hack/demo.py "$@"
