/* Output of the CLI: JSON for scripts, tables and "key: value" blocks for people.
 *
 * Everything shown to a person passes through tl_cli_clean: labels, names and header
 * values are typed by other users of the workspace (or come from a provider), and an
 * escape sequence in a label must not be able to rewrite the operator's terminal. */
#include "cli/cli_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void tl_cli_print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}

/* Length of the valid UTF-8 sequence at p (1..4) and its code point, or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t n;
    uint32_t min;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2, min = 0x80, *cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, min = 0x800, *cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, *cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return n;
}

/* C0, DEL, C1 (8-bit escape introducers on some terminals) and the bidirectional
 * overrides that can make text display in a different order than it is stored. */
static bool unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

char *tl_cli_clean(const char *s, size_t max_cols)
{
    size_t len = strlen(s);
    char *out = malloc(len + 4);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, cols = 0, cut = SIZE_MAX;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_seq(p, &cp);
        if (max_cols > 3 && cols == max_cols - 3)
            cut = o; /* where "..." goes if the text turns out too long */
        if (n == 0 || unsafe_cp(cp)) {
            out[o++] = '?';
            p += n ? n : 1;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
        cols++;
    }
    if (max_cols && cols > max_cols && cut != SIZE_MAX) {
        memcpy(out + cut, "...", 3);
        o = cut + 3;
    }
    out[o] = '\0';
    return out;
}

static size_t cols_of(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

const char *tl_cli_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && s[0] ? s : dflt;
}

static void put_clean(FILE *f, const char *s)
{
    char *c = tl_cli_clean(s, 0);
    fputs(c ? c : "?", f);
    free(c);
}

/* ---- key: value blocks ---- */

static void print_scalar(FILE *f, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        put_clean(f, json_string_value(v)[0] ? json_string_value(v) : "-");
        break;
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        fprintf(f, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        fputs("yes", f);
        break;
    case JSON_FALSE:
        fputs("no", f);
        break;
    case JSON_NULL:
        fputs("-", f);
        break;
    default: {
        char *d = json_dumps(v, JSON_COMPACT);
        put_clean(f, d ? d : "?");
        free(d);
    }
    }
}

static bool hidden_key(const char *k, int indent)
{
    /* "object" only repeats the command; warnings go to stderr separately */
    return indent == 0 && (strcmp(k, "object") == 0 || strcmp(k, "warnings") == 0);
}

/* One item of an array: {"name","value"} pairs (SIP and websocket headers) as
 * "Name: value"; reads of agent headers carry "value_set" instead of the value. */
static void print_item(FILE *f, const json_t *it)
{
    const char *name = json_string_value(json_object_get(it, "name"));
    if (json_is_object(it) && name) {
        put_clean(f, name);
        const json_t *val = json_object_get(it, "value");
        if (json_is_string(val)) {
            fputs(": ", f);
            put_clean(f, json_string_value(val));
        } else if (json_is_true(json_object_get(it, "value_set"))) {
            fputs(": (set, hidden)", f);
        }
        return;
    }
    print_scalar(f, it);
}

static void block(FILE *f, const json_t *obj, int indent)
{
    size_t w = 0;
    void *iter;
    for (iter = json_object_iter((json_t *)obj); iter;
         iter = json_object_iter_next((json_t *)obj, iter)) {
        const char *k = json_object_iter_key(iter);
        if (!hidden_key(k, indent) && strlen(k) > w)
            w = strlen(k);
    }
    for (iter = json_object_iter((json_t *)obj); iter;
         iter = json_object_iter_next((json_t *)obj, iter)) {
        const char *k = json_object_iter_key(iter);
        const json_t *v = json_object_iter_value(iter);
        if (hidden_key(k, indent))
            continue;
        fprintf(f, "%*s", indent, "");
        put_clean(f, k);
        fputc(':', f);
        int pad = (int)(w - strlen(k)) + 1;
        if (json_is_object(v) && json_object_size(v)) {
            fputc('\n', f);
            block(f, v, indent + 2);
            continue;
        }
        fprintf(f, "%*s", pad, "");
        if (json_is_object(v) || (json_is_array(v) && json_array_size(v) == 0)) {
            fputs("-\n", f);
            continue;
        }
        if (!json_is_array(v)) {
            print_scalar(f, v);
            fputc('\n', f);
            continue;
        }
        size_t n = json_array_size(v);
        bool strings = true;
        for (size_t i = 0; i < n; i++)
            strings = strings && json_is_string(json_array_get(v, i));
        if (strings) { /* allowed_addresses: short, read best on one line */
            for (size_t i = 0; i < n; i++) {
                fputs(i ? ", " : "", f);
                print_item(f, json_array_get(v, i));
            }
            fputc('\n', f);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (i)
                fprintf(f, "%*s", indent + (int)w + 2, "");
            print_item(f, json_array_get(v, i));
            fputc('\n', f);
        }
    }
}

