/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_TOKENIZER_H
#define NVX_RUNTIME_TOKENIZER_H
/*
 * Tokenizers of the llama family and of byte-level BPE models.
 *
 * SentencePiece-style BPE (llama2.c, Llama 2, GGUF tokenizer.ggml.model =
 * "llama"): text is split into UTF-8 code points (a leading " " dummy
 * prefix is added), each looked up in the vocabulary, code points absent
 * from it fall back to their bytes as <0xXX> tokens, then adjacent pairs are
 * merged greedily, the pair whose concatenation has the highest score first
 * (leftmost on ties), until no concatenation is in the vocabulary.
 *
 * Byte-level BPE (GGUF tokenizer.ggml.model = "gpt2"): the text is cut into
 * words by the pre-tokenizer tokenizer.ggml.pre names (tok-pretok.h), each
 * word is spelled in GPT-2's byte alphabet (tok-bpe.h) and merged on its
 * own, the pair of the lowest-ranked tokenizer.ggml.merges rule first.
 *
 * Both first cut special tokens out of the text as whole strings, longest
 * first: user-defined tokens always, control and unknown tokens with
 * RT_TOK_PARSE_SPECIAL (llama.cpp's parse_special).
 *
 * Vocabulary sources:
 *
 * llama2.c tokenizer.bin (little-endian; no token count in the file, the
 * model's vocab_size gives it):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *   0       4     int32 max_token_length (>= 0; informative, not trusted)
 *   4       ...   n_vocab records:
 *                   +0  4    float32 score (not NaN)
 *                   +4  4    int32 len, 0..RT_TOK_MAX_PIECE
 *                   +8  len  piece bytes (any bytes)
 *
 * GGUF (tokenizer.ggml.tokens/scores/token_type): filled by the caller through
 * rt_tokenizer_new()/rt_tokenizer_set()/rt_tokenizer_finish(), with the
 * SentencePiece "▁" (U+2581) already mapped to " " (rt_tokenizer_set does that
 * when asked).
 *
 * A finished tokenizer is immutable and may be shared by threads.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    RT_TOK_MAX_VOCAB = 1 << 18, /* 262,144 pieces */
    RT_TOK_MAX_PIECE = 512,     /* bytes in one piece */
    /* Largest tokenizer.bin read from a file: the biggest legal vocab. */
    RT_TOK_FILE_MAX = 4 + RT_TOK_MAX_VOCAB * (8 + 64),
    RT_TOK_BOS_DEFAULT = 1, /* llama2.c / Llama 2 ids */
    RT_TOK_EOS_DEFAULT = 2,
    RT_TOK_UNK_DEFAULT = 0,
};

/* Token kinds (values of GGUF's tokenizer.ggml.token_type). */
typedef enum rt_tok_type {
    RT_TOK_TYPE_UNDEFINED = 0,
    RT_TOK_TYPE_NORMAL = 1,
    RT_TOK_TYPE_UNKNOWN = 2,
    RT_TOK_TYPE_CONTROL = 3,
    RT_TOK_TYPE_USER_DEFINED = 4,
    RT_TOK_TYPE_UNUSED = 5,
    RT_TOK_TYPE_BYTE = 6,
    _RT_TOK_TYPE_MAX,
} rt_tok_type;

/* Flags of rt_tokenizer_encode(). */
enum {
    RT_TOK_ADD_BOS = 1u << 0,
    RT_TOK_ADD_EOS = 1u << 1,
    /* Also match control tokens (e.g. "<|im_end|>") written in the text. */
    RT_TOK_PARSE_SPECIAL = 1u << 2,
};

typedef struct rt_tokenizer rt_tokenizer;

/* Parses a llama2.c tokenizer.bin held in buf[0..len). n_vocab is the model's
 * vocab_size; 0 means "every record in the file". The file must end exactly
 * after the last record read when n_vocab is 0, and may hold more records than
 * n_vocab otherwise (llama2.c reads only vocab_size of them). The bytes are
 * copied; buf may be freed afterwards. Ids 0/1/2 are unknown/BOS/EOS; pieces
 * spelled <0xXX> are byte tokens. Returns 0 and *ret, -EBADMSG for a malformed
 * file, -EMSGSIZE over RT_TOK_MAX_VOCAB, -ENOMEM. */
int rt_tokenizer_load_llama2c(const uint8_t *buf, size_t len, uint32_t n_vocab, rt_tokenizer **ret);

/* Reads a whole tokenizer.bin from path (a regular file of at most
 * RT_TOK_FILE_MAX bytes, else -EINVAL / -EMSGSIZE), then
 * rt_tokenizer_load_llama2c(). Also -errno of open/read. POSIX: defined in
 * file-io.c, which builds without <unistd.h> leave out. */
int rt_tokenizer_load_llama2c_file(const char *path, uint32_t n_vocab, rt_tokenizer **ret);

