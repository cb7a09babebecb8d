/* SPDX-License-Identifier: MIT */
/* Fuzz target: nvxd's config file parser (daemon/config.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    nvx_config_defaults(&cfg);
    int r = nvx_config_parse(&cfg, (const char *)data, size, err);
    if (r < 0 && memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap(); /* the message must be a terminated string */
    if (r == 0 && (cfg.n_peers > NVX_CONFIG_PEERS_MAX || cfg.max_peers == 0))
        __builtin_trap();
    return 0;
}
