// A number's page: its trunks, its agent (assign, reassign, unassign), edit and delete, the
// trunk check, its diagnostic events with their hints, and its recent calls.

import { api, can, qs } from './api.js';
import { announce, clear, field, h, userText } from './dom.js';
import { confirmDialog, openDialog } from './dialog.js';
import { callStatus, duration, eventLabel, eventSeverity, mediaName, transportName, when } from './format.js';
import { agentName, loadAgents } from './numbers.js';
import { openNumberForm } from './number_form.js';
import { savedNotice, setFlash, takeFlash } from './flash.js';

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function headersText(hs) {
  if (!hs || !hs.length) return h('span', { class: 'muted' }, 'none');
  return h('ul', { class: 'plain' }, hs.map((x) => h('li', null, h('code', { dir: 'ltr' }, `${x.name}: ${x.value}`))));
}

function trunkPanel(n) {
  const o = n.outbound_trunk;
  const i = n.inbound_trunk;
  return h('div', { class: 'cards2' },
    h('section', { class: 'card', 'aria-labelledby': 'ob-h' }, h('h2', { id: 'ob-h' }, 'Outbound trunk'),
      kv([['Address', h('code', { dir: 'ltr', id: 'ob-address' }, o.address)],
        ['Transport', transportName(o.transport)],
        ['Media', mediaName(o.media_encryption)],
        ['Username', o.username ? userText(o.username) : h('span', { class: 'muted' }, 'none (IP authentication)')],
        ['Password', o.has_password ? 'stored' : 'none'],
        ['Custom headers', headersText(o.headers)]])),
    h('section', { class: 'card', 'aria-labelledby': 'ib-h' }, h('h2', { id: 'ib-h' }, 'Inbound trunk'),
      i ? kv([['Transport', transportName(i.transport)],
        ['Media', mediaName(i.media_encryption)],
        ['Allowed sources', i.allowed_addresses.length ? h('ul', { class: 'plain' }, i.allowed_addresses.map((a) => h('li', null, h('code', { dir: 'ltr' }, a)))) : 'any address'],
        ['Username', i.username ? userText(i.username) : h('span', { class: 'muted' }, 'none')],
        ['Password', i.has_password ? 'stored' : 'none'],
        i.origination_url ? ['Origination URL', h('code', { dir: 'ltr' }, i.origination_url)] : null,
        ['Custom headers', headersText(i.headers)]])
        : h('p', { class: 'muted' }, 'Not set: this number receives no calls. Edit the number to add an inbound trunk.')));
}

// Event details are facts from the network (a carrier's User-Agent, From user): shown as
// text, whatever they contain.
function eventItem(e) {
  const det = e.details && typeof e.details === 'object' ? Object.entries(e.details) : [];
  return h('li', { class: 'event', 'data-code': e.code },
    h('div', { class: 'event-head' },
      h('span', { class: `badge badge-${eventSeverity(e.code)}` }, eventLabel(e.code)),
      h('time', { datetime: e.created_at, class: 'muted small' }, when(e.created_at))),
    h('p', { class: 'event-msg' }, e.message),
    e.hint ? h('p', { class: 'event-hint' }, h('strong', null, 'What to do: '), e.hint) : null,
    det.length ? h('details', null, h('summary', null, 'Details'),
      h('dl', { class: 'kv small' }, det.map(([k, v]) => [h('dt', null, k.replace(/_/g, ' ')),
        h('dd', { class: 'detail-value', dir: 'auto' }, typeof v === 'string' ? v : JSON.stringify(v))]))) : null);
}

