// The "Import number → From SIP trunk" dialog, which is also the edit form (PUT: it replaces
// the trunk configuration and keeps the agent). Every field of the import seed, the provider
// guidance beside them, and the API's own errors shown at the field they name: each control
// carries data-path, the JSON path the API uses in error.field
// ("outbound_trunk.headers[2].name").

import { api } from './api.js';
import { append, copyable, field, h } from './dom.js';
import { openDialog } from './dialog.js';
import { formErrors, rowList } from './form.js';
import { fill, PROVIDERS, REGISTRATION_ONLY, REGISTRATION_ONLY_WAYS, REGISTRATION_ONLY_WHY } from './providers.js';

const TRANSPORTS_OUT = [{ value: 'tls', label: 'TLS (recommended)' }, { value: 'tcp', label: 'TCP' }, { value: 'udp', label: 'UDP' }];
const TRANSPORTS_IN = [{ value: 'tls', label: 'TLS (recommended)' }, { value: 'tcp', label: 'TCP' }];
const MEDIA = [{ value: 'required', label: 'Required (SRTP)' }, { value: 'allowed', label: 'Allowed' }, { value: 'disabled', label: 'Disabled' }];

let endpointsCache = null;
export async function loadEndpoints() {
  if (!endpointsCache) endpointsCache = await api('GET', '/v1/sip/endpoints');
  return endpointsCache;
}

function guidanceList(items, vars) {
  return h('ol', { class: 'steps' }, items.map((t) => h('li', null, fill(t, vars))));
}

function guidance(provider, ep, number) {
  const box = h('div', { class: 'guide' });
  const vars = { host: ep.public_host, tls: ep.tls, tcp: ep.tcp, number: number || '+<your number>' };
  const reg = REGISTRATION_ONLY.find((p) => p.id === provider);
  if (reg) {
    append(box, h('div', { class: 'notice notice-bad', id: 'registration-only', role: 'note' },
      h('h3', null, `${reg.name} cannot send calls to a SIP trunk`),
      REGISTRATION_ONLY_WHY.map((t) => h('p', null, t)),
      h('h4', null, 'What works instead'),
      h('ul', null, REGISTRATION_ONLY_WAYS.map((t) => h('li', null, t)))));
    return box;
  }
  const p = PROVIDERS.find((x) => x.id === provider) || PROVIDERS[PROVIDERS.length - 1];
  append(box,
    h('h3', null, `At ${p.name}`),
    h('h4', null, 'Calls from your agents (outbound)'),
    guidanceList(p.outbound, vars),
    h('h4', null, 'Calls to your number (inbound)'),
    guidanceList(p.inbound, vars),
    h('h4', null, 'SIP URIs to give the provider'),
    h('p', { class: 'hint' }, 'Copy one exactly, including ;transport=…: the transport must match the inbound trunk below. UDP is not accepted for inbound calls.'),
    h('dl', { class: 'kv' },
      h('dt', null, 'TLS (recommended)'), h('dd', null, copyable(ep.tls, 'the TLS SIP URI')),
      h('dt', null, 'TCP'), h('dd', null, copyable(ep.tcp, 'the TCP SIP URI'))),
    h('h4', null, 'Number format'),
    h('p', null, 'Enter the number in E.164: a + then the country code and the number, without spaces or a leading 0 (030 12345678 in Germany is +493012345678). Ask the provider to send it the same way; the number without the + is recognised too.'));
  if (p.ipAuth) {
    const eg = ep.egress_addresses || [];
    append(box, h('h4', null, 'If the provider authenticates by IP address'),
      eg.length
        ? [h('p', null, 'Allow these addresses at the provider; calls from this gateway come from them:'),
          h('ul', { class: 'plain' }, eg.map((a) => h('li', null, copyable(a, `egress address ${a}`))))]
        : h('p', null, 'This gateway does not know its public address (the operator sets public_ip). Allow the public IPv4 address of this host at the provider.'));
  }
  const recs = ep.dns_records || [];
  if (recs.length) {
    append(box, h('h4', null, `DNS records for ${ep.public_host}`),
      h('p', { class: 'hint' }, p.srv
        ? 'This provider looks the host up with SRV records: publish all of these.'
        : 'The A record is needed; the SRV records help providers that look up SRV (Telnyx does).'),
      h('table', { class: 'table dns' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))),
        h('tbody', null, recs.map((r) => h('tr', null,
          h('td', { 'data-label': 'Type' }, r.type),
          h('td', { 'data-label': 'Name' }, h('code', { dir: 'ltr' }, r.name)),
          h('td', { 'data-label': 'Value' }, r.value ? copyable(r.value, `${r.type} record of ${r.name}`)
            : h('span', { class: 'muted' }, 'this host\'s public IP address')))))));
  }
  return box;
}

