#include "window.h"

void
window_init(struct window *w, int64_t max_in_flight)
{
	w->max = max_in_flight;
	w->period_start = -1;
	w->done_at_start = 0;
	w->finished_last = 0;
}

int64_t
window_size(struct window *w, double now, uint64_t done, uint64_t base)
{
	uint64_t finished, size;
	double elapsed;

	/* The loop's clock is the wall clock: one stepped back starts a
	 * new period rather than stretching this one. */
	if (w->period_start < 0 || now < w->period_start) {
		w->period_start = now;
		w->done_at_start = done;
	}
	finished = done - w->done_at_start;
	elapsed = now - w->period_start;
	if (elapsed >= WINDOW_HOLD_S) {
		/* A long period (an idle loop) counts at its rate. */
		w->finished_last =
		    (uint64_t)((double)finished * WINDOW_HOLD_S / elapsed);
		w->period_start = now;
		w->done_at_start = done;
		finished = 0;
	}
	size =
	    base + (finished > w->finished_last ? finished : w->finished_last);
	if (size < WINDOW_FLOOR)
		size = WINDOW_FLOOR;
	return size < (uint64_t)w->max ? (int64_t)size : w->max;
}
