#!/usr/bin/env bash
# Start Debian's BIND (named) on 127.0.0.1:58053 with the zone moorage.test, open to
# dynamic updates (RFC 2136) signed with the TSIG key moorage-test (hmac-sha256), for the
# rfc2136 DNS provider and DNS-01 (SPEC section 12). app.moorage.test and
# www.moorage.test point at 127.0.0.1 (for HTTP-01 through pebble); every other name is
# the tests' to add. Idempotent; prints "<addr:port> <key name> <key secret base64>".
set -euo pipefail
DIR=/tmp/moorage-test-bind
PORT=58053
{ command -v named && command -v dig; } >/dev/null 2>&1 ||
  { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bind9 bind9-utils bind9-dnsutils >&2; }
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now named >/dev/null 2>&1 || true; fi
mkdir -p "$DIR"
[ -f "$DIR/key.conf" ] || tsig-keygen -a hmac-sha256 moorage-test >"$DIR/key.conf"
secret=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$DIR/key.conf")
if ! { [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; }; then
  # A fresh zone each start: names the tests added last time are gone.
  cat >"$DIR/moorage.test.zone" <<ZONE
\$TTL 60
@   IN SOA ns.moorage.test. hostmaster.moorage.test. (1 60 60 600 60)
@   IN NS  ns.moorage.test.
ns  IN A   127.0.0.1
app IN A   127.0.0.1
www IN A   127.0.0.1
ZONE
  rm -f "$DIR"/*.jnl
  cat >"$DIR/named.conf" <<CONF
include "$DIR/key.conf";
options {
  directory "$DIR";
  pid-file "$DIR/pid";
  listen-on port $PORT { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  allow-query { 127.0.0.1; };
};
controls { };
zone "moorage.test" { type primary; file "$DIR/moorage.test.zone"; allow-update { key moorage-test; }; };
CONF
  rm -f "$DIR/pid"
  named -c "$DIR/named.conf" -u root >"$DIR/log" 2>&1 </dev/null ||
    { echo "named did not start; see $DIR/log" >&2; exit 1; }
  for _ in $(seq 100); do [ -s "$DIR/pid" ] && break; sleep 0.1; done
fi
for _ in $(seq 50); do
  dig +short -p "$PORT" @127.0.0.1 app.moorage.test A 2>/dev/null | grep -q 127.0.0.1 && break
  sleep 0.1
done
dig +short -p "$PORT" @127.0.0.1 app.moorage.test A | grep -q 127.0.0.1 ||
  { echo "named does not answer on 127.0.0.1:$PORT; see $DIR/log" >&2; exit 1; }
echo "127.0.0.1:$PORT moorage-test $secret"
