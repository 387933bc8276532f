/* bench_blas_core.c: print the OpenBLAS core our programs run with, so the
 * benchmark scripts give their peers (PyTorch, numpy) the same kernels
 * through OPENBLAS_CORETYPE instead of testing the CPU's features a second
 * time in shell (bench/peer_blas_env.sh).  Prints nothing without OpenBLAS. */
#include <stdio.h>

#include "dc/backend.h"

#ifdef DC_HAVE_OPENBLAS
#include <cblas.h>
#endif

int main(int argc, char **argv)
{
    (void)argc;
    dc_blas_fix_kernels(argv); /* may restart this program with OPENBLAS_CORETYPE set */
#ifdef DC_HAVE_OPENBLAS
    const char *core = openblas_get_corename();
    if (core)
        printf("%s\n", core);
#endif
    return 0;
}
