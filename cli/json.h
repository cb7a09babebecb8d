/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_JSON_H
#define NVX_CLI_JSON_H
/*
 * A streaming JSON writer for --json output. It tracks nesting and commas so
 * callers just emit values in order:
 *
 *     cli_json j;
 *     cli_json_init(&j, stdout);
 *     cli_json_obj_begin(&j);
 *     cli_json_kv_str(&j, "id", id_hex);     // = cli_json_key + cli_json_str
 *     cli_json_key(&j, "chunks");
 *     cli_json_arr_begin(&j); ... cli_json_arr_end(&j);
 *     cli_json_obj_end(&j);
 *     cli_json_finish(&j);      // newline after the document
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid UTF-8 JSON whatever the input (tensor
 * names and metadata come from untrusted files). Misuse (a value where a key
 * is due, unbalanced ends, nesting deeper than CLI_JSON_MAX_DEPTH) is a
 * programmer error caught by assert.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    CLI_JSON_MAX_DEPTH = 32,
};

typedef struct cli_json {
    FILE *f;
    int depth;
    bool need_comma[CLI_JSON_MAX_DEPTH + 1];
    bool is_obj[CLI_JSON_MAX_DEPTH + 1];
    bool after_key;
} cli_json;

void cli_json_init(cli_json *j, FILE *f);
void cli_json_obj_begin(cli_json *j);
void cli_json_obj_end(cli_json *j);
void cli_json_arr_begin(cli_json *j);
void cli_json_arr_end(cli_json *j);
/* Emits an object key (NUL-terminated, escaped like a string). */
void cli_json_key(cli_json *j, const char *key);
void cli_json_str(cli_json *j, const char *s);
/* Emits s[0..len) as a string (may contain NUL bytes, shown as \u0000). */
void cli_json_strn(cli_json *j, const char *s, size_t len);
void cli_json_u64(cli_json *j, uint64_t v);
void cli_json_i64(cli_json *j, int64_t v);
/* Non-finite values are written as null (JSON has no NaN). */
void cli_json_double(cli_json *j, double v);
void cli_json_bool(cli_json *j, bool v);
void cli_json_null(cli_json *j);
/* An object member: cli_json_key(j, key) then the value. Most --json
 * output is flat objects; these keep each member on one line. */
void cli_json_kv_str(cli_json *j, const char *key, const char *s);
void cli_json_kv_u64(cli_json *j, const char *key, uint64_t v);
void cli_json_kv_i64(cli_json *j, const char *key, int64_t v);
void cli_json_kv_double(cli_json *j, const char *key, double v);
void cli_json_kv_bool(cli_json *j, const char *key, bool v);
/* Ends the document with a newline and flushes. Returns 0 or -EIO when a
 * write failed (e.g. stdout closed or the disk is full). */
int cli_json_finish(cli_json *j);

/* Writes s[0..len) as a quoted JSON string to f (the escaping used above). */
void cli_json_write_string(FILE *f, const char *s, size_t len);

#endif
