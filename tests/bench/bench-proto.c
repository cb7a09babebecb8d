/* SPDX-License-Identifier: MIT */
/*
 * AEAD throughput of the proto session layer for 256 KiB DATA frames, for
 * each cipher this CPU can negotiate: seal (in place, the daemon's send
 * path), open (feed a sealed frame, get the plaintext event) and, as the
 * baseline measured in the same run, libsodium's raw AEAD on the same size.
 * The session's AES-256-GCM is OpenSSL's EVP (proto/gcm.c), so its "x raw"
 * is OpenSSL's speed over libsodium's.
 * Prints the median of RUNS runs with min and max, in MB/s (10^6 bytes) of
 * thread CPU time.
 *
 *   build-xxx/tests/proto/bench-proto [runs] [frames-per-run]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "proto/session.h"

enum {
    BODY = PROTO_CHUNK_MAX + 48
};

static double
now_s(void)
{
    struct timespec ts;
    /* Thread CPU time: the 2-core box is shared, and wall time there mostly
     * measures the neighbours. Single-threaded work, so CPU time = busy time. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
report(const char *what, double *mbs, int runs, double base)
{
    qsort(mbs, (size_t)runs, sizeof(double), cmp_double);
    double med = mbs[runs / 2];
    printf("  %-28s median %8.0f MB/s  (min %6.0f, max %6.0f)", what, med, mbs[0], mbs[runs - 1]);
    if (base > 0)
        printf("  %.2fx raw", med / base);
    printf("\n");
}

static proto_session *
mk(proto_identity *id, bool initiator, uint8_t pref)
{
    proto_session_config cfg = { .identity = id, .initiator = initiator, .cipher_pref = pref };
    proto_session *s;
    if (proto_session_new(&cfg, 0, &s) < 0)
        exit(1);
    return s;
}

static void
pump(proto_session *from, proto_session *to)
{
    uint8_t *b;
    size_t n;
    while (proto_session_output(from, &b, &n) > 0) {
        size_t off = 0;
        while (off < n) {
            size_t used;
            proto_event ev;
            if (proto_session_feed(to, b + off, n - off, 0, &used, &ev) < 0)
                exit(1);
            off += used;
        }
        free(b);
    }
}

/* Raw libsodium AEAD over the same memory pattern as the session: encrypt
 * each 256 KiB frame of a large buffer in place, then decrypt each into one
 * plaintext buffer. Writes MB/s into *ret_enc and *ret_dec. */
static void
raw_aead(int cipher, uint8_t *frames_buf, size_t flen, uint8_t *pt, int frames, double *ret_enc,
         double *ret_dec)
{
    uint8_t key[32] = { 1 }, nonce[24] = { 0 };
    crypto_aead_aes256gcm_state st;
    crypto_aead_aes256gcm_beforenm(&st, key);
    bool aes = cipher == PROTO_CIPHER_AES256GCM;
    double t0 = now_s();
    for (int i = 0; i < frames; i++) {
        uint8_t *f = frames_buf + flen * (size_t)i;
        nonce[0] = (uint8_t)i;
        if (aes)
            crypto_aead_aes256gcm_encrypt_afternm(f, NULL, f, BODY, NULL, 0, NULL, nonce, &st);
        else
            crypto_aead_xchacha20poly1305_ietf_encrypt(f, NULL, f, BODY, NULL, 0, NULL, nonce, key);
    }
    *ret_enc = (double)BODY * frames / (now_s() - t0) / 1e6;
    t0 = now_s();
    for (int i = 0; i < frames; i++) {
        uint8_t *f = frames_buf + flen * (size_t)i;
        nonce[0] = (uint8_t)i;
        int r = aes ? crypto_aead_aes256gcm_decrypt_afternm(pt, NULL, NULL, f, BODY + 16, NULL, 0,
                                                            nonce, &st)
                    : crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, f, BODY + 16, NULL,
                                                                 0, nonce, key);
        if (r != 0)
            exit(1);
    }
    *ret_dec = (double)BODY * frames / (now_s() - t0) / 1e6;
}

static void
bench_cipher(uint8_t pref, int runs, int frames)
{
    proto_identity *a, *b;
    if (proto_identity_generate(&a) < 0 || proto_identity_generate(&b) < 0)
        exit(1);
    proto_session *i = mk(a, true, pref), *r = mk(b, false, pref);
    pump(i, r);
    pump(r, i);
    pump(i, r);
    if (!proto_session_established(i) || !proto_session_established(r))
        exit(1);
    int cipher = proto_session_cipher(i);
    printf("%s, %d KiB DATA frames, %d frames x %d runs\n",
           cipher == PROTO_CIPHER_AES256GCM ? "AES-256-GCM" : "XChaCha20-Poly1305", BODY / 1024,
           frames, runs);

    size_t flen = BODY + PROTO_SEAL_OVERHEAD, n;
    uint8_t *frames_buf = malloc(flen * (size_t)frames);
    uint8_t *raw = calloc(1, BODY + 64);
    double *seal = calloc((size_t)runs, sizeof(double)),
           *open = calloc((size_t)runs, sizeof(double)),
           *base = calloc((size_t)runs, sizeof(double)),
           *base_dec = calloc((size_t)runs, sizeof(double));
    if (!frames_buf || !raw || !seal || !open || !base || !base_dec)
        exit(1);
    memset(frames_buf, 0x5a, flen * (size_t)frames);
    for (int run = 0; run < runs; run++) {
        raw_aead(cipher, frames_buf, flen, raw, frames, &base[run], &base_dec[run]);
        double t0 = now_s();
        for (int k = 0; k < frames; k++) {
            uint8_t *f = frames_buf + flen * (size_t)k;
            if (proto_session_seal(i, 6, f + PROTO_SEAL_BODY_OFFSET, BODY, f, flen, &n) < 0)
                exit(1);
        }
        seal[run] = (double)BODY * frames / (now_s() - t0) / 1e6;
        t0 = now_s();
        for (int k = 0; k < frames; k++) {
            size_t used;
            proto_event ev;
            if (proto_session_feed(r, frames_buf + flen * (size_t)k, flen, 0, &used, &ev) != 1 ||
                ev.len != BODY)
                exit(1);
        }
        open[run] = (double)BODY * frames / (now_s() - t0) / 1e6;
    }
    qsort(base, (size_t)runs, sizeof(double), cmp_double);
    qsort(base_dec, (size_t)runs, sizeof(double), cmp_double);
    double b_enc = base[runs / 2], b_dec = base_dec[runs / 2];
    report("raw libsodium encrypt", base, runs, 0);
    report("session seal (in place)", seal, runs, b_enc);
    report("raw libsodium decrypt", base_dec, runs, 0);
    report("session open (feed+decrypt)", open, runs, b_dec);
    free(frames_buf);
    free(raw);
    free(seal);
    free(open);
    free(base);
    free(base_dec);
    proto_session_free(i);
    proto_session_free(r);
    proto_identity_free(a);
    proto_identity_free(b);
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7, frames = argc > 2 ? atoi(argv[2]) : 256;
    if (runs < 1 || frames < 1 || sodium_init() < 0)
        return 1;
    bench_cipher(PROTO_CIPHER_PREF_XCHACHA, runs, frames);
    if (proto_hw_aes_available())
        bench_cipher(PROTO_CIPHER_PREF_AUTO, runs, frames);
    else
        printf("AES-256-GCM: no hardware AES on this CPU, not negotiated\n");
    return 0;
}
