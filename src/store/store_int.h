/* store_int.h: what the store's files (store.c and store_*.c, split by domain object)
 * share: the store's state, column and size constants, and the helpers of store.c. Not
 * an interface for anything outside src/store. */
#ifndef TL_STORE_INT_H
#define TL_STORE_INT_H

#include <pthread.h>

#include <jansson.h>

#include "store/db.h"
#include "store/store.h"

#define TOKEN_PREFIX_LEN 12    /* "tlk_" + 8 characters: enough to tell tokens apart */
#define TOKEN_SECRET_LEN 47    /* "tlk_" + 43 base64url characters */
#define TOKEN_TOUCH_MS   60000 /* last_used_at granularity: at most one write a minute */
#define SEALED_PW_MAX    (TL_PASSWORD_MAX + TL_SEAL_OVERHEAD)
/* sealed agent headers: per header 1-byte name length, name, 2-byte value length, value */
#define HDR_PLAIN_MAX  (TL_HEADERS_MAX * (1 + TL_HEADER_NAME_MAX + 2 + TL_HEADER_VALUE_MAX))
#define HDR_SEALED_MAX (HDR_PLAIN_MAX + TL_SEAL_OVERHEAD)

struct tl_store {
    pthread_mutex_t mu;
    struct tl_db *db;
    int version; /* schema version of the open database */
    uint8_t key[32];
    tl_store_change_fn change_fn; /* set before other threads write: read without mu */
    void *change_arg;
    /* the cluster change feed (store_feed.c): the connection's target and password are
     * kept to open the listener's own connection (the password wiped at close) */
    char *target, *password;
    char origin[17];  /* this process's tag in the payloads: its own are skipped */
    char channel[64]; /* NAMEDATALEN - 1 at most */
    int (*resync_fn)(void *arg);
    void *resync_arg;
    struct tl_feed *feed;
    char node_id[48]; /* written into call records (tl_store_set_node_id) */
};
/* store_feed.c: at open, the feed's settings (ENOMEM); after a commit, the NOTIFY of a
 * change (a no-op unless shared); at close, the thread stopped and everything freed */
int tl__feed_init(struct tl_store *s, const char *target, const char *password);
void tl__feed_send(struct tl_store *s, const struct tl_store_change *c);
void tl__feed_free(struct tl_store *s);
/* one NOTIFY payload (NUL-terminated, at most 511 bytes) into its fields; false for
 * anything else (fuzz_feed_payload) */
bool tl__feed_parse(const char *p, char origin[17], enum tl_store_change_kind *kind,
                    char ws[TL_ID_MAX], char id[TL_ID_MAX], char number[TL_E164_MAX + 1]);

/* reads one row of a list query into out, and its seq (the cursor) */
typedef int (*row_reader)(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err);

struct sealed {
    bool present;
    size_t len;
    uint8_t buf[SEALED_PW_MAX];
};

#define WS_COLS "seq, id, name, plan, region, created_at, updated_at"
/* the columns of schema v6 and later */
#define WS_COLS6 WS_COLS ", outbound_prefixes_json"
#define TK_COLS  "seq, id, workspace_id, role, name, prefix, created_at"
/* TK_COLS and the bookkeeping columns, for reads; a store opened at an older schema
 * (migration tests) reads NULLs */
#define TK_COLS_RD(s)                                                                              \
    ((s)->version >= 6   ? TK_COLS ", last_used_at, expires_at"                                    \
     : (s)->version >= 2 ? TK_COLS ", last_used_at, NULL"                                          \
                         : TK_COLS ", NULL, NULL")
#define AG_COLS                                                                                    \
    "seq, id, workspace_id, name, kind, builtin, url, params_json, header_names_json, "            \
    "created_at, updated_at, connect_timeout_ms, voice_method, fallback_url, status_callback"
#define AG_COL_SEALED 15 /* headers_sealed, when a query appends it */
#define PN_COLS                                                                                    \
    "seq, id, workspace_id, number, label, source, agent_id, outbound_json, "                      \
    "outbound_password IS NOT NULL, inbound_json, inbound_password IS NOT NULL, created_at, "      \
    "updated_at"
