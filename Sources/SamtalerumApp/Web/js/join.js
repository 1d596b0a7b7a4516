// The citizen's and the guests' page: opened from the invite link (`/join#invite=TOKEN`). The
// invite is checked with the server as soon as the page opens, so a bad link is explained
// before anyone has to do anything; then one button joins the call. The invite says whether
// it is the citizen's or a guest's (`welcome.role`); both go the same way.

import { Call } from './call.js';
import { exposeTestHook, mountCallView } from './call-view.js';
import { applyTexts, byId, fragmentParams, showView, text } from './dom.js';
import { inviteStatus, showMeetingTime } from './meeting-time.js';
import { runPrecheck } from './precheck.js';

const INVITE_PROBLEMS = new Set(['token-invalid', 'not-invited', 'meeting-not-found', 'unsupported-version']);

function errorText(code) {
  if (INVITE_PROBLEMS.has(code)) return text('errors.inviteInvalid');
  if (code === 'meeting-ended' || code === 'token-expired') return text('errors.meetingEnded');
  if (code === 'room-full' || code === 'replaced') return text('errors.roomFull');
  if (code === 'meeting-cancelled') return text('join.cancelled');
  if (code === 'invite-revoked') return text('join.revoked');
  if (code === 'connection-lost' || code === 'closed') return text('errors.connectionLost');
  return text('errors.server');
}

function showInvalid(message) {
  byId('invite-error').textContent = message;
  showView('invalid-view');
}

function start() {
  applyTexts();
  document.title = text('appName');
  const invite = fragmentParams().get('invite');
  let call = null;
  exposeTestHook(() => call);
  // Another link opened in this tab (the right one after a broken one) is a new start; never
  // in the middle of a call.
  window.addEventListener('hashchange', () => {
    if (!call?.wantJoin) location.reload();
  });
  if (!invite) {
    showInvalid(text('join.missing'));
    return;
  }

  call = new Call({ token: invite });
  const joinButton = byId('join-button');
  const welcomeStatus = byId('welcome-status');
  showView('welcome-view');
  welcomeStatus.textContent = text('status.checking');

  let joined = false;
  // A planned meeting says when it is, and opens a few minutes before; a cancelled meeting or a
  // replaced link is explained before anyone presses anything.
  inviteStatus(invite).then((status) => {
    if (joined) return;
    if (status?.refused) showInvalid(errorText(status.refused));
    else showMeetingTime(status, byId('meeting-time'), joinButton);
  });
  call.connect().then(
    (welcome) => {
      welcomeStatus.textContent = '';
      if (welcome.role === 'guest') byId('welcome-intro').textContent = text('join.guestIntro');
    },
    (err) => {
      // After the citizen pressed Deltag, the call screen shows the error itself.
      if (!joined) showInvalid(errorText(err.code));
    },
  );

  const audioOnly = byId('audio-only-check');
  audioOnly.addEventListener('change', () => call.setAudioOnly(audioOnly.checked));

  // The check is optional and opens on request; its camera stream is reused for the call.
  let checkStream = null;
  let checking = null;
  byId('check-details').addEventListener('toggle', (event) => {
    if (!event.target.open || checking) return;
    checking = runPrecheck(byId('check-container'), { audioOnly: audioOnly.checked }).then((outcome) => {
      checkStream = outcome.stream;
      window.samtalerumCheck = { done: true, ok: outcome.ok, results: outcome.results };
    });
  });

  joinButton.addEventListener('click', async () => {
    joined = true;
    joinButton.disabled = true;
    if (checking) await checking;
    call.adoptLocalStream(checkStream);
    call.setAudioOnly(audioOnly.checked);
    byId('language-switch').hidden = true; // switching reloads the page, which would end the call
    showView('call-view');
    mountCallView(byId('call-container'), call, errorText);
    call.join();
  });
}

start();
