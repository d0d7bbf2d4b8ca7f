/* records: the recorder of records.h — a bounded queue in front of one writer thread,
 * and the token buckets that keep event floods off the disk.
 *
 * One mutex (r->mu) guards the queue, the buckets and the counters. Producers hold it
 * for a copy-free push (the record was copied into its own allocation before) and a
 * bucket update: microseconds, never I/O. The writer holds it only to take a batch. */
#include "store/records.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RL_SLOTS 1024 /* bucket table; power of two */
#define RL_WAYS  8    /* slots probed per key */
#define RL_KEY   64

struct bucket {
    char key[RL_KEY]; /* "" = free */
    double tokens;
    int64_t last_ms;     /* last refill */
    uint32_t suppressed; /* since the last event written for this key */
};

struct qitem {
    struct tl_call_record *call; /* exactly one set; the item owns it */
    struct tl_event *event;
};

struct tl_recorder {
    struct tl_store *store;
    struct tl_recorder_cfg cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* producers -> writer: records, close, flush */
    pthread_cond_t done; /* writer -> flushers: a batch finished */
    struct qitem *q;     /* ring of qcap (cfg.queue_cap, grown only for end records) */
    size_t qcap, head, count;
    int64_t first_ms;  /* monotonic time the oldest queued record arrived */
    uint64_t pushed;   /* records ever queued */
    uint64_t finished; /* records ever taken and written (or failed) */
    unsigned flushers; /* threads in tl_recorder_flush: write without waiting */
    bool closing, paused;
    struct qitem *batch; /* the writer's: cfg.batch_max each */
    struct tl_record_ref *refs;
    struct bucket global;
    struct bucket slots[RL_SLOTS];
    struct tl_recorder_stats st;
    /* webhook deliveries were queued by a write (set before the first record) */
    void (*hook)(void *arg);
    void *hook_arg;
};

static void *writer_main(void *arg);

void tl_recorder_set_delivery_hook(struct tl_recorder *r, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&r->mu);
    r->hook = fn;
    r->hook_arg = arg;
    pthread_mutex_unlock(&r->mu);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t rl_now(const struct tl_recorder *r)
{
    return r->cfg.clock_ms ? r->cfg.clock_ms(r->cfg.clock_arg) : mono_ms();
}

/* Replaces every byte that does not start or continue a valid UTF-8 sequence (and the
 * pieces of overlong or surrogate forms) with '?': jansson refuses invalid text, and one
 * bad byte from the wire must not make a whole listing unanswerable. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        bool ok = n > 0 && !(n == 2 && c < 0xc2) && !(n == 4 && c > 0xf4);
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 3)
            ok = !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* Bounded copies from the wire may end mid-character: terminate, then repair. */
static void text_fix(char *s, size_t cap)
{
    s[cap - 1] = '\0';
    utf8_repair(s);
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* refill b to now at `per_min` tokens a minute, capped at one minute's worth */
static void refill(struct bucket *b, unsigned per_min, int64_t now)
{
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * per_min / 60000.0;
        if (b->tokens > per_min)
            b->tokens = per_min;
        b->last_ms = now;
    }
}

/* The bucket of key: its slot, a free one, one that has nothing to remember (full again,
 * nothing suppressed), or else the least recently refilled of the ways. */
static struct bucket *bucket_of(struct tl_recorder *r, const char *key, unsigned per_min,
                                int64_t now)
{
    uint32_t h = fnv1a(key);
    struct bucket *victim = NULL;
    for (unsigned i = 0; i < RL_WAYS; i++) {
        struct bucket *b = &r->slots[(h + i) & (RL_SLOTS - 1)];
        if (b->key[0] && strcmp(b->key, key) == 0)
            return b;
        if (!b->key[0]) {
            if (!victim || victim->key[0])
                victim = b;
            continue;
        }
        if (victim && !victim->key[0])
            continue;
        refill(b, per_min, now);
        bool forgettable = b->suppressed == 0 && b->tokens >= per_min;
        if (!victim || forgettable || b->last_ms < victim->last_ms)
            victim = b;
    }
    tl_strlcpy(victim->key, key, sizeof victim->key);
    victim->tokens = per_min;
    victim->last_ms = now;
    victim->suppressed = 0;
    return victim;
}

