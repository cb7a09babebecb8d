/* SPDX-License-Identifier: MIT */
/*
 * The DHT's part of fetches and publishes (daemon/dht-fetch.h): provider
 * lookups retried with backoff, and name records as BEP 44 items.
 */
#include "daemon/dht-fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/log.h"

enum {
    TIMER_MS = 500,
    NAMES_MAGIC_LEN = 8,
    NAMES_FILE_MAX = NAMES_MAGIC_LEN + NVX_DHTFETCH_NAMES_MAX * (2 + CAS_NAMEREC_MAX + 64),
};

static const uint8_t names_magic[NAMES_MAGIC_LEN] = "NVXDN1\n";

struct want {
    uint8_t model[32];
    unsigned refs; /* fetches waiting; 0: slot free */
    unsigned tries, dials;
    uint64_t next_ms;
    int handle; /* running lookup, 0: none */
};

struct find { /* one provider lookup: may outlive its want */
    nvx_dhtfetch *f;
    uint8_t model[32];
};

struct nget {
    nvx_dhtfetch *f;
    struct nget *next;
    uint8_t pk[CAS_PK_LEN];
    char name[CAS_NAMEREC_NAME_MAX + 1];
    void (*cb)(void *arg, int r, const cas_namerec *rec);
    void *arg;
    int handle;
};

struct own {
    cas_namerec rec;
    uint8_t sig[CAS_SIGBYTES];
};

struct nvx_dhtfetch {
    uv_timer_t timer;
    uv_loop_t *loop;
    nvx_dhtuv *dht;
    nvx_node *node;
    nvx_dhtrelay *relay;
    char *names_path;
    struct want wants[NVX_DHTFETCH_WANTS_MAX];
    struct nget *gets;
    unsigned n_gets;
    struct nget *starting;                   /* the get being started; */
    bool start_ended;                        /* its lookup ended inside the start */
    uint8_t recent[NVX_DHTFETCH_RECENT][16]; /* BLAKE2b-128(pk || name) */
    uint64_t recent_ms[NVX_DHTFETCH_RECENT];
    struct own own[NVX_DHTFETCH_NAMES_MAX];
    size_t n_own;
};

/* ---------------------------------------------------------------------- */
/* Providers */

static struct want *
want_find(nvx_dhtfetch *f, const uint8_t model[static 32])
{
    for (size_t i = 0; i < NVX_DHTFETCH_WANTS_MAX; i++)
        if (f->wants[i].refs && memcmp(f->wants[i].model, model, 32) == 0)
            return &f->wants[i];
    return NULL;
}

static void
on_provider(void *arg, const char *addr)
{
    struct find *fd = arg;
    struct want *w = want_find(fd->f, fd->model);
    if (!addr) {
        if (w)
            w->handle = 0;
        free(fd);
        return;
    }
    if (!w || w->dials >= NVX_DHTFETCH_DIALS_MAX)
        return;
    w->dials++;
    int r = nvx_node_dial(fd->f->node, addr);
    log_debug("dht: provider %s%s", addr, r < 0 && r != -EAGAIN ? " (not dialed)" : "");
    /* Behind a NAT that maps nothing it never answers: its relays can
     * have it dial us (daemon/dht-relay.h). */
    if (fd->f->relay)
        (void)nvx_dhtrelay_want(fd->f->relay, addr);
}

static void
want_lookup(nvx_dhtfetch *f, struct want *w, uint64_t now)
{
    struct find *fd = malloc(sizeof(*fd));
    if (!fd)
        return;
    fd->f = f;
    memcpy(fd->model, w->model, 32);
    w->tries++;
    /* 2, 4, 8 ... s after this one: a provider that announces late (it
     * just came up, or its announce was lost) is still found, while a
     * model nobody has costs NVX_DHTFETCH_TRIES lookups. */
    w->next_ms = now + ((uint64_t)NVX_DHTFETCH_RETRY_MS << (w->tries - 1));
    w->handle = -1; /* starting: a lookup that ends at once (no nodes) sets 0 */
    int h = nvx_dhtuv_find_providers(f->dht, w->model, on_provider, fd);
    if (h < 0) {
        free(fd);
        log_debug("dht: cannot look up providers: %s", strerror(-h));
    }
    if (w->handle == -1)
        w->handle = h > 0 ? h : 0;
}

