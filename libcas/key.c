/* SPDX-License-Identifier: MIT */
/*
 * minisign public and secret key files (layouts in libcas/FORMAT.md,
 * "Signatures"), plus the line cursor and base64 helpers sig.c shares.
 *
 * Secret material (decoded key boxes, scrypt streams, encoded unencrypted
 * keys) only ever lives in sodium_malloc'd memory, which sodium_free wipes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "libcas/internal.h"
#include "libcas/sig-internal.h"
#include "libcas/sig.h"

/* Decoded secret key box, byte offsets (FORMAT.md "Secret key file"). */
enum {
    SK_OFF_SIGALG = 0,
    SK_OFF_KDFALG = 2,
    SK_OFF_CHKALG = 4,
    SK_OFF_SALT = 6,
    SK_OFF_OPSLIMIT = 38,
    SK_OFF_MEMLIMIT = 46,
    SK_OFF_KEYNUM = 54, /* start of the part xor-ed with the scrypt stream */
    SK_OFF_SK = 62,
    SK_OFF_CHK = 126,
    SK_BOX_LEN = 158,
    SK_KEYNUM_SK_LEN = SK_BOX_LEN - SK_OFF_KEYNUM, /* keyid || sk || chk = 104 */
    SK_SALT_LEN = 32,
    SK_CHK_LEN = 32,
    PK_BOX_LEN = 2 + CAS_KEYID_LEN + CAS_PK_LEN, /* "Ed" keyid pk = 42 */
    /* Base64 of the boxes, with NUL. */
    SK_B64_SIZE = (SK_BOX_LEN + 2) / 3 * 4 + 1,
    PK_B64_SIZE = (PK_BOX_LEN + 2) / 3 * 4 + 1,
    B64_LINE_MAX = 512, /* longer base64 lines are rejected early */
};

_Static_assert((int)PK_B64_SIZE == (int)CAS_PUBKEY_B64_SIZE, "public key base64 size");
_Static_assert(SK_SALT_LEN == crypto_pwhash_scryptsalsa208sha256_SALTBYTES, "salt size");
_Static_assert(CAS_SK_LEN == crypto_sign_SECRETKEYBYTES, "sk size");
_Static_assert(CAS_PK_LEN == crypto_sign_PUBLICKEYBYTES, "pk size");

struct cas_seckey {
    uint8_t keyid[CAS_KEYID_LEN];
    uint8_t sk[CAS_SK_LEN];
};

static const uint8_t SIGALG[2] = { 'E', 'd' };
static const uint8_t KDFALG[2] = { 'S', 'c' };
static const uint8_t KDFNONE[2] = { 0, 0 };
static const uint8_t CHKALG[2] = { 'B', '2' };

int
cas_sig_init(void)
{
    return sodium_init() < 0 ? -ENOMEM : 0;
}

/* --- shared helpers (sig-internal.h) ------------------------------------ */

int
cas__lines_next(cas__lines *c, size_t max, bool last_ok, const uint8_t **ret_line, size_t *ret_len)
{
    if (c->off >= c->len)
        return -EBADMSG;
    const uint8_t *start = c->p + c->off;
    size_t avail = c->len - c->off;
    const uint8_t *nl = memchr(start, '\n', avail);
    size_t n = nl ? (size_t)(nl - start) : avail;
    if (!nl && !last_ok)
        return n > max ? -EMSGSIZE : -EBADMSG;
    size_t consumed = nl ? n + 1 : n;
    if (n > 0 && start[n - 1] == '\r')
        n--;
    if (n > max)
        return -EMSGSIZE;
    if (memchr(start, '\0', n))
        return -EBADMSG;
    c->off += consumed;
    *ret_line = start;
    *ret_len = n;
    return 0;
}

int
cas__lines_comment(cas__lines *c, const char *prefix, size_t max, bool last_ok,
                   const uint8_t **ret_text, size_t *ret_len)
{
    size_t plen = strlen(prefix);
    const uint8_t *line;
    size_t n;
    int r = cas__lines_next(c, plen + max, last_ok, &line, &n);
    if (r < 0)
        return r;
    if (n < plen || memcmp(line, prefix, plen) != 0)
        return -EBADMSG;
    *ret_text = line + plen;
    *ret_len = n - plen;
    return 0;
}

