/* SPDX-License-Identifier: MIT */
#include "daemon/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/log.h"

static int
read_seed(const char *path, uint8_t seed[static PROTO_SEED_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (st.st_size != PROTO_SEED_LEN) {
        r = -EBADMSG;
        goto out;
    }
    if (st.st_mode & 077) {
        log_warn("%s was readable by others; making it 0600", path);
        if (fchmod(fd, 0600) < 0)
            log_warn("cannot chmod %s", path);
    }
    ssize_t n = read(fd, seed, PROTO_SEED_LEN);
    if (n != PROTO_SEED_LEN)
        r = n < 0 ? -errno : -EBADMSG;
out:
    close(fd);
    return r;
}

static int
write_seed(const char *path, const uint8_t seed[static PROTO_SEED_LEN])
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int r = 0;
    if (write(fd, seed, PROTO_SEED_LEN) != PROTO_SEED_LEN || fsync(fd) < 0)
        r = errno ? -errno : -EIO;
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

int
nvx_identity_load(const char *dir, proto_identity **ret, int *ret_created)
{
    char path[4096];
    uint8_t seed[PROTO_SEED_LEN];
    proto_identity *id = NULL;
    int created = 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, NVX_IDENTITY_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int r = read_seed(path, seed);
    if (r == -ENOENT) {
        r = proto_identity_generate(&id);
        if (r < 0)
            goto out;
        proto_identity_seed(id, seed);
        r = write_seed(path, seed);
        if (r < 0)
            goto out;
        created = 1;
    } else if (r < 0) {
        goto out;
    } else {
        r = proto_identity_from_seed(seed, &id);
        if (r < 0)
            goto out;
    }
    *ret = id;
    id = NULL;
    if (ret_created)
        *ret_created = created;
out:
    sodium_memzero(seed, sizeof(seed));
    proto_identity_free(id);
    return r;
}
