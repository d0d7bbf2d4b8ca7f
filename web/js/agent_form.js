// The agent dialog: creates (POST /v1/agents) and edits (PATCH /v1/agents/{id}) agents of
// kind websocket and twiml, built like the number dialog (js/number_form.js): labelled
// fields with data-path, the API's errors shown at the field they name, warnings passed on
// to the saved notice.
//
// Header values are write-only: the API answers {name, value_set: true}. An edit shows the
// stored names with empty value inputs; a header sent without a value keeps the stored one
// (matched by name) unless the URL now leads to another host, port or scheme — then the
// API drops it and warns (header_values_dropped).

import { api } from './api.js';
import { field, h } from './dom.js';
import { openDialog } from './dialog.js';
import { formErrors, rowList } from './form.js';

// A whole number of milliseconds, or what was typed (the API's error then explains it),
// or undefined when empty.
function millis(input) {
  const v = input.value.trim();
  if (!v) return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

function websocketFields(a, edit) {
  const url = field('URL', { id: 'agent-url', name: 'url', path: 'url', required: true, dir: 'ltr', placeholder: 'wss://bot.example.com/media',
    hint: 'The bot\'s WebSocket: wss:// (ws:// only for hosts the operator allows). Its host must be reachable on the public internet; it is checked now and before every call.' });
  const timeout = field('Connect timeout (ms)', { id: 'agent-connect-timeout', name: 'connect_timeout_ms', path: 'connect_timeout_ms', inputmode: 'numeric', dir: 'ltr',
    placeholder: '5000', hint: 'How long the call rings while the agent connects: 100 to 30000. Empty: 5000.' });
  const params = rowList({ base: 'parameters', kind: 'param', addLabel: 'Add parameter', legend: 'Parameters',
    hint: 'Sent to the bot in start.customParameters.' });
  const headers = rowList({ base: 'headers', kind: 'header', addLabel: 'Add header', legend: 'Headers', secret: true,
    keepHint: 'stored — leave empty to keep', placeholders: { name: 'Authorization', value: 'Bearer …' },
    hint: edit
      ? 'Sent on the WebSocket upgrade. Values are write-only and never shown: leave a stored value empty to keep it, type one to replace it. Changing the URL\'s host, port or scheme drops stored values unless you type them again.'
      : 'Sent on the WebSocket upgrade, e.g. Authorization for the bot\'s own check. Values are write-only: after saving they are never shown again.' });
  url.control.value = a.url || '';
  timeout.control.value = edit && a.connect_timeout_ms ? String(a.connect_timeout_ms) : '';
  params.set(Object.entries(a.parameters || {}).map(([name, value]) => ({ name, value })));
  headers.set(a.headers);

  return {
    nodes: [url.wrap, timeout.wrap, params.el, headers.el],
    // client-side: what the API would accept but not do as meant; false when shown
    check(errors) {
      const seen = new Map();
      for (const [i, r] of params.rows().entries()) {
        const k = r.inputs.name.value.trim();
        if (k && seen.has(k)) {
          errors.at(r.inputs.name, `Parameter ${seen.get(k) + 1} has this name already: each name once.`);
          return false;
        }
        seen.set(k, i);
      }
      for (const r of headers.rows()) {
        const name = r.inputs.name.value.trim().toLowerCase();
        if (edit && !r.inputs.value.value && name && (!r.stored || r.stored.toLowerCase() !== name)) {
          errors.at(r.inputs.value, r.stored
            ? 'Type the value: a renamed header does not keep the stored one.'
            : 'Type the value of this header.');
          return false;
        }
      }
      return true;
    },
    body() {
      const b = {
        url: url.control.value.trim(),
        parameters: Object.fromEntries(params.get().map((p) => [p.name, p.value])),
        // an empty value on an edit keeps the stored one: it is left out
        headers: headers.get().map((x) => (x.value || !edit ? x : { name: x.name })),
      };
      const t = millis(timeout.control);
      if (t !== undefined) b.connect_timeout_ms = t;
      else if (edit) b.connect_timeout_ms = null; // back to the default
      return b;
    },
  };
}

function twimlFields(a, edit) {
  const note = h('div', { class: 'notice', id: 'twiml-hint' },
    h('p', null, 'Give the voice URL the bot gave Twilio: trunkline requests it for each call as Twilio does, and runs the TwiML it answers (usually a <Connect><Stream> to the bot\'s WebSocket).'),
    h('p', null, 'If the bot checks X-Twilio-Signature, issue Twilio credentials under ', h('strong', null, 'Twilio credentials'),
      ' on the Agents page and give the bot that AccountSid and auth token: our requests are then signed with it.'));
  const voice = field('Voice URL', { id: 'agent-voice-url', name: 'voice_url', path: 'voice_url', required: true, dir: 'ltr', placeholder: 'https://bot.example.com/voice',
    hint: 'https:// (http:// only for hosts the operator allows). Checked now and before every call.' });
  const method = field('Method', { id: 'agent-method', kind: 'select', name: 'method', path: 'method',
    options: [{ value: 'POST', label: 'POST (as at Twilio)' }, { value: 'GET', label: 'GET' }] });
  const fallback = field('Fallback URL', { id: 'agent-fallback-url', name: 'fallback_url', path: 'fallback_url', dir: 'ltr', placeholder: 'https://backup.example.com/voice',
    hint: 'Optional: requested when the voice URL fails (no answer, not 2xx, not TwiML we can run).' });
  const status = field('Status callback', { id: 'agent-status-callback', name: 'status_callback', path: 'status_callback', dir: 'ltr', placeholder: 'https://bot.example.com/status',
    hint: 'Optional: POSTed when the call ends.' });
  const timeout = field('Timeout (ms)', { id: 'agent-timeout', name: 'timeout_ms', path: 'timeout_ms', inputmode: 'numeric', dir: 'ltr', placeholder: '5000',
    hint: 'Each voice URL request\'s deadline and the stream\'s connect deadline: 100 to 30000. Empty: 5000. The caller hears ringing meanwhile.' });
  voice.control.value = a.voice_url || '';
  method.control.value = a.method || 'POST';
  fallback.control.value = a.fallback_url || '';
  status.control.value = a.status_callback || '';
  timeout.control.value = edit && a.timeout_ms ? String(a.timeout_ms) : '';

  return {
    nodes: [note, voice.wrap, h('div', { class: 'grid2' }, method.wrap, timeout.wrap), fallback.wrap, status.wrap],
    check: () => true,
    body() {
      const b = {
        voice_url: voice.control.value.trim(),
        method: method.control.value,
        // empty: none (null clears a stored one)
        fallback_url: fallback.control.value.trim() || null,
        status_callback: status.control.value.trim() || null,
      };
      const t = millis(timeout.control);
      if (t !== undefined) b.timeout_ms = t;
      else if (edit) b.timeout_ms = null;
      return b;
    },
  };
}

const FORMS = { websocket: ['WebSocket', websocketFields], twiml: ['TwiML', twimlFields] };

// kind: 'websocket' | 'twiml'; agent: the stored agent to edit, or null to create one.
// Resolves { agent, warnings } when saved, else undefined.
export function openAgentForm(kind, agent) {
  const edit = Boolean(agent);
  const a = agent || {};
  const [kindName, build] = FORMS[kind];
  const name = field('Name', { id: 'agent-name', name: 'name', path: 'name', required: true, dir: 'auto', placeholder: 'sales-bot' });
  name.control.value = a.name || '';
  const f = build(a, edit);

  const formErr = h('div', { class: 'notice notice-bad', role: 'alert', id: 'agent-form-error', hidden: true });
  const label = edit ? 'Save changes' : 'Create agent';
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'agent-save' }, label);
  const cancel = h('button', { type: 'button', class: 'btn', id: 'agent-cancel' }, 'Cancel');
  const form = h('form', { class: 'agent-form', novalidate: true, id: 'agent-form', 'data-kind': kind },
    name.wrap, f.nodes, formErr,
    h('div', { class: 'actions actions-sticky' }, cancel, submit));
  const errors = formErrors(form, formErr);

  const title = edit ? `Edit agent ${a.name}` : `New ${kindName} agent`;
  const d = openDialog(title, form, { initialFocus: name.control });
  cancel.addEventListener('click', () => d.close(undefined));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errors.clear();
    if (!f.check(errors)) return;
    const body = { name: name.control.value.trim(), ...f.body() };
    submit.disabled = true;
    submit.textContent = edit ? 'Saving…' : 'Creating…';
    try {
      const saved = edit
        ? await api('PATCH', `/v1/agents/${a.id}`, body)
        : await api('POST', '/v1/agents', { kind, ...body });
      d.close({ agent: saved, warnings: saved.warnings || [] });
    } catch (e) {
      if (e.status === 401) { d.close(undefined); return; }
      errors.show(e);
    } finally {
      submit.disabled = false;
      submit.textContent = label;
    }
  });
  return d.done;
}