int
cas__b64_decode_exact(const uint8_t *b64, size_t b64_len, uint8_t *out, size_t n)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (b64_len != (n + 2) / 3 * 4)
        return -EBADMSG;
    if (sodium_base642bin(out, n, (const char *)b64, b64_len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -EBADMSG;
    if (bin_len != n || end != (const char *)b64 + b64_len)
        return -EBADMSG;
    return 0;
}

int
cas__read_small_file(const char *path, size_t max, bool guarded, uint8_t **ret_buf, size_t *ret_len)
{
    int r = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* One spare byte tells "exactly max" from "too long". */
    buf = guarded ? sodium_malloc(max + 1) : malloc(max + 1);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == max + 1) {
            r = -EMSGSIZE;
            goto out;
        }
        ssize_t k = read(fd, buf + len, max + 1 - len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto out;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
out:
    if (buf) {
        if (guarded)
            sodium_free(buf);
        else
            free(buf);
    }
    close(fd);
    return r;
}

/* Writes len bytes to path with mode: exclusively, or via a temporary file
 * renamed over path when overwrite. fsyncs the data. */
static int
write_key_file(const char *path, const void *data, size_t len, mode_t mode, bool overwrite)
{
    int r = 0;
    int fd = -1;
    char *tmp = NULL;
    bool created = false; /* path itself was created here (exclusive mode) */
    if (overwrite) {
        size_t plen = strlen(path);
        tmp = malloc(plen + sizeof(".tmp-XXXXXX"));
        if (!tmp)
            return -ENOMEM;
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
        fd = mkstemp(tmp); /* created 0600 */
        if (fd >= 0 && fchmod(fd, mode) < 0) {
            r = -errno;
            goto out;
        }
    } else {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        created = fd >= 0;
    }
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t k = write(fd, (const uint8_t *)data + off, len - off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto out;
        }
        off += (size_t)k;
    }
    if (fsync(fd) < 0) {
        r = -errno;
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = -errno;
        goto out;
    }
    fd = -1;
    if (tmp && rename(tmp, path) < 0) {
        r = -errno;
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        /* Remove what we created, never a file that was there before. */
        if (tmp)
            unlink(tmp);
        else if (created)
            unlink(path);
    }
    free(tmp);
    return r;
}

/* --- key ids ------------------------------------------------------------- */

void
cas_keyid_format(const uint8_t keyid[static CAS_KEYID_LEN], char out[static CAS_KEYID_HEX_SIZE])
{
    /* minisign prints le64_load(keynum) with "%" PRIX64: no leading zeros,
     * so 1 key in 16 shows 15 digits or fewer. Print it the same way, or
     * `nvx key show` and minisign's .pub files would differ. */
    static const char hex[] = "0123456789ABCDEF";
    uint64_t v = le64_load(keyid);
    char tmp[CAS_KEYID_HEX_SIZE];
    int n = 0;
    do {
        tmp[n++] = hex[v & 15];
        v >>= 4;
    } while (v);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

int
cas_keyid_parse(const char *hex, uint8_t ret_keyid[static CAS_KEYID_LEN])
{
    if (!hex)
        return -EINVAL;
    size_t n = strnlen(hex, 2 * CAS_KEYID_LEN + 1);
    if (n == 0 || n > 2 * CAS_KEYID_LEN)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = cas__hex_value(hex[i]);
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint64_t)d;
    }
    le64_store(ret_keyid, v);
    return 0;
}

/* --- public keys --------------------------------------------------------- */

static bool
is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
pubkey_from_b64(const uint8_t *b64, size_t n, cas_pubkey *ret)
{
    uint8_t box[PK_BOX_LEN];
    int r = cas__b64_decode_exact(b64, n, box, sizeof(box));
    if (r < 0)
        return r;
    if (memcmp(box, SIGALG, 2) != 0)
        return -ENOTSUP;
    memcpy(ret->keyid, box + 2, CAS_KEYID_LEN);
    memcpy(ret->pk, box + 2 + CAS_KEYID_LEN, CAS_PK_LEN);
    return 0;
}

int
cas_pubkey_decode(const uint8_t *buf, size_t len, cas_pubkey *ret)
{
    const uint8_t *text, *line;
    size_t tlen, n;
    int r;
    if (!buf || !ret)
        return -EINVAL;
    if (len > CAS_KEYFILE_MAXBYTES)
        return -EMSGSIZE;
    static const char prefix[] = CAS__COMMENT_PREFIX;
    if (len >= sizeof(prefix) - 1 && memcmp(buf, prefix, sizeof(prefix) - 1) == 0) {
        /* A .pub file: comment line, then the base64 line (newline optional). */
        cas__lines c = { buf, len, 0 };
        r = cas__lines_comment(&c, CAS__COMMENT_PREFIX, CAS_COMMENT_MAXBYTES, false, &text, &tlen);
        if (r < 0)
            return r;
        r = cas__lines_next(&c, B64_LINE_MAX, true, &line, &n);
        if (r < 0)
            return r;
        if (c.off != c.len)
            return -EBADMSG;
        return pubkey_from_b64(line, n, ret);
    }
    /* A bare base64 line, as given to `minisign -P`. */
    size_t a = 0, b = len;
    while (a < b && is_blank(buf[a]))
        a++;
    while (b > a && is_blank(buf[b - 1]))
        b--;
    if (b - a > B64_LINE_MAX)
        return -EMSGSIZE;
    return pubkey_from_b64(buf + a, b - a, ret);
}

