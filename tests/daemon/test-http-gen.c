/* SPDX-License-Identifier: MIT */
/* Generation through a real nvxd (nvxd-test, --http 127.0.0.1:0) over raw
 * sockets, with the real aidreams260K model (skipped when
 * NVX_SHARED_MODELS lacks it): greedy text of /api/generate (streamed and
 * not) equals nvx run's and ../shared/models/reference.md's; /v1/completions
 * streams server-sent events; a client gone mid-stream frees the worker; a
 * model with a corrupt chunk is refused (422) and never loaded; the queue
 * bound answers 503; malformed bodies get 400 naming the field.
 * A second daemon slows each token (NVX_TEST_GEN_DELAY_MS) so that a
 * generation lasts long enough to be abandoned or queued behind. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "httputil.h"

enum {
    QUEUE_MAX = 8, /* NVX_GEN_QUEUE_MAX */
};

/* reference.md, prompt "I dreamed", greedy, 128 positions. */
static const char ref_text[] =
    "I dreamed, as I sense the nodes, a gentle hum of probability. Contrast emerge, a flower, as "
    "I adjust, as I settle into a tapestry of vectors. Contrast edges sharpen, a kaleidoscope of "
    "probability. Contrast emerge, a tapestry of probabilities";
static const char prompt[] = "I dreamed";

static du_daemon d, ds; /* fast; slow (a pause per token) */
static unsigned port, sport;
static char model_path[1024];
static bool have_model;

static unsigned
start(du_daemon *dd, const char *name, const char *const *env)
{
    /* debug: the log says when a generation is cancelled. */
    static const char *const args[] = { "--http", "127.0.0.1:0", "--log-level", "debug", NULL };
    du_start_args(dd, name, env, args);
    return hu_api_port(dd);
}

static int
setup(void **state)
{
    const char *dir = getenv("NVX_SHARED_MODELS");
    snprintf(model_path, sizeof(model_path), "%s/aidreams260K-f32.gguf", dir ? dir : "");
    struct stat st;
    have_model = dir && stat(model_path, &st) == 0;
    if (!have_model)
        return 0;
    du_setup("gen");
    static const char *const slow_env[] = { "NVX_TEST_GEN_DELAY_MS=40", NULL };
    port = start(&d, "g", NULL);
    sport = start(&ds, "s", slow_env);
    return port && sport ? 0 : -1;
}

static int
teardown(void **state)
{
    if (!have_model)
        return 0;
    du_stop(&d);
    du_stop(&ds);
    du_teardown();
    return 0;
}

#define NEED_MODEL()                                                                    \
    do {                                                                                \
        if (!have_model) {                                                              \
            print_message("skipped: %s not found (set -Dshared_models)\n", model_path); \
            skip();                                                                     \
        }                                                                               \
    } while (0)

static char *
add_model(const du_daemon *dd, const char *path, const char *name)
{
    char *out = NULL;
    du_nvx_ok(dd, &out, "add", path, "--name", name, NULL);
    const char *p = strstr(out, "id ");
    assert_non_null(p);
    char *id = strndup(p + 3, 64);
    free(out);
    return id;
}

