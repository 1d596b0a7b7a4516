// The in-call screen shared by the worker and citizen pages: status line, the two videos and
// three big buttons. It only reflects a Call's state; all protocol work stays in call.js.

import { CallState } from './call.js';
import { applyTexts, text } from './dom.js';

const MARKUP = `
  <p id="call-status" class="call-status" role="status" aria-live="polite"></p>
  <p id="call-notice" class="notice" hidden></p>
  <div class="stage" id="call-stage">
    <video id="remote-video" class="remote-video" autoplay playsinline data-t-label="video.remote"></video>
    <p id="remote-placeholder" class="remote-placeholder" data-t="video.remoteCameraOff" hidden></p>
    <video id="local-video" class="local-video" autoplay playsinline muted data-t-label="video.local"></video>
    <button type="button" id="play-button" class="button primary play-button" data-t="errors.autoplay" hidden></button>
  </div>
  <div class="controls" id="call-controls">
    <button type="button" id="mute-button" class="button control" data-t="controls.muteOn"></button>
    <button type="button" id="camera-button" class="button control" data-t="controls.cameraOn"></button>
    <button type="button" id="hangup-button" class="button danger" data-t="controls.hangUp"></button>
  </div>
  <button type="button" id="retry-button" class="button primary" data-t="controls.retry" hidden></button>
`;

const STATUS_TEXT = {
  [CallState.idle]: 'status.idle',
  [CallState.checking]: 'status.checking',
  [CallState.ready]: 'status.ready',
  [CallState.media]: 'status.media',
  [CallState.connecting]: 'status.connecting',
  [CallState.waiting]: 'status.waiting',
  [CallState.negotiating]: 'status.negotiating',
  [CallState.connected]: 'status.connected',
  [CallState.peerLeft]: 'status.peerLeft',
  [CallState.reconnecting]: 'status.reconnecting',
  [CallState.ended]: 'status.ended',
};

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
  const notice = $('call-notice');
  const stage = $('call-stage');
  const remoteVideo = $('remote-video');
  const placeholder = $('remote-placeholder');
  const localVideo = $('local-video');
  const playButton = $('play-button');
  const controls = $('call-controls');
  const muteButton = $('mute-button');
  const cameraButton = $('camera-button');
  const hangupButton = $('hangup-button');
  const retryButton = $('retry-button');

  muteButton.addEventListener('click', () => call.setMuted(!call.muted));
  cameraButton.addEventListener('click', () => call.setCameraOff(!call.cameraOff));
  hangupButton.addEventListener('click', () => call.hangUp());
  retryButton.addEventListener('click', () => location.reload());
  playButton.addEventListener('click', () => {
    playButton.hidden = true;
    remoteVideo.play().catch(() => { playButton.hidden = false; });
  });
  // Closing the tab is leaving on purpose: record it as a hang-up, not a lost connection.
  window.addEventListener('pagehide', () => {
    if (call.wantJoin) call.hangUp();
  });

  const render = () => {
    const over = call.state === CallState.ended || call.state === CallState.error;
    status.textContent = call.state === CallState.error ? errorText(call.error) : text(statusKey(call));
    status.classList.toggle('is-error', call.state === CallState.error);

    notice.hidden = !call.mediaNotice || over;
    if (call.mediaNotice) notice.textContent = text(`errors.${call.mediaNotice}`);

    stage.hidden = over;
    controls.hidden = over;
    retryButton.hidden = !(call.state === CallState.error && RETRYABLE.has(call.error));

    if (remoteVideo.srcObject !== call.remoteStream) {
      remoteVideo.srcObject = call.remoteStream;
      if (call.remoteStream) {
        remoteVideo.play().catch((err) => {
          if (err.name === 'NotAllowedError') playButton.hidden = false;
        });
      }
    }
    // The status line already says what is going on; the stage only explains a missing picture.
    const remoteHasVideo = (call.remoteStream?.getVideoTracks() ?? []).some((t) => !t.muted);
    placeholder.hidden = !(call.state === CallState.connected && !remoteHasVideo);

    const showLocal = call.hasCamera && !call.cameraOff;
    if (localVideo.srcObject !== call.localStream) localVideo.srcObject = call.localStream;
    localVideo.hidden = !showLocal;

    muteButton.hidden = !call.hasMicrophone;
    muteButton.textContent = text(call.muted ? 'controls.muteOff' : 'controls.muteOn');
    muteButton.classList.toggle('is-off', call.muted);
    cameraButton.hidden = !call.hasCamera;
    cameraButton.textContent = text(call.cameraOff ? 'controls.cameraOff' : 'controls.cameraOn');
    cameraButton.classList.toggle('is-off', call.cameraOff);
  };
  call.addEventListener('change', render);
  render();
}

function statusKey(call) {
  if (call.state === CallState.peerLeft && call.peerLeftReason === 'connection_lost') return 'status.peerLost';
  return STATUS_TEXT[call.state] ?? 'status.idle';
}

/** The hook the browser tests read: the current connection and a state string. */
export function exposeTestHook(getCall) {
  window.samtalerum = {
    get pc() { return getCall()?.pc ?? null; },
    get state() { return getCall()?.state ?? CallState.idle; },
    get error() { return getCall()?.error ?? null; },
    get role() { return getCall()?.role ?? null; },
    get sessionId() { return getCall()?.sessionId ?? null; },
    get rttMs() { return getCall()?.rttMs ?? null; },
  };
}
