"""sipp scenario files for a test: the templates here with a vendor's bodies filled in.

Templates (``*.xml`` beside this module) are ordinary sipp scenarios with ``{{NAME}}``
placeholders for what only the test knows (the pcap to play, its length, the directory the
scenario touches its sync files in) and for the SIPREC bodies of ``bodies``. sipp's own
``[keywords]`` are left to sipp. A placeholder left unfilled is an error, not a blank.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from tests.support.pcap import PcapLegs
from tests.support.sipp.bodies import BOUNDARY, Vendor, offer_body, sdp_offer

TEMPLATES = Path(__file__).parent
_PLACEHOLDER = re.compile(r"\{\{([A-Z_0-9]+)\}\}")

# sipp fills these in: the offer's host and its two media ports (the pcap's second leg is sent
# from the media port + 2, RFC 3551's next even port).
SIPP_HOST = "[local_ip]"
SIPP_PORTS = ("[media_port]", "[media_port+2]")
_SIPP_KEYWORD = re.compile(r"\[(local_ip|media_port|media_port\+2)\]")
BODIES = ("OFFER", "RESUME", "HOLD_SDP")


def render(template: str, out_dir: Path, *, headers: Sequence[str] = (), **values: str) -> Path:
    """Fill ``template`` and write it to ``out_dir``; returns the scenario's path.

    ``headers`` become whole header lines where the template has ``{{HEADERS}}`` (no line
    at all when empty: an empty line would end the SIP headers).
    """
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    text = text.replace("{{HEADERS}}\n", "".join(f"{line}\n" for line in headers))
    missing = set(_PLACEHOLDER.findall(text)) - set(values)
    if missing:
        raise KeyError(f"{template}: no value for {sorted(missing)}")
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    for name in BODIES:
        if "[" in _SIPP_KEYWORD.sub("", values.get(name, "")):
            raise ValueError(f"{name} holds '[': sipp would read it as a keyword (write \\x5B)")
    path = out_dir / template
    path.write_text(text, encoding="utf-8")
    return path


def _common(vendor: Vendor, call_id: str, codec: str) -> dict[str, str]:
    offer = offer_body(
        sdp_offer(SIPP_HOST, SIPP_PORTS, vendor.labels, codec=codec), vendor.metadata(vendor, call_id)
    )
    return {"VENDOR": vendor.name, "SRC_USER": vendor.src_user, "USER_AGENT": vendor.user_agent,
            "BOUNDARY": BOUNDARY, "OFFER": offer}


def call_scenario(
    vendor: Vendor, out_dir: Path, *, pcap: PcapLegs, sync_dir: Path, call_id: str, codec: str = "PCMU"
) -> Path:
    """``siprec_call.xml``: record, play ``pcap``, hold, resume, hang up."""
    hold = sdp_offer(SIPP_HOST, SIPP_PORTS, vendor.labels, codec=codec, direction="inactive", version=2)
    resume = offer_body(
        sdp_offer(SIPP_HOST, SIPP_PORTS, vendor.labels, codec=codec, direction="sendonly", version=3),
        vendor.metadata(vendor, call_id),
    )
    return render(
        "siprec_call.xml",
        out_dir,
        headers=vendor.headers(call_id),
        **_common(vendor, call_id, codec),
        HOLD_SDP=hold,
        RESUME=resume,
        PCAP=str(pcap.path),
        # The pcap's own length: sipp plays it in a thread and the scenario goes on at once.
        PCAP_MS=str(int(pcap.seconds * 1000) + 200),
        SYNC=str(sync_dir),
    )


def cancel_scenario(vendor: Vendor, out_dir: Path, *, call_id: str) -> Path:
    return render("siprec_cancel.xml", out_dir, headers=vendor.headers(call_id), **_common(vendor, call_id, "PCMU"))


def refused_scenario(vendor: Vendor, out_dir: Path, *, call_id: str) -> Path:
    return render("siprec_refused.xml", out_dir, headers=vendor.headers(call_id), **_common(vendor, call_id, "PCMU"))


def options_scenario(vendor: Vendor, out_dir: Path) -> Path:
    return render("options.xml", out_dir, SRC_USER=vendor.src_user, USER_AGENT=vendor.user_agent)
