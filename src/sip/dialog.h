/* sip/dialog: dialogs (RFC 3261 §12) and INVITE sessions on them (§13–§15), with
 * offer/answer (RFC 3264, bodies opaque here), re-INVITE and glare (§14), UPDATE
 * (RFC 3311), INFO (RFC 6086), REFER/NOTIFY (RFC 3515) and session timers (RFC 4028).
 *
 * Two parts:
 *  - struct tl_sip_dlg and its helpers: pure dialog state (tags, CSeq, route set, remote
 *    target) and the arithmetic of glare and session timers. No I/O, no clock: unit
 *    tests drive them with decoded messages.
 *  - struct tl_sip_sess: one INVITE session per dialog, on the stack (sip/stack.h) and its
 *    timer heap. All on the loop thread of the stack.
 *
 * 100rel (RFC 3262): NOT implemented. We never send Supported: 100rel, and an INVITE with
 * Require: 100rel keeps getting 420 + Unsupported: 100rel from the endpoint (§8.2.2.3).
 * Provisional responses are unreliable; early media needs no PRACK for static trunks.
 *
 * Ownership: the layer owns every session; a session owns its dialog. A session lives
 * until on_terminated has returned AND its last client transaction has finished; the user
 * must drop its pointer when on_terminated is called. */
#ifndef TL_SIP_DIALOG_H
#define TL_SIP_DIALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "sip/sip.h"
#include "sip/stack.h"

/* ---- dialog state (RFC 3261 §12) ---- */
struct tl_sip_dlg {
    char *callid;
    char *ltag, *rtag; /* rtag "" for an RFC 2543 peer without tags */
    char *local;       /* our From (UAC) / To (UAS) value as we send it, with ;tag= */
    char *remote;      /* the peer's value as it sent it, with its tag */
    char *target;      /* remote target URI (Contact), updated by target refreshes §12.2 */
    char *route;       /* route set as comma-separated Route values, sending order; NULL */
    char *hop;         /* the URI our in-dialog requests are sent toward (§12.2.1.1, loose
                        * routing): the first Route URI, else the remote target */
    enum tl_sip_transport hop_tp; /* its transport: ;transport=, sips: → TLS, else the
                                   * transport of the dialog-creating request */
    char *contact;                /* our Contact value (in <>) */
    uint32_t lseq;                /* last CSeq we used (the next request uses lseq + 1) */
    uint32_t rseq;                /* last CSeq the peer used, when has_rseq */
    bool has_rseq;
    bool secure; /* §12.1.1: sips Request-URI over TLS (UAS) or sips URI (UAC) */
    bool uac;    /* we sent the dialog-creating INVITE: we own the Call-ID (§14.1) */
    /* where the dialog-creating message came from (UAS) or went to (UAC): its stream
     * connection is reused for in-dialog requests while it leads to the hop's host
     * (tl_sip_request.prefer); the ACK for a 2xx goes here (the INVITE's hop) */
    struct tl_sip_peer peer;
    struct tl_sip_dlg *hnext; /* table chain (private) */
};

/* UAS (§12.1.1): from the dialog-creating request; ltag is our To tag, contact our
 * Contact value. Route set = Record-Route in order. 0, ENOMEM, EBADMSG (no Contact URI). */
int tl_sip_dlg_uas_init(struct tl_sip_dlg *d, const struct tl_sip_msg *req,
                        const struct tl_sip_peer *peer, const char *ltag, const char *contact);
/* UAC (§12.1.2): from a 2xx (or 1xx with To tag) to our INVITE; local = our From value
 * (with tag), cseq = the INVITE's. Route set = Record-Route reversed. 0, ENOMEM, EBADMSG. */
int tl_sip_dlg_uac_init(struct tl_sip_dlg *d, const struct tl_sip_msg *resp, const char *local,
                        uint32_t cseq, const struct tl_sip_peer *peer, const char *contact);
