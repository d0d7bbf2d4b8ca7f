/* core/mailbox: see mailbox.h. */
#include "core/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <uv.h>

struct item {
    struct item *next;
    tl_mailbox_fn *fn;
    void *arg;
};

struct tl_mailbox {
    uv_async_t async;
    pthread_mutex_t mu;
    struct item *head, **tail;
    bool closing;
};

/* Takes the whole queue under the lock and runs it outside: a function may post again
 * (its item waits for the next wake-up) and never runs under our mutex. */
static void drain(struct tl_mailbox *m, bool cancelled)
{
    pthread_mutex_lock(&m->mu);
    struct item *it = m->head;
    m->head = NULL;
    m->tail = &m->head;
    pthread_mutex_unlock(&m->mu);
    while (it) {
        struct item *next = it->next;
        it->fn(it->arg, cancelled);
        free(it);
        it = next;
    }
}

static void on_async(uv_async_t *a)
{
    drain(a->data, false);
}

int tl_mailbox_open(struct tl_mailbox **mp, uv_loop_t *loop)
{
    struct tl_mailbox *m = calloc(1, sizeof *m);
    if (!m)
        return ENOMEM;
    m->tail = &m->head;
    if (pthread_mutex_init(&m->mu, NULL)) {
        free(m);
        return ENOMEM;
    }
    if (uv_async_init(loop, &m->async, on_async)) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return EIO;
    }
    m->async.data = m;
    *mp = m;
    return 0;
}

int tl_mailbox_post(struct tl_mailbox *m, tl_mailbox_fn *fn, void *arg)
{
    if (!m || !fn)
        return EINVAL;
    struct item *it = malloc(sizeof *it);
    if (!it)
        return ENOMEM;
    it->next = NULL;
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&m->mu);
    if (m->closing) {
        pthread_mutex_unlock(&m->mu);
        free(it);
        return ESHUTDOWN;
    }
    *m->tail = it;
    m->tail = &it->next;
    /* under the lock: close cannot free the handle between our check and the send */
    uv_async_send(&m->async);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct tl_mailbox *m = h->data;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void tl_mailbox_close(struct tl_mailbox *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->closing = true;
    pthread_mutex_unlock(&m->mu);
    drain(m, true);
    uv_close((uv_handle_t *)&m->async, on_closed);
}