/* frees what tl_recorder_open made; with_sync: its mutex and conditions too */
static void recorder_free(struct tl_recorder *r, bool with_sync)
{
    if (with_sync) {
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->done);
        pthread_mutex_destroy(&r->mu);
    }
    free(r->q);
    free(r->batch);
    free(r->refs);
    free(r);
}

int tl_recorder_open(struct tl_recorder **rp, struct tl_store *s, const struct tl_recorder_cfg *cfg)
{
    struct tl_recorder *r = calloc(1, sizeof *r);
    *rp = NULL;
    if (!r)
        return ENOMEM;
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.queue_cap)
        r->cfg.queue_cap = TL_REC_QUEUE_DEFAULT;
    if (!r->cfg.batch_ms)
        r->cfg.batch_ms = TL_REC_BATCH_MS_DEFAULT;
    if (!r->cfg.batch_max)
        r->cfg.batch_max = TL_REC_BATCH_MAX_DEFAULT;
    if (!r->cfg.per_number)
        r->cfg.per_number = TL_REC_PER_NUMBER_DEFAULT;
    if (!r->cfg.per_source)
        r->cfg.per_source = TL_REC_PER_SOURCE_DEFAULT;
    if (!r->cfg.global)
        r->cfg.global = TL_REC_GLOBAL_DEFAULT;
    r->store = s;
    r->paused = r->cfg.paused;
    r->global.tokens = r->cfg.global;
    r->global.last_ms = rl_now(r);
    r->qcap = r->cfg.queue_cap;
    r->q = calloc(r->qcap, sizeof *r->q);
    r->batch = calloc(r->cfg.batch_max, sizeof *r->batch);
    r->refs = calloc(r->cfg.batch_max, sizeof *r->refs);
    if (!r->q || !r->batch || !r->refs) {
        recorder_free(r, false);
        return ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* batch deadlines ignore clock steps */
    pthread_cond_init(&r->work, &ca);
    pthread_cond_init(&r->done, &ca);
    pthread_condattr_destroy(&ca);
    int ret = pthread_create(&r->thread, NULL, writer_main, r);
    if (ret) {
        recorder_free(r, true);
        return ret;
    }
    *rp = r;
    return 0;
}

static void item_free(struct qitem *it)
{
    free(it->call);
    free(it->event);
}

/* Takes up to batch_max records, writes them in one transaction (one retry: a busy
 * moment of another process on the file), and reports them finished. Called and
 * returning with r->mu held; the write itself runs without it. */
static void write_batch(struct tl_recorder *r)
{
    struct qitem *batch = r->batch;
    struct tl_record_ref *refs = r->refs;
    size_t k = r->count < r->cfg.batch_max ? r->count : r->cfg.batch_max;
    for (size_t i = 0; i < k; i++) {
        batch[i] = r->q[(r->head + i) % r->qcap];
        refs[i].call = batch[i].call;
        refs[i].event = batch[i].event;
    }
    r->head = (r->head + k) % r->qcap;
    r->count -= k;
    r->first_ms = mono_ms(); /* the rest waits at most one more window */
    bool has_end = false;
    size_t queued = 0; /* webhook deliveries the batch queued (the sender's wake-up) */
    for (size_t i = 0; i < k; i++)
        has_end |= batch[i].call && batch[i].call->ended_at != 0;

    /* A batch with an end record is retried until it is written (a full disk, a locked
     * file): a lost end would leave its call in progress forever. Meanwhile the queue
     * fills and sheds events and start records only. At close we give up after the
     * first retries: the next start closes such calls as gateway_restart. */
    int64_t backoff = 100;
    int ret;
    for (;;) {
        bool retry = has_end && !r->closing;
        pthread_mutex_unlock(&r->mu);
        struct tl_err err = {0};
        ret = tl_store_records_write_hooks(r->store, refs, k, &queued, &err);
        if (ret)
            ret = tl_store_records_write_hooks(r->store, refs, k, &queued, &err);
        if (ret)
            tl_error("store", "records.write_failed", "records=%zu error=%d detail=\"%s\" retry=%s",
                     k, ret, err.message, retry ? "yes" : "no");
        pthread_mutex_lock(&r->mu);
        if (!ret || !has_end || r->closing)
            break;
        r->st.write_retries++;
        int64_t due = mono_ms() + backoff;
        struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000L};
        while (!r->closing && mono_ms() < due)
            pthread_cond_timedwait(&r->work, &r->mu, &ts);
        backoff = backoff < 5000 ? backoff * 2 : 5000;
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < k; i++) {
        if (ret && batch[i].call && batch[i].call->ended_at)
            tl_error("store", "records.end_lost", "call=%s reason=%s", batch[i].call->id,
                     batch[i].call->end_reason);
        item_free(&batch[i]);
    }

    pthread_mutex_lock(&r->mu);
    if (ret)
        r->st.write_failed += k;
    else
        r->st.written += k;
    r->finished += k;
    pthread_cond_broadcast(&r->done);
    if (queued && r->hook) {
        void (*fn)(void *) = r->hook;
        void *a = r->hook_arg;
        pthread_mutex_unlock(&r->mu); /* the sender takes its own lock */
        fn(a);
        pthread_mutex_lock(&r->mu);
    }
}

