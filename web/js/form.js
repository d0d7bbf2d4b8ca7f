// What the dialogs that write to the API share (the number import/edit dialog, the agent
// form): rows of inputs to add and remove, and the API's own errors shown at the field
// they name. Each control carries data-path, the JSON path the API uses in error.field
// ("outbound_trunk.headers[2].name", "headers[1].value", "parameters.customer_id").

import { h, setFieldError, uid } from './dom.js';

// How each kind of row reads: its inputs (part, label, placeholder) and its noun.
const ROWS = {
  header: { noun: 'header', parts: [['name', 'Name', 'X-Account'], ['value', 'Value', '4711']] },
  param: { noun: 'parameter', parts: [['name', 'Name', 'customer_id'], ['value', 'Value', '4711']] },
  address: { noun: 'address', parts: [['self', 'Address', '203.0.113.0/24']] },
};

// Rows of inputs that can be added and removed (custom headers, allowed addresses, an
// agent's parameters). Paths are renumbered after a removal so that an error names the row
// the person sees. kind 'param' rows are keyed by their name, as the API names them
// ("parameters.<name>"): the name input's path follows what is typed.
// secret: the value inputs are password inputs. keepHint: the placeholder of a value that
// is stored but not shown (set() with {name, value_set: true}).
export function rowList({ base, kind, addLabel, legend, hint, secret, keepHint, placeholders }) {
  const def = ROWS[kind];
  const list = h('div', { class: 'rows' });
  const add = h('button', { type: 'button', class: 'btn btn-small', 'data-path': base }, addLabel);
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null;
  const box = h('fieldset', { class: 'rowset', 'aria-describedby': hintEl ? hintEl.id : null },
    h('legend', null, legend), hintEl, list, add);
  // the API may name the list itself (too many rows): show it under the list
  const listErr = h('p', { class: 'field-error', id: uid('err'), hidden: true });
  box.append(listErr);
  add.setAttribute('aria-describedby', listErr.id);

  function pathOf(row, part, i) {
    if (kind === 'param') {
      return part === 'name' ? `${base}.${row.querySelector('[data-part="name"]').value.trim()}` : null;
    }
    return part === 'self' ? `${base}[${i}]` : `${base}[${i}].${part}`;
  }

  function renumber() {
    [...list.children].forEach((row, i) => {
      const n = i + 1;
      row.querySelectorAll('[data-part]').forEach((el) => {
        const p = pathOf(row, el.dataset.part, i);
        if (p === null) delete el.dataset.path;
        else el.dataset.path = p;
      });
      row.querySelectorAll('label[data-for-part]').forEach((l) => {
        const part = l.dataset.forPart;
        const label = def.parts.find(([x]) => x === part)[1];
        l.textContent = part === 'self' ? `${label} ${n}` : `${label} of ${def.noun} ${n}`;
      });
      row.querySelector('.rm').setAttribute('aria-label', `Remove ${def.noun} ${n}`);
    });
  }

  function cell(part, value, placeholder, isSecret) {
    const id = uid('r');
    const errId = `${id}-err`;
    const input = h('input', { id, type: isSecret ? 'password' : 'text', autocomplete: isSecret ? 'new-password' : 'off',
      spellcheck: 'false', placeholder, dir: 'ltr', 'aria-describedby': errId });
    input.value = value || '';
    input.dataset.part = part;
    return h('div', { class: 'field' }, h('label', { for: id, 'data-for-part': part }), input,
      h('p', { class: 'field-error', id: errId, hidden: true }));
  }

  function addRow(v) {
    const rm = h('button', { type: 'button', class: 'btn btn-small rm' }, 'Remove');
    const stored = Boolean(v && v.value_set && !v.value);
    const cells = def.parts.map(([part, , ph]) => {
      const isValue = part === 'value';
      const place = isValue && stored ? keepHint : ((placeholders && placeholders[part]) || ph);
      const val = part === 'self' ? v : v && v[part];
      return cell(part, val, place, isValue && secret);
    });
    const row = h('div', { class: 'row' }, cells, rm);
    if (stored) row.dataset.stored = v.name;
    if (kind === 'param') row.querySelector('[data-part="name"]').addEventListener('input', renumber);
    rm.addEventListener('click', () => {
      const idx = [...list.children].indexOf(row);
      row.remove();
      renumber();
      const rows = [...list.children];
      (rows[Math.min(idx, rows.length - 1)]?.querySelector('input') || add).focus();
    });
    list.append(row);
    renumber();
    return row;
  }
  add.addEventListener('click', () => addRow().querySelector('input').focus());

  return {
    el: box,
    set(values) { list.replaceChildren(); (values || []).forEach((v) => addRow(v)); },
    // [{name, value}] for header and param rows, [string] for addresses. Empty rows go
    // too: the API's error then names the row the person sees.
    get() {
      return [...list.children].map((row) => {
        if (kind === 'address') return row.querySelector('input').value.trim();
        return { name: row.querySelector('[data-part="name"]').value.trim(), value: row.querySelector('[data-part="value"]').value };
      });
    },
    // per row: its inputs by part, and the name it was stored under (a value kept hidden)
    rows() {
      return [...list.children].map((row) => ({
        inputs: Object.fromEntries([...row.querySelectorAll('[data-part]')].map((el) => [el.dataset.part, el])),
        stored: row.dataset.stored || null,
      }));
    },
    listErr,
  };
}

// The API's errors in a form: show(e) puts e.message under the control e.field names and
// focuses it (else in formErr, the form's own alert); reveal(control) may first open what
// hides it. clear() removes them all before the next try.
export function formErrors(form, formErr, reveal) {
  // the control an API error names: the exact path, else the closest enclosing one
  // ("outbound_trunk.headers" for a list that is too long)
  function controlFor(path) {
    let p = path;
    while (p) {
      const el = form.querySelector(`[data-path="${CSS.escape(p)}"]`);
      if (el) return el;
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      p = cut > 0 ? p.slice(0, cut) : '';
    }
    return null;
  }

  function clear() {
    form.querySelectorAll('[aria-invalid="true"]').forEach((c) => setFieldError(c, ''));
    form.querySelectorAll('.field-error').forEach((e) => { e.hidden = true; e.textContent = ''; });
    formErr.hidden = true;
    formErr.replaceChildren();
  }

  // at a control (client-side checks name the control itself)
  function at(c, message) {
    if (reveal) reveal(c);
    setFieldError(c, message);
    c.focus();
  }

  function show(e) {
    const c = e.field ? controlFor(e.field) : null;
    if (c && c.tagName !== 'BUTTON') {
      at(c, e.message);
      return;
    }
    if (c) { // a list as a whole: under its Add button
      const err = c.parentElement.querySelector(':scope > .field-error');
      if (err) { err.textContent = e.message; err.hidden = false; }
      c.focus();
      return;
    }
    formErr.replaceChildren(h('p', null, e.message));
    formErr.hidden = false;
    formErr.focus?.();
  }

  return { clear, show, at };
}
