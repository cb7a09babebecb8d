/* SPDX-License-Identifier: MIT */
/* The nvxd config file and command line (daemon/config.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "testutil.h"

static int
parse(nvx_config *cfg, const char *text, char *err)
{
    nvx_config_defaults(cfg);
    return nvx_config_parse(cfg, text, strlen(text), err);
}

static void
test_defaults(void **state)
{
    nvx_config cfg;
    nvx_config_defaults(&cfg);
    assert_string_equal(cfg.listen, NVX_DEFAULT_LISTEN);
    assert_true(cfg.discovery);
    assert_int_equal(cfg.log_level, NVX_LOG_INFO);
    assert_int_equal(cfg.max_peers, NVX_DEFAULT_MAX_PEERS);
    assert_int_equal(cfg.n_peers, 0);
    assert_string_equal(cfg.store, "");
    assert_string_equal(cfg.http, NVX_DEFAULT_HTTP);
}

/* http = HOST:PORT|off, once; --http over the file. */
static void
test_http(void **state)
{
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    assert_int_equal(parse(&cfg, "http = off\n", err), 0);
    assert_string_equal(cfg.http, "off");
    assert_int_equal(parse(&cfg, "http = [::1]:8080\n", err), 0);
    assert_string_equal(cfg.http, "[::1]:8080");
    assert_int_equal(parse(&cfg, "http = on\n", err), -EINVAL);
    assert_int_equal(parse(&cfg, "http = 127.0.0.1\n", err), -EINVAL);
    assert_int_equal(parse(&cfg, "http = 127.0.0.1:65536\n", err), -EINVAL);
    assert_int_equal(parse(&cfg, "http = off\nhttp = off\n", err), -EINVAL);
    nvx_config_defaults(&cfg);
    char *argv[] = { "nvxd", "--http", "127.0.0.1:0", NULL };
    assert_int_equal(nvx_config_args(&cfg, 3, argv, err), NVX_CONFIG_RUN);
    assert_string_equal(cfg.http, "127.0.0.1:0");
}

/* control-group: a group name or gid, never anything a shell or a path
 * could make more of; set once. */
