"""msgpack encoding of bus events and media packets (what crosses Redis between nodes).

The wire form of an event is a map ``{"k": kind, "v": version, "d": fields}``; enums are
their values, tuples become arrays, nested dataclasses become maps. Decoding is strict:
anything that does not fit raises ``BadRequest`` rather than producing a half-built event.

A call's ``legs`` is left out while it is the default (both legs), so a node of the release
before ``legs`` existed still decodes the calls it can understand during a rolling upgrade;
a message without ``legs`` decodes as both legs.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import msgpack

from .errors import BadRequest
from .model import EVENT_TYPES, BusEvent, CallInfo, ListenerInfo
from .types import LEGS, Consent

WIRE_VERSION = 1


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, CallInfo) and value.legs == LEGS:
            del fields["legs"]  # the default: readable by nodes that predate it
        return fields
    if isinstance(value, Consent):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# Wire types of plain fields, by the annotation text of the dataclasses in ``model``.
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "CallId": (str,),
    "SessionId": (str,),
    "NodeId": (str,),
    "Codec": (str,),
    "float": (int, float),
    "int": (int,),
    "bool": (bool,),
}


def _checked(cls: type[Any], fields: dict[str, Any]) -> Any:
    """Build ``cls`` only if every plain field has its wire type (bools are not numbers)."""
    for spec in dataclasses.fields(cls):
        if spec.name not in fields:
            continue
        allowed = _PLAIN_TYPES.get(str(spec.type))
        value = fields[spec.name]
        if allowed is not None and (
            not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        ):
            raise BadRequest(f"{cls.__name__}.{spec.name} has the wrong type")
    return cls(**fields)


def _listener(data: Any) -> ListenerInfo:
    if not isinstance(data, dict):
        raise BadRequest("listener must be a map")
    return typing.cast(ListenerInfo, _checked(ListenerInfo, data))


def _call(data: Any) -> CallInfo:
    if not isinstance(data, dict):
        raise BadRequest("call must be a map")
    fields = dict(data)
    fields["consent"] = Consent(fields.get("consent", "unknown"))
    fields["listeners"] = tuple(_listener(x) for x in fields.get("listeners", ()))
    fields["attributes"] = dict(fields.get("attributes", {}))
    legs = fields.get("legs", LEGS)
    if not isinstance(legs, (list, tuple)) or not all(leg in LEGS for leg in legs) or len(set(legs)) != len(legs):
        raise BadRequest("call.legs must be a list of distinct leg names")
    fields["legs"] = tuple(legs)
    return typing.cast(CallInfo, _checked(CallInfo, fields))


_NESTED = {"call": _call, "listener": _listener}


def encode_event(event: BusEvent) -> bytes:
    payload = {"k": event.kind, "v": WIRE_VERSION, "d": _plain(event)}
    return typing.cast(bytes, msgpack.packb(payload, use_bin_type=True))


def decode_event(data: bytes) -> BusEvent:
    try:
        payload = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise BadRequest("undecodable bus message") from exc
    version = payload.get("v") if isinstance(payload, dict) else None
    if type(version) is not int or version != WIRE_VERSION:
        raise BadRequest("unknown bus message version")
    kind = payload.get("k")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    fields = payload.get("d")
    if cls is None or not isinstance(fields, dict):
        raise BadRequest(f"unknown bus event {payload.get('k')!r}")
    try:
        kwargs = {k: _NESTED[k](v) if k in _NESTED else v for k, v in fields.items()}
        if "legs" in kwargs:
            legs = kwargs["legs"]
            if not isinstance(legs, (list, tuple)):
                raise BadRequest("legs must be a list")
            kwargs["legs"] = tuple(legs)
        return typing.cast(BusEvent, _checked(cls, kwargs))
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"malformed bus event {cls.kind}: {exc}") from exc


def encode_media(leg: str, timestamp: int, payload: bytes) -> bytes:
    """One relayed 20 ms packet: ``[leg, rtp timestamp, payload]``."""
    return typing.cast(bytes, msgpack.packb((leg, timestamp, payload), use_bin_type=True))


def decode_media(data: bytes) -> tuple[str, int, bytes]:
    try:
        leg, timestamp, payload = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise BadRequest("undecodable media packet") from exc
    if (
        leg not in ("agent", "caller")
        or not isinstance(payload, bytes)
        or type(timestamp) is not int
    ):
        raise BadRequest("malformed media packet")
    return str(leg), timestamp, payload