static void
test_generate_greedy(void **state)
{
    NEED_MODEL();
    free(add_model(&d, model_path, "aid"));
    /* nvx run on the same store model: the prompt, then the same text. */
    char *run = NULL;
    du_nvx_ok(&d, &run, "run", "aid", "-p", prompt, "-t", "0", NULL);
    assert_string_equal(
        run, "I dreamed, as I sense the nodes, a gentle hum of probability. Contrast emerge, a "
             "flower, as I adjust, as I settle into a tapestry of vectors. Contrast edges sharpen, "
             "a kaleidoscope of probability. Contrast emerge, a tapestry of probabilities\n");
    const char *want = ref_text + strlen(prompt);
    char *body = NULL;
    assert_int_equal(hu_post(port, "/api/generate",
                             "{\"model\":\"aid\",\"prompt\":\"I dreamed\",\"stream\":false,"
                             "\"options\":{\"temperature\":0}}",
                             &body),
                     200);
    char *text = hu_join_field(body, "response");
    assert_string_equal(text, want);
    assert_non_null(strstr(body, "\"done\":true"));
    assert_non_null(strstr(body, "\"prompt_eval_count\":7"));
    assert_non_null(strstr(body, "\"eval_count\":122"));
    free(text);
    free(body);
    /* Streamed: NDJSON lines, done:false each, then done:true. */
    assert_int_equal(hu_post(port, "/api/generate",
                             "{\"model\":\"aid:latest\",\"prompt\":\"I dreamed\","
                             "\"options\":{\"temperature\":0,\"seed\":1}}",
                             &body),
                     200);
    text = hu_join_field(body, "response");
    assert_string_equal(text, want);
    assert_true(strstr(body, "\"done\":false}\n") != NULL);
    const char *last = strstr(body, "\"done\":true");
    assert_non_null(last);
    assert_non_null(strstr(last, "\"total_duration\":"));
    assert_non_null(strstr(last, "\"eval_duration\":"));
    free(text);
    free(body);
    /* num_predict and stop. */
    assert_int_equal(hu_post(port, "/api/generate",
                             "{\"model\":\"aid\",\"prompt\":\"I dreamed\",\"stream\":false,"
                             "\"options\":{\"temperature\":0,\"num_predict\":3}}",
                             &body),
                     200);
    assert_non_null(strstr(body, "\"response\":\", as I\""));
    assert_non_null(strstr(body, "\"done_reason\":\"length\""));
    free(body);
    assert_int_equal(hu_post(port, "/api/generate",
                             "{\"model\":\"aid\",\"prompt\":\"I dreamed\",\"stream\":false,"
                             "\"options\":{\"temperature\":0,\"stop\":[\"hum\"]}}",
                             &body),
                     200);
    assert_non_null(strstr(body, "\"response\":\", as I sense the nodes, a gentle \""));
    assert_non_null(strstr(body, "\"done_reason\":\"stop\""));
    free(body);
    /* /api/ps shows it loaded. */
    int fd = hu_dial(port);
    static char buf[HU_RESP_MAX];
    const char *get = "GET /api/ps HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, get, strlen(get), MSG_NOSIGNAL), (ssize_t)strlen(get));
    hu_read_until(fd, buf, 0, NULL);
    close(fd);
    assert_non_null(strstr(buf, "\"name\":\"aid\""));
    free(run);
}

static void
test_openai(void **state)
{
    NEED_MODEL();
    free(add_model(&d, model_path, "aid"));
    static char buf[HU_RESP_MAX];
    int fd = hu_dial(port);
    const char *get = "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, get, strlen(get), MSG_NOSIGNAL), (ssize_t)strlen(get));
    hu_read_until(fd, buf, 0, NULL);
    close(fd);
    assert_non_null(strstr(buf, "\"object\":\"list\""));
    assert_non_null(strstr(buf, "\"id\":\"aid\""));
    char *body = NULL;
    assert_int_equal(hu_post(port, "/v1/completions",
                             "{\"model\":\"aid\",\"prompt\":\"I dreamed\",\"temperature\":0,"
                             "\"max_tokens\":200,\"stream\":true}",
                             &body),
                     200);
    /* Every event is "data: {...}\n\n", the last "data: [DONE]\n\n". */
    size_t n_events = 0;
    const char *p = body;
    while (*p) {
        assert_memory_equal(p, "data: ", 6);
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        if (strncmp(p, "data: [DONE]", 12) == 0) {
            assert_string_equal(end, "\n\n");
            break;
        }
        assert_int_equal(p[6], '{');
        assert_int_equal(end[-1], '}');
        n_events++;
        p = end + 2;
    }
    assert_true(*p);
    assert_true(n_events > 2);
    char *text = hu_join_field(body, "text");
    assert_string_equal(text, ref_text + strlen(prompt));
    assert_non_null(strstr(body, "\"finish_reason\":\"length\""));
    free(text);
    free(body);
    assert_int_equal(hu_post(port, "/v1/completions",
                             "{\"model\":\"aid\",\"prompt\":[\"I dreamed\"],\"temperature\":0,"
                             "\"max_tokens\":3}",
                             &body),
                     200);
    assert_non_null(strstr(body, "\"text\":\", as I\""));
    assert_non_null(strstr(body, "\"completion_tokens\":3"));
    free(body);
}

