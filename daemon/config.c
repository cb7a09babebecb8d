/* SPDX-License-Identifier: MIT */
#include "daemon/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/ratelimit.h"

const char nvx_config_usage[] =
    "usage: nvxd [--store DIR] [--listen HOST:PORT|none] [--config FILE]\n"
    "            [--peer HOST:PORT]... [--no-discovery] [--no-upnp] [--no-relay] [--log-level "
    "LEVEL]\n"
    "            [--max-peers N] [--peer-max-requests N] [--peer-max-bytes SIZE]\n"
    "            [--serve pinned|all|none] [--http HOST:PORT|off] [--require-trusted]\n"
    "            [--max-store-bytes SIZE]\n"
    "            [--control-group GROUP]\n"
    "            [--no-dht] [--dht-bootstrap HOST:PORT,...|none] [--dht-port PORT]\n"
    "            [--upload-rate RATE] [--download-rate RATE]\n"
    "\n"
    "The nvx node: serves the pinned models of its store to peers and fetches\n"
    "models for `nvx fetch`. Control socket: STORE/nvxd.sock (mode 0600).\n"
    "\n"
    "  --store DIR            store directory (default $NVX_STORE, else\n"
    "                         ${XDG_DATA_HOME:-$HOME/.local/share}/nvx)\n"
    "  --listen HOST:PORT     peer listen address (default " NVX_DEFAULT_LISTEN ";\n"
    "                         port 0 = ephemeral; 'none' = do not listen)\n"
    "  --config FILE          settings file: 'key = value' lines with the long\n"
    "                         option names as keys (flags override it)\n"
    "  --peer HOST:PORT       also dial this peer (repeatable; `nvx peer add`\n"
    "                         keeps peers in the store instead)\n"
    "  --no-discovery         no LAN discovery (discovery = no)\n"
    "  --no-upnp              do not map the listening port on the home router\n"
    "                         with UPnP-IGD or NAT-PMP (upnp = off)\n"
    "  --no-relay             do not relay connection reversal for others, nor\n"
    "                         offer to on the DHT (relay = off)\n"
    "  --log-level LEVEL      error, warn, info (default) or debug\n"
    "  --max-peers N          peer connections (default 64)\n"
    "  --peer-max-requests N  requests queued per peer when serving (default 1024)\n"
    "  --peer-max-bytes SIZE  bytes in flight per peer when serving (default 8M)\n"
    "  --serve WHAT           models peers may see and fetch: pinned (default;\n"
    "                         pinned or published models, and the chunks of a\n"
    "                         model being fetched), all, or none\n"
    "  --http HOST:PORT|off   the HTTP API for local apps (Ollama- and\n"
    "                         OpenAI-compatible; default " NVX_DEFAULT_HTTP ";\n"
    "                         numeric address; anything but the loopback\n"
    "                         lets every host that reaches it use the API)\n"
    "  --max-store-bytes SIZE store quota (K, M, G suffixes; 0 = none): at\n"
    "                         start, after each add and around each fetch,\n"
    "                         unpinned models go, then fetched (kept) ones,\n"
    "                         least recently used first, until the store fits;\n"
    "                         pinned models are never removed for it\n"
    "  --upload-rate RATE     bytes/s of model data served to peers (K, M, G\n"
    "                         suffixes; 0 = unlimited, the default)\n"
    "  --download-rate RATE   bytes/s of model data fetched, all fetches\n"
    "                         together (0 = unlimited; nvx fetch --rate limits\n"
    "                         one fetch)\n"
    "  --require-trusted      generate only with models signed by a trusted\n"
    "                         key (require-trusted = yes; also\n"
    "                         NVX_REQUIRE_TRUSTED=1, as for nvx run)\n"
    "  --control-group GROUP  members of GROUP (a name or gid) may use the\n"
    "                         control socket too (it becomes mode 0660)\n"
    "  --no-dht               no BitTorrent mainline DHT (dht = off): models are\n"
    "                         not announced there, nor providers and names\n"
    "                         looked up there (--dht turns it back on)\n"
    "  --dht-bootstrap LIST   HOST:PORT,... the DHT joins through (default the\n"
    "                         public routers: " NVX_DEFAULT_DHT_BOOTSTRAP_HELP ");\n"
    "                         'none' = only nodes saved from an earlier run\n"
    "  --dht-port PORT        the DHT's UDP port (default: the listen port's\n"
    "                         number; 0 = ephemeral)\n"
    "  -h, --help             this text\n"
    "  --version              print the version\n"
    "\n"
    "Stops cleanly on SIGTERM or SIGINT.\n";

