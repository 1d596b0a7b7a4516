// The in-call screen shared by the worker, citizen and guest pages: status line, waiting room,
// banners, quality, one video tile per other participant, big buttons and the chat. It only
// reflects a Call's state; all protocol work stays in call.js.

import { CallState } from './call.js';
import { joinNames, peerName, renderAdmitList, renderTiles } from './call-participants.js';
import { applyTexts, text, texts } from './dom.js';

const MARKUP = `
  <p id="call-status" class="call-status" role="status" aria-live="polite"></p>
  <p id="presence" class="hint presence" role="status" aria-live="polite" hidden></p>
  <p id="reconnect-banner" class="banner" data-t="call.reconnecting" hidden></p>
  <p id="peer-reconnecting" class="banner" hidden></p>
  <div id="media-notice" class="notice" hidden>
    <p id="call-notice"></p>
    <p id="allow-how" hidden></p>
    <button type="button" id="media-retry-button" class="button primary" data-t="controls.retry" hidden></button>
  </div>
  <div id="quality" class="quality" hidden>
    <span id="quality-icon" class="quality-icon" aria-hidden="true"></span>
    <span id="quality-text"></span>
    <span id="quality-hint" class="quality-hint"></span>
  </div>

  <section id="waiting-room" class="card waiting-room" hidden aria-labelledby="waiting-room-title">
    <h2 id="waiting-room-title"></h2>
    <p id="waiting-room-text"></p>
  </section>
  <section id="notes" class="card notes" hidden aria-labelledby="notes-title">
    <h2 id="notes-title" data-t="call.notesTitle"></h2>
    <ul id="note-list" class="note-list" aria-live="polite"></ul>
  </section>

  <section id="admit-panel" class="card admit-panel" hidden aria-labelledby="admit-title">
    <h2 id="admit-title" data-t="call.waitingTitle"></h2>
    <ul id="admit-list" class="admit-list"></ul>
    <form id="note-form" class="stack note-form" novalidate>
      <label for="note-input" data-t="call.noteLabel"></label>
      <input type="text" id="note-input" maxlength="280" autocomplete="off" aria-describedby="note-help">
      <p id="note-help" class="hint" data-t="call.noteHelp"></p>
      <button type="submit" id="note-send" class="button" data-t="call.noteSend"></button>
      <p id="note-status" class="hint" role="status" aria-live="polite"></p>
    </form>
  </section>

  <div class="stage" id="call-stage">
    <div id="remote-tiles" class="tiles" data-count="0"></div>
    <video id="local-video" class="local-video" autoplay playsinline muted data-t-label="video.local"></video>
    <button type="button" id="play-button" class="button primary play-button" data-t="errors.autoplay" hidden></button>
  </div>
  <div class="controls" id="call-controls">
    <button type="button" id="mute-button" class="button control" aria-pressed="false"></button>
    <button type="button" id="camera-button" class="button control" aria-pressed="false"></button>
    <button type="button" id="audio-only-button" class="button control" aria-pressed="false" data-t="controls.audioOnly"></button>
    <button type="button" id="screen-button" class="button control" aria-pressed="false"></button>
    <button type="button" id="hangup-button" class="button danger" data-t="controls.hangUp"></button>
  </div>

  <section id="chat" class="card chat" hidden aria-labelledby="chat-title">
    <h2 id="chat-title" data-t="chat.title"></h2>
    <ol id="chat-log" class="chat-log" aria-live="polite"></ol>
    <form id="chat-form" class="row chat-form" novalidate>
      <label for="chat-input" class="visually-hidden" data-t="chat.label"></label>
      <input type="text" id="chat-input" maxlength="2000" autocomplete="off" data-t-placeholder="chat.placeholder">
      <button type="submit" id="chat-send" class="button" data-t="chat.send"></button>
    </form>
    <p class="hint" data-t="chat.notStored"></p>
  </section>

  <section id="ended-panel" class="card ended-panel" hidden aria-labelledby="ended-title">
    <h2 id="ended-title" data-t="call.endedTitle"></h2>
    <p id="ended-by-worker" data-t="call.endedByWorker" hidden></p>
    <p data-t="call.endedText"></p>
  </section>
  <button type="button" id="retry-button" class="button primary" data-t="controls.retry" hidden></button>
`;

