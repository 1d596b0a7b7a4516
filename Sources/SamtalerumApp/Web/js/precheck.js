// The equipment and network check, on /test and inside the invite page: camera preview,
// microphone level, a test sound for the speaker, the signalling WebSocket and the TURN relay
// over UDP, TCP and TLS (each URL alone, relay candidates only), then one plain verdict.

import { applyTexts, fragmentParams, text } from './dom.js';

const RELAY_TIMEOUT_MS = 6000;
const SOCKET_TIMEOUT_MS = 5000;
const MIC_LISTEN_MS = 2500;

const MARKUP = `
  <div class="preview">
    <video id="preview-video" autoplay playsinline muted data-t-label="video.local" hidden></video>
  </div>
  <p id="preview-off" class="hint" data-t="check.cameraHidden" hidden></p>
  <label id="meter-label" for="mic-meter" data-t="check.micLevel"></label>
  <div class="meter"><span id="mic-meter-bar"></span></div>
  <meter id="mic-meter" class="visually-hidden" min="0" max="100" value="0"></meter>
  <div class="row">
    <button type="button" id="speaker-button" class="button" data-t="check.playSound"></button>
    <span id="speaker-status" class="hint" role="status" aria-live="polite"></span>
  </div>
  <ul id="check-list" class="checks" aria-live="polite"></ul>
  <p id="check-verdict" class="verdict" role="status" aria-live="polite"></p>
  <ul id="check-advice" class="checks"></ul>
`;

const ITEMS = ['camera', 'microphone', 'signalling', 'udp', 'tcp', 'tls'];

/**
 * Runs the whole check once in `container`.
 * @param {{stream?: MediaStream|null, audioOnly?: boolean}} options a stream the page already has
 * @returns {Promise<{ok: boolean, results: object, stream: MediaStream|null}>}
 */