static void *writer_main(void *arg)
{
    struct tl_recorder *r = arg;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->closing && (r->paused || r->count == 0))
            pthread_cond_wait(&r->work, &r->mu);
        if (r->count == 0)
            break; /* closing, and everything is written */
        /* the batch window: fill up to batch_max, or batch_ms after the oldest record */
        while (!r->closing && !r->flushers && r->count < r->cfg.batch_max) {
            int64_t due = r->first_ms + r->cfg.batch_ms;
            if (mono_ms() >= due)
                break;
            struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000L};
            pthread_cond_timedwait(&r->work, &r->mu, &ts);
        }
        write_batch(r);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Doubles the ring, keeping the order (the oldest first). Under r->mu. */
static int grow_ring(struct tl_recorder *r)
{
    if (r->qcap > SIZE_MAX / 2 / sizeof *r->q)
        return ENOMEM;
    size_t ncap = r->qcap * 2;
    struct qitem *nq = calloc(ncap, sizeof *nq);
    if (!nq)
        return ENOMEM;
    for (size_t i = 0; i < r->count; i++)
        nq[i] = r->q[(r->head + i) % r->qcap];
    free(r->q);
    r->q = nq;
    r->qcap = ncap;
    r->head = 0;
    return 0;
}

/* Queues an owned record. Past cfg.queue_cap an event or a start record is dropped; an
 * end record (must) is never: the ring grows for it ("spill"), and only if memory runs
 * out does the producer wait for the writer to make room. Memory stays bounded because a
 * call has one end and admission refuses new calls while the queue is over its cap
 * (tl_recorder_backlogged). */
