#!/bin/sh
# Debian's chromium in a network namespace of its own (tests/e2e/isolation.py says why).
# Inside it there is only loopback; socat turns its 127.0.0.1:1080 into the Unix socket
# $MOORAGE_E2E_SOCKS, where the test process answers SOCKS5 in the host's namespace (a Unix
# socket is a file: it reaches across namespaces). Playwright's arguments pass through.
set -eu
exec unshare --net -- /bin/sh -c '
  set -eu
  ip link set lo up
  socat TCP-LISTEN:1080,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:"$MOORAGE_E2E_SOCKS" &
  forwarder=$!
  tries=0
  until socat -u OPEN:/dev/null TCP:127.0.0.1:1080 2>/dev/null; do
    tries=$((tries + 1)); [ "$tries" -lt 100 ] || exit 1; sleep 0.05
  done
  rc=0
  /usr/bin/chromium "$@" || rc=$?
  kill "$forwarder" 2>/dev/null || true
  exit "$rc"' chromium "$@"
