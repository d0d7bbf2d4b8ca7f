/* store: the domain model (workspaces, tokens, agents, phone numbers with their trunk
 * configuration), its validation rules, and its persistence (SQLite by default, or
 * PostgreSQL, behind the same functions: db.h).
 *
 * Threading: one struct tl_store may be used from any thread; calls are serialised by a
 * mutex inside. Every write is one SQLite transaction committed with synchronous=FULL in
 * WAL mode before the function returns: a caller that answers 2xx after a write returned
 * 0 never loses it to kill -9 or power loss.
 *
 * Tenancy: every function on a workspace-owned object takes the workspace id and treats
 * an object of another workspace exactly like a missing one (ENOENT), so the API can
 * answer 404 without leaking existence.
 *
 * Secrets: trunk passwords and agent header values are sealed (XChaCha20-Poly1305, the
 * master key, the row id and field name as associated data) before they reach SQL; API
 * tokens are stored as a keyed BLAKE2b hash. Reads return has_password, never the value,
 * except tl_store_number_secrets (for the call path). */
#ifndef TL_STORE_H
#define TL_STORE_H

#include "core/core.h"

/* ---- caps (validation refuses longer input before anything is allocated) ---- */
#define TL_NAME_MAX             128 /* workspace and agent names, number labels (bytes) */
#define TL_REGION_MAX           32
#define TL_E164_MAX             16  /* '+' and at most 15 digits */
#define TL_HOST_MAX             253 /* DNS name limit */
#define TL_USER_MAX             128
#define TL_PASSWORD_MAX         128
#define TL_HEADERS_MAX          16
#define TL_HEADER_NAME_MAX      64
#define TL_HEADER_VALUE_MAX     256
#define TL_ALLOWED_MAX          32
#define TL_CIDR_MAX             49 /* "ffff:…:ffff/128" */
#define TL_URI_MAX              512
#define TL_AGENT_URL_MAX        2048
#define TL_AGENT_TIMEOUT_MAX_MS 30000 /* connect_timeout_ms: carriers give up ringing soon */
#define TL_PARAMS_MAX           32
#define TL_PARAM_KEY_MAX        64
#define TL_PARAM_VALUE_MAX      512
#define TL_BUILTIN_MAX          32
#define TL_CURSOR_MAX           64
#define TL_TOKEN_MAX            64 /* "tlk_" + 43 base64url characters of 32 random bytes */
#define TL_PAGE_MAX             100
#define TL_PAGE_DEFAULT         50
#define TL_TWILIO_SID_LEN       34 /* "AC"/"CA" + 32 hex digits (Twilio-shaped names, below) */

enum tl_plan { TL_PLAN_FREE, TL_PLAN_STARTER, TL_PLAN_PROFESSIONAL, TL_PLAN_ENTERPRISE };
enum tl_transport { TL_TRANSPORT_TLS, TL_TRANSPORT_TCP, TL_TRANSPORT_UDP };
enum tl_media_enc { TL_MEDIA_REQUIRED, TL_MEDIA_ALLOWED, TL_MEDIA_DISABLED };
enum tl_number_source { TL_SOURCE_SIP_TRUNK, TL_SOURCE_PLATFORM };
enum tl_agent_kind { TL_AGENT_BUILTIN, TL_AGENT_WEBSOCKET, TL_AGENT_TWIML };
enum tl_role { TL_ROLE_OPERATOR, TL_ROLE_ADMIN, TL_ROLE_MEMBER };
/* inbound_trunk.rtp_latching (src/media/README.md "Latching policy"): DEFAULT = absent, the
 * gateway's rtp_latching setting applies */
enum tl_rtp_latching {
    TL_LATCHING_DEFAULT,
    TL_LATCHING_SDP_IP,
    TL_LATCHING_ANY,
    TL_LATCHING_OFF,
};

/* enum <-> wire name; *_parse return -1 for an unknown name */
const char *tl_plan_name(enum tl_plan p);
int tl_plan_parse(const char *s);
const char *tl_transport_name(enum tl_transport t);
int tl_transport_parse(const char *s);
const char *tl_media_enc_name(enum tl_media_enc m);
int tl_media_enc_parse(const char *s);
const char *tl_source_name(enum tl_number_source s);
int tl_source_parse(const char *s);
const char *tl_agent_kind_name(enum tl_agent_kind k);
int tl_agent_kind_parse(const char *s);
const char *tl_role_name(enum tl_role r);
int tl_role_parse(const char *s);
const char *tl_rtp_latching_name(enum tl_rtp_latching l); /* "sdp-ip"…; NULL for DEFAULT */
int tl_rtp_latching_parse(const char *s);                 /* SDP_IP, ANY, OFF or -1 */

struct tl_kv {
    char name[TL_HEADER_NAME_MAX + 1];
    char value[TL_HEADER_VALUE_MAX + 1];
};

/* an agent's parameter (Twilio customParameters): a key and a string value */
struct tl_param {
    char key[TL_PARAM_KEY_MAX + 1];
    char value[TL_PARAM_VALUE_MAX + 1];
};

/* ---- E.164 prefixes: the destinations outbound calls may reach (toll-fraud guards) ----
 * "+" and 0..15 digits; "+" alone matches every number. */
#define TL_PREFIX_MAX   16
#define TL_PREFIXES_MAX 32
/* Premium-rate, shared-revenue and satellite ranges commonly abused for toll fraud
 * (International Revenue Share Fraud): the outbound_deny_prefixes setting's default. */
#define TL_DENY_PREFIXES_DEFAULT                                                                   \
    "+1900,+1976,+449,+4487,+4470,+49900,+49137,+49118,+3389,+43900,+43930,+41900,+41901,"         \
    "+41906,+39899,+34803,+34806,+34807,+34905,+31900,+31906,+31909,+32900,+32902,+32903,"         \
    "+32904,+32905,+48700,+808,+870,+881,+882,+883,+979"
