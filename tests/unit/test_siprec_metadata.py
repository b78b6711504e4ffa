"""RFC 7865 recording metadata in three vendors' dialects, and XML attacks refused."""

from __future__ import annotations

import pytest

from live.ingest.sip.errors import SipError
from live.ingest.sip.metadata import Participant, parse_metadata, stream_of_participant

CISCO = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <session session_id="5ASNlqVZEeaDx+Ra6OhdgQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=49a8b8f4bc5a9f4b9fc0f7f7ef5ac1a7</sipSessionID>
    <start-time>2024-05-13T11:11:27.806Z</start-time>
  </session>
  <participant participant_id="5ASNlqVZEeaDyuRa6OhdgQ==">
    <nameID aor="sip:+15550001111@10.0.0.10"><name xml:lang="en">Caller</name></nameID>
  </participant>
  <participantsessionassoc participant_id="5ASNlqVZEeaDyuRa6OhdgQ==" session_id="5ASNlqVZEeaDx+Ra6OhdgQ==">
    <associate-time>2024-05-13T11:11:27.806Z</associate-time>
  </participantsessionassoc>
  <participant participant_id="5ASNlqVZEeaDyuRa6OhdgR==">
    <nameID aor="sip:2001@cucm.example"/>
  </participant>
  <stream stream_id="5ASNlqVZEeaDzORa6OhdgQ==" session_id="5ASNlqVZEeaDx+Ra6OhdgQ=="><label>1</label></stream>
  <stream stream_id="5ASNlqVZEeaD0uRa6OhdgQ==" session_id="5ASNlqVZEeaDx+Ra6OhdgQ=="><label>2</label></stream>
  <participantstreamassoc participant_id="5ASNlqVZEeaDyuRa6OhdgQ==">
    <send>5ASNlqVZEeaDzORa6OhdgQ==</send>
    <recv>5ASNlqVZEeaD0uRa6OhdgQ==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="5ASNlqVZEeaDyuRa6OhdgR==">
    <send>5ASNlqVZEeaD0uRa6OhdgQ==</send>
    <recv>5ASNlqVZEeaDzORa6OhdgQ==</recv>
  </participantstreamassoc>
  <callData xmlns="http://cisco.com/siprec/calldata"><ccsipid>AB12</ccsipid><gcid>4C4C8D2E</gcid></callData>
</recording>
"""

ORACLE = b"""<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording' xmlns:apkt='http://acmepacket.com/siprec/extensiondata'>
  <datamode>complete</datamode>
  <session session_id="tSLbvL1JQyZKXK8BAGH5Ww==">
    <associate-time>2024-05-13T11:11:27</associate-time>
    <extensiondata><apkt:ucid>00FA080018803B6620B3C1</apkt:ucid><apkt:callerOrig>true</apkt:callerOrig></extensiondata>
  </session>
  <participant participant_id="Xa8XD3RSQTVPNw==" session="tSLbvL1JQyZKXK8BAGH5Ww==">
    <aor>sip:+15551234567@192.0.2.10</aor>
    <name>Jane Caller</name>
  </participant>
  <participant participant_id="Xa8XD3RSQTVPNx==" session="tSLbvL1JQyZKXK8BAGH5Ww==">
    <aor>sip:agent-4711@pbx.example</aor>
  </participant>
  <stream stream_id="OvbqKV6nSJd4SM8mAQH5mA==" session_id="tSLbvL1JQyZKXK8BAGH5Ww=="><label>1234567890123</label><mode>separate</mode></stream>
  <stream stream_id="OvbqKV6nSJd4SM8mAQH5mB==" session_id="tSLbvL1JQyZKXK8BAGH5Ww=="><label>1234567890124</label><mode>separate</mode></stream>
  <participantstreamassoc participant_id="Xa8XD3RSQTVPNw=="><send>OvbqKV6nSJd4SM8mAQH5mA==</send></participantstreamassoc>
  <participantstreamassoc participant_id="Xa8XD3RSQTVPNx=="><send>OvbqKV6nSJd4SM8mAQH5mB==</send></participantstreamassoc>
</recording>
"""

BROADWORKS = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:siprec" xmlns:ext="http://schema.broadsoft.com/siprec/ext">
  <dataMode>complete</dataMode>
  <session id="b8f1a2c0-0f3e-4b8a-9d55-1c2d3e4f5a6b"><start-time>2024-05-13T11:11:27Z</start-time></session>
  <participant id="p-caller">
    <nameID aor="tel:+15557654321"><name>+15557654321</name></nameID>
    <send>st-1</send>
    <recv>st-2</recv>
  </participant>
  <participant id="p-agent">
    <nameID aor="sip:agent42@as.example.com"><name>Agent 42</name></nameID>
    <send>st-2</send>
    <recv>st-1</recv>
  </participant>
  <stream id="st-1" session="b8f1a2c0-0f3e-4b8a-9d55-1c2d3e4f5a6b"><label>1</label></stream>
  <stream id="st-2" session="b8f1a2c0-0f3e-4b8a-9d55-1c2d3e4f5a6b"><label>2</label></stream>
  <ext:callCenter><ext:queue> support-tier-2 </ext:queue><ext:queue>ignored</ext:queue></ext:callCenter>
</recording>
"""


