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
# Two worker processes (pytest-xdist), each with its own cluster; a file's tests stay on one
# worker (fixtures per module, the real node's fixed ports). Most tests wait on processes and
# the API server, so two workers on two cores finish far sooner. `hack/test.sh -n 0` runs serially.
exec .venv/bin/pytest -n 2 --dist loadfile "$@"
