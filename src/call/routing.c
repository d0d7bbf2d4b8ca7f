/* routing: the cache of routing.h — an open-addressing hash table (linear probing) from
 * E.164 to compact entries.
 *
 * An entry is one allocation: the fixed fields, then a pool holding the allowed prefixes
 * and the variable-length texts (agent URL or builtin name, digest username and
 * password, outbound address, inbound headers) at 16-bit offsets. A typical number
 * (one CIDR, digest credentials, no headers, builtin agent) takes ~240 bytes, against
 * ~25 KiB for a struct tl_phone_number. Entries never change once built: an update
 * builds a new one and swaps the pointer.
 *
 * Two locks, and the rule that the loop never waits for O(N) work (issue 11 item 9: with
 * a million numbers, a rehash or a scan under the lookup lock froze every call's media).
 *   - r->refresh_mu serialises writers (store read + swap; the table growth; the scan for
 *     an agent's or workspace's numbers), so that of two writers the later one always reads
 *     the later committed state. Only a writer changes the table, so a writer holding it
 *     may read the table without r->mu.
 *   - r->mu guards what lookups read: the table pointer and its slots. Writers hold it for
 *     O(1) work only: one slot written, a short run of slots shifted on removal, or the
 *     pointer of a new table swapped in. A growth builds the bigger table off-lock from
 *     the old one and swaps; the old array is freed after unlocking, when no lookup can be
 *     in it any more (lookups hold r->mu for their whole probe).
 * Entries removed from the table are wiped and freed outside r->mu. */
#include "call/routing.h"
#include "call/trusted.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define ID_LEN 30 /* "pn_" + 26: every id tl_id_new makes */

struct entry {
    uint32_t hash;
    uint32_t gen;   /* the full load that last saw it (tl_routing_reload) */
    uint32_t bytes; /* the whole allocation */
    char number[TL_E164_MAX + 1];
    char number_id[ID_LEN], workspace_id[ID_LEN], agent_id[ID_LEN];
    char account_sid[TL_TWILIO_SID_LEN + 1];
    uint8_t plan, agent_kind, has_inbound, in_transport, in_media, in_latching, out_transport,
        out_media;
    uint8_t out_has_auth, n_allowed, n_in_headers, n_params, n_agent_headers, agent_method_get;
    uint32_t agent_timeout_ms;
    /* pool offsets; the prefixes start the pool */
    uint16_t off_agent, off_user, off_pass, off_out_addr, off_headers, off_params, off_ahdrs,
        off_fallback, off_status, off_token;
    uint16_t off_orig; /* the inbound trunk's origination URL, "" = none */
    char pool[];
};

struct slot {
    uint32_t hash;
    struct entry *e; /* NULL = free */
};

struct table {
    size_t cap;    /* power of two */
    unsigned bits; /* log2(cap) */
    struct slot s[];
};

struct tl_routing {
    struct tl_store *store;
    pthread_mutex_t mu;         /* r->t and its slots, r->count (lookups) */
    pthread_mutex_t refresh_mu; /* writers */
    struct table *t;
    size_t count;
    uint32_t gen; /* the current full load; entries swapped in carry it (refresh_mu) */
    void (*scan_hook)(void *arg); /* tests: runs amid O(N) work (refresh_mu held) */
    void *scan_arg;
    /* every inbound trunk's allowed_addresses, for the SIP transport's reserved slots
     * (issue 11 item 1): kept in step with the entries at their one swap point below */
    struct tl_trusted *trusted;
};

#define TABLE_MIN_BITS 10
/* grow past 3/4 full: linear probing stays short (expected probes ~2.5 for a miss) */
#define TABLE_FULL(count, cap) ((count)*4 > (cap)*3)

/* an entry's allowed prefixes as the trusted set sees them (only an inbound trunk's) */
static void trusted_update(struct tl_routing *r, const struct entry *e, int delta)
{
    if (e && e->has_inbound && e->n_allowed)
        tl_trusted_update(r->trusted, (const struct tl_route_prefix *)(const void *)e->pool,
                          e->n_allowed, delta);
}

