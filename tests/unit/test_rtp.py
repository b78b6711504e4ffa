"""RTP parse and per-leg receive: order, loss, wrap, SSRC changes, comfort noise, jitter."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.ingest.rtp import LegStats, RtpError, RtpLegReceiver, parse_rtp, silence
from live.media.hub import LegSource
from tests.support.rtp import build_rtp

MS = 1_000_000  # ns
AUDIO = bytes(range(160))


class Published:
    """What a receiver handed to the hub, as (payload, pts, arrived_ns)."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, int, int]] = []

    def __call__(self, payload: bytes, pts: int, arrived_ns: int) -> None:
        self.items.append((payload, pts, arrived_ns))

    @property
    def pts(self) -> list[int]:
        return [pts for _, pts, _ in self.items]

    @property
    def payloads(self) -> list[bytes]:
        return [payload for payload, _, _ in self.items]


def leg(codec: str = "PCMU", **kwargs: object) -> tuple[RtpLegReceiver, Published]:
    published = Published()
    return RtpLegReceiver(published, codec=codec, **kwargs), published  # type: ignore[arg-type]


def tagged(n: int) -> bytes:
    return n.to_bytes(4, "big") * 40  # 160 bytes that say which packet they are


def send(receiver: RtpLegReceiver, seqs: list[int], *, ssrc: int = 0x1234, ts0: int = 0,
         seq0: int = 0, pt: int = 0, t0_ms: int = 0) -> None:
    """Packets numbered ``n`` in ``seqs`` (in that arrival order), 20 ms each, sent at n*20 ms."""
    for n in seqs:
        receiver.receive(pt, (seq0 + n) & 0xFFFF, (ts0 + 160 * n) & 0xFFFFFFFF, ssrc, tagged(n),
                         (t0_ms + 20 * n) * MS)


# --- parse ----------------------------------------------------------------------------------


def test_parse_reads_every_header_field() -> None:
    packet = parse_rtp(build_rtp(8, 4321, 0xDEADBEEF, 0xCAFEF00D, AUDIO, marker=True))
    assert packet == (8, 4321, 0xDEADBEEF, 0xCAFEF00D, AUDIO, True)
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc, packet.marker) == (
        8, 4321, 0xDEADBEEF, 0xCAFEF00D, True)
    assert parse_rtp(build_rtp(0, 0, 0, 0, b"")).payload == b""


def test_parse_strips_csrcs_extension_and_padding() -> None:
    data = build_rtp(0, 7, 160, 9, AUDIO, csrc=(1, 2, 3), extension=(0xBEDE, b"\x10\xff\x00\x00" * 2),
                     padding=5)
    packet = parse_rtp(data)
    assert packet.payload == AUDIO and packet.sequence == 7 and packet.ssrc == 9


