#!/usr/bin/env bash
# Make sure Debian's Docker engine, Compose v1, static busybox, the registry and htpasswd are
# installed and that dockerd runs. Idempotent; `make run` and `make test` both call it.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd" >&2
  # Debian's registry package enables its own service on :5000 where systemd runs; tests
  # start their own registry, so nothing here depends on it.
  # Moorage makes one bridge network per project and stage; Docker's default pools hold
  # only about 30, so give it room for 4096 /24 networks inside 172.16.0.0/12.
  # In a session of its own: dockerd must outlive the shell, test run or job that
  # happened to start it (a job's process group is killed when the job ends).
  setsid nohup dockerd --default-address-pool base=172.16.0.0/12,size=24 \
    >/var/log/moorage-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/moorage-dockerd.log" >&2; exit 1; }
fi
