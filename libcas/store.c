/* SPDX-License-Identifier: MIT */
/*
 * The store: opening (marker, LMDB environment, stale-file cleanup), the
 * transaction and map-size helpers and the byte/IO helpers every store-*.c
 * file shares. Model records and lookups are in store-model.c; pins,
 * removal, gc and the size limit are in store-gc.c, the add pipeline in store-add.c, verify/export
 * in store-io.c, partial models in store-partial.c, names/signatures/keys/peers in store-meta.c.
 *
 * Invariant that makes crash safety and concurrent processes work (FORMAT.md
 * "Store"): a file DIR/data/<id> is created, renamed into place or unlinked
 * only while its creator holds the LMDB write transaction, and only after its
 * bytes are durable. So inside a write transaction a data file without a
 * model record is always garbage (a crash between rename and commit, or an rm
 * that committed but did not unlink yet), and a record never names a file
 * whose bytes are not on disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "libcas/store-internal.h"

void (*cas__crash_hook)(cas__crash_point cp);
size_t cas__map_size;
bool cas__io_no_map;

int
cas__mdb_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
    case MDB_READERS_FULL:
        return -ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return -EBADMSG;
    case MDB_BAD_VALSIZE:
        return -EMSGSIZE;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

uint64_t
cas__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sets the map size to want (0: adopt the size another process recorded)
 * while no transaction of this process is open. With wait false it gives up
 * (returns 0) when one is. Returns 1 when resized, 0, or a negative errno. */
static int
map_resize(cas_store *s, size_t want, bool wait)
{
    if (wait)
        pthread_rwlock_wrlock(&s->map_lock);
    else if (pthread_rwlock_trywrlock(&s->map_lock) != 0)
        return 0;
    int r = cas__mdb_err(mdb_env_set_mapsize(s->env, want));
    pthread_rwlock_unlock(&s->map_lock);
    return r < 0 ? r : 1;
}

/* The map size that holds twice what is used now, or 0 when the map is at
 * its maximum or less than half full. */
static size_t
map_wanted(cas_store *s, bool force)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return 0;
    size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    size_t cur = info.me_mapsize;
    if (cur >= s->map_max || (!force && used <= cur / 2))
        return 0;
    size_t want = cur <= s->map_max / 2 ? cur * 2 : s->map_max;
    while (want < 2 * used && want <= s->map_max / 2)
        want *= 2;
    return want;
}

int
cas__txn_begin(cas_store *s, bool rdonly, MDB_txn **ret)
{
    size_t want = rdonly ? 0 : map_wanted(s, false);
    if (want) {
        /* Growing ahead keeps most writes from ever meeting MDB_MAP_FULL;
         * skipped while other transactions are open (never waits here: the
         * caller may be one of them). */
        int r = map_resize(s, want, false);
        if (r < 0)
            return r;
    }
    for (int tries = 0;; tries++) {
        pthread_rwlock_rdlock(&s->map_lock);
        int rc = mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, ret);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&s->map_lock);
        if (rc != MDB_MAP_RESIZED || tries >= 3)
            return cas__mdb_err(rc);
        /* Another process grew the map past ours: adopt its size. */
        int r = map_resize(s, 0, true);
        if (r < 0)
            return r;
    }
}

int
cas__txn_commit(MDB_txn *txn)
{
    MDB_env *env = mdb_txn_env(txn);
    int r = cas__mdb_err(mdb_txn_commit(txn));
    cas_store *s = mdb_env_get_userctx(env);
    pthread_rwlock_unlock(&s->map_lock);
    return r;
}

void
cas__txn_abort(MDB_txn *txn)
{
    if (!txn)
        return;
    /* The lock is released after the abort: the transaction's pages stay
     * mapped until then. */
    MDB_env *env = mdb_txn_env(txn);
    mdb_txn_abort(txn);
    cas_store *s = mdb_env_get_userctx(env);
    pthread_rwlock_unlock(&s->map_lock);
}