@pytest.mark.parametrize("data", [
    b"",
    b"\x80\x00\x00",
    build_rtp(0, 1, 2, 3, AUDIO)[:11],
    b"\x40" + build_rtp(0, 1, 2, 3, AUDIO)[1:],  # version 1
    bytes([0x90]) + build_rtp(0, 1, 2, 3, b"")[1:] + b"\xbe\xde",  # extension header cut short
    bytes([0x90]) + build_rtp(0, 1, 2, 3, b"")[1:] + b"\xbe\xde\x00\x09" + b"\0" * 8,  # too long
    build_rtp(0, 1, 2, 3, b"ab", padding=1)[:-1] + b"\x09",  # padding beyond the packet
    build_rtp(0, 1, 2, 3, b"ab", padding=1)[:-1] + b"\x00",  # a zero padding count
    build_rtp(0, 1, 2, 3, b"", csrc=(1, 2))[:16],  # CSRC list cut short
])
def test_parse_rejects_what_is_not_rtp(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_rtp(data)


@pytest.mark.parametrize("packet_type", [200, 201, 202, 203, 204, 205, 206, 207])
def test_rtcp_is_not_rtp(packet_type: int) -> None:
    # RFC 5761 §4: an RTCP SR/RR/SDES/BYE/APP/feedback/XR reads as marker + PT 72-79.
    rtcp = struct.pack("!BBHI", 0x80, packet_type, 6, 0x1234) + b"\0" * 24
    with pytest.raises(RtpError):
        parse_rtp(rtcp)
    receiver, published = leg()
    assert receiver.receive_packet(rtcp, 0) is False
    assert receiver.stats.rtcp == 1 and receiver.stats.bad == 0 and not published.items


def test_silence_is_the_zero_sample_of_each_law() -> None:
    assert silence("PCMU") == b"\xff" * 160
    assert silence("PCMA", 80) == b"\xd5" * 80


# --- order, loss, duplicates ----------------------------------------------------------------


def test_in_order_packets_pass_through_untouched() -> None:
    receiver, published = leg()
    payload = tagged(1)
    receiver.receive(0, 10, 5000, 0x1234, payload, 7)
    assert published.items[0][0] is payload and published.items[0][1:] == (0, 7)
    send(receiver, [1, 2, 3], seq0=10, ts0=5000)
    assert published.pts == [0, 160, 320, 480]
    assert replace(receiver.stats, jitter=0.0) == LegStats(received=4)


def test_receive_packet_parses_and_counts_garbage() -> None:
    receiver, published = leg()
    assert receiver.receive_packet(build_rtp(0, 1, 0, 5, AUDIO, extension=(1, b"abcd")), 3) is True
    assert receiver.receive_packet(b"\x00garbage", 4) is False
    assert published.payloads == [AUDIO] and receiver.stats.bad == 1 and receiver.stats.received == 1


def test_reordered_packets_leave_in_sequence_order() -> None:
    receiver, published = leg()
    send(receiver, [0, 2, 1, 4, 3, 5])
    assert published.payloads == [tagged(n) for n in range(6)]
    assert published.pts == [160 * n for n in range(6)]
    assert (receiver.stats.reordered, receiver.stats.lost, receiver.stats.late) == (2, 0, 0)


def test_a_gap_is_waited_for_reorder_window_packets_then_skipped() -> None:
    receiver, published = leg(reorder_window=3)
    send(receiver, [0, 2, 3, 4])
    assert published.payloads == [tagged(0)]  # still waiting for 1
    send(receiver, [5])
    assert published.payloads == [tagged(n) for n in (0, 2, 3, 4, 5)]
    assert published.pts == [0, 320, 480, 640, 800]  # the gap stays a gap in time
    assert receiver.stats.lost == 1
    send(receiver, [1])  # too late now: dropped, and it was not lost after all
    assert (receiver.stats.lost, receiver.stats.late, len(published.items)) == (0, 1, 5)
    send(receiver, [1])
    assert receiver.stats.duplicates == 1


def test_no_reorder_window_skips_gaps_at_once() -> None:
    receiver, published = leg(reorder_window=0)
    send(receiver, [0, 2, 1, 3])
    assert published.payloads == [tagged(n) for n in (0, 2, 3)]
    assert (receiver.stats.lost, receiver.stats.late) == (0, 1)


def test_duplicates_are_dropped_whether_published_or_buffered() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 1, 3, 3, 0, 2])
    assert published.payloads == [tagged(n) for n in range(4)]
    assert receiver.stats.duplicates == 3 and receiver.stats.received == 7


def test_flush_publishes_what_waits_behind_a_gap() -> None:
    receiver, published = leg()
    send(receiver, [0, 2, 3])
    receiver.flush()
    assert published.payloads == [tagged(n) for n in (0, 2, 3)] and receiver.stats.lost == 1
    send(receiver, [4])
    assert published.pts[-1] == 640


# --- wrap, SSRC change, timestamp jumps -----------------------------------------------------


def test_sequence_wraps_from_65535_to_0() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 3, 2, 4], seq0=65533)  # 65533, 65534, 0, 65535, 1
    assert published.payloads == [tagged(n) for n in range(5)]
    assert published.pts == [0, 160, 320, 480, 640]
    assert receiver.stats.lost == receiver.stats.late == 0


def test_timestamp_wraps_at_32_bits() -> None:
    receiver, published = leg()
    send(receiver, list(range(5)), ts0=2**32 - 320)
    assert published.pts == [0, 160, 320, 480, 640]
    assert receiver.stats.jitter == 0.0


def test_new_ssrc_continues_right_after_the_last_packet() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 2], ssrc=1, seq0=100, ts0=1000)
    send(receiver, [3, 4, 5], ssrc=2, seq0=9000, ts0=77_777_777)  # failover: other numbering
    # The newcomer's first packet is its probation (RFC 3550 A.1); the second takes over.
    assert published.payloads == [tagged(n) for n in (0, 1, 2, 4, 5)]
    assert published.pts == [0, 160, 320, 640, 800]
    assert receiver.stats.ssrc_changes == 1 and receiver.stats.probation == 1 and receiver.stats.lost == 0
    send(receiver, [2], ssrc=1, seq0=100, ts0=1000)  # a straggler of the old stream
    assert len(published.items) == 5 and receiver.stats.late == 1


def test_new_ssrc_after_a_pause_keeps_the_pause() -> None:
    receiver, published = leg()
    send(receiver, [0, 1], ssrc=1)
    send(receiver, [0, 1], ssrc=2, ts0=555, t0_ms=1020)  # 1 s after the last packet
    assert published.pts == [0, 160, 160 + 8160]


