#!/usr/bin/env bash
# Run the whole suite. Starts the services the tests need; an empty selection is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/reserve-ports.sh  # the fixed ports below never go to a port picked by binding to 0

# The Docker engine, Compose, busybox, the registry and the test images (SPEC section 7).
scripts/docker.sh || { echo "error: could not provide a Docker engine for the tests" >&2; exit 1; }
scripts/test-images.sh || { echo "error: could not build the test images" >&2; exit 1; }

if [ -z "${MOORAGE_TEST_DATABASE_URL:-}" ] && [ "${MOORAGE_TEST_SKIP_POSTGRES:-}" != "1" ]; then
  if url=$(scripts/postgres.sh); then
    export MOORAGE_TEST_DATABASE_URL="$url"
  else
    echo "warning: PostgreSQL could not be started; store tests run on SQLite only" >&2
  fi
fi

# The off-site targets' servers (SPEC section 11): an sshd of our own and an S3-compatible
# server, both on loopback ports.
if dir=$(scripts/sftp.sh); then export MOORAGE_TEST_SFTP_DIR="$dir"; else
  echo "error: could not start the test SFTP server" >&2; exit 1; fi
if url=$(scripts/s3.sh); then export MOORAGE_TEST_S3_URL="$url"; else
  echo "error: could not start the test S3 server" >&2; exit 1; fi

# The proxy's parts (SPEC section 12): Debian's Caddy (Moorage starts it), BIND with a
# TSIG-signed test zone, and pebble as the ACME CA, all on loopback.
scripts/caddy.sh >/dev/null || { echo "error: could not install Caddy" >&2; exit 1; }
if dns=$(scripts/bind.sh); then
  read -r MOORAGE_TEST_DNS_SERVER MOORAGE_TEST_TSIG_NAME MOORAGE_TEST_TSIG_SECRET <<<"$dns"
  export MOORAGE_TEST_DNS_SERVER MOORAGE_TEST_TSIG_NAME MOORAGE_TEST_TSIG_SECRET
else echo "error: could not start the test BIND" >&2; exit 1; fi
if acme=$(scripts/pebble.sh); then
  read -r MOORAGE_TEST_ACME_DIRECTORY MOORAGE_TEST_ACME_CA_ROOT <<<"$acme"
  export MOORAGE_TEST_ACME_DIRECTORY MOORAGE_TEST_ACME_CA_ROOT
else echo "error: could not start pebble" >&2; exit 1; fi

# A base temp dir of our own: pytest prunes its shared one, and another run on the same
# machine must not delete the data directory under this run's live server.
basetemp=$(mktemp -d "${TMPDIR:-/tmp}/moorage-pytest-XXXXXX")

# Parallel workers (pytest-xdist): the suite mostly waits on containers, servers and
# browsers, so more workers than cores. Each worker has its own session server, its
# own Docker label (tests/conftest.py RUN_ID) and its own PostgreSQL database; tests
# marked xdist_group share a worker. MOORAGE_TEST_WORKERS=1 runs in one process.
workers=${MOORAGE_TEST_WORKERS:-4}  # 3 took 27.5 min in CI on 2 cores, 4 took 21.6
parallel=()
if [ "$workers" -gt 1 ]; then parallel=(-n "$workers" --dist loadgroup); fi

# Interrupted (Ctrl-C, a CI timeout), pytest still tears down: it stops the servers it
# started and removes their containers, instead of leaving them running.
.venv/bin/python -m pytest --basetemp="$basetemp" --durations=15 "${parallel[@]}" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' INT TERM
rc=0
wait "$pid" || rc=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || rc=$?; done
rm -rf "$basetemp"
if [ "$rc" -eq 5 ]; then
  echo "no tests were selected"
  rc=0
fi
exit "$rc"
