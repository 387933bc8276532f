/* atomic_file.h: writing an output file so that a crash, a kill or a full
 * disk never leaves it half-written: the bytes go to PATH.tmp, which is
 * flushed, fsync'd and renamed over PATH, then the folder is fsync'd.  A
 * reader sees the old file or the new one, never a mix; on failure the old
 * one is untouched and the error names the file and the OS's reason. */
#ifndef DC_ATOMIC_FILE_H
#define DC_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "dc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dc_afile {
    FILE *f;           /* the temporary file; NULL once committed or aborted */
    char path[1024];   /* the file being replaced */
    char tmp[1040];    /* path + ".tmp" */
    char event[80];    /* dc_killpoint event suffix: the file's base name */
};

/* Create PATH.tmp (replacing a leftover one). */
enum dc_status dc_afile_open(struct dc_afile *af, const char *path);
enum dc_status dc_afile_write(struct dc_afile *af, const void *p, size_t n);
/* Flush, fsync, close, rename over PATH, fsync the folder.  On failure the
 * temporary file is removed and PATH is as it was. */
enum dc_status dc_afile_commit(struct dc_afile *af);
/* Drop the temporary file (after a failure of the caller's own). */
void dc_afile_abort(struct dc_afile *af);

/* The whole of buf as PATH, atomically. */
enum dc_status dc_file_write_atomic(const char *path, const void *buf, size_t n);

/* For main() of a tool that writes files, before any write: ignore SIGXFSZ,
 * whose default kills the process without a word when a write passes the
 * file-size limit (ulimit -f).  Ignored, the write fails with EFBIG and the
 * tool's error path names the file ("File too large") and exits 1. */
void dc_afile_ignore_sigxfsz(void);

#ifdef __cplusplus
}
#endif
#endif
