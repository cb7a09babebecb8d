/* SPDX-License-Identifier: MIT */
/*
 * Kept marks, last use and the order of eviction (issue 14 item 3), on real
 * LMDB stores in temp directories: gc to a size limit removes the least
 * recently used model first (not the oldest added), plain gc leaves kept
 * models, the limit evicts them after the unkept ones, pins are never
 * evicted, and making room for a fetch either frees enough or removes
 * nothing. The fixture is in storeutil.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "libcas/store.h"
#include "storeutil.h"
#include "testutil.h"

enum {
    MODEL = 100000, /* bytes of each model */
    N = 4,
};

/* Adds N random models, oldest id[0]. */
static void
add_models(su_fixture *f, uint8_t id[N][CAS_HASH_LEN])
{
    for (int i = 0; i < N; i++) {
        uint8_t *b = su_random_bytes(MODEL, 700 + (uint64_t)i);
        assert_int_equal(su_add_buf(f->s, f->dir, b, MODEL, NULL, id[i]), 1);
        free(b);
    }
}

static bool
present(su_fixture *f, const uint8_t id[CAS_HASH_LEN])
{
    cas_model_info info;
    return cas_store_model_info(f->s, id, &info) == 0;
}

/* Names the order gc removed models in. */
typedef struct order {
    const uint8_t (*ids)[CAS_HASH_LEN];
    int got[N];
    int n;
} order;

static int
note_removed(void *userdata, const cas_model_info *info)
{
    order *o = userdata;
    for (int i = 0; i < N; i++)
        if (memcmp(o->ids[i], info->id, CAS_HASH_LEN) == 0 && o->n < N)
            o->got[o->n++] = i;
    return 0;
}

/* The limit evicts the least recently used: the oldest model, used since,
 * outlives the younger ones nobody used. */
static void
test_lru_order(void **state)
{
    su_fixture *f = *state;
    uint8_t id[N][CAS_HASH_LEN];
    add_models(f, id);
    assert_int_equal(cas_store_touch(f->s, id[0], 0), 1);
    assert_int_equal(cas_store_touch(f->s, id[0], 60), 0); /* fresh: not written again */
    assert_int_equal(cas_store_touch(f->s, id[2], 0), 1);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id[0], &info), 0);
    assert_true(info.used >= info.added);
    order o = { .ids = (const uint8_t(*)[CAS_HASH_LEN])id };
    cas_gc_result res;
    assert_int_equal(cas_store_gc_to(f->s, 2 * MODEL, CAS_GC_DRY_RUN, note_removed, &o, &res), 0);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.got[0], 1); /* never used since its add, the oldest such */
    assert_int_equal(o.got[1], 3);
    assert_int_equal(cas_store_gc_to(f->s, 2 * MODEL, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 2);
    assert_true(present(f, id[0]) && present(f, id[2]));
    assert_false(present(f, id[1]) || present(f, id[3]));
    uint8_t unknown[CAS_HASH_LEN] = { 9 };
    assert_int_equal(cas_store_touch(f->s, unknown, 0), -ENOENT);
}

/* Kept models survive plain gc; the limit takes them after the unkept
 * ones; pins never go; unpin clears the mark. */
