/* SPDX-License-Identifier: MIT */
#include "daemon/share.h"

#include <errno.h>
#include <string.h>

static const char *const names[_NVX_SERVE_POLICY_MAX] = {
    [NVX_SERVE_PINNED] = "pinned",
    [NVX_SERVE_ALL] = "all",
    [NVX_SERVE_NONE] = "none",
};

int
nvx_serve_policy_parse(const char *s)
{
    for (int i = 0; i < _NVX_SERVE_POLICY_MAX; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *
nvx_serve_policy_name(nvx_serve_policy p)
{
    return (unsigned)p < _NVX_SERVE_POLICY_MAX ? names[p] : "?";
}

bool
nvx_share_allowed(nvx_serve_policy p, const cas_model_info *info, bool fetching)
{
    switch (p) {
    case NVX_SERVE_ALL:
        return true;
    case NVX_SERVE_PINNED:
        /* A published model is pinned (cli/cmd-publish.c); a fetched one
         * is kept (daemon/fetch.c) and seeded as long as it stays. */
        return info->pinned || info->kept || fetching;
    case NVX_SERVE_NONE:
    case _NVX_SERVE_POLICY_MAX:
        break;
    }
    return false;
}
