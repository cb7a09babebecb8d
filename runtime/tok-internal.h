/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_TOK_INTERNAL_H
#define NVX_RUNTIME_TOK_INTERNAL_H
/*
 * Tokenizer internals shared by tokenizer.c (vocabulary and merge loop) and
 * tok-gguf.c (loading a vocabulary from GGUF metadata). Only exported for
 * these files and the tests.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/tok-bpe.h"
#include "runtime/tokenizer.h"

/* Lowest mergeable id whose piece equals s[0..n), or -1. t must be
 * finished. */
int32_t rt__tokenizer_lookup(const rt_tokenizer *t, const char *s, size_t n);

/* Sets the dummy-prefix and add-BOS behaviour (defaults: both true). */
void rt__tokenizer_set_mode(rt_tokenizer *t, bool space_prefix, bool add_bos);

/* Makes t a byte-level BPE tokenizer; t takes ownership of bpe. Called
 * once, after rt_tokenizer_finish (the merges are resolved with
 * rt__tokenizer_lookup) and before t is shared. */
void rt__tokenizer_set_bpe(rt_tokenizer *t, rt__bpe *bpe);

#endif
