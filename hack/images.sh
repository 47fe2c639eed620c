#!/usr/bin/env bash
# Builds the images the real node runs, here, without pulling any image: a Debian base made
# with mmdebstrap from Debian's packages, then each image with `podman build` from the
# project's Dockerfiles with that base as their PYTHON_IMAGE / BASE_IMAGE build argument (their
# defaults stay the official images, for users with a registry).
#
#   hack/images.sh [OUT]     build what is missing; write OUT/images.tar (one docker-archive of
#                            them all, for `ctr images import`), OUT/images.list (their refs),
#                            OUT/images.env (NAME_IMAGE=ref lines) and OUT/sandbox-image (the
#                            pause image); OUT defaults to $AIOPS_CACHE_DIR/images/out
#
# Images (each tagged by its content: the base by its tarball's sha256, the others by podman's
# image id, so an unchanged build keeps its tag and a changed one rolls the pods):
#   localhost/aiops-base        python3, venv, ca-certificates, redis-server (bookworm, minbase)
#   localhost/aiops-pause       the pods' sandbox: `sleep infinity` as an unprivileged user
#   localhost/aiops-operator    operator/Dockerfile
#   localhost/aiops-ratelimiter subjects/ratelimiter/Dockerfile
#   localhost/aiops-redis       redis-server as user redis
#   localhost/aiops-toxiproxy   the toxiproxy-server built in hack/tools
#
# The base tarball is cached in $AIOPS_CACHE_DIR/images/ (key: the package list), so a rerun
# skips mmdebstrap (about a minute cold). Needs root, podman (runtime runc: crun refuses hybrid
# cgroup hierarchies) and mmdebstrap; pip inside the builds reaches the package index through
# the host's network (--network host: no podman network, so nothing to clean up after).
set -euo pipefail
shopt -s inherit_errexit

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${AIOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aiops}/images"
out="${1:-$cache/out}"
packages="python3,python3-venv,ca-certificates,redis-server"
suite=bookworm

die() {
  echo "aiops: $*" >&2
  exit 1
}
say() { echo "aiops: $*" >&2; }

for cmd in podman mmdebstrap; do
  command -v "$cmd" >/dev/null 2>&1 ||
    die "building the images needs $cmd: apt-get install podman mmdebstrap runc (hack/setup.sh does)"
done
[[ $(id -u) -eq 0 ]] || die "building the images needs root (rootful podman, mmdebstrap)"
bin="${AIOPS_TOOLS_BIN:-$("$root/hack/tools/build.sh")}"
mkdir -p "$cache" "$out"
pod() { podman --runtime runc "$@"; }
t0=$SECONDS

# --- the base -----------------------------------------------------------------------------
key="$(printf '%s %s\n' "$suite" "$packages" | sha256sum | cut -c1-12)"
tarball="$cache/base-$suite-$key.tar"
if [[ ! -s "$tarball" ]]; then
  say "making the base with mmdebstrap ($packages)"
  # The Debian packages start no service in a chroot; --variant=minbase keeps apt and dpkg out
  # of nothing the images need but keeps passwd (useradd) and coreutils.
  rm -rf "$tarball.partial"
  mmdebstrap --variant=minbase --format=tar --include="$packages" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$suite" "$tarball.partial" >&2
  mv "$tarball.partial" "$tarball"
fi
base="localhost/aiops-base:$(sha256sum "$tarball" | cut -c1-12)"
if ! pod image exists "$base"; then
  say "importing $base"
  pod import --change 'CMD ["/bin/bash"]' "$tarball" "$base" >/dev/null
fi
say "base ready in $((SECONDS - t0)) s"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/aiops-images.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

# pip inside the builds trusts what this machine trusts (a proxy's own CA included) and uses
# its index, if one is set: the bundle and a pip.conf are mounted into each RUN, never copied
# into an image.
mounts=()
{
  echo "[global]"
  [[ -z "${PIP_INDEX_URL:-}" ]] || echo "index-url = $PIP_INDEX_URL"
  [[ -z "${PIP_EXTRA_INDEX_URL:-}" ]] || echo "extra-index-url = $PIP_EXTRA_INDEX_URL"
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    echo "cert = /etc/ssl/certs/ca-certificates.crt"
    mounts+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
} >"$ctx/pip.conf"
mounts+=(--volume "$ctx/pip.conf:/etc/pip.conf:ro")

