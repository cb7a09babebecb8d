/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_CONFIG_H
#define NVX_DAEMON_CONFIG_H
/*
 * nvxd's settings: defaults, the config file and the command line.
 *
 * Config file (contrib/nvxd.conf.example documents every key): UTF-8/ASCII
 * text, at most NVX_CONFIG_FILE_MAX bytes, one setting per line:
 *
 *     # comment
 *     key = value
 *
 * Blank lines and lines whose first non-blank byte is '#' are ignored. Keys
 * are the long flag names (store, listen, peer, discovery, log-level,
 * max-peers, peer-max-requests, peer-max-bytes, serve, http, require-trusted,
 * max-store-bytes, upnp, relay, control-group, dht, dht-bootstrap, dht-port, upload-rate,
 * download-rate). Values are printable
 * ASCII with no inner '#' handling (a '#' after a value is part of it, so it is refused where the
 * value's syntax does not allow it). Parsing is strict: an unknown key, a repeated key (except
 * peer, which adds one peer per line), a missing '=', an empty or out-of-range value, a control
 * byte, a NUL or a line over NVX_CONFIG_LINE_MAX bytes is an error naming the line.
 *
 * Precedence: defaults < config file < command-line flags (flags given
 * replace file values; --peer adds to the file's peers).
 *
 * Thread safety: none needed; used at startup only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/share.h"

enum nvx_config_limits {
    NVX_CONFIG_FILE_MAX = 64 * 1024,
    NVX_CONFIG_LINE_MAX = 1024,
    NVX_CONFIG_PEERS_MAX = 64,
    NVX_CONFIG_VALUE_MAX = 512, /* bytes of one value (paths, addresses) */
    NVX_CONFIG_ERR_LEN = 256,
    NVX_CONFIG_GROUP_MAX = 32,   /* bytes of a group name (useradd's limit) */
    NVX_CONFIG_DHT_BOOT_MAX = 8, /* dht-bootstrap entries */
};

/* Defaults. */
#define NVX_DEFAULT_LISTEN            "0.0.0.0:4747"
#define NVX_DEFAULT_HTTP              "127.0.0.1:4748" /* the HTTP API (daemon/api.h) */
#define NVX_DEFAULT_MAX_PEERS         64u
#define NVX_DEFAULT_PEER_MAX_REQUESTS 1024u
#define NVX_DEFAULT_PEER_MAX_BYTES    ((uint64_t)8 << 20)
/* The usual public routers of the mainline DHT. */
#define NVX_DEFAULT_DHT_BOOTSTRAP                                                      \
    "router.bittorrent.com:6881,dht.transmissionbt.com:6881,router.utorrent.com:6881," \
    "dht.libtorrent.org:25401"
#define NVX_DEFAULT_DHT_BOOTSTRAP_HELP "router.bittorrent.com:6881 and 3 more"

typedef struct nvx_config {
    char store[NVX_CONFIG_VALUE_MAX];  /* "" = not set (main() applies the XDG default) */
    char listen[NVX_CONFIG_VALUE_MAX]; /* "HOST:PORT"; "none" = do not listen */
    char http[NVX_CONFIG_VALUE_MAX];   /* HTTP API "HOST:PORT" (numeric); "off" = none */
    size_t n_peers;
    char peers[NVX_CONFIG_PEERS_MAX][NVX_CONFIG_VALUE_MAX];
    bool discovery;             /* LAN discovery (handled by a later module) */
    bool upnp;                  /* map the listening port on the router (daemon/natmap.h) */
    bool relay;                 /* relay connection reversal for others (daemon/dht-relay.h) */
    int log_level;              /* enum nvx_log_level */
    unsigned max_peers;         /* connections, 1..4096 */
    unsigned peer_max_requests; /* REQUESTs queued per peer when serving, 1..65536 */
    uint64_t peer_max_bytes;    /* bytes in flight per peer when serving, 64K..1G */
    nvx_serve_policy serve;     /* what peers may see and fetch (daemon/share.h) */
    bool require_trusted;       /* generation loads only models with a trusted signature */
    uint64_t max_store_bytes;   /* store quota (libcas limit), 0 = none */
    bool max_store_set;         /* max-store-bytes given: main() stores it (else left as is) */
    /* control-group: "" = the control socket serves our own uid only; else
     * a group name or decimal gid whose members may use it too (main.c
     * resolves it; the socket becomes 0660 and the store dir 0710). */
    char control_group[NVX_CONFIG_GROUP_MAX + 1];
    bool dht;                                 /* the mainline DHT (daemon/dht-uv.h) */
    char dht_bootstrap[NVX_CONFIG_VALUE_MAX]; /* "HOST:PORT,..." or "none" */
    int dht_port;                             /* UDP; -1: the listen port's number */
    uint64_t upload_rate;   /* bytes/s of DATA served, 0 = unlimited (daemon/ratelimit.h) */
    uint64_t download_rate; /* bytes/s of DATA fetched, all fetches together; 0 = unlimited */
} nvx_config;

/* Fills *cfg with the defaults. */
void nvx_config_defaults(nvx_config *cfg);

/* Parses config file text (len bytes, need not be NUL-terminated) into cfg
 * (which holds defaults or earlier values). Returns 0, or -EINVAL /
 * -EMSGSIZE with "line N: ..." in err[NVX_CONFIG_ERR_LEN]; cfg may then be
 * partly updated. */
int nvx_config_parse(nvx_config *cfg, const char *text, size_t len,
                     char err[static NVX_CONFIG_ERR_LEN]);

/* Reads and parses the file at path. Returns as nvx_config_parse(), plus
 * errnos from open/read (err names the file). */
int nvx_config_load(nvx_config *cfg, const char *path, char err[static NVX_CONFIG_ERR_LEN]);

/* Sets one setting by its key (as a file line would). Returns 0 or -EINVAL
 * with a message in err. */
int nvx_config_set(nvx_config *cfg, const char *key, const char *value,
                   char err[static NVX_CONFIG_ERR_LEN]);

/* Result of nvx_config_args(). */
enum {
    NVX_CONFIG_RUN = 0,
    NVX_CONFIG_HELP = 1,
    NVX_CONFIG_VERSION = 2,
};

/* Parses nvxd's argv (argv[0] is the program): --config FILE first, then
 * every flag over it. Returns NVX_CONFIG_RUN/HELP/VERSION or -EINVAL with a
 * message in err. */
int nvx_config_args(nvx_config *cfg, int argc, char **argv, char err[static NVX_CONFIG_ERR_LEN]);

/* The --help text. */
extern const char nvx_config_usage[];

#endif
