/* killpoint.h: a test hook that interrupts the process at a named event, so
 * kill-and-resume and I/O-error tests hit a chosen moment every time instead
 * of racing a timer.  Costs one getenv per process when unused. */
#ifndef DC_KILLPOINT_H
#define DC_KILLPOINT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Count one occurrence of `event`.  With DC_KILL_AT=EVENT:N in the
 * environment, the N-th occurrence of EVENT in this process raises SIGKILL
 * (nothing flushed, as a real kill); DC_KILL_AT=EVENT:N:stop raises SIGSTOP
 * instead, and the process goes on after SIGCONT.  The events (listed in
 * docs/reliability.md): step, epoch, stage, pruned, clustered, and for every
 * file written atomically write-FILE, commit-FILE and renamed-FILE. */
void dc_killpoint(const char *event);

#ifdef __cplusplus
}
#endif
#endif
