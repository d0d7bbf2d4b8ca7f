/* sip: the SIP stack. This part: message parser/printer, header decoders and URIs
 * (RFC 3261 §7, §19, §20, §25; RFC 3581 rport; RFC 4475 torture tests). Transports,
 * transactions and dialogs will be declared below, in sections of their own.
 *
 * Parsing works on slices (struct tl_pl) that point into the caller's receive buffer:
 * nothing is copied, nothing is NUL-patched, nothing is allocated. The buffer must
 * outlive every struct decoded from it. Header values may contain line folds
 * (CRLF followed by SP/HT, RFC 3261 §7.3.1); every decoder treats a fold as SP, and the
 * printers unfold. Use tl_sip_hdr_unfold() to get a folded value as one line.
 *
 * Errors: every function returns 0 or a positive errno —
 *   EBADMSG          malformed (a request gets 400, a response is dropped)
 *   E2BIG            over one of the TL_SIP_*_MAX caps below
 *   EPROTONOSUPPORT  SIP-Version other than SIP/2.0 (a request gets 505)
 *   ENODATA          stream framing: more bytes are needed
 *   ENOENT           looked-up item absent / iteration finished
 *   ENOSPC           printer: the caller's buffer is too small (nothing is truncated)
 *   EINVAL           bad argument from our own code (NULL, CR/LF in a value to print)
 */
#ifndef TL_SIP_H
#define TL_SIP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "core/pl.h"

/* ---- caps ----
 * RFC 3261 sets no limits; each of these is ours and guards an overflow or a flood. */
#define TL_SIP_MSG_MAX   65535 /* bytes, start line to end of body (largest UDP payload) */
#define TL_SIP_HDR_MAX   128   /* header fields per message (fixed array: CVE-2016-2385) */
#define TL_SIP_LINE_MAX  8192  /* bytes of the start line, and of one header incl. folds */
#define TL_SIP_VIA_MAX   64    /* Via values per message */
#define TL_SIP_LIST_MAX  64    /* comma-separated values in one header field */
#define TL_SIP_PARAM_MAX 32    /* ;parameters per value, auth-params per challenge */

/* ---- methods (case-sensitive, RFC 3261 §7.1) ---- */
enum tl_sip_method {
    TL_SIP_METHOD_OTHER = 0, /* an extension method: an endpoint answers 501 */
    TL_SIP_METHOD_INVITE,
    TL_SIP_METHOD_ACK,
    TL_SIP_METHOD_BYE,
    TL_SIP_METHOD_CANCEL,
    TL_SIP_METHOD_OPTIONS,
    TL_SIP_METHOD_REGISTER,
    TL_SIP_METHOD_PRACK,
    TL_SIP_METHOD_SUBSCRIBE,
    TL_SIP_METHOD_NOTIFY,
    TL_SIP_METHOD_PUBLISH,
    TL_SIP_METHOD_INFO,
    TL_SIP_METHOD_REFER,
    TL_SIP_METHOD_MESSAGE,
    TL_SIP_METHOD_UPDATE,
};
enum tl_sip_method tl_sip_method_id(const struct tl_pl *name);
const char *tl_sip_method_name(enum tl_sip_method m); /* NULL for OTHER */

/* ---- URIs (RFC 3261 §19.1, §25.1; RFC 3966 tel) ---- */
enum tl_sip_scheme {
    TL_SIP_SCHEME_OTHER = 0, /* any other absoluteURI: a request with one gets 416 */
    TL_SIP_SCHEME_SIP,
    TL_SIP_SCHEME_SIPS,
    TL_SIP_SCHEME_TEL,
};
enum tl_sip_host_type {
    TL_SIP_HOST_NONE = 0,
    TL_SIP_HOST_NAME,
    TL_SIP_HOST_IPV4,
    TL_SIP_HOST_IPV6
};

/* Every member is a slice of the decoded text, escapes left as written; unescape with
 * tl_sip_uri_unescape() when the octets are needed (e.g. a user part with %00). */
