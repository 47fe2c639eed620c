#!/usr/bin/env bash
# The kind path, for users with Docker and a network: a kind cluster with the aiops operator,
# a TiKV cluster (PingCAP's images) and the rate limiter, each watched by a Subject.
#
#   hack/kind-up.sh       create or update it (idempotent: run it again after changing code)
#   hack/kind-down.sh     delete it
#
# It builds the operator and rate limiter images with docker, loads them into kind (tagged by
# image id, so a rebuilt image rolls the pods and an unchanged one changes nothing), and
# installs the charts with `helm upgrade --install`. kind, helm and kubectl come from
# hack/tools (or AIOPS_TOOLS_BIN). Nothing touches ~/.kube/config: the cluster's kubeconfig is
# written to $AIOPS_KIND_KUBECONFIG (default .work/kind/<cluster>.kubeconfig).
#
# Environment (all optional):
#   AIOPS_KIND_CLUSTER     kind cluster name (default aiops)
#   AIOPS_KIND_KUBECONFIG  where to write its kubeconfig
#   KIND_NODE_IMAGE        kind node image (default: kind's own for its version)
#   ANTHROPIC_API_KEY      when set, stored in the Secret aiops-anthropic (never on a command
#                          line) and used by the operator; otherwise the runbook agent runs
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="${AIOPS_KIND_CLUSTER:-aiops}"
kubeconfig="${AIOPS_KIND_KUBECONFIG:-$root/.work/kind/$cluster.kubeconfig}"
ops_ns=aiops-system
tikv_ns=tikv
rl_ns=ratelimiter
prometheus_url="http://aiops-prometheus.$ops_ns.svc:9090"

die() {
  echo "aiops: $*" >&2
  exit 1
}
say() { echo "aiops: $*" >&2; }

# Docker first: without it nothing below can work, and the reason fits on one line.
command -v docker >/dev/null 2>&1 || die "kind-up needs Docker, and the docker command is not installed"
if ! docker_err="$(docker info 2>&1 >/dev/null)"; then
  reason="$(printf '%s\n' "$docker_err" | sed -e '/^[[:space:]]*$/d' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | tail -n 1)"
  die "kind-up needs a running Docker engine, and 'docker info' failed: ${reason:-no reason given}"
fi

for file in operator/Dockerfile subjects/ratelimiter/Dockerfile charts/aiops-operator/Chart.yaml \
  charts/tikv/Chart.yaml charts/ratelimiter/Chart.yaml; do
  [[ -f "$root/$file" ]] || die "$file is missing: run this from a complete checkout"
done

bin="${AIOPS_TOOLS_BIN:-$("$root/hack/tools/build.sh")}"
kind="$bin/kind"
helm="$bin/helm"
kubectl="$bin/kubectl"
for tool in "$kind" "$helm" "$kubectl"; do
  [[ -x "$tool" ]] || die "$tool is missing: run hack/tools/build.sh (or set AIOPS_TOOLS_BIN)"
done
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }
h() { "$helm" --kubeconfig "$kubeconfig" "$@"; }

# --- the cluster --------------------------------------------------------------------------
mkdir -p "$(dirname "$kubeconfig")"
if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
  say "kind cluster $cluster exists: reusing it"
else
  say "creating kind cluster $cluster"
  "$kind" create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 180s \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} >&2
fi
"$kind" get kubeconfig --name "$cluster" >"$kubeconfig"
chmod 600 "$kubeconfig"

