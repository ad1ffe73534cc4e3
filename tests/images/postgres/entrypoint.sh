#!/bin/sh
# Start Debian's PostgreSQL on $PGDATA (default /var/lib/postgresql/data), making the cluster
# on first start. Trust auth on loopback and the container network: a test database only.
set -eu
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | head -n1)
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  su postgres -s /bin/sh -c "$PGBIN/initdb -D '$PGDATA' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
  printf "listen_addresses = '*'\njit = off\n" >>"$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >>"$PGDATA/pg_hba.conf"
fi
# `docker stop` sends SIGTERM (a "smart" shutdown that waits for every client); a test stack
# wants the "fast" one (SIGINT): roll back open transactions, checkpoint, exit.
setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$PGDATA" -k /run/postgresql &
pid=$!
trap 'kill -INT $pid' TERM INT
wait $pid || true
wait $pid
