#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, and is a fast no-op the second time:
#   - Debian packages: redis-server and prometheus (the rate limiter stack runs them for real),
#     tmux (the demo's tests), podman, mmdebstrap, containerd, runc (and crun), iptables and
#     the CNI plugins (the real node), chromium and chromium-driver (the evaluation report's test)
#   - a virtualenv in .venv with the operator (operator/) and the subject plugins (subjects/*/),
#     three distributions, installed editable with what the tests need
#   - the Go tools (Kubernetes control plane, kwok, helm, kind, toxiproxy) via hack/tools/build.sh
# Sourced by hack/demo.sh and hack/test.sh; safe to run on its own.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# tmux: the demo's tests drive its terminal UI in a tmux window (tests/integration/demo).
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
# The real node (tests/e2e/test_real_node.py, hack/e2e.sh): images built with podman (runc)
# from an mmdebstrap base, run by containerd with runc and the CNI bridge, kube-proxy's iptables.
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
# podman's recommended companions (apt here skips recommends): the image builds were proven
# with them present, so a fresh machine gets the same.
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
command -v newuidmap >/dev/null 2>&1 || need_apt+=(uidmap)
command -v mmdebstrap >/dev/null 2>&1 || need_apt+=(mmdebstrap)
command -v containerd >/dev/null 2>&1 || need_apt+=(containerd)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
# crun: a second OCI runtime, which this kind of kernel (cgroup v1 controllers beside an empty
# v2 hierarchy) refuses: the test of `aiops cluster up --real-node --runtime` meets a real
# refusal with it (tests/integration/test_cluster_cli.py).
command -v crun >/dev/null 2>&1 || need_apt+=(crun)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
# conntrack: kube-proxy clears stale UDP flows (the node's cluster DNS) with it.
command -v conntrack >/dev/null 2>&1 || need_apt+=(conntrack)
[[ -x /usr/lib/cni/bridge ]] || need_apt+=(containernetworking-plugins)
# chromium, chromium-driver: the evaluation report's test views its HTML page in a real browser
# (tests/integration/eval).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if ((${#need_apt[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "aiops: installing Debian packages: ${need_apt[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts these as system services on install; the project runs its own instances.
for svc in redis-server prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    echo "aiops: note: a system $svc service is running; the project uses its own ports" >&2
  fi
done

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "aiops: Python 3.11 or newer is needed (found: $("$python" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
# One pip run, so that the plugins' dependency on `aiops` is this operator, never an index's.
# The stamp hashes every distribution's pyproject.toml, the constraints and this list: an edit
# to any of them installs again, and otherwise nothing runs.
dists=(-e './operator[test,eval]' -e './subjects/ratelimiter[server,test]' -e './subjects/tikv')
stamp=".venv/.aiops-installed"
want="$({ cat operator/pyproject.toml subjects/*/pyproject.toml operator/constraints.txt; echo "${dists[*]}"; } |
  sha256sum | cut -c1-16)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "aiops: installing the operator and the subject plugins into .venv" >&2
  # Metadata of the single distribution there was before the split; on sys.path (pytest puts
  # the root there) it would pass for `aiops` and repeat the plugins' entry points.
  rm -rf aiops.egg-info
  .venv/bin/python -m pip install -q -U pip
  # The operator's run-time dependencies at the versions its image pins (hack/constraints.py).
  .venv/bin/python -m pip install -q -c operator/constraints.txt "${dists[@]}"
  echo "$want" >"$stamp"
fi

hack/tools/build.sh >/dev/null
