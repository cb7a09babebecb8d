/* SPDX-License-Identifier: MIT */
/*
 * Model signatures in minisign's signature file format (FORMAT.md,
 * "Signatures"). Only the prehashed "ED" variant is produced and accepted:
 * it signs BLAKE2b-512 of the canonical manifest bytes, so the signature
 * binds the model id (BLAKE2b-256 of the same bytes) whatever its trusted
 * comment says.
 */
#include "libcas/sig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "libcas/sig-internal.h"

enum {
    SIG_BOX_LEN = 2 + CAS_KEYID_LEN + CAS_SIGBYTES, /* "ED" keyid sig = 74 */
    SIG_B64_LEN = (SIG_BOX_LEN + 2) / 3 * 4,
    GSIG_B64_LEN = (CAS_SIGBYTES + 2) / 3 * 4,
    PREHASH_LEN = crypto_generichash_BYTES_MAX, /* BLAKE2b-512 */
    B64_LINE_MAX = 512,
    TIMESTAMP_DIGITS_MAX = 20,
};

static const uint8_t SIGALG_HASHED[2] = { 'E', 'D' };

/* A parsed signature file; the comment pointers point into the input. */
typedef struct sig_parts {
    uint8_t box[SIG_BOX_LEN]; /* "ED" keyid sig */
    uint8_t global_sig[CAS_SIGBYTES];
    const uint8_t *tc; /* trusted comment text, without prefix or newline */
    size_t tc_len;
} sig_parts;

static int
parse_parts(const uint8_t *sig, size_t sig_len, sig_parts *p)
{
    const uint8_t *text, *line;
    size_t tlen, n;
    if (!sig)
        return -EINVAL;
    if (sig_len > CAS_KEYFILE_MAXBYTES)
        return -EMSGSIZE;
    cas__lines c = { sig, sig_len, 0 };
    /* untrusted comment: ignored, never shown. */
    int r = cas__lines_comment(&c, CAS__COMMENT_PREFIX, CAS_COMMENT_MAXBYTES, false, &text, &tlen);
    if (r < 0)
        return r;
    /* base64("ED" keyid sig) */
    r = cas__lines_next(&c, B64_LINE_MAX, false, &line, &n);
    if (r < 0)
        return r;
    r = cas__b64_decode_exact(line, n, p->box, SIG_BOX_LEN);
    if (r < 0)
        return r;
    if (memcmp(p->box, SIGALG_HASHED, 2) != 0)
        return -ENOTSUP; /* legacy "Ed" or unknown */
    /* trusted comment */
    r = cas__lines_comment(&c, CAS__TRUSTED_COMMENT_PREFIX, CAS_TRUSTED_COMMENT_MAXBYTES, false,
                           &p->tc, &p->tc_len);
    if (r < 0)
        return r;
    /* base64(global signature), the last line; its newline is optional. */
    r = cas__lines_next(&c, B64_LINE_MAX, true, &line, &n);
    if (r < 0)
        return r;
    r = cas__b64_decode_exact(line, n, p->global_sig, CAS_SIGBYTES);
    if (r < 0)
        return r;
    if (c.off != c.len)
        return -EBADMSG;
    return 0;
}

static bool
has_prefix(const uint8_t *s, size_t n, const char *prefix, size_t *ret_plen)
{
    size_t plen = strlen(prefix);
    *ret_plen = plen;
    return n >= plen && memcmp(s, prefix, plen) == 0;
}

static int
parse_model_id(const uint8_t *s, size_t n, uint8_t out[static CAS_MODEL_ID_LEN])
{
    /* Exactly 64 lower-case hex digits: the one human encoding of ids. */
    if (n != 2 * CAS_MODEL_ID_LEN)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -EBADMSG;
    size_t bin_len = 0;
    if (sodium_hex2bin(out, CAS_MODEL_ID_LEN, (const char *)s, n, NULL, &bin_len, NULL) != 0 ||
        bin_len != CAS_MODEL_ID_LEN)
        return -EBADMSG;
    return 0;
}