# build NAME DOCKERFILE CONTEXT [ARGS...]: prints localhost/NAME:<image id>.
build() {
  local name="$1" dockerfile="$2" context="$3" id ref
  shift 3
  say "building $name"
  pod build --network host --layers --quiet --file "$dockerfile" --tag "localhost/$name:dev" \
    "${mounts[@]}" "$@" "$context" >/dev/null
  id="$(pod image inspect --format '{{.Id}}' "localhost/$name:dev")"
  ref="localhost/$name:${id:0:12}"
  pod tag "localhost/$name:dev" "$ref"
  echo "$ref"
}

# The sandbox every pod of the real node starts first: it only has to hold the namespaces.
mkdir -p "$ctx/pause"
cat >"$ctx/pause/Dockerfile" <<'EOF'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
USER 65535:65535
ENTRYPOINT ["sleep", "infinity"]
EOF
pause="$(build aiops-pause "$ctx/pause/Dockerfile" "$ctx/pause" --build-arg "BASE_IMAGE=$base")"

# kubectl for the operator's image: the one built in hack/tools, not a download.
mkdir -p "$ctx/kubectl"
cp "$bin/kubectl" "$ctx/kubectl/kubectl"
cat >"$ctx/kubectl/Dockerfile" <<'EOF'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY kubectl /usr/local/bin/kubectl
EOF
kubectl_image="$(build aiops-kubectl "$ctx/kubectl/Dockerfile" "$ctx/kubectl" --build-arg "BASE_IMAGE=$base")"

operator="$(build aiops-operator "$root/operator/Dockerfile" "$root" \
  --build-arg "PYTHON_IMAGE=$base" --build-arg "KUBECTL_IMAGE=$kubectl_image")"
ratelimiter="$(build aiops-ratelimiter "$root/subjects/ratelimiter/Dockerfile" \
  "$root/subjects/ratelimiter" --build-arg "PYTHON_IMAGE=$base")"

mkdir -p "$ctx/redis"
cat >"$ctx/redis/Dockerfile" <<'EOF'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
USER redis
ENTRYPOINT ["redis-server"]
EOF
redis="$(build aiops-redis "$ctx/redis/Dockerfile" "$ctx/redis" --build-arg "BASE_IMAGE=$base")"

mkdir -p "$ctx/toxiproxy"
cp "$bin/toxiproxy-server" "$ctx/toxiproxy/toxiproxy"
cat >"$ctx/toxiproxy/Dockerfile" <<'EOF'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY toxiproxy /toxiproxy
USER 65534:65534
ENTRYPOINT ["/toxiproxy"]
EOF
toxiproxy="$(build aiops-toxiproxy "$ctx/toxiproxy/Dockerfile" "$ctx/toxiproxy" --build-arg "BASE_IMAGE=$base")"
say "images built in $((SECONDS - t0)) s"

# --- one archive for `ctr -n k8s.io images import` ----------------------------------------
# All images in one docker-archive: the base layer they share is written (and imported) once.
# It is rewritten only when an image changed (images.list names them, tags included).
refs=("$pause" "$operator" "$ratelimiter" "$redis" "$toxiproxy")
if [[ ! -s "$out/images.tar" ]] || [[ "$(cat "$out/images.list" 2>/dev/null)" != "$(printf '%s\n' "${refs[@]}")" ]]; then
  rm -f "$out/images.list"
  pod save --multi-image-archive --format docker-archive --output "$out/images.tar.partial" \
    "${refs[@]}" >/dev/null
  mv "$out/images.tar.partial" "$out/images.tar"
  printf '%s\n' "${refs[@]}" >"$out/images.list"
fi
cat >"$out/images.env" <<EOF
PAUSE_IMAGE=$pause
OPERATOR_IMAGE=$operator
RATELIMITER_IMAGE=$ratelimiter
REDIS_IMAGE=$redis
TOXIPROXY_IMAGE=$toxiproxy
EOF
echo "$pause" >"$out/sandbox-image"
say "images saved to $out in $((SECONDS - t0)) s"
cat "$out/images.env"