# --- images -------------------------------------------------------------------------------
# build_image NAME DOCKERFILE CONTEXT: builds NAME:dev, tags it dev-<image id> and loads that
# into kind; prints the tag.
build_image() {
  local name="$1" dockerfile="$2" context="$3" id tag
  say "building $name ($dockerfile)"
  docker build --file "$root/$dockerfile" --tag "$name:dev" "$root/$context" >&2
  id="$(docker image inspect --format '{{.Id}}' "$name:dev")"
  id="${id#sha256:}"
  tag="dev-${id:0:12}"
  docker tag "$name:dev" "$name:$tag" >&2
  load_image "$name:$tag"
  echo "$tag"
}
# load_image REF: into every kind node. With Docker's containerd image store, `kind load
# docker-image` can fail with "content digest ... not found" (kind issue 3795); then a
# single-platform archive goes in instead.
load_image() {
  local ref="$1" archive arch
  "$kind" load docker-image --name "$cluster" "$ref" >&2 && return 0
  say "kind load docker-image $ref failed: loading a single-platform archive instead"
  arch="$(docker version --format '{{.Server.Arch}}')"
  archive="$(mktemp "${TMPDIR:-/tmp}/aiops-image.XXXXXX")"
  if ! docker image save --platform "linux/$arch" --output "$archive" "$ref" >&2 ||
    ! "$kind" load image-archive --name "$cluster" "$archive" >&2; then
    rm -f "$archive"
    die "could not load $ref into kind cluster $cluster (see above)"
  fi
  rm -f "$archive"
}
operator_tag="$(build_image aiops-operator operator/Dockerfile .)"
ratelimiter_tag="$(build_image aiops/ratelimiter subjects/ratelimiter/Dockerfile subjects/ratelimiter)"

# --- namespaces and the optional Anthropic key --------------------------------------------
for ns in "$ops_ns" "$tikv_ns" "$rl_ns"; do
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
done
anthropic=()
if [[ -n "${ANTHROPIC_API_KEY:-}" ]]; then
  # From stdin, so the key never shows in a process list.
  printf '%s' "$ANTHROPIC_API_KEY" |
    k -n "$ops_ns" create secret generic aiops-anthropic --from-file=api-key=/dev/stdin \
      --dry-run=client -o yaml | k apply -f - >/dev/null
  anthropic=(--set anthropic.existingSecret=aiops-anthropic)
  say "the operator uses the Anthropic backend (Secret $ops_ns/aiops-anthropic)"
else
  say "ANTHROPIC_API_KEY is not set: the operator uses its runbook agent"
fi

# --- charts: the operator (and the aiops API) first, then the subjects ---------------------
say "installing aiops-operator into $ops_ns"
# Two replicas (one active, kopf peering) share the audit volume: kind's one node and its
# local-path volumes, which are ReadWriteOnce (a multi-node cluster wants ReadWriteMany).
h upgrade --install aiops "$root/charts/aiops-operator" --namespace "$ops_ns" \
  --set image.repository=aiops-operator --set-string "image.tag=$operator_tag" \
  --set "watch.namespaces={$tikv_ns,$rl_ns}" --set prometheus.enabled=true \
  --set "audit.persistence.accessModes={ReadWriteOnce}" \
  ${anthropic[@]+"${anthropic[@]}"} --wait --timeout 5m >&2

say "installing tikv into $tikv_ns (PingCAP's images; the first pull takes a while)"
h upgrade --install tikv "$root/charts/tikv" --namespace "$tikv_ns" \
  --set subject.enabled=true --set "subject.prometheusUrl=$prometheus_url" \
  --wait --timeout 10m >&2

say "installing ratelimiter into $rl_ns"
h upgrade --install rl "$root/charts/ratelimiter" --namespace "$rl_ns" \
  --set image.repository=aiops/ratelimiter --set-string "image.tag=$ratelimiter_tag" \
  --wait --timeout 5m >&2

# The rate limiter's Subject (the tikv chart renders its own): its pods, its admin API through
# the Service, its Redis (read only) and toxiproxy, as the chart names them for release rl.
k apply -f - >&2 <<EOF
apiVersion: aiops.dev/v1alpha1
kind: Subject
metadata:
  name: ratelimiter
  namespace: $rl_ns
spec:
  type: ratelimiter
  config:
    adminUrls:
      - http://rl-ratelimiter.$rl_ns.svc:80
    redisUrl: redis://rl-redis.$rl_ns.svc:6379/0
    toxiproxyUrl: http://rl-toxiproxy.$rl_ns.svc:8474
  prometheus:
    url: $prometheus_url
  workload:
    kind: pods
    selector:
      matchLabels:
        app.kubernetes.io/instance: rl
        app.kubernetes.io/name: ratelimiter
  interval: 10s
  autonomy: propose
EOF

k get subjects --all-namespaces >&2 || true
cat >&2 <<EOF
aiops: the kind cluster $cluster is up. Use it with:
  export KUBECONFIG=$kubeconfig
  kubectl get subjects,incidents -A
  kubectl -n $ops_ns logs -l app.kubernetes.io/name=aiops-operator --prefix  # both replicas
EOF
