/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the CLI's parsers of outside bytes: the option parser
 * (input split at NUL bytes into argv words), the number, size and key id
 * parsers, the escaper and JSON string writer, and the chunk planner over
 * the input taken as a model file (GGUF / llama2.c layouts via runtime/).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/chunkplan.h"
#include "cli/escape.h"
#include "cli/json.h"
#include "cli/opt.h"
#include "libcas/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the checks must stay in release (NDEBUG) builds too. */
#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

enum {
    MAX_WORDS = 64,
};

static void
parse_words(char **words, int n)
{
    bool flag = false;
    int count = 0, choice = -1;
    const char *str = NULL;
    uint64_t u = 0, sz = 0;
    int64_t i = 0;
    double d = 0;
    static const char *const choices[] = { "auto", "cdc", "gguf", NULL };
    const cli_opt opts[] = {
        { .lname = "flag", .sname = 'f', .type = CLI_OPT_FLAG, .dest = &flag },
        { .lname = "verbose", .sname = 'v', .type = CLI_OPT_COUNT, .dest = &count },
        { .lname = "str", .sname = 's', .type = CLI_OPT_STR, .dest = &str },
        { .lname = "u64", .sname = 'n', .type = CLI_OPT_U64, .dest = &u, .min = 1, .max = 1000 },
        { .lname = "i64", .type = CLI_OPT_I64, .dest = &i, .min = (uint64_t)INT64_C(-5), .max = 5 },
        { .lname = "size", .type = CLI_OPT_SIZE, .dest = &sz, .min = 64, .max = 1 << 24 },
        { .lname = "dbl", .sname = 't', .type = CLI_OPT_DOUBLE, .dest = &d, .dmin = 0, .dmax = 2 },
        { .lname = "choice", .type = CLI_OPT_CHOICE, .dest = &choice, .choices = choices },
        CLI_OPT_END,
    };
    const cli_opt *const tables[2] = { opts, NULL };
    char err[CLI_OPT_ERR_LEN];
    int npos = -1;
    int r = cli_opt_parse(tables, n, words, &npos, err);
    if (r == CLI_OPT_OK) {
        CHECK(npos >= 0 && npos <= n);
        CHECK(u == 0 || (u >= 1 && u <= 1000));
        CHECK(i >= -5 && i <= 5);
        CHECK(sz == 0 || (sz >= 64 && sz <= (1 << 24)));
        CHECK(d >= 0 && d <= 2);
    } else if (r < 0) {
        CHECK(strlen(err) > 0 && strchr(err, '\n') == NULL);
    }
}

static void
parse_numbers(const char *w)
{
    uint64_t u;
    int64_t i;
    double d;
    if (cli_parse_u64(w, 0, UINT64_MAX, &u) == 0) {
        char back[32];
        snprintf(back, sizeof(back), "%llu", (unsigned long long)u);
        CHECK(strcmp(back, w) == 0 || w[0] == '0');
    }
    (void)cli_parse_i64(w, INT64_MIN, INT64_MAX, &i);
    (void)cli_parse_size(w, 0, UINT64_MAX, &u);
    (void)cli_parse_double(w, -1e300, 1e300, &d);
    /* Key ids (trust rm, manifest --key): what parses formats back to the
     * same bytes, in at most 16 digits. */
    uint8_t kid[CAS_KEYID_LEN], back[CAS_KEYID_LEN];
    if (cas_keyid_parse(w, kid) == 0) {
        char hex[CAS_KEYID_HEX_SIZE];
        cas_keyid_format(kid, hex);
        CHECK(strlen(hex) >= 1 && strlen(hex) <= 16);
        CHECK(cas_keyid_parse(hex, back) == 0 && memcmp(kid, back, CAS_KEYID_LEN) == 0);
    }
}

static void
escape_and_json(const uint8_t *data, size_t size)
{
    char out[256];
    size_t n = cli_escape((const char *)data, size, out, sizeof(out));
    CHECK(n < sizeof(out) && strlen(out) == n);
    for (size_t k = 0; k < n; k++)
        CHECK((unsigned char)out[k] >= 0x20 && out[k] != 0x7f);
    /* What is left is valid UTF-8 without invisible reordering characters. */
    for (size_t k = 0; k < n;) {
        uint32_t cp;
        size_t len = cli_utf8_next((const unsigned char *)out + k, n - k, &cp);
        CHECK(len > 0);
        CHECK(!(cp >= 0x200b && cp <= 0x200f) && !(cp >= 0x2028 && cp <= 0x202e) &&
              !(cp >= 0x2060 && cp <= 0x2069) && cp != 0xfeff && !(cp >= 0x80 && cp <= 0x9f));
        k += len;
    }
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    if (devnull)
        cli_json_write_string(devnull, (const char *)data, size);
}

static void
plan(const uint8_t *data, size_t size)
{
    for (int m = 0; m < _CLI_CHUNKER_MODE_MAX; m++) {
        cli_chunk_plan p;
        uint64_t need = 0;
        char why[128];
        int r = cli_chunk_plan_from_buf(data, size, size, (cli_chunker_mode)m, &p, &need, why,
                                        sizeof(why));
        if (r == 0) {
            for (size_t k = 1; k < p.n_regions; k++)
                CHECK(p.regions[k].offset > p.regions[k - 1].offset);
            for (size_t k = 0; k < p.n_tensors; k++)
                CHECK(p.tensors[k].offset + p.tensors[k].size <= size);
            cli_chunk_plan_free(&p);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *words[MAX_WORDS + 1];
    int n = 0;
    for (size_t off = 0; off <= size && n < MAX_WORDS;) {
        words[n++] = copy + off;
        off += strlen(copy + off) + 1;
    }
    words[n] = NULL;
    for (int k = 0; k < n; k++)
        parse_numbers(words[k]);
    parse_words(words, n);
    free(copy);
    escape_and_json(data, size);
    plan(data, size);
    return 0;
}
