/* SPDX-License-Identifier: MIT */
#ifndef NVX_PROTO_TICKET_H
#define NVX_PROTO_TICKET_H
/*
 * Tickets: one copy-pasteable string that says what to fetch and where
 * (`nvx ticket ID|NAME`, `nvx fetch TICKET`). Text form:
 *
 *     "nvx1" base32(body || check)
 *
 * "nvx1" names the format version; base32 is RFC 4648's alphabet in lower
 * case without padding (a decoder takes upper case too; the unused low
 * bits of the last character must be zero, so each ticket has one
 * spelling). check = the first 4 bytes of BLAKE2b-256("nvx-ticket----v1"
 * || body): a typo or a cut-off paste is caught before anything is dialed.
 *
 * body:
 *
 * | OFFSET | SIZE | DESCRIPTION                                            |
 * |--------|------|--------------------------------------------------------|
 * | 0      | 1    | flags: bit 0 NODE, bit 1 PUBLISHER; others zero        |
 * | 1      | 32   | model id                                               |
 * | 33     | 32   | node id of the node that serves it (NODE only)         |
 * | ...    | 40   | publisher key: minisign key id (8) and Ed25519 public  |
 * |        |      | key (32) (PUBLISHER only)                              |
 * | ...    | 1    | n = number of addresses, 0..PROTO_TICKET_ADDRS_MAX     |
 * | ...    | 1+L  | each: L (1..PROTO_TICKET_ADDR_MAX), L bytes of token   |
 * |        |      | ("HOST:PORT", transport/tp.h spelling)                 |
 *
 * The decoder is strict: a wrong prefix, a character outside the
 * alphabet, a length over PROTO_TICKET_TEXT_MAX, a bad check, unknown flag
 * bits, counts or lengths over their limits, non-token address bytes or
 * bytes after the last address are -EBADMSG. Nothing in a ticket is
 * trusted: the node id is checked in the handshake of every dial, the
 * model against its id, the publisher key only names whom to trust.
 *
 * Thread safety: no state; any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/message.h"

enum proto_ticket_limits {
    PROTO_TICKET_ADDRS_MAX = 4,
    PROTO_TICKET_ADDR_MAX = 64,
    PROTO_TICKET_PUBKEY_LEN = 40, /* key id 8 + Ed25519 32 */
    PROTO_TICKET_CHECK_LEN = 4,
    PROTO_TICKET_BODY_MAX = 1 + 32 + 32 + PROTO_TICKET_PUBKEY_LEN + 1 +
                            PROTO_TICKET_ADDRS_MAX * (1 + PROTO_TICKET_ADDR_MAX),
    /* "nvx1" and ceil((body + check) * 8 / 5) characters */
    PROTO_TICKET_TEXT_MAX = 4 + ((PROTO_TICKET_BODY_MAX + PROTO_TICKET_CHECK_LEN) * 8 + 4) / 5,
};

#define PROTO_TICKET_PREFIX "nvx1"

enum proto_ticket_flags {
    PROTO_TICKET_F_NODE = 1u << 0,
    PROTO_TICKET_F_PUBLISHER = 1u << 1,
};

typedef struct proto_ticket {
    uint8_t model_id[PROTO_ID_LEN];
    bool has_node;
    uint8_t node_id[PROTO_ID_LEN];
    bool has_publisher;
    uint8_t publisher[PROTO_TICKET_PUBKEY_LEN];
    size_t n_addrs;
    /* NUL-terminated copies (not borrowed: a ticket outlives its text) */
    char addrs[PROTO_TICKET_ADDRS_MAX][PROTO_TICKET_ADDR_MAX + 1];
} proto_ticket;

/* True when text starts like a ticket ("nvx1", either case): the caller
 * then reports a ticket's errors rather than a model id's. */
bool proto_ticket_looks_like(const char *text);

/*
 * Writes t's text form, NUL-terminated, into out[cap]. Returns 0,
 * -EINVAL (an address empty, too long or not a token; too many),
 * -EMSGSIZE (cap < the text + 1; PROTO_TICKET_TEXT_MAX + 1 always fits).
 */
int proto_ticket_encode(const proto_ticket *t, char *out, size_t cap);

/* Decodes len bytes of text (no NUL needed) into *ret (written only on
 * success). Returns 0 or -EBADMSG. */
int proto_ticket_decode(const char *text, size_t len, proto_ticket *ret);

#endif
