/*
 * clock.h - the monotonic clock that timeouts, deadlines, backoff and
 * rates are measured by (never the wall clock, which can jump).
 */
#ifndef IG_CLOCK_H
#define IG_CLOCK_H

/* Milliseconds since an arbitrary fixed point. Cannot fail. */
long long ig_clock_ms(void);

/* Seconds since the same point, with a fraction. Cannot fail. */
double ig_clock_s(void);

#endif /* IG_CLOCK_H */
