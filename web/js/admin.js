// Tokens (admins: their workspace's; the operator: all) and workspaces (operator only).
// A new token's secret is shown once, in a dialog with a copy button; the server keeps
// only its hash.

import { api, can, isOperator, listAll, session } from './api.js';
import { announce, copyable, field, h, userText } from './dom.js';
import { confirmDialog, openDialog } from './dialog.js';
import { when } from './format.js';

function showSecret(t) {
  const done = h('button', { type: 'button', class: 'btn btn-primary' }, 'I have copied it');
  const body = h('div', { id: 'new-token' },
    h('p', { class: 'notice notice-warn' }, 'Copy this token now: it is shown only this once. Whoever has it acts as ', h('strong', null, t.role), '.'),
    copyable(t.token, 'the new token'),
    h('div', { class: 'actions' }, done));
  const d = openDialog(`Token "${t.name}" created`, body);
  done.addEventListener('click', () => d.close(true));
  return d.done;
}

export async function tokensPage(main, ctx) {
  const op = isOperator();
  const workspaces = op ? await listAll('/v1/workspaces') : [];
  const wsName = new Map(workspaces.map((w) => [w.id, w.name]));
  const tokens = await listAll('/v1/tokens');
  const head = h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'API tokens'));
  const rows = tokens.map((t) => {
    const tr = h('tr', { 'data-id': t.id },
      h('td', { 'data-label': 'Name' }, userText(t.name)),
      h('td', { 'data-label': 'Role' }, t.role),
      op ? h('td', { 'data-label': 'Workspace' }, t.workspace_id ? userText(wsName.get(t.workspace_id) || t.workspace_id) : h('span', { class: 'muted' }, 'all (operator)')) : null,
      h('td', { 'data-label': 'Starts with' }, h('code', { dir: 'ltr' }, `${t.prefix}…`)),
      h('td', { 'data-label': 'Created' }, when(t.created_at)));
    const self = session.me.token.id === t.id;
    const rv = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Revoke token ${t.name}`, disabled: self,
      title: self ? 'This is the token you are signed in with' : null }, self ? 'In use' : 'Revoke');
    rv.addEventListener('click', async () => {
      const ok = await confirmDialog(`Revoke "${t.name}"?`, h('p', null, 'Anything using this token (', h('code', null, `${t.prefix}…`), ') stops working at once.'), 'Revoke token', { danger: true });
      if (!ok) return;
      try {
        await api('DELETE', `/v1/tokens/${t.id}`);
        announce(`Token "${t.name}" was revoked.`, 'good');
        ctx.go('/tokens');
      } catch (e) { announce(e.message, 'bad'); }
    });
    tr.append(h('td', { 'data-label': '' }, rv));
    return tr;
  });

  const name = field('Name', { id: 'token-name', name: 'name', path: 'name', placeholder: 'CI deploys', dir: 'auto' });
  const roles = [{ value: 'member', label: 'member — reads' }, { value: 'admin', label: 'admin — reads and changes' }];
  if (op) roles.push({ value: 'operator', label: 'operator — every workspace' });
  const role = field('Role', { id: 'token-role', kind: 'select', name: 'role', path: 'role', options: roles });
  const ws = op ? field('Workspace', { id: 'token-ws', kind: 'select', name: 'workspace_id', path: 'workspace_id',
    options: workspaces.map((w) => ({ value: w.id, label: w.name })) }) : null;
  if (ws) {
    ws.control.value = session.workspace || '';
    role.control.addEventListener('change', () => { ws.wrap.hidden = role.control.value === 'operator'; });
  }
  const err = h('p', { class: 'notice notice-bad', role: 'alert', hidden: true });
  const create = h('button', { type: 'submit', class: 'btn btn-primary', id: 'token-create' }, 'Create token');
  const form = h('form', { class: 'card', novalidate: true }, h('h2', null, 'New token'),
    h('div', { class: 'grid3' }, name.wrap, role.wrap, ws ? ws.wrap : null), err, h('div', { class: 'actions' }, create));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const b = { name: name.control.value.trim(), role: role.control.value };
    if (ws && b.role !== 'operator') b.workspace_id = ws.control.value;
    try {
      const t = await api('POST', '/v1/tokens', b);
      await showSecret(t);
      ctx.go('/tokens');
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });

  main.append(head,
    h('p', { class: 'hint' }, 'Tokens let scripts, the CLI and this console use the API. Revoking one ends its access at once.'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'tokens' },
      h('thead', null, h('tr', null, ['Name', 'Role', op ? 'Workspace' : null, 'Starts with', 'Created', h('span', { class: 'offscreen' }, 'Actions')]
        .filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows))),
    can('POST /v1/tokens') ? form : null);
}

export async function workspacesPage(main, ctx) {
  const list = await listAll('/v1/workspaces');
  const plans = ['free', 'starter', 'professional', 'enterprise'];
  const name = field('Name', { id: 'ws-name', name: 'name', path: 'name', dir: 'auto' });
  const plan = field('Plan', { id: 'ws-plan', kind: 'select', name: 'plan', path: 'plan', options: plans.map((p) => ({ value: p, label: p })),
    hint: 'Importing SIP numbers needs professional or higher.' });
  plan.control.value = 'professional';
  const region = field('Region', { id: 'ws-region', name: 'region', path: 'region', value: 'eu' });
  const err = h('p', { class: 'notice notice-bad', role: 'alert', hidden: true });
  const form = h('form', { class: 'card', novalidate: true }, h('h2', null, 'New workspace'),
    h('div', { class: 'grid3' }, name.wrap, plan.wrap, region.wrap), err,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary', id: 'ws-create' }, 'Create workspace')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const w = await api('POST', '/v1/workspaces', { name: name.control.value.trim(), plan: plan.control.value, region: region.control.value.trim() });
      announce(`Workspace "${w.name}" was created with the echo agent. Create an admin token for it under Tokens.`, 'good');
      const { refreshWorkspaces } = await import('../app.js');
      await refreshWorkspaces();
      ctx.go('/workspaces');
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  main.append(h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Workspaces')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'workspaces' },
      h('thead', null, h('tr', null, ['Name', 'Plan', 'Region', 'Created', 'Id'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, list.map((w) => h('tr', { 'data-id': w.id },
        h('td', { 'data-label': 'Name' }, userText(w.name)), h('td', { 'data-label': 'Plan' }, w.plan),
        h('td', { 'data-label': 'Region' }, w.region), h('td', { 'data-label': 'Created' }, when(w.created_at)),
        h('td', { 'data-label': 'Id' }, h('code', null, w.id))))))),
    form);
}