void tl_sip_dlg_reset(struct tl_sip_dlg *d); /* frees the strings; d can be reused */
/* §12.2.2: an in-dialog request's CSeq. 0 (in order; remembered) or 500 (lower than the
 * last one: out of order). ACK and CANCEL reuse a CSeq and are never checked here. */
int tl_sip_dlg_cseq_check(struct tl_sip_dlg *d, const struct tl_sip_msg *req);
/* §12.2 / RFC 3311 §5.2: a target refresh (re-INVITE, UPDATE, their 2xx) with a Contact
 * replaces the remote target. 0, ENOMEM, EBADMSG (bad Contact: target unchanged). */
int tl_sip_dlg_target_refresh(struct tl_sip_dlg *d, const struct tl_sip_msg *m);
/* Fills the dialog part of an in-dialog request (§12.2.1.1): ruri = remote target,
 * From/To/Call-ID, CSeq = ++lseq (ACK/CANCEL: give cseq yourself), Route, Contact (none on
 * BYE: RFC 3261 Table 3), and the next hop: rq->hop = d->hop, resolved per RFC 3263
 * (§8.1.2), with rq->prefer = the dialog's connection; an ACK goes to d->peer instead.
 * Strict routing (a first Route without ;lr, RFC 2543 proxies) is not done: such a route
 * is treated as loose. */
void tl_sip_dlg_request(struct tl_sip_dlg *d, struct tl_sip_request *rq, enum tl_sip_method m);

/* Dialog table keyed by (Call-ID, local tag, remote tag). */
struct tl_sip_dlg_table {
    struct tl_sip_dlg **b;
    size_t nb, n;
};
void tl_sip_dlg_table_init(struct tl_sip_dlg_table *t);
void tl_sip_dlg_table_free(struct tl_sip_dlg_table *t); /* the dialogs are not owned */
int tl_sip_dlg_table_add(struct tl_sip_dlg_table *t, struct tl_sip_dlg *d); /* 0, ENOMEM */
void tl_sip_dlg_table_del(struct tl_sip_dlg_table *t, struct tl_sip_dlg *d);
struct tl_sip_dlg *tl_sip_dlg_table_find(const struct tl_sip_dlg_table *t,
                                         const struct tl_pl *callid, const struct tl_pl *ltag,
                                         const struct tl_pl *rtag);
/* the dialog of an incoming request (local tag = To tag, remote = From tag), or NULL */
struct tl_sip_dlg *tl_sip_dlg_table_match_req(const struct tl_sip_dlg_table *t,
                                              const struct tl_sip_msg *req);

/* ---- arithmetic (pure) ---- */

/* §14.1: after a 491, wait 2.1–4 s when we own the Call-ID, else 0–2 s, in units of
 * 10 ms; rnd is any random number. Returns ms. */
uint32_t tl_sip_glare_delay_ms(bool own_callid, uint32_t rnd);

/* RFC 4028 state of one dialog: interval and who refreshes. se == 0: no session timer. */
struct tl_sip_st {
    uint32_t se;     /* Session-Expires, s */
    bool we_refresh; /* we are the refresher */
};
/* UAS side of a request carrying (or not) Session-Expires / Min-SE / Supported: timer
 * (RFC 4028 §9): 0 with *st and *require (Require: timer in the 2xx when the UAC
 * supports timer), or 422 when Session-Expires < min_se (the 422 carries Min-SE: min_se).
 * No Session-Expires and se_dflt > 0 and the UAC supports timer: we ask for se_dflt with
 * refresher=uac; else no timer. A request's Min-SE raises the interval (§9). */
int tl_sip_st_uas(const struct tl_sip_msg *req, uint32_t min_se, uint32_t se_dflt,
                  struct tl_sip_st *st, bool *require);
/* UAC side: the 2xx to our INVITE/UPDATE that asked for `asked` s (RFC 4028 §7.2): no
 * Session-Expires → no timer (the peer does not do it and we did not insist); with one,
 * refresher=uac means us. */