const STATUS_TEXT = {
  [CallState.idle]: 'status.idle',
  [CallState.checking]: 'status.checking',
  [CallState.ready]: 'status.ready',
  [CallState.media]: 'status.media',
  [CallState.connecting]: 'status.connecting',
  [CallState.waitingRoom]: 'status.waitingRoom',
  [CallState.waiting]: 'status.waiting',
  [CallState.negotiating]: 'status.negotiating',
  [CallState.connected]: 'status.connected',
  [CallState.peerLeft]: 'status.peerLeft',
  [CallState.reconnecting]: 'status.reconnecting',
  [CallState.ended]: 'status.ended',
};

const QUALITY_RANK = { lost: 0, poor: 1, good: 2, excellent: 3 };
// Bars as characters: the level is readable without colour, and the text says it in words.
const QUALITY_ICON = { excellent: '▮▮▮▮', good: '▮▮▮▯', poor: '▮▯▯▯', lost: '✕' };

/** Codes where trying again later can help, so a retry button makes sense. */
const RETRYABLE = new Set(['connection-lost', 'internal', 'slow-consumer', 'closed']);

/**
 * @param {HTMLElement} container  where the call screen goes
 * @param {import('./call.js').Call} call
 * @param {(code: string) => string} errorText  the page's friendly text for a fatal error code
 */
