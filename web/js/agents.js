// Agents: the list, and an agent's page with two tabs — its settings (the fields of its
// kind) and its phone numbers, where more numbers are assigned.
//
// Kinds are a table (KINDS): each says how its settings read, and may give a form for
// creating and editing (js/agent_form.js). builtin agents are made by the server.

import { api, can, listAll, qs } from './api.js';
import { announce, field, h, userText } from './dom.js';
import { trunkSummary } from './format.js';
import { eventBadge } from './numbers.js';
import { openNumberForm } from './number_form.js';
import { openAgentForm } from './agent_form.js';
import { twilioSection } from './twilio.js';
import { savedNotice, setFlash, takeFlash } from './flash.js';

const none = () => h('span', { class: 'muted' }, 'none');
const url = (u) => (u ? h('code', { dir: 'ltr' }, u) : none());
const ms = (v) => (v ? `${v} ms` : '—');

export const KINDS = {
  builtin: {
    name: 'Built-in',
    summary: (a) => `${a.builtin || ''}${a.builtin === 'echo' ? ' — repeats what the caller says' : ''}`,
    fields: (a) => [['Built-in agent', a.builtin]],
    form: null,
  },
  websocket: {
    name: 'WebSocket',
    summary: (a) => a.url || '',
    fields: (a) => [
      ['URL', url(a.url)],
      ['Connect timeout', ms(a.connect_timeout_ms)],
      ['Parameters', Object.keys(a.parameters || {}).length
        ? h('ul', { class: 'plain' }, Object.entries(a.parameters).map(([k, v]) => h('li', null, h('code', { dir: 'ltr' }, `${k} = ${v}`))))
        : none()],
      ['Headers', (a.headers || []).length
        ? h('ul', { class: 'plain' }, a.headers.map((x) => h('li', null, h('code', { dir: 'ltr' }, x.name), x.value_set ? ' (value set, hidden)' : '')))
        : none()],
    ],
    // (agent | null) => Promise<{ agent, warnings } | undefined>
    form: (a) => openAgentForm('websocket', a),
  },
  twiml: {
    name: 'TwiML',
    summary: (a) => a.voice_url || '',
    fields: (a) => [
      ['Voice URL', url(a.voice_url)],
      ['Method', a.method || 'POST'],
      ['Fallback URL', url(a.fallback_url)],
      ['Status callback', url(a.status_callback)],
      ['Timeout', ms(a.timeout_ms)],
    ],
    form: (a) => openAgentForm('twiml', a),
  },
};

function kindOf(a) {
  return KINDS[a.kind] || { name: a.kind, summary: () => '', fields: () => [], form: null };
}

export async function agentsPage(main, ctx) {
  const agents = await listAll('/v1/agents');
  const creatable = Object.entries(KINDS).filter(([, k]) => k.form);
  const head = h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Agents'));
  if (can('POST /v1/agents') && creatable.length) {
    const actions = h('div', { class: 'actions' });
    for (const [id, k] of creatable) {
      const b = h('button', { type: 'button', class: 'btn btn-primary', id: `new-${id}-agent` }, `New ${k.name} agent`);
      b.addEventListener('click', async () => {
        const res = await k.form(null);
        if (!res) return;
        setFlash(savedNotice(`Agent ${res.agent.name} was created.`, res.warnings));
        ctx.go(`/agents/${res.agent.id}`);
      });
      actions.append(b);
    }
    head.append(actions);
  }
  main.append(head,
    h('p', { class: 'hint' }, 'The agent a number is assigned to answers its calls.'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'agents' },
      h('thead', null, h('tr', null, ['Name', 'Kind', 'Settings'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, agents.map((a) => h('tr', { 'data-id': a.id },
        h('td', { 'data-label': 'Name' }, h('a', { href: `#/agents/${a.id}` }, userText(a.name))),
        h('td', { 'data-label': 'Kind' }, kindOf(a).name),
        h('td', { 'data-label': 'Settings', class: 'trunk-cell' }, kindOf(a).summary(a))))))),
    can('GET /v1/twilio-account') ? twilioSection() : null);
}

