/* fuzz_util.h: what the libFuzzer harnesses share.  The readers take paths,
 * so each harness hands them an in-memory file (memfd) under a path, with no
 * disk I/O per run. */
#ifndef DC_FUZZ_UTIL_H
#define DC_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* An anonymous in-memory file; path is "/proc/self/fd/N". */
struct dc_fuzz_file {
    int fd;
    char path[64];
};

/* Create one (aborts on failure: the harness cannot run without it). */
void dc_fuzz_file_init(struct dc_fuzz_file *f, const char *name);
/* Replace its contents with data[n]. */
void dc_fuzz_file_set(struct dc_fuzz_file *f, const uint8_t *data, size_t n);
/* A fresh private directory (mkdtemp under $TMPDIR or /tmp) into dir[len]. */
void dc_fuzz_tmpdir(char *dir, size_t len);
/* dir/name becomes a symbolic link to f's path. */
void dc_fuzz_link(const char *dir, const char *name, const struct dc_fuzz_file *f);

#endif
