// One participant's side of a call: the signalling WebSocket (Docs/PROTOCOL.md, version 1),
// local media and the RTCPeerConnection. No DOM here; the page listens to `change` events
// and, for notes and chat lines, `message` events (CustomEvent, detail {kind, text, from}).

import { LocalMedia } from './call-media.js';
import { addCandidate, applyDescription, attachLocalMedia, openPeerConnection, updateVideoSender } from './call-peer.js';
import { StatsSampler } from './call-stats.js';

const PROTOCOL_VERSION = 1;
const CLOSE_NORMAL = 1000;
// The server said no (a fatal error): reconnecting cannot help.
const CLOSE_POLICY = 1008;
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 5000;
const DEFAULT_GRACE_SECONDS = 60;
const STATS_INTERVAL_MS = 2000;
const RESUME_KEY = 'samtalerum.resume';

export const CallState = Object.freeze({
  idle: 'idle',
  checking: 'checking',
  ready: 'ready',
  media: 'media',
  connecting: 'connecting',
  waitingRoom: 'waiting-room', // a citizen the worker has not let in yet
  waiting: 'waiting',          // in the room, the other participant is not
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
    this.media = new LocalMedia();
    this.role = null;
    this.sessionId = null;
    this.peerLeftReason = null;
    this.pc = null;
    this.remoteStream = null;
    this.rttMs = null;
    this.quality = null;        // the last `quality` push: {receiving, sending}
    this.peerWaiting = false;   // worker: the citizen is in the waiting room
    this.peerReconnecting = false;
    this.resumes = 0;           // successful resumes, for the page and the tests
    this.iceRestarts = 0;

    this.ws = null;
    this.iceServers = [];
    this.peerPresent = false;
    this.initiator = false;
    this.joinRequested = false;
    this.wantJoin = false;
    this.authenticated = false;
    this.resuming = false;
    this.makingOffer = false;
    this.graceSeconds = DEFAULT_GRACE_SECONDS;
    this.droppedAt = null;
    this.reconnectDelay = RECONNECT_FIRST_MS;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pingId = 0;
    this.pingSentAt = new Map();
    this.statsTimer = null;
    this.sampler = new StatsSampler();
    this.inbox = Promise.resolve();
    this.welcomeWaiter = null;
    // A resume token left by an earlier page of this tab belongs to a call that page ended.
    sessionStorage.removeItem(RESUME_KEY);
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
    await this.media.acquire();
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

  /** Worker: let the waiting citizen in. */
  admit() {
    this.send({ type: 'admit' });
  }

  /** Worker: a short note the citizen sees, also in the waiting room. */
  sendNote(text) {
    const value = text.trim().slice(0, 280);
    if (value) this.send({ type: 'note', text: value });
    return value;
  }

  sendChat(text) {
    const value = text.trim().slice(0, 2000);
    if (!value || !this.peerPresent) return '';
    this.send({ type: 'chat', text: value });
    this.dispatchEvent(new CustomEvent('message', { detail: { kind: 'chat', text: value, from: 'me' } }));
    return value;
  }

  // What the page reads and sets about this side's media.
  get localStream() { return this.media.stream; }
  get mediaNotice() { return this.media.notice; }
  get muted() { return this.media.muted; }
  get cameraOff() { return this.media.cameraOff; }
  get audioOnly() { return this.media.audioOnly; }
  get hasCamera() { return this.media.hasCamera; }
  get hasMicrophone() { return this.media.hasMicrophone; }
  get sharingScreen() { return this.media.sharingScreen; }
  get canShareScreen() { return LocalMedia.canShareScreen; }
  sendsVideo() { return this.media.sendsVideo(); }
  adoptLocalStream(stream) { this.media.adopt(stream); }

  setMuted(muted) {
    this.media.setMuted(muted);
    this.emit();
  }

  setCameraOff(off) {
    this.media.setCameraOff(off);
    this.emit();
  }

  /** Works before and during the call. */
  setAudioOnly(on) {
    this.media.setAudioOnly(on);
    this.updateVideoSender();
    this.emit();
  }

  /** Sends the screen instead of the camera on the same video sender: no renegotiation. */
  async startScreenShare() {
    if (await this.media.startScreenShare(() => this.stopScreenShare())) {
      this.updateVideoSender();
      this.emit();
    }
  }

  stopScreenShare() {
    if (this.media.stopScreenShare()) {
      this.updateVideoSender();
      this.emit();
    }
  }

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
    const resumeToken = sessionStorage.getItem(RESUME_KEY);
    this.resuming = Boolean(resumeToken && this.wantJoin);
    ws.addEventListener('open', () => this.send({
      type: 'hello', v: PROTOCOL_VERSION, token: this.token, ...(this.resuming ? { resumeToken } : {}),
    }));
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
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
      case 'resumed': return this.onResumed(message);
      case 'peer-waiting': return this.onPeerWaiting();
      case 'admitted': return this.setState(CallState.waiting);
      case 'peer-joined': return this.onPeerJoined(message);
      case 'peer-left': return this.onPeerLeft(message);
      case 'peer-reconnecting': return this.onPeerReconnecting();
      case 'peer-reconnected': return this.onPeerReconnected();
      case 'offer':
      case 'answer': return this.onDescription(message);
      case 'candidate': return this.onCandidate(message);
      case 'note':
      case 'chat': return this.onText(message);
      case 'quality': return this.onQuality(message);
      case 'pong': return this.onPong(message);
      case 'error': return this.onError(message);
      default: return undefined; // newer server message types are ignored (protocol, Versioning)
    }
  }

  onWelcome(message) {
    this.role = message.role;
    this.initiator = message.role === 'worker';
    this.authenticated = true;
    this.droppedAt = null;
    this.reconnectDelay = RECONNECT_FIRST_MS;
    if (Number.isFinite(message.resumeGraceSeconds) && message.resumeGraceSeconds > 0) {
      this.graceSeconds = message.resumeGraceSeconds;
    }
    this.startPing(message.pingInterval);
    if (this.resuming) {
      // `resumed` or `error resume-failed` follows.
    } else if (this.wantJoin) {
      this.setState(CallState.connecting);
      this.sendJoin();
    } else if (!this.joinRequested) {
      this.setState(CallState.ready);
    }
    this.welcomeWaiter?.resolve(message);
  }

  onJoined(message) {
    this.storeResumeToken(message.resumeToken);
    this.iceServers = Array.isArray(message.iceServers) ? message.iceServers : [];
    this.meetingId = message.meetingId ?? this.meetingId;
    this.peerPresent = false;
    this.sessionId = null;
    this.resetPeerConnection();
    this.setState(message.waiting === true ? CallState.waitingRoom : CallState.waiting);
  }

  /** Back in our place after a dropped connection: same session, same RTCPeerConnection. */
  onResumed(message) {
    this.resuming = false;
    this.resumes += 1;
    this.storeResumeToken(message.resumeToken);
    if (Array.isArray(message.iceServers)) {
      this.iceServers = message.iceServers;
      try {
        this.pc?.setConfiguration({ ...this.pc.getConfiguration(), iceServers: this.iceServers });
      } catch (err) {
        console.warn('samtalerum: new ICE servers not applied', err);
      }
    }
    this.sessionId = message.sessionId ?? this.sessionId;
    const peers = Array.isArray(message.peers) ? message.peers : [];
    this.peerPresent = Boolean(this.sessionId) && peers.length > 0;
    if (message.waiting === true) {
      this.setState(CallState.waitingRoom);
      return;
    }
    if (!this.peerPresent) {
      this.setState(CallState.waiting);
      return;
    }
    this.setState(this.pc?.connectionState === 'connected' ? CallState.connected : CallState.negotiating);
    this.restartIce();
  }

  onPeerWaiting() {
    this.peerWaiting = true;
    this.emit();
    this.dispatchEvent(new CustomEvent('peer-waiting'));
  }

  onPeerJoined(message) {
    this.peerPresent = true;
    this.peerWaiting = false;
    this.peerReconnecting = false;
    this.initiator = message.initiator === true;
    this.sessionId = message.sessionId ?? null;
    this.peerLeftReason = null;
    this.setState(CallState.negotiating);
    if (this.initiator) this.attachLocalMedia(); // fires negotiationneeded → offer
  }

  onPeerLeft(message) {
    this.peerPresent = false;
    this.peerReconnecting = false;
    this.peerLeftReason = message.reason ?? null;
    this.sessionId = null;
    this.stopStats();
    this.resetPeerConnection(); // a fresh connection for when the peer comes back
    this.setState(CallState.peerLeft);
  }

  onPeerReconnecting() {
    this.peerReconnecting = true;
    this.emit();
  }

  onPeerReconnected() {
    this.peerReconnecting = false;
    this.emit();
    this.restartIce();
  }

  /** The peer's network may have changed: the offerer gathers fresh candidates (PROTOCOL, ICE restart). */
  restartIce() {
    if (!this.initiator || !this.pc || !this.peerPresent) return;
    this.iceRestarts += 1;
    this.pc.restartIce(); // fires negotiationneeded → an offer with new ICE credentials
  }

  onDescription(message) { return applyDescription(this, message); }

  onCandidate(message) { return addCandidate(this, message); }

  onText(message) {
    if (typeof message.text !== 'string') return;
    this.dispatchEvent(new CustomEvent('message', {
      detail: { kind: message.type, text: message.text, from: message.from ?? null },
    }));
  }

  onQuality(message) {
    this.quality = { receiving: message.receiving ?? null, sending: message.sending ?? null };
    this.emit();
  }

  onPong(message) {
    const sentAt = this.pingSentAt.get(message.id);
    if (sentAt === undefined) return;
    this.pingSentAt.delete(message.id);
    this.rttMs = Math.round(performance.now() - sentAt);
  }

  onError(message) {
    if (message.code === 'resume-failed') {
      // Our place is gone (grace over, or a restarted server): come in as new.
      this.resuming = false;
      sessionStorage.removeItem(RESUME_KEY);
      this.peerPresent = false;
      this.sessionId = null;
      this.stopStats();
      this.closePeerConnection();
      if (this.wantJoin) {
        this.setState(CallState.connecting);
        this.sendJoin();
      }
      return;
    }
    if (!message.fatal) {
      console.warn('samtalerum: server error', message.code, message.message);
      return;
    }
    this.fail(message.code);
  }

  fail(code) {
    this.error = code;
    this.wantJoin = false;
    clearTimeout(this.reconnectTimer);
    sessionStorage.removeItem(RESUME_KEY);
    this.teardown();
    this.setState(CallState.error);
    this.welcomeWaiter?.reject(new CallError(code));
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.authenticated = false;
    this.stopPing();
    this.stopStats();
    if (this.state === CallState.ended || this.state === CallState.error) return;
    if (event.code === CLOSE_POLICY) {
      this.fail(this.error ?? (event.reason || 'closed'));
      return;
    }
    // Any other close, even a 1000 we did not ask for, may be a network change or a restart:
    // try again for as long as the server keeps our place. The peer connection stays, so
    // media that still flows is not interrupted.
    const now = performance.now();
    this.droppedAt ??= now;
    if (now - this.droppedAt > this.graceSeconds * 1000) {
      this.fail('connection-lost');
      return;
    }
    this.setState(CallState.reconnecting);
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(RECONNECT_MAX_MS, this.reconnectDelay * 2);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (this.state === CallState.reconnecting) this.openSocket();
    }, delay);
  }

  storeResumeToken(token) {
    if (typeof token === 'string' && token) sessionStorage.setItem(RESUME_KEY, token);
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

  startStats() {
    if (this.statsTimer) return;
    this.sampler.reset();
    this.statsTimer = setInterval(async () => {
      const pc = this.pc;
      if (!pc || !this.peerPresent || !this.authenticated) return;
      try {
        const message = await this.sampler.sample(pc, { audioOnly: !this.media.sendsVideo() });
        if (message && pc === this.pc) this.send(message);
      } catch (err) {
        console.debug('samtalerum: stats unavailable', err);
      }
    }, STATS_INTERVAL_MS);
  }

  stopStats() {
    clearInterval(this.statsTimer);
    this.statsTimer = null;
  }

  // --- media ------------------------------------------------------------------------------

  updateVideoSender() { updateVideoSender(this); }

  // --- peer connection (call-peer.js) -----------------------------------------------------

  resetPeerConnection() {
    this.closePeerConnection();
    openPeerConnection(this);
    this.emit();
  }

  closePeerConnection() {
    if (!this.pc) return;
    this.pc.close();
    this.pc = null;
    this.remoteStream = null;
  }

  attachLocalMedia() { attachLocalMedia(this); }

  onConnectionState(pc) {
    if (pc !== this.pc) return;
    switch (pc.connectionState) {
      case 'connected':
        this.startStats();
        if (this.state !== CallState.reconnecting) this.setState(CallState.connected);
        else this.emit();
        break;
      case 'failed':
        // A new network path (Wi-Fi ↔ mobile) needs fresh candidates; the initiator asks.
        this.restartIce();
        if (this.state !== CallState.reconnecting) this.setState(CallState.negotiating);
        break;
      default:
        this.emit();
    }
  }

  teardown() {
    this.stopPing();
    this.stopStats();
    this.closePeerConnection();
    this.media.stop();
    this.peerPresent = false;
    this.peerReconnecting = false;
    sessionStorage.removeItem(RESUME_KEY);
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
