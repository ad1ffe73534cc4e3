#!/usr/bin/env bash
# Autogenerate an Alembic migration from moorage/store/tables.py: scripts/new-migration.sh "add x"
# It diffs the tables against a scratch SQLite database migrated to head; review the result.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 \"what the migration does\"" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
.venv/bin/python - "$1" "$scratch/scratch.db" <<'PY'
import sys

from alembic import command
from alembic.config import Config

from moorage.store.db import MIGRATIONS_DIR, Database

message, path = sys.argv[1], sys.argv[2]
Database(f"sqlite:///{path}").migrate()
cfg = Config()
cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
command.revision(cfg, message=message, autogenerate=True)
PY
