#!/usr/bin/env bash
# Builds every Go tool this project needs from the Go module proxy (see go.mod) into a cache
# outside the repository, keyed by the pins, so a second run is a no-op in well under a second.
#
#   hack/tools/build.sh             build if needed, print the bin directory on stdout
#   hack/tools/build.sh --bin-dir   print the bin directory only (builds nothing)
#
# Binaries: kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl
#           helm kind toxiproxy-server toxiproxy-cli kubelet kube-proxy (the real node)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/etcd/main.go" "$here/build.sh" | sha256sum | cut -c1-16)"
cache_root="${AIOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aiops}"
bin="$cache_root/tools/$key/bin"

if [[ "${1:-}" == "--bin-dir" ]]; then
  echo "$bin"
  exit 0
fi

if [[ -f "$bin/.complete" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "aiops: the Go toolchain is missing: install Go 1.26 or newer and put 'go' on PATH" >&2
  exit 3
fi
mkdir -p "$bin.partial"
echo "aiops: building the Go tools into $bin (cold: tens of minutes on 2 cores; cached afterwards)" >&2
start=$SECONDS
(
  cd "$here"
  # The version the binaries report (kubectl version, /version, helm's kubeVersion checks) is
  # stamped the way Kubernetes' own build does; without it they say v0.0.0-master.
  kube="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  minor="${kube#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  # -trimpath and stripped symbols: smaller binaries and a faster link; nothing here is debugged.
  go build -trimpath -ldflags="$ldflags" -o "$bin.partial/" tool ./etcd
)
mv "$bin.partial/server" "$bin.partial/toxiproxy-server"
mv "$bin.partial/cli" "$bin.partial/toxiproxy-cli"
rm -rf "$bin"
mv "$bin.partial" "$bin"
touch "$bin/.complete"
echo "aiops: Go tools built in $((SECONDS - start)) s" >&2
echo "$bin"