void tl_sip_st_uac(const struct tl_sip_msg *resp, struct tl_sip_st *st);
/* "Session-Expires: N;refresher=uac|uas\r\n" for a message we send; we_send_request says
 * whether the message is a request (we are its uac) or a response (we are its uas). */
int tl_sip_st_hdr(char *buf, size_t cap, const struct tl_sip_st *st, bool we_send_request);
/* RFC 4028 §10: the refresher refreshes at half the interval; the other side sends BYE
 * when no refresh came by the interval minus min(32 s, interval/3). ms from the last
 * refresh. */
uint64_t tl_sip_st_refresh_ms(uint32_t se);
uint64_t tl_sip_st_expire_ms(uint32_t se);

/* ---- INVITE sessions ---- */
enum tl_sip_sess_state {
    TL_SIP_SESS_EARLY = 0,   /* INVITE under way (no 2xx yet) */
    TL_SIP_SESS_CONFIRMED,   /* 2xx sent/received (UAS: ACK may still be awaited) */
    TL_SIP_SESS_TERMINATING, /* BYE sent, its transaction still running */
    TL_SIP_SESS_TERMINATED,
};
enum tl_sip_sess_reason {
    TL_SIP_SESS_BYE_RECEIVED = 0,
    TL_SIP_SESS_BYE_SENT,
    TL_SIP_SESS_CANCELED,    /* UAS: CANCEL before the 2xx (the stack sent 487) */
    TL_SIP_SESS_EXPIRED,     /* RFC 4028: no refresh in time (we sent BYE) */
    TL_SIP_SESS_ACK_TIMEOUT, /* §13.3.1.4: no ACK for our 2xx in 64*T1 (we sent BYE) */
    TL_SIP_SESS_REJECTED,    /* a final non-2xx to the INVITE (sent or received) */
    TL_SIP_SESS_ERROR,       /* transport error, timeout, no memory, stack stop */
};
const char *tl_sip_sess_reason_name(enum tl_sip_sess_reason r);

struct tl_sip_sess;
struct tl_sip_sess_layer;

/* Bodies we produce are written into the caller-given buffer (cap bytes). */
struct tl_sip_body {
    char *buf;
    size_t cap;
    size_t len; /* set by the callback */
};

/* Callbacks. All optional except on_terminated. sess is valid during each call. */
struct tl_sip_sess_h {
    /* An offer arrived in a re-INVITE or UPDATE (§14.2, RFC 3311): write the answer into
     * *answer and return 0, or return a status (488) to refuse it. With offer->l == 0
     * (a re-INVITE without body) the peer asks us to offer: write an offer, the answer
     * comes in the ACK through on_answer. NULL: 488 to every new offer. */
    int (*on_offer)(struct tl_sip_sess *sess, const struct tl_pl *offer, struct tl_sip_body *answer,
                    void *arg);
    /* the answer to our offer (INVITE 2xx, re-INVITE/UPDATE 2xx, ACK) */
    void (*on_answer)(struct tl_sip_sess *sess, const struct tl_pl *answer, void *arg);
    /* UAS: the ACK for our 2xx arrived; UAC: we received the 2xx (and sent the ACK) */
    void (*on_established)(struct tl_sip_sess *sess, void *arg);
    /* Exactly once per session, whatever ends it (also when the user's own
     * tl_sip_sess_bye/reject ended it: then from inside that call). scode: the final
     * status when there is one (REJECTED, ERROR), else 0. Drop sess here. */
    void (*on_terminated)(struct tl_sip_sess *sess, enum tl_sip_sess_reason why, uint16_t scode,
                          void *arg);
    /* INFO (RFC 6086): m is the request. Returns the final status to answer it with (200; a
     * 415 for a Content-Type it does not take, 469 for an Info Package it does not take) and
     * may write the header lines that answer needs into hdrs (cap bytes, each line ending
     * in CRLF; "" = none): Accept with 415 (RFC 3261 §21.4.13), Recv-Info with 469 (RFC 6086
     * §5.2.3). It may end the session: the answer uses none of its state. NULL: 200. */
    uint16_t (*on_info)(struct tl_sip_sess *sess, const struct tl_sip_msg *m, char *hdrs,
                        size_t cap, void *arg);
    /* An incoming REFER (RFC 3515): return 202 to accept (we answer 202 and send the
     * first NOTIFY "100 Trying"; report progress with tl_sip_sess_notify), or a status
     * (403, 603) to refuse. NULL: 603. */
    uint16_t (*on_refer)(struct tl_sip_sess *sess, const struct tl_pl *refer_to, void *arg);
    /* NOTIFY for our REFER: the status code of the message/sipfrag body, and whether the
     * subscription ended (Subscription-State: terminated). Answered 200. */
    void (*on_notify)(struct tl_sip_sess *sess, uint16_t sipfrag, bool terminated, void *arg);
    /* Every response to a request the session sent (m: its method; refresh: an RFC 4028
     * refresh of ours): the INVITE's provisionals and finals, re-INVITE, UPDATE, INFO,
     * REFER, NOTIFY, BYE; resp NULL with err when the request failed (ETIMEDOUT, a
     * transport errno). Called before the session acts on it (ACK, on_answer,
     * on_terminated), and also for the BYE after on_terminated(BYE_SENT): sess is valid
     * during the call only. For traces and tools (trunkline probe); may be NULL. */
    void (*on_response)(struct tl_sip_sess *sess, enum tl_sip_method m, bool refresh,
                        const struct tl_sip_msg *resp, int err, void *arg);
};

