/* SPDX-License-Identifier: MIT */
/*
 * Node identities: Ed25519 key pairs whose public half is the node id. The
 * secret key lives in sodium_malloc memory (guard pages, locked, wiped on
 * free).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* The signed bytes of a provider record (PROTOCOL.md, ANNOUNCE). */
static void
provider_message(uint8_t m[static 16 + 2 * PROTO_ID_LEN + 12], const proto_provider_record *rec)
{
    static const uint8_t label[16] = "nvx-provider--v1";
    memcpy(m, label, 16);
    memcpy(m + 16, rec->node_id, PROTO_ID_LEN);
    memcpy(m + 16 + PROTO_ID_LEN, rec->model_id, PROTO_ID_LEN);
    be64_store(m + 16 + 2 * PROTO_ID_LEN, rec->time);
    be32_store(m + 24 + 2 * PROTO_ID_LEN, rec->ttl_s);
}

int
proto_provider_sign(const proto_identity *id, proto_provider_record *rec)
{
    uint8_t m[16 + 2 * PROTO_ID_LEN + 12];
    memcpy(rec->node_id, id->pk, PROTO_ID_LEN);
    provider_message(m, rec);
    return crypto_sign_detached(rec->sig, NULL, m, sizeof(m), id->sec->sk) == 0 ? 0 : -ENOMEM;
}

bool
proto_provider_verify(const proto_provider_record *rec)
{
    uint8_t m[16 + 2 * PROTO_ID_LEN + 12];
    if (proto__sodium_ready() < 0)
        return false;
    provider_message(m, rec);
    return crypto_sign_verify_detached(rec->sig, m, sizeof(m), rec->node_id) == 0;
}

/* The sessions' own check (record.c): on arm64 that is the CPU's AES and
 * PMULL, where libsodium's AES-GCM (x86 only) says no. */
bool
proto_hw_aes_available(void)
{
    return sodium_init() >= 0 && proto__aes_hw();
}
