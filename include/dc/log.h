/* log.h: messages to stderr and a progress bar that redraws on a terminal and
 * prints plain occasional lines when stderr is a file or pipe. */
#ifndef DC_LOG_H
#define DC_LOG_H

#include <stddef.h>

enum dc_log_level { DC_LOG_ERROR, DC_LOG_WARN, DC_LOG_INFO, DC_LOG_DEBUG };

void dc_log_set_level(enum dc_log_level level);
void dc_log(enum dc_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
#define dc_info(...) dc_log(DC_LOG_INFO, __VA_ARGS__)
#define dc_warn(...) dc_log(DC_LOG_WARN, __VA_ARGS__)

/* Progress over `total` steps; `label` is copied. */
struct dc_progress {
    char label[48];
    size_t total, done;
    double t_start, t_last;
    int tty;
};
void dc_progress_begin(struct dc_progress *p, const char *label, size_t total);
/* `extra` is a short status string shown after the bar (may be NULL). */
void dc_progress_update(struct dc_progress *p, size_t done, const char *extra);
void dc_progress_end(struct dc_progress *p, const char *extra);

/* Monotonic wall-clock seconds. */
double dc_time_now(void);

#endif
