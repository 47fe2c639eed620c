#!/usr/bin/env bash
# Real pods on this machine, end to end, without Docker and without pulling an image:
#
#   hack/e2e.sh [test [PYTEST ARGS]]
#                       from a clean clone: hack/setup.sh, then the real-node e2e tests
#                       (tests/e2e/test_real_node.py), which run `hack/e2e.sh up`, test, and
#                       `hack/e2e.sh down` (AIOPS_E2E_KEEP=1 leaves the cluster up)
#   hack/e2e.sh up      build the images (hack/images.sh), start the cluster with its real node
#                       (`aiops cluster up --real-node`), `helm install` the operator and the
#                       rate limiter charts onto that node, apply the rate limiter's Subject;
#                       idempotent. Each step's time goes to stderr and to $AIOPS_E2E_TIMES.
#   hack/e2e.sh down    `aiops cluster down`: every process, container, mount, interface and
#                       iptables rule the cluster and its node made goes
#
# Needs root (containerd, kubelet, iptables), podman, mmdebstrap, containerd, runc and the CNI
# plugins: hack/setup.sh installs them. Environment (optional): AIOPS_E2E_CLUSTER (cluster
# name, default aiops-e2e), AIOPS_E2E_PORT (its API server port, default 17443; it uses six
# ports from there), AIOPS_E2E_TIMES (a file to append "step seconds" lines to).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
name="${AIOPS_E2E_CLUSTER:-aiops-e2e}"
port="${AIOPS_E2E_PORT:-17443}"
times="${AIOPS_E2E_TIMES:-/dev/null}"
ops_ns=aiops-system
rl_ns=ratelimiter
aiops=.venv/bin/aiops

say() { echo "aiops: $*" >&2; }
# step NAME COMMAND...: runs it and says how long it took.
step() {
  local what="$1" start=$SECONDS
  shift
  "$@"
  say "e2e step '$what': $((SECONDS - start)) s"
  echo "$what $((SECONDS - start))" >>"$times"
}

case "${1:-test}" in
test)
  step setup hack/setup.sh
  exec .venv/bin/pytest -m real_node tests/e2e "${@:2}"
  ;;
down)
  exec "$aiops" cluster down --name "$name"
  ;;
up) ;;
*)
  echo "usage: hack/e2e.sh [test [PYTEST ARGS]|up|down]" >&2
  exit 2
  ;;
esac

bin="$(hack/tools/build.sh)"
helm="$bin/helm"
images="${AIOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aiops}/images/out"

step images hack/images.sh "$images" >/dev/null
# shellcheck disable=SC1091
source "$images/images.env"
step cluster "$aiops" cluster up --name "$name" --port "$port" --real-node --images "$images" >&2
kubeconfig="$("$aiops" cluster status --name "$name" | sed -n 's/^  kubeconfig: //p')"
k() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
h() { "$helm" --kubeconfig "$kubeconfig" "$@"; }
for ns in "$ops_ns" "$rl_ns"; do
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
done

# Both charts' pods go to the real node only (kwok's nodes would only pretend to run them).
placement="$(mktemp "${TMPDIR:-/tmp}/aiops-e2e-values.XXXXXX")"
trap 'rm -f "$placement"' EXIT
cat >"$placement" <<'EOF'
nodeSelector:
  aiops.dev/real-node: "true"
tolerations:
  - key: aiops.dev/real-node
    operator: Equal
    value: "true"
    effect: NoSchedule
EOF

# Image tags go in with --set-string: a content hash may be all digits, which --set would read
# as a number (and the charts' schemas refuse).
install_operator() {
  # No PersistentVolume provisioner in this cluster: the audit log lives in an emptyDir.
  h upgrade --install aiops charts/aiops-operator --namespace "$ops_ns" --values "$placement" \
    --set image.repository="${OPERATOR_IMAGE%:*}" --set-string image.tag="${OPERATOR_IMAGE##*:}" \
    --set "watch.namespaces={$rl_ns}" --set audit.persistence.enabled=false --set replicas=1 \
    --wait --timeout 5m >&2
}
install_ratelimiter() {
  h upgrade --install rl charts/ratelimiter --namespace "$rl_ns" --values "$placement" \
    --set image.repository="${RATELIMITER_IMAGE%:*}" --set-string image.tag="${RATELIMITER_IMAGE##*:}" \
    --set redis.image.repository="${REDIS_IMAGE%:*}" --set-string redis.image.tag="${REDIS_IMAGE##*:}" \
    --set toxiproxy.image.repository="${TOXIPROXY_IMAGE%:*}" \
    --set-string toxiproxy.image.tag="${TOXIPROXY_IMAGE##*:}" \
    --set subject.enabled=true --set subject.name=ratelimiter --set subject.interval=5s \
    --wait --timeout 5m >&2
}
step helm-operator install_operator
step helm-ratelimiter install_ratelimiter
k get pods -A -o wide --field-selector "spec.nodeName=$name-real-node" >&2
echo "$kubeconfig"