int tl_valid_prefix(const char *s, const char *field, struct tl_err *err);
/* "+49,+1" (spaces allowed) into out: 0, or EINVAL naming field and the bad item, E2BIG
 * over cap entries */
int tl_prefix_list_parse(const char *csv, char (*out)[TL_PREFIX_MAX + 1], size_t cap, size_t *n,
                         const char *field, struct tl_err *err);
/* true when e164 starts with one of v[0..n) (the longest such one into *which, may be NULL) */
bool tl_prefix_match(const char *e164, const char (*v)[TL_PREFIX_MAX + 1], size_t n,
                     const char **which);

struct tl_workspace {
    char id[TL_ID_MAX];
    char name[TL_NAME_MAX + 1];
    enum tl_plan plan;
    char region[TL_REGION_MAX + 1]; /* data-residency label, default "eu" */
    /* where its outbound calls may go besides the country codes of its own numbers
     * (tl_store_workspace_country_codes): prefixes the operator added (schema v6) */
    size_t n_out_prefixes;
    char out_prefixes[TL_PREFIXES_MAX][TL_PREFIX_MAX + 1];
    int64_t created_at, updated_at; /* ms since the epoch */
};

struct tl_token {
    char id[TL_ID_MAX];
    char workspace_id[TL_ID_MAX]; /* "" for operator tokens */
    enum tl_role role;
    char name[TL_NAME_MAX + 1];
    char prefix[16]; /* first characters of the secret, to tell tokens apart in lists */
    int64_t created_at;
    int64_t last_used_at; /* reads: the last authentication, to the minute; 0 = never */
    int64_t expires_at;   /* 0 = never; on create, set by the caller */
};

struct tl_agent {
    char id[TL_ID_MAX];
    char workspace_id[TL_ID_MAX];
    char name[TL_NAME_MAX + 1];
    enum tl_agent_kind kind;
    char builtin[TL_BUILTIN_MAX + 1]; /* kind builtin: "echo" */
    char url[TL_AGENT_URL_MAX + 1];   /* kind websocket: ws:// or wss:// */
    size_t n_params;
    struct tl_param params[TL_PARAMS_MAX];
    /* extra upgrade headers; values often carry API keys, so they are sealed at rest
     * and reads return names with empty values (values_hidden = true) */
    size_t n_headers;
    struct tl_kv headers[TL_HEADERS_MAX];
    bool values_hidden;
    uint32_t connect_timeout_ms; /* kind websocket: DNS + TCP + TLS + upgrade; kind twiml:
                                  * each voice URL request (and the stream's connect);
                                  * 100..30000 */
    /* kind twiml (docs/agents.md "Move a Twilio bot"): url is the voice URL, http(s) */
    bool method_get;                         /* voice and fallback requests as GET */
    char fallback_url[TL_AGENT_URL_MAX + 1]; /* "" = none */
    char status_callback[TL_AGENT_URL_MAX + 1];
    int64_t created_at, updated_at;
};

/* outbound_trunk.number_format: how numbers go out in the Request-URI, From and To users
 * of outbound calls. E164 "+4930…" (Twilio, Telnyx, most); NO_PLUS "4930…" for carriers
 * that refuse the '+' (docs/calls.md "Number formats"). */
enum tl_number_format { TL_NUMFMT_E164, TL_NUMFMT_NO_PLUS };
const char *tl_number_format_name(enum tl_number_format f); /* "e164", "no_plus" */
int tl_number_format_parse(const char *s);

struct tl_outbound_trunk {
    char address[TL_HOST_MAX + 1];
    char username[TL_USER_MAX + 1];
    char password[TL_PASSWORD_MAX + 1]; /* plain text: only on writes (password_given) or
                                           from tl_store_number_secrets */
    bool password_given;                /* the write carries a password */
    bool has_password;                  /* the stored record has one (reads) */
    enum tl_transport transport;
    enum tl_media_enc media_encryption;
    size_t n_headers;
    struct tl_kv headers[TL_HEADERS_MAX];
    enum tl_number_format number_format;
};

struct tl_inbound_trunk {
    enum tl_transport transport; /* tls or tcp */
    enum tl_media_enc media_encryption;
    char username[TL_USER_MAX + 1];
    char password[TL_PASSWORD_MAX + 1];
    bool password_given;
    bool has_password;
    size_t n_allowed;
    char allowed_addresses[TL_ALLOWED_MAX][TL_CIDR_MAX + 1]; /* canonical text form */
    char origination_url[TL_URI_MAX + 1];                    /* "" = none */
    size_t n_headers;
    struct tl_kv headers[TL_HEADERS_MAX];
    enum tl_rtp_latching rtp_latching; /* DEFAULT: the gateway's setting */
    /* the owner's explicit consent to a trunk with neither allowed_addresses nor digest:
     * without it such a trunk is refused (anyone's INVITE would reach the paid agent) */
    bool allow_any_source;
};

struct tl_phone_number {
    char id[TL_ID_MAX];
    char workspace_id[TL_ID_MAX];
    char number[TL_E164_MAX + 1]; /* E.164 */
    char label[TL_NAME_MAX + 1];
    enum tl_number_source source;
    char agent_id[TL_ID_MAX]; /* "" = unassigned */
    struct tl_outbound_trunk outbound;
    bool has_inbound;
    struct tl_inbound_trunk inbound;
    int64_t created_at, updated_at;
};

/* ---- validation (validate.c): pure functions, no I/O ----
 * Each returns 0 or EINVAL with err filled: status 400, code "invalid_field", the given
 * field path, and a message that says the rule and, where one exists, the corrected
 * form. Decoders in src/api call these with the JSON path of the value. */