int
cas__map_grow(cas_store *s)
{
    /* LMDB reports a full disk and a full map alike once converted; when the
     * file system is (nearly) full, a bigger map would not help. */
    struct statvfs vfs;
    if (fstatvfs(s->dir_fd, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < CAS__MAP_GROW_DISK_MIN)
        return 0;
    size_t want = map_wanted(s, true);
    return want ? map_resize(s, want, true) : 0;
}

void
cas__reserve_make(cas_store *s)
{
    int fd =
        openat(s->dir_fd, CAS__RESERVE_NAME, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_blocks * 512 < CAS_STORE_RESERVE_SIZE &&
        posix_fallocate(fd, 0, (off_t)CAS_STORE_RESERVE_SIZE) != 0)
        unlinkat(s->dir_fd, CAS__RESERVE_NAME, 0); /* no room now: made after the next rm */
    close(fd);
}

void
cas__reserve_release(cas_store *s)
{
    unlinkat(s->dir_fd, CAS__RESERVE_NAME, 0);
}

void
cas__data_name(const uint8_t id[static CAS_HASH_LEN], char ret[static CAS_HASH_HEX_LEN + 1])
{
    cas_hash_to_hex(id, ret);
}

int
cas__fsync_dir(int fd)
{
    return fsync(fd) < 0 ? -errno : 0;
}

int
cas__pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EBADMSG; /* the data file is shorter than its model */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int
cas__pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int
cas__write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Opening */

static int
read_marker(int dir_fd)
{
    int fd = openat(dir_fd, CAS__STORE_MARKER, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    char want[32];
    snprintf(want, sizeof(want), "%s %u\n", CAS__STORE_MARKER, CAS_STORE_VERSION);
    return strcmp(buf, want) == 0 ? 0 : -EBADMSG;
}

/* Whether dir holds nothing but leftovers of an interrupted marker write. */
static int
dir_is_empty(int dir_fd)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int r = 1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, ".nvx-store.tmp", 14) == 0)
            continue;
        r = 0;
        break;
    }
    closedir(d);
    return r;
}

static int
write_marker(int dir_fd)
{
    char tmp[64];
    snprintf(tmp, sizeof(tmp), ".nvx-store.tmp%ld", (long)getpid());
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%s %u\n", CAS__STORE_MARKER, CAS_STORE_VERSION);
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int r = cas__write_full(fd, buf, (size_t)n);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0 && renameat(dir_fd, tmp, dir_fd, CAS__STORE_MARKER) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(dir_fd, tmp, 0);
        return r;
    }
    return cas__fsync_dir(dir_fd);
}

static int
open_subdir(int dir_fd, const char *name, int *ret)
{
    if (mkdirat(dir_fd, name, 0755) < 0 && errno != EEXIST)
        return -errno;
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    *ret = fd;
    return 0;
}

static int
mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    int r = 0;
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            r = -errno;
            break;
        }
        *q = '/';
    }
    if (r == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
        r = -errno;
    free(p);
    return r;
}

/* Finds or creates the marker. */
static int
check_dir(const char *dir, unsigned flags, int *ret_fd)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || !(flags & CAS_STORE_CREATE))
            return -errno;
        int r = mkdir_p(dir);
        if (r < 0)
            return r;
    } else if (!S_ISDIR(st.st_mode)) {
        return -ENOTDIR;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = read_marker(fd);
    if (r == -ENOENT) {
        r = dir_is_empty(fd);
        /* Not empty: another process may have just created the store (its
         * marker goes in before anything else), so look once more. */
        if (r == 0) {
            r = read_marker(fd);
            if (r == -ENOENT)
                r = -ENOTDIR; /* something else lives here */
        } else if (r > 0)
            r = (flags & CAS_STORE_CREATE) ? write_marker(fd) : -ENOENT;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

static int
open_dbs(cas_store *s)
{
    MDB_txn *txn = NULL;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    static const struct {
        const char *name;
        unsigned flags;
        size_t off;
    } dbs[] = {
        { "meta", 0, offsetof(cas_store, db_meta) },
        { "models", 0, offsetof(cas_store, db_models) },
        { "chunks", MDB_DUPSORT | MDB_DUPFIXED, offsetof(cas_store, db_chunks) },
        { "pins", 0, offsetof(cas_store, db_pins) },
        { "names", 0, offsetof(cas_store, db_names) },
        { "bitmaps", 0, offsetof(cas_store, db_bitmaps) },
        { "sigs", 0, offsetof(cas_store, db_sigs) },
        { "keys", 0, offsetof(cas_store, db_keys) },
        { "peers", 0, offsetof(cas_store, db_peers) },
        { "namerecs-pk", 0, offsetof(cas_store, db_namerecs) },
        { "namerecs", 0, offsetof(cas_store, db_namerecs_v1) },
        { "sigs-pending", 0, offsetof(cas_store, db_sigs_pending) },
        { "kept", 0, offsetof(cas_store, db_kept) },
        { "used", 0, offsetof(cas_store, db_used) },
    };
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)s + dbs[i].off);
        r = cas__mdb_err(mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE, dbi));
        if (r < 0)
            goto fail;
    }
    MDB_val k = { 7, "version" }, v;
    r = cas__mdb_err(mdb_get(txn, s->db_meta, &k, &v));
    if (r == -ENOENT) {
        uint8_t ver[4];
        le32_store(ver, CAS_STORE_VERSION);
        v = (MDB_val){ sizeof(ver), ver };
        r = cas__mdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
    } else if (r == 0 && (v.mv_size != 4 || le32_load(v.mv_data) != CAS_STORE_VERSION)) {
        r = -EBADMSG;
    }
    if (r < 0)
        goto fail;
    r = cas__namerec_migrate(s, txn);
    if (r < 0)
        goto fail;
    return cas__txn_commit(txn);
