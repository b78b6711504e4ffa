// Listening quality per leg from RTCPeerConnection.getStats() (W3C webrtc-stats,
// RTCInboundRtpStreamStats): packets lost and received since the previous sample give the
// loss over the last interval; `jitter` is the RFC 3550 §6.4.1 interarrival jitter, in
// seconds. Legs are told apart by the transceiver's mid, as the server answered it.

/**
 * @param {RTCStatsReport} report
 * @returns {Map<string, {packetsLost: number, packetsReceived: number, jitter: number}>} by mid
 */
export function inboundByMid(report) {
  const byMid = new Map();
  report.forEach((stat) => {
    if (stat.type !== "inbound-rtp" || stat.kind !== "audio" || stat.mid == null) return;
    byMid.set(String(stat.mid), {
      packetsLost: Math.max(0, Number(stat.packetsLost) || 0),
      packetsReceived: Number(stat.packetsReceived) || 0,
      jitter: Number(stat.jitter) || 0,
    });
  });
  return byMid;
}

/** Loss in percent between two samples of one leg (null before any packet). */
export function lossPercent(previous, current) {
  const lost = current.packetsLost - (previous?.packetsLost ?? 0);
  const received = current.packetsReceived - (previous?.packetsReceived ?? 0);
  const expected = lost + received;
  if (expected <= 0) return null;
  return (100 * Math.max(0, lost)) / expected;
}

export class QualityProbe {
  /** @param {RTCPeerConnection} pc @param {() => Array<{leg, mid}>} legs */
  constructor(pc, legs) {
    this.pc = pc;
    this.legs = legs;
    this.previous = new Map();
  }

  /** `{agent: {lossPct, jitterMs, packetsLost, packetsReceived}, caller: ...}`; a leg
   *  without inbound statistics yet is left out. */
  async sample() {
    const report = await this.pc.getStats();
    const byMid = inboundByMid(report);
    const result = {};
    for (const { leg, mid } of this.legs()) {
      const current = byMid.get(String(mid));
      if (!current) continue;
      result[leg] = {
        lossPct: lossPercent(this.previous.get(leg), current),
        jitterMs: current.jitter * 1000,
        packetsLost: current.packetsLost,
        packetsReceived: current.packetsReceived,
      };
      this.previous.set(leg, current);
    }
    return result;
  }
}