int tl_valid_e164(const char *s, const char *field, struct tl_err *err);
int tl_valid_trunk_address(const char *s, const char *field, struct tl_err *err);
int tl_valid_name(const char *s, bool required, const char *field, struct tl_err *err);
int tl_valid_username(const char *s, const char *field, struct tl_err *err);
int tl_valid_password(const char *s, const char *field, struct tl_err *err);
/* SIP header for custom trunk headers: name a token (RFC 3261 §25.1) not owned by the
 * gateway; value free of CR, LF, NUL and within cap */
int tl_valid_sip_header(const struct tl_kv *h, const char *field, struct tl_err *err);
/* IPv4/IPv6 address or CIDR block; on success writes the canonical form to out */
int tl_valid_cidr(const char *s, char out[TL_CIDR_MAX + 1], const char *field, struct tl_err *err);
int tl_valid_sip_uri(const char *s, const char *field, struct tl_err *err);   /* sip:/sips: */
int tl_valid_agent_url(const char *s, const char *field, struct tl_err *err); /* ws/wss */
/* an http:// or https:// URL (voice URLs, status callbacks); "" is EINVAL only when
 * required */
int tl_valid_http_url(const char *s, const char *field, bool required, struct tl_err *err);
/* true when two agent URLs lead to the same place: scheme, host (case-insensitive) and
 * port (the default one when absent) are equal. */
bool tl_agent_url_same_dest(const char *a, const char *b);
int tl_valid_ws_header(const struct tl_kv *h, const char *field, struct tl_err *err);
int tl_valid_param_key(const char *s, const char *field, struct tl_err *err);
int tl_valid_builtin(const char *s, const char *field, struct tl_err *err); /* "echo" */
int tl_valid_region(const char *s, const char *field, struct tl_err *err);
/* Whole-object rules (password with username, inbound transport not udp, duplicate
 * header names, …) and the risky-combination warnings. field_prefix is
 * "outbound_trunk" / "inbound_trunk". */
int tl_valid_outbound(const struct tl_outbound_trunk *t, const char *field_prefix,
                      struct tl_warnings *w, struct tl_err *err);
int tl_valid_inbound(const struct tl_inbound_trunk *t, const char *field_prefix,
                     struct tl_warnings *w, struct tl_err *err);
int tl_valid_agent(const struct tl_agent *a, struct tl_err *err);
/* The inbound_unauthenticated warning, when t has neither allowed_addresses nor digest:
 * tl_valid_inbound refuses such a trunk unless t->allow_any_source, and reads of a stored
 * one carry the warning (w may be NULL). */
void tl_inbound_open_warning(const struct tl_inbound_trunk *t, const char *field_prefix,
                             struct tl_warnings *w);
bool tl_plan_allows_sip_import(enum tl_plan p); /* professional or higher */

/* ---- the store ---- */
struct tl_store;

/* Opens (creating) the database and applies pending migrations. key: 32-byte master key.
 * db_path: a SQLite file, or a PostgreSQL conninfo ("postgresql://user@host:port/db" or
 * "host=… dbname=…", db.h tl_db_backend_for) whose password comes from the environment
 * (PGPASSWORD, ~/.pgpass) or from tl_store_open_ex. */
int tl_store_open(struct tl_store **sp, const char *db_path, const uint8_t key[32],
                  struct tl_err *err);
/* As tl_store_open but migrates only up to schema version `target` (tests of migration). */
int tl_store_open_at(struct tl_store **sp, const char *db_path, const uint8_t key[32], int target,
                     struct tl_err *err);
/* As tl_store_open_at with the PostgreSQL password (NULL: none; ignored for SQLite). */
int tl_store_open_ex(struct tl_store **sp, const char *db_path, const char *password,
                     const uint8_t key[32], int target, struct tl_err *err);
const char *tl_store_backend(struct tl_store *s); /* "sqlite" or "postgresql" */
/* The store the settings name (target.c): setting "" = SQLite at data_dir/trunkline.db; a
 * path = that SQLite file; a PostgreSQL URL or keyword string = that database, which must
 * not contain a password (EINVAL naming where it goes instead). The password comes from
 * password_file (refused when group or world can read it) or else the environment
 * variable TRUNKLINE_STORE_PASSWORD; "" when neither (peer/trust auth, ~/.pgpass). */
#define TL_STORE_PASSWORD_MAX 256
int tl_store_target(const char *setting, const char *data_dir, const char *password_file,
                    char *target, size_t tcap, char *password, size_t pcap, struct tl_err *err);
void tl_store_close(struct tl_store *s);
int tl_store_ping(struct tl_store *s); /* 0 when the database answers (readyz) */
int tl_store_schema_version(struct tl_store *s);
int tl_store_latest_version(void);
int tl_store_workspace_count(struct tl_store *s, int64_t *n);

struct tl_page {
    const char *cursor; /* NULL or "" = from the start; opaque, from next_cursor */
    size_t limit;       /* 1..TL_PAGE_MAX */
};
/* List functions call cb once per item in creation order, then write the cursor of the
 * next page to next_cursor ("" when there is none). A bad cursor is EINVAL with err
 * naming field "cursor". cb returning non-zero stops the walk and is returned. */

/* workspaces: create fills id and times and also creates the builtin agent "echo" */
int tl_store_workspace_create(struct tl_store *s, struct tl_workspace *w, struct tl_err *err);
int tl_store_workspace_get(struct tl_store *s, const char *id, struct tl_workspace *out);
int tl_store_workspace_update(struct tl_store *s, struct tl_workspace *w, struct tl_err *err);
typedef int (*tl_workspace_cb)(const struct tl_workspace *w, void *arg);
int tl_store_workspace_list(struct tl_store *s, const struct tl_page *pg, tl_workspace_cb cb,
                            void *arg, char next_cursor[TL_CURSOR_MAX], struct tl_err *err);