def test_ssrc_change_flushes_the_old_stream_first() -> None:
    receiver, published = leg()
    send(receiver, [0, 2], ssrc=1)
    send(receiver, [3, 4], ssrc=2, seq0=50)
    assert published.payloads == [tagged(0), tagged(2), tagged(4)]
    assert published.pts == [0, 320, 640]


def test_a_stray_packet_from_another_source_does_not_cut_the_leg() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 2], seq0=100)
    receiver.receive(101, 40_000, 5_000_000, 0x5EED, b"\x00" * 4, 50 * MS)  # one foreign packet
    send(receiver, [3, 4, 5], seq0=100)
    receiver.receive(0, 40_001, 5_000_160, 0x5EED, tagged(9), 110 * MS)  # in sequence, but the leg went on
    send(receiver, [6, 7], seq0=100)
    assert published.payloads == [tagged(n) for n in range(8)]
    assert receiver.stats.lost == receiver.stats.late == receiver.stats.ssrc_changes == 0
    assert receiver.stats.probation == 2


def test_timestamp_stepping_back_is_rebased_forward() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 2], ts0=80_000)
    send(receiver, [3, 4], ts0=-160 * 3)  # same SSRC, the sender's clock restarted at 0
    assert published.pts == [0, 160, 320, 480, 640]


def test_timestamp_leap_far_beyond_elapsed_time_is_rebased() -> None:
    receiver, published = leg()
    send(receiver, [0, 1])
    receiver.receive(0, 2, 160 * 2 + 10**9, 0x1234, AUDIO, 40 * MS)
    assert published.pts == [0, 160, 320]


def test_silence_suppression_keeps_its_real_gap() -> None:
    receiver, published = leg()
    for seq, ts, at_ms in [(0, 0, 0), (1, 160, 20), (2, 16_000, 2000)]:  # 2 s of DTX silence
        receiver.receive(0, seq, ts, 1, AUDIO, at_ms * MS)
    assert published.pts == [0, 160, 16_000]
    assert receiver.stats.lost == 0


def test_sequence_restart_within_one_ssrc_needs_confirmation() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 2], seq0=100)
    receiver.receive(0, 40_000, 480, 0x1234, tagged(3), 60 * MS)  # one stray: dropped
    send(receiver, [3], seq0=100)  # the stream goes on
    assert published.payloads == [tagged(n) for n in range(4)] and receiver.stats.restarts == 0
    receiver.receive(0, 20_000, 800, 0x1234, tagged(5), 100 * MS)
    receiver.receive(0, 20_001, 960, 0x1234, tagged(6), 120 * MS)  # confirmed: a new numbering
    assert published.payloads[-1] == tagged(6) and receiver.stats.restarts == 1
    assert published.pts == sorted(set(published.pts))


def test_continue_after_keeps_the_timeline_across_receivers() -> None:
    published = Published()
    first = RtpLegReceiver(published, codec="PCMU")
    send(first, [0, 1])
    second = RtpLegReceiver(published, codec="PCMA")
    second.continue_after(first)
    send(second, [0], pt=8, ts0=99, seq0=7, t0_ms=40)
    assert published.pts == [0, 160, 320]
    with pytest.raises(ValueError):
        second.continue_after(first)


# --- payload types --------------------------------------------------------------------------


@pytest.mark.parametrize("codec,byte", [("PCMU", 0xFF), ("PCMA", 0xD5)])
def test_comfort_noise_becomes_20_ms_of_silence(codec: str, byte: int) -> None:
    receiver, published = leg(codec)
    audio_pt = 0 if codec == "PCMU" else 8
    send(receiver, [0], pt=audio_pt)
    send(receiver, [1], pt=13)  # RFC 3389 CN: a noise level byte only
    send(receiver, [2], pt=audio_pt)
    assert published.payloads[1] == bytes([byte]) * 160
    assert published.pts == [0, 160, 320] and receiver.stats.cn == 1


def test_other_law_is_bad_and_dtmf_ignored_without_counting_loss() -> None:
    receiver, published = leg(payload_types={0: "pcmu", 8: "PCMA", 101: "telephone-event"})
    send(receiver, [0])
    send(receiver, [1], pt=8)
    send(receiver, [2, 3], pt=101)
    send(receiver, [4], pt=96)  # an unknown dynamic type
    send(receiver, [5])
    assert published.payloads == [tagged(0), tagged(5)]
    assert published.pts == [0, 800]
    assert (receiver.stats.bad, receiver.stats.ignored, receiver.stats.lost) == (1, 3, 0)


