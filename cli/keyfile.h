/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_KEYFILE_H
#define NVX_CLI_KEYFILE_H
/*
 * Where the signing key lives and how its passphrase is read, shared by
 * `nvx key`, `nvx sign` and `nvx trust` (defined in cli/cmd-key.c).
 *
 * Secret key: --key FILE, else $NVX_KEY, else
 * ${XDG_CONFIG_HOME:-$HOME/.config}/nvx/nvx.key. Public key: beside it, the
 * same name with ".key" replaced by ".pub" (or ".pub" appended).
 * Passphrase: $NVX_PASSPHRASE when set (for scripts and tests), else read
 * from /dev/tty with echo off.
 */
#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"
#include "libcas/sig.h"

/* The --key FILE option of the commands that use the secret key; dest is a
 * const char ** (NULL: the default location). */
#define CLI_KEYFILE_OPT(dest_)                                                   \
    {                                                                            \
        .lname = "key", .type = CLI_OPT_STR, .dest = (dest_), .metavar = "FILE", \
        .help = "secret key file (default $NVX_KEY, else ~/.config/nvx/nvx.key)" \
    }

/* Resolves the secret and public key paths (malloc'd; caller frees) from
 * the --key value (may be NULL). Returns CLI_GO or an exit code after
 * printing an error. */
int cli_key_paths(const char *opt_key, char **ret_sec, char **ret_pub);

/*
 * Reads a passphrase into buf (cap bytes, NUL-terminated; wipe it with
 * sodium_memzero after use): $NVX_PASSPHRASE, else the terminal. With
 * confirm, a terminal is asked twice and the answers must match.
 * Returns CLI_GO or an exit code after printing an error.
 */
int cli_passphrase_read(const char *prompt, bool confirm, char *buf, size_t cap);

/* Loads the secret key at path, asking for the passphrase when it is
 * encrypted. Returns CLI_GO and *ret, or an exit code after printing. */
int cli_seckey_load(const char *path, cas_seckey **ret);

#endif
