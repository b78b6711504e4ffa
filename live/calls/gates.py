"""Which legs of a call are heard under a policy, and why not: the gate of each leg source."""

from __future__ import annotations

from ..media.hub import CallMedia
from ..model import CallInfo
from ..policy import Policy, leg_audibility
from ..types import LEGS, LegName

NOT_SENT = "not_sent"  # the reason for a leg the source does not send (CallInfo.legs)


def legs_state(call: CallInfo, policy: Policy) -> dict[LegName, tuple[bool, str | None]]:
    """Which legs of ``call`` are heard under ``policy``, and why not (``None`` when heard).

    A leg the source does not send is not heard (``not_sent``): when it starts to arrive
    during a listen (a second Twilio stream), the session's ledger gets ``leg.unmuted``."""
    return {
        leg: (
            (state.audible, None if state.audible else state.reason)
            if leg in call.legs
            else (False, NOT_SENT)
        )
        for leg, state in leg_audibility(call, policy).items()
    }


def apply_gates(call: CallInfo, media: CallMedia, policy: Policy | None) -> None:
    """Open or close each leg source of ``call`` as ``policy`` says; before a policy is
    loaded nothing is heard (fail closed)."""
    if policy is None:
        for leg in LEGS:
            media.leg(leg).set_audible(False)
        return
    for leg, (audible, _reason) in legs_state(call, policy).items():
        media.leg(leg).set_audible(audible)