fail:
    cas__txn_abort(txn);
    return r;
}

/* Removes temp files nobody holds a lock on (their writer died). */
static void
clean_tmp(cas_store *s)
{
    int fd = openat(s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        int f = openat(s->tmp_fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (f < 0)
            continue;
        if (flock(f, LOCK_EX | LOCK_NB) == 0)
            unlinkat(s->tmp_fd, de->d_name, 0);
        close(f);
    }
    closedir(d);
}

static bool
is_id_name(const char *name, uint8_t ret[static CAS_HASH_LEN])
{
    return strlen(name) == CAS_HASH_HEX_LEN && cas_hash_from_hex(name, ret) == 0;
}

/* Removes data files with no model record; inside a write transaction, so no
 * add or partial_create can be between its rename and its commit. */
static int
clean_orphans(cas_store *s)
{
    MDB_txn *txn = NULL;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    int fd = openat(s->data_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        cas__txn_abort(txn);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        uint8_t id[CAS_HASH_LEN];
        if (!is_id_name(de->d_name, id))
            continue;
        MDB_val k = { CAS_HASH_LEN, id }, v;
        if (mdb_get(txn, s->db_models, &k, &v) == MDB_NOTFOUND)
            unlinkat(s->data_fd, de->d_name, 0);
    }
    closedir(d);
    cas__txn_abort(txn);
    return 0;
}

int
cas_store_open(const char *dir, unsigned flags, cas_store **ret)
{
    if (!dir || !*dir || !ret)
        return -EINVAL;
    int r = cas_init();
    if (r < 0)
        return r;
    cas_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dir_fd = s->data_fd = s->tmp_fd = -1;
    pthread_rwlock_init(&s->map_lock, NULL);
    s->map_max = CAS_STORE_MAP_MAX;
    s->dir = strdup(dir);
    char *index = NULL;
    if (!s->dir) {
        r = -ENOMEM;
        goto fail;
    }
    r = check_dir(dir, flags, &s->dir_fd);
    if (r < 0)
        goto fail;
    int index_fd = -1;
    r = open_subdir(s->dir_fd, CAS__STORE_INDEX_DIR, &index_fd);
    if (r < 0)
        goto fail;
    close(index_fd);
    r = open_subdir(s->dir_fd, CAS__STORE_DATA_DIR, &s->data_fd);
    if (r < 0)
        goto fail;
    r = open_subdir(s->dir_fd, CAS__STORE_TMP_DIR, &s->tmp_fd);
    if (r < 0)
        goto fail;
    size_t n = strlen(dir) + sizeof(CAS__STORE_INDEX_DIR) + 2;
    index = malloc(n);
    if (!index) {
        r = -ENOMEM;
        goto fail;
    }
    snprintf(index, n, "%s/%s", dir, CAS__STORE_INDEX_DIR);
    r = cas__mdb_err(mdb_env_create(&s->env));
    if (r < 0)
        goto fail;
    mdb_env_set_userctx(s->env, s); /* lets cas__txn_commit/abort find the map lock */
    r = cas__mdb_err(mdb_env_set_maxdbs(s->env, CAS__STORE_MAX_DBS));
    if (r == 0)
        r = cas__mdb_err(
            mdb_env_set_mapsize(s->env, cas__map_size ? cas__map_size : CAS_STORE_MAP_SIZE));
    if (r == 0)
        r = cas__mdb_err(mdb_env_set_maxreaders(s->env, 252));
    if (r == 0)
        r = cas__mdb_err(mdb_env_open(s->env, index, MDB_NOTLS, 0644));
    if (r < 0)
        goto fail;
    int dead;
    mdb_reader_check(s->env, &dead); /* free slots of readers that died */
    r = open_dbs(s);
    if (r < 0)
        goto fail;
    if (!(flags & CAS_STORE_NO_CLEANUP)) {
        clean_tmp(s);
        r = cas__rm_finish_marked(s);
        if (r == 0)
            r = clean_orphans(s);
        if (r < 0)
            goto fail;
        cas__reserve_make(s);
    }
    free(index);
    *ret = s;
    return 0;
fail:
    free(index);
    cas_store_free(s);
    return r;
}

void
cas_store_free(cas_store *s)
{
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    if (s->tmp_fd >= 0)
        close(s->tmp_fd);
    if (s->data_fd >= 0)
        close(s->data_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    pthread_rwlock_destroy(&s->map_lock);
    free(s->dir);
    free(s);
}

const char *
cas_store_dir(const cas_store *s)
{
    return s->dir;
}
