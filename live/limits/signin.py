"""Sign-in throttling that cannot lock out a shared address.

Only failed sign-ins count (a wrong password, an unknown sign-in link), three ways:

* per (client address, user name), ``signin_failures_per_minute``: refused (429) for that
  user from that address; someone guessing one account from one place is stopped;
* per user name from every address, ``signin_user_failures_per_minute``: refused for that
  user everywhere; an account guessed from many addresses is protected for a while;
* per client address, ``signin_address_failures_per_minute``: never refused, only slowed.
  Past the threshold each attempt from the address waits before it is answered, longer the
  more it keeps failing (up to ``signin_backoff_max_ms``). A valid credential is therefore
  never refused because someone else at the same address failed: a contact-centre floor of
  200 agents behind one NAT address, each mistyping once at the start of a shift, stays
  under the default threshold, while spraying guesses over many accounts is slowed.

Unknown sign-in links name no user, so they count per address only (a link's token is too
long to guess; the backoff keeps scanning slow).
"""

from __future__ import annotations

from .bucket import RateLimit
from .rates import Rates

ADDRESS = "signin_address"
PAIR = "signin_pair"
USER = "signin_user"


def signin_limits(per_pair: int, per_user: int, per_address: int) -> dict[str, RateLimit]:
    """The three buckets; the address one may run into a minute's worth of debt (backoff)."""
    return {
        PAIR: RateLimit(per_pair, per_pair),
        USER: RateLimit(per_user, per_user),
        ADDRESS: RateLimit(per_address, per_address, floor=-per_address),
    }


class SignInThrottle:
    def __init__(self, rates: Rates, backoff_max_s: float) -> None:
        self.rates = rates
        self.backoff_max_s = backoff_max_s

    async def backoff(self, address: str) -> float:
        """Seconds to wait before answering a sign-in from ``address`` (0: at once)."""
        return min(self.backoff_max_s, await self.rates.wait(ADDRESS, address))

    async def refusal(self, address: str, user: str) -> tuple[str, float]:
        """Why and how long ``user`` may not try from ``address`` now (``("", 0)``: go on)."""
        if wait := await self.rates.wait(PAIR, f"{address}|{user}"):
            return "too many failed sign-ins for this user from this address", wait
        if wait := await self.rates.wait(USER, user):
            return "too many failed sign-ins for this user", wait
        return "", 0.0

    async def failed(self, address: str, user: str) -> None:
        await self.rates.spend(ADDRESS, address)
        if user:
            await self.rates.spend(PAIR, f"{address}|{user}")
            await self.rates.spend(USER, user)
