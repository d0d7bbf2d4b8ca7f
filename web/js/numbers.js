// Phone numbers: the list with search and server-side paging (the server filters and pages,
// so a workspace with 10,000 numbers loads one page of 50), and the Import menu.

import { api, can, listAll, qs } from './api.js';
import { announce, clear, h, userText } from './dom.js';
import { ago, eventLabel, eventSeverity, trunkSummary } from './format.js';
import { openNumberForm } from './number_form.js';
import { savedNotice, setFlash } from './flash.js';

const PAGE = 50;

export function eventBadge(ev) {
  if (!ev) return h('span', { class: 'badge badge-none' }, 'No events');
  const b = h('span', { class: `badge badge-${eventSeverity(ev.code)}`, title: ev.message },
    eventLabel(ev.code));
  return h('span', { class: 'badge-wrap' }, b, h('span', { class: 'muted small' }, ` ${ago(ev.created_at)}`));
}

export function agentName(agents, id) {
  if (!id) return h('span', { class: 'muted' }, 'None');
  const a = agents.get(id);
  return a ? userText(a.name) : h('span', { class: 'muted' }, id);
}

export async function loadAgents() {
  const list = await listAll('/v1/agents');
  return new Map(list.map((a) => [a.id, a]));
}

// The Import number → From SIP trunk menu button.
export function importMenu(onPick) {
  const id = 'import-menu';
  const btn = h('button', { type: 'button', class: 'btn btn-primary', id: 'import', 'aria-haspopup': 'true',
    'aria-expanded': 'false', 'aria-controls': id }, 'Import number ▾');
  const item = h('button', { type: 'button', role: 'menuitem', class: 'menu-item', id: 'import-sip' }, 'From SIP trunk');
  const menu = h('div', { class: 'menu', role: 'menu', id, hidden: true }, item);
  const close = () => { menu.hidden = true; btn.setAttribute('aria-expanded', 'false'); };
  btn.addEventListener('click', () => {
    const open = menu.hidden;
    menu.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
    if (open) item.focus();
  });
  menu.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { close(); btn.focus(); }
  });
  // focus back on the button first: the dialog returns focus to what opened it
  item.addEventListener('click', () => { close(); btn.focus(); onPick(); });
  // a click elsewhere closes the menu; the listener goes with the page that made it
  const outside = (ev) => {
    if (!btn.isConnected) { document.removeEventListener('click', outside); return; }
    if (!btn.contains(ev.target) && !menu.contains(ev.target)) close();
  };
  document.addEventListener('click', outside);
  return h('div', { class: 'menu-wrap' }, btn, menu);
}

export async function numbersPage(main, ctx) {
  const t0 = performance.now();
  const state = { q: '', cursors: [null], page: 0, next: null, ctl: null, seq: 0 };
  const search = h('input', { type: 'search', id: 'search', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Number or label', 'aria-describedby': 'search-hint', disabled: true });
  const tbody = h('tbody', { id: 'numbers-body' });
  const count = h('p', { class: 'muted', id: 'numbers-count', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn', id: 'prev', disabled: true }, '← Previous');
  const next = h('button', { type: 'button', class: 'btn', id: 'next', disabled: true }, 'Next →');
  const table = h('table', { class: 'table numbers', id: 'numbers' },
    h('caption', { class: 'offscreen' }, 'Phone numbers of this workspace'),
    h('thead', null, h('tr', null, ['Number', 'Label', 'Agent', 'Trunk', 'Latest event'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const writable = can('POST /v1/phone-numbers');
  main.append(
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Phone numbers'),
      writable ? importMenu(() => openImport()) : null),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field field-inline' }, h('label', { for: 'search' }, 'Search'), search,
        h('p', { class: 'hint offscreen', id: 'search-hint' }, 'Part of the number or of the label; the list updates as you type.'))),
    h('div', { class: 'table-wrap' }, table),
    h('div', { class: 'pager' }, count, h('div', { class: 'actions' }, prev, next)));

  let agents = new Map();

  function render(page) {
    const rows = page.data.map((n) => h('tr', { 'data-id': n.id },
      h('td', { 'data-label': 'Number' }, h('a', { href: `#/numbers/${n.id}`, class: 'num', dir: 'ltr' }, n.number)),
      h('td', { 'data-label': 'Label', class: 'label-cell' }, userText(n.label)),
      h('td', { 'data-label': 'Agent' }, agentName(agents, n.agent_id)),
      h('td', { 'data-label': 'Trunk', class: 'trunk-cell' }, trunkSummary(n)),
      h('td', { 'data-label': 'Latest event' }, eventBadge(n.latest_event))));
    tbody.replaceChildren(...rows);
    if (!rows.length) {
      tbody.append(h('tr', null, h('td', { colspan: 5, class: 'empty' },
        state.q ? 'No number or label matches this search.' : (writable ? 'No numbers yet: import one from your SIP trunk.' : 'No numbers yet.'))));
    }
    state.next = page.next_cursor;
    const first = state.page * PAGE + 1;
    count.textContent = rows.length ? `Showing ${first}–${first + rows.length - 1}${page.next_cursor ? '' : ` of ${first + rows.length - 1}`}` : '';
    prev.disabled = state.page === 0;
    next.disabled = !page.next_cursor;
  }

  async function load() {
    if (state.ctl) state.ctl.abort();
    const ctl = new AbortController();
    state.ctl = ctl;
    const cursor = state.cursors[state.page];
    const page = await api('GET', `/v1/phone-numbers${qs({ limit: PAGE, q: state.q, cursor })}`, undefined, { signal: ctl.signal });
    if (ctl.signal.aborted) return false;
    render(page);
    return true;
  }

  function openImport() {
    openNumberForm({ mode: 'import', agents: [...agents.values()] }).then((res) => {
      if (!res) return;
      setFlash(savedNotice(`${res.number.number} was imported.`, res.warnings));
      ctx.go(`/numbers/${res.number.id}`);
    });
  }

  search.addEventListener('input', async () => {
    const mark = `search-${++state.seq}`;
    performance.mark(mark);
    state.q = search.value.trim();
    state.cursors = [null];
    state.page = 0;
    try {
      if (await load()) {
        performance.measure('numbers-search', mark);
        table.dataset.searched = search.value;
      }
    } catch (e) {
      if (e.name !== 'AbortError') announce(e.message, 'bad');
    }
  });
  next.addEventListener('click', async () => {
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    await load();
    tbody.querySelector('a')?.focus();
  });
  prev.addEventListener('click', async () => {
    state.page -= 1;
    await load();
    tbody.querySelector('a')?.focus();
  });

  const [a] = await Promise.all([loadAgents(), (async () => {
    // the first page needs the agent names: fetch both at once, render when both are in
    state.ctl = new AbortController();
    return api('GET', `/v1/phone-numbers${qs({ limit: PAGE })}`, undefined, { signal: state.ctl.signal });
  })().then((p) => { state.first = p; })]);
  agents = a;
  render(state.first);
  delete state.first;
  search.disabled = false;
  table.dataset.ready = 'true';
  performance.mark('numbers-interactive');
  performance.measure('numbers-page', { start: t0, end: performance.now() });
  return () => { if (state.ctl) state.ctl.abort(); };
}
