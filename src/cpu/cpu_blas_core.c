/* cpu_blas_core.c: make OpenBLAS use the kernels the CPU can run.
 *
 * OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels from the CPU's
 * family and model numbers.  A virtual machine that hides them (this
 * project's own build machine reports "Intel(R) Xeon(R) Processor" with
 * AVX-512) gets the generic Prescott kernels: SSE3, one-ninth of the speed
 * (SGEMM 1024^3 on one core: 14 GFLOP/s as Prescott, 129 as SkylakeX), and
 * every convolution and fully connected layer with it.  OpenBLAS reads
 * OPENBLAS_CORETYPE only while it loads, before main, so the cure is to set
 * it from the CPU's feature flags and start the program again.  The user's
 * own OPENBLAS_CORETYPE always wins; DC_BLAS_CORE_SET tells the restarted
 * program (and its backend description) that we chose it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef DC_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "dc/backend.h"

#define DC_BLAS_CORE_ENV "DC_BLAS_CORE_SET"

#if defined(DC_HAVE_OPENBLAS) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* The best OpenBLAS core these feature flags can run, or NULL (no AVX2). */
static const char *dc_blas_core_wanted(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}

/* Whether OpenBLAS's chosen core already uses kernels at least as wide. */
static int dc_blas_core_fits(const char *have, const char *want)
{
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *const avx2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    const char *const *ok = strcmp(want, "SkylakeX") == 0 ? avx512 : avx2;
    size_t n = strcmp(want, "SkylakeX") == 0 ? sizeof avx512 / sizeof *avx512 : sizeof avx2 / sizeof *avx2;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(have, ok[i]) == 0)
            return 1;
    return 0;
}

void dc_blas_fix_kernels(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv(DC_BLAS_CORE_ENV))
        return; /* the user chose, or we already restarted */
    const char *want = dc_blas_core_wanted();
    const char *have = openblas_get_corename();
    if (!want || !have || dc_blas_core_fits(have, want))
        return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0 || setenv(DC_BLAS_CORE_ENV, have, 1) != 0)
        return;
    /* the resolved path, not /proc/self/exe itself: ps and top would call the program "exe" */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        fflush(NULL);
        execv(self, argv);
    }
    /* no /proc or no exec: run on, slow, and let the description say why */
    unsetenv("OPENBLAS_CORETYPE");
    setenv(DC_BLAS_CORE_ENV, "-", 1);
}
#else
void dc_blas_fix_kernels(char **argv)
{
    (void)argv;
}
#endif

const char *dc_blas_kernels(char *buf, size_t size)
{
#ifdef DC_HAVE_OPENBLAS
    const char *set = getenv(DC_BLAS_CORE_ENV);
    const char *core = openblas_get_corename();
    if (set && strcmp(set, "-") == 0)
        snprintf(buf, size, "OpenBLAS %s (could not restart with better kernels)", core ? core : "?");
    else if (set)
        snprintf(buf, size, "OpenBLAS %s (the CPU model is hidden; OpenBLAS chose %s)", core ? core : "?", set);
    else
        snprintf(buf, size, "OpenBLAS %s", core ? core : "?");
#else
    snprintf(buf, size, "portable GEMM");
#endif
    return buf;
}