function tabs(defs, initial) {
  const list = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Agent' });
  const panels = [];
  const btns = defs.map((d, i) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${d.id}`, 'aria-controls': `panel-${d.id}` }, d.label);
    const p = h('div', { role: 'tabpanel', id: `panel-${d.id}`, 'aria-labelledby': `tab-${d.id}`, tabindex: '0' });
    panels.push(p);
    b.addEventListener('click', () => select(i));
    b.addEventListener('keydown', (ev) => {
      const k = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
      if (!k) return;
      const dir = document.dir === 'rtl' ? -k : k;
      const j = (i + dir + defs.length) % defs.length;
      select(j);
      btns[j].focus();
    });
    list.append(b);
    return b;
  });
  function select(i) {
    btns.forEach((b, j) => {
      b.setAttribute('aria-selected', String(i === j));
      b.tabIndex = i === j ? 0 : -1;
      panels[j].hidden = i !== j;
    });
    if (!panels[i].dataset.loaded) {
      panels[i].dataset.loaded = '1';
      defs[i].render(panels[i]);
    }
  }
  select(initial);
  return h('div', null, list, panels);
}

async function numbersTab(panel, agent, ctx) {
  const admin = can('PATCH /v1/phone-numbers/{id}');
  const listBox = h('div', { id: 'agent-numbers' });
  async function refresh() {
    const page = await api('GET', `/v1/phone-numbers${qs({ agent_id: agent.id, limit: 100 })}`);
    const rows = page.data.map((n) => {
      const tr = h('tr', { 'data-id': n.id },
        h('td', { 'data-label': 'Number' }, h('a', { href: `#/numbers/${n.id}`, dir: 'ltr' }, n.number)),
        h('td', { 'data-label': 'Label', class: 'label-cell' }, userText(n.label)),
        h('td', { 'data-label': 'Trunk', class: 'trunk-cell' }, trunkSummary(n)),
        h('td', { 'data-label': 'Latest event' }, eventBadge(n.latest_event)));
      if (admin) {
        const un = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Unassign ${n.number}` }, 'Unassign');
        un.addEventListener('click', async () => {
          try {
            await api('PATCH', `/v1/phone-numbers/${n.id}`, { agent_id: null });
            announce(`${n.number} was unassigned from ${agent.name}.`, 'good');
            await refresh();
          } catch (e) { announce(e.message, 'bad'); }
        });
        tr.append(h('td', { 'data-label': '' }, un));
      }
      return tr;
    });
    listBox.replaceChildren(rows.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', null, h('tr', null, ['Number', 'Label', 'Trunk', 'Latest event'].concat(admin ? [h('span', { class: 'offscreen' }, 'Actions')] : []).map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows)))
      : h('p', { class: 'muted' }, 'No numbers go to this agent yet.'));
    if (page.next_cursor) listBox.append(h('p', { class: 'muted' }, 'Showing the first 100; search the phone numbers list for more.'));
  }
  panel.append(h('h2', null, 'Phone numbers of this agent'), listBox);
  await refresh();
  if (!admin) return;

  // assign more: search the workspace's numbers (server-side), assign with one click
  const q = field('Find a number to assign', { id: 'assign-search', type: 'search', placeholder: 'Number or label',
    hint: 'Numbers of other agents move to this one.' });
  const results = h('ul', { class: 'plain results', id: 'assign-results', 'aria-live': 'polite' });
  let ctl = null;
  q.control.addEventListener('input', async () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const text = q.control.value.trim();
    if (!text) { results.replaceChildren(); return; }
    try {
      const page = await api('GET', `/v1/phone-numbers${qs({ q: text, limit: 10 })}`, undefined, { signal: ctl.signal });
      results.replaceChildren(...page.data.filter((n) => n.agent_id !== agent.id).map((n) => {
        const b = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Assign ${n.number} to ${agent.name}` }, 'Assign');
        b.addEventListener('click', async () => {
          try {
            await api('PATCH', `/v1/phone-numbers/${n.id}`, { agent_id: agent.id });
            announce(`${n.number} now goes to ${agent.name}.`, 'good');
            b.closest('li').remove();
            await refresh();
          } catch (e) { announce(e.message, 'bad'); }
        });
        return h('li', { class: 'result' }, h('span', { dir: 'ltr' }, n.number), ' ', userText(n.label, 'muted'), ' ', b);
      }));
      if (!results.children.length) results.append(h('li', { class: 'muted' }, 'No other number matches.'));
    } catch (e) {
      if (e.name !== 'AbortError') announce(e.message, 'bad');
    }
  });
  const imp = can('POST /v1/phone-numbers') ? h('button', { type: 'button', class: 'btn', id: 'agent-import' }, 'Import SIP number for this agent') : null;
  if (imp) {
    imp.addEventListener('click', async () => {
      const all = await listAll('/v1/agents');
      const res = await openNumberForm({ mode: 'import', agents: all, agentId: agent.id });
      if (res) {
        setFlash(savedNotice(`${res.number.number} was imported.`, res.warnings));
        ctx.go(`/numbers/${res.number.id}`);
      }
    });
  }
  panel.append(h('section', { class: 'card' }, h('h3', null, 'Assign more numbers'), q.wrap, results, imp));
}

export async function agentPage(main, ctx) {
  const a = await api('GET', `/v1/agents/${ctx.param}`);
  const k = kindOf(a);
  const head = h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', id: 'agent-title' }, userText(a.name)));
  if (k.form && can('PATCH /v1/agents/{id}')) {
    const b = h('button', { type: 'button', class: 'btn', id: 'agent-edit' }, 'Edit');
    b.addEventListener('click', async () => {
      const res = await k.form(a);
      if (!res) return;
      setFlash(savedNotice('Agent saved.', res.warnings));
      ctx.go(`/agents/${a.id}`);
    });
    head.append(b);
  }
  const flash = h('div', { id: 'flash', 'aria-live': 'polite' });
  const pending = takeFlash();
  if (pending) flash.append(pending);
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/agents' }, '← Agents')), head, flash,
    tabs([
      { id: 'settings', label: 'Settings', render: (p) => p.append(h('dl', { class: 'kv', id: 'agent-settings' }, [['Kind', k.name], ...k.fields(a), ['Id', h('code', null, a.id)]].map(([x, v]) => [h('dt', null, x), h('dd', null, v)]))) },
      { id: 'numbers', label: 'Phone numbers', render: (p) => numbersTab(p, a, ctx) },
    ], 0));
}
