/* SPDX-License-Identifier: MIT */
/*
 * nvx import hf: the Hugging Face hub cache (layout and names:
 * cli/import-parse.h). For each models--ORG--NAME repo, or the one the user
 * names, the snapshot that refs/main (or --revision) points at is searched
 * for .gguf files; each is a symlink into the repo's blobs/, which must
 * resolve inside that directory, and a blob named by a 64-hex etag is
 * checked against it as its SHA-256.
 */
#define _XOPEN_SOURCE 700 /* realpath() */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd-import.h"
#include "cli/import-parse.h"
#include "libcas/store.h"

enum {
    HF_QUANT_MAX = 32, /* bytes of a quantization label */
};

static const char *const hf_envs[][2] = { { "HF_HUB_CACHE", "" },
                                          { "HUGGINGFACE_HUB_CACHE", "" },
                                          { "HF_HOME", "/hub" },
                                          { "XDG_CACHE_HOME", "/huggingface/hub" },
                                          { NULL, NULL } };

typedef struct hf_repo {
    char org[CLI_IMPORT_PART_MAX + 1], name[CLI_IMPORT_PART_MAX + 1];
    char path[PATH_MAX]; /* DIR/models--ORG--NAME */
    char snap[PATH_MAX]; /* its snapshots/COMMIT */
    char *blobs;         /* realpath of its blobs/, or NULL */
    char hint[512];      /* how to download it again */
    char **files;        /* .gguf paths relative to snap, sorted */
    size_t n_files;
} hf_repo;

static bool
is_gguf(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".gguf") == 0;
}

/* Appends the .gguf files under snap/rel (rel "" at the top) to r->files,
 * searching real subdirectories (not symlinked ones) CLI_IMPORT_DEPTH_MAX
 * deep; at most CLI_IMPORT_DIR_MAX files. */
static int
collect(hf_repo *r, const char *rel, int depth)
{
    char dir[PATH_MAX];
    if (!(*rel ? cli_import_join(dir, r->snap, rel) : snprintf(dir, sizeof(dir), "%s", r->snap)))
        return -ENAMETOOLONG;
    cli_import_entries e;
    int err = cli_import_list_dir(dir, &e);
    for (size_t i = 0; err == 0 && i < e.n; i++) {
        char sub[PATH_MAX], full[PATH_MAX];
        if (!(*rel ? cli_import_join(sub, rel, e.names[i])
                   : snprintf(sub, sizeof(sub), "%s", e.names[i])) ||
            !cli_import_join(full, r->snap, sub)) {
            err = -ENAMETOOLONG;
            break;
        }
        if (cli_import_is_dir(full)) {
            if (depth < CLI_IMPORT_DEPTH_MAX)
                err = collect(r, sub, depth + 1);
            continue;
        }
        if (!is_gguf(e.names[i]))
            continue;
        if (r->n_files == CLI_IMPORT_DIR_MAX) {
            err = -EMSGSIZE;
            break;
        }
        char **nf = realloc(r->files, (r->n_files + 1) * sizeof(*nf));
        if (!nf || !(nf[r->n_files] = strdup(sub))) {
            if (nf)
                r->files = nf;
            err = -ENOMEM;
            break;
        }
        r->files = nf;
        r->n_files++;
    }
    cli_import_entries_free(&e);
    return err;
}

static int
by_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
repo_free(hf_repo *r)
{
    for (size_t i = 0; i < r->n_files; i++)
        free(r->files[i]);
    free(r->files);
    free(r->blobs);
}

/* The snapshot to import: --revision as a commit hash, else the commit its
 * refs/ file (main by default) names. */
