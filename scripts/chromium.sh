#!/usr/bin/env bash
# Debian's chromium for the end-to-end tests (no browser download is possible here), and
# what runs it in a network namespace of its own (tests/e2e/isolation.py): socat, ip.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v socat >/dev/null || missing+=(socat)
command -v ip >/dev/null || missing+=(iproute2)
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi
echo "installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then echo "error: installing ${missing[*]} needs root" >&2; exit 1; fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