static void
on_timer(uv_timer_t *t)
{
    nvx_dhtfetch *f = t->data;
    uint64_t now = uv_now(f->loop);
    for (size_t i = 0; i < NVX_DHTFETCH_WANTS_MAX; i++) {
        struct want *w = &f->wants[i];
        if (w->refs && !w->handle && w->tries < NVX_DHTFETCH_TRIES && now >= w->next_ms)
            want_lookup(f, w, now);
    }
}

int
nvx_dhtfetch_want(nvx_dhtfetch *f, const uint8_t model_id[static 32], uint32_t delay_ms)
{
    struct want *w = want_find(f, model_id);
    if (w) {
        w->refs++;
        return 0;
    }
    for (size_t i = 0; i < NVX_DHTFETCH_WANTS_MAX && !w; i++)
        if (!f->wants[i].refs)
            w = &f->wants[i];
    if (!w)
        return -ENOSPC;
    *w = (struct want){ .refs = 1 };
    memcpy(w->model, model_id, 32);
    if (delay_ms)
        w->next_ms = uv_now(f->loop) + delay_ms; /* the timer starts it */
    else
        want_lookup(f, w, uv_now(f->loop));
    return 0;
}

void
nvx_dhtfetch_unwant(nvx_dhtfetch *f, const uint8_t model_id[static 32])
{
    struct want *w = want_find(f, model_id);
    if (!w || --w->refs)
        return;
    int h = w->handle;
    w->handle = 0;
    nvx_dhtuv_cancel(f->dht, h); /* on_provider finds no want: frees its find */
}

/* ---------------------------------------------------------------------- */
/* Names we publish */

static int
item_of(const cas_namerec *rec, const uint8_t sig[static CAS_SIGBYTES], nvx_dht_item *it)
{
    memset(it, 0, sizeof(*it));
    int n = cas_namerec_dht_value(rec, it->v, sizeof(it->v));
    if (n < 0)
        return n;
    it->v_len = (size_t)n;
    memcpy(it->k, rec->pk, 32);
    memcpy(it->sig, sig, 64);
    it->seq = (int64_t)rec->sequence;
    memcpy(it->salt, rec->name, rec->name_len);
    it->salt_len = rec->name_len;
    return nvx_dht_item_verify(it) ? 0 : -EBADMSG;
}

static void
names_save(const nvx_dhtfetch *f)
{
    if (!f->names_path)
        return;
    uint8_t *buf = malloc(NAMES_FILE_MAX);
    if (!buf)
        return;
    size_t n = NAMES_MAGIC_LEN;
    memcpy(buf, names_magic, NAMES_MAGIC_LEN);
    for (size_t i = 0; i < f->n_own; i++) {
        int len = cas_namerec_encode(&f->own[i].rec, buf + n + 2, CAS_NAMEREC_MAX);
        if (len < 0)
            continue;
        buf[n] = (uint8_t)(len >> 8);
        buf[n + 1] = (uint8_t)len;
        n += 2 + (size_t)len;
        memcpy(buf + n, f->own[i].sig, CAS_SIGBYTES);
        n += CAS_SIGBYTES;
    }
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->names_path);
    /* A few KiB, once per publish: written on the loop like dht.dat. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, buf, n) == (ssize_t)n;
    if (fd >= 0 && close(fd) < 0)
        ok = false;
    if (!ok || rename(tmp, f->names_path) < 0)
        log_warn("dht: cannot save %s: names are put again only when published again",
                 f->names_path);
    free(buf);
}

/* Keeps (rec, sig) in f->own (a higher sequence replaces a lower one).
 * Returns 1 kept, 0 an equal or newer one is kept already, -ENOSPC. */