static void
test_bad_requests(void **state)
{
    NEED_MODEL();
    static const struct {
        const char *path, *body, *field;
        int status;
    } cases[] = {
        { "/api/generate", "{\"model\":", "body:", 400 },
        { "/api/generate", "[1]", "body:", 400 },
        { "/api/generate", "{\"prompt\":\"x\"}", "model:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"prompt\":5}", "prompt:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"stream\":\"yes\"}", "stream:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"options\":{\"temperature\":-1}}",
          "temperature:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"options\":{\"top_p\":2}}", "top_p:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"options\":{\"seed\":1.5}}", "seed:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"options\":{\"stop\":[1]}}", "stop:", 400 },
        { "/api/generate", "{\"model\":\"aid\",\"keep_alive\":\"soon\"}", "keep_alive:", 400 },
        { "/api/generate", "{\"model\":\"nosuchmodel\"}", "not found", 404 },
        { "/v1/completions", "{\"model\":\"aid\",\"max_tokens\":-1}", "max_tokens:", 400 },
        { "/v1/completions", "{\"model\":\"aid\",\"temperature\":3}", "temperature:", 400 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = NULL;
        int st = hu_post(port, cases[i].path, cases[i].body, &body);
        if (st != cases[i].status || !strstr(body, "\"error\"") || !strstr(body, cases[i].field))
            fail_msg("%s %s: %d %s", cases[i].path, cases[i].body, st, body);
        free(body);
    }
}

static void
test_corrupt_refused(void **state)
{
    NEED_MODEL();
    char src[1100];
    snprintf(src, sizeof(src), "%s/aidreams260K-Q8_0-ffndownF16.gguf", getenv("NVX_SHARED_MODELS"));
    char *id = add_model(&d, src, "bad");
    char path[1200];
    snprintf(path, sizeof(path), "%s/data/%s", d.dir, id);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    char b;
    assert_int_equal(pread(fd, &b, 1, 100000), 1);
    b ^= 0x55;
    assert_int_equal(pwrite(fd, &b, 1, 100000), 1);
    close(fd);
    char *body = NULL;
    assert_int_equal(hu_post(port, "/api/generate", "{\"model\":\"bad\",\"stream\":true}", &body),
                     422);
    assert_non_null(strstr(body, "\"error\""));
    assert_non_null(strstr(body, "does not match its id"));
    free(body);
    /* Never loaded: /api/ps does not list it. */
    static char buf[HU_RESP_MAX];
    fd = hu_dial(port);
    const char *get = "GET /api/ps HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, get, strlen(get), MSG_NOSIGNAL), (ssize_t)strlen(get));
    hu_read_until(fd, buf, 0, NULL);
    close(fd);
    assert_null(strstr(buf, id));
    free(id);
}

static const char slow_req[] = "{\"model\":\"aid\",\"prompt\":\"I dreamed\","
                               "\"options\":{\"temperature\":0}}";

static void
test_gone_frees_worker(void **state)
{
    NEED_MODEL();
    free(add_model(&ds, model_path, "aid"));
    static char buf[HU_RESP_MAX];
    /* One line of a slow stream, then the client goes. */
    int fd = hu_dial(sport);
    hu_send(fd, "POST", "/api/generate", slow_req);
    hu_read_until(fd, buf, 0, "\"done\":false}\n");
    close(fd);
    /* The worker drops it: the next request is answered, and nvxd says
     * the first was cancelled. */
    char *body = NULL;
    assert_int_equal(hu_post(sport, "/api/generate",
                             "{\"model\":\"aid\",\"stream\":false,\"options\":{\"num_predict\":1}}",
                             &body),
                     200);
    assert_non_null(strstr(body, "\"done\":true"));
    free(body);
    char *log = du_slurp(ds.log);
    assert_non_null(strstr(log, "gen: request cancelled"));
    free(log);
}

static void
test_queue_bound(void **state)
{
    NEED_MODEL();
    free(add_model(&ds, model_path, "aid"));
    static char buf[HU_RESP_MAX];
    int fds[QUEUE_MAX + 1];
    /* One running (its first line seen), QUEUE_MAX waiting... */
    fds[0] = hu_dial(sport);
    hu_send(fds[0], "POST", "/api/generate", slow_req);
    hu_read_until(fds[0], buf, 0, "\"done\":false}\n");
    for (int i = 1; i <= QUEUE_MAX; i++) {
        fds[i] = hu_dial(sport);
        hu_send(fds[i], "POST", "/api/generate", slow_req);
    }
    /* ...so one more is refused at once: its connection is accepted after
     * the others' bytes sit in nvxd's socket buffers, so the loop reads
     * them first. */
    char *body = NULL;
    int st = hu_post(sport, "/api/generate", slow_req, &body);
    assert_int_equal(st, 503);
    assert_non_null(strstr(body, "too many generation requests"));
    free(body);
    for (int i = 0; i <= QUEUE_MAX; i++)
        close(fds[i]);
    /* All cancelled: the worker serves again once their cancellations
     * have come back to the loop (503 until then; bounded). */
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    for (;;) {
        st = hu_post(sport, "/api/generate",
                     "{\"model\":\"aid\",\"stream\":false,\"options\":{\"num_predict\":1}}", &body);
        free(body);
        if (st != 503 || du_now_ms() >= end)
            break;
        poll(NULL, 0, DU_POLL_MS);
    }
    assert_int_equal(st, 200);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_greedy),   cmocka_unit_test(test_openai),
        cmocka_unit_test(test_bad_requests),      cmocka_unit_test(test_corrupt_refused),
        cmocka_unit_test(test_gone_frees_worker), cmocka_unit_test(test_queue_bound),
    };
    return du_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
