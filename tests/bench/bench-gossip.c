/* SPDX-License-Identifier: MIT */
/*
 * How many gossip records one core handles (daemon/gossip.c): new signed
 * provider records and name records arriving in full ANNOUNCE batches from
 * one of 8 sessions and relayed to the 7 others (messages built, not sent),
 * and the same batches again as duplicates. Baseline, measured in the same
 * run: only the Ed25519 checks of the same records (proto_provider_verify,
 * cas_namerec_verify), the cost no relay can skip. Prints the median of RUNS
 * runs with min and max, in records per second of thread CPU time.
 *
 *   cc -O2 -std=c17 -D_POSIX_C_SOURCE=200809L -I. tests/bench/bench-gossip.c \
 *      daemon/gossip.c BUILD/proto/libnvxproto.a BUILD/libcas/libcas.a \
 *      -lsodium -lb2 -llmdb -lpthread -o bench-gossip && ./bench-gossip [runs] [records]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/gossip.h"
#include "libcas/namerec.h"
#include "proto/session.h"

enum {
    SESSIONS = 8,
    RUNS_MAX = 51
};

static double
now_s(void)
{
    struct timespec ts;
    /* Thread CPU time: the machine is shared, wall time would measure the
     * neighbours. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
send_cb(void *ud, uint64_t peer, const proto_msg *m)
{
    (void)peer;
    (void)m;
    (*(uint64_t *)ud)++;
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
report(const char *what, double *v, int runs, double base_median)
{
    qsort(v, (size_t)runs, sizeof(*v), cmp_double);
    double med = v[runs / 2];
    printf("%-34s median %10.0f rec/s  (min %.0f, max %.0f)", what, med, v[0], v[runs - 1]);
    if (base_median > 0)
        printf("  ratio %.2f", med / base_median);
    printf("\n");
}

typedef struct recs {
    size_t n;
    proto_provider_record *prov;
    cas_namerec *names;
    uint8_t (*proofs)[CAS_NAMEREC_PROOF_LEN];
} recs;

static void
make_records(recs *r, size_t n)
{
    r->n = n;
    r->prov = calloc(n, sizeof(*r->prov));
    r->names = calloc(n, sizeof(*r->names));
    r->proofs = calloc(n, sizeof(*r->proofs));
    proto_identity *ids[64];
    for (int i = 0; i < 64; i++)
        if (proto_identity_generate(&ids[i]) < 0)
            abort();
    cas_seckey *sk = NULL;
    if (cas_seckey_generate(&sk) < 0)
        abort();
    uint64_t t = (uint64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        proto_provider_record *p = &r->prov[i];
        memcpy(p->model_id, &i, sizeof(i));
        p->model_id[31] = 1;
        p->time = t;
        p->ttl_s = 1800;
        p->hops = 4;
        if (proto_provider_sign(ids[i % 64], p) < 0)
            abort();
        char name[32];
        snprintf(name, sizeof(name), "model-%zu", i);
        if (cas_namerec_sign(sk, name, 1, t, p->model_id, &r->names[i]) < 0)
            abort();
        cas_namerec_proof(&r->names[i], r->proofs[i]);
    }
    for (int i = 0; i < 64; i++)
        proto_identity_free(ids[i]);
    cas_seckey_free(sk);
}

/* Feeds all records (providers or names) in ANNOUNCE batches from session
 * 1; returns the seconds taken. dup: feed them twice, time the second. */
