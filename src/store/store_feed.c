/* store_feed: the cluster change feed (store.h, issue 13).
 *
 * Sending: tl__notify (store.c) runs after every committed change of the hook's kinds;
 * on a shared store it sends one NOTIFY with the change, on the writer's connection, right
 * after the commit. A NOTIFY inside the writer's transaction would also survive a writer
 * killed between the two statements, but several writes commit as single statements
 * (autocommit) and the window is one round trip; the periodic resync covers it.
 *
 * Receiving: one thread per node with a connection of its own, LISTENing. Each payload is
 * parsed strictly (it comes from the database, which other programs may write to too) and
 * handed to the change hook unless this process sent it. The channel is named after the
 * store's schema, so that stores in two schemas of one database (tests; tenants of a
 * shared server) do not wake each other.
 *
 * Payload: "1|<origin>|<kind>|<workspace id>|<id>|<number>", origin 16 hex characters
 * drawn per process at open, the last three fields possibly empty. Ids and E.164
 * numbers never hold '|'. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/core.h"
#include "store/store_int.h"

#define FEED_CHANNEL        "trunkline_change"
#define FEED_PAYLOAD        512 /* far above the longest change; PostgreSQL allows 8000 */
#define FEED_WAIT_MS        1000
#define FEED_BACKOFF_MS     250
#define FEED_BACKOFF_MAX_MS 5000

struct tl_feed {
    pthread_t th;
    bool started;
    int wake[2]; /* a byte written wakes the thread up to stop */
    pthread_mutex_t mu;
    bool stop;
    unsigned resync_s;
    struct tl_db *db; /* the listening connection: the thread's alone */
    struct tl_store_feed_stats stats;
};

static const char *const kind_names[] = {
    [TL_CHANGE_NUMBER_CREATED] = "number_created",
    [TL_CHANGE_NUMBER_REPLACED] = "number_replaced",
    [TL_CHANGE_NUMBER_ASSIGNED] = "number_assigned",
    [TL_CHANGE_NUMBER_DELETED] = "number_deleted",
    [TL_CHANGE_NUMBER_RELEASED] = "number_released",
    [TL_CHANGE_AGENT_UPDATED] = "agent_updated",
    [TL_CHANGE_AGENT_DELETED] = "agent_deleted",
    [TL_CHANGE_WORKSPACE_UPDATED] = "workspace_updated",
};
#define N_KINDS (sizeof kind_names / sizeof kind_names[0])

bool tl_store_shared(struct tl_store *s)
{
    return s && (s->db->ops->caps & TL_DB_CAP_NOTIFY) && s->db->ops->notify;
}

