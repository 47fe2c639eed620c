#!/usr/bin/env bash
# The test command (README.md; .ci/run calls exactly this): installs what is missing, then lints
# and runs the whole suite against a real local control plane and real subjects.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hack/setup.sh
.venv/bin/ruff check operator subjects tests hack examples
.venv/bin/ruff format --check operator subjects tests hack examples
.venv/bin/mypy operator subjects tests examples
exec .venv/bin/pytest "$@"