// opts: { mode: 'import'|'edit', number (edit: the stored number), agents: [..],
// agentId (import: preselected) }. Resolves { number, warnings } when saved, else undefined.
export async function openNumberForm(opts) {
  const edit = opts.mode === 'edit';
  const n = opts.number || {};
  const ob = n.outbound_trunk || {};
  const ib = n.inbound_trunk || null;
  const ep = await loadEndpoints();

  const providerSel = field('Provider', { id: 'provider', kind: 'select', name: 'provider', options: [] });
  const sup = h('optgroup', { label: 'Static SIP trunks (supported)' }, PROVIDERS.map((p) => h('option', { value: p.id }, p.name)));
  const unsup = h('optgroup', { label: 'Registration only (not supported)' }, REGISTRATION_ONLY.map((p) => h('option', { value: p.id }, p.name)));
  providerSel.control.append(sup, unsup);
  providerSel.control.value = 'other';

  const number = field('Phone number', { id: 'number', name: 'number', path: 'number', required: !edit, inputmode: 'tel', dir: 'ltr',
    placeholder: '+493012345678', hint: 'E.164: + then 1 to 15 digits. It is the caller ID of outbound calls and must be authorised by the provider.' });
  const label = field('Label', { id: 'label', name: 'label', path: 'label', placeholder: 'Berlin office', dir: 'auto' });

  // outbound
  const oAddr = field('Address', { id: 'o-address', name: 'o-address', path: 'outbound_trunk.address', required: true, dir: 'ltr',
    placeholder: 'sip.telnyx.com', hint: 'Host name or IP address only: no sip:, no port, no path — nothing with : / ; or @. sip.telnyx.com is right; sip:sip.telnyx.com:5060 is not.' });
  const oTp = field('Transport', { id: 'o-transport', kind: 'select', name: 'o-transport', path: 'outbound_trunk.transport', options: TRANSPORTS_OUT });
  const oMedia = field('Media encryption', { id: 'o-media', kind: 'select', name: 'o-media', path: 'outbound_trunk.media_encryption', options: MEDIA,
    hint: 'Required (SRTP) goes with TLS; over UDP or TCP the keys would travel readable.' });
  const oUser = field('Username', { id: 'o-username', name: 'o-username', path: 'outbound_trunk.username', dir: 'ltr', hint: 'Digest username from the provider; leave empty when it authenticates this gateway by IP.' });
  const oPass = field('Password', { id: 'o-password', type: 'password', name: 'o-password', path: 'outbound_trunk.password', autocomplete: 'new-password',
    hint: edit && ob.has_password ? 'A password is stored. Leave empty to keep it (with the same username and address: a new address needs it again); type a new one to replace it.' : 'Needed with a username. Most providers show it only once.' });
  const oHdrs = rowList({ base: 'outbound_trunk.headers', kind: 'header', addLabel: 'Add header', legend: 'Custom SIP headers (outbound)' });

  // inbound
  const inOn = h('input', { type: 'checkbox', id: 'inbound-on' });
  const iTp = field('Transport', { id: 'i-transport', kind: 'select', name: 'i-transport', path: 'inbound_trunk.transport', options: TRANSPORTS_IN,
    hint: 'Must match the URI given to the provider (…;transport=tls or …;transport=tcp).' });
  const iMedia = field('Media encryption', { id: 'i-media', kind: 'select', name: 'i-media', path: 'inbound_trunk.media_encryption', options: MEDIA });
  const iUser = field('Username', { id: 'i-username', name: 'i-username', path: 'inbound_trunk.username', dir: 'ltr', hint: 'Optional: the provider then authenticates to this gateway with digest.' });
  const iPass = field('Password', { id: 'i-password', type: 'password', name: 'i-password', path: 'inbound_trunk.password', autocomplete: 'new-password',
    hint: edit && ib && ib.has_password ? 'A password is stored. Leave empty to keep it.' : null });
  const iAllowed = rowList({ base: 'inbound_trunk.allowed_addresses', kind: 'address', addLabel: 'Add address', legend: 'Allowed source addresses' });
  // Neither addresses nor a password: anyone could reach the agent, so the API refuses it
  // unless this is ticked (allow_any_source).
  const iAny = h('input', { type: 'checkbox', id: 'i-any-source', 'data-path': 'inbound_trunk.allow_any_source' });
  const iAnyWrap = h('div', { class: 'check' }, iAny,
    h('label', { for: 'i-any-source' }, 'Accept calls from any address, without allowed addresses or a password (anyone who reaches this gateway can call your agent)'));
  const iOrig = field('Origination URL', { id: 'i-origination', name: 'i-origination', path: 'inbound_trunk.origination_url', dir: 'ltr', placeholder: 'sip:…',
    hint: 'Optional: a sip: or sips: URI of yours (a PBX) that inbound calls go to when the number has no agent or its agent cannot be reached; the gateway stays in the call.' });
  const iHdrs = rowList({ base: 'inbound_trunk.headers', kind: 'header', addLabel: 'Add header', legend: 'Custom SIP headers (inbound)' });
  const inboundBody = h('div', { class: 'inbound-body', id: 'inbound-body' },
    h('div', { class: 'grid2' }, iTp.wrap, iMedia.wrap), iAllowed.el, h('div', { class: 'grid2' }, iUser.wrap, iPass.wrap), iAnyWrap, iOrig.wrap, iHdrs.el);

  // agent (import only: an edit keeps the agent; it is changed on the number's page)
  let agentSel = null;
  if (!edit) {
    agentSel = field('Assign to agent', { id: 'agent', kind: 'select', name: 'agent', path: 'agent_id',
      options: [{ value: '', label: 'None (assign later)' }].concat((opts.agents || []).map((a) => ({ value: a.id, label: a.name }))) });
    agentSel.control.value = opts.agentId || '';
  }

  // values
  number.control.value = n.number || '';
  if (edit) number.control.disabled = true;
  label.control.value = n.label || '';
  oAddr.control.value = ob.address || '';
  oTp.control.value = ob.transport || 'tls';
  oMedia.control.value = ob.media_encryption || 'required';
  oUser.control.value = ob.username || '';
  oHdrs.set(ob.headers);
  inOn.checked = edit ? Boolean(ib) : true;
  iTp.control.value = (ib && ib.transport) || 'tls';
  iMedia.control.value = (ib && ib.media_encryption) || 'required';
  iUser.control.value = (ib && ib.username) || '';
  iAllowed.set(ib && ib.allowed_addresses);
  iAny.checked = Boolean(ib && ib.allow_any_source);
  iOrig.control.value = (ib && ib.origination_url) || '';
  iHdrs.set(ib && ib.headers);
  inboundBody.hidden = !inOn.checked;
  inOn.addEventListener('change', () => { inboundBody.hidden = !inOn.checked; });

  const guideBox = h('div', { class: 'guide-wrap', 'aria-live': 'polite' });
  const fieldsets = h('div', { class: 'form-fields' },
    h('fieldset', { class: 'section' }, h('legend', null, 'Number'), h('div', { class: 'grid2' }, number.wrap, label.wrap)),
    h('fieldset', { class: 'section' }, h('legend', null, 'Outbound trunk (required)'),
      h('p', { class: 'hint' }, 'Where this gateway sends your agent\'s calls: your provider\'s SIP trunk.'),
      oAddr.wrap, h('div', { class: 'grid2' }, oTp.wrap, oMedia.wrap), h('div', { class: 'grid2' }, oUser.wrap, oPass.wrap), oHdrs.el),
    h('fieldset', { class: 'section' }, h('legend', null, 'Inbound trunk (optional)'),
      h('div', { class: 'check' }, inOn, h('label', { for: 'inbound-on' }, 'Receive calls for this number from the provider')),
      inboundBody),
    agentSel ? h('fieldset', { class: 'section' }, h('legend', null, 'Agent'), agentSel.wrap) : null);

  const formErr = h('div', { class: 'notice notice-bad', role: 'alert', id: 'form-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'save' }, edit ? 'Save changes' : 'Import number');
  const cancel = h('button', { type: 'button', class: 'btn', id: 'cancel' }, 'Cancel');
  const form = h('form', { class: 'number-form', novalidate: true, id: 'number-form' },
    h('div', { class: 'form-cols' },
      h('div', { class: 'form-main' },
        h('fieldset', { class: 'section' }, h('legend', null, 'Your provider'), providerSel.wrap,
          h('p', { class: 'hint' }, 'Picks known settings and shows what to set on the provider\'s side.')),
        fieldsets),
      h('aside', { class: 'form-side', 'aria-label': 'Set-up at the provider' }, guideBox)),
    formErr,
    h('div', { class: 'actions actions-sticky' }, cancel, submit));
  if (edit) {
    form.prepend(h('p', { class: 'notice' }, 'Saving replaces the whole trunk configuration of this number. The assigned agent stays.'));
  }

  function showGuide() {
    const v = providerSel.control.value;
    guideBox.replaceChildren(guidance(v, ep, number.control.value.trim() || n.number));
    const reg = REGISTRATION_ONLY.some((p) => p.id === v);
    fieldsets.querySelectorAll('fieldset').forEach((f) => { f.disabled = reg; });
    submit.disabled = reg;
  }
  providerSel.control.addEventListener('change', () => {
    const p = PROVIDERS.find((x) => x.id === providerSel.control.value);
    if (p && !edit) {
      const o = p.prefill.outbound || {};
      const i = p.prefill.inbound || {};
      if (o.address !== undefined) oAddr.control.value = o.address;
      if (o.transport) oTp.control.value = o.transport;
      if (o.media_encryption) oMedia.control.value = o.media_encryption;
      if (i.transport) iTp.control.value = i.transport;
      if (i.media_encryption) iMedia.control.value = i.media_encryption;
    }
    showGuide();
  });
  number.control.addEventListener('change', showGuide);
  showGuide();

  // an error in the inbound trunk opens it first
  const errors = formErrors(form, formErr, (c) => {
    const fs = c.closest('.inbound-body');
    if (fs) { fs.hidden = false; inOn.checked = true; }
  });

  function body() {
    const o = {
      address: oAddr.control.value.trim(),
      transport: oTp.control.value,
      media_encryption: oMedia.control.value,
      headers: oHdrs.get(),
    };
    if (oUser.control.value.trim()) o.username = oUser.control.value.trim();
    if (oPass.control.value) o.password = oPass.control.value;
    // not on the form (set through the API or the CLI): an edit keeps it, as PUT replaces
    if (edit && ob.number_format) o.number_format = ob.number_format;
    const b = { label: label.control.value.trim(), outbound_trunk: o };
    if (!edit) b.number = number.control.value.replace(/[\s()-]/g, '');
    if (inOn.checked) {
      const i = {
        transport: iTp.control.value,
        media_encryption: iMedia.control.value,
        allowed_addresses: iAllowed.get(),
        headers: iHdrs.get(),
      };
      if (iUser.control.value.trim()) i.username = iUser.control.value.trim();
      if (iPass.control.value) i.password = iPass.control.value;
      if (iOrig.control.value.trim()) i.origination_url = iOrig.control.value.trim();
      if (iAny.checked) i.allow_any_source = true;
      b.inbound_trunk = i;
    } else {
      b.inbound_trunk = null;
    }
    if (agentSel && agentSel.control.value) b.agent_id = agentSel.control.value;
    return b;
  }

  const title = edit ? `Edit ${n.number}` : 'Import number from SIP trunk';
  const d = openDialog(title, form, { wide: true, initialFocus: providerSel.control });
  cancel.addEventListener('click', () => d.close(undefined));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errors.clear();
    submit.disabled = true;
    submit.textContent = edit ? 'Saving…' : 'Importing…';
    try {
      const saved = edit
        ? await api('PUT', `/v1/phone-numbers/${n.id}`, body())
        : await api('POST', '/v1/phone-numbers', body());
      d.close({ number: saved, warnings: saved.warnings || [] });
    } catch (e) {
      if (e.status === 401) { d.close(undefined); return; }
      errors.show(e);
    } finally {
      submit.disabled = false;
      submit.textContent = edit ? 'Save changes' : 'Import number';
    }
  });
  return d.done;
}
