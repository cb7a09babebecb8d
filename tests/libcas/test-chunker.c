/* SPDX-License-Identifier: MIT */
/* Tests for libcas/chunker.c: parameters, determinism, split independence,
 * bounds, forced cuts, fixed regions and shift resistance. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "libcas/chunker.h"
#include "libcas/hash.h"
#include "libcas/internal.h"
#include "testutil.h"

/* Chunks of tu_fill_random(4 MiB, seed 42) with the default parameters. */
#define KA_N   57
#define KA_L0  78376
#define KA_L1  108508
#define KA_L2  44347
#define KA_HEX "bf1f9d6d98c2175f564cbea97b72ddc1e65487acc9649ecb8426d9b5006a968d"

#define MiB (1024u * 1024)

/* Chunk lengths of buf fed in pieces: piece sizes cycle through `pieces`
 * (npieces 0: whole buffer at once). Returns a malloc'd array. */
static uint32_t *
chunk_fed(const cas_chunker_params *p, const cas_chunk_region *regions, size_t n_regions,
          const uint8_t *buf, size_t len, const size_t *pieces, size_t npieces, size_t *ret_n)
{
    cas_chunker *c = NULL;
    assert_int_equal(cas_chunker_new(p, &c), 0);
    assert_int_equal(cas_chunker_set_regions(c, regions, n_regions), 0);
    uint32_t *lens = calloc(len / 64 + 2, sizeof(*lens));
    assert_non_null(lens);
    size_t n = 0, k = 0, off = 0;
    uint64_t cur = 0;
    while (off < len) {
        size_t piece = npieces ? pieces[k++ % npieces] : len;
        if (piece > len - off)
            piece = len - off;
        const uint8_t *q = buf + off;
        size_t left = piece;
        while (left > 0) {
            size_t used = 0;
            int r = cas_chunker_next(c, q, left, &used);
            assert_true(used >= 1 && used <= left);
            q += used;
            left -= used;
            cur += used;
            if (r == 1) {
                lens[n++] = (uint32_t)cur;
                cur = 0;
            }
        }
        off += piece;
    }
    uint64_t last = 0;
    if (cas_chunker_finish(c, &last)) {
        assert_int_equal(last, cur);
        lens[n++] = (uint32_t)last;
    } else {
        assert_int_equal(cur, 0);
    }
    assert_int_equal(cas_chunker_offset(c), len);
    cas_chunker_free(c);
    *ret_n = n;
    return lens;
}

static uint8_t *
random_buf(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    tu_fill_random(b, len, seed);
    return b;
}

