/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_SHARE_H
#define NVX_DAEMON_SHARE_H
/*
 * What a node shares: the `serve` setting (nvxd.conf, --serve) and the one
 * predicate that every path revealing a model to peers asks (WANT -> HAVE,
 * MANIFEST_REQ, REQUEST, SIGS_REQ in serve.c, the transfer engine's HAVE
 * announcements in fetch.c, provider records in mesh.c).
 *
 *   pinned (default)  models the user pinned (`nvx add --pin`, `nvx pin`,
 *                     `nvx fetch --pin`) or published (`nvx publish` pins
 *                     the model it names), models the node fetched and
 *                     keeps (`nvx fetch` without --no-pin: kept until
 *                     unpinned or evicted by the store quota), plus the
 *                     verified chunks of a model this node is fetching
 *                     right now;
 *   all               every model in the store (complete ones, and the
 *                     verified chunks of partial ones);
 *   none              nothing: the node only fetches.
 *
 * Why pinned is the default: a model that was only added (or fetched
 * without --pin) may be private, and answering for it tells anyone who
 * knows or guesses its id that this node holds it. Signatures and name
 * records that arrived from peers never make a model shared: anyone can
 * make them, so they are not the user's choice.
 *
 * Why a model being fetched is traded under `pinned`: the node has told
 * its peers that it wants the model (WANT) already, and a fetcher that
 * gives nothing back slows every swarm it joins. Once the fetch ends it is
 * shared only if pinned.
 *
 * Pure; any thread.
 */
#include <stdbool.h>

#include "libcas/store.h"

typedef enum nvx_serve_policy {
    NVX_SERVE_PINNED = 0, /* 0, so that a zeroed nvx_node_opts shares the least by default */
    NVX_SERVE_ALL,
    NVX_SERVE_NONE,
    _NVX_SERVE_POLICY_MAX,
} nvx_serve_policy;

/* "pinned", "all" or "none" -> the policy; -EINVAL for anything else. */
int nvx_serve_policy_parse(const char *s);

/* The setting's name for a policy ("?" out of range). */
const char *nvx_serve_policy_name(nvx_serve_policy p);

/* Whether the model described by info (from cas_store_model_info) may be
 * announced and served under policy p. fetching: this node fetches it now
 * (a transfer is running). */
bool nvx_share_allowed(nvx_serve_policy p, const cas_model_info *info, bool fetching);

#endif
