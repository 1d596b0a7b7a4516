// The RTCPeerConnection side of a Call: opening it, filling its transceivers, offers and
// answers, trickled candidates. Functions of the Call (`call`), which owns the state: the
// worker is always the offerer (`call.initiator`), and nothing is signalled without a peer.

/** A new connection on `call.pc`, with a fresh remote stream. */
export function openPeerConnection(call) {
  const pc = new RTCPeerConnection({ iceServers: call.iceServers });
  call.pc = pc;
  call.remoteStream = new MediaStream();
  call.makingOffer = false;

  pc.addEventListener('icecandidate', ({ candidate }) => {
    if (pc !== call.pc || !call.peerPresent) return;
    call.send({ type: 'candidate', candidate: candidate ? candidate.toJSON() : null });
  });
  pc.addEventListener('negotiationneeded', () => makeOffer(call, pc));
  pc.addEventListener('track', ({ track }) => {
    if (pc !== call.pc) return;
    call.remoteStream.addTrack(track);
    // A remote track is muted until media flows, and again when it stops.
    track.addEventListener('mute', () => call.emit());
    track.addEventListener('unmute', () => call.emit());
    call.emit();
  });
  pc.addEventListener('connectionstatechange', () => call.onConnectionState(pc));
  return pc;
}

/**
 * Both sides send and receive on one audio and one video transceiver, even without a
 * device: the sender may carry nothing now and the screen or camera later, without
 * renegotiation. The answerer fills the transceivers the offer made.
 */
export function attachLocalMedia(call) {
  const pc = call.pc;
  const stream = call.media.stream ?? new MediaStream();
  for (const kind of ['audio', 'video']) {
    const track = kind === 'video' ? call.media.currentVideoTrack() : call.media.audioTrack();
    const existing = pc.getTransceivers().find((t) => (t.receiver.track?.kind === kind) && !t.stopped);
    if (existing) {
      if (existing.sender.track !== track) existing.sender.replaceTrack(track);
      existing.sender.setStreams?.(stream);
      existing.direction = 'sendrecv';
    } else {
      pc.addTransceiver(track ?? kind, { direction: 'sendrecv', streams: [stream] });
    }
  }
}

/** Puts the camera, the screen or nothing on the video sender, as the person chose. */
export function updateVideoSender(call) {
  const sender = call.pc?.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === 'video')?.sender;
  if (!sender) return;
  const track = call.media.currentVideoTrack();
  if (sender.track !== track) sender.replaceTrack(track).catch((err) => console.warn('samtalerum: video switch failed', err));
}

async function makeOffer(call, pc) {
  if (pc !== call.pc || !call.initiator || !call.peerPresent) return;
  try {
    call.makingOffer = true;
    await pc.setLocalDescription();
    call.send({ type: 'offer', sdp: pc.localDescription.sdp });
  } catch (err) {
    console.error('samtalerum: offer failed', err);
  } finally {
    call.makingOffer = false;
  }
}

export async function applyDescription(call, message) {
  const pc = call.pc;
  if (!pc || typeof message.sdp !== 'string') return;
  const isOffer = message.type === 'offer';
  // Only the initiator offers, so a collision means a stale offer from the other side;
  // the initiator keeps its own, the other side yields (the "perfect negotiation" rule).
  const collision = isOffer && (call.makingOffer || pc.signalingState !== 'stable');
  if (collision && call.initiator) return;
  if (!isOffer && pc.signalingState !== 'have-local-offer') return; // a replayed, stale answer
  await pc.setRemoteDescription({ type: message.type, sdp: message.sdp });
  if (isOffer) {
    attachLocalMedia(call);
    await pc.setLocalDescription();
    call.send({ type: 'answer', sdp: pc.localDescription.sdp });
  }
}

export async function addCandidate(call, message) {
  const pc = call.pc;
  if (!pc || !pc.remoteDescription) return;
  try {
    if (message.candidate) await pc.addIceCandidate(message.candidate);
    else await pc.addIceCandidate();
  } catch (err) {
    // Candidates of an ICE generation that a restart replaced are expected to fail.
    console.debug('samtalerum: candidate not added', err);
  }
}
