#!/usr/bin/env bash
# Start Debian's pebble, a small ACME CA for tests, on loopback (SPEC section 12). Its
# directory answers at https://127.0.0.1:58400/dir under a certificate from a test root
# this script makes with openssl (the package ships none); certificates it issues chain to
# a root it makes at start, served at https://127.0.0.1:58401/roots/0. It resolves names
# through the test BIND (scripts/bind.sh), so HTTP-01 reaches whatever that zone points at
# (app.moorage.test -> 127.0.0.1) on port 58002 (TLS-ALPN-01: 58001), and DNS-01 reads the
# TXT records the rfc2136 provider writes there. Idempotent; prints
# "<directory url> <root pem path>": the root is what MOORAGE_ACME_CA_ROOT takes.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=/tmp/moorage-test-pebble
URL=https://127.0.0.1:58400/dir
command -v pebble >/dev/null 2>&1 ||
  { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pebble >&2; }
dns=$(scripts/bind.sh | cut -d' ' -f1)
mkdir -p "$DIR"
if [ ! -f "$DIR/root.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=moorage test pebble root" -keyout "$DIR/root.key" -out "$DIR/root.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$DIR/san.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/root.pem" -CAkey "$DIR/root.key" \
    -CAcreateserial -days 3650 -extfile "$DIR/san.ext" -out "$DIR/server.pem" 2>/dev/null
fi
cat >"$DIR/config.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:58400", "managementListenAddress": "127.0.0.1:58401",
  "certificate": "$DIR/server.pem", "privateKey": "$DIR/server.key",
  "httpPort": 58002, "tlsPort": 58001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
if ! { [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; }; then
  # No random sleeps before validating, and no refused nonces: tests, not a CA under fire.
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 setsid nohup pebble -config "$DIR/config.json" \
    -dnsserver "$dns" >"$DIR/log" 2>&1 </dev/null &
  echo $! >"$DIR/pid"
  for _ in $(seq 100); do
    curl -fsS --cacert "$DIR/root.pem" -o /dev/null "$URL" 2>/dev/null && break
    sleep 0.1
  done
fi
curl -fsS --cacert "$DIR/root.pem" -o /dev/null "$URL" ||
  { echo "pebble did not start; see $DIR/log" >&2; exit 1; }
echo "$URL $DIR/root.pem"