export function callsTable(calls, opts = {}) {
  if (!calls.length) return h('p', { class: 'muted', id: opts.id ? `${opts.id}-empty` : null }, opts.empty || 'No calls yet.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: opts.id },
    h('thead', null, h('tr', null, ['Started', 'Direction', 'From', 'To', 'Status', 'Duration', 'Media'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, calls.map((c) => h('tr', { 'data-id': c.id },
      h('td', { 'data-label': 'Started' }, h('a', { href: `#/calls/${c.id}` }, when(c.created_at))),
      h('td', { 'data-label': 'Direction' }, c.direction),
      h('td', { 'data-label': 'From' }, h('span', { dir: 'ltr' }, c.from)),
      h('td', { 'data-label': 'To' }, h('span', { dir: 'ltr' }, c.to)),
      h('td', { 'data-label': 'Status' }, callStatus(c)),
      h('td', { 'data-label': 'Duration' }, duration(c)),
      h('td', { 'data-label': 'Media' }, `${c.codec || '—'} · ${c.media_encryption === 'srtp' ? 'SRTP' : 'RTP'}`))))));
}

function checkResult(r) {
  const good = r.ok;
  const rows = [
    ['Result', good ? 'Reachable' : (r.reachable ? 'Reachable, but refused' : 'Not reachable')],
    r.step ? ['Failed at', { dns: 'DNS lookup', connect: 'connecting', tls: 'TLS (certificate check)', timeout: 'waiting for an answer', sip: 'the SIP answer', internal: 'the check itself' }[r.step] || r.step] : null,
    r.status ? ['SIP answer', `${r.status} ${r.reason || ''}`] : null,
    r.address ? ['Address tried', h('code', { dir: 'ltr' }, `${r.address} (${transportName(r.transport)})`)] : ['Target', h('code', { dir: 'ltr' }, `${r.target} (${transportName(r.transport)})`)],
    r.rtt_ms !== null && r.rtt_ms !== undefined ? ['Round trip', `${r.rtt_ms} ms`] : null,
    r.detail ? ['Detail', r.detail] : null,
    ['Checked', when(r.checked_at)],
  ];
  return h('div', { class: `notice ${good ? 'notice-good' : 'notice-bad'}`, id: 'check-result', 'data-step': r.step || 'ok' },
    h('p', { class: 'check-msg' }, r.message), kv(rows));
}

// "Place a test call" appears once the server has POST /v1/calls (outbound calls, being
// built). The request below is the expected shape; adjust it to the route's schema.
function testCallDialog(n) {
  const to = field('Call this number', { id: 'test-call-to', name: 'to', path: 'to', dir: 'ltr', placeholder: '+4915112345678',
    hint: `Your agent calls it with ${n.number} as the caller ID.` });
  const out = h('div', { 'aria-live': 'polite' });
  const go = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Call');
  const form = h('form', { novalidate: true }, to.wrap, out, h('div', { class: 'actions' }, go));
  const d = openDialog(`Test call from ${n.number}`, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    go.disabled = true;
    try {
      const c = await api('POST', '/v1/calls', { number_id: n.id, to: to.control.value.trim() });
      d.close(c);
    } catch (e) {
      out.replaceChildren(h('p', { class: 'notice notice-bad', role: 'alert' }, e.message));
    } finally {
      go.disabled = false;
    }
  });
  return d.done;
}

