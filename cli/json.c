/* SPDX-License-Identifier: MIT */
#include "cli/json.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "cli/escape.h"

void
cli_json_init(cli_json *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
}

void
cli_json_write_string(FILE *f, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            i++;
        } else if (c < 0x20) {
            static const char short_esc[] = "btn\0fr"; /* \b=8 .. \r=13 */
            if (c >= 8 && c <= 13 && c != 11)
                fprintf(f, "\\%c", short_esc[c - 8]);
            else
                fprintf(f, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc(c, f);
            i++;
        } else {
            uint32_t cp;
            size_t n = cli_utf8_next(u + i, len - i, &cp);
            if (n == 0) {
                fputs("\xef\xbf\xbd", f); /* U+FFFD */
                i++;
            } else {
                fwrite(u + i, 1, n, f);
                i += n;
            }
        }
    }
    fputc('"', f);
}

/* Writes the separator due before a value and updates the state. */
static void
pre_value(cli_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    assert(j->depth == 0 || !j->is_obj[j->depth]);
    if (j->need_comma[j->depth])
        fputc(',', j->f);
    j->need_comma[j->depth] = true;
}

static void
json_open(cli_json *j, bool obj)
{
    pre_value(j);
    assert(j->depth < CLI_JSON_MAX_DEPTH);
    j->depth++;
    j->need_comma[j->depth] = false;
    j->is_obj[j->depth] = obj;
    fputc(obj ? '{' : '[', j->f);
}

static void
json_close(cli_json *j, bool obj)
{
    assert(j->depth > 0 && j->is_obj[j->depth] == obj && !j->after_key);
    j->depth--;
    fputc(obj ? '}' : ']', j->f);
}

void
cli_json_obj_begin(cli_json *j)
{
    json_open(j, true);
}

void
cli_json_obj_end(cli_json *j)
{
    json_close(j, true);
}

void
cli_json_arr_begin(cli_json *j)
{
    json_open(j, false);
}

void
cli_json_arr_end(cli_json *j)
{
    json_close(j, false);
}

void
cli_json_key(cli_json *j, const char *key)
{
    assert(j->depth > 0 && j->is_obj[j->depth] && !j->after_key);
    if (j->need_comma[j->depth])
        fputc(',', j->f);
    j->need_comma[j->depth] = true;
    cli_json_write_string(j->f, key, strlen(key));
    fputc(':', j->f);
    j->after_key = true;
}

void
cli_json_strn(cli_json *j, const char *s, size_t len)
{
    pre_value(j);
    cli_json_write_string(j->f, s, len);
}

void
cli_json_str(cli_json *j, const char *s)
{
    if (!s) {
        cli_json_null(j);
        return;
    }
    cli_json_strn(j, s, strlen(s));
}

void
cli_json_u64(cli_json *j, uint64_t v)
{
    pre_value(j);
    fprintf(j->f, "%" PRIu64, v);
}

void
cli_json_i64(cli_json *j, int64_t v)
{
    pre_value(j);
    fprintf(j->f, "%" PRId64, v);
}

void
cli_json_double(cli_json *j, double v)
{
    pre_value(j);
    if (isfinite(v))
        fprintf(j->f, "%.10g", v);
    else
        fputs("null", j->f);
}

void
cli_json_bool(cli_json *j, bool v)
{
    pre_value(j);
    fputs(v ? "true" : "false", j->f);
}

void
cli_json_null(cli_json *j)
{
    pre_value(j);
    fputs("null", j->f);
}

void
cli_json_kv_str(cli_json *j, const char *key, const char *s)
{
    cli_json_key(j, key);
    cli_json_str(j, s);
}

void
cli_json_kv_u64(cli_json *j, const char *key, uint64_t v)
{
    cli_json_key(j, key);
    cli_json_u64(j, v);
}

void
cli_json_kv_i64(cli_json *j, const char *key, int64_t v)
{
    cli_json_key(j, key);
    cli_json_i64(j, v);
}

void
cli_json_kv_double(cli_json *j, const char *key, double v)
{
    cli_json_key(j, key);
    cli_json_double(j, v);
}

void
cli_json_kv_bool(cli_json *j, const char *key, bool v)
{
    cli_json_key(j, key);
    cli_json_bool(j, v);
}

int
cli_json_finish(cli_json *j)
{
    assert(j->depth == 0 && !j->after_key);
    fputc('\n', j->f);
    if (fflush(j->f) != 0 || ferror(j->f))
        return -EIO;
    return 0;
}
