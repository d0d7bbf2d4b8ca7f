/* core/log (issue 11 item 8): no caller ever waits for the log's output, and lines a flood
 * repeats are limited per call site with the count of what was left out.
 *
 * The output is a FIFO that nobody reads: with a synchronous write(2) the first 64 KiB
 * would fill it and the next line would block forever (alarm() turns that hang into a
 * failure). With the writer thread the lines go into the ring, the ring fills, the rest
 * are dropped and counted, and once the FIFO is read the writer says how many. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"

static void limit_counts_suppressed(void **state)
{
    (void)state;
    struct tl_log_limit lim = {0};
    uint32_t sup = 99;
    int passed = 0;
    for (int i = 0; i < 1000; i++) /* one second's flood: the burst passes */
        passed += tl_log_limit_pass(&lim, 5000 + (uint64_t)i / 10, &sup);
    assert_int_equal(passed, TL_LOG_LIMIT_BURST);
    /* the next window's first line carries the count */
    assert_true(tl_log_limit_pass(&lim, 6000, &sup));
    assert_int_equal(sup, 1000 - TL_LOG_LIMIT_BURST);
    assert_true(tl_log_limit_pass(&lim, 6001, &sup));
    assert_int_equal(sup, 0);
}

struct sink {
    int fd;
    char *buf;
    size_t len, cap;
};

static void *drain(void *arg)
{
    struct sink *k = arg;
    for (;;) {
        ssize_t n = read(k->fd, k->buf + k->len, k->cap - k->len);
        if (n <= 0)
            break;
        k->len += (size_t)n;
    }
    k->buf[k->len] = '\0';
    return NULL;
}

static void ring_never_blocks(void **state)
{
    (void)state;
    char dir[] = "/tmp/tl_log_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDONLY | O_NONBLOCK); /* a reader exists, but reads nothing */
    assert_true(rd >= 0);
    assert_int_equal(tl_log_open(path, TL_LOG_TEXT, TL_LOG_INFO), 0);
    assert_int_equal(tl_log_start_writer(), 0);
    alarm(60); /* a blocked logger never returns: SIGALRM fails the test instead */
    char pad[200];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    /* ~3 MiB of lines: more than the pipe (64 KiB) and the ring (1 MiB) together */
    for (int i = 0; i < 12000; i++)
        tl_info("test", "flood", "i=%d pad=%s", i, pad);
    alarm(0);
    assert_true(tl_log_dropped() > 0);
    /* read it all, until the writer closes the file: the first line is there, and the
     * writer's count of the dropped ones */
    fcntl(rd, F_SETFL, 0);
    struct sink k = {.fd = rd, .cap = 8u << 20};
    k.buf = malloc(k.cap + 1);
    pthread_t thr;
    assert_int_equal(pthread_create(&thr, NULL, drain, &k), 0);
    alarm(60);
    tl_log_close(); /* the writer drains the ring, then closes: EOF for the reader */
    pthread_join(thr, NULL);
    alarm(0);
    assert_non_null(strstr(k.buf, "flood i=0 "));
    assert_non_null(strstr(k.buf, "log.dropped count="));
    free(k.buf);
    close(rd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_counts_suppressed),
        cmocka_unit_test(ring_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
