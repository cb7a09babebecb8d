/* SPDX-License-Identifier: MIT */
/*
 * Strict option parsing (see opt.h). Error messages quote the offending word
 * through quote(), which escapes control and non-ASCII bytes so that a hostile
 * argv cannot put a newline or a terminal escape into the one-line error.
 */
#include "cli/opt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    QUOTE_MAX = 64, /* bytes of a bad word shown in an error */
};

/* Escapes up to QUOTE_MAX bytes of s into out (at least 4*QUOTE_MAX+8). */
static const char *
quote(const char *s, char *out)
{
    size_t o = 0, i = 0;
    for (; s[i] && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    if (s[i]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CLI_OPT_ERR_LEN, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int
cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int
cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    if (!s)
        return -EINVAL;
    bool neg = s[0] == '-';
    uint64_t mag;
    int r = cli_parse_u64(s + neg, 0, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag);
    if (r < 0)
        return r;
    int64_t v;
    if (neg)
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else
        v = (int64_t)mag;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

/* Returns the shift for a size suffix, or -1 if it is not one. */
static int
suffix_shift(const char *p)
{
    static const char units[] = "KMGT";
    if (*p == '\0' || strcmp(p, "B") == 0)
        return 0;
    char u = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    const char *hit = strchr(units, u);
    if (!hit || u == '\0')
        return -1;
    const char *rest = p + 1;
    if (*rest != '\0' && strcmp(rest, "iB") != 0 && strcmp(rest, "B") != 0)
        return -1;
    return 10 * (int)(hit - units + 1);
}

int
cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    size_t nd = strspn(s, "0123456789");
    int shift = suffix_shift(s + nd);
    if (shift < 0)
        return -EINVAL;
    char digits[32];
    if (nd >= sizeof(digits))
        return -ERANGE;
    memcpy(digits, s, nd);
    digits[nd] = '\0';
    uint64_t v;
    int r = cli_parse_u64(digits, 0, UINT64_MAX, &v);
    if (r < 0)
        return r;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    v <<= shift;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int
cli_parse_double(const char *s, double min, double max, double *ret)
{
    if (!s || !*s)
        return -EINVAL;
    /* strtod accepts spaces, hex floats, "inf" and "nan": allow only a plain
     * decimal form so that what the user typed is what we use. */
    size_t n = strspn(s, "0123456789.-+eE");
    if (s[n] != '\0' || strchr("0123456789.-+", s[0]) == NULL)
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || !isfinite(v))
        return -ERANGE;
    if (!(v >= min && v <= max))
        return -ERANGE;
    *ret = v;
    return 0;
}

static const cli_opt *
find_long(const cli_opt *const tables[2], const char *name, size_t len)
{
    for (int t = 0; t < 2; t++)
        for (const cli_opt *o = tables[t]; o && (o->lname || o->sname); o++)
            if (o->lname && strlen(o->lname) == len && memcmp(o->lname, name, len) == 0)
                return o;
    return NULL;
}

static const cli_opt *
find_short(const cli_opt *const tables[2], char c)
{
    for (int t = 0; t < 2; t++)
        for (const cli_opt *o = tables[t]; o && (o->lname || o->sname); o++)
            if (o->sname && o->sname == c)
                return o;
    return NULL;
}

static void
opt_name(const cli_opt *o, char *buf, size_t cap)
{
    if (o->lname)
        snprintf(buf, cap, "--%s", o->lname);
    else
        snprintf(buf, cap, "-%c", o->sname);
}

static int
choice_error(const cli_opt *o, const char *name, const char *q, char *err)
{
    char list[160] = "";
    size_t off = 0;
    for (size_t i = 0; o->choices[i] && off < sizeof(list); i++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", o->choices[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return fail(err, "invalid value '%s' for %s: use one of %s", q, name, list);
}

/* Stores value v (may be NULL for flags) into o's destination. */
static int
apply(const cli_opt *o, const char *v, char *err)
{
    char name[80], q[4 * QUOTE_MAX + 8];
    opt_name(o, name, sizeof(name));
    int r = 0;
    switch (o->type) {
    case CLI_OPT_FLAG:
        *(bool *)o->dest = true;
        break;
    case CLI_OPT_COUNT:
        if (*(int *)o->dest < 1000)
            (*(int *)o->dest)++;
        break;
    case CLI_OPT_STR:
        *(const char **)o->dest = v;
        break;
    case CLI_OPT_U64:
        r = cli_parse_u64(v, o->min, o->max, (uint64_t *)o->dest);
        break;
    case CLI_OPT_I64:
        r = cli_parse_i64(v, (int64_t)o->min, (int64_t)o->max, (int64_t *)o->dest);
        break;
    case CLI_OPT_SIZE:
        r = cli_parse_size(v, o->min, o->max, (uint64_t *)o->dest);
        break;
    case CLI_OPT_DOUBLE:
        r = cli_parse_double(v, o->dmin, o->dmax, (double *)o->dest);
        break;
    case CLI_OPT_CHOICE:
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (strcmp(o->choices[i], v) == 0) {
                *(int *)o->dest = i;
                goto done;
            }
        }
        return choice_error(o, name, quote(v, q), err);
    default:
        return fail(err, "internal error: bad option type for %s", name);
    }
    if (r == -ERANGE && o->type == CLI_OPT_I64)
        return fail(err, "value '%s' for %s is out of range: use %lld..%lld", quote(v, q), name,
                    (long long)(int64_t)o->min, (long long)(int64_t)o->max);
    if (r == -ERANGE && o->type == CLI_OPT_DOUBLE)
        return fail(err, "value '%s' for %s is out of range: use %g..%g", quote(v, q), name,
                    o->dmin, o->dmax);
    if (r == -ERANGE)
        return fail(err, "value '%s' for %s is out of range: use %llu..%llu", quote(v, q), name,
                    (unsigned long long)o->min, (unsigned long long)o->max);
    if (r < 0 && o->type == CLI_OPT_SIZE)
        return fail(err, "invalid size '%s' for %s: use a number with an optional K, M or G suffix",
                    quote(v, q), name);
    if (r < 0)
        return fail(err, "invalid number '%s' for %s: use decimal digits", quote(v, q), name);
done:
    if (o->seen)
        *o->seen = true;
    return 0;
}

static bool
takes_value(const cli_opt *o)
{
    return o->type != CLI_OPT_FLAG && o->type != CLI_OPT_COUNT;
}

/* Handles "--name", "--name=value" and "--name value" at argv[*i]. */
static int
parse_long(const cli_opt *const tables[2], int argc, char **argv, int *i, char *err)
{
    const char *word = argv[*i] + 2;
    const char *eq = strchr(word, '=');
    size_t len = eq ? (size_t)(eq - word) : strlen(word);
    char q[4 * QUOTE_MAX + 8];
    if (len == 4 && memcmp(word, "help", 4) == 0 && !eq)
        return CLI_OPT_HELP;
    const cli_opt *o = find_long(tables, word, len);
    if (!o)
        return fail(err, "unknown option '%s': see --help", quote(argv[*i], q));
    if (!takes_value(o)) {
        if (eq)
            return fail(err, "option --%s takes no value: remove the '=...'", o->lname);
        return apply(o, NULL, err);
    }
    if (eq)
        return apply(o, eq + 1, err);
    if (*i + 1 >= argc)
        return fail(err, "option --%s needs a value: write --%s VALUE", o->lname, o->lname);
    *i += 1;
    return apply(o, argv[*i], err);
}

/* Handles "-x", "-xVALUE", "-x VALUE" and "-abc" at argv[*i]. */
static int
parse_short(const cli_opt *const tables[2], int argc, char **argv, int *i, char *err)
{
    const char *p = argv[*i] + 1;
    char q[4 * QUOTE_MAX + 8];
    for (; *p; p++) {
        if (*p == 'h')
            return CLI_OPT_HELP;
        const cli_opt *o = find_short(tables, *p);
        if (!o) {
            char bad[2] = { *p, 0 };
            return fail(err, "unknown option '-%s': see --help", quote(bad, q));
        }
        if (!takes_value(o)) {
            int r = apply(o, NULL, err);
            if (r < 0)
                return r;
            continue;
        }
        if (p[1])
            return apply(o, p + 1, err);
        if (*i + 1 >= argc)
            return fail(err, "option -%c needs a value: write -%c VALUE", o->sname, o->sname);
        *i += 1;
        return apply(o, argv[*i], err);
    }
    return 0;
}

int
cli_opt_parse(const cli_opt *const tables[2], int argc, char **argv, int *ret_npos,
              char err[static CLI_OPT_ERR_LEN])
{
    int npos = 0;
    bool only_pos = false;
    err[0] = '\0';
    for (int i = 0; i < argc; i++) {
        char *w = argv[i];
        if (only_pos || w[0] != '-' || w[1] == '\0') {
            argv[npos++] = w; /* npos <= i: never overwrites an unread word */
            continue;
        }
        if (strcmp(w, "--") == 0) {
            only_pos = true;
            continue;
        }
        int r = w[1] == '-' ? parse_long(tables, argc, argv, &i, err)
                            : parse_short(tables, argc, argv, &i, err);
        if (r != 0)
            return r;
    }
    *ret_npos = npos;
    return CLI_OPT_OK;
}

void
cli_opt_help(const cli_opt *opts, cli_opt_emit_fn emit, void *userdata)
{
    for (const cli_opt *o = opts; o && (o->lname || o->sname); o++) {
        char left[96], line[256];
        const char *mv = takes_value(o) ? (o->metavar ? o->metavar : "VALUE") : NULL;
        if (o->sname && o->lname)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->sname, o->lname, mv ? " " : "",
                     mv ? mv : "");
        else if (o->lname)
            snprintf(left, sizeof(left), "    --%s%s%s", o->lname, mv ? " " : "", mv ? mv : "");
        else
            snprintf(left, sizeof(left), "-%c%s%s", o->sname, mv ? " " : "", mv ? mv : "");
        snprintf(line, sizeof(line), "  %-28s %s\n", left, o->help ? o->help : "");
        emit(userdata, line);
    }
}