export async function runPrecheck(container, { stream = null, audioOnly = false } = {}) {
  container.innerHTML = MARKUP;
  applyTexts(container);
  const $ = (id) => container.querySelector(`#${id}`);
  const list = $('check-list');
  const rows = {};
  for (const item of ITEMS) {
    const li = document.createElement('li');
    li.dataset.item = item;
    li.innerHTML = '<span class="mark"></span><span class="label"></span>';
    li.querySelector('.label').textContent = text(`check.items.${item}`);
    li.querySelector('.mark').textContent = text('check.pending');
    list.append(li);
    rows[item] = li;
  }
  // `ok` null: not checked, and the row says so instead of claiming a failure.
  const mark = (item, ok, detail = '') => {
    rows[item].dataset.ok = String(ok);
    rows[item].querySelector('.mark').textContent = text(ok === null ? 'check.notChecked' : (ok ? 'check.ok' : 'check.failed'));
    if (detail) rows[item].querySelector('.label').textContent = `${text(`check.items.${item}`)} – ${detail}`;
  };
  $('speaker-button').addEventListener('click', () => playTestSound($('speaker-status')));
  $('check-verdict').textContent = text('check.running');

  const results = {};
  let media = stream;
  if (!media) {
    try {
      media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch {
      try { media = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch { media = null; }
    }
  }
  const videoTrack = media?.getVideoTracks()[0] ?? null;
  results.camera = Boolean(videoTrack && videoTrack.readyState === 'live');
  mark('camera', results.camera);
  if (videoTrack) {
    const video = $('preview-video');
    video.srcObject = new MediaStream([videoTrack]);
    video.hidden = audioOnly;
    $('preview-off').hidden = !audioOnly;
  }
  const [micOk, network] = await Promise.all([
    listenToMicrophone(media, $('mic-meter'), $('mic-meter-bar')),
    checkNetwork(mark),
  ]);
  results.microphone = micOk;
  mark('microphone', micOk);
  Object.assign(results, network);

  const advice = adviceFor(results);
  // Without a relay to reach, nothing is known about the network's video paths: the verdict
  // says what was checked instead of blaming the network.
  const ok = advice.length === 0;
  const relayChecked = results.udp !== null;
  $('check-verdict').textContent = text(!ok ? 'check.someProblems' : (relayChecked ? 'check.allGood' : 'check.allCheckedGood'));
  $('check-verdict').dataset.ok = String(ok);
  if (!relayChecked && results.signalling) advice.push(text(`check.advice.${results.unchecked}`));
  const adviceList = $('check-advice');
  for (const line of advice) {
    const li = document.createElement('li');
    li.textContent = line;
    adviceList.append(li);
  }
  return { ok, results, stream: media };
}

function adviceFor(r) {
  const advice = [];
  if (!r.camera) advice.push(text('check.advice.camera'));
  if (!r.microphone) advice.push(text('check.advice.microphone'));
  if (!r.signalling) advice.push(text('check.advice.signalling'));
  else if (r.udp === null) { /* not checked: no relay to try (the verdict says so) */ }
  else if (!r.udp && !r.tcp && !r.tls) advice.push(text('check.advice.blocked'));
  else if (!r.udp) advice.push(text('check.advice.noUdp'));
  return advice;
}

/** True once the microphone gives any sound within a short listening time; drives the meter. */
function listenToMicrophone(stream, meter, bar) {
  const track = stream?.getAudioTracks()[0];
  if (!track) return Promise.resolve(false);
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let heard = false;
  const started = performance.now();
  return new Promise((resolve) => {
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const level = Math.min(100, Math.round(Math.sqrt(sum / samples.length) * 300));
      meter.value = level;
      bar.style.width = `${level}%`;
      if (level > 1) heard = true;
      if (track.readyState === 'ended') {
        context.close();
        return;
      }
      if (performance.now() - started > MIC_LISTEN_MS && !tick.reported) {
        tick.reported = true;
        resolve(heard);
      }
      // The meter keeps moving after the verdict, so the person can try speaking.
      setTimeout(tick, 100);
    };
    context.resume().catch(() => {}).finally(tick);
  });
}

/** A short, soft two-note chime through the default speaker. */
export function playTestSound(status) {
  const context = new AudioContext();
  const gain = context.createGain();
  gain.gain.value = 0.15;
  gain.connect(context.destination);
  [523.25, 659.25].forEach((frequency, i) => {
    const tone = context.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start(context.currentTime + i * 0.45);
    tone.stop(context.currentTime + i * 0.45 + 0.4);
  });
  if (status) status.textContent = text('check.soundPlayed');
  setTimeout(() => context.close(), 1500);
}

async function checkNetwork(mark) {
  const results = { signalling: await checkSocket() };
  mark('signalling', results.signalling);
  let servers = [];
  // Why the video paths could not be tried, when they could not: never the person's network.
  let unchecked = 'noRelay';
  try {
    // The relay is only lent to someone with an invite (join page, or /test#invite=…) or a
    // signed-in worker's token (kept by the worker page in this tab's sessionStorage).
    const token = fragmentParams().get('invite') || sessionStorage.getItem('samtalerum.token');
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch('/api/ice-check', { cache: 'no-store', headers });
    if (response.status === 401) unchecked = 'noInvite';
    else if (response.status === 429) unchecked = 'busy';
    servers = response.ok ? (await response.json()).iceServers ?? [] : [];
  } catch {
    unchecked = 'busy';
  }
  const turn = servers.find((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => /^turns?:/.test(u)));
  if (!turn) {
    // No relay to try them with (this server runs without one, or lends it only to an invite):
    // the video paths are "not checked", and the page says why.
    for (const kind of ['udp', 'tcp', 'tls']) {
      results[kind] = null;
      mark(kind, null);
    }
    results.unchecked = unchecked;
    return results;
  }
  const urls = Array.isArray(turn.urls) ? turn.urls : [turn.urls];
  const pick = {
    udp: urls.find((u) => u.startsWith('turn:') && /transport=udp/.test(u)),
    tcp: urls.find((u) => u.startsWith('turn:') && /transport=tcp/.test(u)),
    tls: urls.find((u) => u.startsWith('turns:')),
  };
  await Promise.all(Object.entries(pick).map(async ([kind, url]) => {
    results[kind] = url ? await gathersRelay({ urls: [url], username: turn.username, credential: turn.credential }) : false;
    mark(kind, results[kind]);
  }));
  return results;
}

function checkSocket() {
  return new Promise((resolve) => {
    let ws;
    const timer = setTimeout(() => { ws?.close(); resolve(false); }, SOCKET_TIMEOUT_MS);
    try {
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
    } catch {
      clearTimeout(timer);
      resolve(false);
      return;
    }
    ws.addEventListener('open', () => {
      clearTimeout(timer);
      ws.close(1000);
      resolve(true);
    });
    ws.addEventListener('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** True when the relay hands out an address: the path to it and the credential both work. */
function gathersRelay(iceServer) {
  return new Promise((resolve) => {
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: [iceServer], iceTransportPolicy: 'relay' });
    } catch {
      resolve(false);
      return;
    }
    const finish = (ok) => {
      clearTimeout(timer);
      pc.close();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), RELAY_TIMEOUT_MS);
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (candidate?.type === 'relay' || / typ relay /.test(candidate?.candidate ?? '')) finish(true);
      else if (candidate === null) finish(false);
    });
    pc.createDataChannel('check');
    pc.createOffer().then((offer) => pc.setLocalDescription(offer)).catch(() => finish(false));
  });
}