export function mountCallView(container, call, errorText) {
  container.innerHTML = MARKUP;
  applyTexts(container);
  const $ = (id) => container.querySelector(`#${id}`);
  const status = $('call-status');
  const localVideo = $('local-video');
  const playButton = $('play-button');
  const tiles = new Map();       // peer id → {root, video, label, placeholder}
  const admitButtons = new Map(); // peer id → list item with its button
  const definiteName = (id, role) => peerName(call, id, role, { definite: true });

  const playRemote = (video) => video.play().catch((err) => {
    if (err.name === 'NotAllowedError') playButton.hidden = false;
  });

  $('mute-button').addEventListener('click', () => call.setMuted(!call.muted));
  $('camera-button').addEventListener('click', () => call.setCameraOff(!call.cameraOff));
  $('audio-only-button').addEventListener('click', () => call.setAudioOnly(!call.audioOnly));
  $('screen-button').addEventListener('click', () => (call.sharingScreen ? call.stopScreenShare() : call.startScreenShare()));
  $('hangup-button').addEventListener('click', () => call.hangUp());
  $('retry-button').addEventListener('click', () => location.reload());
  $('media-retry-button').addEventListener('click', () => call.retryMedia());
  $('admit-list').addEventListener('click', (event) => {
    const peer = event.target.closest('button[data-peer]')?.dataset.peer;
    if (!peer) return;
    call.admit(peer); // its button goes; keyboard focus moves on to the next one waiting
    $('admit-list').querySelector('button')?.focus();
  });
  playButton.addEventListener('click', () => {
    playButton.hidden = true;
    for (const tile of tiles.values()) playRemote(tile.video);
  });
  $('note-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const sent = call.sendNote($('note-input').value);
    if (!sent) return;
    $('note-input').value = '';
    $('note-status').textContent = texts.call.noteSent(sent);
  });
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (call.sendChat($('chat-input').value)) $('chat-input').value = '';
  });
  call.addEventListener('message', ({ detail }) => {
    if (detail.kind === 'note' && !call.peerPresent) {
      appendLine($('note-list'), detail.text);
      $('notes').hidden = false;
    } else {
      const who = detail.from === 'me' ? text('chat.me') : (detail.from ? peerName(call, detail.peer, detail.from) : text('chat.peer'));
      appendLine($('chat-log'), `${who}: ${detail.text}`);
    }
  });
  // Who came or went, said only while others remain: a one-to-one call has its status line for that.
  let showPresence = false;
  call.addEventListener('presence', ({ detail }) => {
    const who = definiteName(detail.peer, detail.role);
    $('presence').textContent = detail.change === 'joined' ? texts.call.joinedCall(who) : texts.call.leftCall(who);
    showPresence = detail.change === 'left' ? call.peerPresent : call.peers.size > 1;
  });
  // Closing the tab is leaving on purpose: record it as a hang-up, not a lost connection.
  window.addEventListener('pagehide', () => {
    if (call.wantJoin) call.hangUp();
  });

  const render = () => {
    const over = call.state === CallState.ended || call.state === CallState.error;
    const isWorker = call.role === 'worker';
    const inRoom = !over && ![CallState.idle, CallState.checking, CallState.ready, CallState.media].includes(call.state);
    status.textContent = statusText(call, errorText);
    status.classList.toggle('is-error', call.state === CallState.error);
    $('presence').hidden = over || !showPresence || !call.peerPresent;

    $('reconnect-banner').hidden = call.state !== CallState.reconnecting;
    const away = [...call.peers.values()].filter((p) => p.reconnecting);
    const peerBanner = $('peer-reconnecting');
    peerBanner.hidden = !(away.length && inRoom);
    if (away.length) {
      peerBanner.textContent = texts.call.peerReconnecting(joinNames(away.map((p) => definiteName(p.id, p.role))));
    }

    $('media-notice').hidden = !call.mediaNotice || over;
    if (call.mediaNotice) $('call-notice').textContent = text(`errors.${call.mediaNotice}`);
    // Denied permission is fixed in the browser's settings: say where on this device, then retry.
    const denied = call.media.permissionDenied;
    $('allow-how').hidden = !denied;
    $('media-retry-button').hidden = !denied;
    if (denied) $('allow-how').textContent = text(`errors.allowHow.${deviceKind()}`);

    renderQuality($, call, inRoom && call.peerPresent);

    $('waiting-room').hidden = call.state !== CallState.waitingRoom;
    const asGuest = call.role === 'guest';
    $('waiting-room-title').textContent = text(asGuest ? 'call.waitingRoomTitleGuest' : 'call.waitingRoomTitle');
    $('waiting-room-text').textContent = text(asGuest ? 'call.waitingRoomTextGuest' : 'call.waitingRoomText');
    $('admit-panel').hidden = !(isWorker && call.peerWaiting && inRoom);
    renderAdmitList($('admit-list'), call, admitButtons);
    // The note goes to the citizen only.
    $('note-form').hidden = ![...call.waitingPeers.values()].includes('citizen');
    // Notes are for the waiting room; in the call the stage needs the room (chat takes over).
    if (over || call.peerPresent) $('notes').hidden = true;

    $('call-stage').hidden = over || call.state === CallState.waitingRoom;
    $('call-controls').hidden = over;
    $('chat').hidden = !(call.peerPresent && inRoom);
    $('ended-panel').hidden = call.state !== CallState.ended;
    $('ended-by-worker').hidden = call.endedBy !== 'worker';
    $('retry-button').hidden = !(call.state === CallState.error && RETRYABLE.has(call.error));

    renderTiles($('remote-tiles'), call, tiles, playRemote);
    if (!tiles.size) playButton.hidden = true;

    const showLocal = call.sendsVideo();
    if (localVideo.srcObject !== call.localStream) localVideo.srcObject = call.localStream;
    localVideo.hidden = !showLocal || call.sharingScreen;

    toggleButton($('mute-button'), call.hasMicrophone, call.muted, 'controls.muteOff', 'controls.muteOn');
    toggleButton($('camera-button'), call.hasCamera && !call.audioOnly, call.cameraOff, 'controls.cameraOff', 'controls.cameraOn');
    toggleButton($('audio-only-button'), call.hasCamera, call.audioOnly, 'controls.showFace', 'controls.audioOnly');
    toggleButton($('screen-button'), call.canShareScreen && call.peerPresent, call.sharingScreen,
      'controls.stopShare', 'controls.share');
  };
  call.addEventListener('change', render);
  render();
  // The buttons stick to the bottom of the window (app.css): scrolling to a field or button, by
  // keyboard focus or otherwise, must stop above them, not leave it hidden underneath.
  const controls = $('call-controls');
  new ResizeObserver(() => {
    document.documentElement.style.scrollPaddingBottom = `${controls.offsetHeight}px`;
  }).observe(controls);
}