static void
test_params(void **state)
{
    static const struct {
        cas_chunker_params p;
        int want;
    } cases[] = {
        { { 16384, 65536, 262144 }, 0 },
        { { 64, 256, 257 }, 0 },
        { { 1 << 20, 4 << 20, 16 << 20 }, 0 },
        { { 63, 256, 1024 }, -EINVAL },                /* min below floor */
        { { 64, 128, 1024 }, -EINVAL },                /* avg below floor */
        { { 16384, 65535, 262144 }, -EINVAL },         /* avg not a power of two */
        { { 65536, 65536, 262144 }, -EINVAL },         /* min == avg */
        { { 16384, 65536, 65536 }, -EINVAL },          /* max == avg */
        { { 16384, 65536, (16 << 20) + 1 }, -EINVAL }, /* max over ceiling */
        { { 100000, 65536, 262144 }, -EINVAL },        /* min > avg */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(cas_chunker_params_validate(&cases[i].p), cases[i].want);
    assert_int_equal(cas_chunker_params_validate(NULL), -EINVAL);
    cas_chunker_params dflt = CAS_CHUNKER_PARAMS_DEFAULT;
    assert_int_equal(cas_chunker_params_validate(&dflt), 0);
    assert_int_equal(dflt.min, 16384);
    assert_int_equal(dflt.avg, 65536);
    assert_int_equal(dflt.max, 262144);
    cas_chunker *c = NULL;
    assert_int_equal(cas_chunker_new(&cases[3].p, &c), -EINVAL);
    assert_null(c);
}

static void
test_kind_names(void **state)
{
    static const char *names[] = { "cdc", "gguf", "llama2c", "fixed" };
    for (int k = 0; k < _CAS_CHUNKER_KIND_MAX; k++) {
        assert_string_equal(cas_chunker_kind_to_string(k), names[k]);
        assert_int_equal(cas_chunker_kind_from_string(names[k]), k);
    }
    assert_null(cas_chunker_kind_to_string(_CAS_CHUNKER_KIND_MAX));
    assert_int_equal(cas_chunker_kind_from_string("auto"), -EINVAL);
    assert_int_equal(cas_chunker_kind_from_string("CDC"), -EINVAL);
    assert_int_equal(cas_chunker_kind_from_string(""), -EINVAL);
    assert_int_equal(cas_chunker_kind_from_string(NULL), -EINVAL);
}

/* Known answer: pins the cut rule and the gear table (format stability). */
static void
test_known_answer(void **state)
{
    size_t len = 4 * MiB;
    uint8_t *buf = random_buf(len, 42);
    uint32_t *lens = NULL;
    size_t n = 0;
    assert_int_equal(cas_chunker_split(NULL, NULL, 0, buf, len, &lens, &n), 0);
    /* The whole chunk list hashed: any change to the rule changes this. */
    uint8_t id[CAS_HASH_LEN];
    cas_hasher h;
    cas_hasher_init(&h);
    for (size_t i = 0; i < n; i++) {
        uint8_t le[4] = { (uint8_t)lens[i], (uint8_t)(lens[i] >> 8), (uint8_t)(lens[i] >> 16),
                          (uint8_t)(lens[i] >> 24) };
        cas_hasher_update(&h, le, sizeof(le));
    }
    cas_hasher_final(&h, id);
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    print_message("known answer: %zu chunks, first %u %u %u, list hash %s\n", n, lens[0], lens[1],
                  lens[2], hex);
    assert_int_equal(n, KA_N);
    assert_int_equal(lens[0], KA_L0);
    assert_int_equal(lens[1], KA_L1);
    assert_int_equal(lens[2], KA_L2);
    assert_string_equal(hex, KA_HEX);
    free(lens);
    free(buf);
}

/* The cut rule exactly as chunker.h states it, one byte at a time, for
 * comparison with the optimised scanner. Returns chunk lengths (malloc'd). */
static uint32_t *
reference_split(const cas_chunker_params *p, const uint8_t *buf, size_t len, size_t *ret_n)
{
    unsigned bits = 0;
    while ((1u << (bits + 1)) <= p->avg)
        bits++;
    uint64_t mask_s = ~UINT64_C(0) << (64 - (bits + CAS_CHUNKER_NORMAL_LEVEL));
    uint64_t mask_l = ~UINT64_C(0) << (64 - (bits - CAS_CHUNKER_NORMAL_LEVEL));
    uint32_t *lens = calloc(len / p->min + 2, sizeof(*lens));
    assert_non_null(lens);
    size_t n = 0, start = 0;
    while (start < len) {
        uint64_t h = 0;
        size_t l = 0;
        for (size_t j = start; j < len; j++) {
            l = j - start + 1; /* chunk length if it ends after buf[j] */
            if (l > p->min) {
                h = (h << 1) + cas__gear[buf[j]];
                if (!(h & (l < p->avg ? mask_s : mask_l)))
                    break;
            }
            if (l == p->max)
                break;
        }
        lens[n++] = (uint32_t)l;
        start += l;
    }
    *ret_n = n;
    return lens;
}

static void
test_reference(void **state)
{
    static const cas_chunker_params params[] = {
        { 16384, 65536, 262144 }, /* defaults */
        { 256, 4096, 65536 },     /* long scans with frequent cuts */
        { 64, 256, 1024 },        /* short scans only */
        { 1000, 2048, 3000 },     /* min and max not powers of two */
        { 64, 1 << 20, 1 << 22 }, /* scans of megabytes */
    };
    size_t len = 3 * MiB + 77;
    uint8_t *buf = random_buf(len, 77);
    /* A low-entropy stretch in the middle. */
    memset(buf + MiB, 0, 100000);
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        size_t nr = 0, ng = 0;
        uint32_t *ref = reference_split(&params[i], buf, len, &nr);
        uint32_t *got = NULL;
        assert_int_equal(cas_chunker_split(&params[i], NULL, 0, buf, len, &got, &ng), 0);
        assert_int_equal(ng, nr);
        assert_memory_equal(got, ref, nr * sizeof(*ref));
        free(ref);
        free(got);
    }
    free(buf);
}

