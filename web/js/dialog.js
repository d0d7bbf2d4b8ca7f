// Modal dialogs on the native <dialog> element (showModal makes the page behind it inert),
// plus what it leaves to us: Tab and Shift+Tab wrap around inside the dialog, Escape
// closes it, and focus goes back to what opened it.

import { h } from './dom.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), ' +
  'select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function visible(el) {
  return !el.closest('[hidden]') && el.getClientRects().length > 0;
}

export function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter(visible);
}

// Opens a dialog titled `title` around `body` (a node). Returns { el, close, done } where
// done is a promise of the value passed to close() (undefined on Escape/Cancel).
export function openDialog(title, body, opts = {}) {
  const opener = document.activeElement;
  const titleId = `dlg-title-${Math.random().toString(36).slice(2)}`;
  const closeBtn = h('button', { type: 'button', class: 'btn btn-icon dialog-x', 'aria-label': 'Close' }, '×');
  const el = h('dialog', { class: `dialog ${opts.wide ? 'dialog-wide' : ''}`, 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' }, h('h2', { id: titleId }, title), closeBtn),
    h('div', { class: 'dialog-body' }, body));
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  let closed = false;
  function close(value) {
    if (closed) return;
    closed = true;
    if (el.open) el.close();
    el.remove();
    resolve(value);
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  }
  closeBtn.addEventListener('click', () => close(undefined));
  // Escape: the browser fires "cancel" on a modal dialog; we close (and clean up) ourselves
  el.addEventListener('cancel', (ev) => { ev.preventDefault(); close(undefined); });
  el.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close(undefined);
      return;
    }
    if (ev.key !== 'Tab') return;
    const f = focusables(el);
    if (!f.length) return;
    const first = f[0];
    const last = f[f.length - 1];
    if (ev.shiftKey && (document.activeElement === first || !el.contains(document.activeElement))) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (document.activeElement === last || !el.contains(document.activeElement))) {
      ev.preventDefault();
      first.focus();
    }
  });
  document.body.append(el);
  el.showModal();
  const start = opts.initialFocus || focusables(el.querySelector('.dialog-body'))[0] || closeBtn;
  start.focus();
  return { el, close, done };
}

// Asks to confirm an action; resolves true or false.
export function confirmDialog(title, message, confirmLabel, opts = {}) {
  const ok = h('button', { type: 'button', class: `btn ${opts.danger ? 'btn-danger' : 'btn-primary'}` }, confirmLabel);
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const body = h('div', null, message, h('div', { class: 'actions' }, cancel, ok));
  const d = openDialog(title, body, { initialFocus: cancel });
  ok.addEventListener('click', () => d.close(true));
  cancel.addEventListener('click', () => d.close(false));
  return d.done.then((v) => v === true);
}
