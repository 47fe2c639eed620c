#!/usr/bin/env bash
# Deletes the kind cluster hack/kind-up.sh made, and its kubeconfig. Idempotent: no cluster,
# nothing to do. The images stay in the local Docker engine (`docker image rm` them if wanted).
#
# Environment: AIOPS_KIND_CLUSTER, AIOPS_KIND_KUBECONFIG, AIOPS_TOOLS_BIN (see kind-up.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="${AIOPS_KIND_CLUSTER:-aiops}"
kubeconfig="${AIOPS_KIND_KUBECONFIG:-$root/.work/kind/$cluster.kubeconfig}"

die() {
  echo "aiops: $*" >&2
  exit 1
}

command -v docker >/dev/null 2>&1 || die "kind-down needs Docker, and the docker command is not installed"
if ! docker_err="$(docker info 2>&1 >/dev/null)"; then
  reason="$(printf '%s\n' "$docker_err" | sed -e '/^[[:space:]]*$/d' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | tail -n 1)"
  die "kind-down needs a running Docker engine, and 'docker info' failed: ${reason:-no reason given}"
fi

bin="${AIOPS_TOOLS_BIN:-$("$root/hack/tools/build.sh")}"
kind="$bin/kind"
[[ -x "$kind" ]] || die "$kind is missing: run hack/tools/build.sh (or set AIOPS_TOOLS_BIN)"

if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
  "$kind" delete cluster --name "$cluster" --kubeconfig "$kubeconfig" >&2
  echo "aiops: kind cluster $cluster deleted" >&2
else
  echo "aiops: no kind cluster $cluster: nothing to delete" >&2
fi
rm -f "$kubeconfig"