def test_mapped_dynamic_payload_type_is_the_codec_beside_the_static_ones() -> None:
    receiver, published = leg(payload_types={96: "PCMU", 97: "telephone-event"})
    send(receiver, [0, 1], pt=96)
    send(receiver, [2], pt=0)  # not in the SDP, but 0 is PCMU by RFC 3551: accepted
    send(receiver, [3], pt=13)  # CN, likewise
    send(receiver, [4], pt=97)
    assert len(published.items) == 4 and receiver.stats.ignored == 1 and receiver.stats.cn == 1


# --- jitter ---------------------------------------------------------------------------------


def test_jitter_follows_rfc3550() -> None:
    receiver, _ = leg()
    for n in range(200):  # every other packet 10 ms late: |D| = 80 units each time
        receiver.receive(0, n, 160 * n, 1, AUDIO, (20 * n + (10 if n % 2 else 0)) * MS)
    assert receiver.stats.jitter == pytest.approx(80, rel=1e-3)
    assert receiver.stats.jitter_ms == pytest.approx(10, rel=1e-3)


# --- properties -----------------------------------------------------------------------------


@st.composite
def jittery_stream(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """(packet number, seq, ts, arrival ms) arrivals: shuffled within 3, ~5% lost, some twice."""
    count = draw(st.integers(1, 150))
    seq0 = draw(st.integers(0, 0xFFFF))
    ts0 = draw(st.integers(0, 0xFFFFFFFF))
    delays = draw(st.lists(st.floats(0, 3.0), min_size=count, max_size=count))
    fates = draw(st.lists(st.integers(0, 99), min_size=count, max_size=count))
    order = sorted(range(count), key=lambda n: n + delays[n])
    arrivals: list[tuple[int, int, int, int]] = []
    for slot, n in enumerate(order):
        if fates[n] < 5:
            continue  # lost
        copies = 2 if fates[n] >= 93 else 1
        for _ in range(copies):
            arrivals.append((n, (seq0 + n) & 0xFFFF, (ts0 + 160 * n) & 0xFFFFFFFF, 20 * slot))
    return arrivals


@settings(max_examples=300, deadline=None)
@given(jittery_stream(), st.integers(0, 4))
def test_any_jittery_stream_publishes_sent_packets_in_order(
    arrivals: list[tuple[int, int, int, int]], window: int
) -> None:
    source = LegSource("agent")
    published = Published()

    def publish(payload: bytes, pts: int, arrived_ns: int) -> None:
        published(payload, pts, arrived_ns)
        source.publish(payload, pts, arrived_ns)

    receiver = RtpLegReceiver(publish, codec="PCMU", reorder_window=window)
    for n, seq, ts, at_ms in arrivals:
        receiver.receive(0, seq, ts, 7, tagged(n), at_ms * MS)
    receiver.flush()
    pts = published.pts
    assert all(a < b for a, b in zip(pts, pts[1:]))
    numbers = [int.from_bytes(p[:4], "big") for p in published.payloads]
    assert numbers == sorted(set(numbers))  # each sent packet at most once, in sequence order
    assert set(numbers) <= {n for n, *_ in arrivals}
    assert source.late == 0  # the hub never had to drop one
    for n, p in zip(numbers, pts):  # within one stream the gap in time is the gap in numbers
        assert p - pts[0] == 160 * (n - numbers[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 8, 13, 101]), st.integers(0, 0xFFFF),
                          st.integers(0, 0xFFFFFFFF), st.sampled_from([1, 2, 3]),
                          st.integers(0, 10**10)), max_size=60))
def test_any_packet_soup_keeps_pts_strictly_increasing(
    packets: list[tuple[int, int, int, int, int]]
) -> None:
    receiver, published = leg()
    for pt, seq, ts, ssrc, at in packets:
        receiver.receive(pt, seq, ts, ssrc, AUDIO, at)
    receiver.flush()
    assert all(a < b for a, b in zip(published.pts, published.pts[1:]))
    assert all(p is AUDIO or p == silence("PCMU") for p in published.payloads)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_datagrams_never_raise(data: bytes) -> None:
    receiver, _ = leg()
    parsed = [
        receiver.receive_packet(data, 0),
        receiver.receive_packet(b"\x80" + data, 1),  # version 2, no CSRC/extension/padding
        receiver.receive_packet(bytes([0xB0 | (data[0] & 0x0F if data else 0)]) + data, 2),  # all of them
    ]
    assert receiver.stats.received == sum(parsed)


def test_resync_after_a_hold_continues_by_the_wall_clock() -> None:
    receiver, published = leg()
    send(receiver, [0, 1, 2])
    receiver.resync()  # a hold: others kept the leg alive, the sender's clock stood still
    receiver.receive(0, 3, 160 * 3, 0x1234, tagged(3), (40 + 5000) * MS)  # 5 s later, ts +160
    send(receiver, [4], t0_ms=5000)
    assert published.pts == [0, 160, 320, 320 + 5000 * 8, 320 + 5000 * 8 + 160]
