"""The listen request body is checked at the HTTP edge (``ListenOffer``); the listen service
gets typed values. Whether a purpose is allowed is the policy's refusal (on record), not
the edge's: a purpose that is missing or not a string reaches the policy as none."""

from __future__ import annotations

from typing import Any

import pytest

from live.errors import BadRequest
from live.server.bodies import validate
from live.server.schemas import ListenOffer


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"sdp": "v=0", "type": "offer", "purpose": "quality"}, ("v=0", "quality", None)),
        ({"sdp": "v=0", "purpose": "quality"}, ("v=0", "quality", None)),
        ({"sdp": "v=0"}, ("v=0", None, None)),
        ({"sdp": "v=0", "purpose": None}, ("v=0", None, None)),
        ({"sdp": "v=0", "purpose": 7}, ("v=0", None, None)),
        ({"sdp": "v=0", "purpose": {"a": 1}}, ("v=0", None, None)),
        ({"sdp": "v=0", "purpose": "quality", "resumes": "ls_1"}, ("v=0", "quality", "ls_1")),
    ],
)
def test_good_bodies(body: dict[str, Any], expected: tuple[str, str | None, str | None]) -> None:
    offer = validate(ListenOffer, body)
    assert (offer.sdp, offer.purpose, offer.resumes) == expected


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sdp": "v=0", "type": "answer", "purpose": "quality"}, "bad_sdp"),
        ({"purpose": "quality"}, "bad_sdp"),
        ({"sdp": 42, "purpose": "quality"}, "bad_sdp"),
        ({"sdp": ["v=0"], "purpose": "quality"}, "bad_sdp"),
        ({"sdp": "v=0", "resumes": ""}, "bad_resumes"),
        ({"sdp": "v=0", "resumes": 5}, "bad_resumes"),
        ({"sdp": "v=0", "resumes": "x" * 65}, "bad_resumes"),
    ],
)
def test_bad_bodies(body: dict[str, Any], code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        validate(ListenOffer, body)
    assert refused.value.code == code and refused.value.status == 400
