#!/usr/bin/env bash
# The committed evaluation of the rate limiter (docs/evaluation.md): a local system of its own
# (`aiops up --name eval`), a twin stack for the baseline (hack/eval/twin.py), then the
# campaign hack/eval/ratelimiter.yaml into docs/eval/ratelimiter.sqlite. Not run in CI.
#
#   hack/eval/ratelimiter.sh            # up, run (about 30 minutes), leave the system up
#   hack/eval/ratelimiter.sh down       # stop the system and the twin stack
#
# Ports (override with the variables): cluster 17700..17705, stack 35000..35010, twin 35020..
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=${AIOPS_EVAL_SYSTEM:-eval}
PORT=${AIOPS_EVAL_PORT:-17700}
STACK_PORT=${AIOPS_EVAL_STACK_PORT:-35000}
TWIN_PORT=${AIOPS_EVAL_TWIN_PORT:-35020}
STATE=${AIOPS_STATE_DIR:-$HOME/.local/state/aiops}
DB=${AIOPS_EVAL_DB:-docs/eval/ratelimiter.sqlite}
AIOPS=.venv/bin/aiops

if [[ "${1:-}" == "down" ]]; then
    .venv/bin/ratelimiter-stack down --dir "$STATE/systems/$NAME/twin" || true
    exec "$AIOPS" down --name "$NAME"
fi

"$AIOPS" up --name "$NAME" --port "$PORT" --stack-port "$STACK_PORT"
export KUBECONFIG="$STATE/clusters/$NAME/kubeconfig"
.venv/bin/python hack/eval/twin.py --name "$NAME" --twin-port "$TWIN_PORT"
mkdir -p "$(dirname "$DB")"
time "$AIOPS" eval run hack/eval/ratelimiter.yaml --db "$DB" --audit-dir "$STATE/systems/$NAME/audit"
