"""The JSON bodies of the HTTP API (sign-in, supervisors, calls, agents, telephony, operations).

Handlers build their answers from these models and routes declare them, so the OpenAPI
document is generated from what is sent. Models of shapes a lower layer builds (a call, a
notice, a listen record) allow extra fields: the API may grow, and the layer's own fields
pass through unchanged. ``live.server.schemas_audit`` holds those of ``/api/audit/…``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeInt

from ..types import Role
from .bodies import RequestBody

ConsentValue = Literal["granted", "denied", "unknown"]  # live.types.Consent
Codec = Literal["PCMU", "PCMA"]
Leg = Literal["agent", "caller"]
BOUNDS = (
    "Set when the server died during the listen (end_reason node-lost): the true end is "
    "unknowable and lies between ended_after (its last proof of life) and ended_before "
    "(the restart); ended_at is then ended_after and duration_s the shortest duration."
)


class Open(BaseModel):
    """A shape built by a lower layer: its extra fields are sent as they are."""

    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- shared


class ErrorDetail(Open):
    """Some errors carry more fields, e.g. ``policy_version`` or ``problems``."""

    code: str
    message: str


class Error(BaseModel):
    error: ErrorDetail


class Listener(Open):
    session_id: str
    user_id: str
    display_name: str
    purpose: str
    started_at: float


class Call(Open):
    call_id: str
    source: str
    agent_id: str
    started_at: float
    node_id: str
    consent: ConsentValue
    pci_paused: bool
    codec: Codec
    queue: str
    legs: list[Leg] = Field(
        description="The legs the source sends; a leg left out is not sent by the telephony."
    )
    listeners: list[Listener]
    agent_name: str | None = Field(
        default=None, description="The agent's display name (user store, else the call's metadata)."
    )
    team: str | None = Field(default=None, description="The agent's team (policy, else user store).")


class CallAnswer(BaseModel):
    call: Call


class Notice(Open):
    """A notice to an agent; kind-specific fields (call_id, session_id, ...) may follow."""

    id: str
    mode: str
    created_at: float
    text: str = Field(description="In the reader's language (`?lang=`, else `Accept-Language`).")
    texts: dict[str, str] = Field(description="The text in every language: `en`, `de`.")
    delivered_at: float | None
    seen_at: float | None


class HistoryRow(BaseModel):
    session_id: str | None
    call_id: str | None
    started_at: float | None
    ended_at: float | None
    ended_after: float | None = Field(description=BOUNDS)
    ended_before: float | None = Field(description=BOUNDS)
    duration_s: float | None
    purpose: str | None
    legs: list[str] | None
    listener: str = Field(description="The listener's name, or only their role.")
    listener_is_role: bool = Field(description="`listener` names a role, not a person.")
    policy_version: str | None
    end_reason: str | None
    heard_s: float | None
    attempt: bool = Field(
        description="The listener's browser never connected (setup-failed): nothing was heard."
    )


# --------------------------------------------------------------------------- operations


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    node_id: str


class NotReady(BaseModel):
    status: Literal["starting", "unavailable"]
    reason: str | None = None


# --------------------------------------------------------------------------- sign-in


class SignInMethods(BaseModel):
    link: bool
    password: bool
    oidc: bool


class SignIn(RequestBody):
    user: str
    password: str


class SignedIn(BaseModel):
    user_id: str
    home: str


class SignedOut(BaseModel):
    signed_out: bool


# --------------------------------------------------------------------------- supervisors


class IceServer(BaseModel):
    urls: str
    username: str | None = None
    credential: str | None = None


class Me(BaseModel):
    user_id: str
    display_name: str
    role: Role
    teams: list[str]
    purposes: list[str]
    policy_version: str | None
    listens_at_once: int = Field(description="How many listens this supervisor may run at once.")
    ice_servers: list[IceServer]
    csrf_token: str | None = Field(description="For cookie sessions: send as `X-CSRF-Token`.")


class Calls(BaseModel):
    calls: list[Call]


def _text_or_none(value: Any) -> Any:
    return value if isinstance(value, str) else None


class ListenOffer(RequestBody):
    error_code = "bad_sdp"
    error_codes = {"resumes": "bad_resumes"}

    sdp: str = Field(description="The browser's SDP offer (RFC 8866).")
    # Not a string, or missing: the policy refuses the listen (purpose_required), on record.
    purpose: Annotated[str | None, BeforeValidator(_text_or_none)] = Field(
        default=None,
        description="One of the purposes the policy allows (`purposes` in `GET /api/me`).",
        examples=["quality", "training"],
    )
    type: Literal["offer"] = "offer"
    resumes: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The session id of this supervisor's own interrupted listen to the same call "
        "that this one resumes (on record in `listen.started`).",
    )


class ListenLeg(BaseModel):
    leg: Leg
    mid: str | None
    audible: bool
    available: bool = Field(
        description="Whether the source sends this leg at all (false for the missing track of a "
        "one-track Twilio stream; reason `not_sent`)."
    )
    reason: str | None


class ListenAnswer(BaseModel):
    sdp: str
    type: Literal["answer"]
    session_id: str
    legs: list[ListenLeg]


class ListenStopped(BaseModel):
    session_id: str
    ended: Literal[True]
    duration_s: float


class RunningListen(BaseModel):
    session_id: str
    call_id: str
    purpose: str
    started_at: float
    dropped_packets: NonNegativeInt


class RunningListens(BaseModel):
    listens: list[RunningListen]


class ConsentChange(RequestBody):
    error_code = "bad_consent"

    consent: ConsentValue


class PciChange(RequestBody):
    error_code = "bad_pci"

    paused: bool


class PolicyInForce(BaseModel):
    version: str
    sha256: str


# --------------------------------------------------------------------------- agents


class AgentHistory(BaseModel):
    agent_id: str
    listens: list[HistoryRow]


class Notices(BaseModel):
    notices: list[Notice]


class NoticeAnswer(BaseModel):
    notice: Notice


# --------------------------------------------------------------------------- telephony


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) and value else _blank_is_none(value)


class RtpCallRequest(RequestBody):
    """Checked again, field by field, by ``live.ingest.rtp_calls.parse_announcement``."""

    call_id: str
    agent_id: str | None = None
    queue: str | None = None
    consent: Annotated[ConsentValue | None, BeforeValidator(_blank_is_none)] = None
    codec: Annotated[Codec | None, BeforeValidator(_upper)] = None
    private: bool = False


class RtpPorts(BaseModel):
    agent: NonNegativeInt
    caller: NonNegativeInt


class RtpCall(BaseModel):
    call_id: str
    codec: Codec
    address: str
    ports: RtpPorts
