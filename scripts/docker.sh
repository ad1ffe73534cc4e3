#!/usr/bin/env bash
# Make sure Debian's Docker engine, Compose v1, static busybox, the registry and htpasswd are
# installed, that dockerd runs, and that the local test images exist. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd" >&2
  # Debian's registry package enables its own service on :5000 where systemd runs; tests
  # start their own registry, so nothing here depends on it.
  nohup dockerd >/var/log/moorage-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/moorage-dockerd.log" >&2; exit 1; }
fi

build() {  # build TAG DIR [ARGS...]
  local tag=$1 dir=$2; shift 2
  local ctx; ctx=$(mktemp -d)
  cp -r "$dir"/. "$ctx"/
  cp /bin/busybox "$ctx"/busybox
  docker build -q -t "$tag" "$@" "$ctx" >/dev/null 2>"$ctx.log" || { cat "$ctx.log" >&2; exit 1; }
  rm -f "$ctx.log"
  rm -rf "$ctx"
}
fingerprint=$(cat tests/images/*/Dockerfile | sha256sum | cut -c1-12)
if [ "$(docker image inspect -f '{{index .Config.Labels "moorage.fingerprint"}}' moorage-test/healthy:1 2>/dev/null)" != "$fingerprint" ]; then
  echo "building test images" >&2
  build moorage-test/httpd:1 tests/images/httpd --build-arg VERSION=v1
  build moorage-test/httpd:2 tests/images/httpd --build-arg VERSION=v2
  build moorage-test/healthy:1 tests/images/healthy --label "moorage.fingerprint=$fingerprint"
fi
