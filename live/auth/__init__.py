"""Identities, roles, API tokens and browser sessions."""

from .identity import Identity
from .sessions import SessionCodec
from .users import UserStore

__all__ = ["Identity", "SessionCodec", "UserStore"]
