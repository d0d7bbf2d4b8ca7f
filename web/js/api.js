// The REST API client and the session. The token lives in memory and, if the person asks,
// in this tab's sessionStorage (gone when the tab closes). It is sent as a Bearer header:
// no cookie exists, so no other site can make the browser send it (no CSRF).

const KEY = 'trunkline.token';
const WS_KEY = 'trunkline.workspace';

export const session = {
  token: null,
  me: null, // GET /v1/me
  workspace: null, // the workspace acted on: the token's, or the operator's choice
  routes: new Set(),
};

export function savedToken() {
  try { return sessionStorage.getItem(KEY); } catch (e) { return null; }
}

export function setToken(token, remember) {
  session.token = token;
  try {
    if (remember) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch (e) { /* storage off: memory only */ }
}

export function signOut() {
  session.token = null;
  session.me = null;
  session.workspace = null;
  session.routes = new Set();
  try { sessionStorage.removeItem(KEY); sessionStorage.removeItem(WS_KEY); } catch (e) { /* */ }
}

export function rememberWorkspace(id) {
  session.workspace = id;
  try { sessionStorage.setItem(WS_KEY, id); } catch (e) { /* */ }
}

export function savedWorkspace() {
  try { return sessionStorage.getItem(WS_KEY); } catch (e) { return null; }
}

export function isOperator() {
  return session.me && session.me.role === 'operator';
}

// Whether this token may call a route ("POST /v1/phone-numbers"): the server says so in
// /v1/me, so a feature appears once the server has its route, for the roles it allows.
export function can(route) {
  return session.routes.has(route);
}

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_error';
    this.field = e.field || '';
  }
}

// Paths of workspace-owned objects get ?workspace_id= for an operator token.
const SCOPED = /^\/v1\/(agents|phone-numbers|calls|twilio-account)(\/|$|\?)/;

export async function api(method, path, body, opts = {}) {
  let url = path;
  if (isOperator() && session.workspace && SCOPED.test(path)) {
    url += (url.includes('?') ? '&' : '?') + 'workspace_id=' + encodeURIComponent(session.workspace);
  }
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  const init = { method, headers, signal: opts.signal, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && opts.onUnauthorized !== false && api.onUnauthorized) api.onUnauthorized(err);
    throw err;
  }
  return data;
}
api.onUnauthorized = null;

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, v);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

// Every page of a list (agents for a picker: few).
export async function listAll(path, max = 1000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
