/* fuzz_util.c: memfd files and a scratch directory for the fuzz harnesses. */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void dc_fuzz_file_init(struct dc_fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, 0);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

void dc_fuzz_file_set(struct dc_fuzz_file *f, const uint8_t *data, size_t n)
{
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(f->fd, data + done, n - done, (off_t)done);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)w;
    }
}

void dc_fuzz_tmpdir(char *dir, size_t len)
{
    const char *root = getenv("TMPDIR");
    snprintf(dir, len, "%s/dcfuzz.XXXXXX", root && *root ? root : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}

void dc_fuzz_link(const char *dir, const char *name, const struct dc_fuzz_file *f)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    if (symlink(f->path, path) != 0) {
        perror("symlink");
        abort();
    }
}