static int
find_snapshot(cli_import *im, hf_repo *r, const char *label, bool named)
{
    const char *rev = im->revision ? im->revision : "main";
    char commit[65], buf[CLI_HF_REF_MAX + 1], refs[PATH_MAX];
    cli_import_item it = { .name = label, .path = r->path, .hint = r->hint };
    size_t len = strlen(rev);
    if (cli_hf_ref_parse(rev, len, commit) == 0) {
        /* a commit hash given */
    } else if (!cli_import_join(refs, r->path, "refs") || !cli_import_join(refs, refs, rev)) {
        return cli_import_fail(im, &it,
                               cli_fail(CLI_EXIT_FAIL, "cannot import %s: path too long", label));
    } else { /* a branch name, checked by cli_import_hf() */
        int e = cli_import_read_small(AT_FDCWD, refs, CLI_HF_REF_MAX, buf, &len);
        if (e == 0 && cli_hf_ref_parse(buf, len, commit) < 0)
            e = -EBADMSG;
        /* A repo fetched at another revision only: not a failure of a
         * whole-cache import, but say why it is left out. */
        if (e == -ENOENT && !named) {
            cli_warn("skipping %s: it has no revision %s in the cache: give --revision", label,
                     rev);
            return CLI_EXIT_OK;
        }
        if (e < 0)
            return cli_import_fail(
                im, &it,
                cli_fail_errno(e, r->hint, "cannot import %s: revision %s (%s)", label, rev, refs));
    }
    char snaps[PATH_MAX];
    if (!cli_import_join(snaps, r->path, "snapshots") || !cli_import_join(r->snap, snaps, commit) ||
        !cli_import_is_dir(r->snap))
        return cli_import_fail(im, &it,
                               cli_fail(CLI_EXIT_NOTFOUND,
                                        "cannot import %s: commit %.12s is not in the cache: %s",
                                        label, commit, r->hint));
    return CLI_GO;
}

/* The blob a snapshot file stands for: its symlink must resolve inside the
 * repo's blobs/ (the cache writes ../../blobs/ETAG); a plain file (a cache
 * made without symlinks) is itself. Writes the file to read and, when the
 * blob is named by an LFS etag, its SHA-256. Returns CLI_GO or the exit
 * code of a failure it recorded. */
static int
resolve_blob(cli_import *im, const hf_repo *r, const cli_import_item *it, const char *full,
             char ret[static PATH_MAX], uint8_t sha[static CLI_IMPORT_SHA256_LEN], bool *has_sha)
{
    struct stat st;
    *has_sha = false;
    if (lstat(full, &st) == 0 && !S_ISLNK(st.st_mode)) {
        snprintf(ret, PATH_MAX, "%s", full);
        return CLI_GO;
    }
    char *real = realpath(full, NULL);
    if (!real) {
        int e = -errno;
        return cli_import_fail(im, it,
                               cli_fail_errno(e, r->hint,
                                              "cannot import %s: %s points to a missing blob",
                                              it->name, full));
    }
    size_t bl = r->blobs ? strlen(r->blobs) : 0;
    const char *base = real + bl + 1;
    if (!r->blobs || strncmp(real, r->blobs, bl) != 0 || real[bl] != '/' || strchr(base, '/')) {
        int code = cli_fail(CLI_EXIT_CORRUPT,
                            "cannot import %s: %s points outside %s/blobs: refused (the cache "
                            "only links into its blobs)",
                            it->name, full, r->path);
        free(real);
        return cli_import_fail(im, it, code);
    }
    *has_sha = cli_hf_blob_sha256(base, sha);
    snprintf(ret, PATH_MAX, "%s", real);
    free(real);
    return CLI_GO;
}

static void
import_files(cli_import *im, hf_repo *r, const char *label)
{
    char(*quant)[HF_QUANT_MAX] = calloc(r->n_files ? r->n_files : 1, sizeof(*quant));
    for (size_t i = 0; quant && i < r->n_files; i++)
        cli_gguf_quant_label(r->files[i], quant[i], sizeof(quant[i]));
    for (size_t i = 0; i < r->n_files; i++) {
        char name[PATH_MAX], alias[PATH_MAX], full[PATH_MAX], blob[PATH_MAX];
        uint8_t sha[CLI_IMPORT_SHA256_LEN];
        bool has_sha, unique = quant && quant[i][0];
        for (size_t k = 0; unique && k < r->n_files; k++)
            unique = k == i || strcmp(quant[k], quant[i]) != 0;
        snprintf(name, sizeof(name), "%s%s/%.*s", CLI_HF_PREFIX, label, PATH_MAX / 2, r->files[i]);
        snprintf(alias, sizeof(alias), "%s%s:%s", CLI_HF_PREFIX, label, quant ? quant[i] : "");
        cli_import_item it = {
            .name = name, .alias = unique ? alias : NULL, .hint = r->hint, .size = UINT64_MAX
        };
        if (!cli_import_join(full, r->snap, r->files[i])) {
            cli_import_fail(im, &it,
                            cli_fail(CLI_EXIT_FAIL, "cannot import %s: path too long", name));
            continue;
        }
        it.path = full;
        if (resolve_blob(im, r, &it, full, blob, sha, &has_sha) != CLI_GO)
            continue;
        it.path = blob;
        it.sha256 = has_sha ? sha : NULL;
        cli_import_file(im, &it);
    }
    free(quant);
}

