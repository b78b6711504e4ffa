"""What the agent sees of the listener: the one rule.

COMPLIANCE.md ("Disclosure"; EU Court C-579/21): an agent learns the dates and purposes of
every listen on their calls, and who listened only where the policy discloses it
(``[disclosure] listener_names``). Everything that shows an agent a listener goes through
``shown_listener``: the live indicator and notices, the agent page's history, the
disclosure export, reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UNKNOWN_ROLE = "listener"
"""The role shown when none is recorded or known (erased details, a deleted user)."""

RoleOf = Callable[[str], str | None]
"""The current role of a user id, if known."""


@dataclass(frozen=True, slots=True)
class ShownListener:
    """The listener as shown to the agent: a name, or a role id (``supervisor``) that the
    reader's language labels (``live.l10n.label("role", ...)``)."""

    text: str
    is_role: bool


def shown_listener(
    *,
    names: bool,
    display_name: str | None,
    user_id: str | None,
    role: str | None,
    role_of: RoleOf | None = None,
) -> ShownListener:
    """With ``names`` (the policy discloses them), the display name, else the user id, while
    these personal details exist; otherwise, or once erased, the role: the one recorded
    with the listen, else the user's role now (``role_of``), else ``listener``."""
    if names:
        name = display_name or user_id
        if name:
            return ShownListener(name, False)
    if not role and user_id and role_of is not None:
        role = role_of(user_id)
    return ShownListener(role or UNKNOWN_ROLE, True)