void
cas_pubkey_base64(const cas_pubkey *pk, char out[static CAS_PUBKEY_B64_SIZE])
{
    uint8_t box[PK_BOX_LEN];
    memcpy(box, SIGALG, 2);
    memcpy(box + 2, pk->keyid, CAS_KEYID_LEN);
    memcpy(box + 2 + CAS_KEYID_LEN, pk->pk, CAS_PK_LEN);
    sodium_bin2base64(out, CAS_PUBKEY_B64_SIZE, box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
}

int
cas_pubkey_encode(const cas_pubkey *pk, char *out, size_t size, size_t *ret_len)
{
    char id[CAS_KEYID_HEX_SIZE], b64[CAS_PUBKEY_B64_SIZE];
    if (!pk || !out)
        return -EINVAL;
    cas_keyid_format(pk->keyid, id);
    cas_pubkey_base64(pk, b64);
    int n = snprintf(out, size, "%sminisign public key %s\n%s\n", CAS__COMMENT_PREFIX, id, b64);
    if (n < 0 || (size_t)n >= size)
        return -EMSGSIZE;
    if (ret_len)
        *ret_len = (size_t)n;
    return 0;
}

int
cas_pubkey_load_file(const char *path, cas_pubkey *ret)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cas__read_small_file(path, CAS_KEYFILE_MAXBYTES, false, &buf, &len);
    if (r < 0)
        return r;
    r = cas_pubkey_decode(buf, len, ret);
    free(buf);
    return r;
}

int
cas_pubkey_write_file(const cas_pubkey *pk, const char *path, bool overwrite)
{
    char text[CAS_KEYFILE_TEXT_SIZE];
    size_t n;
    int r = cas_pubkey_encode(pk, text, sizeof(text), &n);
    if (r < 0)
        return r;
    return write_key_file(path, text, n, 0644, overwrite);
}

/* --- secret keys --------------------------------------------------------- */

int
cas_seckey_generate(cas_seckey **ret)
{
    if (cas_sig_init() < 0)
        return -ENOMEM;
    cas_seckey *k = sodium_malloc(sizeof(*k));
    if (!k)
        return -ENOMEM;
    uint8_t pk[CAS_PK_LEN];
    randombytes_buf(k->keyid, sizeof(k->keyid));
    crypto_sign_keypair(pk, k->sk);
    *ret = k;
    return 0;
}

void
cas_seckey_free(cas_seckey *sk)
{
    if (sk)
        sodium_free(sk); /* wipes */
}

void
cas_seckey_public(const cas_seckey *sk, cas_pubkey *ret)
{
    memcpy(ret->keyid, sk->keyid, CAS_KEYID_LEN);
    crypto_sign_ed25519_sk_to_pk(ret->pk, sk->sk);
}

int
cas__seckey_sign(const cas_seckey *sk, uint8_t sig[static 64], const uint8_t *m, size_t mlen)
{
    return crypto_sign_detached(sig, NULL, m, mlen, sk->sk) == 0 ? 0 : -EINVAL;
}

/* Checksum of a key box: BLAKE2b-256(sig_alg || keyid || sk). */
static void
box_checksum(const uint8_t *box, uint8_t out[static SK_CHK_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SK_CHK_LEN);
    crypto_generichash_update(&st, box + SK_OFF_SIGALG, 2);
    crypto_generichash_update(&st, box + SK_OFF_KEYNUM, CAS_KEYID_LEN);
    crypto_generichash_update(&st, box + SK_OFF_SK, CAS_SK_LEN);
    crypto_generichash_final(&st, out, SK_CHK_LEN);
    sodium_memzero(&st, sizeof(st));
}

