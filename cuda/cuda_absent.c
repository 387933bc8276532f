/* cuda_absent.c: the CUDA backend's entry points in a build without CUDA, so
 * `device = auto` falls back to the CPU and `device = cuda` says why not. */
#include "dc/backend.h"

int dc_cuda_compiled(void) { return 0; }

enum dc_status dc_cuda_backend_init(struct dc_backend *be)
{
    (void)be;
    return DC_ERROR(DC_ERR_UNSUPPORTED, "this build has no CUDA backend (configured with DC_CUDA=OFF or no nvcc found)");
}

void dc_cuda_backend_shutdown(struct dc_backend *be) { (void)be; }
