/* SPDX-License-Identifier: MIT */
/*
 * The peer-exchange address book (daemon/pex.h).
 */
#include "daemon/pex.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct known {
    uint8_t node[PROTO_ID_LEN];
    char addr[PROTO_ADDR_MAX + 1];
    uint8_t source;
    uint64_t seen_ms;
} known;

struct nvx_pex {
    known *k;
    size_t n, max;
};

int
nvx_pex_new(size_t max, nvx_pex **ret)
{
    if (max == 0 || !ret)
        return -EINVAL;
    nvx_pex *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->k = calloc(max, sizeof(*x->k));
    if (!x->k) {
        free(x);
        return -ENOMEM;
    }
    x->max = max;
    *ret = x;
    return 0;
}

void
nvx_pex_free(nvx_pex *x)
{
    if (!x)
        return;
    free(x->k);
    free(x);
}

static bool
printable(const uint8_t *p, size_t len)
{
    if (len < 1 || len > PROTO_ADDR_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

bool
nvx_pex_addr_numeric(const uint8_t *addr, size_t len)
{
    if (!printable(addr, len))
        return false;
    char s[PROTO_ADDR_MAX + 1];
    memcpy(s, addr, len);
    s[len] = '\0';
    const char *h = strncmp(s, "tcp://", 6) == 0 ? s + 6 : s;
    char *port;
    uint8_t buf[16];
    if (h[0] == '[') {
        char *rb = strchr(h, ']');
        if (!rb || rb[1] != ':')
            return false;
        *rb = '\0';
        port = rb + 2;
        if (inet_pton(AF_INET6, h + 1, buf) != 1) /* no zone: link-local is not gossip */
            return false;
    } else {
        char *colon = strchr(h, ':');
        if (!colon || strchr(colon + 1, ':'))
            return false;
        *colon = '\0';
        port = colon + 1;
        if (inet_pton(AF_INET, h, buf) != 1) /* dotted quad only: "1.2.3" is refused */
            return false;
    }
    size_t pl = strlen(port);
    if (pl < 1 || pl > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (port[i] < '0' || port[i] > '9')
            return false;
        v = v * 10 + (unsigned)(port[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static known *
find(const nvx_pex *x, const uint8_t node[PROTO_ID_LEN])
{
    for (size_t i = 0; i < x->n; i++)
        if (memcmp(x->k[i].node, node, PROTO_ID_LEN) == 0)
            return &x->k[i];
    return NULL;
}

int
nvx_pex_put(nvx_pex *x, const uint8_t node[static PROTO_ID_LEN], const uint8_t *addr, size_t len,
            int source, uint64_t now_ms)
{
    if (!printable(addr, len) || source < 0 || source >= _NVX_PEX_SOURCE_MAX)
        return -EINVAL;
    if (source == NVX_PEX_GOSSIP && !nvx_pex_addr_numeric(addr, len))
        return -EADDRNOTAVAIL;
    known *k = find(x, node);
    if (k && k->source > source) {
        bool same = strlen(k->addr) == len && memcmp(k->addr, addr, len) == 0;
        return same ? 0 : -EPERM;
    }
    bool news = !k || strlen(k->addr) != len || memcmp(k->addr, addr, len) != 0;
    if (!k) {
        if (x->n < x->max) {
            k = &x->k[x->n++];
        } else {
            /* The worst source goes first, then the least recently seen:
             * a flood of PEERS never pushes out what we learned ourselves. */
            k = &x->k[0];
            for (size_t i = 1; i < x->n; i++) {
                const known *c = &x->k[i];
                if (c->source < k->source || (c->source == k->source && c->seen_ms < k->seen_ms))
                    k = &x->k[i];
            }
            if (k->source > source)
                return -EPERM;
        }
        memcpy(k->node, node, PROTO_ID_LEN);
    }
    memcpy(k->addr, addr, len);
    k->addr[len] = '\0';
    k->source = (uint8_t)source;
    k->seen_ms = now_ms;
    return news ? 1 : 0;
}

int
nvx_pex_forget(nvx_pex *x, const uint8_t node[static PROTO_ID_LEN], const char *addr)
{
    known *k = find(x, node);
    if (!k || k->source != NVX_PEX_GOSSIP || !addr)
        return -ENOENT;
    const char *a = addr, *b = k->addr;
    if (strncmp(a, "tcp://", 6) == 0)
        a += 6;
    if (strncmp(b, "tcp://", 6) == 0)
        b += 6;
    if (strcmp(a, b) != 0)
        return -ENOENT;
    *k = x->k[--x->n];
    return 0;
}

int
nvx_pex_get(const nvx_pex *x, const uint8_t node[static PROTO_ID_LEN], const char **ret_addr)
{
    const known *k = find(x, node);
    if (!k)
        return -ENOENT;
    *ret_addr = k->addr;
    return k->source;
}

size_t
nvx_pex_count(const nvx_pex *x)
{
    return x->n;
}

void
nvx_pex_at(const nvx_pex *x, size_t i, const uint8_t **ret_node, const char **ret_addr)
{
    *ret_node = x->k[i].node;
    *ret_addr = x->k[i].addr;
}