static uint32_t hash_of(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    sodium_memzero(e, e->bytes); /* the pool holds the inbound password */
    free(e);
}

/* ---- prefixes ---- */

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* a canonical "addr[/len]" from the store into a binary prefix; mapped IPv6 blocks
 * become IPv4 (sources are compared as IPv4 too) */
static int prefix_parse(const char *s, struct tl_route_prefix *p)
{
    char addr[TL_CIDR_MAX + 1];
    const char *slash = strchr(s, '/');
    size_t al = slash ? (size_t)(slash - s) : strlen(s);
    if (al >= sizeof addr)
        return EINVAL;
    memcpy(addr, s, al);
    addr[al] = '\0';
    memset(p, 0, sizeof *p);
    unsigned max;
    if (strchr(addr, ':')) {
        if (inet_pton(AF_INET6, addr, p->addr) != 1)
            return EINVAL;
        p->family = 6;
        max = 128;
    } else {
        if (inet_pton(AF_INET, addr, p->addr) != 1)
            return EINVAL;
        p->family = 4;
        max = 32;
    }
    unsigned bits = max;
    if (slash) {
        char *end;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || v > max)
            return EINVAL;
        bits = (unsigned)v;
    }
    if (p->family == 6 && memcmp(p->addr, v4mapped, 12) == 0 && bits >= 96) {
        memmove(p->addr, p->addr + 12, 4);
        memset(p->addr + 4, 0, 12);
        p->family = 4;
        bits -= 96;
    }
    p->bits = (uint8_t)bits;
    return 0;
}

static bool prefix_match(const struct tl_route_prefix *p, int family, const uint8_t *a)
{
    if (p->family != family)
        return false;
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(p->addr, a, full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (p->addr[full] & mask) == (a[full] & mask);
}

bool tl_routing_match_source(const struct tl_route *route, const struct sockaddr *sa)
{
    uint8_t a[16];
    int family;

    if (route->n_allowed == 0)
        return true;
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        family = 4;
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(b, v4mapped, 12) == 0) {
            memcpy(a, b + 12, 4);
            family = 4;
        } else {
            memcpy(a, b, 16);
            family = 6;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < route->n_allowed && i < TL_ALLOWED_MAX; i++)
        if (prefix_match(&route->allowed[i], family, a))
            return true;
    return false;
}

/* ---- normalisation ---- */

int tl_routing_normalise(const char *user, char out[TL_E164_MAX + 1])
{
    char d[TL_E164_MAX + 2]; /* "00" and 15 digits */
    size_t nd = 0;
    bool plus = false;

    out[0] = '\0';
    if (!user)
        return EINVAL;
    for (const char *p = user; *p && *p != ';'; p++) {
        char c = *p;
        if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
            continue;
        if (c == '+') {
            if (plus || nd) /* one '+', in front */
                return EINVAL;
            plus = true;
            continue;
        }
        if (c < '0' || c > '9' || nd == sizeof d)
            return EINVAL;
        d[nd++] = c;
    }
    size_t start = !plus && nd >= 2 && d[0] == '0' && d[1] == '0' ? 2 : 0;
    size_t n = nd - start;
    /* a country code never starts with 0: a single leading 0 is a national number */
    if (n < 1 || n > TL_E164_MAX - 1 || d[start] == '0')
        return EINVAL;
    out[0] = '+';
    memcpy(out + 1, d + start, n);
    out[n + 1] = '\0';
    return 0;
}

/* ---- entries ---- */

struct pool_b {
    char *buf;
    size_t len, cap;
};

static uint16_t pool_str(struct pool_b *p, const char *s)
{
    size_t n = strlen(s) + 1;
    uint16_t off = (uint16_t)p->len;
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return off;
}

/* Builds the entry of n (passwords open) with its agent and plan. Every text is within
 * its store cap, so the pool bound below holds. */