static bool
name_is_valid(const uint8_t *s, size_t n)
{
    if (n > CAS_SIG_NAME_MAXBYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/*
 * Splits a trusted comment into fields separated by spaces or tabs.
 * "timestamp:" (decimal) and "nvx-model:" (64 hex) may appear once each and
 * must be well formed; "name:" takes the rest of the comment; other words
 * (minisign's "file:x", "hashed", free text) are ignored.
 */
static int
parse_trusted_comment(const uint8_t *tc, size_t n, cas_sig_info *info)
{
    size_t i = 0;
    while (i < n) {
        if (tc[i] == ' ' || tc[i] == '\t') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && tc[j] != ' ' && tc[j] != '\t')
            j++;
        const uint8_t *w = tc + i;
        size_t wl = j - i, pl;
        if (has_prefix(w, wl, "timestamp:", &pl)) {
            if (info->has_timestamp || wl == pl || wl - pl > TIMESTAMP_DIGITS_MAX)
                return -EBADMSG;
            uint64_t v = 0;
            for (size_t k = pl; k < wl; k++) {
                if (w[k] < '0' || w[k] > '9')
                    return -EBADMSG;
                uint64_t d = (uint64_t)(w[k] - '0');
                if (v > (UINT64_MAX - d) / 10)
                    return -EBADMSG;
                v = v * 10 + d;
            }
            info->has_timestamp = true;
            info->timestamp = v;
        } else if (has_prefix(w, wl, "nvx-model:", &pl)) {
            if (info->has_model_id || parse_model_id(w + pl, wl - pl, info->model_id) < 0)
                return -EBADMSG;
            info->has_model_id = true;
        } else if (has_prefix(w, n - i, "name:", &pl)) {
            const uint8_t *name = w + pl;
            size_t nl = n - i - pl;
            if (!name_is_valid(name, nl))
                return -EBADMSG;
            memcpy(info->name, name, nl);
            info->name[nl] = '\0';
            info->has_name = true;
            break;
        }
        i = j;
    }
    return 0;
}

static int
parts_to_info(const sig_parts *p, cas_sig_info *ret)
{
    cas_sig_info *info = malloc(sizeof(*info));
    if (!info)
        return -ENOMEM;
    memset(info, 0, sizeof(*info));
    memcpy(info->keyid, p->box + 2, CAS_KEYID_LEN);
    memcpy(info->trusted_comment, p->tc, p->tc_len);
    info->trusted_comment[p->tc_len] = '\0';
    int r = parse_trusted_comment(p->tc, p->tc_len, info);
    if (r >= 0)
        memcpy(ret, info, sizeof(*info));
    free(info);
    return r;
}

int
cas_sig_parse(const uint8_t *sig, size_t sig_len, cas_sig_info *ret)
{
    sig_parts p;
    if (!ret)
        return -EINVAL;
    int r = parse_parts(sig, sig_len, &p);
    if (r < 0)
        return r;
    return parts_to_info(&p, ret);
}

int
cas_sig_sign(const cas_seckey *sk, const uint8_t *manifest, size_t manifest_len, const char *name,
             uint64_t timestamp, char **ret_sig, size_t *ret_len)
{
    uint8_t prehash[PREHASH_LEN], id[CAS_MODEL_ID_LEN], box[SIG_BOX_LEN];
    uint8_t gbuf[CAS_SIGBYTES + CAS_TRUSTED_COMMENT_MAXBYTES];
    char idhex[2 * CAS_MODEL_ID_LEN + 1], kid[CAS_KEYID_HEX_SIZE];
    char tc[CAS_TRUSTED_COMMENT_MAXBYTES + 1];
    char sig_b64[SIG_B64_LEN + 1], gsig_b64[GSIG_B64_LEN + 1];
    cas_pubkey pub;
    if (!sk || (!manifest && manifest_len) || !ret_sig)
        return -EINVAL;
    if (name && !name_is_valid((const uint8_t *)name, strlen(name)))
        return -EINVAL;
    if (cas_sig_init() < 0)
        return -ENOMEM;
    cas_seckey_public(sk, &pub);

    /* Model id and prehash of the manifest bytes. */
    crypto_generichash(id, sizeof(id), manifest, manifest_len, NULL, 0);
    crypto_generichash(prehash, sizeof(prehash), manifest, manifest_len, NULL, 0);
    sodium_bin2hex(idhex, sizeof(idhex), id, sizeof(id));
    int tn = snprintf(tc, sizeof(tc), "timestamp:%llu nvx-model:%s%s%s",
                      (unsigned long long)timestamp, idhex, name ? " name:" : "", name ? name : "");
    if (tn < 0 || (size_t)tn >= sizeof(tc))
        return -EINVAL;

    /* sig = Ed25519(BLAKE2b-512(manifest)) */
    memcpy(box, SIGALG_HASHED, 2);
    memcpy(box + 2, pub.keyid, CAS_KEYID_LEN);
    if (cas__seckey_sign(sk, box + 2 + CAS_KEYID_LEN, prehash, sizeof(prehash)) < 0)
        return -EINVAL;
    /* global_sig = Ed25519(sig || trusted comment) */
    memcpy(gbuf, box + 2 + CAS_KEYID_LEN, CAS_SIGBYTES);
    memcpy(gbuf + CAS_SIGBYTES, tc, (size_t)tn);
    uint8_t gsig[CAS_SIGBYTES];
    if (cas__seckey_sign(sk, gsig, gbuf, CAS_SIGBYTES + (size_t)tn) < 0)
        return -EINVAL;

    sodium_bin2base64(sig_b64, sizeof(sig_b64), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(gsig_b64, sizeof(gsig_b64), gsig, sizeof(gsig),
                      sodium_base64_VARIANT_ORIGINAL);
    cas_keyid_format(pub.keyid, kid);
#define SIG_FILE_FMT                                                                         \
    CAS__COMMENT_PREFIX "signature from nvx secret key %s\n%s\n" CAS__TRUSTED_COMMENT_PREFIX \
                        "%s\n%s\n"
    int n = snprintf(NULL, 0, SIG_FILE_FMT, kid, sig_b64, tc, gsig_b64);
    if (n < 0)
        return -EINVAL;
    char *out = malloc((size_t)n + 1);
    if (!out)
        return -ENOMEM;
    snprintf(out, (size_t)n + 1, SIG_FILE_FMT, kid, sig_b64, tc, gsig_b64);
    *ret_sig = out;
    if (ret_len)
        *ret_len = (size_t)n;
    return 0;
}

int
cas_sig_verify(const cas_pubkey *pk, const uint8_t *sig, size_t sig_len, const uint8_t *manifest,
               size_t manifest_len, cas_sig_info *ret_info)
{
    sig_parts p;
    uint8_t prehash[PREHASH_LEN], id[CAS_MODEL_ID_LEN];
    uint8_t gbuf[CAS_SIGBYTES + CAS_TRUSTED_COMMENT_MAXBYTES];
    cas_sig_info *info = NULL;
    if (!pk || (!manifest && manifest_len))
        return -EINVAL;
    if (cas_sig_init() < 0)
        return -ENOMEM;
    int r = parse_parts(sig, sig_len, &p);
    if (r < 0)
        return r;
    if (memcmp(p.box + 2, pk->keyid, CAS_KEYID_LEN) != 0)
        return -ENOKEY;
    info = malloc(sizeof(*info));
    if (!info)
        return -ENOMEM;
    r = parts_to_info(&p, info);
    if (r < 0)
        goto out;

    crypto_generichash(prehash, sizeof(prehash), manifest, manifest_len, NULL, 0);
    if (crypto_sign_verify_detached(p.box + 2 + CAS_KEYID_LEN, prehash, sizeof(prehash), pk->pk) !=
        0) {
        r = -EBADMSG;
        goto out;
    }
    memcpy(gbuf, p.box + 2 + CAS_KEYID_LEN, CAS_SIGBYTES);
    memcpy(gbuf + CAS_SIGBYTES, p.tc, p.tc_len);
    if (crypto_sign_verify_detached(p.global_sig, gbuf, CAS_SIGBYTES + p.tc_len, pk->pk) != 0) {
        r = -EBADMSG;
        goto out;
    }
    /* The comment is now authentic; it must not name another model. */
    crypto_generichash(id, sizeof(id), manifest, manifest_len, NULL, 0);
    if (info->has_model_id && memcmp(info->model_id, id, sizeof(id)) != 0) {
        r = -EBADMSG;
        goto out;
    }
    if (ret_info)
        memcpy(ret_info, info, sizeof(*info));
out:
    free(info);
    return r;
}