struct tl_sip_uri {
    enum tl_sip_scheme scheme;
    struct tl_pl scheme_pl; /* as written, without ':' */
    struct tl_pl user;      /* sip/sips user, tel number; empty when absent */
    struct tl_pl password;
    bool has_password;
    struct tl_pl host; /* hostname, IPv4, or IPv6 reference with its brackets */
    enum tl_sip_host_type hostt;
    uint16_t port;
    bool has_port;        /* "sip:h" and "sip:h:5060" differ (§19.1.4) */
    struct tl_pl params;  /* ";a=b;lr" from the first ';', or empty */
    struct tl_pl headers; /* "a=b&c=d" after '?', or empty */
    struct tl_pl opaque;  /* OTHER schemes: everything after ':' */
};

/* Decodes a whole slice as one URI (no LWS, no <>). sip/sips/tel are checked against the
 * grammar; other schemes only against absoluteURI characters. 0 or EBADMSG. */
int tl_sip_uri_decode(struct tl_sip_uri *uri, const struct tl_pl *pl);
/* RFC 3261 §19.1.4 (sip/sips), RFC 3966 §4 (tel): true when a and b are equivalent.
 * Not transitive: sip:c@h equals sip:c@h;x=1 and sip:c@h;x=2, which differ. */
bool tl_sip_uri_cmp(const struct tl_sip_uri *a, const struct tl_sip_uri *b);
/* Looks up a uri-parameter by name (case-insensitive, escapes in the name decoded).
 * *val gets the value as written (escaped), empty for a flag such as "lr". 0 or ENOENT. */
int tl_sip_uri_param_get(const struct tl_sip_uri *uri, const char *name, struct tl_pl *val);
/* Looks up a URI header ("?name=value") the same way. 0 or ENOENT. */
int tl_sip_uri_header_get(const struct tl_sip_uri *uri, const char *name, struct tl_pl *val);
/* Decodes %HH escapes ONCE ("%2541" -> "%41", RFC 4475 §3.1.1.3) into dst, which always
 * gets a terminating NUL; the result may hold NULs itself (%00), so use *lenp.
 * 0, EBADMSG (bad escape), ENOSPC (needs cap >= length + 1). */
int tl_sip_uri_unescape(char *dst, size_t cap, size_t *lenp, const struct tl_pl *src);