void
nvx_config_defaults(nvx_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "%s", NVX_DEFAULT_LISTEN);
    snprintf(cfg->http, sizeof(cfg->http), "%s", NVX_DEFAULT_HTTP);
    cfg->discovery = true;
    cfg->upnp = true;
    cfg->relay = true;
    cfg->log_level = NVX_LOG_INFO;
    cfg->max_peers = NVX_DEFAULT_MAX_PEERS;
    cfg->peer_max_requests = NVX_DEFAULT_PEER_MAX_REQUESTS;
    cfg->peer_max_bytes = NVX_DEFAULT_PEER_MAX_BYTES;
    cfg->serve = NVX_SERVE_PINNED;
    cfg->dht = true;
    snprintf(cfg->dht_bootstrap, sizeof(cfg->dht_bootstrap), "%s", NVX_DEFAULT_DHT_BOOTSTRAP);
    cfg->dht_port = -1;
}

/* "HOST:PORT,HOST:PORT" (at most NVX_CONFIG_DHT_BOOT_MAX, ports 1..65535)
 * or "none". */
static bool
bootstrap_ok(const char *v)
{
    if (strcmp(v, "none") == 0)
        return true;
    unsigned n = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        const char *colon = NULL;
        for (const char *q = p; q < p + len; q++)
            if (*q == ':')
                colon = q;
        if (!colon || colon == p || colon + 1 == p + len || ++n > NVX_CONFIG_DHT_BOOT_MAX)
            return false;
        unsigned long port = 0;
        for (const char *q = colon + 1; q < p + len; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return false;
            port = port * 10 + (unsigned long)(*q - '0');
        }
        if (port == 0 || port > 65535)
            return false;
        p += len;
        if (*p == ',' && *++p == '\0')
            return false;
    }
    return n > 0;
}

/* Strict decimal in [min, max] with an optional K/M/G suffix (powers of 1024)
 * when allow_suffix. */
static int
parse_u64(const char *s, bool allow_suffix, uint64_t min, uint64_t max, uint64_t *ret)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    if (*s != '\0') {
        if (!allow_suffix || s[1] != '\0')
            return -EINVAL;
        unsigned shift;
        switch (*s) {
        case 'K':
        case 'k':
            shift = 10;
            break;
        case 'M':
        case 'm':
            shift = 20;
            break;
        case 'G':
        case 'g':
            shift = 30;
            break;
        default:
            return -EINVAL;
        }
        if (v > (UINT64_MAX >> shift))
            return -EINVAL;
        v <<= shift;
    }
    if (v < min || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int
parse_bool(const char *s, bool *ret)
{
    if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 || strcmp(s, "on") == 0 ||
        strcmp(s, "1") == 0) {
        *ret = true;
        return 0;
    }
    if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 || strcmp(s, "off") == 0 ||
        strcmp(s, "0") == 0) {
        *ret = false;
        return 0;
    }
    return -EINVAL;
}

/* An address token: printable, no spaces, "HOST:PORT" shape (the transport
 * checks the rest when it dials or listens). */
static bool
addr_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n >= 96)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '#')
            return false;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon[1] == '\0')
        return false;
    uint64_t port;
    return parse_u64(colon + 1, false, 0, 65535, &port) == 0;
}

/* A group: a decimal gid, or a name as useradd(8) takes it (letters,
 * digits, '_', '-', '.'; not starting with '-'). */