static int
own_keep(nvx_dhtfetch *f, const cas_namerec *rec, const uint8_t sig[static CAS_SIGBYTES])
{
    struct own *o = NULL;
    for (size_t i = 0; i < f->n_own && !o; i++)
        if (memcmp(f->own[i].rec.pk, rec->pk, CAS_PK_LEN) == 0 &&
            strcmp(f->own[i].rec.name, rec->name) == 0)
            o = &f->own[i];
    if (o && o->rec.sequence >= rec->sequence)
        return 0;
    if (!o && f->n_own == NVX_DHTFETCH_NAMES_MAX)
        return -ENOSPC;
    if (!o)
        o = &f->own[f->n_own++];
    o->rec = *rec;
    memcpy(o->sig, sig, CAS_SIGBYTES);
    return 1;
}

int
nvx_dhtfetch_publish(nvx_dhtfetch *f, const cas_namerec *rec,
                     const uint8_t sig[static CAS_SIGBYTES])
{
    nvx_dht_item it;
    int r = cas_namerec_verify(rec);
    if (r == 0)
        r = item_of(rec, sig, &it);
    if (r < 0)
        return r;
    r = own_keep(f, rec, sig);
    if (r < 0)
        return r;
    r = nvx_dhtuv_put(f->dht, &it);
    if (r < 0)
        return r;
    names_save(f);
    return 0;
}

/* Puts the names of the last run again (the file is ours, but read as
 * damaged bytes could be: every entry is decoded and verified). */
static void
names_load(nvx_dhtfetch *f)
{
    uint8_t *buf = malloc(NAMES_FILE_MAX + 1);
    int fd = buf ? open(f->names_path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, buf, NAMES_FILE_MAX + 1) : -1;
    if (fd >= 0)
        close(fd);
    size_t off = NAMES_MAGIC_LEN, put = 0;
    if (n > 0 && (n < NAMES_MAGIC_LEN || memcmp(buf, names_magic, NAMES_MAGIC_LEN) != 0))
        off = 0; /* not ours: warned below */
    else if (n <= 0)
        off = 0; /* no file: nothing to read */
    while (n > 0 && off && (size_t)n - off >= 2) {
        size_t len = (size_t)buf[off] << 8 | buf[off + 1];
        cas_namerec rec;
        nvx_dht_item it;
        if ((size_t)n - off - 2 < len + CAS_SIGBYTES ||
            cas_namerec_decode(buf + off + 2, len, &rec) < 0)
            break;
        const uint8_t *sig = buf + off + 2 + len;
        off += 2 + len + CAS_SIGBYTES;
        if (item_of(&rec, sig, &it) < 0 || own_keep(f, &rec, sig) < 0)
            continue;
        if (nvx_dhtuv_put(f->dht, &it) == 0)
            put++;
    }
    if (n > 0 && off != (size_t)n)
        log_warn("dht: %s is damaged: publish the missing names again", f->names_path);
    if (put)
        log_info("dht: putting %zu published names again", put);
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* Names we look up */

/* Whether (pk, name) may be asked for now (and notes that it is). */
static bool
name_rate_ok(nvx_dhtfetch *f, const uint8_t pk[static 32], const char *name)
{
    uint8_t h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, pk, 32);
    crypto_generichash_update(&st, (const uint8_t *)name, strlen(name));
    crypto_generichash_final(&st, h, sizeof(h));
    uint64_t now = uv_now(f->loop);
    size_t slot = 0;
    for (size_t i = 0; i < NVX_DHTFETCH_RECENT; i++) {
        if (memcmp(f->recent[i], h, sizeof(h)) == 0 && f->recent_ms[i]) {
            if (now - f->recent_ms[i] < NVX_DHTFETCH_NAME_EVERY_MS)
                return false;
            slot = i;
            break;
        }
        if (f->recent_ms[i] < f->recent_ms[slot])
            slot = i; /* the oldest entry makes room */
    }
    memcpy(f->recent[slot], h, sizeof(h));
    f->recent_ms[slot] = now ? now : 1;
    return true;
}

static void
nget_unlink(nvx_dhtfetch *f, struct nget *g)
{
    for (struct nget **p = &f->gets; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            f->n_gets--;
            return;
        }
}