/* xors box's keyid || sk || chk with scrypt(passphrase, salt, limits). */
static int
box_xor_stream(uint8_t *box, const char *passphrase, uint64_t opslimit, uint64_t memlimit)
{
    uint8_t *stream = sodium_malloc(SK_KEYNUM_SK_LEN);
    if (!stream)
        return -ENOMEM;
    int r = 0;
    if (crypto_pwhash_scryptsalsa208sha256(stream, SK_KEYNUM_SK_LEN, passphrase, strlen(passphrase),
                                           box + SK_OFF_SALT, (unsigned long long)opslimit,
                                           (size_t)memlimit) != 0) {
        r = -ENOMEM; /* libsodium fails here only when it cannot allocate */
        goto out;
    }
    for (size_t i = 0; i < SK_KEYNUM_SK_LEN; i++)
        box[SK_OFF_KEYNUM + i] ^= stream[i];
out:
    sodium_free(stream);
    return r;
}

int
cas_seckey_encode(const cas_seckey *sk, const char *passphrase, uint64_t opslimit,
                  uint64_t memlimit, char *out, size_t size, size_t *ret_len)
{
    static const char comment[] = CAS__COMMENT_PREFIX "minisign encrypted secret key\n";
    if (!sk || !out)
        return -EINVAL;
    if (opslimit == 0 && memlimit == 0) {
        opslimit = CAS_KDF_OPSLIMIT_DEFAULT;
        memlimit = CAS_KDF_MEMLIMIT_DEFAULT;
    }
    if (passphrase &&
        (strlen(passphrase) > CAS_PASSPHRASE_MAXBYTES || opslimit < CAS_KDF_OPSLIMIT_FAST / 16 ||
         opslimit > CAS_KDF_OPSLIMIT_MAX || memlimit < CAS_KDF_MEMLIMIT_FAST / 16 ||
         memlimit > CAS_KDF_MEMLIMIT_MAX || memlimit > SIZE_MAX))
        return -EINVAL;
    if (size < sizeof(comment) - 1 + SK_B64_SIZE + 1)
        return -EMSGSIZE;
    if (cas_sig_init() < 0)
        return -ENOMEM;
    uint8_t *box = sodium_malloc(SK_BOX_LEN);
    if (!box)
        return -ENOMEM;
    int r = 0;
    memcpy(box + SK_OFF_SIGALG, SIGALG, 2);
    memcpy(box + SK_OFF_CHKALG, CHKALG, 2);
    memcpy(box + SK_OFF_KEYNUM, sk->keyid, CAS_KEYID_LEN);
    memcpy(box + SK_OFF_SK, sk->sk, CAS_SK_LEN);
    box_checksum(box, box + SK_OFF_CHK);
    if (passphrase) {
        memcpy(box + SK_OFF_KDFALG, KDFALG, 2);
        randombytes_buf(box + SK_OFF_SALT, SK_SALT_LEN);
        le64_store(box + SK_OFF_OPSLIMIT, opslimit);
        le64_store(box + SK_OFF_MEMLIMIT, memlimit);
        r = box_xor_stream(box, passphrase, opslimit, memlimit);
        if (r < 0)
            goto out;
    } else {
        /* As `minisign -W`: no kdf, zero salt and limits. */
        memcpy(box + SK_OFF_KDFALG, KDFNONE, 2);
        memset(box + SK_OFF_SALT, 0, SK_SALT_LEN + 16);
    }
    size_t n = sizeof(comment) - 1;
    memcpy(out, comment, n);
    sodium_bin2base64(out + n, size - n, box, SK_BOX_LEN, sodium_base64_VARIANT_ORIGINAL);
    n += SK_B64_SIZE - 1;
    out[n++] = '\n';
    out[n] = '\0';
    if (ret_len)
        *ret_len = n;
out:
    sodium_free(box);
    return r;
}

int
cas_seckey_write_file(const cas_seckey *sk, const char *path, const char *passphrase,
                      uint64_t opslimit, uint64_t memlimit, bool overwrite)
{
    if (cas_sig_init() < 0)
        return -ENOMEM;
    char *text = sodium_malloc(CAS_KEYFILE_TEXT_SIZE);
    if (!text)
        return -ENOMEM;
    size_t n;
    int r = cas_seckey_encode(sk, passphrase, opslimit, memlimit, text, CAS_KEYFILE_TEXT_SIZE, &n);
    if (r >= 0)
        r = write_key_file(path, text, n, 0600, overwrite);
    sodium_free(text);
    return r;
}

/* Parses the two lines of a secret key file into box (SK_BOX_LEN bytes, as
 * stored: still encrypted) and checks the algorithms. */
