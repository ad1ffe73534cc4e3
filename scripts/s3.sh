#!/usr/bin/env bash
# Start a throwaway S3-compatible server for the off-site tests: moto's server mode (the
# `moto[server]` dev dependency, installed with the venv) on 127.0.0.1:59000, in memory.
# Idempotent; prints its endpoint URL. Any access key is accepted; the tests make their
# own buckets (vhost-bucket.s3.moorage.test resolves to 127.0.0.1, for virtual-host style).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=59000
DIR=/tmp/moorage-test-s3
URL="http://127.0.0.1:${PORT}"
mkdir -p "$DIR"
# Virtual-host addressing puts the bucket in the host name: the tests' bucket resolves here.
grep -q " vhost-bucket.s3.moorage.test" /etc/hosts ||
  echo "127.0.0.1 s3.moorage.test vhost-bucket.s3.moorage.test" >>/etc/hosts
[ -x .venv/bin/moto_server ] || { echo "moto_server is missing: run make install" >&2; exit 1; }
if ! { [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; }; then
  # In a session of its own, so it outlives the run that started it.
  setsid nohup .venv/bin/moto_server -H 127.0.0.1 -p "$PORT" >"$DIR/log" 2>&1 </dev/null &
  echo $! >"$DIR/pid"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$URL/moto-api/" 2>/dev/null && break
    sleep 0.1
  done
fi
curl -fsS -o /dev/null "$URL/moto-api/" || { echo "moto_server did not start; see $DIR/log" >&2; exit 1; }
echo "$URL"
