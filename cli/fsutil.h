/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_FSUTIL_H
#define NVX_CLI_FSUTIL_H
/* Small file helpers for commands that write files. */
#include <stddef.h>

/*
 * Writes len bytes to path atomically: into "path.nvx-XXXXXX" beside it,
 * fsync'd, then renamed over path (mode 0644). On failure nothing is left at
 * path (an old file stays). path "-" writes to stdout. Returns 0 or -errno.
 */
int cli_write_file_atomic(const char *path, const void *buf, size_t len);

#endif