static int push(struct tl_recorder *r, struct tl_call_record *c, struct tl_event *e, bool must)
{
    pthread_mutex_lock(&r->mu);
    if (r->count >= r->cfg.queue_cap && !must) {
        r->st.dropped_full++;
        pthread_mutex_unlock(&r->mu);
        free(c);
        free(e);
        return EAGAIN;
    }
    while (r->count == r->qcap && grow_ring(r) != 0) {
        pthread_cond_signal(&r->work);
        pthread_cond_wait(&r->done, &r->mu);
    }
    if (r->count >= r->cfg.queue_cap)
        r->st.spilled++;
    r->q[(r->head + r->count) % r->qcap] = (struct qitem){c, e};
    if (r->count++ == 0)
        r->first_ms = mono_ms();
    r->pushed++;
    r->st.queued++;
    /* wake the writer for the first record (it starts the window) and for a full batch */
    if (r->count == 1 || r->count == r->cfg.batch_max)
        pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int tl_recorder_call(struct tl_recorder *r, const struct tl_call_record *c)
{
    struct tl_call_record *copy = malloc(sizeof *copy);
    if (!copy)
        return ENOMEM;
    memcpy(copy, c, sizeof *copy);
    text_fix(copy->from_uri, sizeof copy->from_uri);
    text_fix(copy->from_user, sizeof copy->from_user);
    text_fix(copy->to_user, sizeof copy->to_user);
    text_fix(copy->sip_call_id, sizeof copy->sip_call_id);
    text_fix(copy->end_reason, sizeof copy->end_reason);
    text_fix(copy->codec, sizeof copy->codec);
    text_fix(copy->sip_reason, sizeof copy->sip_reason);
    text_fix(copy->hint, sizeof copy->hint);
    if (!copy->created_at)
        copy->created_at = tl_now_ms();
    return push(r, copy, NULL, copy->ended_at != 0);
}

int tl_recorder_event(struct tl_recorder *r, const struct tl_event *e, const char *source)
{
    char key[RL_KEY];
    unsigned per_min;
    uint32_t folded = 0;

    if (e->number_id[0]) {
        snprintf(key, sizeof key, "n:%.40s", e->number_id);
        per_min = r->cfg.per_number;
    } else {
        snprintf(key, sizeof key, "s:%.50s", source && *source ? source : e->code);
        per_min = r->cfg.per_source;
    }

    pthread_mutex_lock(&r->mu);
    int64_t now = rl_now(r);
    struct bucket *b = bucket_of(r, key, per_min, now);
    refill(b, per_min, now);
    refill(&r->global, r->cfg.global, now);
    if (b->tokens < 1.0 || r->global.tokens < 1.0) {
        b->suppressed++;
        r->st.suppressed++;
        pthread_mutex_unlock(&r->mu);
        return EBUSY;
    }
    b->tokens -= 1.0;
    r->global.tokens -= 1.0;
    folded = b->suppressed;
    b->suppressed = 0;
    pthread_mutex_unlock(&r->mu);

    struct tl_event *copy = malloc(sizeof *copy);
    if (!copy)
        return ENOMEM;
    memcpy(copy, e, sizeof *copy);
    text_fix(copy->code, sizeof copy->code);
    text_fix(copy->hint, sizeof copy->hint);
    text_fix(copy->details, sizeof copy->details);
    copy->message[sizeof copy->message - 1] = '\0';
    if (folded) {
        /* the count goes at the end, whole: cut the message to make room for it */
        char tail[64];
        int tl = snprintf(tail, sizeof tail, " (%u similar event%s suppressed)", folded,
                          folded == 1 ? "" : "s");
        size_t room = sizeof copy->message - 1 - (size_t)tl;
        size_t ml = strlen(copy->message);
        if (ml > room)
            ml = room;
        memcpy(copy->message + ml, tail, (size_t)tl + 1);
    }
    utf8_repair(copy->message); /* after the cut, which may split a character */
    if (!copy->id[0])
        tl_id_new(copy->id, "ev");
    if (!copy->created_at)
        copy->created_at = tl_now_ms();
    return push(r, NULL, copy, false);
}

void tl_recorder_flush(struct tl_recorder *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t target = r->pushed;
    r->flushers++;
    pthread_cond_signal(&r->work);
    while (r->finished < target && !r->paused)
        pthread_cond_wait(&r->done, &r->mu);
    r->flushers--;
    pthread_mutex_unlock(&r->mu);
}

void tl_recorder_resume(struct tl_recorder *r)
{
    pthread_mutex_lock(&r->mu);
    r->paused = false;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
}

bool tl_recorder_backlogged(struct tl_recorder *r)
{
    pthread_mutex_lock(&r->mu);
    bool b = r->count >= r->cfg.queue_cap;
    pthread_mutex_unlock(&r->mu);
    return b;
}

void tl_recorder_stats(struct tl_recorder *r, struct tl_recorder_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    pthread_mutex_unlock(&r->mu);
}

void tl_recorder_close(struct tl_recorder *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->closing = true;
    r->paused = false; /* a paused test recorder still writes everything on close */
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL); /* the writer leaves only with the queue empty */
    if (r->st.dropped_full || r->st.write_failed || r->st.suppressed || r->st.spilled)
        tl_info("store", "records.closed",
                "written=%llu dropped_full=%llu spilled=%llu write_failed=%llu suppressed=%llu",
                (unsigned long long)r->st.written, (unsigned long long)r->st.dropped_full,
                (unsigned long long)r->st.spilled, (unsigned long long)r->st.write_failed,
                (unsigned long long)r->st.suppressed);
    recorder_free(r, true);
}