static bool
group_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NVX_CONFIG_GROUP_MAX || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int
nvx_config_set(nvx_config *cfg, const char *key, const char *value,
               char err[static NVX_CONFIG_ERR_LEN])
{
    size_t vlen = strlen(value);
    uint64_t u;
    if (vlen == 0) {
        snprintf(err, NVX_CONFIG_ERR_LEN, "%.64s: empty value", key);
        return -EINVAL;
    }
    if (vlen >= NVX_CONFIG_VALUE_MAX) {
        snprintf(err, NVX_CONFIG_ERR_LEN, "%.64s: value longer than %d bytes", key,
                 NVX_CONFIG_VALUE_MAX - 1);
        return -EINVAL;
    }
    if (strcmp(key, "store") == 0) {
        memcpy(cfg->store, value, vlen + 1);
        return 0;
    }
    if (strcmp(key, "listen") == 0) {
        if (strcmp(value, "none") != 0 && !addr_ok(value))
            goto bad;
        memcpy(cfg->listen, value, vlen + 1);
        return 0;
    }
    if (strcmp(key, "http") == 0) {
        if (strcmp(value, "off") != 0 && !addr_ok(value))
            goto bad;
        memcpy(cfg->http, value, vlen + 1);
        return 0;
    }
    if (strcmp(key, "peer") == 0) {
        if (!addr_ok(value) || strcmp(value + vlen - 2, ":0") == 0)
            goto bad;
        if (cfg->n_peers >= NVX_CONFIG_PEERS_MAX) {
            snprintf(err, NVX_CONFIG_ERR_LEN, "peer: more than %d peers", NVX_CONFIG_PEERS_MAX);
            return -EINVAL;
        }
        memcpy(cfg->peers[cfg->n_peers++], value, vlen + 1);
        return 0;
    }
    if (strcmp(key, "control-group") == 0) {
        if (!group_ok(value))
            goto bad;
        memcpy(cfg->control_group, value, vlen + 1);
        return 0;
    }
    if (strcmp(key, "discovery") == 0) {
        if (parse_bool(value, &cfg->discovery) < 0)
            goto bad;
        return 0;
    }
    if (strcmp(key, "upnp") == 0) {
        if (parse_bool(value, &cfg->upnp) < 0)
            goto bad;
        return 0;
    }
    if (strcmp(key, "relay") == 0) {
        if (parse_bool(value, &cfg->relay) < 0)
            goto bad;
        return 0;
    }
    if (strcmp(key, "dht") == 0) {
        if (parse_bool(value, &cfg->dht) < 0)
            goto bad;
        return 0;
    }
    if (strcmp(key, "dht-bootstrap") == 0) {
        if (!bootstrap_ok(value))
            goto bad;
        memcpy(cfg->dht_bootstrap, value, vlen + 1);
        return 0;
    }
    if (strcmp(key, "dht-port") == 0) {
        if (parse_u64(value, false, 0, 65535, &u) < 0)
            goto bad;
        cfg->dht_port = (int)u;
        return 0;
    }
    if (strcmp(key, "require-trusted") == 0) {
        if (parse_bool(value, &cfg->require_trusted) < 0)
            goto bad;
        return 0;
    }
    if (strcmp(key, "log-level") == 0) {
        int l = nvx_log_level_parse(value);
        if (l < 0)
            goto bad;
        cfg->log_level = l;
        return 0;
    }
    if (strcmp(key, "max-peers") == 0) {
        if (parse_u64(value, false, 1, 4096, &u) < 0)
            goto bad;
        cfg->max_peers = (unsigned)u;
        return 0;
    }
    if (strcmp(key, "peer-max-requests") == 0) {
        if (parse_u64(value, false, 1, 65536, &u) < 0)
            goto bad;
        cfg->peer_max_requests = (unsigned)u;
        return 0;
    }
    if (strcmp(key, "peer-max-bytes") == 0) {
        if (parse_u64(value, true, 64 * 1024, (uint64_t)1 << 30, &u) < 0)
            goto bad;
        cfg->peer_max_bytes = u;
        return 0;
    }
    if (strcmp(key, "max-store-bytes") == 0) {
        if (parse_u64(value, true, 0, (uint64_t)1 << 62, &u) < 0)
            goto bad;
        cfg->max_store_bytes = u;
        cfg->max_store_set = true;
        return 0;
    }
    if (strcmp(key, "upload-rate") == 0 || strcmp(key, "download-rate") == 0) {
        if (parse_u64(value, true, 0, NVX_RATE_MAX, &u) < 0 || (u && u < NVX_RATE_MIN))
            goto bad;
        *(key[0] == 'u' ? &cfg->upload_rate : &cfg->download_rate) = u;
        return 0;
    }
    if (strcmp(key, "serve") == 0) {
        int p = nvx_serve_policy_parse(value);
        if (p < 0) {
            snprintf(err, NVX_CONFIG_ERR_LEN, "serve: use pinned, all or none");
            return -EINVAL;
        }
        cfg->serve = (nvx_serve_policy)p;
        return 0;
    }
    snprintf(err, NVX_CONFIG_ERR_LEN, "unknown setting '%.64s'", key);
    return -EINVAL;
bad:
    snprintf(err, NVX_CONFIG_ERR_LEN, "%.64s: bad value", key);
    return -EINVAL;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one line (no newline, NUL-terminated copy). seen: bit per
 * non-repeatable key already set in this file. */
static int
parse_line(nvx_config *cfg, char *line, unsigned *seen, char err[static NVX_CONFIG_ERR_LEN])
{
    static const char *const once[] = { "store",           "listen",          "discovery",
                                        "log-level",       "max-peers",       "peer-max-requests",
                                        "peer-max-bytes",  "serve",           "http",
                                        "require-trusted", "max-store-bytes", "upnp",
                                        "relay",           "control-group",   "dht",
                                        "dht-bootstrap",   "dht-port",        "upload-rate",
                                        "download-rate" };
    char *p = line;
    while (is_blank(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    char *key = p;
    while (*p && !is_blank(*p) && *p != '=')
        p++;
    char *key_end = p;
    while (is_blank(*p))
        p++;
    if (*p != '=') {
        snprintf(err, NVX_CONFIG_ERR_LEN, "expected 'key = value'");
        return -EINVAL;
    }
    *key_end = '\0';
    p++;
    while (is_blank(*p))
        p++;
    char *value = p;
    char *end = value + strlen(value);
    while (end > value && is_blank(end[-1]))
        end--;
    *end = '\0';
    if (*key == '\0') {
        snprintf(err, NVX_CONFIG_ERR_LEN, "missing key before '='");
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
        if (strcmp(key, once[i]) == 0) {
            if (*seen & (1u << i)) {
                snprintf(err, NVX_CONFIG_ERR_LEN, "%.64s: set twice", key);
                return -EINVAL;
            }
            *seen |= 1u << i;
        }
    }
    return nvx_config_set(cfg, key, value, err);
}

int
nvx_config_parse(nvx_config *cfg, const char *text, size_t len, char err[static NVX_CONFIG_ERR_LEN])
{
    char line[NVX_CONFIG_LINE_MAX + 1];
    char msg[NVX_CONFIG_ERR_LEN];
    unsigned seen = 0;
    size_t lineno = 0, off = 0;
    if (len > NVX_CONFIG_FILE_MAX) {
        snprintf(err, NVX_CONFIG_ERR_LEN, "file larger than %d bytes", NVX_CONFIG_FILE_MAX);
        return -EMSGSIZE;
    }
    while (off < len) {
        lineno++;
        size_t n = 0;
        while (off + n < len && text[off + n] != '\n')
            n++;
        size_t next = off + n + (off + n < len ? 1 : 0);
        if (n > 0 && text[off + n - 1] == '\r')
            n--; /* CRLF files are accepted */
        if (n > NVX_CONFIG_LINE_MAX) {
            snprintf(err, NVX_CONFIG_ERR_LEN, "line %zu: longer than %d bytes", lineno,
                     NVX_CONFIG_LINE_MAX);
            return -EMSGSIZE;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)text[off + i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                snprintf(err, NVX_CONFIG_ERR_LEN, "line %zu: control byte 0x%02x", lineno, c);
                return -EINVAL;
            }
        }
        memcpy(line, text + off, n);
        line[n] = '\0';
        int r = parse_line(cfg, line, &seen, msg);
        if (r < 0) {
            snprintf(err, NVX_CONFIG_ERR_LEN, "line %zu: %.200s", lineno, msg);
            return r;
        }
        off = next;
    }
    return 0;
}

int
nvx_config_load(nvx_config *cfg, const char *path, char err[static NVX_CONFIG_ERR_LEN])
{
    char msg[NVX_CONFIG_ERR_LEN];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        snprintf(err, NVX_CONFIG_ERR_LEN, "%.200s: %s", path, strerror(errno));
        return r;
    }
    char *buf = malloc(NVX_CONFIG_FILE_MAX + 1);
    size_t len = 0;
    int r = 0;
    if (!buf) {
        r = -ENOMEM;
        snprintf(err, NVX_CONFIG_ERR_LEN, "%.200s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, NVX_CONFIG_FILE_MAX + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            snprintf(err, NVX_CONFIG_ERR_LEN, "%.200s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > NVX_CONFIG_FILE_MAX)
            break;
    }
    r = nvx_config_parse(cfg, buf, len, msg);
    if (r < 0)
        snprintf(err, NVX_CONFIG_ERR_LEN, "%.40s: %.200s", path, msg);
out:
    free(buf);
    close(fd);
    return r;
}

/* Flags that take a value, mapped to config keys. */
static const char *const valued[] = { "store",           "listen",        "peer",
                                      "log-level",       "max-peers",     "peer-max-requests",
                                      "peer-max-bytes",  "serve",         "http",
                                      "max-store-bytes", "control-group", "dht-bootstrap",
                                      "dht-port",        "upload-rate",   "download-rate" };

static const char *
flag_value(int argc, char **argv, int *i, const char *name, char err[static NVX_CONFIG_ERR_LEN])
{
    const char *a = argv[*i] + 2;
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        snprintf(err, NVX_CONFIG_ERR_LEN, "--%s needs a value", name);
        return NULL;
    }
    return argv[++*i];
}

