/* SPDX-License-Identifier: MIT */
#include "cli/run-check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/run-policy.h"

unsigned
cli_run_check_env(void)
{
    return cas_run_policy_env() ? CLI_RUN_REQUIRE_TRUSTED : 0;
}

/* Turns the shared policy's verdict (libcas/run-policy.h) into the
 * CLI's one-line errors and exit codes. */
int
cli_run_check(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *text, unsigned flags)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    cas_run_verdict v;
    unsigned pf = (flags & CLI_RUN_REQUIRE_TRUSTED) ? CAS_RUN_REQUIRE_TRUSTED : 0;
    int r = cas_run_policy_check(ctx->store, id, pf, &v);
    if (r == 0)
        return CLI_GO;
    if (r == -EAGAIN)
        return cli_fail(CLI_EXIT_FAIL,
                        "model %s is not complete (%" PRIu64 " of %" PRIu64
                        " chunks verified): run nvx fetch %.16s to finish it, then nvx run again",
                        text, v.info.n_present, v.info.n_chunks, hex);
    if (r == -EBADMSG && v.bad.error != 0)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s: chunk %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64
                        ") does not match its id, not running it: run nvx verify %.16s, then "
                        "fetch or add the model again",
                        text, v.bad.chunk_index, v.bad.offset, v.bad.offset + v.bad.len, hex);
    if (r == -EBADMSG)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s failed verification, not running it: run nvx verify %.16s", text,
                        hex);
    if (r == -EACCES && v.n_sigs == 0)
        return cli_fail(CLI_EXIT_UNTRUSTED,
                        "model %s is not signed, and a trusted signature is required: get it "
                        "signed by a key you trust (nvx trust add), or drop --require-trusted "
                        "(and " CLI_RUN_REQUIRE_TRUSTED_ENV ")",
                        text);
    if (r == -EACCES)
        return cli_fail(CLI_EXIT_UNTRUSTED,
                        "model %s has %zu signature%s, none from a trusted key: nvx trust add the "
                        "publisher's key if you trust it (nvx info shows the key id), or drop "
                        "--require-trusted (and " CLI_RUN_REQUIRE_TRUSTED_ENV ")",
                        text, v.n_sigs, v.n_sigs == 1 ? "" : "s");
    return cli_fail_errno(r, "run nvx verify", "cannot verify model %s", text);
}
