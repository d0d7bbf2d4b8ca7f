// A notice carried to the next page (a save's warnings, shown on the page it leads to).

import { h } from './dom.js';

let pending = null;

export function setFlash(node) { pending = node; }

export function takeFlash() {
  const n = pending;
  pending = null;
  return n;
}

export function savedNotice(text, warnings) {
  const warn = warnings && warnings.length;
  return h('div', { class: `notice ${warn ? 'notice-warn' : 'notice-good'}`, id: 'saved', role: warn ? 'alert' : null },
    h('p', null, text),
    warn ? [h('p', null, 'Saved, but check:'),
      h('ul', { id: 'warnings' }, warnings.map((w) => h('li', { 'data-field': w.field }, w.message)))] : null);
}
