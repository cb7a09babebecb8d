/* SPDX-License-Identifier: MIT */
/* How this node can be reached (daemon/reach.h). */
#include "daemon/reach.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "transport/tcp.h"

bool
nvx_reach_ipv4_private(const char *host)
{
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return true;
    uint32_t ip = ntohl(a.s_addr);
    return ip >> 24 == 0 || ip >> 24 == 10 || ip >> 24 == 127 || ip >> 16 == 0xa9fe ||
           ip >> 20 == 0xac1 || ip >> 16 == 0xc0a8 || ip >> 22 == (100u << 2 | 1);
}

bool
nvx_reach_public_addr(const char *listen, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    if (!listen || !listen[0] || tp_tcp_addr_parse(listen, 0, &ss) < 0 || ss.ss_family != AF_INET)
        return false;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    unsigned port = ntohs(sin->sin_port);
    char host[INET_ADDRSTRLEN];
    if (sin->sin_addr.s_addr != 0) {
        if (!inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) || nvx_reach_ipv4_private(host))
            return false;
        snprintf(out, cap, "%s:%u", host, port);
        return true;
    }
    uv_interface_address_t *ifs;
    int n;
    if (uv_interface_addresses(&ifs, &n) != 0)
        return false;
    bool found = false;
    for (int i = 0; i < n && !found; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET ||
            !inet_ntop(AF_INET, &ifs[i].address.address4.sin_addr, host, sizeof(host)) ||
            nvx_reach_ipv4_private(host))
            continue;
        snprintf(out, cap, "%s:%u", host, port);
        found = true;
    }
    uv_free_interface_addresses(ifs, n);
    return found;
}

size_t
nvx_reach_local_addrs(const char *listen, char (*out)[NVX_REACH_ADDR_LEN], size_t max)
{
    struct sockaddr_storage ss;
    if (!listen || !listen[0] || max == 0)
        return 0;
    if (tp_tcp_addr_parse(listen, 0, &ss) < 0 || ss.ss_family != AF_INET ||
        ((const struct sockaddr_in *)&ss)->sin_addr.s_addr != 0) {
        snprintf(out[0], NVX_REACH_ADDR_LEN, "%s", listen);
        return 1;
    }
    unsigned port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    uv_interface_address_t *ifs;
    int n;
    if (uv_interface_addresses(&ifs, &n) != 0)
        return 0;
    size_t k = 0;
    for (int i = 0; i < n && k < max; i++) {
        char host[INET_ADDRSTRLEN];
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET ||
            !inet_ntop(AF_INET, &ifs[i].address.address4.sin_addr, host, sizeof(host)))
            continue;
        snprintf(out[k++], NVX_REACH_ADDR_LEN, "%s:%u", host, port);
    }
    uv_free_interface_addresses(ifs, n);
    return k;
}

int
nvx_reach_describe(const char *listen, const char *ext, const char *how, const char *public,
                   unsigned relays, char *msg, size_t cap)
{
    if (ext && ext[0]) {
        snprintf(msg, cap, "reachable at %s (%s maps it to %s)", ext,
                 strcmp(how, "upnp") == 0 ? "UPnP" : "NAT-PMP", listen);
        return PROTO_CTL_REACH_MAPPED;
    }
    if (public && public[0]) {
        snprintf(msg, cap, "reachable at %s (a public address of this host)", public);
        return PROTO_CTL_REACH_PUBLIC;
    }
    if (listen && listen[0] && relays > 0) {
        snprintf(msg, cap, "behind NAT, reachable by reversal through %u relay%s", relays,
                 relays == 1 ? "" : "s");
        return PROTO_CTL_REACH_REVERSAL;
    }
    snprintf(msg, cap, "not reachable from outside%s",
             listen && listen[0] ? " (no router mapping, no relay)" : " (not listening)");
    return PROTO_CTL_REACH_NONE;
}
