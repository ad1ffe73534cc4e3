#!/usr/bin/env bash
# Build the local test images (FROM scratch + Debian's static busybox); no registry needed.
# Rebuilds only when a Dockerfile changed.
set -euo pipefail
cd "$(dirname "$0")/.."

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
# The Debian-based PostgreSQL of the stack tests: debootstrap + docker import, its own cache.
scripts/test-image-postgres.sh
