// The ops page: live health of the server and of every session, from the server's event
// stream (fetch with a body reader: EventSource cannot send the bearer token). Falls back to
// polling when the stream does not work. Shows meeting ids and roles only — no names, no
// references, no addresses (the server sends none).

import { applyTexts, byId, showView, text, texts } from './dom.js';
import { endSession, identityProviderConfigured, mountIdentityProviderButton, sessionIdentity, takeSignInError } from './staff-session.js';

const TOKEN_KEY = 'samtalerum.opsToken';
const POLL_MS = 2000;
const STREAM_RETRY_MS = 2000;
const STALE_MS = 7000;
const QUALITY_ICON = { excellent: '▮▮▮▮', good: '▮▮▮▯', poor: '▮▯▯▯', lost: '✕' };

let stopped = false;
let lastSnapshotAt = 0;
const hook = { snapshots: 0, mode: null, last: null };
window.samtalerumOps = hook;

function token() { return sessionStorage.getItem(TOKEN_KEY); }
// Signed in through the identity provider: the session cookie authorises, no token in the page.
let viaSession = false;

class Unauthorized extends Error {}

async function authorizedFetch(path, init = {}) {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const response = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (response.status === 401 || response.status === 403) throw new Unauthorized(String(response.status));
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response;
}

/** Reads `data: {json}` events until the stream ends; resolves when it ends. */
async function readStream() {
  const response = await authorizedFetch('/api/ops/stream');
  if (!response.body) throw new Error('no stream body');
  hook.mode = 'stream';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  while (!stopped) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) render(JSON.parse(data));
    }
  }
  reader.cancel().catch(() => {});
}

async function poll() {
  hook.mode = 'poll';
  while (!stopped) {
    const response = await authorizedFetch('/api/ops/sessions');
    render(await response.json());
    await sleep(POLL_MS);
  }
}

/** The stream first; after two failures in a row, polling (e.g. a proxy that buffers). */
async function run() {
  let failures = 0;
  while (!stopped) {
    try {
      if (failures >= 2) await poll();
      else await readStream();
      failures = 0; // a stream that ended normally (its lifetime is bounded): open the next
    } catch (err) {
      if (err instanceof Unauthorized) {
        signOut(text('ops.tokenRejected'));
        return;
      }
      failures += 1;
      console.warn('samtalerum: ops feed interrupted', err);
      await sleep(STREAM_RETRY_MS);
    }
  }
}

function render(snapshot) {
  hook.snapshots += 1;
  hook.last = snapshot;
  lastSnapshotAt = Date.now();
  const server = snapshot.server ?? {};
  const memory = Number.isFinite(server.residentMemoryBytes) ? `${Math.round(server.residentMemoryBytes / 1048576)} MB` : '–';
  byId('health').textContent = texts.ops.health({
    connections: server.connections ?? 0, rooms: server.rooms ?? 0, allocations: server.allocations ?? 0, memory,
    at: new Date(snapshot.generatedAt ?? Date.now()).toLocaleTimeString(document.documentElement.lang),
  });
  byId('feed-status').textContent = text(hook.mode === 'poll' ? 'ops.polling' : 'ops.live');

  const sessions = Array.isArray(snapshot.sessions) ? snapshot.sessions : [];
  const body = byId('sessions-body');
  body.replaceChildren(...sessions.map(sessionRow));
  byId('no-sessions').hidden = sessions.length > 0;
}

function sessionRow(session) {
  const row = document.createElement('tr');
  row.dataset.meeting = session.meetingId;
  row.dataset.state = session.state;
  const header = cell('th', session.meetingId);
  header.scope = 'row';
  header.classList.add('mono');
  row.append(
    header,
    cell('td', text(`ops.state.${session.state}`) || session.state),
    cell('td', formatDuration(session.durationSeconds ?? 0)),
    cell('td', String(session.interruptions ?? 0)),
    participantCell(session, 'worker'),
    participantCell(session, 'citizen'),
    guestsCell(session),
  );
  return row;
}

