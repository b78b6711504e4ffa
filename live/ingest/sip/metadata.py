"""SIPREC recording metadata (RFC 7865, ``application/rs-metadata+xml``).

Parsed with ``defusedxml``: a DTD, an entity declaration or an external reference is
refused (``SipError`` 400), so XXE and entity expansion ("billion laughs") never run.

Vendors differ, so the reading is by local name in any namespace
(``urn:ietf:params:xml:ns:recording:1`` as in the RFC, ``...:recording`` from Oracle/Acme,
``urn:ietf:params:xml:ns:siprec`` from BroadWorks, or none), ids are read from the
``participant_id``/``stream_id``/``session_id`` attributes or a plain ``id``, and a
participant's streams come from ``participantstreamassoc`` (RFC 7865 §6.10) or, as in the
older drafts, from ``<send>``/``<recv>`` directly inside ``<participant>``. Every element that
is not RFC 7865 vocabulary and has text (``<apkt:ucid>``, ``<ext:queue>``) lands in
``extensions`` by lowercased local name; routing rules read those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import (  # type: ignore[import-untyped,unused-ignore]
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped,unused-ignore]

from .errors import SipError

MAX_METADATA = 256 * 1024
MAX_EXTENSIONS = 64
MAX_EXTENSION_CHARS = 256
METADATA_TYPE = "application/rs-metadata+xml"
# RFC 7865 §9 schema vocabulary plus what the drafts before it used (aor, mode, end-time...).
RECORDING_ELEMENTS = frozenset({
    "recording", "datamode", "group", "session", "participant", "stream",
    "sessionrecordingassoc", "participantsessionassoc", "participantstreamassoc",
    "associate-time", "disassociate-time", "sipsessionid", "group-ref", "groupref",
    "start-time", "stop-time", "end-time", "nameid", "name", "aor", "send", "recv", "label",
    "content-type", "mode", "reason", "requestor", "extensiondata", "calldata",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Participant:
    participant_id: str
    aors: tuple[str, ...]
    names: tuple[str, ...]
    send: tuple[str, ...]  # stream ids
    recv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Stream:
    stream_id: str
    label: str
    session_id: str


@dataclass(frozen=True, slots=True)
class RecordingMetadata:
    session_ids: tuple[str, ...]
    participants: tuple[Participant, ...]
    streams: tuple[Stream, ...]
    extensions: dict[str, str]


@dataclass
class _Draft:
    participant_id: str
    aors: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    send: list[str] = field(default_factory=list)
    recv: list[str] = field(default_factory=list)

    def freeze(self) -> Participant:
        return Participant(
            self.participant_id,
            *(tuple(dict.fromkeys(v)) for v in (self.aors, self.names, self.send, self.recv)),
        )


def _local(name: object) -> str:
    """``{urn:...}participantStreamAssoc`` → ``participantstreamassoc``."""
    return name.rsplit("}", 1)[-1].lower() if isinstance(name, str) else ""


def _attr(element: Element, *names: str) -> str:
    attributes = {_local(key): value for key, value in element.attrib.items()}
    return next((attributes[n].strip() for n in names if attributes.get(n, "").strip()), "")


def _text(element: Element) -> str:
    return (element.text or "").strip()


def _parse_xml(body: bytes | str) -> Element:
    if len(body) > MAX_METADATA:
        raise SipError(
            f"recording metadata of {len(body)} bytes exceeds {MAX_METADATA}", status=413
        )
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise SipError("recording metadata with a DTD is refused") from None
    except EntitiesForbidden:
        raise SipError("recording metadata with entity declarations is refused") from None
    except ExternalReferenceForbidden:
        raise SipError("recording metadata with an external reference is refused") from None
    except (ParseError, ValueError, LookupError, TypeError) as exc:
        raise SipError(f"malformed recording metadata: {str(exc)[:200]}") from None
    if not isinstance(root, Element):
        raise SipError("malformed recording metadata: no root element")
    return root


def _is_extension(kind: str, extensions: dict[str, str]) -> bool:
    """Not RFC 7865 vocabulary, not seen yet (first occurrence wins), and room left."""
    known = kind in RECORDING_ELEMENTS or kind in extensions
    return bool(kind) and not known and len(extensions) < MAX_EXTENSIONS


def _streams_of(element: Element, draft: _Draft) -> None:
    for child in element:
        kind = _local(child.tag)
        if kind in ("send", "recv") and _text(child):
            (draft.send if kind == "send" else draft.recv).append(_text(child))


def parse_metadata(body: bytes | str) -> RecordingMetadata:
    """Parse an ``application/rs-metadata+xml`` body. Raises ``SipError`` (400 / 413)."""
    root = _parse_xml(body)
    session_ids: list[str] = []
    drafts: dict[str, _Draft] = {}
    streams: dict[str, Stream] = {}
    extensions: dict[str, str] = {}

    def draft_for(element: Element) -> _Draft:
        pid = _attr(element, "participant_id", "id")
        key = pid or f"#{len(drafts)}"
        return drafts.setdefault(key, _Draft(pid))

    for element in root.iter():
        kind = _local(element.tag)
        if kind == "session":
            session_id = _attr(element, "session_id", "id")
            if session_id and session_id not in session_ids:
                session_ids.append(session_id)
        elif kind == "participant":
            draft = draft_for(element)
            for inner in element.iter():
                inner_kind = _local(inner.tag)
                if inner_kind == "nameid" and _attr(inner, "aor"):
                    draft.aors.append(_attr(inner, "aor"))
                elif inner_kind == "aor" and _text(inner):
                    draft.aors.append(_text(inner))
                elif inner_kind == "name" and _text(inner):
                    draft.names.append(_text(inner))
            _streams_of(element, draft)
        elif kind == "participantstreamassoc":
            _streams_of(element, draft_for(element))
        elif kind == "stream":
            stream_id = _attr(element, "stream_id", "id")
            label = next((_text(c) for c in element if _local(c.tag) == "label"), "")
            if stream_id and stream_id not in streams:
                session_id = _attr(element, "session_id", "session")
                streams[stream_id] = Stream(stream_id, label, session_id)
        elif _is_extension(kind, extensions) and _text(element):
            extensions[kind] = _text(element)[:MAX_EXTENSION_CHARS]
    return RecordingMetadata(
        session_ids=tuple(session_ids),
        participants=tuple(draft.freeze() for draft in drafts.values()),
        streams=tuple(streams.values()),
        extensions=extensions,
    )


def stream_of_participant(meta: RecordingMetadata) -> dict[str, list[Participant]]:
    """For each stream label, the participants who send on it (RFC 7865 §6.10 ``send``)."""
    labels = {stream.stream_id: stream.label for stream in meta.streams if stream.label}
    senders: dict[str, list[Participant]] = {}
    for participant in meta.participants:
        for stream_id in participant.send:
            label = labels.get(stream_id)
            if label is not None and participant not in senders.setdefault(label, []):
                senders[label].append(participant)
    return senders