/* ---- header fields ---- */
enum tl_sip_hdr_id {
    TL_SIP_HDR_OTHER = 0, /* an unknown header: kept as name/value slices */
    TL_SIP_HDR_ACCEPT,
    TL_SIP_HDR_ACCEPT_CONTACT, /* a */
    TL_SIP_HDR_ACCEPT_ENCODING,
    TL_SIP_HDR_ACCEPT_LANGUAGE,
    TL_SIP_HDR_ALERT_INFO,
    TL_SIP_HDR_ALLOW,
    TL_SIP_HDR_ALLOW_EVENTS, /* u */
    TL_SIP_HDR_AUTHENTICATION_INFO,
    TL_SIP_HDR_AUTHORIZATION,
    TL_SIP_HDR_CALL_ID, /* i */
    TL_SIP_HDR_CALL_INFO,
    TL_SIP_HDR_CONTACT, /* m */
    TL_SIP_HDR_CONTENT_DISPOSITION,
    TL_SIP_HDR_CONTENT_ENCODING, /* e */
    TL_SIP_HDR_CONTENT_LANGUAGE,
    TL_SIP_HDR_CONTENT_LENGTH, /* l */
    TL_SIP_HDR_CONTENT_TYPE,   /* c */
    TL_SIP_HDR_CSEQ,
    TL_SIP_HDR_DATE,
    TL_SIP_HDR_ERROR_INFO,
    TL_SIP_HDR_EVENT, /* o */
    TL_SIP_HDR_EXPIRES,
    TL_SIP_HDR_FROM,     /* f */
    TL_SIP_HDR_IDENTITY, /* y */
    TL_SIP_HDR_IN_REPLY_TO,
    TL_SIP_HDR_MAX_FORWARDS,
    TL_SIP_HDR_MIME_VERSION,
    TL_SIP_HDR_MIN_EXPIRES,
    TL_SIP_HDR_MIN_SE,
    TL_SIP_HDR_ORGANIZATION,
    TL_SIP_HDR_P_ASSERTED_IDENTITY,
    TL_SIP_HDR_P_PREFERRED_IDENTITY,
    TL_SIP_HDR_PATH,
    TL_SIP_HDR_PRIORITY,
    TL_SIP_HDR_PRIVACY,
    TL_SIP_HDR_PROXY_AUTHENTICATE,
    TL_SIP_HDR_PROXY_AUTHORIZATION,
    TL_SIP_HDR_PROXY_REQUIRE,
    TL_SIP_HDR_RACK,
    TL_SIP_HDR_REASON,
    TL_SIP_HDR_RECORD_ROUTE,
    TL_SIP_HDR_REFER_TO,       /* r */
    TL_SIP_HDR_REFERRED_BY,    /* b */
    TL_SIP_HDR_REJECT_CONTACT, /* j */
    TL_SIP_HDR_REPLACES,
    TL_SIP_HDR_REPLY_TO,
    TL_SIP_HDR_REQUEST_DISPOSITION, /* d */
    TL_SIP_HDR_REQUIRE,
    TL_SIP_HDR_RETRY_AFTER,
    TL_SIP_HDR_ROUTE,
    TL_SIP_HDR_RSEQ,
    TL_SIP_HDR_SERVER,
    TL_SIP_HDR_SERVICE_ROUTE,
    TL_SIP_HDR_SESSION_EXPIRES, /* x */
    TL_SIP_HDR_SUBJECT,         /* s */
    TL_SIP_HDR_SUBSCRIPTION_STATE,
    TL_SIP_HDR_SUPPORTED, /* k */
    TL_SIP_HDR_TIMESTAMP,
    TL_SIP_HDR_TO, /* t */
    TL_SIP_HDR_UNSUPPORTED,
    TL_SIP_HDR_USER_AGENT,
    TL_SIP_HDR_VIA, /* v */
    TL_SIP_HDR_WARNING,
    TL_SIP_HDR_WWW_AUTHENTICATE,
    TL_SIP_HDR__N
};
/* Case-insensitive, long and compact forms ("i", "m", "e", "l", "f", "t", "v", "k", "s",
 * "c", "o", "r", "u", "x", "b", "y", "a", "j", "d"). */
enum tl_sip_hdr_id tl_sip_hdr_id(const struct tl_pl *name);
const char *tl_sip_hdr_name(enum tl_sip_hdr_id id); /* canonical long form; NULL for OTHER */
/* True for headers whose value is a comma-separated list (Via, Route, Contact, Require…),
 * i.e. the ones that may be split and combined (RFC 3261 §7.3.1). */
bool tl_sip_hdr_is_list(enum tl_sip_hdr_id id);

struct tl_sip_hdr {
    enum tl_sip_hdr_id id;
    struct tl_pl name; /* as written */
    struct tl_pl val;  /* LWS trimmed at both ends; may contain folds */
};

/* Next element of a comma-separated value; commas inside "quoted strings" (with \-escapes)
 * and <URIs> do not split. Empty elements are skipped (RFC 7230 §7 leniency). *rest is
 * advanced. 0, ENOENT (no more), EBADMSG (unterminated quote or '<'). */
int tl_sip_list_next(struct tl_pl *rest, struct tl_pl *item);
/* True when the comma-separated token list `list` (e.g. a Require value, a qop list)
 * contains `tok`, compared case-insensitively. */
bool tl_sip_list_has(const struct tl_pl *list, const char *tok);