static int
seckey_parse_box(const uint8_t *buf, size_t len, uint8_t *box)
{
    const uint8_t *text, *line;
    size_t tlen, n;
    if (!buf)
        return -EINVAL;
    if (len > CAS_KEYFILE_MAXBYTES)
        return -EMSGSIZE;
    cas__lines c = { buf, len, 0 };
    int r = cas__lines_comment(&c, CAS__COMMENT_PREFIX, CAS_COMMENT_MAXBYTES, false, &text, &tlen);
    if (r < 0)
        return r;
    r = cas__lines_next(&c, B64_LINE_MAX, true, &line, &n);
    if (r < 0)
        return r;
    if (c.off != c.len)
        return -EBADMSG;
    r = cas__b64_decode_exact(line, n, box, SK_BOX_LEN);
    if (r < 0)
        return r;
    if (memcmp(box + SK_OFF_SIGALG, SIGALG, 2) != 0 ||
        memcmp(box + SK_OFF_CHKALG, CHKALG, 2) != 0 ||
        (memcmp(box + SK_OFF_KDFALG, KDFALG, 2) != 0 &&
         memcmp(box + SK_OFF_KDFALG, KDFNONE, 2) != 0))
        return -ENOTSUP;
    return 0;
}

int
cas_seckey_probe(const uint8_t *buf, size_t len, bool *ret_encrypted, uint64_t *ret_memlimit)
{
    if (cas_sig_init() < 0)
        return -ENOMEM;
    uint8_t *box = sodium_malloc(SK_BOX_LEN);
    if (!box)
        return -ENOMEM;
    int r = seckey_parse_box(buf, len, box);
    if (r >= 0) {
        bool enc = memcmp(box + SK_OFF_KDFALG, KDFALG, 2) == 0;
        if (ret_encrypted)
            *ret_encrypted = enc;
        if (ret_memlimit)
            *ret_memlimit = enc ? le64_load(box + SK_OFF_MEMLIMIT) : 0;
    }
    sodium_free(box);
    return r;
}

int
cas_seckey_decode(const uint8_t *buf, size_t len, const char *passphrase, cas_seckey **ret)
{
    uint8_t chk[SK_CHK_LEN], pk[CAS_PK_LEN];
    cas_seckey *k = NULL;
    if (cas_sig_init() < 0)
        return -ENOMEM;
    uint8_t *box = sodium_malloc(SK_BOX_LEN);
    if (!box)
        return -ENOMEM;
    int r = seckey_parse_box(buf, len, box);
    if (r < 0)
        goto out;
    bool encrypted = memcmp(box + SK_OFF_KDFALG, KDFALG, 2) == 0;
    if (encrypted) {
        uint64_t ops = le64_load(box + SK_OFF_OPSLIMIT), mem = le64_load(box + SK_OFF_MEMLIMIT);
        if (ops > CAS_KDF_OPSLIMIT_MAX || mem > CAS_KDF_MEMLIMIT_MAX || mem > SIZE_MAX) {
            r = -EMSGSIZE;
            goto out;
        }
        if (!passphrase) {
            r = -EACCES;
            goto out;
        }
        if (strlen(passphrase) > CAS_PASSPHRASE_MAXBYTES) {
            r = -EINVAL;
            goto out;
        }
        r = box_xor_stream(box, passphrase, ops, mem);
        if (r < 0)
            goto out;
    }
    /* minisign 0.11 writes unencrypted keys (-W) with an all-zero checksum
     * and does not check it; the seed/public-half check below still catches
     * a corrupted key. */
    box_checksum(box, chk);
    if (!encrypted && sodium_is_zero(box + SK_OFF_CHK, SK_CHK_LEN))
        memcpy(chk, box + SK_OFF_CHK, SK_CHK_LEN);
    if (sodium_memcmp(chk, box + SK_OFF_CHK, SK_CHK_LEN) != 0) {
        r = encrypted ? -EACCES : -EBADMSG;
        goto out;
    }
    /* The public half stored in sk must be the one its seed yields, or every
     * signature made with it would fail to verify. */
    k = sodium_malloc(sizeof(*k));
    if (!k) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(k->keyid, box + SK_OFF_KEYNUM, CAS_KEYID_LEN);
    crypto_sign_seed_keypair(pk, k->sk, box + SK_OFF_SK);
    if (sodium_memcmp(k->sk, box + SK_OFF_SK, CAS_SK_LEN) != 0) {
        r = -EBADMSG;
        goto out;
    }
    *ret = k;
    k = NULL;
out:
    cas_seckey_free(k);
    sodium_memzero(chk, sizeof(chk));
    sodium_free(box);
    return r;
}

int
cas_seckey_load_file(const char *path, const char *passphrase, cas_seckey **ret)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cas_sig_init() < 0)
        return -ENOMEM;
    int r = cas__read_small_file(path, CAS_KEYFILE_MAXBYTES, true, &buf, &len);
    if (r < 0)
        return r;
    r = cas_seckey_decode(buf, len, passphrase, ret);
    sodium_free(buf);
    return r;
}