/* Reads the vocabulary of a GGUF file held in buf[0..len) (the whole
 * file, or a prefix holding all its metadata). tokenizer.ggml.model is
 * "llama" (SentencePiece; tokens with "▁" for spaces, scores, token_type;
 * bos/eos/unknown ids default to 1, 2, 0; add_space_prefix and
 * add_bos_token default to true) or "gpt2" (byte-level BPE; tokens,
 * token_type, merges, and pre naming a pre-tokenizer of tok-pretok.h;
 * bos_token_id required; add_bos_token defaults to false). scores and
 * token_type are optional and, when present, as long as tokens. Merges
 * naming strings that are no token are skipped. Copies what it needs.
 * Returns 0 and *ret; -ENOENT when the file has no vocabulary; -ENOTSUP
 * for a tokenizer model or pre-tokenizer this runtime does not know (see
 * rt_tokenizer_gguf_unsupported); -EBADMSG for a malformed file or
 * vocabulary; -EMSGSIZE; -ENOMEM. */
int rt_tokenizer_load_gguf(const void *buf, size_t len, rt_tokenizer **ret);

/* After rt_tokenizer_load_gguf() gave -ENOTSUP: the metadata key whose
 * value is not supported (a static string) and that value (*ret_val points
 * into buf, not NUL-terminated; outside bytes, escape before printing).
 * Returns 0, or -ENOENT when the file has nothing unsupported. */
int rt_tokenizer_gguf_unsupported(const void *buf, size_t len, const char **ret_key,
                                  const char **ret_val, size_t *ret_val_len);

/* Builder for other vocabularies (GGUF): allocate n_vocab empty slots, set
 * each one, then finish. Unset slots become unused tokens. With sp_space the
 * piece's "▁" (E2 96 81) sequences are stored as " ". bos/eos/unk ids are
 * RT_TOK_*_DEFAULT until rt_tokenizer_set_special(). Pieces of type
 * RT_TOK_TYPE_BYTE must be spelled <0xXX>. A tokenizer must not be used for
 * encoding before rt_tokenizer_finish() succeeded. All return 0 or -EINVAL
 * (bad id/length/type), -EBADMSG (NaN score, bad byte piece), -ENOMEM. */
int rt_tokenizer_new(uint32_t n_vocab, rt_tokenizer **ret);
int rt_tokenizer_set(rt_tokenizer *t, uint32_t id, const char *piece, size_t len, float score,
                     rt_tok_type type, bool sp_space);
/* Ids may be -1 (absent) for eos and unk; bos must exist. */
int rt_tokenizer_set_special(rt_tokenizer *t, int32_t bos, int32_t eos, int32_t unk);
int rt_tokenizer_finish(rt_tokenizer *t);

void rt_tokenizer_free(rt_tokenizer *t);

uint32_t rt_tokenizer_n_vocab(const rt_tokenizer *t);
/* Whether the vocabulary asks for a BOS before the prompt (GGUF
 * tokenizer.ggml.add_bos_token; true for llama2.c vocabularies). */
bool rt_tokenizer_add_bos(const rt_tokenizer *t);
int32_t rt_tokenizer_bos(const rt_tokenizer *t);
int32_t rt_tokenizer_eos(const rt_tokenizer *t);

/* Upper bound of the token count rt_tokenizer_encode() can produce for len
 * bytes of text: 3 per byte (an invalid byte is read as U+FFFD, 3 bytes of
 * byte-level BPE; a SentencePiece fragment after a special token gains a
 * dummy prefix), plus BOS and EOS. */
size_t rt_tokenizer_encode_bound(size_t len);

/* Encodes text[0..len) (any bytes; need not be valid UTF-8 nor
 * NUL-terminated) into tokens[0..*ret_n). cap is the capacity of tokens; pass
 * rt_tokenizer_encode_bound(len) to be safe. Allocates working memory for the
 * merge (O(len)) and frees it before returning; O(len log len). Returns 0,
 * -EMSGSIZE when cap is too small, -ENOMEM, -EINVAL when t is not finished. */
int rt_tokenizer_encode(const rt_tokenizer *t, const char *text, size_t len, unsigned flags,
                        int32_t *tokens, size_t cap, size_t *ret_n);

/* The bytes that token id contributes to the text when it follows token prev
 * (prev < 0: none): the piece, without its leading " " right after BOS
 * (SentencePiece with the dummy prefix only), a byte token as its single
 * byte, a byte-level BPE piece as the bytes it spells, a user-defined
 * token as written, control tokens (BOS, EOS, ...) as nothing.
 * *ret_piece points into t and lives as long as t; it is not NUL-terminated.
 * Returns 0, or -EINVAL for an id out of range. */
int rt_tokenizer_decode(const rt_tokenizer *t, int32_t prev, int32_t id, const char **ret_piece,
                        size_t *ret_len);

/* The stored piece of id, as loaded (spaces as " "), its score and type;
 * for writers that copy a vocabulary. Any out-pointer may be NULL.
 * Returns 0 or -EINVAL. */
int rt_tokenizer_piece(const rt_tokenizer *t, int32_t id, const char **ret_piece, size_t *ret_len,
                       float *ret_score, rt_tok_type *ret_type);

#endif