/* generic-param (RFC 3261 §25.1): name [ EQUAL ( token / host / quoted-string ) ] */
struct tl_sip_param {
    struct tl_pl name;
    struct tl_pl val; /* without the quotes when quoted (quoted-pairs kept) */
    bool has_val;
    bool quoted;
};
/* Reads `SEMI generic-param` from *rest (LWS allowed around ';' and '='), advancing it.
 * 0, ENOENT (nothing but LWS left), EBADMSG. */
int tl_sip_param_next(struct tl_pl *rest, struct tl_sip_param *prm);
/* Finds a parameter by name (case-insensitive) in a ";a=b;c" list. 0 or ENOENT. */
int tl_sip_param_get(const struct tl_pl *params, const char *name, struct tl_sip_param *prm);

/* Removes the quoted-pair escapes of a quoted-string's content (as left by the decoders,
 * e.g. a digest realm) into dst (always NUL-terminated; use *lenp). 0 or ENOSPC. */
int tl_sip_qstr_unescape(char *dst, size_t cap, size_t *lenp, const struct tl_pl *src);
/* Copies a header value with every fold (CRLF 1*WSP) turned into one SP. 0 or ENOSPC. */
int tl_sip_hdr_unfold(char *dst, size_t cap, size_t *lenp, const struct tl_pl *val);

/* 1*DIGIT with optional surrounding LWS, overflow-safe. 0, EBADMSG (not digits: signs,
 * "five", empty), ERANGE (> max). For Content-Length, Max-Forwards, Expires, RSeq… */
int tl_sip_u32_decode(const struct tl_pl *val, uint32_t max, uint32_t *v);

/* ---- typed decoders: one value in (one list element for list headers) ---- */

enum tl_sip_transport {
    TL_SIP_TP_OTHER = 0, /* an extension transport (RFC 4475 §3.1.1.10): parse, don't use */
    TL_SIP_TP_UDP,
    TL_SIP_TP_TCP,
    TL_SIP_TP_TLS,
    TL_SIP_TP_SCTP,
    TL_SIP_TP_TLS_SCTP,
    TL_SIP_TP_WS,
    TL_SIP_TP_WSS,
};
enum tl_sip_transport tl_sip_transport_id(const struct tl_pl *name);
const char *tl_sip_transport_name(enum tl_sip_transport tp); /* NULL for OTHER */

/* X-Trunkline-Source (docs/scale-out.md): where a carrier's request reached our SIP edge,
 * added by the edge (deploy/kamailio) and believed only from sip_edge_addresses. Value
 * "<transport> <address>:<port>": transport lowercase tcp, tls or udp; address an IPv4
 * literal or an IPv6 literal in brackets (no names, no zone); port 1-65535 without a
 * leading zero; nothing around it (the header's own LWS is trimmed by the decoder). At most
 * TL_SIP_EDGE_SOURCE_MAX bytes ("tls [v6 with dotted tail]:65535" fits). 0, E2BIG, EBADMSG,
 * EINVAL (NULL argument). */
#define TL_SIP_EDGE_SOURCE_HDR "X-Trunkline-Source"
#define TL_SIP_EDGE_SOURCE_MAX 64
int tl_sip_edge_source_parse(const char *p, size_t len, enum tl_sip_transport *tp,
                             struct sockaddr_storage *sa);

/* Via (RFC 3261 §20.42, §18.2.1; RFC 3581). */
struct tl_sip_via {
    struct tl_pl proto; /* "SIP" */
    struct tl_pl ver;   /* "2.0" (not checked here: badvers.dat has SIP/7.0 Vias) */
    struct tl_pl tp;    /* transport as written */
    enum tl_sip_transport tpid;
    struct tl_pl host; /* sent-by host; IPv6 keeps its brackets */
    enum tl_sip_host_type hostt;
    uint16_t port;
    bool has_port;
    struct tl_pl params;   /* every parameter as written, from the first ';' */
    struct tl_pl branch;   /* empty when absent (RFC 2543 peers) */
    struct tl_pl received; /* an IPv4 or IPv6 address */
    struct tl_pl maddr;
    bool has_ttl;
    uint8_t ttl;
    bool rport; /* ";rport" present: the client asks for symmetric response routing */
    bool has_rport_val;
    uint16_t rport_val; /* ";rport=5060", filled in by the server (RFC 3581 §4) */
};
int tl_sip_via_decode(struct tl_sip_via *via, const struct tl_pl *val);
/* True for an RFC 3261 branch: the magic cookie "z9hG4bK" and at least one more octet
 * (badbranch.dat has the bare cookie: match as RFC 2543 would, or reject). */
