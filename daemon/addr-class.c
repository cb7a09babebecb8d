/* SPDX-License-Identifier: MIT */
#include "daemon/addr-class.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

nvx_addr_class
nvx_addr_class_of(const char *addr)
{
    char host[64];
    const char *end;
    if (addr[0] == '[') {
        addr++;
        end = strchr(addr, ']');
    } else {
        end = strrchr(addr, ':');
    }
    size_t n = end ? (size_t)(end - addr) : strlen(addr);
    if (n >= sizeof(host))
        return NVX_ADDR_INTERNET;
    memcpy(host, addr, n);
    host[n] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET, host, a) == 1) {
        if (a[0] == 127)
            return NVX_ADDR_LOOPBACK;
        if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168) ||
            (a[0] == 169 && a[1] == 254))
            return NVX_ADDR_LAN;
        return NVX_ADDR_INTERNET;
    }
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const uint8_t lo[16] = { [15] = 1 };
        if (memcmp(a, lo, 16) == 0)
            return NVX_ADDR_LOOPBACK;
        if ((a[0] & 0xFE) == 0xFC || (a[0] == 0xFE && (a[1] & 0xC0) == 0x80))
            return NVX_ADDR_LAN;
    }
    return NVX_ADDR_INTERNET;
}

const char *
nvx_addr_class_name(nvx_addr_class c)
{
    static const char *const names[_NVX_ADDR_CLASS_MAX] = { "loopback", "lan", "internet" };
    return (unsigned)c < _NVX_ADDR_CLASS_MAX ? names[c] : "?";
}
