/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the manifest decoder: arbitrary bytes must be rejected with
 * -EBADMSG or decode; whatever decodes must re-encode (through the builder,
 * from the accessors alone) to exactly the same bytes, since the decoder
 * accepts only canonical encodings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
reencode_or_abort(const cas_manifest *m)
{
    cas_chunker_params p;
    cas_chunker_kind kind = cas_manifest_chunker(m, &p);
    cas_manifest_builder *b = NULL;
    cas_manifest *m2 = NULL;

    if (cas_manifest_builder_new(kind, &p, &b) < 0)
        abort();
    for (size_t i = 0; i < cas_manifest_chunk_count(m); i++) {
        cas_chunk_info c;
        if (cas_manifest_chunk(m, i, &c) < 0 || cas_manifest_builder_add_chunk(b, c.id, c.len) < 0)
            abort();
        size_t at;
        if (cas_manifest_chunk_at(m, c.offset + c.len - 1, &at) < 0 || at != i)
            abort();
    }
    for (size_t i = 0; i < cas_manifest_tensor_count(m); i++) {
        cas_tensor_info t;
        if (cas_manifest_tensor(m, i, &t) < 0 || cas_manifest_builder_add_tensor(b, &t) < 0)
            abort();
    }
    for (size_t i = 0; i < cas_manifest_meta_count(m); i++) {
        const char *k, *v;
        if (cas_manifest_meta(m, i, &k, &v) < 0 || cas_manifest_builder_set_meta(b, k, v) < 0 ||
            cas_manifest_meta_get(m, k) != v)
            abort();
    }
    if (cas_manifest_builder_finish(b, &m2) < 0)
        abort();
    size_t l1, l2;
    const uint8_t *b1 = cas_manifest_bytes(m, &l1), *b2 = cas_manifest_bytes(m2, &l2);
    if (l1 != l2 || memcmp(b1, b2, l1) != 0)
        abort();
    if (memcmp(cas_manifest_id(m), cas_manifest_id(m2), CAS_HASH_LEN) != 0)
        abort();
    cas_manifest_free(m2);
    cas_manifest_builder_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cas_manifest *m = NULL;

    int r = cas_manifest_decode(data, size, &m);
    if (r < 0) {
        if (r != -EBADMSG && r != -ENOMEM && !(r == -EINVAL && !data))
            abort();
        return 0;
    }
    size_t len;
    const uint8_t *bytes = cas_manifest_bytes(m, &len);
    if (len != size || memcmp(bytes, data, size) != 0)
        abort();
    reencode_or_abort(m);
    cas_manifest_free(m);
    return 0;
}
