// How values read on screen.

const TRANSPORT = { tls: 'TLS', tcp: 'TCP', udp: 'UDP' };
const MEDIA = { required: 'SRTP required', allowed: 'SRTP allowed', disabled: 'no SRTP' };

export const transportName = (t) => TRANSPORT[t] || t;
export const mediaName = (m) => MEDIA[m] || m;

// One line: where calls go and how, and whether calls come in.
export function trunkSummary(n) {
  const o = n.outbound_trunk || {};
  const parts = [`${transportName(o.transport)} to ${o.address}`, mediaName(o.media_encryption)];
  parts.push(o.username ? 'digest' : 'IP auth');
  const i = n.inbound_trunk;
  parts.push(i ? `inbound ${transportName(i.transport)}` : 'outbound only');
  return parts.join(' · ');
}

// Event codes in a few words, and how bad they are (badge colour).
export const EVENTS = {
  registration_attempt: ['Carrier tries to REGISTER', 'warn'],
  credentials_mismatch: ['Credentials do not match', 'bad'],
  credentials_guessing: ['Password guessing', 'bad'],
  source_not_allowed: ['Source address not allowed', 'bad'],
  wrong_transport: ['Wrong transport', 'bad'],
  number_not_routed: ['Number not routed', 'warn'],
  inbound_disabled: ['No inbound trunk', 'warn'],
  edge_source_missing: ['SIP edge did not pass the source', 'bad'],
  media_encryption_mismatch: ['Media encryption mismatch', 'bad'],
  no_agent: ['No agent assigned', 'warn'],
  admission_refused: ['Call limit reached', 'warn'],
  call_failed: ['Call failed', 'bad'],
  srtp_keys_in_clear: ['SRTP keys sent in clear', 'warn'],
};

export function eventLabel(code) {
  return (EVENTS[code] || [code])[0];
}

export function eventSeverity(code) {
  return (EVENTS[code] || [null, 'warn'])[1];
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dtf.format(d);
}

export function ago(iso) {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function duration(call) {
  if (!call.answered_at) return '—';
  const end = call.ended_at ? new Date(call.ended_at) : new Date();
  const s = Math.max(0, Math.round((end - new Date(call.answered_at)) / 1000));
  const m = Math.floor(s / 60);
  return m ? `${m} min ${s % 60} s` : `${s} s`;
}

// "completed: bye received (200)", "busy (486)", "ringing": the status word, and for an
// ended call what ended it
export function callStatus(c) {
  const st = c.status ? c.status.replace(/_/g, ' ') : (c.answered_at ? 'in progress' : 'ringing');
  if (!c.ended_at) return st;
  const r = c.end_reason ? c.end_reason.replace(/_/g, ' ') : '';
  const code = c.final_status ? ` (${c.final_status})` : '';
  return r && r !== st ? `${st}: ${r}${code}` : `${st}${code}`;
}
