/* check.h: tiny helpers shared by the test programs: tolerance compares that
 * print the first mismatch, the skip code, and paths to test data. */
#ifndef DC_TEST_CHECK_H
#define DC_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TEST_SKIP 77

/* The verdict of a GPU test that found no GPU: DC_TEST_SKIP, or 1 with a
 * message when DC_REQUIRE_GPU is set (to anything but 0), as
 * scripts/gpu-check.sh does, so a GPU machine cannot pass by skipping. */
static inline int test_gpu_skip(const char *name, const char *why)
{
    const char *req = getenv("DC_REQUIRE_GPU");
    if (req && *req && strcmp(req, "0")) {
        fprintf(stderr, "%s: no GPU (%s), but DC_REQUIRE_GPU=%s requires one: failed\n", name, why, req);
        return 1;
    }
    printf("%s: no GPU: skipped (%s)\n", name, why);
    return DC_TEST_SKIP;
}

static int dc_test_failures = 0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            dc_test_failures++;                                                \
        }                                                                      \
    } while (0)

#define CHECK_OK(expr)                                                         \
    do {                                                                       \
        enum dc_status s_ = (expr);                                            \
        if (s_ != DC_OK) {                                                     \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, \
                    dc_status_str(s_), dc_error_msg());                        \
            dc_test_failures++;                                                \
        }                                                                      \
    } while (0)

/* |ref - got| <= atol + rtol*|ref| for all i; prints the first mismatch. */
static inline int check_close(const char *what, const float *ref, const float *got, size_t n,
                              float atol, float rtol)
{
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(ref[i] - got[i]);
        if (!(d <= atol + rtol * fabsf(ref[i]))) {
            fprintf(stderr, "%s: mismatch at %zu: ref %.8g got %.8g (|d| %.3g)\n", what, i,
                    (double)ref[i], (double)got[i], (double)d);
            dc_test_failures++;
            return 0;
        }
    }
    return 1;
}

/* "$DC_TEST_DATA/<sub>" when that folder exists, else NULL. */
static inline const char *test_data_dir(const char *sub, char *buf, size_t len)
{
    const char *root = getenv("DC_TEST_DATA");
    if (!root)
        root = "data";
    snprintf(buf, len, "%s/%s", root, sub);
    FILE *f = NULL;
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/.", buf);
    f = fopen(probe, "r");
    if (!f)
        return NULL;
    fclose(f);
    return buf;
}

/* A writable scratch path: "$DC_TEST_TMP/<name>" (or ./<name>). */
static inline const char *test_tmp_path(const char *name, char *buf, size_t len)
{
    const char *root = getenv("DC_TEST_TMP");
    snprintf(buf, len, "%s/%s", root ? root : ".", name);
    return buf;
}

/* Write text to the scratch file `name` (see test_tmp_path); the path goes to buf.
 * NULL when the file cannot be written (the caller's CHECK reports it). */
static inline const char *write_tmp_file(const char *name, const char *text, char *buf, size_t len)
{
    test_tmp_path(name, buf, len);
    FILE *f = fopen(buf, "w");
    if (!f)
        return NULL;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0 || !ok)
        return NULL;
    return buf;
}

static inline int test_finish(const char *name)
{
    if (dc_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, dc_test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