static void
test_kept(void **state)
{
    su_fixture *f = *state;
    uint8_t id[N][CAS_HASH_LEN];
    add_models(f, id);
    assert_int_equal(cas_store_keep(f->s, id[0]), 0);
    assert_int_equal(cas_store_keep(f->s, id[0]), 0); /* idempotent */
    assert_int_equal(cas_store_keep(f->s, id[1]), 0);
    assert_int_equal(cas_store_pin(f->s, id[2]), 0);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id[0], &info), 0);
    assert_true(info.kept);
    assert_false(info.pinned);
    cas_gc_result res;
    assert_int_equal(cas_store_gc(f->s, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 1); /* only id[3]: neither kept nor pinned */
    assert_false(present(f, id[3]));
    assert_true(present(f, id[0]) && present(f, id[1]) && present(f, id[2]));

    /* id[0] used after id[1]: the limit evicts id[1] first, never id[2]. */
    assert_int_equal(cas_store_touch(f->s, id[0], 0), 1);
    assert_int_equal(cas_store_limit_set(f->s, 2 * MODEL), 0);
    assert_int_equal(cas_store_gc(f->s, CAS_GC_TO_LIMIT, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 1);
    assert_false(present(f, id[1]));
    assert_true(present(f, id[0]));
    assert_int_equal(cas_store_gc_to(f->s, 1, 0, NULL, NULL, &res), 0);
    assert_false(present(f, id[0]));
    assert_true(present(f, id[2]));

    /* A pin supersedes the mark; keeping a pinned model leaves it pinned
     * only; unpin clears both. */
    assert_int_equal(cas_store_keep(f->s, id[2]), 0);
    assert_int_equal(cas_store_model_info(f->s, id[2], &info), 0);
    assert_true(info.pinned && !info.kept);
    assert_int_equal(cas_store_unpin(f->s, id[2]), 0);
    assert_int_equal(cas_store_keep(f->s, id[2]), 0);
    assert_int_equal(cas_store_pin(f->s, id[2]), 0);
    assert_int_equal(cas_store_model_info(f->s, id[2], &info), 0);
    assert_true(info.pinned && !info.kept);
    assert_int_equal(cas_store_keep(f->s, id[2]), 0);
    assert_int_equal(cas_store_unpin(f->s, id[2]), 0);
    assert_int_equal(cas_store_model_info(f->s, id[2], &info), 0);
    assert_false(info.kept || info.pinned);
}

/* Unkept models go before kept ones, however recently used. */
static void
test_unkept_first(void **state)
{
    su_fixture *f = *state;
    uint8_t id[N][CAS_HASH_LEN];
    add_models(f, id);
    assert_int_equal(cas_store_keep(f->s, id[0]), 0);
    for (int i = 1; i < N; i++)
        assert_int_equal(cas_store_touch(f->s, id[i], 0), 1);
    order o = { .ids = (const uint8_t(*)[CAS_HASH_LEN])id };
    assert_int_equal(cas_store_gc_to(f->s, MODEL, CAS_GC_DRY_RUN, note_removed, &o, NULL), 0);
    assert_int_equal(o.n, 3);
    assert_int_equal(o.got[0], 1);
    assert_int_equal(o.got[1], 2);
    assert_int_equal(o.got[2], 3);
}

/* Room for a fetch: busy models stay; when the room cannot be made,
 * nothing is removed. */
static void
test_make_room(void **state)
{
    su_fixture *f = *state;
    uint8_t id[N][CAS_HASH_LEN];
    add_models(f, id);
    cas_gc_result res;
    /* No limit: nothing to do. */
    assert_int_equal(cas_store_make_room(f->s, 100 * MODEL, NULL, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 0);
    assert_int_equal(cas_store_pin(f->s, id[3]), 0);
    assert_int_equal(cas_store_keep(f->s, id[2]), 0);
    assert_int_equal(cas_store_limit_set(f->s, 4 * MODEL), 0);
    const uint8_t(*busy)[CAS_HASH_LEN] = (const uint8_t(*)[CAS_HASH_LEN])id[0];
    /* Pinned id[3] and busy id[0] stay: 2 * MODEL free at most. */
    assert_int_equal(cas_store_make_room(f->s, 2 * MODEL + 1, busy, 1, NULL, NULL, &res), -EDQUOT);
    assert_int_equal(res.n_models, 0);
    for (int i = 0; i < N; i++)
        assert_true(present(f, id[i]));
    assert_int_equal(cas_store_make_room(f->s, 5 * MODEL, NULL, 0, NULL, NULL, &res), -EDQUOT);
    assert_int_equal(cas_store_make_room(f->s, 2 * MODEL, busy, 1, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 2);
    assert_true(present(f, id[0]) && present(f, id[3]));
    assert_false(present(f, id[1]) || present(f, id[2]));
    /* Already room: nothing removed. */
    assert_int_equal(cas_store_make_room(f->s, 2 * MODEL, NULL, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 0);
}

/* Removing a model removes its mark and last use with it. */
static void
test_rm_clears(void **state)
{
    su_fixture *f = *state;
    uint8_t id[N][CAS_HASH_LEN];
    add_models(f, id);
    assert_int_equal(cas_store_keep(f->s, id[0]), 0);
    assert_int_equal(cas_store_touch(f->s, id[0], 0), 1);
    assert_int_equal(cas_store_rm(f->s, id[0], 0), 0);
    uint8_t *b = su_random_bytes(MODEL, 700);
    uint8_t again[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(f->s, f->dir, b, MODEL, NULL, again), 1);
    free(b);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, again, &info), 0);
    assert_false(info.kept);
    /* Re-adding a model present counts as a use: id[2] is now the least
     * recently used. */
    b = su_random_bytes(MODEL, 701);
    assert_int_equal(su_add_buf(f->s, f->dir, b, MODEL, NULL, id[1]), 0);
    free(b);
    order o = { .ids = (const uint8_t(*)[CAS_HASH_LEN])id };
    assert_int_equal(cas_store_gc_to(f->s, 3 * MODEL, CAS_GC_DRY_RUN, note_removed, &o, NULL), 0);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.got[0], 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lru_order, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_kept, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_unkept_first, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_make_room, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_rm_clears, su_setup, su_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
