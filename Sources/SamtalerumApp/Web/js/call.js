// One participant's side of a call: the signalling WebSocket (Docs/PROTOCOL.md, version 1),
// local media and the RTCPeerConnection. No DOM here; the page listens to `change` events.

const PROTOCOL_VERSION = 1;
const MAX_RECONNECTS = 5;
const CLOSE_NORMAL = 1000;
// The server said no (a fatal error): reconnecting cannot help.
const CLOSE_POLICY = 1008;

export const CallState = Object.freeze({
  idle: 'idle',
  checking: 'checking',
  ready: 'ready',
  media: 'media',
  connecting: 'connecting',
  waiting: 'waiting',
  negotiating: 'negotiating',
  connected: 'connected',
  peerLeft: 'peer-left',
  reconnecting: 'reconnecting',
  ended: 'ended',
  error: 'error',
});

export class Call extends EventTarget {
  /**
   * @param {{token: string, meetingId?: string|null, socketURL?: string}} options
   * A worker names the meeting; a citizen's invite token already names it.
   */
  constructor({ token, meetingId = null, socketURL = defaultSocketURL() }) {
    super();
    this.token = token;
    this.meetingId = meetingId;
    this.socketURL = socketURL;

    this.state = CallState.idle;
    this.error = null;          // the server's error code once a fatal error arrived
    this.mediaNotice = null;    // 'noCamera' | 'noMedia' when we continue with less
    this.role = null;
    this.sessionId = null;
    this.peerLeftReason = null;
    this.pc = null;
    this.localStream = null;
    this.remoteStream = null;
    this.muted = false;
    this.cameraOff = false;
    this.rttMs = null;

    this.ws = null;
    this.iceServers = [];
    this.peerPresent = false;
    this.initiator = false;
    this.joinRequested = false;
    this.wantJoin = false;
    this.authenticated = false;
    this.makingOffer = false;
    this.reconnects = 0;
    this.pingTimer = null;
    this.pingId = 0;
    this.pingSentAt = new Map();
    this.inbox = Promise.resolve();
    this.welcomeWaiter = null;
  }

  /** Opens the socket and authenticates; resolves on `welcome`, rejects with the error code. */
  connect() {
    if (this.welcomeWaiter) return this.welcomeWaiter.promise;
    this.welcomeWaiter = deferred();
    this.setState(CallState.checking);
    this.openSocket();
    return this.welcomeWaiter.promise;
  }

  /**
   * Starts local media, then enters the room. Media comes first so the tracks are there
   * before any offer can arrive. Safe to call before `connect` has finished.
   */
  async join() {
    if (this.joinRequested || this.state === CallState.ended || this.state === CallState.error) return;
    this.joinRequested = true;
    this.setState(CallState.media);
    await this.acquireMedia();
    if (this.state === CallState.ended || this.state === CallState.error) return;
    this.wantJoin = true;
    this.setState(CallState.connecting);
    if (this.authenticated) this.sendJoin();
    else if (!this.ws) this.connect();
    // otherwise `welcome` is on its way and sends the join
  }

  sendJoin() {
    this.send({ type: 'join', ...(this.meetingId ? { meetingId: this.meetingId } : {}) });
  }

  setMuted(muted) {
    this.muted = muted;
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = !muted;
    this.emit();
  }

  setCameraOff(off) {
    this.cameraOff = off;
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = !off;
    this.emit();
  }

  get hasCamera() { return (this.localStream?.getVideoTracks().length ?? 0) > 0; }
  get hasMicrophone() { return (this.localStream?.getAudioTracks().length ?? 0) > 0; }

  /** `leave` tells the server this was a hang-up (recorded as such), not a lost connection. */
  hangUp() {
    if (this.state === CallState.ended) return;
    this.wantJoin = false;
    this.send({ type: 'leave' });
    const ws = this.ws;
    // The server closes after `leave`; close ourselves only if it does not.
    setTimeout(() => ws?.close(CLOSE_NORMAL), 2000);
    this.teardown();
    this.setState(CallState.ended);
  }

  // --- signalling -------------------------------------------------------------------------

