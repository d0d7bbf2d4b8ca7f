// What to enter here and what to set at the carrier, per provider. Pre-fills are only what
// is known for every customer of that provider; the rest comes from the provider's console.
// Steps name the provider's own menus so a person can find them; `{tls}`, `{tcp}`, `{host}`
// and `{number}` are replaced with this gateway's values when shown.

export const PROVIDERS = [
  {
    id: 'twilio',
    name: 'Twilio (Elastic SIP Trunking)',
    ipAuth: true,
    prefill: { outbound: { transport: 'tls', media_encryption: 'required' }, inbound: { transport: 'tls', media_encryption: 'required' } },
    outbound: [
      'In the Twilio console open Elastic SIP Trunking → your trunk → Termination.',
      'Address: the Termination SIP URI (for example yourname.pstn.twilio.com) without "sip:" and without a port.',
      'Authentication: add a credential list and enter its username and password here, or add an IP access control list with the egress addresses below and leave username and password empty.',
    ],
    inbound: [
      'Origination → add an Origination URI: paste the TLS URI below (use the TCP one only if TLS is not possible).',
      'Enable Secure Trunking on the trunk for TLS and SRTP; also enable SIP REFER and PSTN transfer.',
      'Point the number at the trunk: Phone Numbers → your number → Configure → SIP Trunk.',
    ],
  },
  {
    id: 'telnyx',
    name: 'Telnyx',
    ipAuth: true,
    srv: true,
    prefill: { outbound: { address: 'sip.telnyx.eu', transport: 'tls', media_encryption: 'required' }, inbound: { transport: 'tls', media_encryption: 'required' } },
    outbound: [
      'Address: sip.telnyx.eu for the EU point of presence (sip.telnyx.com elsewhere).',
      'In the portal open SIP Trunking → your SIP connection → Authentication: choose Credentials and enter the same username and password here (or choose IP address with the egress addresses below).',
      'Attach an Outbound Voice Profile to the connection.',
    ],
    inbound: [
      'SIP connection → Inbound: set the FQDN entry to {host}, entry type SRV, transport TLS (or TCP), region Europe. SRV needs the DNS records below.',
      'Set the inbound number format to E.164 with a leading +.',
      'Assign the number to this SIP connection under Numbers.',
    ],
  },
  {
    id: '3cx',
    name: '3CX (hosted)',
    ipAuth: true,
    prefill: { outbound: { transport: 'tcp', media_encryption: 'allowed' }, inbound: { transport: 'tcp', media_encryption: 'allowed' } },
    outbound: [
      'Hosted 3CX only. In the 3CX console open Trunks (Voice & Chat) → Add Trunk → "Generic SIP Trunk (IP Based)".',
      'Address: the trunk\'s Registrar/Server/Gateway host name. Transport: TCP.',
    ],
    inbound: [
      'In the same trunk paste {host} into Registrar/Server/Gateway Hostname; authentication mode: IP based, no registration.',
      'Add an outbound rule that routes the number (or its prefix) to this trunk.',
    ],
  },
  {
    id: 'starface',
    name: 'Starface',
    ipAuth: false,
    prefill: { outbound: { transport: 'tcp', media_encryption: 'allowed' }, inbound: { transport: 'tcp', media_encryption: 'allowed' } },
    outbound: [
      'Administration → Leitungen (lines) → Provider: the Registrar/Server/Proxy is the trunk host name to enter as address.',
      'Enable "CLIP no screening" on the number so that it may be sent as the caller ID.',
    ],
    inbound: [
      'Same place: paste {host} into Registrar/Server/Proxy, transport TCP, and switch registration off.',
      'The line then shows "not registered": that is expected for a static trunk.',
    ],
  },
  {
    id: 'easybell',
    name: 'Easybell',
    ipAuth: false,
    prefill: { outbound: { transport: 'tls', media_encryption: 'required' }, inbound: { transport: 'tls', media_encryption: 'required' } },
    outbound: [
      'First ask easybell support for the "SIP Trunk FQDN" option (a monthly add-on); plain easybell lines register and cannot work.',
      'Then take the trunk host name from the portal\'s SIP Trunk FQDN settings as the address.',
    ],
    inbound: [
      'SIP Trunk FQDN settings → Ziel-Server (target server): paste the whole TLS URI below.',
      'Set the incoming number format to E.164 with a leading +.',
    ],
  },
  {
    id: 'zadarma',
    name: 'Zadarma',
    ipAuth: false,
    prefill: { outbound: { address: 'pbx.zadarma.com' } },
    outbound: [
      'Address: pbx.zadarma.com.',
      'Username: the internal PBX number shown at my.zadarma.com/mypbx; password: the password generated for that internal number.',
    ],
    inbound: [
      'My PBX → Internal numbers → your number → Call forwarding and voicemail → Configure.',
      'Condition "Always", destination "External server (SIP URI)": enter {number}@{host} with the virtual number in E.164.',
    ],
  },
  {
    id: 'other',
    name: 'Other provider',
    ipAuth: true,
    prefill: {},
    outbound: [
      'Ask the provider for a static SIP trunk (a "SIP trunk with IP authentication" or a fixed trunk endpoint). If the answer is a SIP phone that must register with a username and password, it is a registration line and will not work (see below).',
      'Address: the host name or IP address of the provider\'s SIP server, nothing else.',
      'Username and password: the trunk\'s digest credentials, or none when the provider authenticates by IP (allow-list the egress addresses below).',
    ],
    inbound: [
      'Give the provider the TLS URI below (or the TCP one) as the destination of calls for the number.',
      'Ask it to send the called number in E.164 with a leading +.',
    ],
  },
];

// Services that only deliver calls to devices that register: none of them can send calls
// to a static trunk.
export const REGISTRATION_ONLY = [
  { id: 'sipgate', name: 'Sipgate' },
  { id: 'placetel', name: 'Placetel' },
  { id: 'peoplefone', name: 'Peoplefone' },
  { id: 'nfon', name: 'NFON' },
  { id: 'fritzbox', name: 'FRITZ!Box' },
];

export const REGISTRATION_ONLY_WHY = [
  'This service hands calls only to a phone or PBX that first signs in to it (a SIP REGISTER with a username and password) and keeps that sign-in fresh. trunkline does not register anywhere: it is a static trunk that carriers send calls to at a fixed address, so this service has nowhere to send them.',
];

export const REGISTRATION_ONLY_WAYS = [
  'Forward the calls: in the service\'s settings forward calls for your number to another number that arrives here over a supported static trunk (for example one imported from Twilio or Telnyx), and import that number.',
  'Or put a PBX with SIP trunk support in between (3CX, Starface, Asterisk, FreeSWITCH): it registers with the service and sends the calls on to trunkline over a static trunk.',
];

export function fill(text, vars) {
  return text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? vars[k] : m));
}
