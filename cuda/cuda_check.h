/* cuda_check.h: one error-check macro per GPU library, so every failed call
 * reports which call failed with that library's own error string and returns
 * DC_ERR_DEVICE to the caller instead of aborting the process.  Used only by
 * the .cu files of the CUDA backend (they are compiled as C++). */
#ifndef DC_CUDA_CHECK_H
#define DC_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cusparse.h>

#include "dc/status.h"

/* The failed call's error is also CUDA's "last error" until read: read it
 * here, so the next launch check does not blame an innocent kernel (a
 * sticky error, a broken context, stays and fails every later call). */
#define DC_CUDA_CHECK(call)                                                               \
    do {                                                                                  \
        cudaError_t dc_e_ = (call);                                                       \
        if (dc_e_ != cudaSuccess) {                                                       \
            (void)cudaGetLastError();                                                     \
            return DC_ERROR(DC_ERR_DEVICE, "%s failed: %s (%s)", #call,                   \
                            cudaGetErrorString(dc_e_), cudaGetErrorName(dc_e_));          \
        }                                                                                 \
    } while (0)

#define DC_CUBLAS_CHECK(call)                                                             \
    do {                                                                                  \
        cublasStatus_t dc_s_ = (call);                                                    \
        if (dc_s_ != CUBLAS_STATUS_SUCCESS)                                               \
            return DC_ERROR(DC_ERR_DEVICE, "%s failed: %s", #call,                        \
                            cublasGetStatusString(dc_s_));                                \
    } while (0)

/* cuDNN 9 keeps a detailed last-error string beside the status; show both. */
#define DC_CUDNN_CHECK(call)                                                              \
    do {                                                                                  \
        cudnnStatus_t dc_s_ = (call);                                                     \
        if (dc_s_ != CUDNN_STATUS_SUCCESS) {                                              \
            char dc_detail_[256];                                                         \
            cudnnGetLastErrorString(dc_detail_, sizeof dc_detail_);                       \
            return DC_ERROR(DC_ERR_DEVICE, "%s failed: %s%s%s", #call,                    \
                            cudnnGetErrorString(dc_s_), dc_detail_[0] ? ": " : "",        \
                            dc_detail_);                                                  \
        }                                                                                 \
    } while (0)

#define DC_CUSPARSE_CHECK(call)                                                           \
    do {                                                                                  \
        cusparseStatus_t dc_s_ = (call);                                                  \
        if (dc_s_ != CUSPARSE_STATUS_SUCCESS)                                             \
            return DC_ERROR(DC_ERR_DEVICE, "%s failed: %s", #call,                        \
                            cusparseGetErrorString(dc_s_));                               \
    } while (0)

/* After every kernel launch: a bad configuration shows up here, not later. */
#define DC_CUDA_LAUNCH_CHECK(kernel_name)                                                 \
    do {                                                                                  \
        cudaError_t dc_e_ = cudaGetLastError();                                           \
        if (dc_e_ != cudaSuccess)                                                         \
            return DC_ERROR(DC_ERR_DEVICE, "launch of kernel %s failed: %s",              \
                            kernel_name, cudaGetErrorString(dc_e_));                      \
    } while (0)

#endif
