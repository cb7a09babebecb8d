/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_IDENTITY_H
#define NVX_DAEMON_IDENTITY_H
/*
 * The node's Ed25519 identity, kept in the store directory:
 *
 *     DIR/node.key   32-byte Ed25519 seed, raw, mode 0600
 *
 * Created on first start (written to DIR/node.key.tmp, fsync'd, renamed, so
 * a crash never leaves a short key). The node id shown by `nvx status` is
 * the public key derived from it. Startup only (blocking I/O).
 */
#include "proto/session.h"

#define NVX_IDENTITY_FILE "node.key"

/* Loads DIR/node.key or creates it. Writes 1 to *ret_created when it was
 * made now. Returns 0, -EBADMSG (file of the wrong size), errnos. */
int nvx_identity_load(const char *dir, proto_identity **ret, int *ret_created);

#endif
