"""The monitoring policy: a site's works-council agreement as a checked, versioned file.

Layer 2 (pure): ``load_policy`` turns TOML text into a ``Policy`` or a ``PolicyError`` that
lists every problem with its line; ``decide`` answers whether an actor may listen to (or
change) a call; ``leg_audibility`` says which legs are heard. The file format is documented
in ``deploy/policy.example.toml``. Only ``check.py`` reads a file, for ``live policy check``.
"""

from .check import check_policy_file, read_policy_file
from .decide import (
    Action,
    Actor,
    Decision,
    LegAudibility,
    Listen,
    Reason,
    SetConsent,
    SetPci,
    ViewRosterCall,
    announced,
    decide,
    in_scope,
    leg_audibility,
    listener_label,
    notice_mode_for,
    supervisor_scope,
    unannounced,
    within_hours,
)
from .listener import RoleOf, ShownListener, shown_listener
from .model import (
    CallerConsent,
    Exclusion,
    Hours,
    NoticeMode,
    Notices,
    Policy,
    Quotas,
    ScopeGrant,
    SupervisorGrant,
    Team,
)
from .parse import content_sha256, load_policy
from .problems import PolicyError, PolicyProblem
from .quota import QuotaState, StartedListen, day_bounds, month_bounds, quota_left, quota_state
from .schedule import DigestSchedule, HoursWindow

__all__ = [
    "Action",
    "Actor",
    "CallerConsent",
    "Decision",
    "DigestSchedule",
    "Exclusion",
    "Hours",
    "HoursWindow",
    "LegAudibility",
    "Listen",
    "NoticeMode",
    "Notices",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "QuotaState",
    "Quotas",
    "Reason",
    "RoleOf",
    "ScopeGrant",
    "SetConsent",
    "SetPci",
    "ShownListener",
    "StartedListen",
    "SupervisorGrant",
    "Team",
    "ViewRosterCall",
    "announced",
    "check_policy_file",
    "content_sha256",
    "day_bounds",
    "decide",
    "in_scope",
    "leg_audibility",
    "listener_label",
    "load_policy",
    "month_bounds",
    "notice_mode_for",
    "quota_left",
    "quota_state",
    "read_policy_file",
    "shown_listener",
    "supervisor_scope",
    "unannounced",
    "within_hours",
]