def senders(meta_body: bytes) -> dict[str, list[str]]:
    return {
        label: [p.aors[0] for p in ps]
        for label, ps in stream_of_participant(parse_metadata(meta_body)).items()
    }


def test_cisco_recording_1_with_participantstreamassoc() -> None:
    meta = parse_metadata(CISCO)
    assert meta.session_ids == ("5ASNlqVZEeaDx+Ra6OhdgQ==",)
    caller, agent = meta.participants
    assert caller == Participant(
        "5ASNlqVZEeaDyuRa6OhdgQ==", ("sip:+15550001111@10.0.0.10",), ("Caller",),
        ("5ASNlqVZEeaDzORa6OhdgQ==",), ("5ASNlqVZEeaD0uRa6OhdgQ==",),
    )  # fmt: skip
    assert agent.aors == ("sip:2001@cucm.example",) and agent.send == ("5ASNlqVZEeaD0uRa6OhdgQ==",)
    assert [(s.label, s.session_id) for s in meta.streams] == [
        ("1", "5ASNlqVZEeaDx+Ra6OhdgQ=="),
        ("2", "5ASNlqVZEeaDx+Ra6OhdgQ=="),
    ]
    assert meta.extensions == {"ccsipid": "AB12", "gcid": "4C4C8D2E"}
    assert senders(CISCO) == {"1": ["sip:+15550001111@10.0.0.10"], "2": ["sip:2001@cucm.example"]}


def test_oracle_namespace_without_1_large_labels_and_aor_elements() -> None:
    meta = parse_metadata(ORACLE.decode())
    assert [p.aors for p in meta.participants] == [
        ("sip:+15551234567@192.0.2.10",),
        ("sip:agent-4711@pbx.example",),
    ]
    assert meta.participants[0].names == ("Jane Caller",)
    assert [s.label for s in meta.streams] == ["1234567890123", "1234567890124"]
    assert meta.extensions == {"ucid": "00FA080018803B6620B3C1", "callerorig": "true"}
    assert senders(ORACLE) == {
        "1234567890123": ["sip:+15551234567@192.0.2.10"],
        "1234567890124": ["sip:agent-4711@pbx.example"],
    }


def test_broadworks_siprec_namespace_send_recv_under_participant() -> None:
    meta = parse_metadata(BROADWORKS)
    assert meta.session_ids == ("b8f1a2c0-0f3e-4b8a-9d55-1c2d3e4f5a6b",)
    assert [(p.participant_id, p.send, p.recv) for p in meta.participants] == [
        ("p-caller", ("st-1",), ("st-2",)), ("p-agent", ("st-2",), ("st-1",)),
    ]  # fmt: skip
    assert meta.participants[1].names == ("Agent 42",)
    assert [s.session_id for s in meta.streams] == ["b8f1a2c0-0f3e-4b8a-9d55-1c2d3e4f5a6b"] * 2
    assert meta.extensions == {"queue": "support-tier-2"}  # first occurrence, stripped
    assert senders(BROADWORKS) == {"1": ["tel:+15557654321"], "2": ["sip:agent42@as.example.com"]}


def test_no_namespace_and_extension_cap() -> None:
    body = f"<recording><participant id='a'><aor>sip:a@h</aor></participant><note>{'x' * 1000}</note></recording>"
    meta = parse_metadata(body)
    assert meta.participants[0].aors == ("sip:a@h",) and len(meta.extensions["note"]) == 256


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE recording [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="p"><name>&xxe;</name></participant></recording>
"""
XXE_EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE recording SYSTEM "file:///etc/passwd">
<recording xmlns="urn:ietf:params:xml:ns:recording:1"/>
"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<recording><ext>&lol9;</ext></recording>
"""


@pytest.mark.parametrize(
    "body", [XXE, XXE_EXTERNAL_DTD, BILLION_LAUGHS], ids=["xxe", "external-dtd", "billion-laughs"]
)
def test_xml_attacks_are_refused_not_parsed(body: bytes) -> None:
    with pytest.raises(SipError, match="refused") as caught:
        parse_metadata(body)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<recording><unclosed></recording>", 400),
        (b"", 400),
        (b"not xml", 400),
        (b"<r>" + b" " * (256 * 1024) + b"</r>", 413),
    ],
)
def test_malformed_or_oversized(body: bytes, status: int) -> None:
    with pytest.raises(SipError) as caught:
        parse_metadata(body)
    assert caught.value.status == status
