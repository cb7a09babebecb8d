/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CLI_H
#define NVX_CLI_CLI_H
/*
 * The nvx command-line framework: command table, global options, exit codes
 * and error reporting. How to add a command `nvx frob`:
 *
 *   1. Write cli/cmd-frob.c defining
 *
 *        static const cli_opt frob_opts[] = {
 *            { .lname = "force", .sname = 'f', .type = CLI_OPT_FLAG, .dest = &force,
 *              .help = "..." }, CLI_OPT_END };   (or build the table in main)
 *        int cli_frob_main(cli_ctx *ctx, int argc, char **argv);
 *        const cli_command cli_cmd_frob = {
 *            .name = "frob", .main = cli_frob_main,
 *            .usage = "frob ID [--force]",
 *            .summary = "One line shown by nvx --help",
 *        };
 *
 *      argv[0] is "frob"; parse the rest with cli_parse(), which also handles
 *      the global options, --help (usage + summary + option lines) and usage
 *      errors:
 *
 *        int npos, r = cli_parse(ctx, &cli_cmd_frob, frob_opts, argc, argv, &npos);
 *        if (r != CLI_GO)
 *            return r;           // exit code (0 after --help, 2 on a usage error)
 *        // argv[0..npos) are now the positionals
 *
 *   2. Add "frob" to the command list in cli/meson.build (cmd-key, cmd-sign,
 *      cmd-trust, cmd-run, cmd-quantize and cmd-eval are picked up
 *      automatically when their file exists; the table is generated).
 *
 * Commands report failure with cli_fail()/cli_fail_errno(), which print one
 * line `nvx: <what happened>: <what to do>` on stderr and return the exit
 * code to return from main. stdout carries results only; with ctx->json the
 * result is one JSON document (cli/json.h).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/opt.h"

/* Exit codes (documented in `nvx --help` and contrib/nvx.1). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,      /* any other failure: I/O error, disk full, ... */
    CLI_EXIT_USAGE = 2,     /* bad command line: unknown option, bad value, ambiguous id */
    CLI_EXIT_NOTFOUND = 3,  /* no such model id, name, file or store */
    CLI_EXIT_CORRUPT = 4,   /* corrupt data, bad format, failed verification or signature */
    CLI_EXIT_UNTRUSTED = 5, /* valid signatures, none of them from a trusted key */
    CLI_EXIT_PARTIAL = 6,   /* sound so far, but a model lacks chunks (not fully fetched) */
    _CLI_EXIT_MAX
};

/* Returned by cli_parse() when the command should go on. */
#define CLI_GO (-1)

typedef struct cas_store cas_store;

typedef struct cli_ctx {
    const char *store_dir; /* resolved: --store, $NVX_STORE or the XDG default */
    bool json;             /* --json: machine-readable stdout */
    bool quiet;            /* -q: only the essential result on stdout, no progress */
    bool stats;            /* add/verify/export --stats: time, CPU, I/O paths on stderr */
    bool progress;         /* stderr is a terminal and !quiet: draw progress bars */
    cas_store *store;      /* opened lazily by cli_store_open(); closed by cli_main */
    char *store_dir_owned; /* storage for the XDG default path */
} cli_ctx;

typedef struct cli_command {
    const char *name;
    int (*main)(cli_ctx *ctx, int argc, char **argv);
    const char *usage;   /* "frob ID [--force]" (without "nvx ") */
    const char *summary; /* one line for `nvx --help` */
} cli_command;

/* The generated command table (cli-commands.c), NULL-terminated. */
extern const cli_command *const cli_commands[];

/*
 * Entry point used by main(): parses the global options (`nvx [--store DIR]
 * [--json] [-q] CMD ...`), runs the command and returns its exit code. Global
 * options are also accepted after the command name.
 */
int cli_main(int argc, char **argv);

/*
 * Parses a command's argv (argv[0] is the command name) against the global
 * options and opts (may be NULL). Returns CLI_GO with the positionals in
 * argv[0..*ret_npos), or the exit code the command should return at once:
 * 0 after printing help, CLI_EXIT_USAGE after printing a usage error.
 */
int cli_parse(cli_ctx *ctx, const cli_command *cmd, const cli_opt *opts, int argc, char **argv,
              int *ret_npos);

/*
 * Checks the number of positionals; prints a usage error and returns
 * CLI_EXIT_USAGE when it is outside [min, max], else CLI_GO.
 */
int cli_want_args(const cli_command *cmd, int npos, int min, int max);

/*
 * Prints "nvx: <formatted message>\n" to stderr — one line: control bytes and
 * invalid UTF-8 in the message are escaped, so untrusted strings (file names,
 * tensor names) can be passed through %s — and returns code. Messages follow
 * "<what happened>: <what to do>".
 */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int
cli_fail(int code, const char *fmt, ...);

/*
 * Like cli_fail() with the exit code derived from the negative errno r
 * (cli_exit_code()) and strerror(-r) inserted after the message:
 * "nvx: <message>: <strerror>: <hint>". hint NULL means a general hint for
 * the error when there is one ("check the path", "free some space ...").
 */
int cli_fail_errno(int r, const char *hint, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Maps a negative errno to an exit code: -ENOENT → NOTFOUND, -EBADMSG →
 * CORRUPT, -EINVAL → USAGE, others → FAIL. */
int cli_exit_code(int r);

/* Prints a warning line "nvx: warning: ..." on stderr (escaped like cli_fail). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void
cli_warn(const char *fmt, ...);

#endif
