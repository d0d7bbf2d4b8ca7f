/* agent/twiml: see twiml.h. Two passes: a strict XML reader builds a small tree of
 * elements whose names, attribute values and text are decoded into one pool; then the
 * tree is read as TwiML. Nothing is allocated but the pool (at most twice the input). */
#include "agent/twiml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NODES_MAX 256
#define ATTRS_MAX 16
#define DEPTH_MAX 8

struct str {
    size_t off, len; /* in the pool */
};

struct node {
    struct str name;
    size_t n_attrs;
    struct str an[ATTRS_MAX], av[ATTRS_MAX];
    struct str text; /* the element's own text, concatenated, whitespace kept */
    int parent, first, next, last;
};

struct xp {
    const char *p, *e;
    char *pool;
    size_t plen, pcap;
    struct node nodes[NODES_MAX];
    int n;
    char *why;
    size_t wcap;
    int err;
};

static int fail(struct xp *x, int err, const char *fmt, ...)
{
    if (!x->err) {
        x->err = err;
        if (x->why && x->wcap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(x->why, x->wcap, fmt, ap);
            va_end(ap);
        }
    }
    return x->err;
}

static bool starts(const struct xp *x, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(x->e - x->p) >= n && !memcmp(x->p, s, n);
}

static void skip_ws(struct xp *x)
{
    while (x->p < x->e && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n'))
        x->p++;
}

static bool name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static bool name_char(unsigned char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int put(struct xp *x, const char *s, size_t n)
{
    if (x->plen + n > x->pcap)
        return fail(x, E2BIG, "the document is too large");
    memcpy(x->pool + x->plen, s, n);
    x->plen += n;
    return 0;
}

/* one UTF-8 sequence for a character reference; refuses what XML 1.0 §2.2 does not allow */
static int put_cp(struct xp *x, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp == 0 || (cp < 0x20 && cp != 9 && cp != 10 && cp != 13) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff || cp > 0x10ffff)
        return fail(x, EBADMSG, "a character reference to a character XML does not allow");
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return put(x, b, n);
}

/* decodes characters up to (not including) `stop` into the pool: entities, character
 * references; raw '<' and '&' without a reference are errors */
static int decode_until(struct xp *x, char stop, struct str *out)
{
    out->off = x->plen;
    while (x->p < x->e && *x->p != stop) {
        unsigned char c = (unsigned char)*x->p;
        if (c == '<' && stop != '<')
            return fail(x, EBADMSG, "a '<' inside an attribute value");
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return fail(x, EBADMSG, "a control character");
        if (c != '&') {
            if (put(x, x->p++, 1))
                return x->err;
            continue;
        }
        static const struct {
            const char *ent, *ch;
        } ents[] = {
            {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&apos;", "'"}};
        bool done = false;
        for (size_t i = 0; i < sizeof ents / sizeof ents[0] && !done; i++)
            if (starts(x, ents[i].ent)) {
                if (put(x, ents[i].ch, 1))
                    return x->err;
                x->p += strlen(ents[i].ent);
                done = true;
            }
        if (done)
            continue;
        if (!starts(x, "&#"))
            return fail(x, EBADMSG, "an entity other than &lt; &gt; &amp; &quot; &apos;");
        x->p += 2;
        bool hex = x->p < x->e && *x->p == 'x';
        x->p += hex;
        unsigned long cp = 0;
        int digits = 0;
        while (x->p < x->e && *x->p != ';' && digits < 8) {
            char d = *x->p++;
            int v = d >= '0' && d <= '9'          ? d - '0'
                    : hex && d >= 'a' && d <= 'f' ? d - 'a' + 10
                    : hex && d >= 'A' && d <= 'F' ? d - 'A' + 10
                                                  : -1;
            if (v < 0)
                return fail(x, EBADMSG, "a malformed character reference");
            cp = cp * (hex ? 16 : 10) + (unsigned long)v;
            digits++;
        }
        if (!digits || x->p >= x->e || *x->p != ';')
            return fail(x, EBADMSG, "a malformed character reference");
        x->p++;
        if (put_cp(x, cp))
            return x->err;
    }
    out->len = x->plen - out->off;
    return 0;
}

static int read_name(struct xp *x, struct str *out)
{
    const char *s = x->p;
    if (x->p >= x->e || !name_start((unsigned char)*x->p))
        return fail(x, EBADMSG, "an element or attribute name expected");
    while (x->p < x->e && name_char((unsigned char)*x->p))
        x->p++;
    size_t n = (size_t)(x->p - s);
    if (n > 64)
        return fail(x, E2BIG, "a name over 64 characters");
    out->off = x->plen;
    out->len = n;
    return put(x, s, n);
}

static bool str_is(const struct xp *x, const struct str *s, const char *lit)
{
    return s->len == strlen(lit) && !memcmp(x->pool + s->off, lit, s->len);
}

/* comments, the declaration (only first), and whitespace between markup */
static int skip_misc(struct xp *x, bool prolog)
{
    for (;;) {
        skip_ws(x);
        if (starts(x, "<!--")) {
            const char *end = NULL;
            for (const char *q = x->p + 4; q + 3 <= x->e; q++)
                if (!memcmp(q, "-->", 3)) {
                    end = q;
                    break;
                }
            if (!end)
                return fail(x, EBADMSG, "an unterminated comment");
            x->p = end + 3;
        } else if (prolog && starts(x, "<?xml")) {
            const char *end = NULL;
            for (const char *q = x->p + 5; q + 2 <= x->e; q++)
                if (!memcmp(q, "?>", 2)) {
                    end = q;
                    break;
                }
            if (!end)
                return fail(x, EBADMSG, "an unterminated XML declaration");
            x->p = end + 2;
            prolog = false;
        } else if (starts(x, "<!")) {
            /* a DOCTYPE may declare entities (XXE, billion laughs): never */
            return fail(x, EBADMSG, "a DOCTYPE, entity declaration or CDATA section");
        } else if (starts(x, "<?")) {
            return fail(x, EBADMSG, "a processing instruction");
        } else {
            return 0;
        }
    }
}

static int element(struct xp *x, int parent, int depth)
{
    if (depth > DEPTH_MAX)
        return fail(x, E2BIG, "elements nested deeper than %d", DEPTH_MAX);
    if (x->n >= NODES_MAX)
        return fail(x, E2BIG, "more than %d elements", NODES_MAX);
    int id = x->n++;
    struct node *nd = &x->nodes[id];
    memset(nd, 0, sizeof *nd);
    nd->parent = parent;
    nd->first = nd->next = nd->last = -1;
    if (parent >= 0) {
        struct node *pn = &x->nodes[parent];
        if (pn->last >= 0)
            x->nodes[pn->last].next = id;
        else
            pn->first = id;
        pn->last = id;
    }
    x->p++; /* '<' */
    if (read_name(x, &nd->name))
        return x->err;
    for (;;) {
        const char *before = x->p;
        skip_ws(x);
        if (x->p >= x->e)
            return fail(x, EBADMSG, "an unterminated tag");
        if (starts(x, "/>")) {
            x->p += 2;
            return 0;
        }
        if (*x->p == '>') {
            x->p++;
            break;
        }
        if (before == x->p)
            return fail(x, EBADMSG, "attributes must be separated by whitespace");
        if (nd->n_attrs >= ATTRS_MAX)
            return fail(x, E2BIG, "more than %d attributes on one element", ATTRS_MAX);
        size_t a = nd->n_attrs;
        if (read_name(x, &nd->an[a]))
            return x->err;
        for (size_t i = 0; i < a; i++)
            if (nd->an[i].len == nd->an[a].len &&
                !memcmp(x->pool + nd->an[i].off, x->pool + nd->an[a].off, nd->an[a].len))
                return fail(x, EBADMSG, "an attribute given twice");
        skip_ws(x);
        if (x->p >= x->e || *x->p != '=')
            return fail(x, EBADMSG, "an attribute without a value");
        x->p++;
        skip_ws(x);
        if (x->p >= x->e || (*x->p != '"' && *x->p != '\''))
            return fail(x, EBADMSG, "an attribute value must be quoted");
        char q = *x->p++;
        if (decode_until(x, q, &nd->av[a]))
            return x->err;
        if (x->p >= x->e)
            return fail(x, EBADMSG, "an unterminated attribute value");
        x->p++;
        nd->n_attrs++;
    }
    /* content: text and child elements until the matching end tag */
    for (;;) {
        struct str t;
        if (decode_until(x, '<', &t))
            return x->err;
        if (t.len) { /* contiguous when no child came between; else joined below */
            if (!nd->text.len)
                nd->text = t;
            else if (nd->text.off + nd->text.len == t.off)
                nd->text.len += t.len;
            else {
                size_t off = x->plen;
                if (put(x, x->pool + nd->text.off, nd->text.len) || put(x, x->pool + t.off, t.len))
                    return x->err;
                nd->text.off = off;
                nd->text.len = x->plen - off;
            }
        }
        if (x->p >= x->e)
            return fail(x, EBADMSG, "an element is not closed");
        if (starts(x, "</")) {
            x->p += 2;
            struct str en;
            if (read_name(x, &en))
                return x->err;
            if (en.len != nd->name.len || memcmp(x->pool + en.off, x->pool + nd->name.off, en.len))
                return fail(x, EBADMSG, "mismatched end tag");
            skip_ws(x);
            if (x->p >= x->e || *x->p != '>')
                return fail(x, EBADMSG, "a malformed end tag");
            x->p++;
            return 0;
        }
        if (starts(x, "<!--") || starts(x, "<!") || starts(x, "<?")) {
            if (skip_misc(x, false))
                return x->err;
            continue;
        }
        if (element(x, id, depth + 1))
            return x->err;
    }
}

/* ---- TwiML ---- */

static const char *attr(const struct xp *x, const struct node *nd, const char *name, size_t *len)
{
    for (size_t i = 0; i < nd->n_attrs; i++)
        if (str_is(x, &nd->an[i], name)) {
            *len = nd->av[i].len;
            return x->pool + nd->av[i].off;
        }
    return NULL;
}

/* text without the whitespace around it */
static const char *trimmed(const struct xp *x, const struct str *s, size_t *len)
{
    const char *p = x->pool + s->off;
    size_t n = s->len;
    while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    *len = n;
    return p;
}

static int copy(struct xp *x, char *dst, size_t cap, const char *src, size_t n, const char *what)
{
    if (n >= cap)
        return fail(x, E2BIG, "%s longer than %zu characters", what, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static bool only_ws_children(const struct xp *x, const struct node *nd)
{
    size_t l;
    trimmed(x, &nd->text, &l);
    return l == 0;
}

static int verb_stream(struct xp *x, struct tl_twiml *t, const struct node *conn,
                       struct tl_twiml_op *op)
{
    if (conn->first < 0 || x->nodes[conn->first].next >= 0 ||
        !str_is(x, &x->nodes[conn->first].name, "Stream"))
        return fail(x, ENOTSUP, "<Connect> is supported with one <Stream> inside");
    const struct node *st = &x->nodes[conn->first];
    size_t l;
    const char *u = attr(x, st, "url", &l);
    if (!u || !l)
        return fail(x, EBADMSG, "<Stream> without a url");
    if (copy(x, op->url, sizeof op->url, u, l, "the <Stream> url"))
        return x->err;
    op->verb = TL_TWIML_CONNECT_STREAM;
    op->first_param = t->n_params;
    for (int c = st->first; c >= 0; c = x->nodes[c].next) {
        const struct node *pn = &x->nodes[c];
        if (!str_is(x, &pn->name, "Parameter"))
            return fail(x, ENOTSUP, "<Stream> takes <Parameter> elements only");
        if (t->n_params >= TL_TWIML_PARAMS_MAX)
            return fail(x, E2BIG, "more than %d <Parameter>s", TL_TWIML_PARAMS_MAX);
        size_t nl, vl;
        const char *nm = attr(x, pn, "name", &nl), *v = attr(x, pn, "value", &vl);
        if (!nm || !nl)
            return fail(x, EBADMSG, "<Parameter> without a name");
        struct tl_twiml_param *p = &t->params[t->n_params];
        if (copy(x, p->name, sizeof p->name, nm, nl, "a <Parameter> name") ||
            copy(x, p->value, sizeof p->value, v ? v : "", v ? vl : 0, "a <Parameter> value"))
            return x->err;
        t->n_params++;
        op->n_params++;
    }
    return 0;
}

static int verb(struct xp *x, struct tl_twiml *t, const struct node *nd)
{
    if (t->n >= TL_TWIML_VERBS_MAX)
        return fail(x, E2BIG, "more than %d verbs", TL_TWIML_VERBS_MAX);
    struct tl_twiml_op *op = &t->ops[t->n];
    memset(op, 0, sizeof *op);
    size_t l;
    const char *v;
    char name[72];
    snprintf(name, sizeof name, "%.*s", (int)nd->name.len, x->pool + nd->name.off);
    if (!strcmp(name, "Connect")) {
        if (verb_stream(x, t, nd, op))
            return x->err;
    } else if (!strcmp(name, "Pause")) {
        op->verb = TL_TWIML_PAUSE;
        op->pause_s = 1;
        if ((v = attr(x, nd, "length", &l))) {
            unsigned s = 0;
            if (!l || l > 4)
                return fail(x, EBADMSG, "<Pause length> must be whole seconds");
            for (size_t i = 0; i < l; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return fail(x, EBADMSG, "<Pause length> must be whole seconds");
                s = s * 10 + (unsigned)(v[i] - '0');
            }
            if (s > TL_TWIML_PAUSE_MAX_S)
                return fail(x, EBADMSG, "<Pause length> is at most %d", TL_TWIML_PAUSE_MAX_S);
            op->pause_s = s;
        }
    } else if (!strcmp(name, "Hangup")) {
        op->verb = TL_TWIML_HANGUP;
    } else if (!strcmp(name, "Reject")) {
        op->verb = TL_TWIML_REJECT;
        strcpy(op->reason, "rejected");
        if ((v = attr(x, nd, "reason", &l))) {
            if (l == 4 && !memcmp(v, "busy", 4))
                strcpy(op->reason, "busy");
            else if (!(l == 8 && !memcmp(v, "rejected", 8)))
                return fail(x, EBADMSG, "<Reject reason> must be busy or rejected");
        }
    } else if (!strcmp(name, "Redirect")) {
        op->verb = TL_TWIML_REDIRECT;
        strcpy(op->method, "POST");
        if ((v = attr(x, nd, "method", &l))) {
            if (l == 3 && !strncasecmp(v, "GET", 3))
                strcpy(op->method, "GET");
            else if (!(l == 4 && !strncasecmp(v, "POST", 4)))
                return fail(x, EBADMSG, "<Redirect method> must be POST or GET");
        }
        v = trimmed(x, &nd->text, &l);
        if (!l)
            return fail(x, EBADMSG, "<Redirect> without a URL");
        if (copy(x, op->url, sizeof op->url, v, l, "the <Redirect> URL"))
            return x->err;
    } else if (!strcmp(name, "Dial")) {
        op->verb = TL_TWIML_DIAL;
        const struct node *src = nd;
        if (nd->first >= 0) {
            const struct node *c = &x->nodes[nd->first];
            if (c->next >= 0 || !(str_is(x, &c->name, "Number") || str_is(x, &c->name, "Sip")))
                return fail(x, ENOTSUP, "<Dial> is supported with one <Number> or <Sip>");
            if (!only_ws_children(x, nd))
                return fail(x, EBADMSG, "<Dial> has both text and a <%s>",
                            str_is(x, &c->name, "Sip") ? "Sip" : "Number");
            src = c;
        }
        v = trimmed(x, &src->text, &l);
        if (!l)
            return fail(x, EBADMSG, "<Dial> without a number or SIP URI");
        if (copy(x, op->target, sizeof op->target, v, l, "the <Dial> target"))
            return x->err;
    } else if (!strcmp(name, "Play")) {
        v = attr(x, nd, "digits", &l);
        size_t tl;
        trimmed(x, &nd->text, &tl);
        if (!v || tl)
            return fail(x, ENOTSUP, "<Play> of an audio URL (only <Play digits> is supported)");
        op->verb = TL_TWIML_PLAY_DIGITS;
        for (size_t i = 0; i < l; i++)
            if (!strchr("0123456789*#ABCDwW", v[i]))
                return fail(x, EBADMSG, "<Play digits> takes 0-9 * # A-D w");
        if (!l || copy(x, op->digits, sizeof op->digits, v, l, "<Play digits>"))
            return x->err ? x->err : fail(x, EBADMSG, "<Play digits> is empty");
    } else if (!strcmp(name, "Say")) {
        op->verb = TL_TWIML_SAY;
        v = trimmed(x, &nd->text, &l);
        if (copy(x, op->text, sizeof op->text, v, l, "<Say> text"))
            return x->err;
        if ((v = attr(x, nd, "voice", &l)) && copy(x, op->voice, sizeof op->voice, v, l, "voice"))
            return x->err;
        if ((v = attr(x, nd, "language", &l)) &&
            copy(x, op->language, sizeof op->language, v, l, "language"))
            return x->err;
    } else {
        return fail(x, ENOTSUP, "the <%s> verb is not supported", name);
    }
    if (op->verb != TL_TWIML_CONNECT_STREAM && op->verb != TL_TWIML_DIAL && nd->first >= 0)
        return fail(x, ENOTSUP, "<%s> with nested elements is not supported", name);
    t->n++;
    return 0;
}

int tl_twiml_parse(const char *p, size_t n, struct tl_twiml *out, char *why, size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    if (!p || !out)
        return EINVAL;
    memset(out, 0, sizeof *out);
    if (n > TL_TWIML_MAX) {
        if (why && cap)
            snprintf(why, cap, "the document is over %d bytes", TL_TWIML_MAX);
        return E2BIG;
    }
    struct xp *x = calloc(1, sizeof *x);
    if (!x)
        return ENOMEM;
    x->p = p;
    x->e = p + n;
    x->why = why;
    x->wcap = cap;
    x->pcap = 2 * n + 64;
    x->pool = malloc(x->pcap);
    int r;
    if (!x->pool) {
        r = ENOMEM;
        goto out;
    }
    if (starts(x, "\xef\xbb\xbf")) /* a UTF-8 byte order mark */
        x->p += 3;
    if (skip_misc(x, true))
        goto done;
    if (x->p >= x->e || *x->p != '<') {
        fail(x, EBADMSG, "not XML");
        goto done;
    }
    if (element(x, -1, 1) || skip_misc(x, false))
        goto done;
    if (x->p != x->e) {
        fail(x, EBADMSG, "content after the root element");
        goto done;
    }
    const struct node *root = &x->nodes[0];
    if (!str_is(x, &root->name, "Response")) {
        fail(x, EBADMSG, "the root element is not <Response>");
        goto done;
    }
    for (int c = root->first; c >= 0 && !x->err; c = x->nodes[c].next)
        verb(x, out, &x->nodes[c]);
done:
    r = x->err;
out:
    free(x->pool);
    free(x);
    if (r)
        memset(out, 0, sizeof *out);
    return r;
}

const char *tl_twiml_verb_name(enum tl_twiml_verb v)
{
    static const char *const n[] = {"Connect",  "Pause", "Hangup", "Reject",
                                    "Redirect", "Dial",  "Play",   "Say"};
    return (unsigned)v < sizeof n / sizeof n[0] ? n[v] : "?";
}
