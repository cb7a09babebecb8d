/* SPDX-License-Identifier: MIT */
/*
 * The node's admission policy (daemon/admit.h): which connection gets a
 * session slot, and which session makes room. Pure: the node passes its
 * sessions in and gets a verdict out.
 */
#include "daemon/admit.h"

#include <stdlib.h>
#include <string.h>

#include "libcas/hash.h"
#include "transport/tcp.h"

enum {
    FAM_OTHER = 0,
    FAM_V4 = 4,
    FAM_V6 = 6,
};

static void
other_key(const char *addr, nvx_admit_key *ret)
{
    uint8_t h[CAS_HASH_LEN];
    cas_hash(addr, strlen(addr), h);
    ret->b[0] = FAM_OTHER;
    memcpy(ret->b + 1, h, NVX_ADMIT_KEY_LEN - 1);
}

void
nvx_admit_keys(const char *addr, bool prefix_loopback, nvx_admit_key *ret_addr,
               nvx_admit_key *ret_prefix, bool *ret_has_prefix)
{
    memset(ret_addr, 0, sizeof(*ret_addr));
    memset(ret_prefix, 0, sizeof(*ret_prefix));
    *ret_has_prefix = false;
    struct sockaddr_storage ss;
    if (!addr || tp_tcp_addr_parse(addr, 1, &ss) < 0) {
        other_key(addr ? addr : "", ret_addr);
        return;
    }
    uint8_t ip[16];
    bool v4 = ss.ss_family == AF_INET;
    if (v4) {
        memcpy(ip, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
    } else {
        memcpy(ip, &((const struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
        if (memcmp(ip, mapped, 12) == 0) { /* ::ffff:a.b.c.d is an IPv4 host */
            memmove(ip, ip + 12, 4);
            v4 = true;
        }
    }
    static const uint8_t v6_loop[16] = { [15] = 1 };
    bool loopback = v4 ? ip[0] == 127 : memcmp(ip, v6_loop, 16) == 0;
    ret_addr->b[0] = ret_prefix->b[0] = v4 ? FAM_V4 : FAM_V6;
    memcpy(ret_addr->b + 1, ip, v4 ? 4 : 16);
    memcpy(ret_prefix->b + 1, ip, v4 ? 3 : 6); /* /24, /48 */
    *ret_has_prefix = !loopback || prefix_loopback;
}

unsigned
nvx_admit_inbound_max(unsigned max_peers)
{
    /* A single-slot node (max_peers 1) keeps it for whoever comes. */
    unsigned reserve = max_peers / 4 ? max_peers / 4 : max_peers >= 2;
    return max_peers - reserve;
}

static uint64_t
last_useful(const nvx_admit_peer *p)
{
    return p->t_useful_ms > p->t_start_ms ? p->t_useful_ms : p->t_start_ms;
}

typedef struct keyed {
    nvx_admit_key prefix;
    size_t idx;
    size_t crowd; /* sessions sharing the prefix */
} keyed;

static int
keyed_cmp(const void *a, const void *b)
{
    return memcmp(((const keyed *)a)->prefix.b, ((const keyed *)b)->prefix.b, NVX_ADMIT_KEY_LEN);
}

/* The idle session to evict: not protected, established, quiet for
 * NVX_ADMIT_IDLE_MS; from the prefix with the most sessions (an attacker's
 * network before the scattered honest peers), then the longest quiet.
 * inbound_only limits it to inbound sessions. Returns n when there is
 * none. Sorting keeps it O(n log n): max_peers may be large. */
static size_t
idle_victim(const nvx_admit_cfg *cfg, const nvx_admit_peer *peers, size_t n, bool inbound_only,
            uint64_t now_ms)
{
    keyed *k = calloc(n ? n : 1, sizeof(*k));
    if (!k)
        return n;
    for (size_t i = 0; i < n; i++) {
        nvx_admit_key a;
        bool has;
        nvx_admit_keys(peers[i].addr, cfg->prefix_loopback, &a, &k[i].prefix, &has);
        if (!has)
            k[i].prefix = a; /* its own group */
        k[i].idx = i;
    }
    qsort(k, n, sizeof(*k), keyed_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && keyed_cmp(&k[i], &k[j]) == 0)
            j++;
        for (size_t x = i; x < j; x++)
            k[x].crowd = j - i;
        i = j;
    }
    size_t best = n, best_crowd = 0;
    uint64_t best_t = 0;
    for (size_t x = 0; x < n; x++) {
        const nvx_admit_peer *p = &peers[k[x].idx];
        if (p->protected_ || !p->established || (inbound_only && !p->inbound))
            continue;
        uint64_t t = last_useful(p);
        if (now_ms < t || now_ms - t < NVX_ADMIT_IDLE_MS)
            continue;
        if (best == n || k[x].crowd > best_crowd || (k[x].crowd == best_crowd && t < best_t)) {
            best = k[x].idx;
            best_crowd = k[x].crowd;
            best_t = t;
        }
    }
    free(k);
    return best;
}

static int
evict(size_t victim, size_t n, size_t *ret_victim)
{
    if (victim >= n)
        return NVX_ADMIT_NO;
    *ret_victim = victim;
    return NVX_ADMIT_EVICT;
}

int
nvx_admit_inbound(const nvx_admit_cfg *cfg, const nvx_admit_peer *peers, size_t n, const char *addr,
                  uint64_t now_ms, size_t *ret_victim)
{
    unsigned per_addr = cfg->per_addr ? cfg->per_addr : NVX_ADMIT_PER_ADDR_DEFAULT;
    unsigned per_prefix = cfg->per_prefix ? cfg->per_prefix : NVX_ADMIT_PER_PREFIX_DEFAULT;
    nvx_admit_key ka, kp;
    bool has_prefix;
    nvx_admit_keys(addr, cfg->prefix_loopback, &ka, &kp, &has_prefix);
    size_t in = 0, hs = 0, same_addr = 0, same_prefix = 0;
    size_t oldest = n, oldest_addr = n, oldest_prefix = n;
    for (size_t i = 0; i < n; i++) {
        const nvx_admit_peer *p = &peers[i];
        if (!p->inbound)
            continue;
        in++;
        nvx_admit_key a, pk;
        bool has;
        nvx_admit_keys(p->addr, cfg->prefix_loopback, &a, &pk, &has);
        bool sa = memcmp(&a, &ka, sizeof(a)) == 0;
        bool sp = has_prefix && has && memcmp(&pk, &kp, sizeof(pk)) == 0;
        same_addr += sa;
        same_prefix += sp;
        if (p->established || p->protected_)
            continue;
        hs++;
        if (oldest == n || p->t_start_ms < peers[oldest].t_start_ms)
            oldest = i;
        if (sa && (oldest_addr == n || p->t_start_ms < peers[oldest_addr].t_start_ms))
            oldest_addr = i;
        if (sp && (oldest_prefix == n || p->t_start_ms < peers[oldest_prefix].t_start_ms))
            oldest_prefix = i;
    }
    if (hs >= NVX_ADMIT_HANDSHAKING_MAX)
        return evict(oldest, n, ret_victim);
    if (same_addr >= per_addr)
        return evict(oldest_addr, n, ret_victim);
    if (has_prefix && same_prefix >= per_prefix)
        return evict(oldest_prefix, n, ret_victim);
    if (in >= nvx_admit_inbound_max(cfg->max_peers) || n >= cfg->max_peers) {
        if (oldest < n)
            return evict(oldest, n, ret_victim);
        return evict(idle_victim(cfg, peers, n, true, now_ms), n, ret_victim);
    }
    return NVX_ADMIT_YES;
}

int
nvx_admit_dial(const nvx_admit_cfg *cfg, const nvx_admit_peer *peers, size_t n, int kind,
               uint64_t now_ms, size_t *ret_victim)
{
    if (n < cfg->max_peers)
        return NVX_ADMIT_YES;
    if (kind != NVX_ADMIT_DIAL_USEFUL)
        return NVX_ADMIT_NO;
    size_t oldest = n;
    for (size_t i = 0; i < n; i++)
        if (peers[i].inbound && !peers[i].established && !peers[i].protected_ &&
            (oldest == n || peers[i].t_start_ms < peers[oldest].t_start_ms))
            oldest = i;
    if (oldest < n)
        return evict(oldest, n, ret_victim);
    return evict(idle_victim(cfg, peers, n, false, now_ms), n, ret_victim);
}
