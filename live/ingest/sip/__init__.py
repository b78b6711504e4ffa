"""Pure SIP-side parsers for the SIPREC session recording server (RFC 3261, 7865, 7866).

No I/O here: ``message`` (SIP messages, responses, stream framing), ``headers`` (header
fields and the grammars inside their values), ``multipart`` (RFC 2046 bodies), ``sdp``
(offers and answers, RFC 8866/3264/4568) and ``metadata`` (RFC 7865 recording metadata).
Every parse error is a ``SipError`` carrying the SIP status to answer with.
"""

from .errors import SipError, reason_phrase
from .headers import Headers, header_params, host_port, parse_via, tag_of, uri_of, user_part
from .message import (
    SipMessage,
    SipRequest,
    SipResponse,
    SipStreamFramer,
    build_request,
    build_response,
    cseq,
    parse_message,
    serialise,
)
from .metadata import Participant, RecordingMetadata, Stream, parse_metadata, stream_of_participant
from .multipart import Part, media_type, parse_multipart
from .sdp import (
    AnswerStream,
    Crypto,
    MediaDescription,
    SdpError,
    SessionDescription,
    build_answer,
    choose_codec,
    parse_crypto,
    parse_sdp,
)

__all__ = [
    "AnswerStream", "Crypto", "Headers", "MediaDescription", "Part", "Participant",
    "RecordingMetadata", "SdpError", "SessionDescription", "SipError", "SipMessage",
    "SipRequest", "SipResponse", "SipStreamFramer", "Stream", "build_answer", "build_request",
    "build_response", "choose_codec", "cseq", "header_params", "host_port", "media_type",
    "parse_crypto", "parse_message", "parse_metadata", "parse_multipart", "parse_sdp",
    "parse_via", "reason_phrase", "serialise", "stream_of_participant", "tag_of", "uri_of",
    "user_part",
]  # fmt: skip