static struct entry *entry_build(const struct tl_phone_number *n, const struct tl_agent *a,
                                 enum tl_plan plan, const char *token)
{
    bool twiml = a && a->kind == TL_AGENT_TWIML;
    const char *fallback = twiml ? a->fallback_url : "", *status = twiml ? a->status_callback : "";
    if (!twiml || !token)
        token = "";
    size_t n_allowed = n->has_inbound ? n->inbound.n_allowed : 0;
    size_t n_hdr = n->has_inbound ? n->inbound.n_headers : 0;
    if (n_allowed > TL_ALLOWED_MAX)
        n_allowed = TL_ALLOWED_MAX;
    if (n_hdr > TL_HEADERS_MAX)
        n_hdr = TL_HEADERS_MAX;
    const char *agent_txt = !a ? "" : a->kind == TL_AGENT_BUILTIN ? a->builtin : a->url;
    const char *user = n->has_inbound ? n->inbound.username : "";
    const char *pass = n->has_inbound ? n->inbound.password : "";
    const char *orig = n->has_inbound ? n->inbound.origination_url : "";
    size_t need = n_allowed * sizeof(struct tl_route_prefix) + strlen(agent_txt) + 1 +
                  strlen(user) + 1 + strlen(pass) + 1 + strlen(n->outbound.address) + 1 +
                  strlen(fallback) + 1 + strlen(status) + 1 + strlen(token) + 1 + strlen(orig) + 1;
    for (size_t i = 0; i < n_hdr; i++)
        need += strlen(n->inbound.headers[i].name) + 1 + strlen(n->inbound.headers[i].value) + 1;
    size_t n_par = a ? a->n_params : 0;
    if (n_par > TL_PARAMS_MAX)
        n_par = TL_PARAMS_MAX;
    for (size_t i = 0; i < n_par; i++)
        need += strlen(a->params[i].key) + 1 + strlen(a->params[i].value) + 1;
    size_t n_ah = a && a->kind == TL_AGENT_WEBSOCKET ? a->n_headers : 0;
    if (n_ah > TL_HEADERS_MAX)
        n_ah = TL_HEADERS_MAX;
    for (size_t i = 0; i < n_ah; i++)
        need += strlen(a->headers[i].name) + 1 + strlen(a->headers[i].value) + 1;
    if (need > UINT16_MAX) /* the caps bound it near 40 KiB */
        return NULL;
    if (strlen(n->id) >= ID_LEN || strlen(n->workspace_id) >= ID_LEN ||
        strlen(n->agent_id) >= ID_LEN)
        return NULL;

    struct entry *e = calloc(1, sizeof *e + need);
    if (!e)
        return NULL;
    e->bytes = (uint32_t)(sizeof *e + need);
    e->hash = hash_of(n->number);
    tl_strlcpy(e->number, n->number, sizeof e->number);
    tl_strlcpy(e->number_id, n->id, sizeof e->number_id);
    tl_strlcpy(e->workspace_id, n->workspace_id, sizeof e->workspace_id);
    if (a)
        tl_strlcpy(e->agent_id, n->agent_id, sizeof e->agent_id);
    e->plan = (uint8_t)plan;
    e->agent_kind = a ? (uint8_t)a->kind : 0;
    e->has_inbound = n->has_inbound;
    e->in_transport = (uint8_t)n->inbound.transport;
    e->in_media = (uint8_t)n->inbound.media_encryption;
    e->in_latching = (uint8_t)n->inbound.rtp_latching;
    e->out_transport = (uint8_t)n->outbound.transport;
    e->out_media = (uint8_t)n->outbound.media_encryption;
    e->out_has_auth = n->outbound.username[0] != '\0';