static void
test_deterministic_and_bounds(void **state)
{
    size_t len = 8 * MiB;
    uint8_t *buf = random_buf(len, 7);
    cas_chunker_params p = CAS_CHUNKER_PARAMS_DEFAULT;
    uint32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(cas_chunker_split(&p, NULL, 0, buf, len, &a, &na), 0);
    assert_int_equal(cas_chunker_split(&p, NULL, 0, buf, len, &b, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(*a));
    uint64_t sum = 0;
    for (size_t i = 0; i < na; i++) {
        if (i + 1 < na)
            assert_true(a[i] >= p.min);
        assert_true(a[i] >= 1 && a[i] <= p.max);
        sum += a[i];
    }
    assert_int_equal(sum, len);
    /* Normalized chunking keeps the mean near avg on random data. */
    uint64_t mean = len / na;
    print_message("8 MiB random: %zu chunks, mean %llu\n", na, (unsigned long long)mean);
    assert_true(mean > p.avg / 2 && mean < p.avg * 2);
    free(a);
    free(b);
    free(buf);
}

static void
test_low_entropy_bounds(void **state)
{
    /* All zeros and a short repeating pattern: max must still bound chunks. */
    size_t len = 3 * MiB + 123;
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(i % 7);
        uint32_t *lens = NULL;
        size_t n = 0;
        cas_chunker_params p = { 1024, 4096, 8192 };
        assert_int_equal(cas_chunker_split(&p, NULL, 0, buf, len, &lens, &n), 0);
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            assert_true(lens[i] <= p.max);
            if (i + 1 < n)
                assert_true(lens[i] >= p.min);
            sum += lens[i];
        }
        assert_int_equal(sum, len);
        free(lens);
    }
    free(buf);
}

static void
check_split_independent(const cas_chunker_params *p, const cas_chunk_region *regions,
                        size_t n_regions, const uint8_t *buf, size_t len)
{
    static const size_t pattern_a[] = { 1 };
    static const size_t pattern_b[] = { 7, 4096, 3, 65537, 1, 100000 };
    static const size_t pattern_c[] = { 1 << 20 };
    static const size_t pattern_d[] = { 16383, 16384, 16385, 65535, 65536, 262143, 262145 };
    static const struct {
        const size_t *v;
        size_t n;
    } patterns[] = {
        { pattern_a, 1 },
        { pattern_b, 6 },
        { pattern_c, 1 },
        { pattern_d, 7 },
    };
    size_t nref = 0;
    uint32_t *ref = chunk_fed(p, regions, n_regions, buf, len, NULL, 0, &nref);
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        /* One byte at a time is slow: only on a prefix-sized input. */
        if (patterns[i].v == pattern_a && len > 2 * MiB)
            continue;
        size_t n = 0;
        uint32_t *got =
            chunk_fed(p, regions, n_regions, buf, len, patterns[i].v, patterns[i].n, &n);
        assert_int_equal(n, nref);
        assert_memory_equal(got, ref, n * sizeof(*got));
        free(got);
    }
    /* Random piece sizes. */
    size_t rnd[64];
    uint64_t s = 99;
    for (size_t i = 0; i < 64; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        rnd[i] = 1 + (size_t)((s >> 33) % 200000);
    }
    size_t n = 0;
    uint32_t *got = chunk_fed(p, regions, n_regions, buf, len, rnd, 64, &n);
    assert_int_equal(n, nref);
    assert_memory_equal(got, ref, n * sizeof(*got));
    free(got);
    free(ref);
}

