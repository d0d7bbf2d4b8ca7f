/* core/mailbox: work posted from other threads runs on the loop thread, in order, once;
 * after close nothing is accepted and what was queued is handed back as cancelled. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <uv.h>

#include "core/mailbox.h"

#define PER_THREAD 5000
#define THREADS    4

struct seen {
    pthread_t loop_thread;
    int ran, cancelled, wrong_thread;
    int last[THREADS]; /* per producer: the last sequence number seen (order check) */
    int out_of_order;
    uv_loop_t *loop;
};

struct job {
    struct seen *s;
    int producer, seq;
};

static void run_job(void *arg, bool cancelled)
{
    struct job *j = arg;
    struct seen *s = j->s;
    if (!pthread_equal(pthread_self(), s->loop_thread))
        s->wrong_thread++;
    if (cancelled) {
        s->cancelled++;
    } else {
        s->ran++;
        if (j->seq != s->last[j->producer] + 1)
            s->out_of_order++;
        s->last[j->producer] = j->seq;
        if (s->ran == THREADS * PER_THREAD)
            uv_stop(s->loop);
    }
    free(j);
}

struct producer {
    struct tl_mailbox *m;
    struct seen *s;
    int id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 1; i <= PER_THREAD; i++) {
        struct job *j = malloc(sizeof *j);
        *j = (struct job){p->s, p->id, i};
        if (tl_mailbox_post(p->m, run_job, j))
            abort();
    }
    return NULL;
}

static void from_many_threads_in_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen s = {.loop_thread = pthread_self(), .loop = &loop};
    for (int i = 0; i < THREADS; i++)
        s.last[i] = 0;
    struct tl_mailbox *m;
    assert_int_equal(tl_mailbox_open(&m, &loop), 0);
    pthread_t t[THREADS];
    struct producer p[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p[i] = (struct producer){m, &s, i};
        assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* until the last job stops it */
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(s.ran, THREADS * PER_THREAD);
    assert_int_equal(s.out_of_order, 0);
    assert_int_equal(s.wrong_thread, 0);
    assert_int_equal(s.cancelled, 0);
    tl_mailbox_close(m);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void close_cancels_queued_and_refuses_new(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen s = {.loop_thread = pthread_self(), .loop = &loop};
    struct tl_mailbox *m;
    assert_int_equal(tl_mailbox_open(&m, &loop), 0);
    for (int i = 1; i <= 3; i++) {
        struct job *j = malloc(sizeof *j);
        *j = (struct job){&s, 0, i};
        assert_int_equal(tl_mailbox_post(m, run_job, j), 0);
    }
    assert_int_equal(tl_mailbox_post(m, NULL, NULL), EINVAL);
    tl_mailbox_close(m); /* before the loop ever ran: the three come back cancelled */
    assert_int_equal(s.cancelled, 3);
    assert_int_equal(s.ran, 0);
    struct job late = {&s, 0, 4};
    assert_int_equal(tl_mailbox_post(m, run_job, &late), ESHUTDOWN);
    uv_run(&loop, UV_RUN_DEFAULT); /* the close callback frees the mailbox */
    assert_int_equal(s.cancelled, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(from_many_threads_in_order),
        cmocka_unit_test(close_cancels_queued_and_refuses_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
