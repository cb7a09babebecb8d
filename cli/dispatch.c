/* SPDX-License-Identifier: MIT */
/*
 * Command dispatch, global options and help texts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/store.h"

#ifndef NVX_VERSION
#define NVX_VERSION "unknown"
#endif

/* Fills out[] with the global option table bound to ctx. */
static void
global_opts(cli_ctx *ctx, cli_opt out[4])
{
    memset(out, 0, 4 * sizeof(*out));
    out[0] = (cli_opt){ .lname = "store",
                        .type = CLI_OPT_STR,
                        .dest = &ctx->store_dir,
                        .metavar = "DIR",
                        .help = "store directory (default: $NVX_STORE, "
                                "else $XDG_DATA_HOME/nvx)" };
    out[1] = (cli_opt){ .lname = "json",
                        .type = CLI_OPT_FLAG,
                        .dest = &ctx->json,
                        .help = "machine-readable output on stdout" };
    out[2] = (cli_opt){ .lname = "quiet",
                        .sname = 'q',
                        .type = CLI_OPT_FLAG,
                        .dest = &ctx->quiet,
                        .help = "print only the essential result, no progress" };
}

static void
emit_line(void *userdata, const char *line)
{
    fputs(line, (FILE *)userdata);
}

static const char exit_codes_text[] =
    "exit codes:\n"
    "  0  success\n"
    "  1  failure (I/O error, disk full, ...)\n"
    "  2  usage error (bad option or value, ambiguous id prefix)\n"
    "  3  not found (model id or name, file, store)\n"
    "  4  corrupt or malformed data, verification failed\n"
    "  5  signatures valid but none from a trusted key\n"
    "  6  partial model: the chunks present verify, others are missing\n";

