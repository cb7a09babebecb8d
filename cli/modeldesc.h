/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_MODELDESC_H
#define NVX_CLI_MODELDESC_H
/*
 * What `nvx ls` and `nvx info` say about a model's contents: format,
 * architecture, parameter count, tensor types and context length, read from
 * the header of a complete model's data file through runtime/layout.h (the
 * one parser of model formats; it checks every length before reading). The
 * manifest is not used: a fetched manifest's tensor map is whatever its
 * publisher wrote, while the file's header is parsed strictly.
 *
 * A partial model (its header may not be here yet), a raw file or a header
 * that does not parse gives a description with known == false; commands
 * then print "-" rather than fail, since ls must list every model.
 */
#include <stdbool.h>
#include <stdint.h>

#include "cli/json.h"
#include "libcas/hash.h"

typedef struct cas_store cas_store;

enum {
    CLI_MODELDESC_ARCH_MAX = 32,  /* bytes of an architecture name kept (longer: cut) */
    CLI_MODELDESC_TYPES_MAX = 16, /* distinct tensor types counted (more: "other") */
    /* Header prefix read at most: GGUF vocabularies of 150k tokens take a few
     * MiB; a header larger than this is refused rather than read. */
    CLI_MODELDESC_HEADER_MAX = 64 << 20,
};

typedef struct cli_modeldesc_type {
    uint32_t type;   /* rt_type */
    uint64_t count;  /* tensors of this type */
    uint64_t params; /* their elements */
} cli_modeldesc_type;

typedef struct cli_modeldesc {
    bool known;                            /* the fields below were read */
    const char *format;                    /* "gguf" or "llama2c" (static) */
    char arch[CLI_MODELDESC_ARCH_MAX + 1]; /* printable ASCII; "" when absent */
    uint64_t n_params;                     /* elements of all tensors (saturating) */
    uint64_t ctx_len;                      /* 0 when the file does not say */
    uint64_t n_tensors;
    size_t n_types; /* entries of types[], most params first */
    cli_modeldesc_type types[CLI_MODELDESC_TYPES_MAX];
    uint64_t other_count; /* tensors of types past the table */
} cli_modeldesc;

/* Describes model id of store s into *ret (always written). Returns 0 when
 * ret->known, -EAGAIN (partial model), -EBADMSG (not a model file the
 * runtime reads, or a header over CLI_MODELDESC_HEADER_MAX), -ENOENT,
 * -ENOMEM or errnos from reading the data file. */
int cli_modeldesc_get(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cli_modeldesc *ret);

/* The quantization a person would name the model by: the tensor type that
 * holds the most parameters ("Q8_0", "F32", ...), or "-" when unknown. */
const char *cli_modeldesc_quant(const cli_modeldesc *d);

/* Emits the description as keys of the JSON object j is in: format,
 * architecture, parameters, context_length, quantization (null when
 * unknown) and tensor_types (type name -> tensor count; {} when unknown). */
void cli_modeldesc_json(cli_json *j, const cli_modeldesc *d);

/* "260K", "1.1M", "7.2B": n in a short human form (buf of 16 bytes). */
const char *cli_modeldesc_fmt_count(uint64_t n, char buf[static 16]);

#endif
