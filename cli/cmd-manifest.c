/* SPDX-License-Identifier: MIT */
/*
 * nvx manifest ID -o FILE [--sig FILE]: the canonical manifest bytes (whose
 * BLAKE2b-256 is the id) and a signature, for checking with other tools
 * (b2sum -l 256 FILE, minisign -Vm FILE -x SIG -p KEY).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/fsutil.h"
#include "cli/json.h"
#include "cli/store.h"
#include "libcas/sig.h"
#include "libcas/store.h"

int cli_manifest_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_manifest = {
    .name = "manifest",
    .main = cli_manifest_main,
    .usage = "manifest ID|NAME -o FILE [--sig FILE] [--key KEYID]",
    .summary = "Write a model's canonical manifest (and a signature) to files",
};

typedef struct sig_pick {
    bool any;                     /* no --key: the first signature */
    uint8_t keyid[CAS_KEYID_LEN]; /* else the one by this key */
    void *blob;
    size_t len;
    int err;
} sig_pick;

static int
pick(void *userdata, const void *blob, size_t len)
{
    sig_pick *p = userdata;
    if (!p->any) {
        cas_sig_info info;
        if (cas_sig_parse(blob, len, &info) < 0 || memcmp(info.keyid, p->keyid, CAS_KEYID_LEN) != 0)
            return 0;
    }
    p->blob = malloc(len);
    if (!p->blob)
        return p->err = -ENOMEM;
    memcpy(p->blob, blob, len);
    p->len = len;
    return 1; /* stop at the first match */
}

static int
write_sig(cli_ctx *ctx, const uint8_t id[CAS_HASH_LEN], const char *what, const char *path,
          const char *keyid)
{
    sig_pick p = { .any = !keyid };
    if (keyid)
        cas_keyid_parse(keyid, p.keyid); /* checked by the caller */
    int r = cas_store_sig_list(ctx->store, id, pick, &p);
    if (r < 0 && !p.blob)
        return cli_fail_errno(r, NULL, "cannot read the signatures of %s", what);
    if (!p.blob)
        return cli_fail(CLI_EXIT_NOTFOUND, "%s has no signature%s%s: sign it with nvx sign %s",
                        what, keyid ? " by key " : "", keyid ? keyid : "", what);
    r = cli_write_file_atomic(path, p.blob, p.len);
    free(p.blob);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot write %s", path);
    return CLI_GO;
}

int
cli_manifest_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL, *sig = NULL, *keyid = NULL;
    const cli_opt opts[] = {
        { .lname = "output",
          .sname = 'o',
          .type = CLI_OPT_STR,
          .dest = &out,
          .metavar = "FILE",
          .help = "write the manifest bytes here (- for stdout)" },
        { .lname = "sig",
          .type = CLI_OPT_STR,
          .dest = &sig,
          .metavar = "FILE",
          .help = "also write a signature (minisign format) here" },
        { .lname = "key",
          .type = CLI_OPT_STR,
          .dest = &keyid,
          .metavar = "KEYID",
          .help = "with --sig: the signature by this key id (default: the first)" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_manifest, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_manifest, npos, 1, 1)) != CLI_GO)
        return r;
    if (!out || !*out)
        return cli_fail(CLI_EXIT_USAGE, "manifest needs an output file: nvx manifest %s -o FILE",
                        argv[0]);
    if (strcmp(out, "-") == 0 && isatty(STDOUT_FILENO))
        return cli_fail(CLI_EXIT_USAGE,
                        "stdout is a terminal: redirect it (nvx manifest %s -o - "
                        "> FILE) or give -o FILE",
                        argv[0]);
    uint8_t kid[CAS_KEYID_LEN];
    if (keyid && cas_keyid_parse(keyid, kid) < 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "invalid key id '%s': give up to 16 hex digits (see nvx trust ls)", keyid);
    uint8_t id[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[0], id)) != CLI_GO)
        return r;
    uint8_t *mb = NULL;
    size_t ml = 0;
    r = cas_store_manifest_get(ctx->store, id, &mb, &ml);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot read the manifest of %s", argv[0]);
    r = cli_write_file_atomic(out, mb, ml);
    free(mb);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot write %s", out);
    if (sig && (r = write_sig(ctx, id, argv[0], sig, keyid)) != CLI_GO)
        return r;
    if (ctx->json && strcmp(out, "-") != 0) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(id, hex);
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "id", hex);
        cli_json_kv_str(&j, "manifest", out);
        cli_json_kv_u64(&j, "bytes", ml);
        cli_json_kv_str(&j, "sig", sig);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    return CLI_EXIT_OK;
}
