// The worker's page: sign in with a bearer token (kept in sessionStorage only, so it is gone
// when the tab closes), create a meeting, hand the citizen the invite link, invite up to two
// guests, join the call and let the others in from the waiting room.
// Opened from a meeting's workerJoinUrl (`/worker#meeting=ID`) it goes straight to the call.

import { Call } from './call.js';
import { peerName } from './call-participants.js';
import { exposeTestHook, mountCallView } from './call-view.js';
import { applyTexts, byId, formatDateTime, fragmentParams, showView, text, texts } from './dom.js';
import { MeetingList } from './meetings.js';
import {
  endSession, identityProviderConfigured, mountIdentityProviderButton, sessionIdentity, signallingTicket, takeSignInError,
} from './staff-session.js';

const TOKEN_KEY = 'samtalerum.token';

let call = null;
let subject = null;
let currentInvite = null;
let meetingId = null;     // the meeting guests are invited to
let pageTitle = '';
// Signed in through the identity provider: the server's HttpOnly cookie, no token in the page.
let viaSession = false;
let meetings = null;

function errorText(code) {
  switch (code) {
    case 'token-invalid':
    case 'token-expired': return text('errors.signInAgain');
    case 'not-invited':
    case 'meeting-not-found': return text('errors.notYourMeeting');
    case 'meeting-ended': return text('worker.meetingExpired');
    case 'room-full':
    case 'replaced': return text('errors.roomFull');
    case 'role-not-allowed': return text('errors.roleNotAllowed');
    case 'connection-lost':
    case 'closed': return text('errors.connectionLost');
    default: return text('errors.server');
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

/** The worker's credentials: the pasted token (development), or else the session cookie. */
function authFetch(path, init = {}) {
  const headers = new Headers(init.headers);
  if (token()) headers.set('Authorization', `Bearer ${token()}`);
  if (init.body) headers.set('Content-Type', 'application/json');
  return fetch(path, { ...init, headers, cache: 'no-store' });
}

async function api(path, init = {}) {
  const response = await authFetch(path, init);
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
  meetings?.stop();
  if (viaSession) {
    endSession('/worker');
    return;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '';
  location.reload();
}

function showSignIn(message) {
  meetings?.stop();
  viaSession = false;
  byId('signed-in-as').hidden = true;
  byId('sign-out-button').hidden = true;
  byId('guest-card').hidden = true;
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
  meetings = new MeetingList({
    fetch: authFetch,
    onJoin: (id, caseRef) => {
      askNotificationPermission();
      startCall(id, caseRef);
    },
    onShowLink: (link, note) => showInvite(link, note),
    onUnauthorized: () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(text('errors.signInAgain'));
    },
    onChange: () => {
      // A call opened from its link (or a reload) learns its case reference from the list.
      if (call && call.meetingId) {
        const caseRef = meetings.caseRefOf(call.meetingId);
        if (caseRef) byId('meeting-title').textContent = caseRef;
      }
    },
  });
  meetings.start();
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
  const startsAtValue = byId('starts-at').value;
  const startsAt = startsAtValue ? new Date(startsAtValue) : null;
  const button = byId('create-meeting');
  button.disabled = true;
  button.textContent = text('worker.creating');
  showError('create-error', null);
  let result;
  try {
    const body = { citizenRef, ...(startsAt && !Number.isNaN(startsAt.getTime()) ? { startsAt: startsAt.toISOString() } : {}) };
    result = await api('/api/meetings', { method: 'POST', body: JSON.stringify(body) });
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
  byId('citizen-ref').value = '';
  byId('starts-at').value = '';
  showInvite(result.body);
  meetings?.refresh();
}

function expiryText(inviteExpiresAt) {
  const expires = new Date(inviteExpiresAt);
  return Number.isNaN(expires.getTime()) ? '' : texts.worker.expires(formatDateTime(expires));
}

function showInvite(meeting, note = null) {
  currentInvite = meeting;
  byId('invite-note').textContent = note ?? '';
  byId('invite-note').hidden = !note;
  byId('invite-link').value = meeting.citizenInviteUrl;
  byId('copy-status').textContent = '';
  byId('invite-expires').textContent = expiryText(meeting.inviteExpiresAt);
  byId('invite-card').hidden = false;
  useMeeting(meeting.meetingId);
  byId('invite-link').focus();
  byId('invite-link').select();
}

/** Guests are invited to this meeting from now on; a new meeting starts with none. */
function useMeeting(id) {
  if (id !== meetingId) byId('guest-invites').replaceChildren();
  meetingId = id;
  showError('guest-error', null);
  byId('guest-card').hidden = false;
}

/** Server problem types (problem+json `type`, or the status alone) in the worker's words. */
function guestErrorText(result) {
  // Said here, not by leaving for the sign-in page: the worker may be in the call.
  if (result.status === 401) return text('errors.signInAgain');
  const byStatus = { 400: 'invalid-request', 403: 'not-your-meeting', 404: 'meeting-not-found', 409: 'too-many-guests' };
  const code = String(result.body?.type ?? '').split('/').pop();
  return texts.worker.guestErrors[code] ?? texts.worker.guestErrors[byStatus[result.status]] ?? texts.worker.guestErrors.failed;
}

async function onInviteGuest(event) {
  event.preventDefault();
  const guestRef = byId('guest-ref').value.trim();
  if (!guestRef) {
    showError('guest-error', texts.worker.guestErrors['invalid-request']);
    byId('guest-ref').focus();
    return;
  }
  const button = byId('invite-guest');
  button.disabled = true;
  showError('guest-error', null);
  let result;
  try {
    result = await api(`/api/meetings/${encodeURIComponent(meetingId)}/guests`, { method: 'POST', body: JSON.stringify({ guestRef }) });
  } catch {
    result = { ok: false, status: 0, body: null };
  }
  button.disabled = false;
  if (!result.ok || !result.body?.guestInviteUrl) {
    console.warn('samtalerum: guest invite failed', result.status, result.body);
    showError('guest-error', guestErrorText(result));
    return;
  }
  byId('guest-ref').value = '';
  showGuestInvite(result.body, guestRef);
}

function showGuestInvite(invite, guestRef) {
  const key = invite.peer;
  const item = document.createElement('li');
  item.className = 'guest-invite';
  item.dataset.peer = key;
  const label = document.createElement('label');
  label.htmlFor = `guest-link-${key}`;
  label.id = `guest-link-label-${key}`;
  label.textContent = texts.worker.guestLinkLabel(guestRef);
  const help = document.createElement('p');
  help.className = 'hint';
  help.id = `guest-link-help-${key}`;
  help.textContent = `${text('worker.guestLinkHelp')} ${expiryText(invite.inviteExpiresAt)}`;
  const field = document.createElement('textarea');
  field.id = `guest-link-${key}`;
  field.className = 'invite-link';
  field.rows = 5;
  field.readOnly = true;
  field.spellcheck = false;
  field.value = invite.guestInviteUrl;
  field.setAttribute('aria-describedby', help.id);
  const row = document.createElement('div');
  row.className = 'row';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'button';
  copy.id = `guest-copy-${key}`;
  copy.textContent = text('worker.copy');
  copy.setAttribute('aria-describedby', label.id); // which of the links, for a screen reader
  const status = document.createElement('span');
  status.className = 'hint';
  status.setAttribute('role', 'status');
  status.setAttribute('aria-live', 'polite');
  copy.addEventListener('click', () => copyLink(field, status));
  row.append(copy, status);
  item.append(label, help, field, row);
  byId('guest-invites').append(item);
  field.focus();
  field.select();
}

async function copyLink(field, status) {
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = text('worker.copied');
  } catch {
    field.focus();
    field.select();
    status.textContent = document.execCommand('copy') ? text('worker.copied') : text('worker.copyFailed');
  }
}

function startCall(id, caseRef = meetings?.caseRefOf(id)) {
  // Keeps the meeting in the address so a reload rejoins the same call.
  history.replaceState(null, '', `#meeting=${encodeURIComponent(id)}`);
  call = new Call({ token: viaSession ? signallingTicket : token(), meetingId: id });
  useMeeting(id);
  // The case reference is what the worker knows the meeting by; the id only until the list loads.
  byId('meeting-title').textContent = caseRef ?? texts.worker.meetingLabel(id);
  byId('back-button').hidden = true;
  // Switching language reloads the page, which would end the call.
  byId('language-switch').hidden = true;
  showView('call-view');
  mountCallView(byId('call-container'), call, errorText);
  call.addEventListener('change', () => {
    const over = call.state === 'ended' || call.state === 'error';
    byId('back-button').hidden = !over;
    byId('guest-card').hidden = over;
    if (call.state === 'error' && (call.error === 'token-invalid' || call.error === 'token-expired')) {
      sessionStorage.removeItem(TOKEN_KEY);
    }
    showWaitingInTitle();
  });
  call.addEventListener('peer-waiting', ({ detail }) => notifyWaiting(detail));
  call.join();
}

/** The worker may be in another tab or window while someone waits: the tab's title says so. */
function showWaitingInTitle() {
  const [first] = call?.waitingPeers ?? [];
  if (!first) {
    document.title = pageTitle;
    return;
  }
  const who = peerName(call, first[0], first[1], { definite: true });
  document.title = `(${call.waitingPeers.size}) ${texts.call.someoneWaiting(who)} – ${text('appName')}`;
}

function notifyWaiting({ peer, role }) {
  if (!('Notification' in window) || Notification.permission !== 'granted' || document.hasFocus()) return;
  const who = peerName(call, peer, role, { definite: true });
  const notification = new Notification(texts.call.someoneWaiting(who), { body: texts.call.notifyBody(who), tag: `samtalerum-waiting-${peer}` });
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
  if (!token() && !viaSession) {
    showSignIn(text('errors.signInAgain'));
    return;
  }
  meetings?.refresh();
  byId('invite-card').hidden = !currentInvite;
  if (currentInvite) useMeeting(currentInvite.meetingId);
  else byId('guest-card').hidden = true;
  document.title = pageTitle;
  showView('home-view');
}

async function start() {
  applyTexts();
  pageTitle = `${text('appName')} – ${text('worker.title')}`;
  document.title = pageTitle;
  exposeTestHook(() => call);
  byId('signin-form').addEventListener('submit', onSignIn);
  byId('create-form').addEventListener('submit', onCreate);
  byId('guest-form').addEventListener('submit', onInviteGuest);
  byId('copy-button').addEventListener('click', () => copyLink(byId('invite-link'), byId('copy-status')));
  byId('join-meeting-button').addEventListener('click', () => {
    askNotificationPermission();
    if (currentInvite) startCall(currentInvite.meetingId);
  });
  byId('sign-out-button').addEventListener('click', signOut);
  byId('back-button').addEventListener('click', goHome);

  const signInError = takeSignInError();
  if (await identityProviderConfigured()) {
    mountIdentityProviderButton(byId('signin-view'), { next: '/worker', label: text('signIn.withIdP') });
  }
  if (!token()) {
    const me = await sessionIdentity();
    if (me?.role === 'worker') {
      viaSession = true;
      subject = me.subject ?? '';
      signedIn();
    } else {
      showSignIn(me ? text('worker.notWorker') : signInError && (texts.signIn.errors[signInError] ?? text('signIn.errors.denied')));
    }
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
