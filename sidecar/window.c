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
window_size(struct window *w, double now, uint64_t done, uint64_t capacity)
{
	uint64_t finished, recent;
	double elapsed;
	int64_t size;

	if (w->period_start < 0 || done < w->done_at_start) {
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
	recent = finished > w->finished_last ? finished : w->finished_last;
	if (capacity > (uint64_t)w->max || recent > (uint64_t)w->max)
		return w->max;
	size = (int64_t)(capacity + recent);
	if (size < WINDOW_FLOOR)
		size = WINDOW_FLOOR;
	return size < w->max ? size : w->max;
}
