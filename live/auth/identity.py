"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass

from ..types import Role


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    display_name: str
    role: Role
    teams: tuple[str, ...] = ()
    via: str = "session"  # "session" (cookie) or "token" (Authorization: Bearer)
    session_id: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "role": self.role.value,
            "teams": list(self.teams),
        }
