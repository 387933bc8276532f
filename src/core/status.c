/* status.c: status names and the thread-local last-error message, so library
 * code can report where and why it failed without printing or exiting. */
#include "dc/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char dc_err_msg[1024];
static _Thread_local char dc_err_where[256];

const char *dc_status_str(enum dc_status s)
{
    switch (s) {
    case DC_OK: return "ok";
    case DC_ERR_ARG: return "invalid argument";
    case DC_ERR_CONFIG: return "config error";
    case DC_ERR_IO: return "I/O error";
    case DC_ERR_FORMAT: return "bad file format";
    case DC_ERR_NOMEM: return "out of memory";
    case DC_ERR_DEVICE: return "device error";
    case DC_ERR_UNSUPPORTED: return "unsupported";
    case DC_ERR_DIVERGED: return "training diverged";
    case DC_ERR_INTERNAL: return "internal error";
    case DC_STATUS_COUNT: break;
    }
    return "unknown status";
}

enum dc_status dc_error_set(enum dc_status s, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dc_err_msg, sizeof dc_err_msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    snprintf(dc_err_where, sizeof dc_err_where, "%s:%d", base ? base + 1 : file, line);
    return s;
}

const char *dc_error_msg(void) { return dc_err_msg; }
const char *dc_error_where(void) { return dc_err_where; }

void dc_error_clear(void)
{
    dc_err_msg[0] = '\0';
    dc_err_where[0] = '\0';
}