    struct pool_b p = {e->pool, 0, need};
    struct tl_route_prefix *pre = (struct tl_route_prefix *)(void *)e->pool;
    for (size_t i = 0; i < n_allowed; i++) {
        /* the store validated it; one that does not parse is skipped, and logged, rather
         * than widening the list to "any source" */
        if (prefix_parse(n->inbound.allowed_addresses[i], &pre[e->n_allowed]) == 0)
            e->n_allowed++;
        else
            tl_error("routing", "allowed.bad", "number_id=%s", n->id);
    }
    p.len = n_allowed * sizeof(struct tl_route_prefix);
    e->off_agent = pool_str(&p, agent_txt);
    e->off_user = pool_str(&p, user);
    e->off_pass = pool_str(&p, pass);
    e->off_out_addr = pool_str(&p, n->outbound.address);
    e->off_fallback = pool_str(&p, fallback);
    e->off_status = pool_str(&p, status);
    e->off_token = pool_str(&p, token);
    e->agent_method_get = twiml && a->method_get;
    e->off_orig = pool_str(&p, orig);
    e->off_headers = (uint16_t)p.len;
    for (size_t i = 0; i < n_hdr; i++) {
        pool_str(&p, n->inbound.headers[i].name);
        pool_str(&p, n->inbound.headers[i].value);
    }
    e->n_in_headers = (uint8_t)n_hdr;
    e->off_params = (uint16_t)p.len;
    for (size_t i = 0; i < n_par; i++) {
        pool_str(&p, a->params[i].key);
        pool_str(&p, a->params[i].value);
    }
    e->n_params = (uint8_t)n_par;
    e->off_ahdrs = (uint16_t)p.len;
    for (size_t i = 0; i < n_ah; i++) {
        pool_str(&p, a->headers[i].name);
        pool_str(&p, a->headers[i].value);
    }
    e->n_agent_headers = (uint8_t)n_ah;
    e->agent_timeout_ms = a ? a->connect_timeout_ms : 0;
    if (e->n_allowed == 0 && n_allowed > 0) {
        /* every block failed to parse: refuse all sources instead of allowing all */
        e->n_allowed = 1;
        memset(pre, 0, sizeof *pre);
        pre->family = 0xff;
    }
    return e;
}

static void entry_copy_out(const struct entry *e, struct tl_route *o)
{
    memset(o, 0, sizeof *o);
    tl_strlcpy(o->number, e->number, sizeof o->number);
    tl_strlcpy(o->number_id, e->number_id, sizeof o->number_id);
    tl_strlcpy(o->workspace_id, e->workspace_id, sizeof o->workspace_id);
    memcpy(o->account_sid, e->account_sid, sizeof o->account_sid);
    o->plan = (enum tl_plan)e->plan;
    tl_strlcpy(o->agent_id, e->agent_id, sizeof o->agent_id);
    o->agent_kind = (enum tl_agent_kind)e->agent_kind;
    if (e->agent_id[0]) {
        if (o->agent_kind == TL_AGENT_BUILTIN)
            tl_strlcpy(o->agent_builtin, e->pool + e->off_agent, sizeof o->agent_builtin);
        else
            tl_strlcpy(o->agent_url, e->pool + e->off_agent, sizeof o->agent_url);
    }
    o->has_inbound = e->has_inbound;
    o->in_transport = (enum tl_transport)e->in_transport;
    o->in_media = (enum tl_media_enc)e->in_media;
    o->in_latching = (enum tl_rtp_latching)e->in_latching;
    tl_strlcpy(o->in_username, e->pool + e->off_user, sizeof o->in_username);
    tl_strlcpy(o->in_password, e->pool + e->off_pass, sizeof o->in_password);
    o->n_allowed = e->n_allowed;
    memcpy(o->allowed, e->pool, e->n_allowed * sizeof o->allowed[0]);
    const char *h = e->pool + e->off_headers;
    for (size_t i = 0; i < e->n_in_headers; i++) {
        tl_strlcpy(o->in_headers[i].name, h, sizeof o->in_headers[i].name);
        h += strlen(h) + 1;
        tl_strlcpy(o->in_headers[i].value, h, sizeof o->in_headers[i].value);
        h += strlen(h) + 1;
    }
    o->n_in_headers = e->n_in_headers;
    const char *pa = e->pool + e->off_params;
    for (size_t i = 0; i < e->n_params; i++) {
        tl_strlcpy(o->agent_params[i].key, pa, sizeof o->agent_params[i].key);
        pa += strlen(pa) + 1;
        tl_strlcpy(o->agent_params[i].value, pa, sizeof o->agent_params[i].value);
        pa += strlen(pa) + 1;
    }
    o->n_agent_params = e->n_params;
    const char *ah = e->pool + e->off_ahdrs;
    for (size_t i = 0; i < e->n_agent_headers; i++) {
        tl_strlcpy(o->agent_headers[i].name, ah, sizeof o->agent_headers[i].name);
        ah += strlen(ah) + 1;
        tl_strlcpy(o->agent_headers[i].value, ah, sizeof o->agent_headers[i].value);
        ah += strlen(ah) + 1;
    }
    o->n_agent_headers = e->n_agent_headers;
    o->agent_timeout_ms = e->agent_timeout_ms;
    o->agent_method_get = e->agent_method_get;
    tl_strlcpy(o->agent_fallback_url, e->pool + e->off_fallback, sizeof o->agent_fallback_url);
    tl_strlcpy(o->agent_status_callback, e->pool + e->off_status, sizeof o->agent_status_callback);
    tl_strlcpy(o->twilio_token, e->pool + e->off_token, sizeof o->twilio_token);
    tl_strlcpy(o->out_address, e->pool + e->off_out_addr, sizeof o->out_address);
    tl_strlcpy(o->in_origination_url, e->pool + e->off_orig, sizeof o->in_origination_url);
    o->out_transport = (enum tl_transport)e->out_transport;
    o->out_media = (enum tl_media_enc)e->out_media;
    o->out_has_auth = e->out_has_auth;
}