/* The E.164 country codes of the workspace's numbers ("+49", "+1"), each once, at most cap:
 * where its outbound calls may go when the operator set no prefixes. 0 or a store error. */
int tl_store_workspace_country_codes(struct tl_store *s, const char *workspace_id,
                                     char (*out)[TL_PREFIX_MAX + 1], size_t cap, size_t *n);

/* tokens: create fills id, prefix, created_at and writes the secret (shown once) */
int tl_store_token_create(struct tl_store *s, struct tl_token *t, char secret[TL_TOKEN_MAX + 1],
                          struct tl_err *err);
/* 0 with the token, or ENOENT for an unknown or expired one. Records last_used_at at most
 * once a minute per token, so a request never waits for an fsync of bookkeeping. */
int tl_store_token_auth(struct tl_store *s, const char *secret, struct tl_token *out);
typedef int (*tl_token_cb)(const struct tl_token *t, void *arg);
/* workspace_id NULL: every token (operator); else that workspace's tokens */
int tl_store_token_list(struct tl_store *s, const char *workspace_id, const struct tl_page *pg,
                        tl_token_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                        struct tl_err *err);
int tl_store_token_get(struct tl_store *s, const char *workspace_id, const char *id,
                       struct tl_token *out);
/* 0, ENOENT, or EBUSY for the last operator token that has not expired (deleting it would
 * lock everyone out of the operator routes: recovery is `trunkline token create` on the
 * host). */
int tl_store_token_delete(struct tl_store *s, const char *workspace_id, const char *id);

/* agents. delete of an agent that numbers are assigned to: EBUSY, err code
 * "agent_in_use" (409), the message says how many numbers to unassign first. */
int tl_store_agent_create(struct tl_store *s, struct tl_agent *a, struct tl_err *err);
int tl_store_agent_get(struct tl_store *s, const char *workspace_id, const char *id,
                       struct tl_agent *out);
/* the call path: the agent with its header values opened (values_hidden false) */
int tl_store_agent_secrets(struct tl_store *s, const char *workspace_id, const char *id,
                           struct tl_agent *out);
/* replaces name/kind/builtin/url/params/headers; a header given with an empty value and
 * values_hidden set keeps the stored value of the header of that name */
/* A header entry without a value keeps the stored value — unless the URL's destination
 * (scheme, host, port) changed: then such headers are dropped and a warning in w names
 * them (w may be NULL). */
int tl_store_agent_update(struct tl_store *s, struct tl_agent *a, struct tl_warnings *w,
                          struct tl_err *err);
int tl_store_agent_delete(struct tl_store *s, const char *workspace_id, const char *id,
                          struct tl_err *err);
typedef int (*tl_agent_cb)(const struct tl_agent *a, void *arg);
int tl_store_agent_list(struct tl_store *s, const char *workspace_id, const struct tl_page *pg,
                        tl_agent_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                        struct tl_err *err);

/* phone numbers.
 * create: the workspace's plan must allow SIP import for source sip_trunk (EPERM, 403
 *   "plan_required"); the number must not exist in any workspace (EEXIST, 409
 *   "number_taken"); agent_id, when set, must be an agent of the same workspace (EINVAL,
 *   400 invalid_field "agent_id"). Fills id and times.
 * replace (PUT): replaces label and both trunk configurations; agent_id is replaced too
 *   (the API copies the stored one in when the request leaves it out). A trunk whose
 *   password_given is false keeps the stored password only when its username equals the
 *   stored username; a changed non-empty username without a password is EINVAL, 400
 *   "invalid_field" "<prefix>.password". A stored outbound password never follows a change
 *   of outbound_trunk.address (compared case-insensitively): without a password in the
 *   same request it is dropped, and a warning "password_dropped" in w (NULL: none) says so.
 *   The number itself and its source do not change.
 * set_agent: agent_id "" unassigns.
 * release: only for source platform (else EINVAL, 409 "release_not_supported", message:
 *   delete instead); removes the number from the workspace.
 * delete: removes a sip_trunk number (a platform number: 409 "delete_not_supported",
 *   release instead). */
int tl_store_number_create(struct tl_store *s, struct tl_phone_number *n, struct tl_err *err);
int tl_store_number_get(struct tl_store *s, const char *workspace_id, const char *id,
                        struct tl_phone_number *out);
int tl_store_number_replace(struct tl_store *s, struct tl_phone_number *n, struct tl_warnings *w,
                            struct tl_err *err);
int tl_store_number_set_agent(struct tl_store *s, const char *workspace_id, const char *id,
                              const char *agent_id, struct tl_phone_number *out,
                              struct tl_err *err);
int tl_store_number_delete(struct tl_store *s, const char *workspace_id, const char *id,
                           struct tl_err *err);
int tl_store_number_release(struct tl_store *s, const char *workspace_id, const char *id,
                            struct tl_err *err);
/* the call path: the number with passwords opened (any workspace) */
int tl_store_number_secrets(struct tl_store *s, const char *number_e164,
                            struct tl_phone_number *out);
struct tl_number_filter {
    const char *agent_id; /* NULL = any */
    const char *number;   /* NULL = any; exact E.164 */
    const char *q;        /* NULL or "" = any; a substring of the number or of the label
                           * (ASCII letters compared case-insensitively) */
};
typedef int (*tl_number_cb)(const struct tl_phone_number *n, void *arg);
int tl_store_number_list(struct tl_store *s, const char *workspace_id,
                         const struct tl_number_filter *f, const struct tl_page *pg,
                         tl_number_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                         struct tl_err *err);
/* The newest diagnostic event of a number, as lists show it (the badge of the UI). */
struct tl_event_brief;
/* As tl_store_number_list, with each number's newest event (latest NULL: none), found in
 * the same query through the events' (number_id, seq) index. */