static void
test_split_independent(void **state)
{
    size_t len = 6 * MiB + 5;
    uint8_t *buf = random_buf(len, 3);
    cas_chunker_params p = CAS_CHUNKER_PARAMS_DEFAULT;
    check_split_independent(&p, NULL, 0, buf, len);
    cas_chunk_region regions[] = {
        { 0, CAS_CHUNK_MODE_CDC },
        { 1000, CAS_CHUNK_MODE_CDC },
        { 300000, CAS_CHUNK_MODE_FIXED },
        { 2 * MiB + 1, CAS_CHUNK_MODE_CDC },
        { 2 * MiB + 2, CAS_CHUNK_MODE_FIXED },
        { 5 * MiB, CAS_CHUNK_MODE_CDC },
    };
    check_split_independent(&p, regions, 6, buf, len);
    /* Byte at a time on a smaller input with small parameters. */
    cas_chunker_params small = { 64, 256, 1024 };
    check_split_independent(&small, regions, 2, buf, 1 * MiB);
    free(buf);
}

static void
test_forced_cuts(void **state)
{
    size_t len = 5 * MiB;
    uint8_t *buf = random_buf(len, 11);
    cas_chunker_params p = CAS_CHUNKER_PARAMS_DEFAULT;
    cas_chunk_region regions[] = {
        { 10, CAS_CHUNK_MODE_CDC },      /* tiny first chunk */
        { 11, CAS_CHUNK_MODE_CDC },      /* one-byte chunk */
        { 70000, CAS_CHUNK_MODE_FIXED }, /* fixed pieces of avg */
        { 70000 + 3 * 65536 + 17, CAS_CHUNK_MODE_CDC },
        { 3 * MiB, CAS_CHUNK_MODE_FIXED },
        { 9 * MiB, CAS_CHUNK_MODE_CDC }, /* past EOF: ignored */
    };
    uint32_t *lens = NULL;
    size_t n = 0;
    assert_int_equal(cas_chunker_split(&p, regions, 6, buf, len, &lens, &n), 0);
    /* Collect cut offsets and check every in-file region start is one. */
    uint64_t off = 0;
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        while (r < 6 && regions[r].offset < off)
            r++;
        assert_true(lens[i] >= 1 && lens[i] <= p.max);
        off += lens[i];
        /* No chunk crosses a region start. */
        if (r < 6 && regions[r].offset > off - lens[i])
            assert_true(off <= regions[r].offset);
    }
    assert_int_equal(off, len);
    assert_int_equal(lens[0], 10);
    assert_int_equal(lens[1], 1);
    /* The fixed region: three full pieces, then the 17-byte tail. */
    uint64_t at = 0;
    size_t i = 0;
    while (at < 70000)
        at += lens[i++];
    assert_int_equal(at, 70000);
    assert_int_equal(lens[i], 65536);
    assert_int_equal(lens[i + 1], 65536);
    assert_int_equal(lens[i + 2], 65536);
    assert_int_equal(lens[i + 3], 17);
    /* From 3 MiB on: fixed pieces to EOF (2 MiB = 32 pieces). */
    at = 0;
    i = 0;
    while (at < 3 * MiB)
        at += lens[i++];
    assert_int_equal(at, 3 * MiB);
    assert_int_equal(n - i, 32);
    for (; i < n; i++)
        assert_int_equal(lens[i], 65536);
    free(lens);
    free(buf);
}