static void
test_control_group(void **state)
{
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    nvx_config_defaults(&cfg);
    assert_string_equal(cfg.control_group, "");
    assert_int_equal(parse(&cfg, "control-group = nvx\n", err), 0);
    assert_string_equal(cfg.control_group, "nvx");
    assert_int_equal(parse(&cfg, "control-group = 4242\n", err), 0);
    assert_string_equal(cfg.control_group, "4242");
    assert_int_equal(parse(&cfg, "control-group = a_b-c.d\n", err), 0);
    const char *bad[] = {
        "control-group = -nvx\n",
        "control-group = n vx\n",
        "control-group = nvx#\n",
        "control-group = ../etc\n",
        "control-group = nvx:x\n",
        "control-group =\n",
        "control-group = nvx\ncontrol-group = nvx\n",
        "control-group = 012345678901234567890123456789012\n", /* 33 bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(&cfg, bad[i], err) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    /* 32 bytes is the limit, not over it. */
    assert_int_equal(parse(&cfg, "control-group = 01234567890123456789012345678901\n", err), 0);
    nvx_config_defaults(&cfg);
    char *argv[] = { "nvxd", "--control-group", "nvx", NULL };
    assert_int_equal(nvx_config_args(&cfg, 3, argv, err), NVX_CONFIG_RUN);
    assert_string_equal(cfg.control_group, "nvx");
}

static void
test_dht(void **state)
{
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    nvx_config_defaults(&cfg);
    assert_true(cfg.dht);
    assert_non_null(strstr(cfg.dht_bootstrap, "router.bittorrent.com:6881"));
    assert_int_equal(cfg.dht_port, -1);
    assert_int_equal(parse(&cfg, "dht = off\ndht-bootstrap = none\ndht-port = 0\n", err), 0);
    assert_false(cfg.dht);
    assert_string_equal(cfg.dht_bootstrap, "none");
    assert_int_equal(cfg.dht_port, 0);
    assert_int_equal(parse(&cfg, "dht-bootstrap = 127.0.0.1:6881,node.example:1\n", err), 0);
    static const char *const bad[] = { "dht-bootstrap = host\n",
                                       "dht-bootstrap = :1\n",
                                       "dht-bootstrap = a:0\n",
                                       "dht-bootstrap = a:1,\n",
                                       "dht-bootstrap = a:65536\n",
                                       "dht-bootstrap = a:1x\n",
                                       "dht-bootstrap = a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1\n",
                                       "dht-port = 65536\n",
                                       "dht = maybe\n",
                                       "dht = on\ndht = off\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(&cfg, bad[i], err), -EINVAL);
    nvx_config_defaults(&cfg);
    char *argv[] = { "nvxd", "--no-dht", "--dht-bootstrap", "127.0.0.1:9", "--dht-port=7", NULL };
    assert_int_equal(nvx_config_args(&cfg, 5, argv, err), NVX_CONFIG_RUN);
    assert_false(cfg.dht);
    assert_string_equal(cfg.dht_bootstrap, "127.0.0.1:9");
    assert_int_equal(cfg.dht_port, 7);
    char *on[] = { "nvxd", "--no-dht", "--dht", NULL };
    assert_int_equal(nvx_config_args(&cfg, 3, on, err), NVX_CONFIG_RUN);
    assert_true(cfg.dht);
}

static void
test_full_file(void **state)
{
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    const char *text = "# nvxd settings\n"
                       "\n"
                       "store = /var/lib/nvx\n"
                       "listen=127.0.0.1:4000\r\n"
                       "  peer = 10.0.0.1:4747  \n"
                       "peer = node.example:4747\n"
                       "\tdiscovery = no\n"
                       "log-level = debug\n"
                       "max-peers = 10\n"
                       "peer-max-requests = 32\n"
                       "peer-max-bytes = 8M\n"
                       "serve = all\n"
                       "max-store-bytes = 20G\n"
                       "upnp = off\n"
                       "relay = no\n"
                       "upload-rate = 2M\n"
                       "download-rate = 0\n"
                       "# end";
    assert_int_equal(parse(&cfg, text, err), 0);
    assert_string_equal(cfg.store, "/var/lib/nvx");
    assert_string_equal(cfg.listen, "127.0.0.1:4000");
    assert_int_equal(cfg.n_peers, 2);
    assert_string_equal(cfg.peers[0], "10.0.0.1:4747");
    assert_string_equal(cfg.peers[1], "node.example:4747");
    assert_false(cfg.discovery);
    assert_false(cfg.relay);
    assert_int_equal(cfg.log_level, NVX_LOG_DEBUG);
    assert_int_equal(cfg.max_peers, 10);
    assert_int_equal(cfg.peer_max_requests, 32);
    assert_int_equal(cfg.peer_max_bytes, 8u << 20);
    assert_int_equal(cfg.serve, NVX_SERVE_ALL);
    assert_true(cfg.max_store_set);
    assert_int_equal(cfg.max_store_bytes, (uint64_t)20 << 30);
    assert_false(cfg.upnp);
    assert_int_equal(cfg.upload_rate, 2u << 20);
    assert_int_equal(cfg.download_rate, 0);
    nvx_config_defaults(&cfg);
    assert_int_equal(cfg.upload_rate, 0); /* unlimited by default */
    assert_false(cfg.max_store_set);
    assert_int_equal(cfg.serve, NVX_SERVE_PINNED); /* the default shares the least */
    assert_true(cfg.upnp);                         /* home routers map the port by default */
}

/* Every malformed input is an error naming the line, never a crash. */
static void
test_malformed(void **state)
{
    static const struct {
        const char *text;
        const char *want; /* substring of the message */
    } cases[] = {
        { "bogus = 1\n", "line 1: unknown setting" },
        { "listen 127.0.0.1:1\n", "line 1: expected" },
        { "= x\n", "missing key" },
        { "listen =\n", "empty value" },
        { "\nlisten = nowhere\n", "line 2: listen: bad value" },
        { "listen = 1.2.3.4:99999\n", "bad value" },
        { "listen = 1.2.3.4:\n", "bad value" },
        { "peer = 1.2.3.4:0\n", "bad value" },
        { "peer = a b:1\n", "bad value" },
        { "discovery = maybe\n", "bad value" },
        { "upnp = sometimes\n", "upnp: bad value" },
        { "upnp = on\nupnp = off\n", "line 2" },
        { "log-level = loud\n", "bad value" },
        { "max-peers = 0\n", "bad value" },
        { "max-peers = 4097\n", "bad value" },
        { "max-peers = -1\n", "bad value" },
        { "max-peers = 18446744073709551616\n", "bad value" },
        { "max-peers = 1K\n", "bad value" },
        { "peer-max-bytes = 1\n", "bad value" },
        { "peer-max-bytes = 2T\n", "bad value" },
        { "peer-max-bytes = 99999999999999999999G\n", "bad value" },
        { "max-store-bytes = 1T\n", "bad value" },
        { "max-store-bytes = -1\n", "bad value" },
        { "upload-rate = 100\n", "bad value" }, /* under NVX_RATE_MIN */
        { "download-rate = fast\n", "bad value" },
        { "upload-rate = 1M\nupload-rate = 2M\n", "line 2: upload-rate: set twice" },
        { "max-store-bytes = 1G\nmax-store-bytes = 2G\n", "line 2: max-store-bytes: set twice" },
        { "store = a\nstore = b\n", "line 2: store: set twice" },
        { "serve = everything\n", "serve: use pinned, all or none" },
        { "serve = none\nserve = all\n", "line 2: serve: set twice" },
        { "listen = 1.2.3.4:1 # comment\n", "bad value" },
        { "store = a\x01\n", "control byte" },
        { "store = a\x7f\n", "control byte" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nvx_config cfg;
        char err[NVX_CONFIG_ERR_LEN] = "";
        int r = parse(&cfg, cases[i].text, err);
        if (r != -EINVAL || !strstr(err, cases[i].want))
            fail_msg("case %zu: r=%d err='%s', want '%s'", i, r, err, cases[i].want);
    }
}

static void
test_limits(void **state)
{
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    /* A NUL inside the text is a control byte. */
    const char nul[] = "store = a\0b\n";
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_parse(&cfg, nul, sizeof(nul) - 1, err), -EINVAL);
    /* Longest line accepted, one more refused. */
    char *line = malloc(NVX_CONFIG_LINE_MAX + 3);
    memset(line, 'x', NVX_CONFIG_LINE_MAX + 2);
    memcpy(line, "store = ", 8);
    line[NVX_CONFIG_LINE_MAX + 1] = '\n';
    line[NVX_CONFIG_LINE_MAX + 2] = '\0';
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_parse(&cfg, line, strlen(line), err), -EMSGSIZE);
    line[NVX_CONFIG_LINE_MAX] = '\n';
    line[NVX_CONFIG_LINE_MAX + 1] = '\0';
    nvx_config_defaults(&cfg);
    /* 1016 bytes of value: over NVX_CONFIG_VALUE_MAX, refused cleanly. */
    assert_int_equal(nvx_config_parse(&cfg, line, strlen(line), err), -EINVAL);
    free(line);
    /* Files over the size limit. */
    size_t big = NVX_CONFIG_FILE_MAX + 1;
    char *text = malloc(big);
    memset(text, '\n', big);
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_parse(&cfg, text, big, err), -EMSGSIZE);
    assert_int_equal(nvx_config_parse(&cfg, text, big - 1, err), 0);
    free(text);
    /* More peers than NVX_CONFIG_PEERS_MAX. */
    size_t cap = (NVX_CONFIG_PEERS_MAX + 1) * 32;
    char *peers = malloc(cap);
    size_t off = 0;
    for (int i = 0; i <= NVX_CONFIG_PEERS_MAX; i++)
        off += (size_t)snprintf(peers + off, cap - off, "peer = 10.0.0.%d:1\n", i);
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_parse(&cfg, peers, off, err), -EINVAL);
    assert_non_null(strstr(err, "more than"));
    free(peers);
}