typedef int (*tl_number_latest_cb)(const struct tl_phone_number *n,
                                   const struct tl_event_brief *latest, void *arg);
int tl_store_number_list_latest(struct tl_store *s, const char *workspace_id,
                                const struct tl_number_filter *f, const struct tl_page *pg,
                                tl_number_latest_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                                struct tl_err *err);

/* ---- change hook ----
 * Who keeps derived state (the in-memory routing cache) learns of every committed change
 * that can alter routing. The hook runs on the writing thread (the API's), after the
 * commit and after the store's lock is released, so it may read the store again; it
 * must not block for long, since the writer's HTTP request waits for it. Hooks of two
 * writers on two threads may run in either order: a consumer re-reads the current state
 * instead of trusting the order (that makes replays harmless). One hook per store;
 * fn NULL removes it. Set it before other threads write. */
enum tl_store_change_kind {
    TL_CHANGE_NUMBER_CREATED,
    TL_CHANGE_NUMBER_REPLACED, /* PUT, or a PATCH of the label */
    TL_CHANGE_NUMBER_ASSIGNED, /* agent set or unset */
    TL_CHANGE_NUMBER_DELETED,
    TL_CHANGE_NUMBER_RELEASED,
    TL_CHANGE_AGENT_UPDATED,
    TL_CHANGE_AGENT_DELETED,
    TL_CHANGE_WORKSPACE_UPDATED, /* name, plan or region */
};
struct tl_store_change {
    enum tl_store_change_kind kind;
    const char *workspace_id;
    const char *id;     /* the number, agent or workspace id */
    const char *number; /* number changes: its E.164; else NULL */
};
typedef void (*tl_store_change_fn)(const struct tl_store_change *c, void *arg);
void tl_store_set_change_hook(struct tl_store *s, tl_store_change_fn fn, void *arg);

/* ---- the cluster change feed (issue 13) ----
 * On a store shared by several nodes (PostgreSQL), every committed change of the hook's
 * kinds is also sent as a NOTIFY on channel "trunkline_change" right after its commit,
 * and a thread of each node LISTENs on a connection of its own and runs this node's
 * change hook for the changes of the OTHER nodes (its own already ran it): a number
 * imported through node 1's API is routed by node 2 within the notification's delivery
 * time (milliseconds), with no store read on the call path.
 * What a notification cannot carry is a change made while the listener was not connected:
 * after every reconnection (and every resync_s seconds, a net for a writer killed between
 * its commit and its NOTIFY) the resync hook runs: the consumer reloads everything.
 * Both hooks run on the feed's thread, like the change hook on a writer's.
 * tl_store_feed_start: 0 (also when the store is not shared: nothing to do), or ENOMEM.
 * The first connection is tried before it returns; when it fails the thread keeps trying
 * (with back-off) and resyncs once connected. resync_s 0: never on a timer. */
bool tl_store_shared(struct tl_store *s);
int tl_store_feed_start(struct tl_store *s, unsigned resync_s);
void tl_store_feed_stop(struct tl_store *s); /* joins the thread; a no-op when not started */
/* fn returns 0, or an error: then it runs again a second later */
void tl_store_set_resync_hook(struct tl_store *s, int (*fn)(void *arg), void *arg);
/* Feed statistics, for tests and the log: notifications applied, resyncs, connected. */
struct tl_store_feed_stats {
    uint64_t applied, own, resyncs, lost;
    bool connected;
};
void tl_store_feed_stats(struct tl_store *s, struct tl_store_feed_stats *out);

/* ---- call records and diagnostic events (schema v3; drop counters v4) ----
 * Written in batches by the recorder thread (store/records.h), never by the call path
 * itself. Records never hold secrets: no passwords, no SDP keys, no Authorization values.
 * Ids: "ca_…" calls, "ev_…" events. */
#define TL_SIP_CALLID_MAX    256
#define TL_END_REASON_MAX    64
#define TL_CODEC_NAME_MAX    32
#define TL_EVENT_CODE_MAX    32
#define TL_EVENT_MESSAGE_MAX 320
#define TL_EVENT_HINT_MAX    400
#define TL_EVENT_DETAILS_MAX 1024 /* a JSON object, as text */

enum tl_call_direction { TL_CALL_INBOUND, TL_CALL_OUTBOUND };
const char *tl_call_direction_name(enum tl_call_direction d);

/* The status of a call (schema v6), the same words for both directions:
 *   queued      outbound: accepted by the API, the agent leg is being opened
 *   dialing     outbound: the INVITE is out, nothing heard back but 100 Trying
 *   ringing     outbound: 180/183 received; inbound: our 180 is out, the agent connects
 *   in_progress answered (200 OK sent or received)
 * and ends as one of
 *   completed   answered, then hung up by either side
 *   busy        486 Busy Here / 600 Busy Everywhere
 *   no_answer   the ringing timeout passed (our CANCEL), or 408/480 from the callee
 *   failed      refused or broken before the answer (final_status and sip_reason say
 *               what the far end answered; hint says what to change)
 *   canceled    hung up before the answer: through the API (outbound), or the carrier's
 *               CANCEL (inbound) */
enum tl_call_status {
    TL_CALL_QUEUED,
    TL_CALL_DIALING,
    TL_CALL_RINGING,
    TL_CALL_IN_PROGRESS,
    TL_CALL_COMPLETED,
    TL_CALL_BUSY,
    TL_CALL_NO_ANSWER,
    TL_CALL_FAILED,
    TL_CALL_CANCELED,
};
const char *tl_call_status_name(enum tl_call_status st);
int tl_call_status_parse(const char *s); /* -1 for an unknown word */
bool tl_call_status_final(enum tl_call_status st);
#define TL_SIP_REASON_MAX 64 /* reason phrase kept from the far end's final response */

