/* call/control: what another thread (the REST API's) may ask of a live call — hang it
 * up, transfer it, send digits — done on the loop thread, which owns every call.
 *
 * The request goes through the mailbox (core/mailbox.h) and the asking thread waits for
 * the answer with a deadline. The request is shared by the two threads (a reference
 * count under its mutex): whoever lets go last frees it, so a waiter that gave up (the
 * loop was busy past the deadline) never leaves the loop writing into freed memory. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "call/call_int.h"
#include "core/mailbox.h"

/* what the loop is asked besides tl_call_ctl_op's: place a call, copy a live record */
enum { CTL_PLACE = 100, CTL_SNAPSHOT };

struct ctl_req {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    bool abandoned; /* the waiter gave up: a placement is not started any more */
    /* in */
    struct tl_call_layer *l;
    int op;
    char workspace_id[TL_ID_MAX], call_id[TL_ID_MAX];
    char param[TL_CALL_CTL_PARAM_MAX + 1];
    struct tl_call_request *rq; /* CTL_PLACE: a copy, the loop takes it — SECRET */
    /* out */
    int result;
    char status[TL_CALL_STATUS_MAX + 1];
    struct tl_call_record rec; /* CTL_PLACE, CTL_SNAPSHOT */
};

static void req_put(struct ctl_req *q)
{
    pthread_mutex_lock(&q->mu);
    bool last = --q->refs == 0;
    pthread_mutex_unlock(&q->mu);
    if (last) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        if (q->rq) {
            sodium_memzero(q->rq, sizeof *q->rq);
            free(q->rq);
        }
        free(q);
    }
}

const char *tl__call_status(const struct tl_call *c)
{
    if (c->ended)
        return "completed";
    return c->answered ? "in-progress" : "ringing";
}

static int run(struct ctl_req *q, char status[TL_CALL_STATUS_MAX + 1])
{
    struct tl_call_layer *l = q->l;
    if (q->op == CTL_PLACE) {
        int r = tl__call_place(l, q->rq, &q->rec);
        if (!r)
            q->rq = NULL; /* the call's now */
        return r;
    }
    struct tl_call *c = l->calls;
    while (c && (c->ended || strcmp(c->rec.id, q->call_id)))
        c = c->next;
    /* another workspace's call is "not found", exactly like a missing one */
    if (!c || strcmp(c->rec.workspace_id, q->workspace_id))
        return ENOENT;
    int r = 0;
    tl__call_hold(c);
    switch (q->op) {
    case TL_CALL_CTL_HANGUP:
        /* answered: BYE; still ringing: the INVITE is refused (480), as Twilio cancels */
        tl__call_end(c, "api_hangup", 480, NULL);
        break;
    case TL_CALL_CTL_TRANSFER:
        r = tl__call_agent_ops.transfer(&c->acall, q->param);
        break;
    case TL_CALL_CTL_DIGITS:
        r = tl__call_agent_ops.send_dtmf(&c->acall, q->param);
        break;
    case TL_CALL_CTL_STATUS:
        break;
    case CTL_SNAPSHOT:
        tl__call_media_stats(c);
        q->rec = c->rec;
        break;
    }
    tl_strlcpy(status, tl__call_status(c), TL_CALL_STATUS_MAX + 1);
    tl__call_release(c);
    return r;
}

static void on_loop(void *arg, bool cancelled)
{
    struct ctl_req *q = arg;
    char status[TL_CALL_STATUS_MAX + 1] = "";
    /* the lock is held while a placement runs (a few syscalls, no waiting), so the waiter
     * either sees it done or has abandoned it before it started: never a call it did not
     * hear of */
    pthread_mutex_lock(&q->mu);
    int r = cancelled ? ESHUTDOWN : q->abandoned ? ETIMEDOUT : run(q, status);
    q->result = r;
    memcpy(q->status, status, sizeof status);
    q->done = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    req_put(q);
}

/* Posts q (op and inputs filled) and waits for the loop's answer: its result, or
 * ETIMEDOUT. The caller's reference to q is released here. */
static int post_wait(struct tl_mailbox *m, struct ctl_req *q, unsigned timeout_ms,
                     char status[TL_CALL_STATUS_MAX + 1], struct tl_call_record *rec);

static struct ctl_req *req_new(struct tl_call_layer *l, int op, const char *workspace_id,
                               const char *call_id)
{
    struct ctl_req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->refs = 2; /* this thread and the loop */
    q->l = l;
    q->op = op;
    tl_strlcpy(q->workspace_id, workspace_id ? workspace_id : "", sizeof q->workspace_id);
    tl_strlcpy(q->call_id, call_id ? call_id : "", sizeof q->call_id);
    return q;
}

int tl_call_control(struct tl_call_layer *l, struct tl_mailbox *m, const char *workspace_id,
                    const char *call_id, enum tl_call_ctl_op op, const char *param,
                    char status[TL_CALL_STATUS_MAX + 1], unsigned timeout_ms)
{
    if (!l || !m || !workspace_id || !call_id)
        return EINVAL;
    if (param && strlen(param) > TL_CALL_CTL_PARAM_MAX)
        return EINVAL;
    struct ctl_req *q = req_new(l, (int)op, workspace_id, call_id);
    if (!q)
        return ENOMEM;
    tl_strlcpy(q->param, param ? param : "", sizeof q->param);
    return post_wait(m, q, timeout_ms, status, NULL);
}

int tl_call_place(struct tl_call_layer *l, struct tl_mailbox *m, const struct tl_call_request *rq,
                  struct tl_call_record *rec, unsigned timeout_ms)
{
    if (!l || !m || !rq || !rec)
        return EINVAL;
    struct ctl_req *q = req_new(l, CTL_PLACE, NULL, NULL);
    if (!q)
        return ENOMEM;
    if (!(q->rq = malloc(sizeof *q->rq))) {
        q->refs = 1;
        req_put(q);
        return ENOMEM;
    }
    memcpy(q->rq, rq, sizeof *q->rq);
    return post_wait(m, q, timeout_ms, NULL, rec);
}

int tl_call_snapshot(struct tl_call_layer *l, struct tl_mailbox *m, const char *workspace_id,
                     const char *call_id, struct tl_call_record *rec, unsigned timeout_ms)
{
    if (!l || !m || !workspace_id || !call_id || !rec)
        return EINVAL;
    struct ctl_req *q = req_new(l, CTL_SNAPSHOT, workspace_id, call_id);
    if (!q)
        return ENOMEM;
    return post_wait(m, q, timeout_ms, NULL, rec);
}

static int post_wait(struct tl_mailbox *m, struct ctl_req *q, unsigned timeout_ms,
                     char status[TL_CALL_STATUS_MAX + 1], struct tl_call_record *rec)
{
    int r = tl_mailbox_post(m, on_loop, q);
    if (r) {
        q->refs = 1;
        req_put(q);
        return r;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    while (!q->done)
        if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT)
            break;
    r = q->done ? q->result : ETIMEDOUT;
    if (!q->done)
        q->abandoned = true;
    if (q->done && status)
        memcpy(status, q->status, TL_CALL_STATUS_MAX + 1);
    if (q->done && !r && rec)
        memcpy(rec, &q->rec, sizeof *rec);
    pthread_mutex_unlock(&q->mu);
    req_put(q);
    return r;
}
