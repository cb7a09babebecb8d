/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_OPT_H
#define NVX_CLI_OPT_H
/*
 * A small strict command-line option parser. Command lines are outside bytes:
 * every value is checked (type, range, overflow) and every error is returned
 * as a one-line message in a caller buffer; nothing here prints or exits, so
 * the parser is fuzzed directly (tests/fuzz/fuzz-cliargs.c).
 *
 * Accepted forms:
 *   --name            flag (CLI_OPT_FLAG; "--name=x" is an error)
 *   --name=value      valued option
 *   --name value      valued option (the next word is taken even if it
 *                     starts with '-', so "--seed -1" reaches the range check)
 *   -x, -x value, -xVALUE
 *   -abc              a cluster of short flags
 *   --                everything after is positional
 *   -                 a lone dash is positional (stdin/stdout by convention)
 * Options and positionals may be interleaved; positionals keep their order.
 * A repeated option keeps its last value (as getopt users expect).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CLI_OPT_ERR_LEN = 256, /* size of the error buffer callers pass */
};

typedef enum cli_opt_type {
    CLI_OPT_FLAG,   /* bool *: set to true */
    CLI_OPT_STR,    /* const char **: borrowed pointer into argv */
    CLI_OPT_U64,    /* uint64_t *: decimal, checked against [min, max] */
    CLI_OPT_I64,    /* int64_t *: decimal with optional '-', in [(int64_t)min, (int64_t)max] */
    CLI_OPT_SIZE,   /* uint64_t *: bytes with optional K/M/G/T suffix (powers of 1024) */
    CLI_OPT_DOUBLE, /* double *: finite decimal, in [dmin, dmax] */
    CLI_OPT_CHOICE, /* int *: index of the value in the NULL-terminated choices[] */
    CLI_OPT_COUNT,  /* int *: incremented on every use (e.g. -v -v) */
    _CLI_OPT_TYPE_MAX
} cli_opt_type;

/*
 * One option. A table of these ends with an entry whose lname and sname are
 * both zero (CLI_OPT_END). dest must point at the type documented above.
 * A set *seen (optional) becomes true when the option is given.
 */
typedef struct cli_opt {
    const char *lname; /* long name without "--", or NULL */
    char sname;        /* short name, or 0 */
    cli_opt_type type;
    void *dest;
    const char *metavar;        /* shown in help, e.g. "DIR"; NULL for flags */
    const char *help;           /* one line for `nvx CMD --help` */
    uint64_t min, max;          /* CLI_OPT_U64/I64/SIZE bounds (I64: cast) */
    double dmin, dmax;          /* CLI_OPT_DOUBLE bounds */
    const char *const *choices; /* CLI_OPT_CHOICE, NULL-terminated */
    bool *seen;
} cli_opt;

#define CLI_OPT_END                                                     \
    {                                                                   \
        NULL, 0, CLI_OPT_FLAG, NULL, NULL, NULL, 0, 0, 0, 0, NULL, NULL \
    }

/* Result of cli_opt_parse() besides errors. */
enum {
    CLI_OPT_OK = 0,   /* parsed; positionals compacted to the front of argv */
    CLI_OPT_HELP = 1, /* -h or --help was given (nothing else is guaranteed parsed) */
};

/*
 * Parses argv[0..argc) (argv[0] is NOT skipped: pass the words after the
 * command name) against up to two tables (tables[i] may be NULL; the first
 * match wins, so a command table cannot shadow a global option by accident —
 * pass the global table first). -h/--help are built in.
 *
 * Positionals are moved, in order, to argv[0..*ret_npos) (the argv array is
 * permuted; the strings are not copied). Returns CLI_OPT_OK or CLI_OPT_HELP,
 * or -EINVAL with a one-line message (no "nvx:" prefix, no newline) in
 * err[CLI_OPT_ERR_LEN]. dest values of options seen before an error may have
 * been written.
 */
int cli_opt_parse(const cli_opt *const tables[2], int argc, char **argv, int *ret_npos,
                  char err[static CLI_OPT_ERR_LEN]);

/*
 * Parses an unsigned decimal integer (digits only, no sign, no spaces, no
 * leading "0x") within [min, max]. Returns 0 or -EINVAL (syntax) / -ERANGE.
 */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Signed variant: an optional '-' then digits, within [min, max]. */
int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);

/*
 * Parses a byte size: digits then an optional suffix K, M, G, T (also KiB,
 * MiB, GiB, TiB, and lowercase k/m/g/t; all powers of 1024) or B. Overflow
 * and values outside [min, max] fail with -ERANGE, syntax with -EINVAL.
 */
int cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Parses a finite decimal floating-point number within [min, max]. */
int cli_parse_double(const char *s, double min, double max, double *ret);

/*
 * Writes the option table's help lines ("  -s, --long=METAVAR  help\n") into
 * a FILE-like sink through the callback (so this file stays I/O free).
 */
typedef void (*cli_opt_emit_fn)(void *userdata, const char *line);
void cli_opt_help(const cli_opt *opts, cli_opt_emit_fn emit, void *userdata);

#endif