struct tl_call_record {
    char id[TL_ID_MAX]; /* "ca_…": the caller makes it (tl_id_new) at call start */
    char workspace_id[TL_ID_MAX];
    char number_id[TL_ID_MAX];
    char number[TL_E164_MAX + 1];
    char agent_id[TL_ID_MAX]; /* "" = none */
    enum tl_call_direction direction;
    char from_uri[TL_URI_MAX + 1];
    char from_user[TL_USER_MAX + 1];
    char to_user[TL_USER_MAX + 1];
    char sip_call_id[TL_SIP_CALLID_MAX + 1];
    int64_t created_at;  /* ms since the epoch */
    int64_t answered_at; /* 0 = not answered (null) */
    int64_t ended_at;    /* 0 = still running (null) */
    char end_reason[TL_END_REASON_MAX + 1];
    int final_status; /* SIP status code, 0 = none yet */
    char codec[TL_CODEC_NAME_MAX + 1];
    bool srtp; /* media_encryption "srtp" or "rtp" */
    uint64_t packets_sent, packets_received, packets_lost;
    double jitter_ms;
    /* RTP/RTCP packets dropped, by reason (schema v4; src/media/media.h): from a source the
     * latching policy refused, SRTP/SRTCP authentication or replay, malformed or too big,
     * unknown payload type, before a late offer's answer */
    uint64_t dropped_source, dropped_auth, dropped_malformed, dropped_pt, dropped_early;
    /* agent audio dropped because 60 s were already queued (schema v5) */
    uint64_t audio_dropped_bytes;
    /* schema v6: where the call stands (above), the far end's reason phrase with
     * final_status, and for a failure the plain-language hint of its event */
    enum tl_call_status status;
    char sip_reason[TL_SIP_REASON_MAX + 1];
    char hint[TL_EVENT_HINT_MAX + 1];
};

struct tl_event {
    char id[TL_ID_MAX];           /* "ev_…"; the recorder fills it when empty */
    char workspace_id[TL_ID_MAX]; /* "" = operator-level (no number matched) */
    char number_id[TL_ID_MAX];    /* "" = none */
    char code[TL_EVENT_CODE_MAX + 1];
    char message[TL_EVENT_MESSAGE_MAX + 1];
    char hint[TL_EVENT_HINT_MAX + 1];
    char details[TL_EVENT_DETAILS_MAX + 1]; /* JSON object text; "" = {} */
    int64_t created_at;                     /* the recorder fills it when 0 */
};

struct tl_event_brief {
    char id[TL_ID_MAX];
    char code[TL_EVENT_CODE_MAX + 1];
    char message[TL_EVENT_MESSAGE_MAX + 1];
    int64_t created_at;
};

/* One write of the recorder: calls are upserted by id (a call is written when it starts
 * and again when it ends), events inserted. All of them in one transaction. */
struct tl_record_ref {
    const struct tl_call_record *call; /* exactly one of the two is set */
    const struct tl_event *event;
};
int tl_store_records_write(struct tl_store *s, const struct tl_record_ref *v, size_t n,
                           struct tl_err *err);
/* The same, and *deliveries (may be NULL) the number of webhook deliveries it queued:
 * call.initiated (a new record), call.ringing, call.answered (status in_progress),
 * call.completed or call.failed (the other final statuses), each once per call, for
 * workspaces with a webhook. */
int tl_store_records_write_hooks(struct tl_store *s, const struct tl_record_ref *v, size_t n,
                                 size_t *deliveries, struct tl_err *err);

/* ---- outbound calls (POST /v1/calls) ----
 * What a request asks for, as the API decoded and validated it (tl_call_order), and what
 * the loop needs to place the call (tl_call_request): the number with its outbound trunk's
 * password opened and the agent with its header values opened — SECRET: wipe it
 * (sodium_memzero) once the call is placed. No database read happens on the loop: the API
 * thread reads all of it. */
#define TL_RINGING_TIMEOUT_DEFAULT 60  /* s, as Twilio's `timeout` */
#define TL_RINGING_TIMEOUT_MAX     600 /* s */
#define TL_CALL_DURATION_MAX       (24 * 3600)
struct tl_call_order {
    char from[TL_E164_MAX + TL_ID_MAX]; /* a number of the workspace: pn_… or E.164 */
    char to[TL_E164_MAX + 1];           /* E.164 */
    char agent_id[TL_ID_MAX];           /* "" = the number's agent */
    size_t n_params;                    /* the agent's customParameters for this call */
    struct tl_param params[TL_PARAMS_MAX];
    size_t n_headers;                     /* X- headers for this call's INVITE */
    struct tl_kv headers[TL_HEADERS_MAX]; /* names start with X- (tl_valid_call_header) */
    uint32_t ringing_timeout_s;           /* 1..TL_RINGING_TIMEOUT_MAX; 0 = default */
    uint32_t max_duration_s;              /* 0 = the gateway's max_call_duration_s */
};
/* X- header of one call: tl_valid_sip_header, and the name must start with "X-" */
int tl_valid_call_header(const struct tl_kv *h, const char *field, struct tl_err *err);
/* The ITU-T E.164 country code of an E.164 number ("+4930…" → "+49", "+1555…" → "+1"):
 * 0, or EINVAL when the number has no assigned country code. */
#define TL_CC_MAX 4 /* "+" and at most 3 digits */
int tl_e164_country_code(const char *e164, char out[TL_CC_MAX + 1]);

struct tl_call_request {
    struct tl_call_order order;
    struct tl_phone_number number; /* outbound.password opened — SECRET */
    struct tl_agent agent;         /* header values opened — SECRET */
    char account_sid[TL_TWILIO_SID_LEN + 1];
};