struct tl_sip_sess_cfg {
    const char *listen;      /* our address (Contact, test SDP); 0.0.0.0 → 127.0.0.1, or the
                              * connection's local address where one is known */
    const char *host;        /* our TLS name (in our certificate): the Contact host over TLS
                              * (RFC 5922 §7.2); NULL/"": the address as above */
    int tcp_port, tls_port;  /* for our Contact */
    uint32_t t1, t2;         /* ms: 2xx retransmission (§13.3.1.4) */
    uint32_t min_se;         /* s: our Min-SE (RFC 4028 default 90; lower for tests) */
    uint32_t se;             /* s: the interval we ask for (default 1800) */
    const char *test_policy; /* test build only (TL_TEST_HOOKS): "", "answer", "ring",
                              * "answer-bye:N" installs the test INVITE handler; the
                              * shipped daemon refuses anything but "" (EINVAL) */
};
/* Installs the dialog and stray hooks on the stack (and, in the test build, the invite
 * hook for a test policy). 0, ENOMEM, EINVAL (bad or unavailable test policy). */
int tl_sip_sess_layer_alloc(struct tl_sip_sess_layer **lp, struct tl_sip_stack *s,
                            const struct tl_sip_sess_cfg *cfg);
/* Shutdown: frees every session without calling on_terminated and unhooks the stack.
 * Call it AFTER tl_sip_stack_stop (whose ECANCELED answers still reach sessions: an early
 * UAC session whose INVITE is canceled so gets on_terminated(ERROR) then). */
void tl_sip_sess_layer_free(struct tl_sip_sess_layer *l);
size_t tl_sip_sess_count(const struct tl_sip_sess_layer *l);

/* UAS: a session for a new INVITE the invite hook got (tx, msg). The offer is msg's
 * body (empty: we offer in the 2xx, the answer comes in the ACK). Sends nothing; the
 * session keeps a copy of the INVITE. Session timers are decided here: returns 422 (and
 * answers it, no session is made) when Session-Expires is below our Min-SE.
 * 0, 422, ENOMEM (then nothing was answered: the caller answers 500). */
int tl_sip_sess_alloc_uas(struct tl_sip_sess **sp, struct tl_sip_sess_layer *l,
                          struct tl_sip_tsx *tx, const struct tl_sip_msg *msg,
                          const struct tl_sip_sess_h *h, void *arg);