int
nvx_config_args(nvx_config *cfg, int argc, char **argv, char err[static NVX_CONFIG_ERR_LEN])
{
    char msg[NVX_CONFIG_ERR_LEN];
    /* Pass 1: --help, --version, --config. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return NVX_CONFIG_HELP;
        if (strcmp(a, "--version") == 0)
            return NVX_CONFIG_VERSION;
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            const char *v = flag_value(argc, argv, &i, "config", err);
            if (!v)
                return -EINVAL;
            int r = nvx_config_load(cfg, v, err);
            if (r < 0)
                return -EINVAL;
        }
    }
    /* Pass 2: every flag over the file's values; --peer adds. */
    bool file_peers_dropped = false;
    (void)file_peers_dropped;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            if (a[8] == '\0')
                i++;
            continue;
        }
        if (strcmp(a, "--no-discovery") == 0) {
            cfg->discovery = false;
            continue;
        }
        if (strcmp(a, "--no-upnp") == 0) {
            cfg->upnp = false;
            continue;
        }
        if (strcmp(a, "--no-relay") == 0) {
            cfg->relay = false;
            continue;
        }
        if (strcmp(a, "--no-dht") == 0 || strcmp(a, "--dht") == 0) {
            cfg->dht = a[2] == 'd';
            continue;
        }
        if (strcmp(a, "--require-trusted") == 0) {
            cfg->require_trusted = true;
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
            size_t n = strlen(valued[k]);
            if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, valued[k], n) == 0 &&
                (a[2 + n] == '\0' || a[2 + n] == '=')) {
                const char *v = flag_value(argc, argv, &i, valued[k], err);
                if (!v)
                    return -EINVAL;
                if (nvx_config_set(cfg, valued[k], v, msg) < 0) {
                    snprintf(err, NVX_CONFIG_ERR_LEN, "--%.250s", msg);
                    return -EINVAL;
                }
                matched = true;
                break;
            }
        }
        if (!matched) {
            snprintf(err, NVX_CONFIG_ERR_LEN, "unknown argument '%.64s' (see --help)", a);
            return -EINVAL;
        }
    }
    return NVX_CONFIG_RUN;
}
