/* atomic_file.c: temp + fsync + rename + folder fsync for every output file
 * a run must not lose half of (checkpoint, model file, summary).  Messages
 * name the file and the OS error, and say the earlier version is intact,
 * because that is what a user with a full disk needs to know; the tools
 * ignore SIGXFSZ (dc_afile_ignore_sigxfsz) so a file-size limit gives that
 * message too, not a silent kill. */
#define _POSIX_C_SOURCE 200809L
#include "dc/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "dc/killpoint.h"

/* The hint after an error: what is left, and for a vanished folder, why. */
static const char *dc_afile_hint(int err)
{
    return err == ENOENT ? " (was its folder removed?)" : "";
}

static void dc_afile_kp(const struct dc_afile *af, const char *what)
{
    char ev[128];
    snprintf(ev, sizeof ev, "%s-%s", what, af->event);
    dc_killpoint(ev);
}

enum dc_status dc_afile_open(struct dc_afile *af, const char *path)
{
    af->f = NULL;
    if (snprintf(af->path, sizeof af->path, "%s", path) >= (int)sizeof af->path)
        return DC_ERROR(DC_ERR_ARG, "%s: path too long", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp", path);
    const char *base = strrchr(path, '/');
    snprintf(af->event, sizeof af->event, "%s", base ? base + 1 : path);
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int err = errno;
        return DC_ERROR(DC_ERR_IO, "%s: cannot create: %s%s; the earlier %s, if any, is intact", af->tmp,
                        strerror(err), dc_afile_hint(err), af->path);
    }
    return DC_OK;
}

void dc_afile_abort(struct dc_afile *af)
{
    if (!af->f)
        return;
    fclose(af->f);
    af->f = NULL;
    remove(af->tmp);
}

static enum dc_status dc_afile_fail(struct dc_afile *af, const char *what, int err)
{
    dc_afile_abort(af);
    return DC_ERROR(DC_ERR_IO, "%s: %s failed: %s%s; the earlier %s, if any, is intact", af->tmp, what,
                    strerror(err), dc_afile_hint(err), af->path);
}

enum dc_status dc_afile_write(struct dc_afile *af, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, af->f) != n)
        return dc_afile_fail(af, "write", errno);
    dc_afile_kp(af, "write");
    return DC_OK;
}

/* fsync of the folder makes the rename itself durable.  A folder we may not
 * open for reading, or a file system that cannot sync one (EINVAL), leaves
 * the rename done but not forced to disk: no reason to fail the run. */
static enum dc_status dc_afile_sync_dir(const struct dc_afile *af)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", af->path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY), err = 0;
    if (fd < 0)
        return DC_OK;
    if (fsync(fd) != 0 && errno != EINVAL)
        err = errno;
    close(fd);
    if (err)
        return DC_ERROR(DC_ERR_IO, "%s: cannot sync the folder after writing %s: %s%s", dir, af->event,
                        strerror(err), dc_afile_hint(err));
    return DC_OK;
}

enum dc_status dc_afile_commit(struct dc_afile *af)
{
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        return dc_afile_fail(af, "write", errno);
    FILE *f = af->f;
    af->f = NULL;
    if (fclose(f) != 0) {
        int err = errno;
        remove(af->tmp);
        return DC_ERROR(DC_ERR_IO, "%s: close failed: %s; the earlier %s, if any, is intact", af->tmp,
                        strerror(err), af->path);
    }
    dc_afile_kp(af, "commit");
    if (rename(af->tmp, af->path) != 0) {
        int err = errno;
        remove(af->tmp);
        return DC_ERROR(DC_ERR_IO, "%s: cannot rename to %s: %s%s; the earlier %s, if any, is intact", af->tmp,
                        af->path, strerror(err), dc_afile_hint(err), af->path);
    }
    DC_TRY(dc_afile_sync_dir(af));
    dc_afile_kp(af, "renamed");
    return DC_OK;
}

enum dc_status dc_file_write_atomic(const char *path, const void *buf, size_t n)
{
    struct dc_afile af;
    DC_TRY(dc_afile_open(&af, path));
    DC_TRY(dc_afile_write(&af, buf, n));
    return dc_afile_commit(&af);
}

void dc_afile_ignore_sigxfsz(void)
{
    signal(SIGXFSZ, SIG_IGN);
}
