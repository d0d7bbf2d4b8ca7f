/* call/register: REGISTER attempts become diagnostic events of the number they name. The
 * endpoint has refused them already (403: static trunks only, sip/endpoint.c); a carrier
 * admin who configured a registration-based line needs to see why nothing works, in the
 * number's events (docs/calls.md). */
#include <string.h>

#include <jansson.h>

#include "call/call.h"
#include "call/routing.h"
#include "sip/stack.h"
#include "store/records.h"

/* a bounded copy of wire text for a record: printable ASCII only, the rest '?' */
static void wire_copy(char *dst, size_t cap, const char *p, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    dst[n] = '\0';
}

/* Loop thread (tl_sip_register_h): a routing lookup in memory and a queued event, nothing
 * else. The event goes to the number the To user (else the From user) names, so its
 * owner sees it; otherwise it is operator-level. The recorder's per-number and
 * per-source limits keep a REGISTER flood from reaching the disk. */
static void on_register(const struct tl_sip_msg *m, const struct tl_sip_peer *peer, void *arg)
{
    struct tl_call_regdiag *d = arg;
    struct tl_event ev = {0};
    char to[TL_USER_MAX + 1], from[TL_USER_MAX + 1], ua[129] = "", ip[64], src[80], e164[17];
    uint16_t port;

    wire_copy(to, sizeof to, m->to.uri.user.p, m->to.uri.user.l);
    wire_copy(from, sizeof from, m->from.uri.user.p, m->from.uri.user.l);
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_USER_AGENT);
    if (h)
        wire_copy(ua, sizeof ua, h->val.p, h->val.l);
    /* behind the SIP edge: the carrier's own source (docs/scale-out.md); without a usable
     * header the event names the edge, which the message says */
    struct tl_sip_peer who = *peer;
    bool via_edge = tl_sip_stack_is_edge(d->stack, (const struct sockaddr *)&peer->sa);
    bool edge_said = via_edge && !tl_sip_edge_source(m, &who);
    peer = &who;
    tl_sip_peer_ip(peer, ip, sizeof ip, &port);
    snprintf(src, sizeof src, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
    const char *tp = tl_sip_transport_name(peer->tp);
    /* the To user names the number first; the From user when To names none */
    if (tl_routing_normalise(to, e164) != 0 ||
        tl_routing_owner(d->routing, e164, ev.number_id, ev.workspace_id) != 0)
        if (tl_routing_normalise(from, e164) == 0)
            tl_routing_owner(d->routing, e164, ev.number_id, ev.workspace_id);
    tl_strlcpy(ev.code, TL_EV_REGISTRATION_ATTEMPT, sizeof ev.code);
    tl_strlcpy(ev.hint, TL_EV_HINT_REGISTRATION_ATTEMPT, sizeof ev.hint);
    snprintf(ev.message, sizeof ev.message,
             "REGISTER from %s%s over %s for \"%.64s\" refused (403)",
             via_edge && !edge_said ? "the SIP edge " : "", src, tp ? tp : "?", to);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "source", src, "transport",
                          tp ? tp : "", "method", "REGISTER", "status", 403, "to_user", to,
                          "from_user", from, "user_agent", ua);
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (txt && strlen(txt) < sizeof ev.details)
        memcpy(ev.details, txt, strlen(txt) + 1);
    free(txt);
    json_decref(j);
    tl_recorder_event(d->rec, &ev, ip);
}

void tl_call_register_events(struct tl_sip_stack *s, struct tl_call_regdiag *d)
{
    d->stack = s;
    tl_sip_stack_set_register_h(s, on_register, d);
}