/* UAS: 1xx (with our To tag: an early dialog) or 2xx with body (the answer; the offer
 * when the INVITE had none) and ctype (NULL = application/sdp). A 2xx carries our Contact,
 * Record-Route copied from the INVITE, Allow, Supported: timer, Session-Expires/Require
 * as negotiated, and is retransmitted (T1 doubling up to T2) until the ACK; no ACK in
 * 64*T1 → BYE and on_terminated(ACK_TIMEOUT). 0, EINVAL (not early/after a final),
 * ENOMEM, ENOSPC. */
int tl_sip_sess_accept(struct tl_sip_sess *sess, uint16_t scode, const char *ctype,
                       const char *body, size_t len);
/* UAS: a final non-2xx (hdrs: extra lines or NULL); on_terminated(REJECTED) is called
 * before this returns. 0 or EINVAL. */
int tl_sip_sess_reject(struct tl_sip_sess *sess, uint16_t scode, const char *hdrs);

/* UAC: a new INVITE (rq: ruri, from without tag, to, tp, dest, auth…; call_id/cseq/from
 * tag/contact are filled in when NULL/0). Supported: timer and Session-Expires = cfg.se;
 * one 422 is retried with the larger Min-SE. On 2xx: ACK, on_answer, on_established;
 * non-2xx final: on_terminated(REJECTED). If this returns an error no callback is called.
 * 0, ENOMEM, or the stack's errno. */
int tl_sip_sess_connect(struct tl_sip_sess **sp, struct tl_sip_sess_layer *l,
                        const struct tl_sip_request *rq, const struct tl_sip_sess_h *h, void *arg);
/* UAC, early: CANCEL (§9.1); the 487 ends the session with REJECTED. */
int tl_sip_sess_cancel(struct tl_sip_sess *sess);
/* A new offer in a confirmed dialog: UPDATE when use_update and the peer allows it, else
 * re-INVITE; body NULL: re-INVITE without offer (the peer offers in the 2xx; our answer
 * is asked through on_offer and sent in the ACK). The answer comes to on_answer. A 491
 * is retried after the §14.1 delay. EBUSY while another offer of ours is pending. */
int tl_sip_sess_modify(struct tl_sip_sess *sess, bool use_update, const char *ctype,
                       const char *body, size_t len);
int tl_sip_sess_info(struct tl_sip_sess *sess, const char *ctype, const char *body, size_t len);
/* REFER with Refer-To: target (a URI); progress comes to on_notify. */
int tl_sip_sess_refer(struct tl_sip_sess *sess, const char *target);
/* NOTIFY for a REFER we accepted (RFC 3515 §2.4.4): body "SIP/2.0 <code> <reason>". */
int tl_sip_sess_notify(struct tl_sip_sess *sess, uint16_t scode, bool terminated);
/* BYE (confirmed) — or CANCEL/487 handling when early. on_terminated(BYE_SENT) is called
 * before this returns. 0, EINVAL (already terminated). */
int tl_sip_sess_bye(struct tl_sip_sess *sess);

enum tl_sip_sess_state tl_sip_sess_state(const struct tl_sip_sess *sess);
/* A BYE of ours is in flight: whoever ended the session (the user, a session timer, a
 * missing ACK) may wait for its outcome, which on_response gets after on_terminated —
 * also with err ECANCELED when the stack stops. Ask inside on_terminated. */
bool tl_sip_sess_bye_pending(const struct tl_sip_sess *sess);
const struct tl_sip_dlg *tl_sip_sess_dialog(const struct tl_sip_sess *sess); /* NULL early UAC */
const struct tl_sip_st *tl_sip_sess_timer(const struct tl_sip_sess *sess);
/* the offer of the INVITE that made a UAS session (valid until tl_sip_sess_accept) */
struct tl_pl tl_sip_sess_offer(const struct tl_sip_sess *sess);

/* ---- test policy helper (RFC 3264 §6.1), exposed for unit tests ----
 * The direction attribute our answer must carry for an offer body: sendonly → recvonly,
 * recvonly → sendonly, inactive → inactive, else sendrecv (first one found). */
const char *tl_sip_sess_answer_dir(const struct tl_pl *offer);

#endif
