/* SPDX-License-Identifier: MIT */
/*
 * nvx import ollama: Ollama's store (layout: cli/import-parse.h). Every
 * manifest under manifests/REGISTRY/NAMESPACE/MODEL/TAG, or the one the
 * user names, gives the model layer's digest and size; the blob
 * blobs/sha256-HEX is imported with that digest checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd-import.h"
#include "cli/import-parse.h"
#include "libcas/store.h"

enum {
    OLLAMA_MODELS_MAX = 4096, /* manifests one import reads */
};

static const char *const ollama_envs[][2] = { { "OLLAMA_MODELS", "" }, { NULL, NULL } };

/* The parts of a ref in manifest path order. */
static char *
ref_part(cli_ollama_ref *ref, int depth)
{
    char *parts[] = { ref->registry, ref->ns, ref->model, ref->tag };
    return parts[depth];
}

static int
manifest_path(const cli_import *im, const cli_ollama_ref *ref, char ret[static PATH_MAX])
{
    int n = snprintf(ret, PATH_MAX, "%s/manifests/%s/%s/%s/%s", im->dir, ref->registry, ref->ns,
                     ref->model, ref->tag);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int
import_ref(cli_import *im, const cli_ollama_ref *ref, char *buf)
{
    char name[CAS_STORE_NAME_MAX + 1], mpath[PATH_MAX], blob[PATH_MAX], hint[512], why[256];
    cli_import_item it = { .name = name, .path = mpath, .size = UINT64_MAX, .hint = hint };
    if (cli_ollama_ref_name(ref, name, sizeof(name)) < 0)
        snprintf(name, sizeof(name), "%.*s...", 200, ref->model);
    snprintf(hint, sizeof(hint), "run ollama pull %s", name);
    if (manifest_path(im, ref, mpath) < 0)
        return cli_import_fail(im, &it,
                               cli_fail(CLI_EXIT_FAIL, "cannot import %s: path too long", name));
    size_t len;
    int r = cli_import_read_small(AT_FDCWD, mpath, CLI_OLLAMA_MANIFEST_MAX, buf, &len);
    if (r == -EMSGSIZE || r == -EBADMSG)
        return cli_import_fail(
            im, &it,
            cli_fail(CLI_EXIT_CORRUPT, "cannot import %s: manifest %s is %s: %s", name, mpath,
                     r == -EBADMSG ? "not a regular file" : "over 64 KiB", hint));
    if (r < 0)
        return cli_import_fail(
            im, &it, cli_fail_errno(r, hint, "cannot import %s: manifest %s", name, mpath));
    cli_ollama_manifest *m = malloc(sizeof(*m));
    if (!m)
        return cli_import_fail(im, &it, cli_fail_errno(-ENOMEM, NULL, "cannot import %s", name));
    r = cli_ollama_manifest_parse(buf, len, m, why, sizeof(why));
    if (r < 0) {
        free(m);
        return cli_import_fail(im, &it,
                               cli_fail(CLI_EXIT_CORRUPT, "cannot import %s: manifest %s: %s: %s",
                                        name, mpath, why, hint));
    }
    /* The digest was checked to be 64 hex: no path can come of it. */
    char file[80];
    snprintf(file, sizeof(file), "sha256-%s", m->hex);
    if (!cli_import_join(blob, im->dir, "blobs") || !cli_import_join(blob, blob, file)) {
        free(m);
        return cli_import_fail(im, &it,
                               cli_fail(CLI_EXIT_FAIL, "cannot import %s: path too long", name));
    }
    const char *left[CLI_OLLAMA_LAYERS_MAX];
    size_t n_left = 0;
    for (size_t i = 0; i < m->n_other; i++) {
        size_t k = 0;
        while (k < n_left && strcmp(left[k], m->other[i]) != 0)
            k++;
        if (k == n_left)
            left[n_left++] = m->other[i];
    }
    it.path = blob;
    it.sha256 = m->sha256;
    it.size = m->size;
    it.left_out = left;
    it.n_left_out = n_left;
    r = cli_import_file(im, &it);
    free(m);
    return r;
}

/* Walks manifests/ to depth 4 (REGISTRY/NAMESPACE/MODEL/TAG), in name
 * order, importing each manifest found at the bottom. */
static void
walk(cli_import *im, cli_ollama_ref *ref, int depth, char *buf, unsigned *n_seen)
{
    char path[PATH_MAX];
    bool fits = cli_import_join(path, im->dir, "manifests");
    for (int d = 0; d < depth; d++)
        fits = fits && cli_import_join(path, path, ref_part(ref, d));
    cli_import_item it = { .name = path, .path = path, .hint = "" };
    cli_import_entries e;
    int r = fits ? cli_import_list_dir(path, &e) : -ENAMETOOLONG;
    if (r < 0) {
        cli_import_fail(im, &it,
                        cli_fail_errno(r, r == -EMSGSIZE ? "import models by name" : NULL,
                                       "cannot list %s", path));
        return;
    }
    for (size_t i = 0; i < e.n; i++) {
        char sub[PATH_MAX];
        bool sub_fits = cli_import_join(sub, path, e.names[i]);
        it.name = it.path = sub_fits ? sub : path;
        if (!sub_fits || !cli_import_part_ok(e.names[i], strlen(e.names[i]), depth == 0)) {
            cli_import_fail(im, &it,
                            cli_fail(CLI_EXIT_CORRUPT,
                                     "skipping %s/%s: not a name Ollama writes: remove it or "
                                     "import the file with nvx add",
                                     path, e.names[i]));
            continue;
        }
        snprintf(ref_part(ref, depth), CLI_IMPORT_PART_MAX + 1, "%s", e.names[i]);
        if (depth < 3) {
            if (cli_import_is_dir(sub))
                walk(im, ref, depth + 1, buf, n_seen);
            continue;
        }
        if (++*n_seen > OLLAMA_MODELS_MAX) {
            cli_import_fail(im, &it,
                            cli_fail(CLI_EXIT_FAIL,
                                     "stopping at %d models: import the others by name",
                                     OLLAMA_MODELS_MAX));
            break;
        }
        import_ref(im, ref, buf);
    }
    cli_import_entries_free(&e);
}

int
cli_import_ollama(cli_import *im, const char *what)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int r = cli_import_source_dir(im->from, ollama_envs, ".ollama/models", dir);
    if (r != CLI_GO)
        return r;
    snprintf(im->dir, sizeof(im->dir), "%s", dir);
    if (!cli_import_join(path, dir, "manifests") || !cli_import_is_dir(path))
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "no Ollama store at %s (no manifests directory): give --from DIR or set "
                        "OLLAMA_MODELS",
                        dir);
    cli_ollama_ref ref;
    if (what && cli_ollama_ref_parse(what, &ref) < 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "invalid Ollama model name '%s': use [[REGISTRY/]NAMESPACE/]MODEL[:TAG] "
                        "with letters, digits, '.', '_' and '-'",
                        what);
    if (what && (manifest_path(im, &ref, path) < 0 || access(path, F_OK) < 0))
        return cli_fail(CLI_EXIT_NOTFOUND, "no Ollama model '%s' in %s: see ollama list", what,
                        dir);
    char *buf = malloc(CLI_OLLAMA_MANIFEST_MAX + 1);
    if (!buf)
        return cli_fail_errno(-ENOMEM, NULL, "cannot import from %s", dir);
    cli_import_begin(im, dir);
    unsigned n_seen = 0;
    if (what)
        import_ref(im, &ref, buf);
    else
        walk(im, &ref, 0, buf, &n_seen);
    free(buf);
    return CLI_GO;
}
