// Small DOM helpers. The pages hold structure only; their words come from i18n-da.js through
// `data-t` (text), `data-t-label` (aria-label) and `data-t-placeholder` attributes.

import * as da from './i18n-da.js';
import * as en from './i18n-en.js';

const MODULES = { da, en };
const LANGUAGES = { da: da.texts, en: en.texts };
const LANGUAGE_KEY = 'samtalerum.lang';

/** Danish unless the person chose English on this device (`?lang=en` also works, for links). */
export const language = (() => {
  const asked = new URLSearchParams(location.search).get('lang');
  if (asked && asked in LANGUAGES) {
    localStorage.setItem(LANGUAGE_KEY, asked);
    return asked;
  }
  const stored = localStorage.getItem(LANGUAGE_KEY);
  return stored in LANGUAGES ? stored : 'da';
})();

export const texts = LANGUAGES[language];
export const formatDateTime = MODULES[language].formatDateTime;
// A page written in one language only (the auditor's) keeps the `lang` its markup states, so
// a screen reader does not read Danish text with an English voice.
if (!document.documentElement.hasAttribute('data-one-language')) document.documentElement.lang = language;

/** Switches language; the page reloads so every text is redrawn (never during a call). */
export function setLanguage(code) {
  if (!(code in LANGUAGES)) return;
  localStorage.setItem(LANGUAGE_KEY, code);
  const url = new URL(location.href);
  url.searchParams.delete('lang');
  location.replace(url.toString());
}

export function text(path) {
  const value = path.split('.').reduce((node, key) => node?.[key], texts);
  if (typeof value !== 'string') {
    console.warn(`samtalerum: no text for ${path}`);
    return '';
  }
  return value;
}

export function applyTexts(root = document) {
  if (root === document) mountLanguageSwitch();
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

/** A button in `#language-switch` (when the page has one) offering the other language. */
function mountLanguageSwitch() {
  const slot = document.getElementById('language-switch');
  if (!slot || slot.childElementCount) return;
  const other = language === 'da' ? 'en' : 'da';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button small';
  button.lang = other;
  button.textContent = LANGUAGES[other].languageName;
  button.addEventListener('click', () => setLanguage(other));
  slot.append(button);
}
