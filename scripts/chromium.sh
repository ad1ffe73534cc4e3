#!/usr/bin/env bash
# Debian's chromium for the end-to-end tests (no browser download is possible here).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "installing Debian's chromium" >&2
if [ "$(id -u)" -ne 0 ]; then echo "error: installing chromium needs root" >&2; exit 1; fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