/** Where this device keeps a site's camera and microphone permission. */
function deviceKind() {
  const agent = navigator.userAgent;
  if (/iPhone|iPad|iPod/.test(agent) || (/Macintosh/.test(agent) && navigator.maxTouchPoints > 1)) return 'ios';
  return /Android/.test(agent) ? 'android' : 'desktop';
}

function toggleButton(button, shown, on, onKey, offKey) {
  button.hidden = !shown;
  button.textContent = text(on ? onKey : offKey);
  button.setAttribute('aria-pressed', on ? 'true' : 'false');
  button.classList.toggle('is-off', on);
}

function renderQuality($, call, inCall) {
  const box = $('quality');
  const parts = [call.quality?.receiving, call.quality?.sending].filter((q) => q && q.class in QUALITY_RANK);
  if (!inCall || parts.length === 0) {
    box.hidden = true;
    return;
  }
  const worst = parts.reduce((a, b) => (QUALITY_RANK[b.class] < QUALITY_RANK[a.class] ? b : a));
  const hint = call.quality.sending?.hint ?? call.quality.receiving?.hint ?? null;
  box.hidden = false;
  box.dataset.quality = worst.class;
  $('quality-icon').textContent = QUALITY_ICON[worst.class];
  $('quality-text').textContent = text(`quality.${worst.class}`);
  $('quality-hint').textContent = hint ? text(`quality.hints.${hint}`) : '';
}

function appendLine(list, line) {
  const item = document.createElement('li');
  item.textContent = line; // never innerHTML: the text comes from the other person
  list.append(item);
  while (list.children.length > 200) list.firstElementChild.remove();
}

function statusText(call, errorText) {
  if (call.state === CallState.error) return errorText(call.error);
  if (call.state === CallState.peerLeft && call.peerLeftReason === 'connection_lost') return text('status.peerLost');
  if (call.state === CallState.peerLeft && call.groupLeftBy) {
    return texts.status.groupPaused(peerName(call, call.groupLeftBy.peer, call.groupLeftBy.role, { definite: true }));
  }
  if (call.role === 'worker' && call.peerWaiting && call.state === CallState.waiting) {
    const names = [...call.waitingPeers].map(([id, role]) => peerName(call, id, role, { definite: true }));
    return texts.status.someoneWaiting(joinNames(names));
  }
  if (call.state === CallState.waiting && call.role === 'guest') return text('status.waitingForOthers');
  if (call.state === CallState.negotiating && call.peers.size > 1) return text('status.negotiatingMany');
  return text(STATUS_TEXT[call.state] ?? 'status.idle');
}

/** The hook the browser tests read: the connections (the first as `pc`) and a state string. */
export function exposeTestHook(getCall) {
  const peers = () => [...(getCall()?.peers.values() ?? [])];
  window.samtalerum = {
    get pc() { return peers()[0]?.pc ?? null; },
    get pcs() { return peers().map((p) => p.pc); },
    get peers() { return peers().map((p) => ({ peer: p.id, role: p.role, initiator: p.initiator, connectionState: p.pc.connectionState })); },
    get peerId() { return getCall()?.peerId ?? null; },
    get state() { return getCall()?.state ?? CallState.idle; },
    get error() { return getCall()?.error ?? null; },
    get role() { return getCall()?.role ?? null; },
    get sessionId() { return getCall()?.sessionId ?? null; },
    get rttMs() { return getCall()?.rttMs ?? null; },
    get peerWaiting() { return getCall()?.peerWaiting ?? false; },
    get waitingPeers() { return [...(getCall()?.waitingPeers.keys() ?? [])]; },
    get peerReconnecting() { return getCall()?.peerReconnecting ?? false; },
    get resumes() { return getCall()?.resumes ?? 0; },
    get iceRestarts() { return getCall()?.iceRestarts ?? 0; },
    get quality() { return getCall()?.quality ?? null; },
    get call() { return getCall() ?? null; },
  };
}
