#!/usr/bin/env bash
# Install Debian's Caddy when it is missing (SPEC section 12: the reverse proxy). Moorage
# starts and supervises Caddy itself (moorage/proxy/); this script only installs it and
# stops the service Debian's package starts, so ports 80/443 and the admin port stay free
# for the one Moorage runs. Idempotent; prints the path of the caddy binary.
set -euo pipefail
if ! command -v caddy >/dev/null 2>&1; then
  apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q caddy >&2
  # The package's own service, where an init system started it: Moorage runs its own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now caddy >/dev/null 2>&1 || true; fi
fi
command -v caddy
