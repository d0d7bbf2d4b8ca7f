/* libFuzzer target: an API request body through tl_json_parse_body and then every decoder
 * (number import and PUT, with and without operator rights; agent create and update;
 * workspace create and update; token), and each success through its encoder.
 *
 * Besides memory errors it checks the codec's promises: a refused body always has an
 * error that encodes; a decoded object passes validation again; an encoded number or
 * agent never carries a password or a header value. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/codec.h"

static void must(bool ok)
{
    if (!ok)
        abort();
}

/* no member named `key` anywhere in v */
static bool lacks_member(const json_t *v, const char *key)
{
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, m)
        {
            if (strcmp(k, key) == 0 || !lacks_member(m, key))
                return false;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (!lacks_member(m, key))
                return false;
        }
    }
    return true;
}

static void refused(int rc, const struct tl_err *err)
{
    must(rc != 0);
    must(err->status == 400 && err->code[0] && err->message[0]);
    json_t *e = tl_codec_error(err);
    must(e != NULL);
    char *s = json_dumps(e, JSON_COMPACT);
    must(s != NULL);
    free(s);
    json_decref(e);
}

static void dump(json_t *o)
{
    must(o != NULL);
    char *s = json_dumps(o, JSON_COMPACT);
    must(s != NULL);
    free(s);
    json_decref(o);
}

static void numbers(const json_t *j)
{
    static struct tl_phone_number n;
    for (int mode = 0; mode < 4; mode++) {
        struct tl_warnings w = {0};
        struct tl_err err = {0};
        bool ag;
        bool is_import = mode & 1, allow_platform = mode & 2;
        int rc = tl_codec_number_decode(j, is_import, allow_platform, &n, &ag, &w, &err);
        if (rc) {
            refused(rc, &err);
            continue;
        }
        struct tl_warnings w2 = {0};
        must(tl_valid_outbound(&n.outbound, "outbound_trunk", &w2, &err) == 0);
        must(!n.has_inbound || tl_valid_inbound(&n.inbound, "inbound_trunk", &w2, &err) == 0);
        must(!is_import || tl_valid_e164(n.number, "number", &err) == 0);
        must(allow_platform || n.source == TL_SOURCE_SIP_TRUNK);
        json_t *o = tl_codec_number_encode(&n, &w);
        must(o != NULL && lacks_member(o, "password"));
        dump(o);
    }
}

static void agents(const json_t *j)
{
    static struct tl_agent a, stored;
    struct tl_err err = {0};
    int rc = tl_codec_agent_decode(j, true, &a, &err);
    if (rc) {
        refused(rc, &err);
    } else {
        must(tl_valid_agent(&a, &err) == 0);
        json_t *o = tl_codec_agent_encode(&a, NULL);
        must(o != NULL && lacks_member(o, "value"));
        dump(o);
    }
    /* an update of a stored websocket agent as the store returns it (values hidden) */
    memset(&stored, 0, sizeof stored);
    strcpy(stored.name, "Reception");
    stored.kind = TL_AGENT_WEBSOCKET;
    strcpy(stored.url, "wss://agent.example.com/media");
    strcpy(stored.params[0].key, "lang");
    strcpy(stored.params[0].value, "de");
    stored.n_params = 1;
    strcpy(stored.headers[0].name, "Authorization");
    stored.n_headers = 1;
    stored.values_hidden = true;
    a = stored;
    memset(&err, 0, sizeof err);
    rc = tl_codec_agent_decode(j, false, &a, &err);
    if (rc) {
        refused(rc, &err);
        return;
    }
    must(tl_valid_agent(&a, &err) == 0);
    dump(tl_codec_agent_encode(&a, NULL));
}

static void workspaces(const json_t *j)
{
    struct tl_workspace w;
    struct tl_err err = {0};
    int rc = tl_codec_workspace_decode(j, true, &w, &err);
    if (rc)
        refused(rc, &err);
    else
        dump(tl_codec_workspace_encode(&w));
    memset(&w, 0, sizeof w);
    strcpy(w.name, "Acme");
    strcpy(w.region, "eu");
    memset(&err, 0, sizeof err);
    rc = tl_codec_workspace_decode(j, false, &w, &err);
    if (rc)
        refused(rc, &err);
    else
        dump(tl_codec_workspace_encode(&w));
}

static void tokens(const json_t *j)
{
    struct tl_token t;
    struct tl_err err = {0};
    int rc = tl_codec_token_decode(j, &t, &err);
    if (rc) {
        refused(rc, &err);
        return;
    }
    dump(tl_codec_token_encode(&t, NULL));
}

/* POST /v1/calls: a refusal names its field; an accepted order holds only valid values */
static void calls(const json_t *j)
{
    static struct tl_call_order o;
    struct tl_err err = {0};
    int rc = tl_codec_call_order_decode(j, &o, &err);
    if (rc) {
        refused(rc, &err);
        return;
    }
    must(o.to[0] == '+' && o.from[0]);
    must(o.ringing_timeout_s >= 1 && o.ringing_timeout_s <= TL_RINGING_TIMEOUT_MAX);
    must(o.n_params <= TL_PARAMS_MAX && o.n_headers <= TL_HEADERS_MAX);
    for (size_t i = 0; i < o.n_headers; i++)
        must((o.headers[i].name[0] == 'X' || o.headers[i].name[0] == 'x') &&
             !strpbrk(o.headers[i].value, "\r\n"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tl_err err = {0};
    json_t *j = tl_json_parse_body((const char *)data, size, &err);
    if (!j) {
        must(strcmp(err.code, "invalid_json") == 0);
        refused(EINVAL, &err);
        return 0;
    }
    must(json_is_object(j));
    numbers(j);
    agents(j);
    workspaces(j);
    tokens(j);
    calls(j);
    json_decref(j);
    return 0;
}
