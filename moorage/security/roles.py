"""Roles and who may do what: viewer < operator < admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
_RANK: dict[str, int] = {role: i for i, role in enumerate(ROLES)}


def allows(have: str, need: Role) -> bool:
    return _RANK.get(have, -1) >= _RANK[need]


@dataclass(frozen=True)
class Actor:
    """Who is acting: the audit log's 'who', and the subject of every role check."""

    user_id: str
    username: str
    role: str
    via: Literal["token", "session", "cli", "system"]

    def can(self, need: Role) -> bool:
        return allows(self.role, need)


SYSTEM = Actor(user_id="", username="system", role="admin", via="system")
