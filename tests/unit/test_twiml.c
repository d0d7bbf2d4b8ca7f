/* agent/twiml: the TwiML subset, as bots' voice URLs answer it (Pipecat's, the OpenAI
 * realtime demo's, Vocode's <Connect><Stream>), and the refusals: XML we do not take
 * (DOCTYPE/entities, CDATA, mismatched tags), verbs we do not carry out, caps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/twiml.h"

static struct tl_twiml tw;
static char why[200];

static int parse(const char *s)
{
    return tl_twiml_parse(s, strlen(s), &tw, why, sizeof why);
}

static void connect_stream_with_parameters(void **state)
{
    (void)state;
    /* the shape of the public examples, declaration, namespaces-free, entities */
    assert_int_equal(parse("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<!-- voice url answer -->\n<Response>\n  <Say>Connecting</Say>\n"
                           "  <Connect>\n    <Stream url='wss://bot.example.com/media?x=1&amp;y=2'>"
                           "<Parameter name=\"caller\" value=\"&lt;+1 555&gt;\"/>"
                           "<Parameter name=\"lang\" value=\"de&#45;DE\"/></Stream>\n  </Connect>\n"
                           "  <Pause length=\"3\"/><Hangup/>\n</Response>\n"),
                     0);
    assert_int_equal(tw.n, 4);
    assert_int_equal(tw.ops[0].verb, TL_TWIML_SAY);
    assert_string_equal(tw.ops[0].text, "Connecting");
    assert_int_equal(tw.ops[1].verb, TL_TWIML_CONNECT_STREAM);
    assert_string_equal(tw.ops[1].url, "wss://bot.example.com/media?x=1&y=2");
    assert_int_equal(tw.ops[1].n_params, 2);
    assert_string_equal(tw.params[0].name, "caller");
    assert_string_equal(tw.params[0].value, "<+1 555>");
    assert_string_equal(tw.params[1].value, "de-DE");
    assert_int_equal(tw.ops[2].verb, TL_TWIML_PAUSE);
    assert_int_equal(tw.ops[2].pause_s, 3);
    assert_int_equal(tw.ops[3].verb, TL_TWIML_HANGUP);
}

static void every_verb(void **state)
{
    (void)state;
    assert_int_equal(parse("<Response><Reject reason=\"busy\"/><Reject/>"
                           "<Redirect method=\"get\"> https://x.example/next </Redirect>"
                           "<Dial>+4930111</Dial><Dial> <Number>+4930222</Number> </Dial>"
                           "<Dial><Sip>sips:agent@pbx.example</Sip></Dial>"
                           "<Play digits=\"12w#\"/><Pause/></Response>"),
                     0);
    assert_int_equal(tw.n, 8);
    assert_string_equal(tw.ops[0].reason, "busy");
    assert_string_equal(tw.ops[1].reason, "rejected");
    assert_string_equal(tw.ops[2].method, "GET");
    assert_string_equal(tw.ops[2].url, "https://x.example/next");
    assert_string_equal(tw.ops[3].target, "+4930111");
    assert_string_equal(tw.ops[4].target, "+4930222");
    assert_string_equal(tw.ops[5].target, "sips:agent@pbx.example");
    assert_string_equal(tw.ops[6].digits, "12w#");
    assert_int_equal(tw.ops[7].pause_s, 1);
    assert_string_equal(tl_twiml_verb_name(TL_TWIML_DIAL), "Dial");
}

static void refusals(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        int rc;
        const char *word;
    } bad[] = {
        {"", EBADMSG, "not XML"},
        {"hello", EBADMSG, "not XML"},
        {"<Response>", EBADMSG, "not closed"},
        {"<Response></Respons>", EBADMSG, "mismatched"},
        {"<Other/>", EBADMSG, "<Response>"},
        {"<Response/><Response/>", EBADMSG, "after the root"},
        {"<!DOCTYPE r [<!ENTITY x \"y\">]><Response>&x;</Response>", EBADMSG, "DOCTYPE"},
        {"<Response><Say><![CDATA[x]]></Say></Response>", EBADMSG, "CDATA"},
        {"<Response><Say>&bogus;</Say></Response>", EBADMSG, "entity"},
        {"<Response><Say>&#0;</Say></Response>", EBADMSG, "character"},
        {"<Response a=\"1\" a=\"2\"/>", EBADMSG, "twice"},
        {"<Response a=1/>", EBADMSG, "quoted"},
        {"<Response><Gather/></Response>", ENOTSUP, "Gather"},
        {"<Response><Play>https://x/a.mp3</Play></Response>", ENOTSUP, "Play"},
        {"<Response><Connect><Room>r</Room></Connect></Response>", ENOTSUP, "Stream"},
        {"<Response><Connect><Stream/></Connect></Response>", EBADMSG, "url"},
        {"<Response><Pause length=\"601\"/></Response>", EBADMSG, "600"},
        {"<Response><Pause length=\"x\"/></Response>", EBADMSG, "seconds"},
        {"<Response><Reject reason=\"later\"/></Response>", EBADMSG, "busy or rejected"},
        {"<Response><Redirect/></Response>", EBADMSG, "URL"},
        {"<Response><Dial/></Response>", EBADMSG, "number"},
        {"<Response><Play digits=\"12x\"/></Response>", EBADMSG, "digits"},
        {"<Response><Hangup><Say>x</Say></Hangup></Response>", ENOTSUP, "nested"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i].doc);
        if (rc != bad[i].rc || !strstr(why, bad[i].word))
            fail_msg("%s: rc %d why \"%s\" (want %d, \"%s\")", bad[i].doc, rc, why, bad[i].rc,
                     bad[i].word);
        assert_int_equal(tw.n, 0);
    }
}

static void caps(void **state)
{
    (void)state;
    /* depth, element count, verbs, size: each refused with E2BIG, nothing allocated on a
     * scale the input chose (the pool is at most twice the input) */
    char *doc = malloc(TL_TWIML_MAX + 2);
    assert_non_null(doc);
    strcpy(doc, "<Response>");
    for (int i = 0; i < 9; i++)
        strcat(doc, "<a>");
    assert_int_equal(parse(doc), E2BIG);
    strcpy(doc, "<Response>");
    for (int i = 0; i < TL_TWIML_VERBS_MAX + 1; i++)
        strcat(doc, "<Hangup/>");
    strcat(doc, "</Response>");
    assert_int_equal(parse(doc), E2BIG);
    memset(doc, ' ', TL_TWIML_MAX + 1);
    doc[TL_TWIML_MAX + 1] = '\0';
    assert_int_equal(tl_twiml_parse(doc, TL_TWIML_MAX + 1, &tw, why, sizeof why), E2BIG);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_stream_with_parameters),
        cmocka_unit_test(every_verb),
        cmocka_unit_test(refusals),
        cmocka_unit_test(caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
