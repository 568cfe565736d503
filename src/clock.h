/*
 * clock.h - the monotonic clock that timeouts, deadlines, backoff and
 * rates are measured by (never the wall clock, which can jump).
 */
#ifndef IG_CLOCK_H
#define IG_CLOCK_H

#include <time.h>

/* Milliseconds since an arbitrary fixed point. Cannot fail. */
long long ig_clock_ms(void);

/* Seconds since the same point, with a fraction. Cannot fail. */
double ig_clock_s(void);

/* The wall-clock time ms milliseconds from now: the deadline
 * pthread_cond_timedwait takes on a condition variable of the default
 * clock (the one exception to the monotonic rule). Cannot fail. */
struct timespec ig_clock_cond_deadline(long ms);

#endif /* IG_CLOCK_H */