bool tl_sip_via_branch_rfc3261(const struct tl_sip_via *via);

/* CSeq (RFC 3261 §8.1.1.5, §20.16): the number is below 2^31. */
struct tl_sip_cseq {
    uint32_t num;
    struct tl_pl met;
    enum tl_sip_method mid;
};
int tl_sip_cseq_decode(struct tl_sip_cseq *cseq, const struct tl_pl *val);

/* Call-ID: word [ "@" word ] (RFC 3261 §25.1). *callid gets the trimmed value. */
int tl_sip_callid_decode(struct tl_pl *callid, const struct tl_pl *val);

/* name-addr / addr-spec with header parameters: From, To, Contact, Route, Record-Route,
 * Refer-To, Reply-To, P-Asserted-Identity… (RFC 3261 §20.10, §20.20, §20.39). Without <>,
 * everything after the URI's first ';' is a header parameter, and a URI with ',' or '?'
 * is refused (RFC 4475 §3.1.2.13). */
struct tl_sip_addr {
    struct tl_pl dname; /* display name: a quoted-string's content (quoted-pairs kept) or
                         * the token words; empty when absent */
    bool dname_quoted;
    bool angle;        /* the URI was enclosed in <> */
    struct tl_pl auri; /* URI text */
    struct tl_sip_uri uri;
    struct tl_pl params; /* header parameters from the first ';', or empty */
    struct tl_pl tag;    /* the tag parameter, empty when absent */
};
int tl_sip_addr_decode(struct tl_sip_addr *addr, const struct tl_pl *val);
/* Route / Record-Route / Path / Service-Route values must be name-addr (in <>). */
int tl_sip_route_decode(struct tl_sip_addr *addr, const struct tl_pl *val);

/* Contact (RFC 3261 §20.10): "*" or an address with expires and q. */
struct tl_sip_contact {
    bool star;
    struct tl_sip_addr addr;
    bool has_expires;
    uint32_t expires; /* an out-of-range value reads as 3600 (§20.19, RFC 4475 §3.1.2.4) */
    bool has_q;
    uint16_t q; /* q-value in thousandths: "0.33" -> 330 */
};
int tl_sip_contact_decode(struct tl_sip_contact *c, const struct tl_pl *val);

/* WWW-Authenticate / Proxy-Authenticate challenges and Authorization /
 * Proxy-Authorization credentials (RFC 3261 §25.1, RFC 7616, RFC 8760). Values are
 * slices without quotes, quoted-pairs kept (tl_sip_qstr_unescape() them before hashing).
 * A repeated parameter is refused (a second realm or nonce must not win silently).
 * For a scheme other than Digest only `scheme` and `params` are filled (RFC 4475 §3.3.7). */
struct tl_sip_auth {
    struct tl_pl scheme;
    bool digest;
    struct tl_pl params;                                       /* everything after the scheme */
    struct tl_pl realm, nonce, opaque, algorithm, qop, domain; /* challenge */
    struct tl_pl username, uri, response, cnonce, nc;          /* credentials */
    bool stale;    /* stale=true (RFC 7616: retry with the new nonce, same password) */
    bool userhash; /* userhash=true (RFC 7616 §3.4.4) */
};
int tl_sip_auth_decode(struct tl_sip_auth *auth, const struct tl_pl *val);

