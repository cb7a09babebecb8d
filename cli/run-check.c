/* SPDX-License-Identifier: MIT */
#include "cli/run-check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sigs.h"
#include "libcas/store.h"

unsigned
cli_run_check_env(void)
{
    const char *e = getenv(CLI_RUN_REQUIRE_TRUSTED_ENV);
    if (e && (strcmp(e, "1") == 0 || strcmp(e, "yes") == 0 || strcmp(e, "true") == 0))
        return CLI_RUN_REQUIRE_TRUSTED;
    return 0;
}

/* The first bad chunk verify reports (verify stops at it). */
static int
on_problem(void *userdata, const cas_store_problem *p)
{
    cas_store_problem *first = userdata;
    if (first->error == 0)
        *first = *p;
    return 0;
}

static int
check_chunks(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *text)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    cas_store_problem bad = { 0 };
    cas_store_verify_opts vo = { .problem = on_problem, .userdata = &bad };
    int r = cas_store_verify(ctx->store, id, &vo);
    if (r == -EBADMSG && bad.error != 0)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s: chunk %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64
                        ") does not match its id, not running it: run nvx verify %.16s, then "
                        "fetch or add the model again",
                        text, bad.chunk_index, bad.offset, bad.offset + bad.len, hex);
    if (r == -EBADMSG)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s failed verification, not running it: run nvx verify %.16s", text,
                        hex);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot verify model %s", text);
    return CLI_GO;
}

static int
check_trusted(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *text)
{
    uint8_t *mb = NULL;
    size_t ml = 0, n = 0;
    cli_sig_result *sigs = NULL;
    int r = cas_store_manifest_get(ctx->store, id, &mb, &ml);
    if (r == 0)
        r = cli_sigs_check(ctx->store, id, mb, ml, &sigs, &n);
    free(mb);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot check the signatures of model %s", text);
    bool trusted = false;
    for (size_t i = 0; i < n; i++)
        trusted |= sigs[i].status == CLI_SIG_TRUSTED;
    free(sigs);
    if (trusted)
        return CLI_GO;
    if (n == 0)
        return cli_fail(CLI_EXIT_UNTRUSTED,
                        "model %s is not signed, and a trusted signature is required: get it "
                        "signed by a key you trust (nvx trust add), or drop --require-trusted "
                        "(and " CLI_RUN_REQUIRE_TRUSTED_ENV ")",
                        text);
    return cli_fail(CLI_EXIT_UNTRUSTED,
                    "model %s has %zu signature%s, none from a trusted key: nvx trust add the "
                    "publisher's key if you trust it (nvx info shows the key id), or drop "
                    "--require-trusted (and " CLI_RUN_REQUIRE_TRUSTED_ENV ")",
                    text, n, n == 1 ? "" : "s");
}

int
cli_run_check(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *text, unsigned flags)
{
    int r = check_chunks(ctx, id, text);
    if (r == CLI_GO && (flags & CLI_RUN_REQUIRE_TRUSTED))
        r = check_trusted(ctx, id, text);
    return r;
}
