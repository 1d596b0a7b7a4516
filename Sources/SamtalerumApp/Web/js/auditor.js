// The auditor's page: a bearer token (sessionStorage only), a look-up form with a required
// purpose, a results table, CSV and Art. 15 downloads. The server logs every request itself.

import { byId, showView } from './dom.js';
import { endSession, identityProviderConfigured, mountIdentityProviderButton, sessionIdentity, takeSignInError } from './staff-session.js';

const TOKEN_KEY = 'samtalerum.token';

const token = () => sessionStorage.getItem(TOKEN_KEY);
// Signed in through the identity provider: the session cookie authorises, no token in the page.
let viaSession = false;

// This page is Danish only (see its markup), so its sign-in texts are here rather than in i18n.
const SIGN_IN_ERRORS = {
  denied: 'Du har ikke adgang til denne side. Kontakt din IT-afdeling, hvis du skal have adgang.',
  expired: 'Login tog for lang tid eller blev afbrudt. Prøv igen.',
  unavailable: 'Kommunens login svarer ikke lige nu. Prøv igen om lidt.',
};

function authorised(extra = {}) {
  return { headers: { ...(token() ? { Authorization: `Bearer ${token()}` } : {}), ...extra }, cache: 'no-store' };
}

async function problemText(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || `Fejl ${response.status}`;
  } catch {
    return `Fejl ${response.status}`;
  }
}

function showError(id, message) {
  const node = byId(id);
  node.textContent = message;
  node.hidden = !message;
}

/** Builds the query string from the form; dates are whole days in the auditor's time zone. */
function criteria() {
  const params = new URLSearchParams();
  const value = (id) => byId(id).value.trim();
  const day = (id) => (value(id) ? new Date(`${value(id)}T00:00:00`).toISOString() : '');
  for (const [key, text] of [['purpose', value('purpose')], ['subject', value('subject')], ['worker', value('worker')],
    ['from', day('from')], ['to', day('to')]]) {
    if (text) params.set(key, text);
  }
  return params;
}

function query(params) {
  // encodeURIComponent rather than URLSearchParams.toString(): the server reads %20, not '+'.
  return [...params].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function purposeGiven() {
  if (byId('purpose').value.trim()) return true;
  showError('query-error', 'Skriv formålet med søgningen.');
  byId('purpose').focus();
  return false;
}

function render(sessions) {
  const body = byId('results-body');
  body.replaceChildren();
  const format = (iso) => (iso ? new Date(iso).toLocaleString('da-DK') : '–');
  for (const s of sessions) {
    const row = document.createElement('tr');
    for (const cell of [s.meeting, s.session, format(s.startedAt), format(s.endedAt), s.durationSeconds ?? '–',
      s.endReason ?? '–', s.workerRef ?? '–', s.citizenRef ?? '–', (s.guestRefs ?? []).join(', ') || '–']) {
      const td = document.createElement('td');
      td.textContent = String(cell);
      row.append(td);
    }
    body.append(row);
  }
  byId('results').hidden = sessions.length === 0;
  byId('results-wrap').hidden = sessions.length === 0;
  byId('results-status').textContent = sessions.length === 0 ? 'Ingen samtaler fundet.' : `${sessions.length} samtaler.`;
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function fetchOrExplain(path, init) {
  const response = await fetch(path, init);
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    start();
    return null;
  }
  if (!response.ok) {
    showError('query-error', await problemText(response));
    return null;
  }
  showError('query-error', '');
  return response;
}

async function search(event) {
  event.preventDefault();
  if (!purposeGiven()) return;
  await showPage(criteria());
}

/** Answers come in pages (the server's `limit`); each further page is a logged look-up of its own. */
let nextPage = null;

function nextPageButton() {
  let button = document.getElementById('next-page');
  if (!button) {
    button = document.createElement('button');
    button.type = 'button';
    button.id = 'next-page';
    button.textContent = 'Næste side';
    button.addEventListener('click', () => { if (nextPage) showPage(nextPage); });
    byId('results-wrap').after(button);
  }
  return button;
}

async function showPage(params) {
  byId('results-status').textContent = 'Søger …';
  const response = await fetchOrExplain(`/api/audit/sessions?${query(params)}`, authorised({ Accept: 'application/json' }));
  if (!response) { byId('results-status').textContent = ''; return; }
  const answer = await response.json();
  render(answer.sessions);
  nextPage = null;
  if (answer.next) {
    nextPage = new URLSearchParams(params);
    nextPage.set('after', answer.next);
    byId('results-status').textContent += ' Der er flere: "Næste side" henter dem (og logges som en ny søgning).';
  }
  nextPageButton().hidden = !nextPage;
}

async function csv() {
  if (!purposeGiven()) return;
  const params = criteria();
  params.set('format', 'csv');
  const response = await fetchOrExplain(`/api/audit/sessions?${query(params)}`, authorised({ Accept: 'text/csv' }));
  if (response) download(await response.blob(), 'samtalerum-samtaler.csv');
}

async function exportSubject() {
  if (!purposeGiven()) return;
  const subject = byId('subject').value.trim();
  if (!subject) {
    showError('query-error', 'Skriv borgerens reference for at lave et indsigtsudtræk.');
    byId('subject').focus();
    return;
  }
  const path = `/api/audit/subjects/${encodeURIComponent(subject)}/export?purpose=${encodeURIComponent(byId('purpose').value.trim())}`;
  const response = await fetchOrExplain(path, authorised({ Accept: 'application/json' }));
  if (response) download(await response.blob(), 'samtalerum-indsigt.json');
}

async function signIn(event) {
  event.preventDefault();
  const value = byId('token-input').value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  byId('token-input').value = '';
  await start();
}

/** Only an auditor token opens the page; the server enforces the same on every request. */
async function start() {
  let me;
  if (token()) {
    const response = await fetch('/api/whoami', authorised());
    me = response.ok ? await response.json() : null;
  } else {
    const signInError = takeSignInError();
    if (await identityProviderConfigured()) {
      mountIdentityProviderButton(byId('signin-view'), { next: '/auditor', label: 'Log ind med kommunens login' });
    }
    me = await sessionIdentity();
    viaSession = me?.role === 'auditor';
    if (!me) {
      if (signInError) showError('signin-error', SIGN_IN_ERRORS[signInError] ?? SIGN_IN_ERRORS.denied);
      showView('signin-view');
      return;
    }
  }
  if (!me || me.role !== 'auditor') {
    sessionStorage.removeItem(TOKEN_KEY);
    showError('signin-error', me ? 'Denne side er kun for revisorer.' : 'Adgangsnøglen blev ikke godkendt.');
    showView('signin-view');
    return;
  }
  byId('signed-in-as').textContent = me.subject;
  byId('signed-in-as').hidden = false;
  byId('sign-out-button').hidden = false;
  showView('query-view');
}

byId('signin-form').addEventListener('submit', signIn);
byId('query-form').addEventListener('submit', search);
byId('csv-button').addEventListener('click', csv);
byId('export-button').addEventListener('click', exportSubject);
byId('sign-out-button').addEventListener('click', () => {
  if (viaSession) {
    endSession('/auditor');
    return;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  byId('signed-in-as').hidden = true;
  byId('sign-out-button').hidden = true;
  showView('signin-view');
});
start();