  openSocket() {
    const ws = new WebSocket(this.socketURL);
    this.ws = ws;
    this.authenticated = false;
    ws.addEventListener('open', () => this.send({ type: 'hello', v: PROTOCOL_VERSION, token: this.token }));
    ws.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn('samtalerum: ignoring a frame that is not JSON');
        return;
      }
      // Serial handling keeps offer → candidates in the order the peer sent them.
      this.inbox = this.inbox.then(() => this.handle(message)).catch((err) => console.error('samtalerum:', err));
    });
    ws.addEventListener('close', (event) => this.onClose(ws, event));
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  async handle(message) {
    switch (message.type) {
      case 'welcome': return this.onWelcome(message);
      case 'joined': return this.onJoined(message);
      case 'peer-joined': return this.onPeerJoined(message);
      case 'peer-left': return this.onPeerLeft(message);
      case 'offer':
      case 'answer': return this.onDescription(message);
      case 'candidate': return this.onCandidate(message);
      case 'pong': return this.onPong(message);
      case 'error': return this.onError(message);
      default: return undefined; // newer server message types are ignored (protocol, Versioning)
    }
  }

  onWelcome(message) {
    this.role = message.role;
    this.authenticated = true;
    this.reconnects = 0;
    this.startPing(message.pingInterval);
    if (this.wantJoin) {
      this.setState(CallState.connecting);
      this.sendJoin();
    } else if (!this.joinRequested) {
      this.setState(CallState.ready);
    }
    this.welcomeWaiter?.resolve(message);
  }

  onJoined(message) {
    this.iceServers = Array.isArray(message.iceServers) ? message.iceServers : [];
    this.meetingId = message.meetingId ?? this.meetingId;
    this.resetPeerConnection();
    this.setState(CallState.waiting);
  }

  onPeerJoined(message) {
    this.peerPresent = true;
    this.initiator = message.initiator === true;
    this.sessionId = message.sessionId ?? null;
    this.peerLeftReason = null;
    this.setState(CallState.negotiating);
    if (this.initiator) this.attachLocalMedia(); // fires negotiationneeded → offer
  }

  onPeerLeft(message) {
    this.peerPresent = false;
    this.peerLeftReason = message.reason ?? null;
    this.resetPeerConnection(); // a fresh connection for when the peer comes back
    this.setState(CallState.peerLeft);
  }

  async onDescription(message) {
    const pc = this.pc;
    if (!pc || typeof message.sdp !== 'string') return;
    const isOffer = message.type === 'offer';
    // Only the initiator offers, so a collision means a stale offer from the other side;
    // the initiator keeps its own, the other side yields (the "perfect negotiation" rule).
    const collision = isOffer && (this.makingOffer || pc.signalingState !== 'stable');
    if (collision && this.initiator) return;
    await pc.setRemoteDescription({ type: message.type, sdp: message.sdp });
    if (isOffer) {
      this.attachLocalMedia();
      await pc.setLocalDescription();
      this.send({ type: 'answer', sdp: pc.localDescription.sdp });
    }
  }

  async onCandidate(message) {
    const pc = this.pc;
    if (!pc || !pc.remoteDescription) return;
    try {
      if (message.candidate) await pc.addIceCandidate(message.candidate);
      else await pc.addIceCandidate();
    } catch (err) {
      console.warn('samtalerum: candidate not added', err);
    }
  }

  onPong(message) {
    const sentAt = this.pingSentAt.get(message.id);
    if (sentAt === undefined) return;
    this.pingSentAt.delete(message.id);
    this.rttMs = Math.round(performance.now() - sentAt);
  }

  onError(message) {
    if (!message.fatal) {
      console.warn('samtalerum: server error', message.code, message.message);
      return;
    }
    this.error = message.code;
    this.wantJoin = false;
    this.teardown();
    this.setState(CallState.error);
    this.welcomeWaiter?.reject(new CallError(message.code));
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.authenticated = false;
    this.stopPing();
    if (this.state === CallState.ended || this.state === CallState.error) return;
    // Any other close, even a 1000 we did not ask for, may be a restart: try again. If the
    // meeting is really over, the server says so on the next join.
    if (event.code === CLOSE_POLICY) {
      this.error = this.error ?? (event.reason || 'closed');
      this.teardown();
      this.setState(CallState.error);
      this.welcomeWaiter?.reject(new CallError(this.error));
      return;
    }
    if (this.reconnects >= MAX_RECONNECTS) {
      this.error = 'connection-lost';
      this.teardown();
      this.setState(CallState.error);
      this.welcomeWaiter?.reject(new CallError(this.error));
      return;
    }
    this.reconnects += 1;
    this.peerPresent = false;
    this.closePeerConnection();
    this.setState(CallState.reconnecting);
    setTimeout(() => {
      if (this.state === CallState.reconnecting) this.openSocket();
    }, 1000 * 2 ** (this.reconnects - 1));
  }

  startPing(intervalSeconds) {
    this.stopPing();
    const seconds = Number.isFinite(intervalSeconds) && intervalSeconds > 0 ? intervalSeconds : 15;
    // A little more often than asked, so a late timer never makes the server think we are gone.
    this.pingTimer = setInterval(() => {
      this.pingId += 1;
      this.pingSentAt.set(this.pingId, performance.now());
      if (this.pingSentAt.size > 10) this.pingSentAt.delete(this.pingSentAt.keys().next().value);
      this.send({ type: 'ping', id: this.pingId });
    }, seconds * 800);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  // --- media ------------------------------------------------------------------------------

  async acquireMedia() {
    if (this.localStream) return;
    const devices = navigator.mediaDevices;
    if (!devices?.getUserMedia) {
      this.localStream = new MediaStream();
      this.mediaNotice = 'noMedia';
      return;
    }
    try {
      this.localStream = await devices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      });
      return;
    } catch (err) {
      console.warn('samtalerum: camera and microphone unavailable, trying microphone only', err);
    }
    try {
      this.localStream = await devices.getUserMedia({ audio: true });
      this.mediaNotice = 'noCamera';
    } catch (err) {
      console.warn('samtalerum: microphone unavailable, continuing without local media', err);
      this.localStream = new MediaStream();
      this.mediaNotice = 'noMedia';
    }
  }

  // --- peer connection --------------------------------------------------------------------

  resetPeerConnection() {
    this.closePeerConnection();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.remoteStream = new MediaStream();
    this.makingOffer = false;

    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (pc !== this.pc || !this.peerPresent) return;
      this.send({ type: 'candidate', candidate: candidate ? candidate.toJSON() : null });
    });
    pc.addEventListener('negotiationneeded', () => this.makeOffer(pc));
    pc.addEventListener('track', ({ track }) => {
      if (pc !== this.pc) return;
      this.remoteStream.addTrack(track);
      // A remote track is muted until media flows, and again when it stops.
      track.addEventListener('mute', () => this.emit());
      track.addEventListener('unmute', () => this.emit());
      this.emit();
    });
    pc.addEventListener('connectionstatechange', () => this.onConnectionState(pc));
    this.emit();
  }

  closePeerConnection() {
    if (!this.pc) return;
    this.pc.close();
    this.pc = null;
    this.remoteStream = null;
  }

  /**
   * The initiator creates its transceivers itself; the answerer fills the ones the offer made,
   * so its tracks always land on the offered m-lines. A missing device becomes receive-only:
   * an audio-only person still sees the other.
   */
  attachLocalMedia() {
    const pc = this.pc;
    const stream = this.localStream ?? new MediaStream();
    for (const kind of ['audio', 'video']) {
      const track = stream.getTracks().find((t) => t.kind === kind);
      const existing = pc.getTransceivers().find((t) => (t.receiver.track?.kind === kind) && !t.stopped);
      if (existing) {
        if (track && !existing.sender.track) {
          existing.sender.replaceTrack(track);
          existing.sender.setStreams?.(stream);
          existing.direction = 'sendrecv';
        }
      } else if (track) {
        pc.addTransceiver(track, { direction: 'sendrecv', streams: [stream] });
      } else {
        pc.addTransceiver(kind, { direction: 'recvonly' });
      }
    }
  }

  async makeOffer(pc) {
    if (pc !== this.pc || !this.initiator || !this.peerPresent) return;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      this.send({ type: 'offer', sdp: pc.localDescription.sdp });
    } catch (err) {
      console.error('samtalerum: offer failed', err);
    } finally {
      this.makingOffer = false;
    }
  }

  onConnectionState(pc) {
    if (pc !== this.pc) return;
    switch (pc.connectionState) {
      case 'connected':
        this.setState(CallState.connected);
        break;
      case 'failed':
        // A new network path (Wi-Fi ↔ mobile) needs fresh candidates; the initiator asks.
        if (this.initiator) pc.restartIce();
        this.setState(CallState.negotiating);
        break;
      default:
        this.emit();
    }
  }

  teardown() {
    this.stopPing();
    this.closePeerConnection();
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.peerPresent = false;
  }

  // --- events -----------------------------------------------------------------------------

  setState(state) {
    this.state = state;
    this.emit();
  }

  emit() {
    this.dispatchEvent(new Event('change'));
  }
}

export class CallError extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

function defaultSocketURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  // A rejection nobody awaits (e.g. a later reconnect failure) must not spam the console.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
