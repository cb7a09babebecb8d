/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_ADDR_CLASS_H
#define NVX_DAEMON_ADDR_CLASS_H
/*
 * Which kind of network a peer's address is on: the label of the status
 * JSON's peers (daemon/status.c) and of /metrics' per-class bytes
 * (daemon/api-status.c). Pure.
 */
typedef enum nvx_addr_class {
    NVX_ADDR_LOOPBACK,
    NVX_ADDR_LAN, /* private, link-local and unique-local ranges */
    NVX_ADDR_INTERNET,
    _NVX_ADDR_CLASS_MAX
} nvx_addr_class;

/* The class of "HOST:PORT" or "[V6]:PORT" (numeric); unknown text is
 * NVX_ADDR_INTERNET. */
nvx_addr_class nvx_addr_class_of(const char *addr);

/* "loopback", "lan", "internet". */
const char *nvx_addr_class_name(nvx_addr_class c);

#endif
