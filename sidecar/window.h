/*
 * The pull window of one subscription: how many messages the sidecar may
 * hold, sized by its apps. A window is what a pod takes from the consumer
 * ahead of its app, so it should be what the app gets through in a short
 * while, not a fixed count: a fixed 1,024 is two milliseconds of a fast
 * app's work and twenty seconds of a slow one's, which other pods could
 * be doing meanwhile.
 *
 * The window is a base (the apps' capacity, what they take at once, plus
 * what waits in a filter and so cannot reach them) plus what they
 * finished in the last WINDOW_HOLD_S, at least WINDOW_FLOOR and at most
 * the subscription's max_in_flight. Within a period it grows as soon
 * as the apps finish more than the last period's count, so a burst after
 * a quiet spell opens it within a few round trips.
 */
#ifndef SIDECAR_WINDOW_H
#define SIDECAR_WINDOW_H

#include <stdint.h>

/* Held by value in its owner; window_init() before use. */
struct window {
	int64_t max;
	double period_start; /* seconds; < 0: not started */
	uint64_t done_at_start;
	/* Finished in the last whole period, per WINDOW_HOLD_S. */
	uint64_t finished_last;
};

/* Seconds of the apps' work a window holds beyond their capacity. */
#define WINDOW_HOLD_S 0.1
/* The smallest window (unless max_in_flight is smaller). */
#define WINDOW_FLOOR 32

void window_init(struct window *, int64_t max_in_flight);

/*
 * Returns the window at |now| (seconds, the loop's clock; a step back
 * starts a new period): |done| is how many deliveries the subscription
 * has finished so far (acked, retried, dead-lettered: never decreasing),
 * |base| what it holds that is not the apps' pace: their capacity plus
 * the deliveries parked in its filters. Always between min(WINDOW_FLOOR,
 * max_in_flight) and max_in_flight.
 */
int64_t window_size(struct window *, double now, uint64_t done, uint64_t base);

#endif