static void
import_repo(cli_import *im, const char *dirname, bool named)
{
    hf_repo r = { 0 };
    char label[2 * CLI_IMPORT_PART_MAX + 2], blobs[PATH_MAX];
    cli_import_item it = { .name = dirname, .path = dirname, .hint = "" };
    if (cli_hf_repo_parse(dirname, r.org, r.name) < 0 ||
        !cli_import_join(r.path, im->dir, dirname)) {
        cli_import_fail(im, &it,
                        cli_fail(CLI_EXIT_CORRUPT,
                                 "skipping %s/%s: not a repo name the cache writes", im->dir,
                                 dirname));
        return;
    }
    snprintf(label, sizeof(label), "%s%s%s", r.org, r.org[0] ? "/" : "", r.name);
    snprintf(r.hint, sizeof(r.hint), "run huggingface-cli download %s", label);
    it.name = label;
    it.path = r.path;
    if (find_snapshot(im, &r, label, named) != CLI_GO)
        goto out;
    if (cli_import_join(blobs, r.path, "blobs"))
        r.blobs = realpath(blobs, NULL);
    int e = collect(&r, "", 0);
    if (e == 0 && r.n_files > 1)
        qsort(r.files, r.n_files, sizeof(*r.files), by_path);
    if (e < 0) {
        cli_import_fail(im, &it, cli_fail_errno(e, NULL, "cannot list %s", r.snap));
        goto out;
    }
    if (r.n_files == 0 && named)
        cli_import_fail(im, &it,
                        cli_fail(CLI_EXIT_NOTFOUND,
                                 "no .gguf file in %s (%s): nvx imports GGUF models; convert it "
                                 "or pick a GGUF repo",
                                 label, r.snap));
    import_files(im, &r, label);
out:
    repo_free(&r);
}

int
cli_import_hf(cli_import *im, const char *what)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int r = cli_import_source_dir(im->from, hf_envs, ".cache/huggingface/hub", dir);
    if (r != CLI_GO)
        return r;
    if (!cli_import_is_dir(dir))
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "no Hugging Face cache at %s: give --from DIR or set HF_HUB_CACHE", dir);
    char org[CLI_IMPORT_PART_MAX + 1], name[CLI_IMPORT_PART_MAX + 1], dirname[PATH_MAX];
    const char *rev = im->revision;
    if (rev && !cli_import_part_ok(rev, strlen(rev), false))
        return cli_fail(CLI_EXIT_USAGE,
                        "invalid revision '%s': give a branch name or a commit hash", rev);
    if (what) {
        if (cli_hf_repo_arg(what, org, name) < 0)
            return cli_fail(CLI_EXIT_USAGE,
                            "invalid repo '%s': use ORG/NAME with letters, digits, '.', '_' and "
                            "'-'",
                            what);
        snprintf(dirname, sizeof(dirname), "models--%s%s%s", org, org[0] ? "--" : "", name);
        if (!cli_import_join(path, dir, dirname) || !cli_import_is_dir(path))
            return cli_fail(CLI_EXIT_NOTFOUND,
                            "no repo %s in the cache %s: run huggingface-cli download %s", what,
                            dir, what);
    }
    cli_import_begin(im, dir);
    if (what) {
        import_repo(im, dirname, true);
        return CLI_GO;
    }
    cli_import_entries e;
    r = cli_import_list_dir(dir, &e);
    cli_import_item it = { .name = dir, .path = dir, .hint = "" };
    if (r < 0) {
        cli_import_fail(im, &it, cli_fail_errno(r, NULL, "cannot list %s", dir));
        return CLI_GO;
    }
    for (size_t i = 0; i < e.n; i++) /* datasets--, spaces--: not models */
        if (strncmp(e.names[i], "models--", 8) == 0)
            import_repo(im, e.names[i], false);
    cli_import_entries_free(&e);
    return CLI_GO;
}