static void
print_main_help(FILE *f)
{
    fputs("usage: nvx [--store DIR] [--json] [-q] COMMAND [ARGS...]\n\n"
          "nvx stores model weights by content, verifies them, and runs them.\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; cli_commands[i]; i++)
        fprintf(f, "  %-10s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
    fputs("\nglobal options (before or after COMMAND):\n", f);
    cli_ctx dummy = { 0 };
    cli_opt g[4];
    global_opts(&dummy, g);
    cli_opt_help(g, emit_line, f);
    fputs("  -h, --help                   show help (nvx COMMAND --help for a command)\n"
          "      --version                show the version\n\n",
          f);
    fputs(exit_codes_text, f);
    fputs("\nenvironment:\n"
          "  NVX_STORE       store directory when --store is not given\n"
          "  XDG_DATA_HOME   default store is $XDG_DATA_HOME/nvx (~/.local/share/nvx)\n"
          "  NVX_KEY         secret key file (default $XDG_CONFIG_HOME/nvx/nvx.key,\n"
          "                  ~/.config/nvx/nvx.key; the public key is nvx.pub beside it)\n"
          "  NVX_PASSPHRASE  passphrase of the secret key (else asked on the terminal)\n"
          "  NVX_PROGRESS_DELAY  seconds before a progress bar appears (default 0.1)\n"
          "\nModel ids are 64 hex characters; any unique prefix of 8 or more, or a local\n"
          "name given with `nvx add --name`, is accepted in their place.\n",
          f);
}

static void
print_cmd_help(const cli_command *cmd, const cli_opt *opts)
{
    printf("usage: nvx %s\n\n%s\n", cmd->usage, cmd->summary);
    if (opts && (opts->lname || opts->sname)) {
        fputs("\noptions:\n", stdout);
        cli_opt_help(opts, emit_line, stdout);
    }
    fputs("\nglobal options:\n", stdout);
    cli_ctx dummy = { 0 };
    cli_opt g[4];
    global_opts(&dummy, g);
    cli_opt_help(g, emit_line, stdout);
    fputs("\n", stdout);
    fputs(exit_codes_text, stdout);
}

/* Picks the store directory: --store, $NVX_STORE, $XDG_DATA_HOME/nvx,
 * $HOME/.local/share/nvx. Leaves it NULL when none can be found. */
static void
resolve_store_dir(cli_ctx *ctx)
{
    if (ctx->store_dir)
        return;
    const char *env = getenv("NVX_STORE");
    if (env && *env) {
        ctx->store_dir = env;
        return;
    }
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    const char *base = NULL, *tail = NULL;
    if (xdg && xdg[0] == '/')
        base = xdg, tail = "/nvx";
    else if (home && *home)
        base = home, tail = "/.local/share/nvx";
    if (!base)
        return;
    size_t n = strlen(base) + strlen(tail) + 1;
    ctx->store_dir_owned = malloc(n);
    if (!ctx->store_dir_owned)
        return;
    snprintf(ctx->store_dir_owned, n, "%s%s", base, tail);
    ctx->store_dir = ctx->store_dir_owned;
}

int
cli_parse(cli_ctx *ctx, const cli_command *cmd, const cli_opt *opts, int argc, char **argv,
          int *ret_npos)
{
    cli_opt g[4];
    global_opts(ctx, g);
    const cli_opt *const tables[2] = { g, opts };
    char err[CLI_OPT_ERR_LEN];
    int npos = 0;
    int r = argc > 1 ? cli_opt_parse(tables, argc - 1, argv + 1, &npos, err) : CLI_OPT_OK;
    if (r == CLI_OPT_HELP) {
        print_cmd_help(cmd, opts);
        return CLI_EXIT_OK;
    }
    if (r < 0)
        return cli_fail(CLI_EXIT_USAGE, "%s %s", cmd->name, err);
    /* The positionals were compacted to argv[1..]; move them to argv[0..]. */
    memmove(argv, argv + 1, (size_t)npos * sizeof(*argv));
    argv[npos] = NULL;
    ctx->progress = !ctx->quiet && isatty(STDERR_FILENO);
    resolve_store_dir(ctx);
    *ret_npos = npos;
    return CLI_GO;
}

int
cli_want_args(const cli_command *cmd, int npos, int min, int max)
{
    if (npos < min)
        return cli_fail(CLI_EXIT_USAGE, "%s: missing argument: usage: nvx %s", cmd->name,
                        cmd->usage);
    if (npos > max)
        return cli_fail(CLI_EXIT_USAGE, "%s: too many arguments: usage: nvx %s", cmd->name,
                        cmd->usage);
    return CLI_GO;
}

static const cli_command *
find_command(const char *name)
{
    for (size_t i = 0; cli_commands[i]; i++)
        if (strcmp(cli_commands[i]->name, name) == 0)
            return cli_commands[i];
    return NULL;
}

/* Index of the command word: the first word that is neither a global option
 * nor the value of one. */
static int
command_index(int argc, char **argv)
{
    int i = 1;
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        if (strcmp(argv[i], "--") == 0)
            return i + 1;
        if (strcmp(argv[i], "--store") == 0)
            i++;
        i++;
    }
    return i;
}

int
cli_main(int argc, char **argv)
{
    cli_ctx ctx = { 0 };
    int ci = command_index(argc, argv);
    for (int i = 1; i < ci && i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("nvx %s\n", NVX_VERSION);
            return CLI_EXIT_OK;
        }
    }
    cli_opt g[4];
    global_opts(&ctx, g);
    const cli_opt *const tables[2] = { g, NULL };
    char err[CLI_OPT_ERR_LEN];
    int npos = 0;
    int lead = (ci < argc ? ci : argc) - 1;
    int r = lead > 0 ? cli_opt_parse(tables, lead, argv + 1, &npos, err) : CLI_OPT_OK;
    if (r == CLI_OPT_HELP) {
        print_main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (r < 0)
        return cli_fail(CLI_EXIT_USAGE, "%s", err);
    if (ci >= argc)
        return cli_fail(CLI_EXIT_USAGE, "no command given: run nvx --help for the list");
    const cli_command *cmd = find_command(argv[ci]);
    if (!cmd)
        return cli_fail(CLI_EXIT_USAGE, "unknown command '%s': run nvx --help for the list",
                        argv[ci]);
    r = cmd->main(&ctx, argc - ci, argv + ci);
    cli_store_close(&ctx);
    free(ctx.store_dir_owned);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (r == CLI_EXIT_OK)
            r = cli_fail(CLI_EXIT_FAIL, "could not write the output: check the disk or pipe");
    }
    return r;
}
