// Turns RTCPeerConnection.getStats() into the `stats` message of Docs/PROTOCOL.md: figures for
// the interval since the previous sample, so counters (bytes, packets, freezes) become rates.
// In a mesh call each connection is sampled on its own and the page sends one message
// aggregated over all of them (the mesh extension's rule: the worst path decides).

export class StatsSampler {
  constructor() {
    this.previous = null; // {at, counters}
  }

  reset() { this.previous = null; }

  /**
   * @param {RTCPeerConnection} pc
   * @param {{audioOnly: boolean}} local what this side sends
   * @returns {Promise<object|null>} the `stats` message, or null on the first sample
   */
  async sample(pc, { audioOnly }) {
    const report = await pc.getStats();
    const now = performance.now();
    const counters = { bytesIn: 0, bytesOut: 0, packetsIn: 0, lostIn: 0, framesDecoded: 0,
      freezeCount: 0, freezeSeconds: 0, hasVideoIn: false };
    const message = { type: 'stats', audioOnly };
    let pair = null;
    let remoteLoss = null;

    report.forEach((s) => {
      switch (s.type) {
        case 'transport':
          if (s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
          break;
        case 'candidate-pair':
          // Some browsers mark the pair instead of naming it on the transport.
          if (!pair && s.selected) pair = s;
          break;
        case 'inbound-rtp':
          counters.bytesIn += s.bytesReceived ?? 0;
          counters.packetsIn += s.packetsReceived ?? 0;
          counters.lostIn += Math.max(0, s.packetsLost ?? 0);
          if (s.kind === 'audio' && Number.isFinite(s.jitter)) message.jitterMs = round(s.jitter * 1000, 1);
          if (s.kind === 'video') {
            counters.hasVideoIn = true;
            counters.framesDecoded += s.framesDecoded ?? 0;
            counters.freezeCount += s.freezeCount ?? 0;
            counters.freezeSeconds += s.totalFreezesDuration ?? 0;
          }
          break;
        case 'outbound-rtp':
          counters.bytesOut += s.bytesSent ?? 0;
          break;
        case 'remote-inbound-rtp':
          if (Number.isFinite(s.fractionLost)) remoteLoss = Math.max(remoteLoss ?? 0, s.fractionLost);
          break;
        default:
          break;
      }
    });

    if (pair) {
      if (Number.isFinite(pair.currentRoundTripTime)) message.rttMs = Math.round(pair.currentRoundTripTime * 1000);
      const local = report.get(pair.localCandidateId);
      const remote = report.get(pair.remoteCandidateId);
      if (local?.candidateType) message.localCandidateType = local.candidateType;
      if (remote?.candidateType) message.remoteCandidateType = remote.candidateType;
      if (local?.candidateType === 'relay' && local.relayProtocol) message.relayProtocol = local.relayProtocol;
    }
    if (remoteLoss !== null) message.packetLossOut = round(clamp01(remoteLoss), 4);

    // Video the other side stopped sending on purpose (its track muted by a renegotiation)
    // is no freeze; nor is the gap before it comes back, so that interval says nothing of video.
    const videoIn = pc.getReceivers().some((r) => r.track?.kind === 'video' && !r.track.muted);
    const previous = this.previous;
    this.previous = { at: now, counters, videoIn };
    if (!previous) return null;
    const seconds = (now - previous.at) / 1000;
    if (seconds <= 0) return null;
    const delta = (key) => Math.max(0, counters[key] - previous.counters[key]);

    message.bitrateInKbps = round((delta('bytesIn') * 8) / 1000 / seconds, 1);
    message.bitrateOutKbps = round((delta('bytesOut') * 8) / 1000 / seconds, 1);
    const expected = delta('packetsIn') + delta('lostIn');
    if (expected > 0) message.packetLossIn = round(delta('lostIn') / expected, 4);
    if (counters.hasVideoIn && videoIn && previous.videoIn) {
      message.framesPerSecondIn = round(delta('framesDecoded') / seconds, 1);
      message.freezeCountIn = delta('freezeCount');
      message.freezeSecondsIn = round(delta('freezeSeconds'), 2);
    }
    return message;
  }
}

const WORST_HIGH = ['rttMs', 'jitterMs', 'packetLossIn', 'packetLossOut'];
const WORST_LOW = ['framesPerSecondIn'];
const SUMMED = ['bitrateInKbps', 'bitrateOutKbps', 'freezeCountIn', 'freezeSecondsIn'];
const PATH = ['localCandidateType', 'remoteCandidateType', 'relayProtocol'];

/**
 * One `stats` message from the per-connection samples of the same interval.
 * @param {object[]} samples  StatsSampler.sample results (no nulls), at least one
 */
export function aggregateStats(samples) {
  const message = { type: 'stats', audioOnly: samples[0].audioOnly };
  const values = (key) => samples.map((s) => s[key]).filter(Number.isFinite);
  for (const key of WORST_HIGH) if (values(key).length) message[key] = Math.max(...values(key));
  for (const key of WORST_LOW) if (values(key).length) message[key] = Math.min(...values(key));
  for (const key of SUMMED) if (values(key).length) message[key] = round(values(key).reduce((a, b) => a + b, 0), 2);
  // The server rates a relayed path differently, so a relayed connection names the path.
  const path = samples.find((s) => s.localCandidateType === 'relay' || s.remoteCandidateType === 'relay') ?? samples[0];
  for (const key of PATH) if (path[key] !== undefined) message[key] = path[key];
  return message;
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function clamp01(value) { return Math.min(1, Math.max(0, value)); }
