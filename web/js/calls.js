// Calls: the call log (newest first, paged by the server) and one call's record.

import { api, qs } from './api.js';
import { h } from './dom.js';
import { callStatus, duration, when } from './format.js';
import { callsTable } from './number.js';

export async function callsPage(main) {
  const state = { cursors: [null], page: 0, next: null };
  const box = h('div', { id: 'calls-box' });
  const prev = h('button', { type: 'button', class: 'btn', disabled: true }, '← Newer');
  const next = h('button', { type: 'button', class: 'btn', disabled: true }, 'Older →');
  async function load() {
    const page = await api('GET', `/v1/calls${qs({ limit: 50, cursor: state.cursors[state.page] })}`);
    box.replaceChildren(callsTable(page.data, { id: 'calls', empty: 'No calls yet. Calls appear here as they start.' }));
    state.next = page.next_cursor;
    prev.disabled = state.page === 0;
    next.disabled = !page.next_cursor;
  }
  next.addEventListener('click', () => { state.cursors[state.page + 1] = state.next; state.page += 1; load(); });
  prev.addEventListener('click', () => { state.page -= 1; load(); });
  main.append(h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Calls')), box,
    h('div', { class: 'pager' }, h('span'), h('div', { class: 'actions' }, prev, next)));
  await load();
}

export async function callPage(main, ctx) {
  const c = await api('GET', `/v1/calls/${ctx.param}`);
  const rtp = c.rtp || {};
  const rows = [
    ['Direction', c.direction],
    ['Number', c.number_id ? h('a', { href: `#/numbers/${c.number_id}`, dir: 'ltr' }, c.number) : h('span', { dir: 'ltr' }, c.number)],
    ['From', h('span', { dir: 'ltr' }, c.from)],
    ['To', h('span', { dir: 'ltr' }, c.to)],
    ['Status', callStatus(c)],
    ['End reason', c.end_reason || '—'],
    ['Final SIP status', c.final_status === null ? '—'
      : `${c.final_status}${c.sip_reason ? ` ${c.sip_reason}` : ''}`],
    ...(c.hint ? [['What to change', c.hint]] : []),
    ['Started', when(c.created_at)],
    ['Answered', when(c.answered_at)],
    ['Ended', when(c.ended_at)],
    ['Duration', duration(c)],
    ['Codec', c.codec || '—'],
    ['Media encryption', c.media_encryption === 'srtp' ? 'SRTP' : 'none (RTP)'],
    ['Agent', c.agent_id ? h('a', { href: `#/agents/${c.agent_id}` }, c.agent_id) : '—'],
    ['SIP Call-ID', h('code', { dir: 'ltr' }, c.sip_call_id)],
  ];
  const stats = [
    ['Packets sent', rtp.packets_sent], ['Packets received', rtp.packets_received],
    ['Packets lost', rtp.packets_lost], ['Jitter', rtp.jitter_ms === undefined ? '—' : `${rtp.jitter_ms} ms`],
  ];
  const kv = (pairs, id) => h('dl', { class: 'kv', id }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v === undefined || v === null ? '—' : v)]));
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/calls' }, '← Calls')),
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Call ', h('span', { dir: 'ltr' }, c.from), ' → ', h('span', { dir: 'ltr' }, c.to))),
    h('div', { class: 'cards2' },
      h('section', { class: 'card', 'aria-labelledby': 'call-h' }, h('h2', { id: 'call-h' }, 'Call'), kv(rows, 'call-fields')),
      h('section', { class: 'card', 'aria-labelledby': 'rtp-h' }, h('h2', { id: 'rtp-h' }, 'Media (RTP)'), kv(stats.map(([k, v]) => [k, v === undefined ? '—' : String(v)]), 'rtp-stats'))));
}
