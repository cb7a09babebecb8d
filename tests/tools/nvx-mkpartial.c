/* SPDX-License-Identifier: MIT */
/*
 * nvx-mkpartial: makes a PARTIAL copy of a model for tests: reads the
 * manifest of model ID (hex) from store SRC and creates the model in store
 * DST in state partial with its first K chunks present (default 1), as an
 * interrupted fetch would leave it. Test helper, not installed.
 *
 *   nvx-mkpartial SRC ID DST [K]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/hash.h"
#include "libcas/store.h"

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: nvx-mkpartial SRC ID DST [K]\n");
        return 2;
    }
    uint64_t k = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    cas_store *src = NULL, *dst = NULL;
    cas_partial *p = NULL;
    uint8_t *man = NULL, *buf = NULL;
    size_t len = 0;
    uint8_t id[CAS_HASH_LEN], nid[CAS_HASH_LEN];
    int r = cas_store_open(argv[1], 0, &src);
    if (r >= 0)
        r = cas_store_resolve(src, argv[2], id);
    if (r >= 0)
        r = cas_store_manifest_get(src, id, &man, &len);
    if (r >= 0)
        r = cas_store_open(argv[3], CAS_STORE_CREATE, &dst);
    if (r >= 0)
        r = cas_store_partial_create(dst, man, len, nid);
    if (r >= 0)
        r = cas_partial_open(dst, nid, &p);
    for (uint64_t i = 0; r >= 0 && i < k && i < cas_partial_n_chunks(p); i++) {
        uint8_t cid[CAS_HASH_LEN];
        uint64_t off;
        uint32_t clen;
        r = cas_partial_chunk(p, i, cid, &off, &clen);
        if (r < 0)
            break;
        free(buf);
        buf = malloc(clen ? clen : 1);
        int64_t n = buf ? cas_store_chunk_read(src, cid, buf, clen) : -12;
        r = n < 0 ? (int)n : cas_partial_put(p, i, buf, (size_t)n);
    }
    if (r >= 0 && p)
        r = cas_partial_commit(p);
    if (r < 0)
        fprintf(stderr, "nvx-mkpartial: %s\n", strerror(-r));
    cas_partial_free(p);
    free(buf);
    free(man);
    cas_store_free(dst);
    cas_store_free(src);
    return r < 0 ? 1 : 0;
}
