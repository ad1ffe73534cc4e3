#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1:55432 for the store tests (installing
# Debian's postgresql when missing) and print its SQLAlchemy URL. Idempotent.
set -euo pipefail
PORT=55432
DIR=/tmp/moorage-test-pg
URL="postgresql+psycopg://moorage@127.0.0.1:${PORT}/moorage"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ -z "$(bindir)" ]; then
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2
fi
BIN=$(bindir)
[ -n "$BIN" ] || { echo "postgresql is not installed" >&2; exit 1; }

as_pg() { runuser -u postgres -- "$@"; }

if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  if [ ! -f "$DIR/PG_VERSION" ]; then
    rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR"
    as_pg "$BIN/initdb" -D "$DIR" -A trust -U postgres >/dev/null
  fi
  as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c fsync=off" start >/dev/null
fi
psql_() { as_pg psql -h 127.0.0.1 -p "$PORT" -U postgres -tAq "$@"; }
if [ "$(psql_ -c "select 1 from pg_roles where rolname='moorage'")" != "1" ]; then
  psql_ -c "create role moorage login createdb" >/dev/null
fi
psql_ -c "alter role moorage createdb" >/dev/null  # each test run makes its own database
# DROP DATABASE ... WITH (FORCE) ends every session on it, an autovacuum worker's too, and
# PostgreSQL lets only pg_signal_backend end a session that belongs to no role.
psql_ -c "grant pg_signal_backend to moorage" >/dev/null
if [ "$(psql_ -c "select 1 from pg_database where datname='moorage'")" != "1" ]; then
  psql_ -c "create database moorage owner moorage" >/dev/null
fi
echo "$URL"
