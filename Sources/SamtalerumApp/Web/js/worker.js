// The worker's page: sign in with a bearer token (kept in sessionStorage only, so it is gone
// when the tab closes), create a meeting, hand the citizen the invite link, join the call.
// Opened from a meeting's workerJoinUrl (`/worker#meeting=ID`) it goes straight to the call.

import { Call } from './call.js';
import { exposeTestHook, mountCallView } from './call-view.js';
import { applyTexts, byId, formatDateTime, fragmentParams, showView, text, texts } from './dom.js';

const TOKEN_KEY = 'samtalerum.token';

let call = null;
let subject = null;
let currentInvite = null;

function errorText(code) {
  switch (code) {
    case 'token-invalid':
    case 'token-expired': return text('errors.signInAgain');
    case 'not-invited':
    case 'meeting-not-found': return text('errors.notYourMeeting');
    case 'meeting-ended': return text('worker.meetingExpired');
    case 'room-full': return text('errors.roomFull');
    case 'role-not-allowed': return text('errors.roleNotAllowed');
    case 'connection-lost':
    case 'closed': return text('errors.connectionLost');
    default: return text('errors.server');
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${token()}`);
  if (init.body) headers.set('Content-Type', 'application/json');
  const response = await fetch(path, { ...init, headers, cache: 'no-store' });
  let body = null;
  try { body = await response.json(); } catch { /* empty or not JSON */ }
  return { status: response.status, ok: response.ok, body };
}

function showError(id, message) {
  const node = byId(id);
  node.textContent = message ?? '';
  node.hidden = !message;
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '';
  location.reload();
}

function showSignIn(message) {
  byId('signed-in-as').hidden = true;
  byId('sign-out-button').hidden = true;
  showError('signin-error', message);
  showView('signin-view');
}

/** Checks the stored token with the server; only a worker may use this page. */
async function verifyToken() {
  let result;
  try {
    result = await api('/api/whoami');
  } catch {
    return { ok: false, message: text('errors.server') };
  }
  if (result.status === 401) return { ok: false, message: text('worker.tokenRejected') };
  if (!result.ok) return { ok: false, message: text('errors.server') };
  if (result.body?.role !== 'worker') return { ok: false, message: text('worker.notWorker') };
  subject = result.body.subject ?? '';
  return { ok: true };
}

function signedIn() {
  const who = byId('signed-in-as');
  who.textContent = texts.worker.signedInAs(subject);
  who.hidden = false;
  byId('sign-out-button').hidden = false;
  const meetingId = fragmentParams().get('meeting');
  if (meetingId) startCall(meetingId);
  else showView('home-view');
}

async function onSignIn(event) {
  event.preventDefault();
  const value = byId('token-input').value.trim();
  if (!value) return;
  const button = byId('sign-in-button');
  button.disabled = true;
  sessionStorage.setItem(TOKEN_KEY, value);
  const verdict = await verifyToken();
  button.disabled = false;
  if (!verdict.ok) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(verdict.message);
    return;
  }
  byId('token-input').value = '';
  showError('signin-error', null);
  signedIn();
}

async function onCreate(event) {
  event.preventDefault();
  const citizenRef = byId('citizen-ref').value.trim();
  if (!citizenRef) {
    byId('citizen-ref').focus();
    return;
  }
  const button = byId('create-meeting');
  button.disabled = true;
  button.textContent = text('worker.creating');
  showError('create-error', null);
  let result;
  try {
    result = await api('/api/meetings', { method: 'POST', body: JSON.stringify({ citizenRef }) });
  } catch {
    result = { ok: false, status: 0, body: null };
  }
  button.disabled = false;
  button.textContent = text('worker.create');
  if (result.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(text('errors.signInAgain'));
    return;
  }
  if (!result.ok || !result.body?.meetingId || !result.body?.citizenInviteUrl) {
    // problem+json's `detail` is English developer text; show ours, keep theirs in the console.
    console.warn('samtalerum: create meeting failed', result.status, result.body);
    showError('create-error', text('worker.createFailed'));
    return;
  }
  showInvite(result.body);
}

function showInvite(meeting) {
  currentInvite = meeting;
  byId('invite-link').value = meeting.citizenInviteUrl;
  byId('copy-status').textContent = '';
  const expires = new Date(meeting.inviteExpiresAt);
  byId('invite-expires').textContent = Number.isNaN(expires.getTime()) ? '' : texts.worker.expires(formatDateTime(expires));
  byId('invite-card').hidden = false;
  byId('invite-link').focus();
  byId('invite-link').select();
}

async function onCopy() {
  const field = byId('invite-link');
  const status = byId('copy-status');
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = text('worker.copied');
  } catch {
    field.focus();
    field.select();
    status.textContent = document.execCommand('copy') ? text('worker.copied') : text('worker.copyFailed');
  }
}

function startCall(meetingId) {
  // Keeps the meeting in the address so a reload rejoins the same call.
  history.replaceState(null, '', `#meeting=${encodeURIComponent(meetingId)}`);
  call = new Call({ token: token(), meetingId });
  byId('meeting-title').textContent = texts.worker.meetingLabel(meetingId);
  byId('back-button').hidden = true;
  // Switching language reloads the page, which would end the call.
  byId('language-switch').hidden = true;
  showView('call-view');
  mountCallView(byId('call-container'), call, errorText);
  call.addEventListener('change', () => {
    byId('back-button').hidden = !(call.state === 'ended' || call.state === 'error');
    if (call.state === 'error' && (call.error === 'token-invalid' || call.error === 'token-expired')) {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  });
  call.addEventListener('peer-waiting', notifyCitizenWaiting);
  call.join();
}

/** The worker may be in another tab or window while the citizen waits. */
function notifyCitizenWaiting() {
  const title = document.title;
  document.title = `(1) ${text('call.notifyTitle')} – ${text('appName')}`;
  const restore = () => { document.title = title; };
  call?.addEventListener('change', function onChange() {
    if (!call?.peerWaiting) {
      restore();
      call?.removeEventListener('change', onChange);
    }
  });
  if (!('Notification' in window) || Notification.permission !== 'granted' || document.hasFocus()) return;
  const notification = new Notification(text('call.notifyTitle'), { body: text('call.notifyBody'), tag: 'samtalerum-waiting' });
  notification.addEventListener('click', () => {
    window.focus();
    notification.close();
  });
}

/** Asked on the worker's own click (browsers only allow it then), never on page load. */
function askNotificationPermission() {
  if ('Notification' in window && Notification.permission === 'default') {
    Notification.requestPermission().catch(() => {});
  }
}

function goHome() {
  call = null;
  byId('language-switch').hidden = false;
  history.replaceState(null, '', location.pathname);
  if (!token()) {
    showSignIn(text('errors.signInAgain'));
    return;
  }
  byId('invite-card').hidden = !currentInvite;
  showView('home-view');
}

async function start() {
  applyTexts();
  document.title = `${text('appName')} – ${text('worker.title')}`;
  exposeTestHook(() => call);
  byId('signin-form').addEventListener('submit', onSignIn);
  byId('create-form').addEventListener('submit', onCreate);
  byId('copy-button').addEventListener('click', onCopy);
  byId('join-meeting-button').addEventListener('click', () => {
    askNotificationPermission();
    if (currentInvite) startCall(currentInvite.meetingId);
  });
  byId('sign-out-button').addEventListener('click', signOut);
  byId('back-button').addEventListener('click', goHome);

  if (!token()) {
    showSignIn(null);
    return;
  }
  const verdict = await verifyToken();
  if (verdict.ok) signedIn();
  else {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(verdict.message);
  }
}

start();