/* ---- workspace webhooks (schema v6; docs/api.md "Webhooks") ----
 * A workspace's URL for call status changes and its signing secret ("whsec_…", sealed at
 * rest, shown once when issued). A delivery is a row that tl_store_records_write inserts
 * in the same transaction as the call record whose status change it reports, so a restart
 * loses none; the sender (api/webhooks.c) takes due rows, POSTs them and deletes or
 * reschedules them. */
#define TL_WEBHOOK_SECRET_LEN 49 /* "whsec_" + 43 base64url characters of 32 random bytes */
#define TL_WEBHOOK_BODY_MAX   4096
#define TL_WEBHOOK_ERROR_MAX  255
struct tl_webhook {
    char workspace_id[TL_ID_MAX];
    char url[TL_AGENT_URL_MAX + 1];
    int64_t created_at; /* when the current secret was issued */
    /* its deliveries (reads) */
    int64_t pending;
    int64_t last_success_at, last_failure_at; /* 0 = never */
    char last_error[TL_WEBHOOK_ERROR_MAX + 1];
};
/* Sets the URL and issues a new secret (the old one stops at once). 0, ENOENT (no such
 * workspace), or a store error. */
int tl_store_webhook_set(struct tl_store *s, const char *workspace_id, const char *url,
                         struct tl_webhook *out, char secret[TL_WEBHOOK_SECRET_LEN + 1],
                         struct tl_err *err);
int tl_store_webhook_get(struct tl_store *s, const char *workspace_id,
                         struct tl_webhook *out); /* 0, ENOENT */
/* Removes it and its pending deliveries. 0, ENOENT. */
int tl_store_webhook_delete(struct tl_store *s, const char *workspace_id);
/* The sender's view: URL and secret opened. 0, ENOENT. */
int tl_store_webhook_secret(struct tl_store *s, const char *workspace_id,
                            char url[TL_AGENT_URL_MAX + 1], char secret[TL_WEBHOOK_SECRET_LEN + 1]);

struct tl_delivery {
    char id[TL_ID_MAX]; /* "wd_…": also the event's id in the body */
    char workspace_id[TL_ID_MAX];
    char event[32]; /* "call.answered" */
    char body[TL_WEBHOOK_BODY_MAX + 1];
    uint32_t attempts;
    int64_t created_at, next_at; /* ms since the epoch */
};
/* Up to cap deliveries due at now_ms (oldest first) into out[0..*n); *next_at: when the
 * next one not yet due is (0: none). 0 or a store error. */
int tl_store_deliveries_due(struct tl_store *s, int64_t now_ms, struct tl_delivery *out, size_t cap,
                            size_t *n, int64_t *next_at);
/* Delivered (2xx): the row goes, the webhook's last_success_at is set. */
int tl_store_delivery_done(struct tl_store *s, const struct tl_delivery *d, int64_t at);
/* Failed: next_at 0 gives up (the row goes); else attempts and next_at are stored. The
 * webhook's last_failure_at and last_error are set either way. */
int tl_store_delivery_failed(struct tl_store *s, const struct tl_delivery *d, uint32_t attempts,
                             int64_t next_at, const char *error, int64_t at);

/* Start-up, before any call is taken: every call still without an end (the process
 * died with it up: kill -9, a crash, power loss) gets ended_at = now_ms and end_reason
 * (the daemon passes "gateway_restart"); *closed says how many. On a shared store (several
 * nodes) only the open calls of nodes silent for dead_ms (their node_calls heartbeat,
 * issue 13) or of no known node: the others' calls in progress are theirs. The cluster
 * sync thread runs the same sweep once a minute ("node_lost"), for a node that never
 * comes back. */
int tl_store_calls_close_open(struct tl_store *s, const char *end_reason, int64_t now_ms,
                              int64_t dead_ms, int64_t *closed, struct tl_err *err);
/* The node id written into this store's call records (schema v11; "" = none: a single
 * node). Set before the first record is written. */
void tl_store_set_node_id(struct tl_store *s, const char *node_id);
/* Lists are newest first (a call log is read from the top); cursors as for the other
 * lists. number_id NULL = every number of the workspace. */
typedef int (*tl_call_cb)(const struct tl_call_record *c, void *arg);
int tl_store_call_list(struct tl_store *s, const char *workspace_id, const char *number_id,
                       const struct tl_page *pg, tl_call_cb cb, void *arg,
                       char next_cursor[TL_CURSOR_MAX], struct tl_err *err);
int tl_store_call_get(struct tl_store *s, const char *workspace_id, const char *id,
                      struct tl_call_record *out);
/* The events of one number of the workspace, newest first; ENOENT when the number is not
 * in this workspace (the events of a deleted number stay in the file, unlisted). */
typedef int (*tl_event_cb)(const struct tl_event *e, void *arg);
int tl_store_event_list(struct tl_store *s, const char *workspace_id, const char *number_id,
                        const struct tl_page *pg, tl_event_cb cb, void *arg,
                        char next_cursor[TL_CURSOR_MAX], struct tl_err *err);
/* Operator-level events (no workspace), newest first; for diagnostics and tests. */
int tl_store_event_list_operator(struct tl_store *s, const struct tl_page *pg, tl_event_cb cb,
                                 void *arg, char next_cursor[TL_CURSOR_MAX], struct tl_err *err);

/* Every number with its passwords opened, in creation order (the routing cache's full
 * load at start). cb runs without the store's lock; the caller wipes nothing: the
 * struct is wiped after each callback. */
int tl_store_number_secrets_each(struct tl_store *s, tl_number_cb cb, void *arg);

/* ---- secrets (secrets.c) ---- */
/* Refuses (EPERM, with the chmod to run in err) a data directory that its group or others
 * may write; ENOTDIR or stat's errno otherwise. 0 when it is fit to hold the store. */
int tl_data_dir_check(const char *data_dir, struct tl_err *err);
/* Loads data_dir/master.key, creating it (32 random bytes, mode 0600, O_EXCL) when
 * absent. Refuses a key file of the wrong size or readable by group/other. */
