"""Rate limits and listens at once: per node in memory, cluster-wide in Redis when configured."""

from .bucket import RateLimit
from .rates import Rates
from .shared import SharedLimits
from .signin import SignInThrottle
from .slots import Hold, ListenSlots
from .store import LimitStore

__all__ = ["Hold", "LimitStore", "ListenSlots", "RateLimit", "Rates", "SharedLimits", "SignInThrottle"]
