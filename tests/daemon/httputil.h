/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_HTTPUTIL_H
#define NVX_TESTS_HTTPUTIL_H
/*
 * Raw HTTP/1.1 over 127.0.0.1 for the tests of nvxd's HTTP API: dial a
 * port, send a request, read (bounded by DU_WAIT_MS) until a string or
 * EOF, de-chunk a body. Test-only code: it fails the running cmocka test
 * on errors.
 */
#include <stddef.h>

enum {
    HU_RESP_MAX = 512 * 1024, /* bytes of one response */
};

#include "daemonutil.h"

/* The port of d's HTTP API (started with --http 127.0.0.1:0), from its
 * log line; 0 when the log has none. */
unsigned hu_api_port(const du_daemon *d);

/* A connected socket to 127.0.0.1:port. */
int hu_dial(unsigned port);

/* Sends a POST (method POST, or what method says) with body and
 * Connection: close. */
void hu_send(int fd, const char *method, const char *path, const char *body);

/* Reads into buf (HU_RESP_MAX bytes) after its first len bytes until buf
 * holds want (fails on EOF), or until EOF when want is NULL; DU_WAIT_MS at
 * most. Returns the bytes read. */
size_t hu_read_until(int fd, char *buf, size_t len, const char *want);

/* A whole request (Connection: close): its status; *ret_body the body,
 * de-chunked when chunked (malloc'd). body NULL: no body. */
int hu_request(unsigned port, const char *method, const char *path, const char *body,
               char **ret_body);

/* hu_request() with POST. */
int hu_post(unsigned port, const char *path, const char *body, char **ret_body);

/* The concatenated values of "key":"..." in s (malloc'd); the values must
 * hold no escapes (asserted). */
char *hu_join_field(const char *s, const char *key);

/* The integer after "key": in s (the first one), or -1. */
long long hu_int_field(const char *s, const char *key);

#endif
