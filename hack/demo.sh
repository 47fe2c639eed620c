#!/usr/bin/env bash
# The main job (README.md): installs what is missing, brings up the local control plane and
# prints how to use it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hack/setup.sh
exec .venv/bin/aiops cluster up "$@"