void tl_cli_print_block(const json_t *obj)
{
    block(stdout, obj, 0);
}

void tl_cli_print_warnings(const json_t *obj)
{
    const json_t *ws = json_object_get(obj, "warnings");
    for (size_t i = 0; i < json_array_size(ws); i++) {
        const json_t *w = json_array_get(ws, i);
        fputs("warning: ", stderr);
        const char *field = tl_cli_str(w, "field", NULL);
        if (field) {
            put_clean(stderr, field);
            fputs(": ", stderr);
        }
        put_clean(stderr, tl_cli_str(w, "message", tl_cli_str(w, "code", "(no message)")));
        fputc('\n', stderr);
    }
}

void tl_cli_print_object(struct cli *c, const json_t *obj)
{
    tl_cli_print_warnings(obj);
    if (c->json)
        tl_cli_print_json(obj);
    else
        tl_cli_print_block(obj);
}

/* ---- tables ---- */

/* Long values (agent URLs, labels) would push every row off the screen; --json or show
 * has them in full. */
#define CELL_COLS_MAX 48

struct cli_table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols, row 0 the headers */
    size_t *width;
};

struct cli_table *tl_cli_table_new(size_t ncols, const char *const *headers)
{
    struct cli_table *t = calloc(1, sizeof *t);
    if (!t || !(t->width = calloc(ncols, sizeof *t->width))) {
        free(t);
        return NULL;
    }
    t->ncols = ncols;
    if (tl_cli_table_row(t, headers) != TL_CLI_OK) {
        tl_cli_table_free(t);
        return NULL;
    }
    return t;
}

int tl_cli_table_row(struct cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof *nc);
        if (!nc)
            return tl_cli_oom();
        t->cells = nc;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = tl_cli_clean(cells[i] && cells[i][0] ? cells[i] : "-", CELL_COLS_MAX);
        if (!row[i]) {
            while (i--)
                free(row[i]);
            return tl_cli_oom();
        }
    }
    for (size_t i = 0; i < t->ncols; i++) {
        size_t w = cols_of(row[i]);
        if (w > t->width[i])
            t->width[i] = w;
    }
    t->nrows++;
    return TL_CLI_OK;
}

void tl_cli_table_print(struct cli_table *t, FILE *f)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            fputs(s, f);
            if (i + 1 < t->ncols)
                fprintf(f, "%*s", (int)(t->width[i] - cols_of(s) + 2), "");
        }
        fputc('\n', f);
    }
}

void tl_cli_table_free(struct cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->width);
    free(t);
}

int tl_cli_print_list(struct cli *c, const json_t *list, size_t ncols, const char *const *headers,
                      cli_row_cb row_cb)
{
    if (c->json) {
        tl_cli_print_json(list);
        return TL_CLI_OK;
    }
    const json_t *data = json_object_get(list, "data");
    struct cli_table *t = tl_cli_table_new(ncols, headers);
    if (!t)
        return tl_cli_oom();
    const char *cells[8];
    char scratch[CLI_SCRATCH];
    for (size_t i = 0; i < json_array_size(data); i++) {
        memset(cells, 0, sizeof cells);
        scratch[0] = '\0';
        row_cb(json_array_get(data, i), cells, scratch);
        if (tl_cli_table_row(t, cells) != TL_CLI_OK) {
            tl_cli_table_free(t);
            return TL_CLI_API;
        }
    }
    if (json_array_size(data))
        tl_cli_table_print(t, stdout);
    else
        printf("no %s\n", c->res->name);
    tl_cli_table_free(t);
    const char *next = tl_cli_str(list, "next_cursor", NULL);
    if (next) {
        fputs("more: add --all, or --cursor ", stderr);
        put_clean(stderr, next);
        fputs(" for the next page\n", stderr);
    }
    return TL_CLI_OK;
}