static double
feed(const recs *r, bool names, bool dup, proto_msg *m)
{
    uint64_t sent = 0;
    nvx_gossip_ops ops = { .send = send_cb };
    nvx_gossip_cfg cfg = {
        .ops = &ops,
        .userdata = &sent,
        .records_max = (uint32_t)r->n + 16,
        .burst = 1000000,
        .rate_per_s = 1000000,
    };
    memset(cfg.node_id, 0xee, sizeof(cfg.node_id));
    nvx_gossip *g = NULL;
    if (nvx_gossip_new(&cfg, &g) < 0)
        abort();
    uint64_t now = (uint64_t)time(NULL) * 1000;
    for (int s = 0; s < SESSIONS; s++) {
        uint8_t node[32];
        memset(node, 0x10 + s, sizeof(node));
        nvx_gossip_peer_up(g, (uint64_t)s + 1, node, now);
    }
    double t0 = 0;
    for (int pass = 0; pass < (dup ? 2 : 1); pass++) {
        t0 = now_s();
        for (size_t i = 0; i < r->n; i += PROTO_ANNOUNCE_MAX) {
            memset(m, 0, sizeof(*m));
            m->type = PROTO_MSG_ANNOUNCE;
            size_t k = r->n - i < PROTO_ANNOUNCE_MAX ? r->n - i : PROTO_ANNOUNCE_MAX;
            m->u.announce.n = k;
            for (size_t j = 0; j < k; j++) {
                proto_record *pr = &m->u.announce.records[j];
                if (!names) {
                    pr->kind = PROTO_RECORD_PROVIDER;
                    pr->u.provider = r->prov[i + j];
                    continue;
                }
                const cas_namerec *n = &r->names[i + j];
                pr->kind = PROTO_RECORD_NAME;
                proto_name_record *p = &pr->u.name;
                memcpy(p->key_id, n->keyid, 8);
                p->name.p = (const uint8_t *)n->name;
                p->name.len = n->name_len;
                p->sequence = n->sequence;
                p->time = n->time;
                memcpy(p->model_id, n->model_id, 32);
                p->ttl_s = 3600;
                p->hops = 4;
                p->sig.p = r->proofs[i + j];
                p->sig.len = CAS_NAMEREC_PROOF_LEN;
            }
            nvx_gossip_on_message(g, 1, m, now);
        }
    }
    double dt = now_s() - t0;
    nvx_gossip_stats st;
    nvx_gossip_stats_get(g, &st);
    if (st.accepted != r->n || st.invalid != 0)
        fprintf(stderr, "unexpected: accepted %llu invalid %llu\n", (unsigned long long)st.accepted,
                (unsigned long long)st.invalid);
    nvx_gossip_free(g);
    return dt;
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    size_t n = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 4096;
    if (runs < 1 || runs > RUNS_MAX || n < PROTO_ANNOUNCE_MAX)
        return fprintf(stderr, "usage: bench-gossip [runs 1..%d] [records >= 32]\n", RUNS_MAX), 2;
    recs r;
    make_records(&r, n);
    proto_msg *m = malloc(sizeof(*m));
    double base_p[RUNS_MAX], base_n[RUNS_MAX], new_p[RUNS_MAX], new_n[RUNS_MAX], dup_p[RUNS_MAX];
    for (int k = 0; k < runs; k++) {
        double t0 = now_s();
        for (size_t i = 0; i < n; i++)
            if (!proto_provider_verify(&r.prov[i]))
                abort();
        base_p[k] = (double)n / (now_s() - t0);
        t0 = now_s();
        for (size_t i = 0; i < n; i++)
            if (cas_namerec_verify(&r.names[i]) < 0)
                abort();
        base_n[k] = (double)n / (now_s() - t0);
        new_p[k] = (double)n / feed(&r, false, false, m);
        new_n[k] = (double)n / feed(&r, true, false, m);
        dup_p[k] = (double)n / feed(&r, false, true, m);
    }
    printf("bench-gossip: %zu records, %d runs, %d sessions (relay to %d)\n", n, runs, SESSIONS,
           SESSIONS - 1);
    report("baseline: provider verify only", base_p, runs, 0);
    double bp = base_p[runs / 2];
    report("gossip: new provider records", new_p, runs, bp);
    report("gossip: duplicate provider records", dup_p, runs, bp);
    report("baseline: name record verify only", base_n, runs, 0);
    report("gossip: new name records", new_n, runs, base_n[runs / 2]);
    free(m);
    free(r.prov);
    free(r.names);
    free(r.proofs);
    return 0;
}