void tl_route_wipe(struct tl_route *rt)
{
    sodium_memzero(rt, sizeof *rt);
}

/* ---- the table ---- */

/* the home slot: Fibonacci hashing spreads FNV's low bits over the whole table */
static size_t home(const struct table *t, uint32_t h)
{
    return (size_t)(((uint64_t)h * 0x9E3779B97F4A7C15ull) >> (64 - t->bits));
}

static struct table *table_new(unsigned bits)
{
    struct table *t = calloc(1, sizeof *t + ((size_t)1 << bits) * sizeof(struct slot));
    if (!t)
        return NULL;
    t->cap = (size_t)1 << bits;
    t->bits = bits;
    return t;
}

/* the slot of number, or the free slot that ends its probe */
static size_t probe(const struct table *t, const char *number, uint32_t h)
{
    size_t mask = t->cap - 1, i = home(t, h);
    while (t->s[i].e && (t->s[i].hash != h || strcmp(t->s[i].e->number, number) != 0))
        i = (i + 1) & mask;
    return i;
}

/* Removes slot i and shifts the rest of its run back (no tombstones): O(run length). */
static void slot_remove(struct table *t, size_t i)
{
    size_t mask = t->cap - 1, j = i;
    t->s[i].e = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->s[j].e)
            return;
        size_t k = home(t, t->s[j].hash);
        /* j's entry may fill the hole at i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        t->s[i] = t->s[j];
        t->s[j].e = NULL;
        i = j;
    }
}

/* Builds a table twice the size from r->t, off-lock (the caller holds refresh_mu, so
 * nothing else changes r->t meanwhile), and swaps it in under r->mu. A failed allocation
 * keeps the old table: fuller, slower, still correct. */