static void
test_args(void **state)
{
    char *dir = tu_tmpdir("nvxd-config");
    char path[4096];
    snprintf(path, sizeof(path), "%s/nvxd.conf", dir);
    const char *file = "listen = 127.0.0.1:1\npeer = 10.0.0.1:1\nlog-level = warn\n";
    assert_int_equal(tu_write_file(path, file, strlen(file)), 0);
    char *argv[] = { "nvxd",
                     "--config",
                     path,
                     "--listen=127.0.0.1:2",
                     "--peer",
                     "10.0.0.2:2",
                     "--no-discovery",
                     "--no-upnp",
                     "--store",
                     "/tmp/x",
                     NULL };
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_args(&cfg, 10, argv, err), NVX_CONFIG_RUN);
    assert_string_equal(cfg.listen, "127.0.0.1:2"); /* flag over file */
    assert_int_equal(cfg.n_peers, 2);               /* --peer adds */
    assert_int_equal(cfg.log_level, NVX_LOG_WARN);  /* file over default */
    assert_false(cfg.discovery);
    assert_false(cfg.upnp);
    assert_string_equal(cfg.store, "/tmp/x");

    char *help[] = { "nvxd", "--bogus", "--help", NULL };
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_args(&cfg, 3, help, err), NVX_CONFIG_HELP);
    char *bad[] = { "nvxd", "--bogus", NULL };
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_args(&cfg, 2, bad, err), -EINVAL);
    assert_non_null(strstr(err, "unknown argument"));
    char *noval[] = { "nvxd", "--listen", NULL };
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_args(&cfg, 2, noval, err), -EINVAL);
    char *missing[] = { "nvxd", "--config", "/nonexistent/nvxd.conf", NULL };
    nvx_config_defaults(&cfg);
    assert_int_equal(nvx_config_args(&cfg, 3, missing, err), -EINVAL);
    assert_non_null(strstr(err, "/nonexistent/nvxd.conf"));
    tu_rm_rf(dir);
    free(dir);
}

/* The example shipped in contrib/ and the system node's settings parse. */
static void
test_example(void **state)
{
    const char *src = getenv("NVX_SOURCE_ROOT");
    if (!src)
        skip();
    const char *const files[] = { "nvxd.conf.example", "nvxd.conf" };
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/contrib/%s", src, files[i]);
        nvx_config cfg;
        char err[NVX_CONFIG_ERR_LEN];
        nvx_config_defaults(&cfg);
        int r = nvx_config_load(&cfg, path, err);
        if (r < 0)
            fail_msg("%s", err);
        if (i == 1)
            assert_string_equal(cfg.control_group, "nvx");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_args),      cmocka_unit_test(test_example),
        cmocka_unit_test(test_http),      cmocka_unit_test(test_control_group),
        cmocka_unit_test(test_dht),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
