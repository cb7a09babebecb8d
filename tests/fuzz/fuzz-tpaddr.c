/* SPDX-License-Identifier: MIT */
/*
 * Address strings reach tp_tcp_addr_parse() from config files, the command
 * line and peer exchange (other nodes' listen addresses), so they are
 * untrusted. Property: whatever parses formats back to a string that parses
 * to the same socket address. Host-name dials ("NAME:PORT") are parsed by
 * tp_tcp_hostport_parse(); no string may be taken as both a name and a
 * numeric address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[2 * TP_ADDR_MAX];
    if (size >= sizeof(s))
        size = sizeof(s) - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    struct sockaddr_storage a, b;
    char host[TP_TCP_HOST_MAX];
    unsigned port;
    if (tp_tcp_hostport_parse(s, host, &port) == 0) {
        if (port == 0 || port > 65535 || strlen(host) >= size || tp_tcp_addr_parse(s, 1, &a) == 0)
            abort();
        return 0;
    }
    if (tp_tcp_addr_parse(s, 1, &a) < 0)
        return 0;
    char back[TP_ADDR_MAX];
    if (tp_tcp_addr_format((struct sockaddr *)&a, back) < 0)
        abort();
    if (tp_tcp_addr_parse(back, 1, &b) < 0 || memcmp(&a, &b, sizeof(a)) != 0)
        abort();
    return 0;
}
