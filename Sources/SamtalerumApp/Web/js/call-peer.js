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
      this.remoteStream.addTrack(track);
      // A remote track is muted until media flows, and again when it stops.
      track.addEventListener('mute', onChange);
      track.addEventListener('unmute', onChange);
      onChange();
    });
    pc.addEventListener('connectionstatechange', () => {
      if (!this.closed) onConnectionState(this);
    });
  }

  get connected() { return this.pc.connectionState === 'connected'; }

  /**
   * Both sides send and receive on one audio and one video transceiver, even without a
   * device: the sender may carry nothing now and the screen or camera later, without
   * renegotiation. The answerer fills the transceivers the offer made.
   * @param {import('./call-media.js').LocalMedia} media
   */
  attachLocalMedia(media) {
    const stream = media.stream ?? new MediaStream();
    for (const kind of ['audio', 'video']) {
      const track = kind === 'video' ? media.currentVideoTrack() : media.audioTrack();
      const existing = this.pc.getTransceivers().find((t) => (t.receiver.track?.kind === kind) && !t.stopped);
      if (existing) {
        if (existing.sender.track !== track) existing.sender.replaceTrack(track);
        existing.sender.setStreams?.(stream);
        existing.direction = 'sendrecv';
      } else {
        this.pc.addTransceiver(track ?? kind, { direction: 'sendrecv', streams: [stream] });
      }
    }
  }

  /** Puts the camera, the screen or nothing on the video sender, as the person chose. */
  updateVideoSender(media) {
    const sender = this.pc.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === 'video')?.sender;
    if (!sender) return;
    const track = media.currentVideoTrack();
    if (sender.track !== track) sender.replaceTrack(track).catch((err) => console.warn('samtalerum: video switch failed', err));
  }

  /** Fresh candidates after a network change; fires negotiationneeded → an offer with new ICE credentials. */
  restartIce() {
    if (this.initiator && !this.closed) this.pc.restartIce();
  }

  async makeOffer() {
    if (!this.initiator || this.closed) return;
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