/* Session-Expires / Min-SE (RFC 4028). */
enum tl_sip_refresher { TL_SIP_REFRESHER_NONE = 0, TL_SIP_REFRESHER_UAC, TL_SIP_REFRESHER_UAS };
struct tl_sip_session_expires {
    uint32_t delta;
    enum tl_sip_refresher refresher;
    struct tl_pl params;
};
int tl_sip_session_expires_decode(struct tl_sip_session_expires *se, const struct tl_pl *val);
int tl_sip_min_se_decode(uint32_t *delta, const struct tl_pl *val);

/* Event (RFC 6665 §8.2.1). */
struct tl_sip_event {
    struct tl_pl type; /* "refer", "dialog", "presence.winfo" */
    struct tl_pl id;   /* empty when absent */
    struct tl_pl params;
};
int tl_sip_event_decode(struct tl_sip_event *ev, const struct tl_pl *val);

/* Subscription-State (RFC 6665 §8.2.3). */
enum tl_sip_substate_id {
    TL_SIP_SUBSTATE_OTHER = 0,
    TL_SIP_SUBSTATE_ACTIVE,
    TL_SIP_SUBSTATE_PENDING,
    TL_SIP_SUBSTATE_TERMINATED,
};
struct tl_sip_substate {
    struct tl_pl state;
    enum tl_sip_substate_id sid;
    struct tl_pl reason; /* empty when absent */
    bool has_expires;
    uint32_t expires;
    bool has_retry_after;
    uint32_t retry_after;
    struct tl_pl params;
};
int tl_sip_substate_decode(struct tl_sip_substate *ss, const struct tl_pl *val);

/* Reason (RFC 3326): protocol ;cause=N ;text="…" — one list element. */
struct tl_sip_reason {
    struct tl_pl proto; /* "SIP", "Q.850" */
    bool has_cause;
    uint16_t cause;
    struct tl_pl text; /* quoted-string content, quoted-pairs kept */
    struct tl_pl params;
};
int tl_sip_reason_decode(struct tl_sip_reason *r, const struct tl_pl *val);

/* Warning (RFC 3261 §20.43): 3DIGIT agent "text" — one list element. */
struct tl_sip_warning {
    uint16_t code;
    struct tl_pl agent;
    struct tl_pl text; /* quoted-string content, quoted-pairs kept */
};
int tl_sip_warning_decode(struct tl_sip_warning *w, const struct tl_pl *val);

/* ---- messages ---- */

/* Bits of tl_sip_msg.have: which of the fields a response copies decoded cleanly
 * (exactly one field; for Via: every value). */
enum {
    TL_SIP_HAVE_VIA = 1u << 0, /* and msg->via is the top one */
    TL_SIP_HAVE_FROM = 1u << 1,
    TL_SIP_HAVE_TO = 1u << 2,
    TL_SIP_HAVE_CALLID = 1u << 3,
    TL_SIP_HAVE_CSEQ = 1u << 4,
    TL_SIP_HAVE_REPLY = 0x1f, /* all five decoded */
};

struct tl_sip_msg {
    struct tl_pl mb; /* this message: start line .. end of body; on a datagram, octets
                      * after Content-Length are not part of it (RFC 4475 §3.1.1.8) */
    bool req;
    /* Request-Line */
    struct tl_pl met;
    enum tl_sip_method mid;
    struct tl_pl ruri_pl;
    struct tl_sip_uri ruri; /* scheme OTHER: answer 416 (RFC 4475 §3.3.2) */
    struct tl_pl ver;       /* "SIP/2.0" as written (either line) */
    /* Status-Line */
    uint16_t scode; /* 100-699 */
    struct tl_pl reason;
    /* every header field, in order */
    struct tl_sip_hdr hdrv[TL_SIP_HDR_MAX];
    size_t hdrc;
    uint8_t hdr_first[TL_SIP_HDR__N]; /* index + 1 of the first field with that id, 0 */
    uint8_t hdr_cnt[TL_SIP_HDR__N];   /* fields (not values) with that id */
    /* decoded at once: what every layer needs */
    unsigned have;         /* TL_SIP_HAVE_* */
    struct tl_sip_via via; /* topmost */
    size_t viac;           /* Via values in all Via fields */
    struct tl_sip_addr from, to;
    struct tl_pl callid;
    struct tl_sip_cseq cseq;
    int maxfwd; /* 0-255; -1 when absent (RFC 2543 peers) */
    bool has_clen;
    uint32_t clen;
    struct tl_pl body;
    /* why decoding failed: a fixed string for logs/the reason phrase, and the field */
    const char *err;
    enum tl_sip_hdr_id err_hdr;
};

