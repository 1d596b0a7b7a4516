// The worker's own meetings on /worker: today's (with who is waiting right now), the coming
// ones, and for each: join, show the citizen's link again, replace a leaked link, add to the
// calendar (.ics) and cancel. The case reference is the title; the meeting id is never shown.

import { formatDateTime, text, texts } from './dom.js';
import { clockTime } from './meeting-time.js';

const REFRESH_MS = 10000;

function button(id, label, describedBy, onClick, extraClass = '') {
  const node = document.createElement('button');
  node.type = 'button';
  node.id = id;
  node.className = `button small ${extraClass}`.trim();
  node.textContent = label;
  node.setAttribute('aria-describedby', describedBy);
  node.addEventListener('click', onClick);
  return node;
}

function presenceText(meeting) {
  const named = (roles) => roles.map((role) => texts.rolesDefinite[role] ?? role).join(', ');
  if (meeting.waiting.length) return texts.meetings.waiting(named(meeting.waiting));
  if (meeting.present.length) return texts.meetings.present(named(meeting.present));
  return '';
}

export class MeetingList {
  /**
   * @param {{fetch: (path: string, init?: RequestInit) => Promise<Response>, onJoin: Function,
   *          onShowLink: Function, onUnauthorized: Function, onChange?: Function}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.byId = new Map();
    this.shown = '';
    this.timer = null;
  }

  start() {
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  caseRefOf(id) { return this.byId.get(id)?.caseRef ?? null; }

  async refresh() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    let response;
    try {
      response = await this.hooks.fetch(`/api/meetings?tz=${encodeURIComponent(zone)}`);
    } catch {
      response = null;
    }
    if (response?.status === 401) {
      this.stop();
      this.hooks.onUnauthorized();
      return;
    }
    const error = document.getElementById('meetings-error');
    if (!response?.ok) {
      error.textContent = text('meetings.loadFailed');
      error.hidden = false;
      return;
    }
    error.hidden = true;
    const list = await response.json();
    for (const meeting of [...list.today, ...list.upcoming, ...list.past]) this.byId.set(meeting.meetingId, meeting);
    // Redrawn only when something changed, so focus and screen-reader position stay put.
    const snapshot = JSON.stringify([list.today, list.upcoming]);
    if (snapshot !== this.shown) {
      this.shown = snapshot;
      this.render(document.getElementById('today-list'), list.today, false);
      this.render(document.getElementById('upcoming-list'), list.upcoming, true);
      document.getElementById('today-empty').hidden = list.today.length > 0;
      document.getElementById('upcoming-details').hidden = list.upcoming.length === 0;
    }
    this.hooks.onChange?.(list);
  }

  render(container, meetings, withDate) {
    container.replaceChildren(...meetings.map((meeting) => this.item(meeting, withDate)));
  }

  item(meeting, withDate) {
    const id = meeting.meetingId;
    const item = document.createElement('li');
    item.className = 'meeting-item';
    item.dataset.meeting = id;
    const title = document.createElement('h3');
    title.id = `meeting-case-${id}`;
    title.className = 'meeting-case';
    title.textContent = meeting.caseRef;
    const when = document.createElement('p');
    when.className = 'meeting-when';
    if (meeting.startsAt) {
      const start = new Date(meeting.startsAt);
      when.textContent = withDate ? formatDateTime(start) : texts.meetings.at(clockTime(start));
    } else {
      when.textContent = text('meetings.unplanned');
    }
    item.append(title, when);
    if (meeting.cancelled) {
      const cancelled = document.createElement('p');
      cancelled.className = 'meeting-cancelled';
      cancelled.textContent = text('meetings.cancelled');
      item.append(cancelled);
      item.classList.add('cancelled');
      return item;
    }
    const presence = presenceText(meeting);
    if (presence) {
      const line = document.createElement('p');
      line.className = `meeting-presence${meeting.waiting.length ? ' waiting' : ''}`;
      line.textContent = presence;
      item.append(line);
    }
    const row = document.createElement('div');
    row.className = 'row meeting-actions';
    row.append(
      button(`join-${id}`, text('meetings.join'), title.id, () => this.hooks.onJoin(id, meeting.caseRef), 'primary'),
      button(`show-link-${id}`, text('meetings.showLink'), title.id, () => this.showLink(id)),
      button(`new-link-${id}`, text('meetings.newLink'), title.id, () => this.replaceLink(id, meeting.caseRef)),
      button(`calendar-${id}`, text('meetings.calendar'), title.id, () => this.calendar(id)),
      button(`cancel-${id}`, text('meetings.cancel'), title.id, () => this.cancel(id, meeting.caseRef), 'danger'),
    );
    item.append(row);
    return item;
  }

  async act(path, init) {
    let response = null;
    try {
      response = await this.hooks.fetch(path, init);
    } catch { /* reported below */ }
    if (response?.status === 401) {
      this.hooks.onUnauthorized();
      return null;
    }
    if (!response?.ok) {
      const error = document.getElementById('meetings-error');
      error.textContent = text('meetings.actionFailed');
      error.hidden = false;
      return null;
    }
    return response;
  }

  async showLink(id) {
    const response = await this.act(`/api/meetings/${encodeURIComponent(id)}/invite`);
    if (response) this.hooks.onShowLink(await response.json());
  }

  async replaceLink(id, caseRef) {
    if (!window.confirm(texts.meetings.newLinkConfirm(caseRef))) return;
    const response = await this.act(`/api/meetings/${encodeURIComponent(id)}/invite`, { method: 'POST' });
    if (response) this.hooks.onShowLink(await response.json(), text('meetings.newLinkDone'));
  }

  async cancel(id, caseRef) {
    if (!window.confirm(texts.meetings.cancelConfirm(caseRef))) return;
    if (await this.act(`/api/meetings/${encodeURIComponent(id)}`, { method: 'DELETE' })) await this.refresh();
  }

  /** Fetched with the worker's credentials, then saved: a plain link could not carry a bearer token. */
  async calendar(id) {
    const response = await this.act(`/api/meetings/${encodeURIComponent(id)}/calendar.ics`);
    if (!response) return;
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = `samtalerum-${(this.caseRefOf(id) ?? 'moede').replace(/[^\w.-]+/g, '-')}.ics`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
