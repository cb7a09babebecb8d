/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CMD_PUBLISH_H
#define NVX_CLI_CMD_PUBLISH_H
/*
 * Name resolution for commands that take PUBLISHER/NAME (nvx fetch, nvx
 * resolve), defined in cmd-publish.c. Records come from the store: those
 * `nvx publish` signed here and those nvxd received through gossip
 * (libcas/namerec.h).
 */
#include <stdbool.h>
#include <stdint.h>

#include "cli/cli.h"
#include "libcas/hash.h"

/*
 * Resolves "PUBLISHER/NAME" (PUBLISHER: a key name from `nvx trust`, or a
 * key id as minisign and `nvx key show` print it) to a model id through the highest-sequence
 * record stored for that publisher and name. A record signed by a key the
 * keyring does not hold (with that exact public key) is shown on stderr and
 * not followed — CLI_EXIT_UNTRUSTED — unless allow_untrusted (then a warning
 * names the key). Returns CLI_GO and ret_id, or prints one error line and
 * returns the exit code (CLI_EXIT_NOTFOUND: no such record or publisher,
 * CLI_EXIT_USAGE: malformed target or an ambiguous key name).
 */
int cli_name_resolve(cli_ctx *ctx, const char *target, bool allow_untrusted,
                     uint8_t ret_id[static CAS_HASH_LEN]);

/* True when the store has no record for "PUBLISHER/NAME" whose publisher
 * is a key of the keyring: nvxd may find the record on the DHT (BEP 44),
 * so nvx fetch hands it the name. Prints nothing. */
bool cli_name_dht_candidate(cli_ctx *ctx, const char *target);

#endif