function participantCell(session, role) {
  const td = document.createElement('td');
  td.dataset.role = role;
  const p = (session.participants ?? []).find((x) => x.role === role);
  if (!p) {
    td.textContent = text('ops.absent');
    return td;
  }
  if (p.quality?.class) td.dataset.quality = p.quality.class;
  appendLines(td, participantLines(p));
  return td;
}

/** Guests (up to two) share one column, each under its place in the room. */
function guestsCell(session) {
  const td = document.createElement('td');
  td.dataset.role = 'guest';
  const guests = (session.participants ?? []).filter((x) => x.role === 'guest');
  if (!guests.length) {
    td.textContent = '–';
    return td;
  }
  for (const guest of guests) appendLines(td, [guest.peer ?? 'guest', ...participantLines(guest)]);
  return td;
}

function participantLines(p) {
  const lines = [];
  lines.push(p.waiting ? text('ops.waiting') : p.present ? text('ops.present') : text('ops.away'));
  if (p.quality?.class) {
    lines.push(`${QUALITY_ICON[p.quality.class] ?? ''} ${text(`quality.${p.quality.class}`) || p.quality.class} (MOS ${p.quality.mos?.toFixed?.(1) ?? '–'})`);
  }
  const figures = [];
  if (Number.isFinite(p.rttMs)) figures.push(`RTT ${Math.round(p.rttMs)} ms`);
  if (Number.isFinite(p.packetLossIn)) figures.push(`${text('ops.loss')} ${(p.packetLossIn * 100).toFixed(1)} %`);
  if (figures.length) lines.push(figures.join(' · '));
  if (p.relayed === true) {
    const bytes = (p.relayBytesIn ?? 0) + (p.relayBytesOut ?? 0);
    lines.push(`${text('ops.relayed')}${p.relayProtocol ? ` (${p.relayProtocol.toUpperCase()})` : ''}${bytes ? ` · ${formatBytes(bytes)}` : ''}`);
  } else if (p.relayed === false) {
    lines.push(text('ops.direct'));
  }
  // Which relay of turn.relays this participant was handed (absent on a single node).
  if (p.relay) lines.push(`${text('ops.relayGiven')}: ${p.relay}`);
  return lines;
}

function appendLines(td, lines) {
  for (const line of lines) {
    const div = document.createElement('div');
    div.textContent = line;
    td.append(div);
  }
}

function cell(tag, value) {
  const node = document.createElement(tag);
  node.textContent = value;
  return node;
}

function formatDuration(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}

function formatBytes(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1)} MB`;
  return `${Math.round(bytes / 1024)} kB`;
}

function sleep(ms) { return new Promise((resolve) => { setTimeout(resolve, ms); }); }

function signOut(message) {
  stopped = true;
  sessionStorage.removeItem(TOKEN_KEY);
  byId('sign-out-button').hidden = true;
  const error = byId('signin-error');
  error.textContent = message ?? '';
  error.hidden = !message;
  showView('signin-view');
}

function startLive() {
  stopped = false;
  byId('sign-out-button').hidden = false;
  showView('live-view');
  byId('health').textContent = text('ops.loading');
  run();
}

async function start() {
  applyTexts();
  document.title = `${text('appName')} – ${text('ops.title')}`;
  byId('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = byId('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    byId('token-input').value = '';
    startLive();
  });
  byId('sign-out-button').addEventListener('click', () => {
    if (viaSession) endSession('/ops');
    else signOut(null);
  });
  // Says so when the figures stop updating, instead of showing old numbers as if live.
  setInterval(() => {
    if (!stopped && lastSnapshotAt && Date.now() - lastSnapshotAt > STALE_MS) {
      byId('feed-status').textContent = text('ops.stale');
    }
  }, 1000);
  if (token()) {
    startLive();
    return;
  }
  const signInError = takeSignInError();
  if (await identityProviderConfigured()) {
    mountIdentityProviderButton(byId('signin-view'), { next: '/ops', label: text('signIn.withIdP') });
  }
  const me = await sessionIdentity();
  if (me?.role === 'ops') {
    viaSession = true;
    startLive();
  } else if (me || signInError) {
    signOut(me ? text('ops.tokenRejected') : (texts.signIn.errors[signInError] ?? text('signIn.errors.denied')));
  } else {
    showView('signin-view');
  }
}

start();
