/* SPDX-License-Identifier: MIT */
/*
 * Name records as BEP 44 mutable items (libcas/namerec.h, "On the
 * BitTorrent DHT"). Only the item's value and signed bytes live here; the
 * DHT itself is the daemon's (daemon/dht.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "libcas/namerec.h"
#include "libcas/sig-internal.h"

int
cas_namerec_dht_value(const cas_namerec *rec, uint8_t *out, size_t cap)
{
    uint8_t buf[CAS_NAMEREC_MAX];
    if (!rec || !out || rec->sequence > INT64_MAX)
        return -EINVAL;
    int n = cas_namerec_encode(rec, buf, sizeof(buf));
    if (n < 0)
        return n;
    char head[8];
    int h = snprintf(head, sizeof(head), "%d:", n);
    if (cap < (size_t)h + (size_t)n)
        return -EMSGSIZE;
    memcpy(out, head, (size_t)h);
    memcpy(out + h, buf, (size_t)n);
    return h + n;
}

int
cas_namerec_dht_signed(const cas_namerec *rec, uint8_t *out, size_t cap)
{
    uint8_t v[CAS_NAMEREC_DHT_V_MAX];
    int vn = cas_namerec_dht_value(rec, v, sizeof(v));
    if (vn < 0)
        return vn;
    char head[64], mid[48];
    int h = snprintf(head, sizeof(head), "4:salt%zu:", rec->name_len);
    int m = snprintf(mid, sizeof(mid), "3:seqi%" PRId64 "e1:v", (int64_t)rec->sequence);
    size_t need = (size_t)h + rec->name_len + (size_t)m + (size_t)vn;
    if (cap < need)
        return -EMSGSIZE;
    uint8_t *p = out;
    memcpy(p, head, (size_t)h);
    p += h;
    memcpy(p, rec->name, rec->name_len);
    p += rec->name_len;
    memcpy(p, mid, (size_t)m);
    p += m;
    memcpy(p, v, (size_t)vn);
    return (int)need;
}

int
cas_namerec_dht_sign(const cas_seckey *sk, const cas_namerec *rec,
                     uint8_t ret_sig[static CAS_SIGBYTES])
{
    cas_pubkey pk;
    cas_seckey_public(sk, &pk);
    if (sodium_memcmp(pk.pk, rec->pk, CAS_PK_LEN) != 0)
        return -EINVAL;
    uint8_t msg[CAS_NAMEREC_DHT_SIGNED_MAX];
    int n = cas_namerec_dht_signed(rec, msg, sizeof(msg));
    if (n < 0)
        return n;
    return cas__seckey_sign(sk, ret_sig, msg, (size_t)n);
}

int
cas_namerec_dht_decode(const uint8_t *v, size_t len, cas_namerec *ret)
{
    /* "<len>:": 3 digits at most (CAS_NAMEREC_MAX < 1000), no leading 0. */
    size_t i = 0, n = 0;
    while (i < len && i < 4 && v[i] >= '0' && v[i] <= '9')
        n = n * 10 + (size_t)(v[i++] - '0');
    if (i == 0 || i > 3 || (v[0] == '0' && i > 1) || i >= len || v[i] != ':')
        return -EBADMSG;
    i++;
    if (len - i != n)
        return -EBADMSG;
    return cas_namerec_decode(v + i, n, ret);
}
