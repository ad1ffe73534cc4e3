"""Start-up: data directory, schema migrations, plugin registry and the first admin.

Runs before anything is served, for ``moorage serve`` and for the offline
management commands alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from moorage.plugins.registry import Registry
from moorage.security import secrets as sec
from moorage.security.roles import SYSTEM
from moorage.services import users
from moorage.settings import Settings
from moorage.store.db import Database

FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    username: str
    password: str
    generated: bool


def open_store(settings: Settings) -> Database:
    """Create the data directory if needed and migrate the database to the newest schema."""
    # Secrets (env values, the database, archives of user data) live here: owner only.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    db = Database(settings.database_url)
    db.migrate()
    return db


def ensure_first_admin(settings: Settings, db: Database) -> FirstAdmin | None:
    """Create the ``admin`` user when there are no users yet; return it so it can be printed."""
    with db.session() as session:
        if users.count(session):
            return None
        password = settings.admin_password or sec.generate_password()
        users.create(session, SYSTEM, username=FIRST_ADMIN, role="admin", password=password)
    return FirstAdmin(FIRST_ADMIN, password, generated=settings.admin_password is None)


def load_registry() -> Registry:
    return Registry.load()