static void
on_item(void *arg, const nvx_dht_result *res)
{
    struct nget *g = arg;
    if (!res->done)
        return;
    nvx_dhtfetch *f = g->f;
    nget_unlink(f, g);
    if (g == f->starting)
        f->start_ended = true;
    const nvx_dht_item *it = res->item;
    cas_namerec rec;
    int r = g->handle < 0 ? -ECANCELED : -ENOENT;
    /* The core checked the BEP 44 signature under g->pk; the value is
     * still a stranger's bytes until it decodes to the record asked for. */
    if (it && memcmp(it->k, g->pk, 32) == 0 && it->seq >= 0 &&
        cas_namerec_dht_decode(it->v, it->v_len, &rec) == 0 &&
        memcmp(rec.pk, g->pk, CAS_PK_LEN) == 0 && strcmp(rec.name, g->name) == 0 &&
        rec.sequence == (uint64_t)it->seq)
        r = 0;
    else if (it)
        log_debug("dht: the item for name %s is not a valid record of that name", g->name);
    g->cb(g->arg, r, r == 0 ? &rec : NULL);
    free(g);
}

int
nvx_dhtfetch_name(nvx_dhtfetch *f, const uint8_t pk[static CAS_PK_LEN], const char *name,
                  void (*cb)(void *arg, int r, const cas_namerec *rec), void *arg)
{
    size_t len = strlen(name);
    if (!cas_namerec_name_valid(name, len))
        return -EINVAL;
    if (f->n_gets >= NVX_DHTFETCH_GETS_MAX || !name_rate_ok(f, pk, name))
        return -EBUSY;
    struct nget *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->f = f;
    memcpy(g->pk, pk, CAS_PK_LEN);
    memcpy(g->name, name, len + 1);
    g->cb = cb;
    g->arg = arg;
    nvx_dht_item q = { .salt_len = len };
    memcpy(q.k, pk, 32);
    memcpy(q.salt, name, len);
    g->next = f->gets;
    f->gets = g;
    f->n_gets++;
    /* A lookup with no node to ask ends inside nvx_dhtuv_lookup(): then
     * on_item has run (and freed g) already. */
    f->starting = g;
    f->start_ended = false;
    int h = nvx_dhtuv_lookup(f->dht, NVX_DHT_GET, &q, on_item, g);
    f->starting = NULL;
    if (f->start_ended)
        return 0;
    if (h < 0) {
        nget_unlink(f, g);
        free(g);
        return h;
    }
    g->handle = h;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

int
nvx_dhtfetch_new(const nvx_dhtfetch_opts *o, nvx_dhtfetch **ret)
{
    nvx_dhtfetch *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->loop = o->loop;
    f->dht = o->dht;
    f->node = o->node;
    f->relay = o->relay;
    if (o->state_dir) {
        size_t n = strlen(o->state_dir) + sizeof("/" NVX_DHTFETCH_NAMES_FILE);
        f->names_path = malloc(n);
        if (f->names_path) {
            snprintf(f->names_path, n, "%s/%s", o->state_dir, NVX_DHTFETCH_NAMES_FILE);
            names_load(f);
        }
    }
    uv_timer_init(o->loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, on_timer, TIMER_MS, TIMER_MS);
    *ret = f;
    return 0;
}

static void
on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void
nvx_dhtfetch_free(nvx_dhtfetch *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < NVX_DHTFETCH_WANTS_MAX; i++)
        if (f->wants[i].refs) {
            f->wants[i].refs = 0;
            nvx_dhtuv_cancel(f->dht, f->wants[i].handle);
        }
    while (f->gets) {
        struct nget *g = f->gets;
        int h = g->handle;
        g->handle = -1; /* on_item reports -ECANCELED */
        nvx_dhtuv_cancel(f->dht, h);
        if (f->gets == g) { /* the lookup had ended already */
            nget_unlink(f, g);
            g->cb(g->arg, -ECANCELED, NULL);
            free(g);
        }
    }
    free(f->names_path);
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}