static void grow(struct tl_routing *r)
{
    struct table *old = r->t, *nt = table_new(old->bits + 1);
    if (!nt)
        return;
    size_t mask = nt->cap - 1;
    for (size_t i = 0; i < old->cap; i++) {
        if (!old->s[i].e)
            continue;
        size_t j = home(nt, old->s[i].hash);
        while (nt->s[j].e)
            j = (j + 1) & mask;
        nt->s[j] = old->s[i];
    }
    if (r->scan_hook)
        r->scan_hook(r->scan_arg);
    pthread_mutex_lock(&r->mu);
    r->t = nt;
    pthread_mutex_unlock(&r->mu);
    free(old);
}

/* Puts e in (NULL: removes number); returns the entry it replaced, to be freed by the
 * caller. Caller holds refresh_mu; takes r->mu for O(1) work only. */
static struct entry *swap_in(struct tl_routing *r, const char *number, struct entry *e)
{
    uint32_t h = hash_of(number);
    if (e && TABLE_FULL(r->count + 1, r->t->cap))
        grow(r);
    pthread_mutex_lock(&r->mu);
    struct table *t = r->t;
    size_t i = probe(t, number, h);
    struct entry *old = t->s[i].e;
    if (e) {
        e->gen = r->gen;
        if (!old && r->count + 1 >= t->cap) {
            /* growth failed and one free slot is left, which ends every probe: refuse the
             * new number (the caller frees it) rather than fill it */
            pthread_mutex_unlock(&r->mu);
            tl_error("routing", "table.full", "number=%s", number);
            return e;
        }
        t->s[i].hash = h;
        t->s[i].e = e;
        if (!old)
            r->count++;
    } else if (old) {
        slot_remove(t, i);
        r->count--;
    }
    pthread_mutex_unlock(&r->mu);
    trusted_update(r, e, +1);
    trusted_update(r, old, -1);
    return old;
}

bool tl_routing_source_trusted(struct tl_routing *r, const struct sockaddr *sa)
{
    return r && tl_trusted_match(r->trusted, sa);
}

/* ---- refresh ---- */

/* reads number e164 with its agent and plan; ENOENT when it is gone */
static int build_from_store(struct tl_routing *r, const struct tl_phone_number *n,
                            struct entry **out)
{
    struct tl_workspace ws;
    struct tl_agent *a = NULL;
    int ret = tl_store_workspace_get(r->store, n->workspace_id, &ws);
    if (ret)
        return ret;
    if (n->agent_id[0]) {
        a = malloc(sizeof *a);
        if (!a)
            return ENOMEM;
        /* values opened: a websocket agent's upgrade headers are needed on the call path,
         * which never reads the store */
        ret = tl_store_agent_secrets(r->store, n->workspace_id, n->agent_id, a);
        if (ret == ENOENT) { /* deleted between the two reads: its own hook follows */
            free(a);
            a = NULL;
            ret = 0;
        }
    }
    char token[TL_TWILIO_TOKEN_LEN + 1] = "";
    if (ret == 0 && a && a->kind == TL_AGENT_TWIML &&
        tl_store_twilio_token(r->store, n->workspace_id, token) != 0)
        token[0] = '\0'; /* none issued: the voice URL's requests go unsigned */
    if (ret == 0) {
        *out = entry_build(n, a, ws.plan, token);
        if (!*out)
            ret = ENOMEM;
        else
            tl_store_account_sid(r->store, n->workspace_id, (*out)->account_sid);
    }
    sodium_memzero(token, sizeof token);
    if (a)
        sodium_memzero(a, sizeof *a);
    free(a);
    return ret;
}

static int refresh_locked(struct tl_routing *r, const char *e164, struct tl_phone_number *n)
{
    struct entry *e = NULL;
    int ret = tl_store_number_secrets(r->store, e164, n);
    if (ret == 0)
        ret = build_from_store(r, n, &e);
    sodium_memzero(n, sizeof *n);
    if (ret == ENOENT) {
        entry_free(swap_in(r, e164, NULL));
        return 0;
    }
    if (ret)
        return ret;
    entry_free(swap_in(r, e164, e));
    return 0;
}

