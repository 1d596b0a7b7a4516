// One participant's side of a call: the signalling WebSocket (Docs/PROTOCOL.md, version 1,
// with the mesh extension: up to four participants, one RTCPeerConnection per other
// participant) and local media. No DOM here; the page listens to `change` events, to
// `message` events for notes and chat lines (CustomEvent, detail {kind, text, from, peer})
// and to `presence` events when someone comes or goes (detail {change, peer, role}).

import { LocalMedia } from './call-media.js';
import { RemotePeer } from './call-peer.js';
import { aggregateStats } from './call-stats.js';

const PROTOCOL_VERSION = 1;
const CLOSE_NORMAL = 1000;
// The server said no (a fatal error): reconnecting cannot help.
const CLOSE_POLICY = 1008;
// ...except this one: we fell behind reading, and the server keeps our place for the grace period.
const SLOW_CONSUMER = 'slow-consumer';
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 5000;
const DEFAULT_GRACE_SECONDS = 60;
const STATS_INTERVAL_MS = 2000;
const RESUME_KEY = 'samtalerum.resume';
// Whoever of these leaves ends the session; a guest leaving ends only its own connections.
const SESSION_ROLES = new Set(['worker', 'citizen']);

export const CallState = Object.freeze({
  idle: 'idle',
  checking: 'checking',
  ready: 'ready',
  media: 'media',
  connecting: 'connecting',
  waitingRoom: 'waiting-room', // a citizen or guest the worker has not let in yet
  waiting: 'waiting',          // in the room, nobody to talk to yet
  negotiating: 'negotiating',  // others are here, no media path yet
  connected: 'connected',      // media flows with at least one other participant
  peerLeft: 'peer-left',
  reconnecting: 'reconnecting',
  ended: 'ended',
  error: 'error',
});

export class Call extends EventTarget {
  /**
   * @param {{token: string|(() => Promise<string|null>), meetingId?: string|null, socketURL?: string}} options
   * A worker names the meeting; a citizen's or guest's invite token already names it.
   */
  constructor({ token, meetingId = null, socketURL = defaultSocketURL() }) {
    super();
    this.token = token;
    this.meetingId = meetingId;
    this.socketURL = socketURL;
    // The load balancer routes every connection of a meeting to the node holding its room.
    this.routingMeetingId = meetingId ?? meetingOfInvite(token);

    this.state = CallState.idle;
    this.error = null;          // the server's error code once a fatal error arrived
    this.media = new LocalMedia();
    this.role = null;
    this.peerId = null;         // my place in the room: 'worker', 'citizen' or 'guest-…'
    this.sessionId = null;
    this.peerLeftReason = null;
    this.groupLeftBy = null;    // {peer, role} whose leaving ended a call of three or four
    this.endedBy = null;        // 'worker' when the worker's hang-up ended this side's call
    /** @type {Map<string, RemotePeer>} everyone I am in the call with, by peer id */
    this.peers = new Map();
    /** @type {Map<string, string>} worker: peer id → role of those in the waiting room */
    this.waitingPeers = new Map();
    this.rttMs = null;
    this.quality = null;        // the last `quality` push: {receiving, sending}
    this.resumes = 0;           // successful resumes, for the page and the tests
    this.iceRestarts = 0;

    this.ws = null;
    this.iceServers = [];
    this.joinRequested = false;
    this.wantJoin = false;
    this.authenticated = false;
    this.resuming = false;
    this.graceSeconds = DEFAULT_GRACE_SECONDS;
    this.droppedAt = null;
    this.reconnectDelay = RECONNECT_FIRST_MS;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pingId = 0;
    this.pingSentAt = new Map();
    this.statsTimer = null;
    this.inbox = Promise.resolve();
    this.welcomeWaiter = null;
    // A resume token left by an earlier page of this tab belongs to a call that page ended.
    sessionStorage.removeItem(RESUME_KEY);
  }

