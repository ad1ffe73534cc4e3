#!/usr/bin/env bash
# The real database of the stack tests (issue 16): a Debian base made with debootstrap and
# `docker import`, with Debian's PostgreSQL installed into it on the host (a container reaches
# no package mirror). Tagged moorage-test/postgres:1 and rebuilt only when this recipe changes:
# the image carries the recipe's hash in its label moorage.fingerprint. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=moorage-test/postgres:1
suite=bookworm
fingerprint=$( (cat "$0" tests/images/postgres/entrypoint.sh; echo "$suite") | sha256sum | cut -c1-12)
if [ "$(docker image inspect -f '{{index .Config.Labels "moorage.fingerprint"}}' "$tag" 2>/dev/null)" = "$fingerprint" ]; then
  exit 0
fi
echo "building $tag (debootstrap, a few minutes once)" >&2

command -v debootstrap >/dev/null || {
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null
}
# The host's own Debian mirror: the first one its apt sources name.
mirror=$(grep -hoE '^(URIs:|deb) +[a-z]+://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | awk '{print $2}' | grep -v security | head -n1 || true)
[ -n "$mirror" ] || { echo "error: no Debian mirror in the host's apt sources" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/moorage-pgimage-XXXXXX")
cleanup() {
  for m in proc sys dev; do umount -l "$root/rootfs/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT
rootfs=$root/rootfs
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
# No documentation, manuals or translations (keeps the image small).
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$root/debootstrap.log" 2>&1 \
  || { tail -n 30 "$root/debootstrap.log" >&2; exit 1; }
# Services never start inside the chroot; the package makes no default cluster.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
mkdir -p "$rootfs/etc/postgresql-common"
echo "create_main_cluster = false" >"$rootfs/etc/postgresql-common/createcluster.conf"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" /bin/sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null" \
  || { echo "error: apt-get install postgresql in the chroot failed" >&2; exit 1; }
umount "$rootfs/proc"
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs/usr/sbin/policy-rc.d"
# Trim what a test database never loads: the JIT (LLVM, about 130 MB; the entrypoint sets
# jit = off) and message translations.
rm -rf "$rootfs"/usr/lib/x86_64-linux-gnu/libLLVM* "$rootfs"/usr/lib/postgresql/*/lib/llvmjit* \
  "$rootfs"/usr/lib/postgresql/*/lib/bitcode "$rootfs"/usr/share/locale/*
install -m 0755 tests/images/postgres/entrypoint.sh "$rootfs/usr/local/bin/pg-entrypoint"

tar -C "$rootfs" -c . | docker import \
  --change "LABEL moorage.fingerprint=$fingerprint" \
  --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change 'EXPOSE 5432' \
  --change 'CMD ["/usr/local/bin/pg-entrypoint"]' \
  - "$tag" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)" >&2