/* Decodes one message from a datagram or a framed stream message. No allocation: *msg
 * is the caller's storage and all slices point into buf. Besides the split into fields it
 * checks the start line, Via, From, To, Call-ID, CSeq (and its method against the request's),
 * Max-Forwards, Content-Length, Contact, Route, Record-Route and the option-tag lists,
 * repeated single fields, and the mandatory fields. Without Content-Length the body is the
 * rest of the buffer (a datagram from an RFC 2543 peer); a framed stream message has one.
 *
 * Returns 0, EBADMSG, E2BIG or EPROTONOSUPPORT. On an error in a field (as opposed to an
 * unreadable start line or header section, or an exceeded cap on bytes/fields) decoding
 * goes on, so the fields are there for a 400/505 from tl_sip_reply_print(); msg->have says
 * which decoded, msg->err and msg->err_hdr say what was wrong. */
int tl_sip_msg_decode(struct tl_sip_msg *msg, const char *buf, size_t len);

/* First field with this id, or NULL. */
const struct tl_sip_hdr *tl_sip_msg_hdr(const struct tl_sip_msg *msg, enum tl_sip_hdr_id id);
/* First field with this name (case-insensitive; compact forms resolve), or NULL. */
const struct tl_sip_hdr *tl_sip_msg_hdr_find(const struct tl_sip_msg *msg, const char *name);

/* Walks the values of every field with one id in message order, splitting list headers
 * at commas: Via: a, b \n Via: c gives a, b, c.  Values of other ids come whole. */
struct tl_sip_hdr_iter {
    const struct tl_sip_msg *msg;
    enum tl_sip_hdr_id id;
    size_t idx;        /* next field to open */
    struct tl_pl rest; /* rest of the current field */
    bool open;
    size_t items;
};
void tl_sip_hdr_iter_init(struct tl_sip_hdr_iter *it, const struct tl_sip_msg *msg,
                          enum tl_sip_hdr_id id);
/* 0 (one value in *val), ENOENT (done), EBADMSG, E2BIG (over TL_SIP_LIST_MAX in a field). */
int tl_sip_hdr_iter_next(struct tl_sip_hdr_iter *it, struct tl_pl *val);
/* True when an option-tag/method list header (Require, Supported, Allow…) of msg holds
 * tok (case-insensitive). */
bool tl_sip_msg_has_token(const struct tl_sip_msg *msg, enum tl_sip_hdr_id id, const char *tok);

/* ---- stream framing (TCP/TLS, RFC 3261 §18.3; keep-alive RFC 5626 §3.5.1) ---- */
enum tl_sip_frame_kind {
    TL_SIP_FRAME_MSG = 0, /* a whole message of .len bytes: pass it to tl_sip_msg_decode */
    TL_SIP_FRAME_PING,    /* CRLFCRLF: a server answers with one CRLF (pong) */
    TL_SIP_FRAME_PONG,    /* one CRLF: a pong, or a CRLF before a start line (§7.5) */
};
/* Resumable: zero it once per connection, call again with the same (grown) buffer when
 * ENODATA came back, and tl_sip_frame_reset() it after consuming .len bytes. Each byte is
 * scanned once however the stream is split. (Zeroing instead of resetting works too, but
 * a ping split right after its first CRLF then reads as two PONGs.) */