int tl_routing_refresh_number(struct tl_routing *r, const char *e164)
{
    struct tl_phone_number *n = malloc(sizeof *n);
    if (!n)
        return ENOMEM;
    pthread_mutex_lock(&r->refresh_mu);
    int ret = refresh_locked(r, e164, n);
    pthread_mutex_unlock(&r->refresh_mu);
    free(n);
    if (ret)
        tl_error("routing", "refresh.failed", "number=%s error=%d", e164, ret);
    return ret;
}

/* The numbers (E.164) of a workspace, or of one agent of it: a snapshot taken under
 * refresh_mu (a writer's right to read the table without r->mu), so that this O(N) scan
 * never holds the lock lookups take. */
static int collect(struct tl_routing *r, const char *ws, const char *agent, bool stale,
                   char (**out)[TL_E164_MAX + 1], size_t *n)
{
    size_t cap = 0;
    int ret = 0;
    *out = NULL;
    *n = 0;
    const struct table *t = r->t;
    for (size_t i = 0; i < t->cap && !ret; i++) {
        const struct entry *e = t->s[i].e;
        if (!e || (ws && strcmp(e->workspace_id, ws) != 0) ||
            (agent && strcmp(e->agent_id, agent) != 0) || (stale && e->gen == r->gen))
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *p = realloc(*out, nc * sizeof **out);
            if (!p) {
                ret = ENOMEM;
                break;
            }
            *out = p;
            cap = nc;
        }
        memcpy((*out)[(*n)++], e->number, sizeof e->number);
    }
    if (r->scan_hook)
        r->scan_hook(r->scan_arg);
    return ret;
}

static int numbers_of(struct tl_routing *r, const char *ws, const char *agent,
                      char (**out)[TL_E164_MAX + 1], size_t *n)
{
    pthread_mutex_lock(&r->refresh_mu);
    int ret = collect(r, ws, agent, false, out, n);
    pthread_mutex_unlock(&r->refresh_mu);
    return ret;
}

static void on_change(const struct tl_store_change *c, void *arg)
{
    struct tl_routing *r = arg;
    char(*nums)[TL_E164_MAX + 1] = NULL;
    size_t n = 0;

    switch (c->kind) {
    case TL_CHANGE_NUMBER_CREATED:
    case TL_CHANGE_NUMBER_REPLACED:
    case TL_CHANGE_NUMBER_ASSIGNED:
    case TL_CHANGE_NUMBER_DELETED:
    case TL_CHANGE_NUMBER_RELEASED:
        if (c->number && c->number[0])
            tl_routing_refresh_number(r, c->number);
        return;
    case TL_CHANGE_AGENT_UPDATED:
    case TL_CHANGE_AGENT_DELETED:
        if (numbers_of(r, c->workspace_id, c->id, &nums, &n))
            tl_error("routing", "refresh.failed", "agent_id=%s error=%d", c->id, ENOMEM);
        break;
    case TL_CHANGE_WORKSPACE_UPDATED:
        if (numbers_of(r, c->id, NULL, &nums, &n))
            tl_error("routing", "refresh.failed", "workspace_id=%s error=%d", c->id, ENOMEM);
        break;
    }
    for (size_t i = 0; i < n; i++)
        tl_routing_refresh_number(r, nums[i]);
    free(nums);
}

/* ---- life cycle and lookups ---- */

static int load_one(const struct tl_phone_number *n, void *arg)
{
    struct tl_routing *r = arg;
    struct entry *e = NULL;
    int ret = build_from_store(r, n, &e);
    if (ret == ENOENT) /* workspace or agent gone meanwhile: the hook re-reads it */
        return 0;
    if (ret)
        return ret;
    entry_free(swap_in(r, n->number, e));
    return 0;
}

