/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the signed name record decoders in libcas/namerec.c. The
 * input is tried as an encoded record (cas_namerec_decode) and, split into
 * the fields of a proto ANNOUNCE name record, as the wire form
 * (cas_namerec_from_wire). What decodes must round-trip: it re-encodes to
 * the same bytes, its wire form rebuilds the same record, and it verifies.
 * It is also tried as a BEP 44 item value from the DHT
 * (cas_namerec_dht_decode), which must round-trip through
 * cas_namerec_dht_value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/namerec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
try_encoded(const uint8_t *data, size_t size)
{
    cas_namerec rec, back;
    if (cas_namerec_decode(data, size, &rec) < 0)
        return;
    uint8_t buf[CAS_NAMEREC_MAX];
    int n = cas_namerec_encode(&rec, buf, sizeof(buf));
    if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
        abort();
    uint8_t proof[CAS_NAMEREC_PROOF_LEN];
    cas_namerec_proof(&rec, proof);
    if (cas_namerec_from_wire(rec.keyid, (const uint8_t *)rec.name, rec.name_len, rec.sequence,
                              rec.time, rec.model_id, proof, sizeof(proof), &back) < 0 ||
        memcmp(&rec, &back, sizeof(rec)) != 0 || cas_namerec_verify(&rec) < 0)
        abort();
}

/* Wire layout used here: keyid[8] seq[8] time[8] model[32] K[1] name[K] proof[rest]. */
static void
try_wire(const uint8_t *data, size_t size)
{
    if (size < 57)
        return;
    uint64_t seq = 0, t = 0;
    for (int i = 0; i < 8; i++) {
        seq = seq << 8 | data[8 + i];
        t = t << 8 | data[16 + i];
    }
    size_t k = data[56];
    if (size - 57 < k)
        return;
    cas_namerec rec;
    if (cas_namerec_from_wire(data, data + 57, k, seq, t, data + 24, data + 57 + k, size - 57 - k,
                              &rec) < 0)
        return;
    uint8_t buf[CAS_NAMEREC_MAX];
    cas_namerec back;
    int n = cas_namerec_encode(&rec, buf, sizeof(buf));
    if (n < 0 || cas_namerec_decode(buf, (size_t)n, &back) < 0 ||
        memcmp(&rec, &back, sizeof(rec)) != 0)
        abort();
}

static void
try_dht(const uint8_t *data, size_t size)
{
    cas_namerec rec;
    if (cas_namerec_dht_decode(data, size, &rec) < 0)
        return;
    uint8_t v[CAS_NAMEREC_DHT_V_MAX];
    int n = cas_namerec_dht_value(&rec, v, sizeof(v));
    if (rec.sequence <= INT64_MAX && (n < 0 || (size_t)n != size || memcmp(v, data, size) != 0))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_encoded(data, size);
    try_dht(data, size);
    try_wire(data, size);
    return 0;
}
