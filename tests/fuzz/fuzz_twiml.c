/* libFuzzer target: TwiML from a bot's voice URL or a REST call update (untrusted) through
 * tl_twiml_parse. Besides memory errors it checks the parser's promises: a result is one
 * of the documented errors; an accepted document has at most TL_TWIML_VERBS_MAX verbs,
 * every string terminated within its field, parameters within their array, a Pause within
 * bounds, Reject/Redirect values from their sets; and a rejected document leaves the
 * output zeroed. */
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/twiml.h"

static void must(bool ok)
{
    if (!ok)
        abort();
}

static struct tl_twiml tw;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[200];
    int rc = tl_twiml_parse((const char *)data, size, &tw, why, sizeof why);
    must(rc == 0 || rc == EBADMSG || rc == ENOTSUP || rc == E2BIG || rc == ENOMEM);
    must(memchr(why, '\0', sizeof why) != NULL);
    if (rc) {
        must(why[0] != '\0');
        must(tw.n == 0 && tw.n_params == 0);
        return 0;
    }
    must(tw.n <= TL_TWIML_VERBS_MAX && tw.n_params <= TL_TWIML_PARAMS_MAX);
    for (size_t i = 0; i < tw.n; i++) {
        const struct tl_twiml_op *op = &tw.ops[i];
        must(memchr(op->url, '\0', sizeof op->url) && memchr(op->target, '\0', sizeof op->target));
        must(memchr(op->text, '\0', sizeof op->text) &&
             memchr(op->digits, '\0', sizeof op->digits));
        must(op->first_param + op->n_params <= tw.n_params);
        switch (op->verb) {
        case TL_TWIML_PAUSE:
            must(op->pause_s <= TL_TWIML_PAUSE_MAX_S);
            break;
        case TL_TWIML_REJECT:
            must(!strcmp(op->reason, "busy") || !strcmp(op->reason, "rejected"));
            break;
        case TL_TWIML_REDIRECT:
            must((!strcmp(op->method, "POST") || !strcmp(op->method, "GET")) && op->url[0]);
            break;
        case TL_TWIML_CONNECT_STREAM:
            must(op->url[0] != '\0');
            break;
        case TL_TWIML_DIAL:
            must(op->target[0] != '\0');
            break;
        case TL_TWIML_PLAY_DIGITS:
            must(op->digits[0] != '\0' &&
                 strspn(op->digits, "0123456789*#ABCDwW") == strlen(op->digits));
            break;
        default:
            break;
        }
    }
    for (size_t i = 0; i < tw.n_params; i++)
        must(tw.params[i].name[0] != '\0');
    return 0;
}