int tl_routing_reload(struct tl_routing *r)
{
    char(*stale)[TL_E164_MAX + 1] = NULL;
    size_t n = 0;
    struct tl_phone_number *pn = malloc(sizeof *pn);
    if (!pn)
        return ENOMEM;
    pthread_mutex_lock(&r->refresh_mu);
    r->gen++;
    size_t before = r->count;
    int ret = tl_store_number_secrets_each(r->store, load_one, r);
    /* what the load did not see is gone from the store, or was skipped (its workspace or
     * agent changed meanwhile): re-read one by one, which removes the former. A failed
     * load leaves them as they were: the caller tries again. */
    if (ret == 0)
        ret = collect(r, NULL, NULL, true, &stale, &n);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = refresh_locked(r, stale[i], pn);
    size_t after = r->count;
    pthread_mutex_unlock(&r->refresh_mu);
    free(stale);
    free(pn);
    if (ret)
        tl_error("routing", "reload.failed", "error=%d", ret);
    else
        tl_info("routing", "reloaded", "numbers=%zu before=%zu stale=%zu", after, before, n);
    return ret;
}

static int on_resync(void *arg)
{
    return tl_routing_reload(arg);
}

int tl_routing_open(struct tl_routing **rp, struct tl_store *s)
{
    struct tl_routing *r = calloc(1, sizeof *r);
    *rp = NULL;
    if (!r)
        return ENOMEM;
    r->store = s;
    r->t = table_new(TABLE_MIN_BITS);
    if (!r->t || tl_trusted_new(&r->trusted)) {
        free(r->t);
        free(r);
        return ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->refresh_mu, NULL);
    /* the hook first: a change committed during the load is re-read after it */
    tl_store_set_change_hook(s, on_change, r);
    tl_store_set_resync_hook(s, on_resync, r);
    pthread_mutex_lock(&r->refresh_mu);
    int ret = tl_store_number_secrets_each(s, load_one, r);
    pthread_mutex_unlock(&r->refresh_mu);
    if (ret) {
        tl_routing_close(r);
        return ret;
    }
    tl_info("routing", "loaded", "numbers=%zu", r->count);
    *rp = r;
    return 0;
}

void tl_routing_close(struct tl_routing *r)
{
    if (!r)
        return;
    tl_store_set_change_hook(r->store, NULL, NULL);
    tl_store_set_resync_hook(r->store, NULL, NULL);
    for (size_t i = 0; i < r->t->cap; i++)
        entry_free(r->t->s[i].e);
    free(r->t);
    tl_trusted_free(r->trusted);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->refresh_mu);
    free(r);
}

int tl_routing_lookup(struct tl_routing *r, const char *e164, struct tl_route *out)
{
    uint32_t h = hash_of(e164);
    pthread_mutex_lock(&r->mu);
    struct entry *e = r->t->s[probe(r->t, e164, h)].e;
    if (e)
        entry_copy_out(e, out);
    pthread_mutex_unlock(&r->mu);
    return e ? 0 : ENOENT;
}

int tl_routing_owner(struct tl_routing *r, const char *e164, char number_id[TL_ID_MAX],
                     char workspace_id[TL_ID_MAX])
{
    uint32_t h = hash_of(e164);
    pthread_mutex_lock(&r->mu);
    struct entry *e = r->t->s[probe(r->t, e164, h)].e;
    if (e) {
        tl_strlcpy(number_id, e->number_id, TL_ID_MAX);
        tl_strlcpy(workspace_id, e->workspace_id, TL_ID_MAX);
    }
    pthread_mutex_unlock(&r->mu);
    return e ? 0 : ENOENT;
}

void tl_routing_set_scan_hook(struct tl_routing *r, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&r->refresh_mu);
    r->scan_hook = fn;
    r->scan_arg = arg;
    pthread_mutex_unlock(&r->refresh_mu);
}

size_t tl_routing_count(struct tl_routing *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t tl_routing_entry_bytes(struct tl_routing *r, const char *e164)
{
    uint32_t h = hash_of(e164);
    pthread_mutex_lock(&r->mu);
    struct entry *e = r->t->s[probe(r->t, e164, h)].e;
    size_t b = e ? e->bytes : 0;
    pthread_mutex_unlock(&r->mu);
    return b;
}