int tl__feed_init(struct tl_store *s, const char *target, const char *password)
{
    uint8_t r[8];
    randombytes_buf(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(s->origin + 2 * i, 3, "%02x", r[i]);
    tl_strlcpy(s->channel, FEED_CHANNEL, sizeof s->channel);
    if (!tl_store_shared(s))
        return 0;
    s->target = strdup(target);
    s->password = password && *password ? strdup(password) : NULL;
    if (!s->target || (password && *password && !s->password))
        return ENOMEM;
    /* the schema the connection works in names the channel (not "public": its own) */
    struct tl_db_stmt *st = NULL;
    int ret = tl_db_prepare(s->db, "SELECT current_schema()", &st);
    if (ret == 0 && tl_db_step(st) == TL_DB_ROW) {
        const char *schema = tl_db_column_text(st, 0);
        if (schema && strcmp(schema, "public") != 0)
            snprintf(s->channel, sizeof s->channel, "%s.%s", FEED_CHANNEL, schema);
    }
    if (st)
        tl_db_finalize(st);
    return 0;
}

void tl__feed_send(struct tl_store *s, const struct tl_store_change *c)
{
    char p[FEED_PAYLOAD];
    if (!tl_store_shared(s) || (size_t)c->kind >= N_KINDS)
        return;
    int n = snprintf(p, sizeof p, "1|%s|%s|%s|%s|%s", s->origin, kind_names[c->kind],
                     c->workspace_id ? c->workspace_id : "", c->id ? c->id : "",
                     c->number ? c->number : "");
    if (n < 0 || (size_t)n >= sizeof p)
        return;
    tl__lock(s);
    int ret = s->db->ops->notify(s->db, s->channel, p);
    if (ret != 0) /* the change is committed; other nodes learn of it at their next resync */
        tl_warnl("store", "feed.notify_failed", "kind=%s id=%s detail=\"%s\"", kind_names[c->kind],
                 c->id ? c->id : "", tl_db_errmsg(s->db));
    tl__unlock(s);
}

/* Splits a payload into its fields; false for anything that is not exactly a change of
 * this version (unknown kinds come from a newer node: ignored, the resync catches up). */
bool tl__feed_parse(const char *p, char origin[17], enum tl_store_change_kind *kind,
                    char ws[TL_ID_MAX], char id[TL_ID_MAX], char number[TL_E164_MAX + 1])
{
    char *fields[6];
    size_t caps[6] = {2, 17, 24, TL_ID_MAX, TL_ID_MAX, TL_E164_MAX + 1};
    char v[2], k[24];
    fields[0] = v, fields[1] = origin, fields[2] = k, fields[3] = ws, fields[4] = id,
    fields[5] = number;
    if (strnlen(p, FEED_PAYLOAD) >= FEED_PAYLOAD)
        return false;
    for (int f = 0; f < 6; f++) {
        size_t n = strcspn(p, "|");
        if (n >= caps[f] || (f < 5 && p[n] != '|') || (f == 5 && p[n] != '\0'))
            return false;
        memcpy(fields[f], p, n);
        fields[f][n] = '\0';
        p += n + (f < 5);
    }
    if (strcmp(v, "1") != 0 || strlen(origin) != 16)
        return false;
    for (size_t i = 0; i < N_KINDS; i++)
        if (!strcmp(k, kind_names[i])) {
            *kind = (enum tl_store_change_kind)i;
            return true;
        }
    return false;
}

static void on_payload(const char *payload, void *arg)
{
    struct tl_store *s = arg;
    struct tl_feed *f = s->feed;
    char origin[17], ws[TL_ID_MAX], id[TL_ID_MAX], number[TL_E164_MAX + 1];
    enum tl_store_change_kind kind;
    if (!tl__feed_parse(payload, origin, &kind, ws, id, number)) {
        tl_warnl("store", "feed.payload_ignored", "bytes=%zu", strnlen(payload, FEED_PAYLOAD));
        return;
    }
    bool own = !strcmp(origin, s->origin);
    pthread_mutex_lock(&f->mu);
    if (own)
        f->stats.own++;
    else
        f->stats.applied++;
    pthread_mutex_unlock(&f->mu);
    if (own) /* its hook ran on the writer's thread */
        return;
    tl__lock(s);
    tl_store_change_fn fn = s->change_fn;
    void *fn_arg = s->change_arg;
    tl__unlock(s);
    if (!fn)
        return;
    struct tl_store_change c = {kind, ws, id, number[0] ? number : NULL};
    fn(&c, fn_arg);
    /* after the hook: from this line on, this node routes by the change */
    tl_info("store", "feed.applied", "kind=%s id=%s", kind_names[kind], id);
}

static int resync(struct tl_store *s, const char *why)
{
    tl__lock(s);
    int (*fn)(void *) = s->resync_fn;
    void *arg = s->resync_arg;
    tl__unlock(s);
    int ret = 0;
    if (fn) {
        tl_info("store", "feed.resync", "reason=%s", why);
        ret = fn(arg);
    }
    if (ret == 0) {
        pthread_mutex_lock(&s->feed->mu);
        s->feed->stats.resyncs++;
        pthread_mutex_unlock(&s->feed->mu);
    }
    return ret;
}

static int feed_connect(struct tl_store *s)
{
    struct tl_feed *f = s->feed;
    char msg[512] = "";
    const struct tl_db_ops *ops = s->db->ops;
    struct tl_db *db = NULL;
    int ret = ops->open(&db, s->target, s->password, msg, sizeof msg);
    if (ret == 0 && ops->listen(db, s->channel) != 0) {
        snprintf(msg, sizeof msg, "LISTEN failed: %s", ops->errmsg(db));
        ret = -1;
    }
    if (ret != 0) {
        if (db)
            ops->close(db);
        tl_warnl("store", "feed.connect_failed", "detail=\"%s\"", msg);
        return -1;
    }
    f->db = db;
    pthread_mutex_lock(&f->mu);
    f->stats.connected = true;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static bool stopping(struct tl_feed *f)
{
    pthread_mutex_lock(&f->mu);
    bool v = f->stop;
    pthread_mutex_unlock(&f->mu);
    return v;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *feed_main(void *arg)
{
    struct tl_store *s = arg;
    struct tl_feed *f = s->feed;
    unsigned backoff = FEED_BACKOFF_MS;
    bool need_resync = f->db == NULL; /* the first connection failed: changes went unseen */
    uint64_t last_resync = mono_ms();
    while (!stopping(f)) {
        if (!f->db) {
            if (feed_connect(s) != 0) {
                struct pollfd p = {.fd = f->wake[0], .events = POLLIN};
                poll(&p, 1, (int)backoff);
                backoff = backoff * 2 > FEED_BACKOFF_MAX_MS ? FEED_BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = FEED_BACKOFF_MS;
            tl_info("store", "feed.connected", "channel=%s", s->channel);
        }
        if (need_resync || (f->resync_s && mono_ms() - last_resync >= f->resync_s * 1000ull)) {
            /* a failed reload is tried again after the next wait */
            need_resync = resync(s, need_resync ? "reconnected" : "timer") != 0;
            last_resync = mono_ms();
        }
        if (s->db->ops->wait_notify(f->db, FEED_WAIT_MS, f->wake[0], on_payload, s) != 0) {
            tl_warnl("store", "feed.lost", "detail=\"%s\"", s->db->ops->errmsg(f->db));
            s->db->ops->close(f->db);
            f->db = NULL;
            need_resync = true;
            pthread_mutex_lock(&f->mu);
            f->stats.lost++;
            f->stats.connected = false;
            pthread_mutex_unlock(&f->mu);
        }
    }
    return NULL;
}

int tl_store_feed_start(struct tl_store *s, unsigned resync_s)
{
    if (!tl_store_shared(s) || s->feed)
        return 0;
    struct tl_feed *f = calloc(1, sizeof *f);
    if (!f)
        return ENOMEM;
    if (pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(f);
        return errno ? errno : EIO;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->resync_s = resync_s;
    s->feed = f;
    if (feed_connect(s) == 0)
        tl_info("store", "feed.connected", "channel=%s", s->channel);
    if (pthread_create(&f->th, NULL, feed_main, s) != 0) {
        tl__feed_free(s);
        return ENOMEM;
    }
    f->started = true;
    return 0;
}

void tl_store_feed_stop(struct tl_store *s)
{
    struct tl_feed *f = s ? s->feed : NULL;
    if (!f || !f->started)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_mutex_unlock(&f->mu);
    ssize_t w = write(f->wake[1], "x", 1);
    (void)w; /* a full pipe already wakes it */
    pthread_join(f->th, NULL);
    f->started = false;
}

void tl__feed_free(struct tl_store *s)
{
    struct tl_feed *f = s->feed;
    if (f) {
        tl_store_feed_stop(s);
        if (f->db)
            s->db->ops->close(f->db);
        close(f->wake[0]);
        close(f->wake[1]);
        pthread_mutex_destroy(&f->mu);
        free(f);
        s->feed = NULL;
    }
    free(s->target);
    if (s->password) {
        sodium_memzero(s->password, strlen(s->password));
        free(s->password);
    }
    s->target = s->password = NULL;
}

void tl_store_set_resync_hook(struct tl_store *s, int (*fn)(void *arg), void *arg)
{
    tl__lock(s);
    s->resync_fn = fn;
    s->resync_arg = fn ? arg : NULL;
    tl__unlock(s);
}

void tl_store_feed_stats(struct tl_store *s, struct tl_store_feed_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !s->feed)
        return;
    pthread_mutex_lock(&s->feed->mu);
    *out = s->feed->stats;
    pthread_mutex_unlock(&s->feed->mu);
}