int tl_master_key_load(const char *data_dir, uint8_t key[32], bool *created, struct tl_err *err);
/* Where the master key comes from (docs/configuration.md, "Master key"). Every node of
 * one database needs the same key: the environment variable TRUNKLINE_MASTER_KEY (64 hex
 * digits or base64 of 32 bytes), else the setting master_key_file (the 32 bytes raw, or
 * that text; mode 0600 or stricter), else data_dir/master.key, created when create is
 * set. The value of the variable never reaches an error message. */
#define TL_MASTER_KEY_ENV_NAME "TRUNKLINE_MASTER_KEY"
enum tl_master_key_source { TL_MASTER_KEY_DATA_DIR, TL_MASTER_KEY_FILE, TL_MASTER_KEY_ENV };
struct tl_master_key_opts {
    const char *env_value; /* getenv(TL_MASTER_KEY_ENV_NAME), or NULL */
    const char *key_file;  /* the master_key_file setting, or NULL/"" */
    const char *data_dir;
    bool create; /* create data_dir/master.key when it is the source and absent */
};
int tl_master_key_resolve(const struct tl_master_key_opts *o, uint8_t key[32],
                          enum tl_master_key_source *src, bool *created, struct tl_err *err);
const char *tl_master_key_source_name(enum tl_master_key_source src); /* for logs */
/* A non-secret id of the key, to compare nodes: 8 hex digits of a keyed BLAKE2b of a fixed
 * context (not a prefix of the key). */
#define TL_KEY_ID_LEN 8
void tl_master_key_id(const uint8_t key[32], char out[TL_KEY_ID_LEN + 1]);
/* A subkey for one purpose (libsodium crypto_kdf: ctx is exactly 8 characters, id a
 * number within it); the master key itself never leaves the store and this file. */
void tl_master_key_derive(const uint8_t key[32], uint64_t id, const char ctx[8], uint8_t out[32]);
/* The key check in store_meta: a node whose key cannot open it refuses to start. */
#define TL_STORE_META_KEY_CHECK "master_key_check"
#define TL_KEY_CHECK_LEN        (TL_KEY_ID_LEN + 28 + 24 + 16)
int tl_key_check_make(const uint8_t key[32], uint8_t out[TL_KEY_CHECK_LEN]); /* 0 or EIO */
/* 0: the key opens it. EBADMSG: it does not (or the value is damaged); found_id gets the id
 * the check was written with ("unknown" when unreadable). */
int tl_key_check_verify(const uint8_t key[32], const uint8_t *check, size_t len,
                        char found_id[TL_KEY_ID_LEN + 1]);
/* seal/open with XChaCha20-Poly1305; ad binds the ciphertext to its row and field.
 * sealed buffers are nonce || ciphertext || tag. */
#define TL_SEAL_OVERHEAD (24 + 16)
int tl_seal(const uint8_t key[32], const char *ad, const void *plain, size_t len, uint8_t *out,
            size_t out_cap, size_t *out_len);
int tl_unseal(const uint8_t key[32], const char *ad, const uint8_t *sealed, size_t len, void *plain,
              size_t plain_cap, size_t *plain_len);
/* new random API token "tlk_…" and its hash (keyed with the master key) */
void tl_token_new(char secret[TL_TOKEN_MAX + 1]);
void tl_token_hash(const uint8_t key[32], const char *secret, uint8_t hash[32]);

/* ---- Twilio-shaped credentials, for bots built for Twilio (docs/agents.md) ----
 * A workspace's AccountSid is "AC" + 32 hex digits derived from its id with the master
 * key: the same everywhere (start frames, REST emulation), unguessable from the id. The
 * auth token (32 hex digits, like Twilio's) is shown once when issued and kept sealed:
 * it checks HTTP Basic on the REST emulation and keys X-Twilio-Signature. */
#define TL_TWILIO_TOKEN_LEN 32
struct tl_twilio_account {
    char workspace_id[TL_ID_MAX];
    char account_sid[TL_TWILIO_SID_LEN + 1];
    int64_t created_at; /* when the current token was issued */
};
void tl_store_account_sid(struct tl_store *s, const char *workspace_id,
                          char out[TL_TWILIO_SID_LEN + 1]);
/* Issues a token (a second call rotates it: the old one stops working at once). */
int tl_store_twilio_issue(struct tl_store *s, const char *workspace_id,
                          struct tl_twilio_account *out, char token[TL_TWILIO_TOKEN_LEN + 1],
                          struct tl_err *err);
int tl_store_twilio_get(struct tl_store *s, const char *workspace_id,
                        struct tl_twilio_account *out); /* 0, ENOENT */
int tl_store_twilio_token(struct tl_store *s, const char *workspace_id,
                          char token[TL_TWILIO_TOKEN_LEN + 1]); /* opened; 0, ENOENT */
/* HTTP Basic of the REST emulation: 0 with the workspace, EPERM for an unknown AccountSid
 * or a wrong token alike (constant time over the token), or a store error. */
int tl_store_twilio_auth(struct tl_store *s, const char *account_sid, const char *token,
                         char workspace_id[TL_ID_MAX]);
int tl_store_twilio_delete(struct tl_store *s, const char *workspace_id); /* 0, ENOENT */

/* First start (bootstrap.c): when no token exists at all, creates the workspace "default"
 * (plan professional) with the builtin echo agent (when no workspace exists either), an
 * operator token and a workspace admin token, and prints them ONCE on stdout — never
 * through the logger: log files are shipped and kept, a terminal is not. Keyed on "no
 * token" rather than "no workspace", so a crash between the steps cannot lock the operator
 * out. api_url goes into the printed hints. 0 or an errno (logged). */
int tl_store_bootstrap(struct tl_store *st, const char *api_url);

#endif
