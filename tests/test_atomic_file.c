/* test_atomic_file.c: the output-file writer every checkpoint, model file and
 * summary goes through.  A committed file holds exactly what was written and
 * leaves no temporary file; an aborted or failed write leaves the earlier
 * file byte for byte and no temporary file; failures name the file and the
 * OS error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dc/atomic_file.h"

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The whole file as a string (NULL when missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void check_text(const char *path, const char *want)
{
    char *got = slurp(path);
    CHECK(got && strcmp(got, want) == 0);
    free(got);
}

int main(void)
{
    char dir[1024], path[1100], tmp[1200];
    test_tmp_path("atomic_file_dir", dir, sizeof dir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    remove(tmp); /* leftovers of an earlier run that failed half-way */
    rmdir(tmp);

    /* a fresh file, then a replacement written in pieces */
    CHECK_OK(dc_file_write_atomic(path, "first", 5));
    check_text(path, "first");
    CHECK(!exists(tmp));
    struct dc_afile af;
    CHECK_OK(dc_afile_open(&af, path));
    CHECK_OK(dc_afile_write(&af, "sec", 3));
    CHECK_OK(dc_afile_write(&af, "ond", 3));
    check_text(path, "first"); /* nothing visible before the commit */
    CHECK_OK(dc_afile_commit(&af));
    check_text(path, "second");
    CHECK(!exists(tmp));

    /* aborted: the earlier file stays, the temporary goes */
    CHECK_OK(dc_afile_open(&af, path));
    CHECK_OK(dc_afile_write(&af, "third", 5));
    dc_afile_abort(&af);
    check_text(path, "second");
    CHECK(!exists(tmp));

    /* a temporary that cannot be made (a folder in its place): named, earlier file intact */
    CHECK(mkdir(tmp, 0777) == 0);
    enum dc_status s = dc_file_write_atomic(path, "fourth", 6);
    printf("blocked: %s\n", dc_error_msg());
    CHECK(s == DC_ERR_IO && strstr(dc_error_msg(), tmp) && strstr(dc_error_msg(), strerror(EISDIR)));
    check_text(path, "second");
    rmdir(tmp);

    /* the folder removed between open and commit: the write or the rename fails, named */
    CHECK_OK(dc_afile_open(&af, path));
    CHECK_OK(dc_afile_write(&af, "fifth", 5));
    remove(tmp);
    remove(path);
    CHECK(rmdir(dir) == 0);
    s = dc_afile_commit(&af);
    printf("folder gone: %s\n", dc_error_msg());
    CHECK(s == DC_ERR_IO && strstr(dc_error_msg(), "out.bin") && strstr(dc_error_msg(), strerror(ENOENT)) &&
          strstr(dc_error_msg(), "was its folder removed?"));
    CHECK(!exists(dir));
    return test_finish("test_atomic_file");
}
