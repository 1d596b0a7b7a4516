// Small DOM helpers. The pages hold structure only; their words come from i18n-da.js through
// `data-t` (text), `data-t-label` (aria-label) and `data-t-placeholder` attributes.

import { texts } from './i18n-da.js';

export function text(path) {
  const value = path.split('.').reduce((node, key) => node?.[key], texts);
  if (typeof value !== 'string') {
    console.warn(`samtalerum: no text for ${path}`);
    return '';
  }
  return value;
}

export function applyTexts(root = document) {
  for (const node of root.querySelectorAll('[data-t]')) node.textContent = text(node.dataset.t);
  for (const node of root.querySelectorAll('[data-t-label]')) node.setAttribute('aria-label', text(node.dataset.tLabel));
  for (const node of root.querySelectorAll('[data-t-placeholder]')) node.setAttribute('placeholder', text(node.dataset.tPlaceholder));
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`samtalerum: page lacks #${id}`);
  return node;
}

/** Shows exactly one of the page's top-level views (sections with class "view"). */
export function showView(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  const heading = document.querySelector(`#${id} h1, #${id} h2`);
  // Moving focus to the new heading tells screen-reader users that the page changed.
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

/** The `key=value` pairs of the URL fragment (tokens travel there so they never reach logs). */
export function fragmentParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
}
