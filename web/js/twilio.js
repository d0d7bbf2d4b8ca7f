// Twilio credentials (GET/POST/DELETE /v1/twilio-account): the workspace's AccountSid and
// auth token for bots built for Twilio. The token signs our requests to TwiML agents'
// voice URLs (X-Twilio-Signature) and authenticates the bot's calls to the Twilio REST
// emulation. It is shown once, when issued or rotated, in a dialog with a copy button
// (as a new API token is); the server keeps only what it needs to check and sign.

import { api, can } from './api.js';
import { announce, copyable, h } from './dom.js';
import { confirmDialog, openDialog } from './dialog.js';
import { when } from './format.js';

function showToken(acct, rotated) {
  const done = h('button', { type: 'button', class: 'btn btn-primary' }, 'I have copied it');
  const body = h('div', { id: 'twilio-token' },
    h('p', { class: 'notice notice-warn' }, 'Copy the auth token now: it is shown only this once.',
      rotated ? ' The previous token no longer works: give the bot this one.' : ''),
    h('dl', { class: 'kv' },
      h('dt', null, 'AccountSid'), h('dd', null, copyable(acct.account_sid, 'the AccountSid')),
      h('dt', null, 'Auth token'), h('dd', null, copyable(acct.auth_token, 'the auth token'))),
    h('p', { class: 'hint' }, 'Give the bot these as its Twilio credentials (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN), and this gateway\'s address as its Twilio API base URL.'),
    h('div', { class: 'actions' }, done));
  const d = openDialog(rotated ? 'Twilio auth token rotated' : 'Twilio credentials issued', body, { initialFocus: done });
  done.addEventListener('click', () => d.close(true));
  return d.done;
}

// The section (admins and the operator): what is issued, and issue / rotate / revoke.
export function twilioSection() {
  const box = h('div', { id: 'twilio-state', 'aria-live': 'polite' });
  const section = h('section', { class: 'card twilio', id: 'twilio', 'aria-labelledby': 'twilio-h' },
    h('h2', { id: 'twilio-h' }, 'Twilio credentials'),
    h('p', { class: 'hint' }, 'For bots built for Twilio: with these, requests to TwiML agents\' voice URLs carry an X-Twilio-Signature the bot can check, and the bot can end and transfer calls through Twilio\'s REST API as before.'),
    box);

  async function issue(rotate) {
    try {
      const acct = await api('POST', '/v1/twilio-account');
      await showToken(acct, rotate);
      announce(rotate ? 'The Twilio auth token was rotated.' : 'Twilio credentials were issued.', 'good');
    } catch (e) { announce(e.message, 'bad'); }
    await render('twilio-rotate');
  }

  // focusId: the control to focus after an action replaced the one that had the focus
  async function render(focusId) {
    await show();
    if (focusId) document.getElementById(focusId)?.focus();
  }

  async function show() {
    let acct = null;
    try {
      acct = await api('GET', '/v1/twilio-account');
    } catch (e) {
      if (e.status !== 404) { box.replaceChildren(h('p', { class: 'notice notice-bad', role: 'alert' }, e.message)); return; }
    }
    const write = can('POST /v1/twilio-account');
    const actions = h('div', { class: 'actions' });
    if (!acct) {
      box.replaceChildren(h('p', { id: 'twilio-none' }, 'None issued: requests to voice URLs go unsigned.'), actions);
      if (write) {
        const b = h('button', { type: 'button', class: 'btn btn-primary', id: 'twilio-issue' }, 'Issue Twilio credentials');
        b.addEventListener('click', () => issue(false));
        actions.append(b);
      }
      return;
    }
    box.replaceChildren(h('dl', { class: 'kv' },
      h('dt', null, 'AccountSid'), h('dd', { id: 'twilio-sid' }, copyable(acct.account_sid, 'the AccountSid')),
      h('dt', null, 'Auth token'), h('dd', null, `issued ${when(acct.token_created_at)}; shown only when issued`)), actions);
    if (write) {
      const rot = h('button', { type: 'button', class: 'btn', id: 'twilio-rotate' }, 'Rotate auth token');
      rot.addEventListener('click', async () => {
        const ok = await confirmDialog('Rotate the Twilio auth token?',
          h('p', null, 'The current token stops working at once: the bot fails to check signatures and to call the REST API until it has the new one.'),
          'Rotate token');
        if (ok) await issue(true);
      });
      actions.append(rot);
    }
    if (can('DELETE /v1/twilio-account')) {
      const del = h('button', { type: 'button', class: 'btn btn-danger', id: 'twilio-revoke' }, 'Revoke');
      del.addEventListener('click', async () => {
        const ok = await confirmDialog('Revoke the Twilio credentials?',
          h('p', null, 'Requests to voice URLs go unsigned from the next call, and the bot\'s REST calls with AccountSid ',
            h('code', { dir: 'ltr' }, acct.account_sid), ' are refused.'),
          'Revoke credentials', { danger: true });
        if (!ok) return;
        try {
          await api('DELETE', '/v1/twilio-account');
          announce('The Twilio credentials were revoked.', 'good');
        } catch (e) { announce(e.message, 'bad'); }
        await render('twilio-issue');
      });
      actions.append(del);
    }
  }

  render();
  return section;
}