#define PN_COL_OUT_PW 13 /* outbound_password, inbound_password, when a query appends them */
#define PN_COL_IN_PW  14

/* store.c */
int tl__ag_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err);
int tl__bind_args(struct tl_db_stmt *st, const char *const *args, int n);
int tl__bind_blob(struct tl_db_stmt *st, int i, const void *p, size_t len, bool present);
int tl__bind_opt(struct tl_db_stmt *st, int i, const char *v);
int tl__bind_str(struct tl_db_stmt *st, int i, const char *v);
int tl__col_sealed(struct tl_db_stmt *st, int i, struct sealed *out);
const char *tl__col_str(struct tl_db_stmt *st, int i);
void tl__col_text(struct tl_db_stmt *st, int i, char *dst, size_t cap);
int tl__corrupt(const char *op, const char *id, const char *what, struct tl_err *err);
int tl__db_fail(struct tl_store *s, const char *op, struct tl_err *err);
int tl__exec_args(struct tl_store *s, const char *op, const char *sql, const char *const *args,
                  int n, struct tl_err *err);
void tl__fin(struct tl_db_stmt **st);
int tl__header_names_to_json(const struct tl_agent *a, char **out);
int tl__headers_open(struct tl_store *s, const char *agent_id, const void *sealed, size_t len,
                     struct tl_kv *h, size_t *n);
int tl__headers_seal(struct tl_store *s, const char *agent_id, const struct tl_kv *h, size_t n,
                     uint8_t *out, size_t *out_len);
int tl__inbound_to_json(const struct tl_inbound_trunk *t, char **out);
int tl__json_put(json_t *o, const char *k, json_t *v);
int tl__list_page(struct tl_store *s, const char *op, const char *sql, const char *const *args,
                  int n_args, const struct tl_page *pg, size_t item_size, row_reader rd,
                  void **items, size_t *n, char next_cursor[TL_CURSOR_MAX], struct tl_err *err);
void tl__lock(struct tl_store *s);
int tl__not_found(struct tl_err *err, const char *what);
void tl__notify(struct tl_store *s, enum tl_store_change_kind kind, const char *ws, const char *id,
                const char *number);
int tl__open_password(struct tl_store *s, const char *row_id, const char *field,
                      const struct sealed *in, char out[TL_PASSWORD_MAX + 1]);
const char *tl__opt_name(const char *n);
int tl__outbound_to_json(const struct tl_outbound_trunk *t, char **out);
int tl__params_to_json(const struct tl_agent *a, char **out);
int tl__pn_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err);
int tl__prep(struct tl_store *s, const char *op, const char *sql, struct tl_db_stmt **st,
             struct tl_err *err);
int tl__row_one(struct tl_store *s, const char *op, const char *sql, const char *const *args, int n,
                struct tl_db_stmt **st, struct tl_err *err);
int tl__seal_password(struct tl_store *s, const char *row_id, const char *field, const char *pw,
                      struct sealed *out);
int tl__step_done(struct tl_store *s, const char *op, struct tl_db_stmt *st, struct tl_err *err);
int tl__step_fin(struct tl_store *s, const char *op, struct tl_db_stmt **st, int bound,
                 struct tl_err *err);
int tl__tk_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err);
int tl__tx_begin(struct tl_store *s, const char *op, struct tl_err *err);
int tl__tx_commit(struct tl_store *s, const char *op, struct tl_err *err);
void tl__tx_end(struct tl_store *s, struct tl_db_stmt *st);
void tl__tx_rollback(struct tl_store *s);
void tl__unlock(struct tl_store *s);
int tl__ws_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err);

/* store_workspace.c */
int tl__ws_plan(struct tl_store *s, const char *op, const char *ws, enum tl_plan *plan,
                struct tl_err *err);

/* store_agent.c */
int tl__check_agent(struct tl_store *s, const char *op, const char *ws, const char *agent_id,
                    struct tl_err *err);

#endif
