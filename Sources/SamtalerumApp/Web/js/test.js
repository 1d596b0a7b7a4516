// /test: the equipment and network check on its own, to practise before the first call.

import { applyTexts, byId, text } from './dom.js';
import { runPrecheck } from './precheck.js';

const hook = { done: false, ok: null, results: null };
window.samtalerumCheck = hook;

applyTexts();
document.title = `${text('appName')} – ${text('check.title')}`;
let previous = null;
byId('start-check').addEventListener('click', async () => {
  const button = byId('start-check');
  button.hidden = true;
  for (const track of previous?.getTracks() ?? []) track.stop();
  const outcome = await runPrecheck(byId('check-container'));
  Object.assign(hook, { done: true, ok: outcome.ok, results: outcome.results });
  button.textContent = text('check.again');
  button.hidden = false;
  button.classList.remove('huge');
  previous = outcome.stream;
  // Keep the preview and meter for a minute, then let the camera light go off.
  setTimeout(() => { for (const track of outcome.stream?.getTracks() ?? []) track.stop(); }, 60000);
});
