// trunkline console: sign-in, the page frame and the router (#/numbers, #/numbers/pn_…, …).
// Pages live in js/*.js; each renders into <main> and may return a cleanup function.

import { api, can, isOperator, listAll, rememberWorkspace, savedToken, savedWorkspace, session, setToken, signOut } from './js/api.js';
import { announce, clear, field, h, pageChanged, userText } from './js/dom.js';
import { numbersPage } from './js/numbers.js';
import { numberPage } from './js/number.js';
import { agentsPage, agentPage } from './js/agents.js';
import { callsPage, callPage } from './js/calls.js';
import { tokensPage, workspacesPage } from './js/admin.js';

performance.mark('app-start'); // every module loaded and run: what the page costs to start
const main = document.getElementById('main');
let cleanup = null;

const ROUTES = [
  [/^\/numbers$/, numbersPage],
  [/^\/numbers\/(pn_[0-9a-z]{26})$/, numberPage],
  [/^\/agents$/, agentsPage],
  [/^\/agents\/(ag_[0-9a-z]{26})$/, agentPage],
  [/^\/calls$/, callsPage],
  [/^\/calls\/(ca_[0-9a-z]{26})$/, callPage],
  [/^\/tokens$/, tokensPage],
  [/^\/workspaces$/, workspacesPage],
];

export function go(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = path;
}

function currentPath() {
  const p = location.hash.replace(/^#/, '');
  return p || '/numbers';
}

function navItems() {
  const items = [['/numbers', 'Phone numbers'], ['/agents', 'Agents'], ['/calls', 'Calls']];
  if (can('GET /v1/tokens')) items.push(['/tokens', 'Tokens']);
  if (can('POST /v1/workspaces')) items.push(['/workspaces', 'Workspaces']);
  return items;
}

function renderFrame() {
  const top = document.getElementById('top');
  const nav = clear(document.getElementById('nav'));
  const path = currentPath();
  const ul = h('ul');
  for (const [href, label] of navItems()) {
    const a = h('a', { href: `#${href}` }, label);
    if (path === href || path.startsWith(`${href}/`)) a.setAttribute('aria-current', 'page');
    ul.append(h('li', null, a));
  }
  nav.append(ul);
  const who = clear(document.getElementById('who'));
  const me = session.me;
  const role = h('span', { class: `role role-${me.role}`, id: 'role' }, me.role);
  who.append(h('span', { class: 'who-name' }, userText(me.token.name || me.token.prefix), ' ', role));
  if (isOperator()) who.append(workspacePicker());
  else if (me.workspace) who.append(h('span', { class: 'who-ws' }, userText(me.workspace.name)));
  const out = h('button', { type: 'button', class: 'btn btn-small', id: 'signout' }, 'Sign out');
  out.addEventListener('click', () => {
    signOut();
    location.hash = '';
    showSignIn('Signed out.');
  });
  who.append(out);
  top.hidden = false;
}

let workspaces = [];
function workspacePicker() {
  const f = field('Workspace', { kind: 'select', class: 'ws-pick',
    options: workspaces.map((w) => ({ value: w.id, label: w.name })) });
  f.control.value = session.workspace || '';
  f.control.addEventListener('change', () => {
    rememberWorkspace(f.control.value);
    announce(`Now acting on workspace ${f.control.selectedOptions[0].textContent}.`);
    route();
  });
  return f.wrap;
}

async function loadWorkspaces() {
  workspaces = await listAll('/v1/workspaces');
  const saved = savedWorkspace();
  const pick = workspaces.find((w) => w.id === saved) || workspaces[0];
  if (pick) rememberWorkspace(pick.id);
}

export async function refreshWorkspaces() {
  await loadWorkspaces();
  renderFrame();
}

async function route() {
  if (!session.me) return;
  if (cleanup) { try { cleanup(); } catch (e) { /* */ } cleanup = null; }
  renderFrame();
  pageChanged();
  const path = currentPath();
  clear(main);
  for (const [re, page] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    try {
      cleanup = await page(main, { go, param: m[1] }) || null;
    } catch (e) {
      if (e && e.status === 401) return;
      clear(main).append(h('h1', null, 'Something went wrong'),
        h('p', { class: 'notice notice-bad', role: 'alert' }, e.status === 404 ? 'Not found: it may have been deleted, or it belongs to another workspace.' : e.message));
    }
    return;
  }
  main.append(h('h1', null, 'Not found'), h('p', null, h('a', { href: '#/numbers' }, 'Go to the phone numbers')));
}

function showSignIn(message, isError) {
  if (cleanup) { try { cleanup(); } catch (e) { /* */ } cleanup = null; }
  document.getElementById('top').hidden = true;
  clear(main);
  const tok = field('API token', { id: 'token', type: 'password', name: 'token', autocomplete: 'off', placeholder: 'tlk_…',
    hint: 'Paste a token printed by `trunkline serve` on first start, or one created under Tokens. It is kept in this tab only and sent as a Bearer header.' });
  const remember = h('input', { type: 'checkbox', id: 'remember', checked: true });
  const err = h('p', { class: 'notice notice-bad', role: 'alert', hidden: true, id: 'signin-error' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'signin' }, 'Sign in');
  const form = h('form', { class: 'signin card', novalidate: true },
    h('h1', null, 'Sign in to trunkline'),
    tok.wrap,
    h('div', { class: 'check' }, remember, h('label', { for: 'remember' }, 'Stay signed in while this tab is open')),
    err, h('div', { class: 'actions' }, submit));
  if (message) {
    err.textContent = message;
    err.hidden = false;
    err.className = isError ? 'notice notice-bad' : 'notice';
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = tok.control.value.trim();
    if (!t) {
      err.textContent = 'Paste your API token first.';
      err.className = 'notice notice-bad';
      err.hidden = false;
      tok.control.focus();
      return;
    }
    submit.disabled = true;
    const ok = await signIn(t, remember.checked);
    submit.disabled = false;
    if (!ok) {
      err.textContent = 'This token is not valid (it may have been revoked). Check it and try again.';
      err.className = 'notice notice-bad';
      err.hidden = false;
      tok.control.select();
    }
  });
  main.append(form);
  tok.control.focus();
}

async function signIn(token, remember) {
  setToken(token, remember);
  try {
    session.me = await api('GET', '/v1/me', undefined, { onUnauthorized: false });
  } catch (e) {
    signOut();
    return false;
  }
  session.routes = new Set(session.me.routes);
  performance.mark('signed-in');
  if (session.me.role === 'operator') await loadWorkspaces();
  else session.workspace = session.me.workspace.id;
  document.documentElement.dataset.role = session.me.role;
  if (!location.hash || location.hash === '#') location.hash = '/numbers';
  else route();
  return true;
}

api.onUnauthorized = () => {
  signOut();
  showSignIn('Your token is no longer valid. Sign in again.', true);
};

window.addEventListener('hashchange', route);

async function start() {
  const t = savedToken();
  if (t && await signIn(t, true)) return;
  showSignIn();
}

start();
