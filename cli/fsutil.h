/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_FSUTIL_H
#define NVX_CLI_FSUTIL_H
/* Small file helpers for commands that write files. */
#include <stdbool.h>
#include <stddef.h>

/*
 * Writes len bytes to path atomically: into "path.nvx-XXXXXX" beside it,
 * fsync'd, then renamed over path (mode 0644). On failure nothing is left at
 * path (an old file stays). path "-" writes to stdout. Returns 0 or -errno.
 */
int cli_write_file_atomic(const char *path, const void *buf, size_t len);

/*
 * mkdir -p with mode 0700 for every directory it creates (stores and key
 * directories hold trust decisions and secrets: nobody else should list
 * them). With last false only the parents of path are made (path names a
 * file). Existing directories are left as they are. Returns 0 or -errno.
 */
int cli_mkdir_p(const char *path, bool last);

#endif