struct tl_sip_frame {
    enum tl_sip_frame_kind kind;
    size_t len;     /* bytes to consume */
    size_t hdr_len; /* start line + headers incl. the blank line once found, else 0 */
    size_t scan;    /* private: bytes examined */
    size_t line;    /* private: start of the current line */
    size_t total;   /* private: hdr_len + Content-Length, 0 unknown */
    bool crlf_end;  /* private: the last frame was a CRLF that ended the buffer */
};
void tl_sip_frame_reset(struct tl_sip_frame *fr);
/* 0 (see fr->kind, fr->len), ENODATA (need more bytes), EBADMSG (garbage, Content-Length
 * missing, repeated, negative or not a number: close the connection, RFC 4475 §3.1.2.3),
 * E2BIG (message or line over the caps: close). Bytes after Content-Length are the next
 * message (RFC 4475 §3.1.1.8). */
int tl_sip_frame(struct tl_sip_frame *fr, const char *buf, size_t len);

/* ---- printing ----
 * Bounded writer over the caller's buffer. Every print function is all-or-nothing: on
 * ENOSPC (or EINVAL) wb->len is where it was, and nothing is ever truncated. */
struct tl_sip_wbuf {
    char *buf;
    size_t size;
    size_t len;
};
void tl_sip_wbuf_init(struct tl_sip_wbuf *wb, char *buf, size_t size);
int tl_sip_wbuf_write(struct tl_sip_wbuf *wb, const void *p, size_t n);
int tl_sip_wbuf_pl(struct tl_sip_wbuf *wb, const struct tl_pl *pl);
int tl_sip_wbuf_printf(struct tl_sip_wbuf *wb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "Name: value\r\n". The name must be a token; the value is unfolded, and a CR or LF that
 * is not part of a fold is refused with EINVAL (header injection from API/config data). */
int tl_sip_hdr_print(struct tl_sip_wbuf *wb, const char *name, const struct tl_pl *val);
/* "Via: SIP/2.0/UDP host[:port];branch=…;received=…;rport[=…];maddr=…;ttl=…;<others>\r\n"
 * from the struct: a UAC fills tp/tpid, host, port, branch and rport; a server copies the
 * top Via of a request and sets received / rport_val (RFC 3261 §18.2.1, RFC 3581 §4).
 * Extension parameters are copied from via->params; empty proto/ver print "SIP"/"2.0". */
int tl_sip_via_print(struct tl_sip_wbuf *wb, const struct tl_sip_via *via);

/* A response to a request (RFC 3261 §8.2.6): every Via (the top one with received/rport
 * when all decoded, else verbatim), From, To (+ our tag when it decoded without one; not
 * on 100), Call-ID and CSeq copied as received (so a malformed request can still get its
 * 400, RFC 4475 §3.3.1), extra header lines, Content-Type/Content-Length and body. */
struct tl_sip_reply {
    uint16_t scode;        /* 100-699 */
    const char *reason;    /* Reason-Phrase; NULL = a standard phrase or "Unknown" */
    struct tl_pl totag;    /* our To tag (dialog-creating and final responses) */
    struct tl_pl received; /* source IP of the request, "" = leave the Via as it is */
    uint16_t src_port;     /* source port: fills "rport=" when the Via asked */
    const char *hdrs;      /* extra header lines, each ending in CRLF, or NULL */
    struct tl_pl ctype;    /* Content-Type of the body, or empty */
    struct tl_pl body;
};
/* 0, ENOSPC, EINVAL (bad code/reason/hdrs/tag), EBADMSG (not a request, or no Via). */
int tl_sip_reply_print(struct tl_sip_wbuf *wb, const struct tl_sip_msg *req,
                       const struct tl_sip_reply *reply);
const char *tl_sip_reason_phrase(uint16_t scode); /* "Not Found"; "Unknown" for others */

#endif
