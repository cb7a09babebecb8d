/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CMD_IMPORT_H
#define NVX_CLI_CMD_IMPORT_H
/*
 * nvx import: the command and what its two sources share (cmd-import.c);
 * the sources walk their own layouts (import-ollama.c, import-hf.c) and
 * hand each model file to cli_import_file().
 *
 * Like cli_parse(), functions returning int return CLI_GO to go on, or
 * print one error line and return an exit code; cli_import_file() returns
 * 0 or the exit code of a failure it recorded (the import goes on).
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"
#include "cli/json.h"

enum {
    CLI_IMPORT_DIR_MAX = 4096, /* entries of one directory an import lists */
    CLI_IMPORT_DEPTH_MAX = 4,  /* subdirectories of a snapshot searched for files */
};

typedef struct cli_import {
    cli_ctx *ctx;
    const char *source; /* "ollama" or "hf" */
    const char *from;   /* --from DIR or NULL */
    const char *revision;
    bool pin, dry_run;
    char dir[PATH_MAX]; /* the source directory in use */
    unsigned n_ok, n_new, n_failed;
    int first_fail; /* exit code of the first failure, 0: none */
    cli_json j;     /* --json: the document, its "models" array open */
} cli_import;

/* One model file to import. Strings are borrowed for the call. */
typedef struct cli_import_item {
    const char *name;  /* local name */
    const char *alias; /* a second local name, or NULL */
    const char *path;  /* the file */
    const char *hint;  /* what to do when the file is missing or damaged */
    const uint8_t *sha256;
    uint64_t size; /* expected, UINT64_MAX: not known */
    const char *const *left_out;
    size_t n_left_out; /* parts of the model not imported ("template") */
} cli_import_item;

/* Starts the output once the source directory is known (dir is copied). */
void cli_import_begin(cli_import *im, const char *dir);

/* Checks the file (present, regular, of the expected size), then adds it
 * under its names with its SHA-256 checked (or, dry run, reports what it
 * would do) and reports it. */
int cli_import_file(cli_import *im, const cli_import_item *it);

/* Records a failure the caller already printed (code: its exit code) and
 * returns code. */
int cli_import_fail(cli_import *im, const cli_import_item *it, int code);

/* Reads a small regular file (at most max bytes; buf holds max + 1) at
 * path relative to dirfd (AT_FDCWD, or absolute path). Returns 0, -EMSGSIZE
 * (larger), -EBADMSG (not a regular file), -errno. */
int cli_import_read_small(int dirfd, const char *path, size_t max, char *buf, size_t *ret_len);

/* The entries of directory path not starting with '.', sorted, at most
 * CLI_IMPORT_DIR_MAX (else -EMSGSIZE). Returns 0 or a negative errno. */
typedef struct cli_import_entries {
    char **names;
    size_t n;
} cli_import_entries;
int cli_import_list_dir(const char *path, cli_import_entries *ret);
void cli_import_entries_free(cli_import_entries *e);

/* Writes "a/b" to ret (which may be a). Returns false, leaving ret
 * unchanged, when it does not fit in PATH_MAX. */
bool cli_import_join(char ret[static PATH_MAX], const char *a, const char *b);

/* True when path is a directory (not a symlink to one). */
bool cli_import_is_dir(const char *path);

/* Resolves the source directory into ret: from when not NULL, else the
 * first set variable envs[i][0] followed by envs[i][1] ({NULL, NULL} ends
 * the list), else $HOME/home_rel. */
int cli_import_source_dir(const char *from, const char *const envs[][2], const char *home_rel,
                          char ret[static PATH_MAX]);

/* The sources: what is NULL (everything) or the model the user named. */
int cli_import_ollama(cli_import *im, const char *what);
int cli_import_hf(cli_import *im, const char *what);

#endif
