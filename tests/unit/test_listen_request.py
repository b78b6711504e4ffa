"""The listen request body is checked at the HTTP edge; the listen service gets typed values."""

from __future__ import annotations

from typing import Any

import pytest

from live.errors import BadRequest
from live.server.api import MAX_PURPOSE, ListenRequest, listen_request


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"sdp": "v=0", "type": "offer", "purpose": "quality"}, ListenRequest("v=0", "quality")),
        ({"sdp": "v=0", "purpose": "quality"}, ListenRequest("v=0", "quality")),
        # No purpose, or an empty one, is the policy's refusal (on record), not the edge's.
        ({"sdp": "v=0"}, ListenRequest("v=0", None)),
        ({"sdp": "v=0", "purpose": None}, ListenRequest("v=0", None)),
        ({"sdp": "", "purpose": ""}, ListenRequest("", "")),
    ],
)
def test_good_bodies(body: dict[str, Any], expected: ListenRequest) -> None:
    assert listen_request(body) == expected


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sdp": "v=0", "type": "answer", "purpose": "quality"}, "bad_sdp"),
        ({"purpose": "quality"}, "bad_sdp"),
        ({"sdp": 42, "purpose": "quality"}, "bad_sdp"),
        ({"sdp": ["v=0"], "purpose": "quality"}, "bad_sdp"),
        ({"sdp": "v=0", "purpose": 7}, "purpose_required"),
        ({"sdp": "v=0", "purpose": {"a": 1}}, "purpose_required"),
        ({"sdp": "v=0", "purpose": "q" * (MAX_PURPOSE + 1)}, "purpose_not_allowed"),
    ],
)
def test_bad_bodies(body: dict[str, Any], code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        listen_request(body)
    assert refused.value.code == code and refused.value.status == 400
