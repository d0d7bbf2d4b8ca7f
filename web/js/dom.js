// DOM helpers. Everything the server sends is untrusted (labels, event details such as a
// carrier's User-Agent), so text only ever enters the page as text nodes: h() turns string
// children into text nodes and sets attributes with setAttribute. Nothing here parses HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'required' ||
               k === 'readonly' || k === 'selected' || k === 'multiple') el[k] = Boolean(v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// A text span for a value a person typed (labels, names): its own direction, so that an
// Arabic or Hebrew label neither flips nor is flipped by the text around it.
export function userText(s, cls) {
  return h('bdi', { class: cls, dir: 'auto' }, s === undefined || s === null ? '' : s);
}

// Unique ids for label/description wiring.
let seq = 0;
export function uid(prefix) {
  seq += 1;
  return `${prefix || 'id'}-${seq}`;
}

// A labelled form control. kind: 'input' (default), 'select', 'textarea'.
// Returns { wrap, control, error } — error is where an API field error is shown.
export function field(labelText, opts = {}) {
  const id = opts.id || uid('f');
  const errId = `${id}-err`;
  const hintId = opts.hint ? `${id}-hint` : null;
  let control;
  if (opts.kind === 'select') {
    control = h('select', { id, name: opts.name });
    for (const o of opts.options || []) {
      control.append(h('option', { value: o.value }, o.label));
    }
  } else if (opts.kind === 'textarea') {
    control = h('textarea', { id, name: opts.name, rows: opts.rows || 3 });
  } else {
    control = h('input', {
      id, name: opts.name, type: opts.type || 'text', autocomplete: opts.autocomplete || 'off',
      placeholder: opts.placeholder, inputmode: opts.inputmode, spellcheck: 'false',
      dir: opts.dir,
    });
  }
  if (opts.value !== undefined && opts.value !== null) control.value = opts.value;
  if (opts.path) control.dataset.path = opts.path;
  if (opts.required) control.required = true;
  const describedBy = [hintId, errId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', describedBy);
  const error = h('p', { class: 'field-error', id: errId, hidden: true });
  const wrap = h('div', { class: `field ${opts.class || ''}` },
    h('label', { for: id }, labelText, opts.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    control,
    opts.hint ? h('p', { class: 'hint', id: hintId }, opts.hint) : null,
    error);
  return { wrap, control, error };
}

export function setFieldError(control, message) {
  const errId = (control.getAttribute('aria-describedby') || '').split(' ').find((x) => x.endsWith('-err'));
  const err = errId ? document.getElementById(errId) : null;
  if (message) {
    control.setAttribute('aria-invalid', 'true');
    if (err) { err.textContent = message; err.hidden = false; }
  } else {
    control.removeAttribute('aria-invalid');
    if (err) { err.textContent = ''; err.hidden = true; }
  }
}

// Announces a short message to screen readers and shows it in the status bar, where it
// stays for the page it leads to (an action often ends on another page) and goes after.
let keep = 0;
export function announce(message, kind = 'info') {
  const bar = document.getElementById('status');
  if (!bar) return;
  bar.className = `status status-${kind}`;
  bar.textContent = message;
  bar.hidden = !message;
  keep = 1;
}

// Called on every page change.
export function pageChanged() {
  if (keep > 0) {
    keep -= 1;
    return;
  }
  const bar = document.getElementById('status');
  if (bar) { bar.textContent = ''; bar.hidden = true; }
}

// Copies text; the Clipboard API needs a secure context (localhost is one), the fallback a
// selected input.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    const tmp = h('textarea', { class: 'offscreen', 'aria-hidden': 'true' }, text);
    document.body.append(tmp);
    tmp.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    tmp.remove();
    return ok;
  }
}

// A read-only value with a copy button (SIP URIs, DNS records).
export function copyable(value, label) {
  const out = h('code', { class: 'copy-value', dir: 'ltr' }, value);
  const btn = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', async () => {
    const ok = await copyText(value);
    btn.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
  });
  return h('div', { class: 'copy' }, out, btn);
}
