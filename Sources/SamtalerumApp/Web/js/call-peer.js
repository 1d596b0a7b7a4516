// One RTCPeerConnection of a call: the link to one other participant in the (mesh) room.
// Offers, answers and trickled candidates go out through `signal`, which addresses them to
// this peer. Which side offers is decided per pair by the server (`peer-joined.initiator`).

import { StatsSampler } from './call-stats.js';

export class RemotePeer {
  /**
   * @param {{id: string, role: string, initiator: boolean, iceServers: RTCIceServer[],
   *          signal: (message: object) => void, onChange: () => void,
   *          onConnectionState: (peer: RemotePeer) => void}} options
   */
  constructor({ id, role, initiator, iceServers, signal, onChange, onConnectionState }) {
    this.id = id;
    this.role = role;
    this.initiator = initiator;
    this.reconnecting = false;
    this.makingOffer = false;
    this.closed = false;
    this.signal = signal;
    this.sampler = new StatsSampler();
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection({ iceServers });

    const pc = this.pc;
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!this.closed) signal({ type: 'candidate', candidate: candidate ? candidate.toJSON() : null });
    });
    pc.addEventListener('negotiationneeded', () => this.makeOffer());
    pc.addEventListener('track', ({ track }) => {
      // A renegotiation that brings a track back fires `track` again for the same track.
      if (!this.remoteStream.getTrackById(track.id)) {
        this.remoteStream.addTrack(track);
        // A remote track is muted until media flows, and again when the other side stops
        // sending it (a renegotiation that no longer sends it, PROTOCOL.md).
        track.addEventListener('mute', onChange);
        track.addEventListener('unmute', onChange);
      }
      onChange();
    });
    pc.addEventListener('connectionstatechange', () => {
      if (!this.closed) onConnectionState(this);
    });
  }

  get connected() { return this.pc.connectionState === 'connected'; }

  /**
   * Whether the other side sends sound: it offers its microphone as `sendrecv` and receives
   * only (`recvonly`) without one, so the negotiated direction says so (PROTOCOL.md, media).
   */
  get sendsAudio() {
    const direction = this.transceiver('audio')?.currentDirection;
    return !direction || direction === 'sendrecv' || direction === 'recvonly';
  }

  /**
   * One audio and one video transceiver each way. Each is sent on only while there is a
   * microphone, camera or screen to send; without one the transceiver only receives, which
   * the other side sees as its track going muted (and in the negotiated direction), so its
   * page says the camera is off instead of showing the last frame, or that there is no
   * microphone. The answerer fills the transceivers the offer made.
   * @param {import('./call-media.js').LocalMedia} media
   */
  attachLocalMedia(media) {
    const stream = media.stream ?? new MediaStream();
    for (const kind of ['audio', 'video']) {
      const track = kind === 'video' ? media.currentVideoTrack() : media.audioTrack();
      const direction = track ? 'sendrecv' : 'recvonly';
      const existing = this.transceiver(kind);
      if (existing) {
        if (existing.sender.track !== track) existing.sender.replaceTrack(track);
        existing.sender.setStreams?.(stream);
        existing.direction = direction;
      } else {
        this.pc.addTransceiver(track ?? kind, { direction, streams: [stream] });
      }
    }
  }

  transceiver(kind) {
    return this.pc.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === kind);
  }

  /**
   * Puts the microphone (or nothing) and the camera, the screen or nothing on the senders, as
   * the person chose. Starting or stopping to send changes the direction, which renegotiates
   * (`negotiationneeded`). Before the first offer there is nothing to update.
   */
  updateSenders(media) {
    for (const kind of ['audio', 'video']) {
      const transceiver = this.transceiver(kind);
      if (!transceiver || this.closed) continue;
      const track = kind === 'video' ? media.currentVideoTrack() : media.audioTrack();
      if (transceiver.sender.track !== track) {
        transceiver.sender.replaceTrack(track).catch((err) => console.warn(`samtalerum: ${kind} switch failed`, err));
      }
      const direction = track ? 'sendrecv' : 'recvonly';
      if (transceiver.direction !== direction) transceiver.direction = direction;
    }
  }

  /** Fresh candidates after a network change; fires negotiationneeded → an offer with new ICE credentials. */
  restartIce() {
    if (this.initiator && !this.closed) this.pc.restartIce();
  }

  /**
   * The initiator makes the first offer; afterwards either side may renegotiate (to start or
   * stop sending video). On a collision the initiator's offer wins (see applyDescription).
   */
  async makeOffer() {
    if (this.closed || (!this.initiator && !this.pc.currentRemoteDescription)) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.signal({ type: 'offer', sdp: this.pc.localDescription.sdp });
    } catch (err) {
      console.error('samtalerum: offer failed', err);
    } finally {
      this.makingOffer = false;
    }
  }

  async applyDescription(message, media) {
    if (this.closed || typeof message.sdp !== 'string') return;
    const pc = this.pc;
    const isOffer = message.type === 'offer';
    // Only the initiator offers, so a collision means a stale offer from the other side;
    // the initiator keeps its own, the other side yields (the "perfect negotiation" rule).
    const collision = isOffer && (this.makingOffer || pc.signalingState !== 'stable');
    if (collision && this.initiator) return;
    if (!isOffer && pc.signalingState !== 'have-local-offer') return; // a replayed, stale answer
    await pc.setRemoteDescription({ type: message.type, sdp: message.sdp });
    if (isOffer) {
      this.attachLocalMedia(media);
      await pc.setLocalDescription();
      this.signal({ type: 'answer', sdp: pc.localDescription.sdp });
    }
  }

  async addCandidate(message) {
    if (this.closed || !this.pc.remoteDescription) return;
    try {
      if (message.candidate) await this.pc.addIceCandidate(message.candidate);
      else await this.pc.addIceCandidate();
    } catch (err) {
      // Candidates of an ICE generation that a restart replaced are expected to fail.
      console.debug('samtalerum: candidate not added', err);
    }
  }

  /** This interval's figures for the `stats` message, or null (first sample, or closed). */
  async sample(local) {
    try {
      return await this.sampler.sample(this.pc, local);
    } catch (err) {
      console.debug('samtalerum: stats unavailable', err);
      return null;
    }
  }

  setIceServers(iceServers) {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (err) {
      console.warn('samtalerum: new ICE servers not applied', err);
    }
  }

  close() {
    this.closed = true;
    this.pc.close();
  }
}
