/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_SIG_INTERNAL_H
#define NVX_LIBCAS_SIG_INTERNAL_H
/*
 * Helpers shared by key.c and sig.c (not installed): a cursor over the lines
 * of a minisign text file and strict base64 decoding. Defined in key.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAS__COMMENT_PREFIX         "untrusted comment: "
#define CAS__TRUSTED_COMMENT_PREFIX "trusted comment: "

typedef struct cas__lines {
    const uint8_t *p;
    size_t len;
    size_t off;
} cas__lines;

/*
 * Takes the next line from c: *ret_line points into the buffer, *ret_len
 * excludes the "\n" or "\r\n". A line longer than max bytes is -EMSGSIZE; a
 * missing newline is -EBADMSG unless last_ok and the buffer ends there; no
 * line left at all is -EBADMSG. A NUL byte in a line is -EBADMSG.
 */
int cas__lines_next(cas__lines *c, size_t max, bool last_ok, const uint8_t **ret_line,
                    size_t *ret_len);

/* Reads a comment line that must start with prefix; *ret_text and *ret_len are
 * what follows the prefix (at most max bytes, else -EMSGSIZE). */
int cas__lines_comment(cas__lines *c, const char *prefix, size_t max, bool last_ok,
                       const uint8_t **ret_text, size_t *ret_len);

/* Decodes standard padded base64 that must yield exactly n bytes into out.
 * Returns 0 or -EBADMSG. */
int cas__b64_decode_exact(const uint8_t *b64, size_t b64_len, uint8_t *out, size_t n);

/* Reads a whole file of at most max bytes into a buffer allocated with
 * sodium_malloc when guarded (caller sodium_free's it) or malloc otherwise.
 * Returns 0 or -EMSGSIZE / -errno. */
int cas__read_small_file(const char *path, size_t max, bool guarded, uint8_t **ret_buf,
                         size_t *ret_len);

struct cas_seckey;

/* Ed25519 detached signature of m with sk (the struct is private to key.c).
 * Returns 0 or -EINVAL. */
int cas__seckey_sign(const struct cas_seckey *sk, uint8_t sig[static 64], const uint8_t *m,
                     size_t mlen);

#endif
