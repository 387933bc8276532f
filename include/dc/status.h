/* status.h: library error reporting. Functions return an enum dc_status and
 * leave a message (with the source file and line that raised it) in a
 * thread-local last-error buffer, so only the tools decide when to exit. */
#ifndef DC_STATUS_H
#define DC_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum dc_status {
    DC_OK = 0,
    DC_ERR_ARG,         /* bad argument from the caller (programmer or user) */
    DC_ERR_CONFIG,      /* config file or --set override is wrong */
    DC_ERR_IO,          /* open/read/write failed */
    DC_ERR_FORMAT,      /* a file's contents are damaged or of the wrong kind */
    DC_ERR_NOMEM,       /* host or device allocation failed */
    DC_ERR_DEVICE,      /* CUDA / cuBLAS / cuDNN / cuSPARSE call failed */
    DC_ERR_UNSUPPORTED, /* valid request this build or backend cannot do */
    DC_ERR_DIVERGED,    /* training produced a NaN or infinite loss */
    DC_ERR_INTERNAL,    /* a self-check inside the library failed: a bug to report */
    DC_STATUS_COUNT
};

const char *dc_status_str(enum dc_status s);

/* Record an error and return s, so callers write `return DC_ERROR(DC_ERR_IO, "...", ...)`. */
enum dc_status dc_error_set(enum dc_status s, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define DC_ERROR(status, ...) dc_error_set((status), __FILE__, __LINE__, __VA_ARGS__)

/* The message of the last error on this thread ("" when none). */
const char *dc_error_msg(void);
/* Where the last error was raised ("file.c:123"), for debugging output. */
const char *dc_error_where(void);
void dc_error_clear(void);

/* Propagate a failing status unchanged (the message is already set). */
#define DC_TRY(expr)                         \
    do {                                     \
        enum dc_status dc_try_s_ = (expr);   \
        if (dc_try_s_ != DC_OK)              \
            return dc_try_s_;                \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
