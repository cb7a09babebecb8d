/* SPDX-License-Identifier: MIT */
#include "libcas/run-policy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/sig.h"

bool
cas_run_policy_env(void)
{
    const char *e = getenv(CAS_RUN_REQUIRE_TRUSTED_ENV);
    return e && (strcmp(e, "1") == 0 || strcmp(e, "yes") == 0 || strcmp(e, "true") == 0);
}

/* The first bad chunk verify reports (verify stops at it). */
static int
on_problem(void *userdata, const cas_store_problem *p)
{
    cas_store_problem *first = userdata;
    if (first->error == 0)
        *first = *p;
    return 0;
}

typedef struct trust_acc {
    cas_store *s;
    const uint8_t *manifest;
    size_t len;
    size_t n;
    bool trusted;
} trust_acc;

/* One attached blob: trusted only when a keyring key verifies it. */
static int
on_sig(void *userdata, const void *blob, size_t len)
{
    trust_acc *a = userdata;
    a->n++;
    cas_sig_info info;
    if (a->trusted || cas_sig_parse(blob, len, &info) < 0)
        return 0;
    uint8_t *kblob = NULL;
    size_t klen = 0;
    char *kname = NULL;
    if (cas_store_key_get(a->s, info.keyid, CAS_KEYID_LEN, &kblob, &klen, &kname) < 0)
        return 0;
    cas_pubkey pk;
    if (cas_pubkey_decode(kblob, klen, &pk) == 0 &&
        cas_sig_verify(&pk, blob, len, a->manifest, a->len, &info) == 0)
        a->trusted = true;
    free(kblob);
    free(kname);
    return 0;
}

static int
on_pending(void *userdata, const void *blob, size_t len)
{
    trust_acc *a = userdata;
    (void)blob;
    (void)len;
    a->n++;
    return 0;
}

static int
check_trusted(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_run_verdict *v)
{
    trust_acc a = { .s = s };
    uint8_t *mb = NULL;
    int r = cas_store_manifest_get(s, id, &mb, &a.len);
    a.manifest = mb;
    if (r == 0)
        r = cas_store_sig_list(s, id, on_sig, &a);
    if (r == 0)
        r = cas_store_sig_list_pending(s, id, on_pending, &a);
    free(mb);
    if (r < 0)
        return r;
    v->n_sigs = a.n;
    return a.trusted ? 0 : -EACCES;
}

int
cas_run_policy_check(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags,
                     cas_run_verdict *ret)
{
    memset(ret, 0, sizeof(*ret));
    int r = cas_store_model_info(s, id, &ret->info);
    if (r < 0)
        return r;
    if (ret->info.state != CAS_MODEL_COMPLETE || ret->info.n_present != ret->info.n_chunks)
        return -EAGAIN;
    cas_store_verify_opts vo = { .problem = on_problem, .userdata = &ret->bad };
    r = cas_store_verify(s, id, &vo);
    if (r < 0)
        return r;
    if (flags & CAS_RUN_REQUIRE_TRUSTED)
        return check_trusted(s, id, ret);
    return 0;
}