export async function numberPage(main, ctx) {
  const id = ctx.param;
  const [n, agents, evs, calls] = await Promise.all([
    api('GET', `/v1/phone-numbers/${id}`),
    loadAgents(),
    api('GET', `/v1/phone-numbers/${id}/events${qs({ limit: 20 })}`),
    api('GET', `/v1/calls${qs({ number_id: id, limit: 20 })}`),
  ]);
  const admin = can('PUT /v1/phone-numbers/{id}');
  const flash = h('div', { id: 'flash', 'aria-live': 'polite' });
  const pending = takeFlash();
  if (pending) flash.append(pending);

  // actions
  const actions = h('div', { class: 'actions' });
  if (admin) {
    const edit = h('button', { type: 'button', class: 'btn', id: 'edit' }, 'Edit trunk');
    edit.addEventListener('click', async () => {
      const res = await openNumberForm({ mode: 'edit', number: n, agents: [...agents.values()] });
      if (res) {
        setFlash(savedNotice('Trunk configuration saved.', res.warnings));
        ctx.go(`/numbers/${id}`);
      }
    });
    actions.append(edit);
  }
  const checkOut = h('div', { id: 'check-area', 'aria-live': 'polite' });
  if (can('POST /v1/phone-numbers/{id}/check')) {
    const check = h('button', { type: 'button', class: 'btn', id: 'check' }, 'Check trunk');
    check.addEventListener('click', async () => {
      check.disabled = true;
      checkOut.replaceChildren(h('p', { class: 'notice', id: 'check-running' }, `Sending OPTIONS to ${n.outbound_trunk.address} over ${transportName(n.outbound_trunk.transport)}… (at most 10 seconds)`));
      try {
        const r = await api('POST', `/v1/phone-numbers/${id}/check`);
        checkOut.replaceChildren(checkResult(r));
      } catch (e) {
        checkOut.replaceChildren(h('p', { class: 'notice notice-bad', role: 'alert' }, e.message));
      } finally {
        check.disabled = false;
      }
    });
    actions.append(check);
  }
  if (can('POST /v1/calls')) {
    const call = h('button', { type: 'button', class: 'btn', id: 'test-call' }, 'Place a test call');
    call.addEventListener('click', async () => {
      const c = await testCallDialog(n);
      if (c && c.id) ctx.go(`/calls/${c.id}`);
    });
    actions.append(call);
  }
  if (can('DELETE /v1/phone-numbers/{id}') && n.source === 'sip_trunk') {
    const del = h('button', { type: 'button', class: 'btn btn-danger', id: 'delete' }, 'Delete');
    del.addEventListener('click', async () => {
      const ok = await confirmDialog(`Delete ${n.number}?`,
        h('div', null,
          h('p', null, 'Delete ', h('strong', { dir: 'ltr', id: 'confirm-number' }, n.number), n.label ? [' (', userText(n.label), ')'] : null, ' from this workspace?'),
          h('p', null, 'Calls to it will no longer reach an agent, and its trunk configuration is removed. Its call records stay.')),
        `Delete ${n.number}`, { danger: true });
      if (!ok) return;
      try {
        await api('DELETE', `/v1/phone-numbers/${id}`);
        announce(`${n.number} was deleted.`, 'good');
        ctx.go('/numbers');
      } catch (e) {
        announce(e.message, 'bad');
      }
    });
    actions.append(del);
  }

  // agent
  const agentBox = h('section', { class: 'card', 'aria-labelledby': 'agent-h' }, h('h2', { id: 'agent-h' }, 'Agent'),
    h('p', { id: 'current-agent' }, 'Calls to this number go to: ', agentName(agents, n.agent_id)));
  if (can('PATCH /v1/phone-numbers/{id}')) {
    const pick = field(n.agent_id ? 'Reassign to' : 'Assign to', { id: 'assign-agent', kind: 'select',
      options: [...agents.values()].filter((a) => a.id !== n.agent_id).map((a) => ({ value: a.id, label: a.name })) });
    const assign = h('button', { type: 'button', class: 'btn btn-primary', id: 'assign' }, n.agent_id ? 'Reassign' : 'Assign');
    const row = h('div', { class: 'inline-form' }, pick.wrap, assign);
    if (!pick.control.options.length) { pick.control.disabled = true; assign.disabled = true; }
    assign.addEventListener('click', async () => {
      try {
        await api('PATCH', `/v1/phone-numbers/${id}`, { agent_id: pick.control.value });
        announce(`${n.number} now goes to ${pick.control.selectedOptions[0].textContent}.`, 'good');
        ctx.go(`/numbers/${id}`);
      } catch (e) { announce(e.message, 'bad'); }
    });
    agentBox.append(row);
    if (n.agent_id) {
      const un = h('button', { type: 'button', class: 'btn', id: 'unassign' }, 'Unassign');
      un.addEventListener('click', async () => {
        try {
          await api('PATCH', `/v1/phone-numbers/${id}`, { agent_id: null });
          announce(`${n.number} has no agent now: its calls are refused until you assign one.`, 'good');
          ctx.go(`/numbers/${id}`);
        } catch (e) { announce(e.message, 'bad'); }
      });
      row.append(un);
    }
  }

  const evList = evs.data.length
    ? h('ul', { class: 'events', id: 'events' }, evs.data.map(eventItem))
    : h('p', { class: 'muted', id: 'events-empty' }, 'No diagnostic events: nothing went wrong with calls or signalling for this number so far.');

  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/numbers' }, '← Phone numbers')),
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, h('span', { dir: 'ltr', id: 'number-title' }, n.number), n.label ? [' ', userText(n.label, 'title-label')] : null),
      actions),
    flash, checkOut,
    agentBox,
    trunkPanel(n),
    h('section', { class: 'card', 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'Diagnostic events'),
      h('p', { class: 'hint' }, 'What went wrong with calls or signalling for this number, newest first, and what to change.'), evList),
    h('section', { class: 'card', 'aria-labelledby': 'calls-h' }, h('h2', { id: 'calls-h' }, 'Recent calls'),
      callsTable(calls.data, { id: 'number-calls' })));
  if (!admin) main.append(h('p', { class: 'muted', id: 'read-only' }, 'Your token may read only: changes need an admin token.'));
}
