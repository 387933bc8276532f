/* log.c: leveled messages and a progress bar.  On a terminal the bar redraws
 * in place; into a file or pipe it prints a plain line at most every few
 * seconds, so logs of long runs stay readable. */
#define _POSIX_C_SOURCE 200809L
#include "dc/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum dc_log_level dc_level = DC_LOG_INFO;

void dc_log_set_level(enum dc_log_level level) { dc_level = level; }

void dc_log(enum dc_log_level level, const char *fmt, ...)
{
    if (level > dc_level)
        return;
    static const char *prefix[] = {"error: ", "warning: ", "", "debug: "};
    va_list ap;
    va_start(ap, fmt);
    fputs(prefix[level], stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double dc_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dc_progress_begin(struct dc_progress *p, const char *label, size_t total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = p->t_last = dc_time_now();
    p->tty = isatty(fileno(stderr));
}

static void dc_progress_draw(struct dc_progress *p, const char *extra, int final)
{
    double now = dc_time_now(), el = now - p->t_start;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    double eta = frac > 0 ? el / frac - el : 0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %3.0f%% %6.1fs eta %5.0fs %s\033[K", p->label, bar, 100 * frac, el,
                final ? 0.0 : eta, extra ? extra : "");
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s %zu/%zu %.1fs %s\n", p->label, p->done, p->total, el, extra ? extra : "");
    }
    fflush(stderr);
    p->t_last = now;
}

void dc_progress_update(struct dc_progress *p, size_t done, const char *extra)
{
    p->done = done;
    double since = dc_time_now() - p->t_last;
    if (since >= (p->tty ? 0.2 : 10.0))
        dc_progress_draw(p, extra, 0);
}

void dc_progress_end(struct dc_progress *p, const char *extra)
{
    p->done = p->total;
    if (p->tty)
        dc_progress_draw(p, extra, 1);
}