static void
test_region_errors(void **state)
{
    cas_chunker *c = NULL;
    assert_int_equal(cas_chunker_new(NULL, &c), 0);
    cas_chunk_region unsorted[] = { { 5, CAS_CHUNK_MODE_CDC }, { 5, CAS_CHUNK_MODE_CDC } };
    assert_int_equal(cas_chunker_set_regions(c, unsorted, 2), -EINVAL);
    cas_chunk_region badmode[] = { { 5, (cas_chunk_mode)7 } };
    assert_int_equal(cas_chunker_set_regions(c, badmode, 1), -EINVAL);
    assert_int_equal(cas_chunker_set_regions(c, NULL, 1), -EINVAL);
    assert_int_equal(cas_chunker_set_regions(c, NULL, CAS_CHUNKER_REGIONS_MAX + 1), -EINVAL);
    assert_int_equal(cas_chunker_set_regions(c, unsorted, CAS_CHUNKER_REGIONS_MAX + 1), -EMSGSIZE);
    assert_int_equal(cas_chunker_set_regions(c, unsorted, 1), 0);
    uint8_t b[3] = { 1, 2, 3 };
    size_t used = 9;
    assert_int_equal(cas_chunker_next(c, b, 0, &used), 0); /* empty feed: no-op */
    assert_int_equal(used, 0);
    assert_int_equal(cas_chunker_offset(c), 0);
    assert_int_equal(cas_chunker_next(c, b, 3, &used), 0);
    assert_int_equal(used, 3);
    /* Too late once bytes were fed. */
    assert_int_equal(cas_chunker_set_regions(c, unsorted, 1), -EINVAL);
    uint64_t last = 0;
    assert_true(cas_chunker_finish(c, &last));
    assert_int_equal(last, 3);
    assert_false(cas_chunker_finish(c, &last));
    cas_chunker_free(c);
    cas_chunker_free(NULL);
    /* An empty stream has no chunks. */
    uint32_t *lens = NULL;
    size_t n = 9;
    assert_int_equal(cas_chunker_split(NULL, NULL, 0, b, 0, &lens, &n), 0);
    assert_int_equal(n, 0);
    free(lens);
}

/* Fraction of b's bytes that lie in chunks whose content also is a chunk of a. */
static double
reuse_fraction(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    uint32_t *la = NULL, *lb = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(cas_chunker_split(NULL, NULL, 0, a, alen, &la, &na), 0);
    assert_int_equal(cas_chunker_split(NULL, NULL, 0, b, blen, &lb, &nb), 0);
    uint8_t(*ids)[CAS_HASH_LEN] = malloc(na * CAS_HASH_LEN);
    assert_non_null(ids);
    size_t off = 0;
    for (size_t i = 0; i < na; i++) {
        cas_hash(a + off, la[i], ids[i]);
        off += la[i];
    }
    uint64_t reused = 0;
    off = 0;
    for (size_t i = 0; i < nb; i++) {
        uint8_t id[CAS_HASH_LEN];
        cas_hash(b + off, lb[i], id);
        for (size_t j = 0; j < na; j++) {
            if (memcmp(ids[j], id, CAS_HASH_LEN) == 0) {
                reused += lb[i];
                break;
            }
        }
        off += lb[i];
    }
    free(ids);
    free(la);
    free(lb);
    return (double)reused / (double)blen;
}

static void
test_shift_resistance(void **state)
{
    size_t len = 8 * MiB;
    uint8_t *a = random_buf(len, 5);
    static const struct {
        size_t at, n;
    } edits[] = { { 0, 1 }, { 100, 7 }, { 5000, 100 }, { 123456, 4096 } };
    for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
        size_t blen = len + edits[e].n;
        uint8_t *b = malloc(blen);
        assert_non_null(b);
        memcpy(b, a, edits[e].at);
        tu_fill_random(b + edits[e].at, edits[e].n, 1000 + e);
        memcpy(b + edits[e].at + edits[e].n, a + edits[e].at, len - edits[e].at);
        double f = reuse_fraction(a, len, b, blen);
        print_message("insert %zu bytes at %zu: %.2f%% of bytes in reused chunks\n", edits[e].n,
                      edits[e].at, 100.0 * f);
        assert_true(f >= 0.95);
        free(b);
    }
    /* Control: unrelated data shares nothing. */
    uint8_t *c = random_buf(len, 6);
    assert_true(reuse_fraction(a, len, c, len) < 0.01);
    free(c);
    free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_deterministic_and_bounds),
        cmocka_unit_test(test_low_entropy_bounds),
        cmocka_unit_test(test_split_independent),
        cmocka_unit_test(test_forced_cuts),
        cmocka_unit_test(test_region_errors),
        cmocka_unit_test(test_shift_resistance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
