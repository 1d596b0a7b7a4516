// When a planned meeting is, in the citizen's words, and when their page lets them in. The
// server says (GET /api/invite, authorised by the invite itself) when the meeting starts and
// from when it opens; the page counts down to that on its own.

import { language, texts } from './dom.js';

const LOCALES = { da: 'da-DK', en: 'en-GB' };

function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function clockTime(date) {
  return new Intl.DateTimeFormat(LOCALES[language], { hour: '2-digit', minute: '2-digit' }).format(date);
}

/** "Dit møde er i dag kl. 10.00." / "… i morgen …" / "… mandag den 7. december …" */
export function meetingSentence(startsAt, now = new Date()) {
  const time = clockTime(startsAt);
  if (dayKey(startsAt) === dayKey(now)) return texts.join.meetingToday(time);
  const tomorrow = new Date(now);
  tomorrow.setDate(now.getDate() + 1);
  if (dayKey(startsAt) === dayKey(tomorrow)) return texts.join.meetingTomorrow(time);
  const date = new Intl.DateTimeFormat(LOCALES[language], { weekday: 'long', day: 'numeric', month: 'long' }).format(startsAt);
  return texts.join.meetingOn(date, time);
}

/**
 * What the invite's meeting looks like from here: {startsAt, opensAt} (Dates or null), or
 * {refused: 'meeting-cancelled'|'invite-revoked'}; null when the server could not say (the
 * call's own checks then explain the link).
 */
export async function inviteStatus(invite) {
  try {
    const response = await fetch('/api/invite', { headers: { Authorization: `Bearer ${invite}` }, cache: 'no-store' });
    if (response.status === 410) {
      const problem = await response.json().catch(() => ({}));
      return { refused: String(problem.type ?? '').split('/').pop() };
    }
    if (!response.ok) return null;
    const body = await response.json();
    const date = (value) => (value ? new Date(value) : null);
    return { startsAt: date(body.startsAt), opensAt: date(body.opensAt) };
  } catch {
    return null;
  }
}

/**
 * Shows when the meeting is in `line`; before it opens, keeps `button` disabled with the time
 * it opens, and enables it then (checked every few seconds, so a sleeping phone catches up).
 */
export function showMeetingTime(status, line, button, now = () => new Date()) {
  if (!status?.startsAt) return;
  line.textContent = meetingSentence(status.startsAt, now());
  line.hidden = false;
  const opensAt = status.opensAt;
  if (!opensAt || now() >= opensAt) return;
  const note = document.createElement('span');
  note.id = 'opens-at';
  note.textContent = ` ${texts.join.opensAt(clockTime(opensAt))}`;
  line.append(note);
  button.disabled = true;
  const timer = setInterval(() => {
    if (now() < opensAt) return;
    clearInterval(timer);
    note.remove();
    button.disabled = false;
  }, 5000);
}
