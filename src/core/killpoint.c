/* killpoint.c: DC_KILL_AT, the test hook of dc/killpoint.h.  Events are
 * counted on the thread that runs the job (the only one that calls this). */
#define _POSIX_C_SOURCE 200809L
#include "dc/killpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"

static int dc_kp_state;      /* 0: DC_KILL_AT not read yet, 1: off, 2: armed */
static char dc_kp_event[128];
static long dc_kp_n, dc_kp_seen;
static int dc_kp_signal;

/* EVENT:N or EVENT:N:stop; EVENT may hold ':' itself, so parse from the right. */
static void dc_kp_parse(void)
{
    dc_kp_state = 1;
    const char *v = getenv("DC_KILL_AT");
    if (!v || !*v)
        return;
    char buf[sizeof dc_kp_event];
    snprintf(buf, sizeof buf, "%s", v);
    dc_kp_signal = SIGKILL;
    size_t len = strlen(buf);
    if (len > 5 && strcmp(buf + len - 5, ":stop") == 0) {
        buf[len - 5] = '\0';
        dc_kp_signal = SIGSTOP;
    }
    char *colon = strrchr(buf, ':'), *end = NULL;
    long n = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == buf || end == colon + 1 || *end || n < 1) {
        dc_warn("DC_KILL_AT=%s: expected EVENT:N or EVENT:N:stop with N >= 1; ignored", v);
        return;
    }
    *colon = '\0';
    snprintf(dc_kp_event, sizeof dc_kp_event, "%s", buf);
    dc_kp_n = n;
    dc_kp_state = 2;
}

void dc_killpoint(const char *event)
{
    if (dc_kp_state == 0)
        dc_kp_parse();
    if (dc_kp_state != 2 || strcmp(event, dc_kp_event) != 0 || ++dc_kp_seen != dc_kp_n)
        return;
    if (dc_kp_signal == SIGSTOP)
        fflush(NULL); /* the test reads our output while we are stopped */
    raise(dc_kp_signal);
}
