/* SPDX-License-Identifier: MIT */
/*
 * Node identities: Ed25519 key pairs whose public half is the node id. The
 * secret key lives in sodium_malloc memory (guard pages, locked, wiped on
 * free).
 */
#include <errno.h>
#include <stdlib.h>

#include <sodium.h>

#include "proto/internal.h"
#include "proto/session.h"

int
proto__sodium_ready(void)
{
    return sodium_init() < 0 ? -ENOMEM : 0;
}

/* ---- identity ---------------------------------------------------------- */

static int
identity_alloc(proto_identity **ret)
{
    int r = proto__sodium_ready();
    if (r < 0)
        return r;
    proto_identity *id = calloc(1, sizeof(*id));
    if (!id)
        return -ENOMEM;
    id->sec = sodium_malloc(sizeof(*id->sec));
    if (!id->sec) {
        free(id);
        return -ENOMEM;
    }
    *ret = id;
    return 0;
}

int
proto_identity_generate(proto_identity **ret)
{
    proto_identity *id;
    int r = identity_alloc(&id);
    if (r < 0)
        return r;
    crypto_sign_keypair(id->pk, id->sec->sk);
    *ret = id;
    return 0;
}

int
proto_identity_from_seed(const uint8_t seed[static PROTO_SEED_LEN], proto_identity **ret)
{
    proto_identity *id;
    int r = identity_alloc(&id);
    if (r < 0)
        return r;
    crypto_sign_seed_keypair(id->pk, id->sec->sk, seed);
    *ret = id;
    return 0;
}

void
proto_identity_seed(const proto_identity *id, uint8_t ret_seed[static PROTO_SEED_LEN])
{
    crypto_sign_ed25519_sk_to_seed(ret_seed, id->sec->sk);
}

const uint8_t *
proto_identity_node_id(const proto_identity *id)
{
    return id->pk;
}

void
proto_identity_free(proto_identity *id)
{
    if (!id)
        return;
    sodium_free(id->sec); /* wipes */
    free(id);
}

bool
proto_hw_aes_available(void)
{
    return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}
