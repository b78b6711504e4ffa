"""The demo's people and their sign-in links, stable across restarts of one data directory.

``live demo`` prints one link per person. Their tokens are kept in ``demo-tokens.json`` in
the data directory (created 0o600: a token is a password), so a bookmarked link keeps working
after a restart; a token that no longer signs its person in (the user store was reset, the
token withdrawn) is replaced by a new one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..auth import UserStore
from ..types import Role
from .voices import demo_calls

log = logging.getLogger(__name__)

TOKENS_FILE = "demo-tokens.json"


@dataclass(frozen=True, slots=True)
class DemoPerson:
    label: str
    user_id: str
    display_name: str
    role: Role
    teams: tuple[str, ...]


_FIRST_CALL = demo_calls()[0]

DEMO_PEOPLE = (
    DemoPerson("supervisor", "demo-supervisor", "Sam Supervisor", Role.SUPERVISOR, ("billing", "support", "sales")),
    DemoPerson("agent", _FIRST_CALL.agent_id, "Alex Agent", Role.AGENT, (_FIRST_CALL.queue,)),
    DemoPerson("auditor", "demo-auditor", "Dana Auditor", Role.AUDITOR, ()),
)


@dataclass(frozen=True, slots=True)
class DemoLink:
    person: DemoPerson
    url: str

    def who(self) -> str:
        """Whom the link signs in as (for the agent: whose calls the agent page shows)."""
        person = self.person
        text = f"signs in as {person.display_name} ({person.user_id})"
        if person.role is Role.AGENT:
            text += f", the agent of the first simulated call ({person.teams[0]})"
        return text


def _read_tokens(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s); the demo issues new sign-in links", path, exc)
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)}


def _write_tokens(path: Path, tokens: dict[str, str]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(tokens, file, indent=2, sort_keys=True)
    os.chmod(temporary, 0o600)  # also when an older file was there with wider rights
    os.replace(temporary, path)


def _ensure_person(users: UserStore, person: DemoPerson) -> None:
    """The person as the demo describes them; an existing user who differs is replaced."""
    existing = next((u for u in users.list() if u.user_id == person.user_id), None)
    if existing is not None:
        if (existing.role, existing.display_name, existing.teams) == (
            person.role,
            person.display_name,
            person.teams,
        ):
            return
        users.remove(person.user_id)
    users.add(person.user_id, person.role, display_name=person.display_name, teams=person.teams)


def demo_links(users: UserStore, data_dir: Path, base_url: str) -> list[DemoLink]:
    """Every demo person in ``users`` and their sign-in link, reusing the kept tokens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TOKENS_FILE
    kept = _read_tokens(path)
    links = []
    for person in DEMO_PEOPLE:
        _ensure_person(users, person)
        token = kept.get(person.user_id)
        holder = users.by_token(token) if token else None
        if token is None or holder is None or holder.user_id != person.user_id:
            token = users.issue_token(person.user_id)
        kept[person.user_id] = token
        links.append(DemoLink(person, f"{base_url}/auth/link?token={token}"))
    _write_tokens(path, kept)
    return links