  get peerPresent() { return this.peers.size > 0; }
  get peerWaiting() { return this.waitingPeers.size > 0; }
  get peerReconnecting() { return [...this.peers.values()].some((p) => p.reconnecting); }

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

  /** Worker: let one waiting participant in. Its place in the list goes at once; `peer-joined` follows when the call starts. */
  admit(peer) {
    this.waitingPeers.delete(peer);
    this.send({ type: 'admit', peer });
    this.emit();
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
    this.dispatchEvent(new CustomEvent('message', { detail: { kind: 'chat', text: value, from: 'me', peer: this.peerId } }));
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

  /** Both work before and during the call; the other side is told by a renegotiation (call-peer.js). */
  setCameraOff(off) {
    return this.changeCamera(this.media.setCameraOff(off));
  }

  setAudioOnly(on) {
    return this.changeCamera(this.media.setAudioOnly(on));
  }

  async changeCamera(done) {
    this.updateSenders(); // off at once: nothing more leaves while the camera closes
    this.emit();
    await done;
    this.updateSenders();
    this.emit();
  }

  /** "Prøv igen" once camera and microphone are allowed: the others get them by renegotiation. */
  async retryMedia() {
    await this.media.reacquire();
    this.updateSenders();
    this.emit();
  }

  /** Sends the screen instead of the camera on every connection's video sender: no renegotiation. */
  async startScreenShare() {
    if (await this.media.startScreenShare(() => this.stopScreenShare())) {
      this.updateSenders();
      this.emit();
    }
  }

  stopScreenShare() {
    if (this.media.stopScreenShare()) {
      this.updateSenders();
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
    // The same address after a dropped connection: if that node died, the balancer picks another.
    const ws = new WebSocket(withMeeting(this.socketURL, this.meetingId ?? this.routingMeetingId));
    this.ws = ws;
    this.authenticated = false;
    const resumeToken = sessionStorage.getItem(RESUME_KEY);
    this.resuming = Boolean(resumeToken && this.wantJoin);
    ws.addEventListener('open', async () => {
      // A worker signed in through the identity provider gets a fresh short token per connection.
      const token = typeof this.token === 'function' ? await this.token() : this.token;
      this.send({ type: 'hello', v: PROTOCOL_VERSION, token, ...(this.resuming ? { resumeToken } : {}) });
    });
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
      case 'peer-waiting': return this.onPeerWaiting(message);
      case 'admitted': return this.setState(this.roomState());
      case 'peer-joined': return this.onPeerJoined(message);
      case 'peer-left': return this.onPeerLeft(message);
      case 'peer-reconnecting': return this.onPeerReconnecting(message, true);
      case 'peer-reconnected': return this.onPeerReconnecting(message, false);
      case 'offer':
      case 'answer': return this.peerFor(message)?.applyDescription(message, this.media);
      case 'candidate': return this.peerFor(message)?.addCandidate(message);
      case 'note':
      case 'chat': return this.onText(message);
      case 'quality': return this.onQuality(message);
      case 'pong': return this.onPong(message);
      case 'error': return this.onError(message);
      default: return undefined; // newer server message types are ignored (protocol, Versioning)
    }
  }

  /**
   * The connection a relayed message belongs to. A server without the mesh extension names
   * only the sender's role, which is also its peer id ('worker', 'citizen').
   */
  peerFor(message) {
    const found = this.peers.get(message.peer ?? message.from ?? message.role);
    if (found || message.peer !== undefined || this.peers.size !== 1) return found;
    return this.peers.values().next().value;
  }

  onWelcome(message) {
    this.role = message.role;
    this.peerId = message.peer ?? message.role;
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

  /**
   * Nothing is reset here: the server may deliver what others' steps caused (`peer-waiting`,
   * even `peer-joined`) before our `joined`. A lost place is cleared on `resume-failed`.
   */
  onJoined(message) {
    this.storeResumeToken(message.resumeToken);
    this.iceServers = Array.isArray(message.iceServers) ? message.iceServers : [];
    for (const peer of this.peers.values()) peer.setIceServers(this.iceServers);
    this.meetingId = message.meetingId ?? this.meetingId;
    this.peerId = message.peer ?? this.peerId;
    this.setState(message.waiting === true ? CallState.waitingRoom : this.roomState());
  }

  /** Back in our place after a dropped connection: same session, same peer connections. */
  onResumed(message) {
    this.resuming = false;
    this.resumes += 1;
    this.storeResumeToken(message.resumeToken);
    if (Array.isArray(message.iceServers)) {
      this.iceServers = message.iceServers;
      for (const peer of this.peers.values()) peer.setIceServers(this.iceServers);
    }
    this.sessionId = message.sessionId ?? this.sessionId;
    // Whoever is no longer listed left while we were away.
    const listed = new Set((Array.isArray(message.peers) ? message.peers : []).map((p) => p.peer ?? p.role));
    for (const id of [...this.peers.keys()]) {
      if (!this.sessionId || !listed.has(id)) this.removePeer(id);
    }
    if (message.waiting === true) {
      this.setState(CallState.waitingRoom);
      return;
    }
    if (!this.peerPresent) {
      this.setState(CallState.waiting);
      return;
    }
    this.setState(this.mediaState());
    // Media that kept flowing fires no connection-state change to restart the stats.
    if (this.state === CallState.connected) this.startStats();
    // Our network may have changed: every path we offer on needs fresh candidates.
    for (const peer of this.peers.values()) this.restartIce(peer);
  }

  onPeerWaiting(message) {
    const role = message.role ?? 'citizen';
    const id = message.peer ?? role;
    this.waitingPeers.set(id, role);
    this.emit();
    this.dispatchEvent(new CustomEvent('peer-waiting', { detail: { peer: id, role } }));
  }

  onPeerJoined(message) {
    const id = message.peer ?? message.role;
    this.waitingPeers.delete(id);
    this.removePeer(id); // a participant back after a lost place starts on a fresh connection
    const peer = new RemotePeer({
      id,
      role: message.role,
      initiator: message.initiator === true,
      iceServers: this.iceServers,
      signal: (out) => this.send({ ...out, to: id }),
      onChange: () => this.emit(),
      onConnectionState: (p) => this.onConnectionState(p),
    });
    this.peers.set(id, peer);
    this.sessionId = message.sessionId ?? this.sessionId;
    this.peerLeftReason = null;
    this.groupLeftBy = null;
    if (peer.initiator) peer.attachLocalMedia(this.media); // fires negotiationneeded → offer
    this.dispatchEvent(new CustomEvent('presence', { detail: { change: 'joined', peer: id, role: peer.role } }));
    if (this.state !== CallState.reconnecting) this.setState(this.mediaState());
  }

  onPeerLeft(message) {
    const id = message.peer ?? message.role;
    this.waitingPeers.delete(id);
    if (!this.peers.has(id)) {
      this.emit();
      return;
    }
    // The worker ended the meeting on purpose: nothing to wait for, so the call ends here too
    // and camera and microphone go off. A worker who only lost the connection may come back.
    if (this.role !== 'worker' && message.role === 'worker' && message.reason === 'hangup') {
      this.endedBy = 'worker';
      this.hangUp();
      return;
    }
    const group = this.peers.size > 1;
    this.removePeer(id);
    // The session ends with the worker or the citizen: the other connections go with it.
    if (SESSION_ROLES.has(message.role)) this.closePeers();
    this.dispatchEvent(new CustomEvent('presence', { detail: { change: 'left', peer: id, role: message.role } }));
    if (this.peerPresent) {
      if (this.state !== CallState.reconnecting) this.setState(this.mediaState());
      return;
    }
    this.peerLeftReason = message.reason ?? null;
    this.groupLeftBy = group ? { peer: id, role: message.role } : null;
    this.sessionId = null;
    this.stopStats();
    this.setState(CallState.peerLeft);
  }

  onPeerReconnecting(message, away) {
    const peer = this.peerFor(message);
    if (!peer) return;
    peer.reconnecting = away;
    this.emit();
    if (!away) this.restartIce(peer);
  }

  /** The other side's network may have changed: the offerer of that pair gathers fresh candidates (PROTOCOL, ICE restart). */
  restartIce(peer) {
    if (!peer.initiator) return;
    this.iceRestarts += 1;
    peer.restartIce();
  }

  onText(message) {
    if (typeof message.text !== 'string') return;
    this.dispatchEvent(new CustomEvent('message', {
      detail: { kind: message.type, text: message.text, from: message.from ?? null, peer: message.peer ?? message.from ?? null },
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
      this.sessionId = null;
      this.stopStats();
      this.waitingPeers.clear();
      this.closePeers();
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
    // The server keeps our place after a slow-consumer close: the close that follows is a drop.
    if (message.code === SLOW_CONSUMER) return;
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
    if (event.code === CLOSE_POLICY && event.reason !== SLOW_CONSUMER) {
      this.fail(this.error ?? (event.reason || 'closed'));
      return;
    }
    // Any other close, even a 1000 we did not ask for, may be a network change or a restart:
    // try again for as long as the server keeps our place. The peer connections stay, so
    // media that still flows is not interrupted.
    const now = performance.now();
    this.droppedAt ??= now;
    if (now - this.droppedAt > this.graceSeconds * 1000) {
      this.fail('connection-lost');
      return;
    }
    this.setState(CallState.reconnecting);
    // Spread out, so every page of a node that went away does not come back in the same instant.
    const delay = this.reconnectDelay * (0.75 + Math.random() * 0.5);
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

  /** One `stats` message per interval, over all connections (mesh extension). */
  startStats() {
    if (this.statsTimer) return;
    this.statsTimer = setInterval(async () => {
      if (!this.peerPresent || !this.authenticated) return;
      const local = { audioOnly: !this.media.sendsVideo() };
      const samples = (await Promise.all([...this.peers.values()].map((p) => p.sample(local)))).filter(Boolean);
      if (samples.length && this.peerPresent) this.send(aggregateStats(samples));
    }, STATS_INTERVAL_MS);
  }

  stopStats() {
    clearInterval(this.statsTimer);
    this.statsTimer = null;
  }

  // --- peer connections (call-peer.js) ----------------------------------------------------

  updateSenders() {
    for (const peer of this.peers.values()) peer.updateSenders(this.media);
  }

  /** In the room: alone, or with others (who may have arrived before our own `joined`/`admitted`). */
  roomState() {
    return this.peerPresent ? this.mediaState() : CallState.waiting;
  }

  /** Connected as soon as media flows with anyone; each tile shows its own connection. */
  mediaState() {
    return [...this.peers.values()].some((p) => p.connected) ? CallState.connected : CallState.negotiating;
  }

  onConnectionState(peer) {
    if (peer.connected) this.startStats();
    // A new network path (Wi-Fi ↔ mobile) needs fresh candidates; the pair's initiator asks.
    if (peer.pc.connectionState === 'failed') this.restartIce(peer);
    if (this.state === CallState.reconnecting) this.emit();
    else this.setState(this.mediaState());
  }

  removePeer(id) {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  closePeers() {
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    this.emit();
  }

  teardown() {
    this.stopPing();
    this.stopStats();
    this.closePeers();
    this.media.stop();
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

/** `/ws?meeting=…`: only a routing hint for the load balancer; the server checks the token. */
function withMeeting(url, meetingId) {
  if (!meetingId) return url;
  const separator = url.includes('?') ? '&' : '?';
  return `${url}${separator}meeting=${encodeURIComponent(meetingId)}`;
}

/** The meeting an invite names (its `mid` claim), read without checking the signature: only to route. */
function meetingOfInvite(token) {
  if (typeof token !== 'string') return null;
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const mid = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), '='))).mid;
    return typeof mid === 'string' ? mid : null;
  } catch {
    return null;
  }
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  // A rejection nobody awaits (e.g. a later reconnect failure) must not spam the console.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
