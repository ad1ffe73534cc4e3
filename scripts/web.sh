#!/usr/bin/env bash
# Install the UI's locked node dependencies and build web/ into web/build when it is
# missing or older than its sources. `make run` and `make test` both call this.
set -euo pipefail
# One build at a time: parallel test workers (pytest-xdist) each call this at start.
exec 9<"$0"
flock 9
cd "$(dirname "$0")/../web"

if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found; installing Debian's nodejs and npm" >&2
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi

# node_modules/.package-lock.json is npm's record of what it installed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

stamp=build/.built
if [ -f "$stamp" ] && [ -f build/index.html ] &&
   [ -z "$(find src static package-lock.json svelte.config.js vite.config.ts tsconfig.json -newer "$stamp" -print -quit)" ]; then
  exit 0
fi
echo "building the web UI" >&2
log=$(mktemp)
if ! npm run --silent build >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"
touch "$stamp"
