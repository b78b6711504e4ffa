"""Which SIPREC stream is the agent's and which the caller's, and what else the call says.

Pure: from the offer's audio streams (their ``a=label``), the recording metadata (RFC 7865)
and the INVITE's headers, decide the agent and caller legs, the agent's id, the queue, the
caller's consent and the call's own id. The rules, in order (the first that decides wins):

1. a participant whose AoR's user part is an agent known here (the policy's teams or the user
   store) is the agent;
2. a participant whose AoR matches ``LIVE_SIPREC_AGENT_AOR`` (a regular expression) is the
   agent;
3. the stream whose label is ``LIVE_SIPREC_AGENT_LABEL`` carries the agent.

The agent's leg is the stream the agent *sends* on (``participantstreamassoc``/``send``); the
other stream is the caller's. Where no rule decides, the call is still shown with the agent
unknown (``agent_id`` empty, which only admins and the open-scope default policy can see);
then the first offered stream is taken as the caller's and the second as the agent's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..types import Consent, LegName
from .sip import user_part
from .sip.metadata import Participant, RecordingMetadata

MAX_CALL_ID = 128
_SAFE_ID = re.compile(r"[^A-Za-z0-9._:@+=-]")


@dataclass(frozen=True, slots=True)
class AgentRules:
    """The settings that say which participant is the agent."""

    agent_aor: re.Pattern[str] | None = None
    agent_label: str = ""
    call_id_header: str = "X-Live-Call-Id"
    queue_header: str = "X-Live-Queue"
    consent_header: str = "X-Live-Consent"

    @staticmethod
    def extension_key(header: str) -> str:
        """The metadata extension element that may carry what ``header`` carries:
        ``X-Live-Queue`` → ``queue``, ``X-Live-Call-Id`` → ``callid``."""
        name = header.lower()
        for prefix in ("x-live-", "x-"):
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        return name.replace("-", "").replace("_", "")


@dataclass(frozen=True, slots=True)
class LegAssignment:
    """The decision for one recording session."""

    legs: dict[str, LegName]  # stream label -> leg
    agent_id: str
    decided_by: str  # "known-agent" | "agent-aor" | "agent-label" | "none"
    call_id: str
    queue: str = ""
    consent: Consent | None = None  # None: neither a header nor the metadata says
    attributes: dict[str, str] = field(default_factory=dict)


def _labels_sent_by(meta: RecordingMetadata, participant: Participant) -> list[str]:
    labels = {s.stream_id: s.label for s in meta.streams}
    return [labels[sid] for sid in participant.send if labels.get(sid)]


def _agent_participant(
    meta: RecordingMetadata, rules: AgentRules, known_agent: Callable[[str], bool]
) -> tuple[Participant | None, str, str]:
    """(the agent's participant, its agent id, the rule that decided) or (None, "", "none")."""
    for participant in meta.participants:
        for aor in participant.aors:
            user = user_part(aor)
            if user and known_agent(user):
                return participant, user, "known-agent"
    if rules.agent_aor is not None:
        for participant in meta.participants:
            for aor in participant.aors:
                if rules.agent_aor.search(aor):
                    return participant, user_part(aor), "agent-aor"
    return None, "", "none"


def _clean_id(value: str) -> str:
    return _SAFE_ID.sub("_", value.strip())[:MAX_CALL_ID]


def assign_legs(
    labels: Sequence[str],
    meta: RecordingMetadata | None,
    headers: Mapping[str, str],
    sip_call_id: str,
    rules: AgentRules,
    known_agent: Callable[[str], bool],
) -> LegAssignment:
    """Decide the legs of the (at most two) audio streams with ``labels``, in offer order.

    ``headers`` are the INVITE's headers by lower-cased name (first value each).
    """
    empty = RecordingMetadata((), (), (), {})
    meta = meta or empty
    participant, agent_id, decided_by = _agent_participant(meta, rules, known_agent)
    agent_label = ""
    if participant is not None:
        sent = [label for label in _labels_sent_by(meta, participant) if label in labels]
        agent_label = sent[0] if sent else ""
        if not agent_label:  # the agent is known, but not which stream is theirs
            participant, agent_id, decided_by = None, "", "none"
    if not agent_label and rules.agent_label and rules.agent_label in labels:
        agent_label, decided_by = rules.agent_label, "agent-label"
        for candidate in meta.participants:
            if rules.agent_label in _labels_sent_by(meta, candidate) and candidate.aors:
                agent_id = user_part(candidate.aors[0])
                break
    legs: dict[str, LegName] = {}
    if agent_label:
        for label in labels:
            legs[label] = "agent" if label == agent_label else "caller"
    else:
        decided_by, agent_id = "none", ""
        for index, label in enumerate(labels[:2]):
            legs[label] = "caller" if index == 0 else "agent"

    def pick(header: str) -> str:
        value = headers.get(header.lower(), "").strip()
        if not value:
            value = meta.extensions.get(rules.extension_key(header), "").strip()
        return value

    call_id = _clean_id(pick(rules.call_id_header)) or _clean_id(sip_call_id)
    attributes = {"sip_call_id": sip_call_id[:MAX_CALL_ID], "agent_rule": decided_by}
    if meta.session_ids:
        attributes["siprec_session"] = meta.session_ids[0][:MAX_CALL_ID]
    return LegAssignment(
        legs=legs,
        agent_id=agent_id[:MAX_CALL_ID],
        decided_by=decided_by,
        call_id=call_id,
        queue=pick(rules.queue_header)[:MAX_CALL_ID],
        consent=Consent.parse(consent) if (consent := pick(rules.consent_header)) else None,
        attributes=attributes,
    )
