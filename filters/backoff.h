/*
 * The backoff filter (filters/backoff.c): retry delays by attempt.
 */
#ifndef FILTERS_BACKOFF_H
#define FILTERS_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "sidecar/config.h"

struct backoff_options {
	struct config_durations schedule;
	bool exponential;
	int64_t initial;
	int64_t multiplier;
	int64_t max;
	int64_t jitter; /* percent */
	int64_t max_app_delay;
};

extern const struct filter_ops backoff_filter;

/* The delay (ns) before attempt |attempt| + 1 of the message at
 * |stream_seq|; the same for the same arguments. */
int64_t backoff_delay(
    const struct backoff_options *, uint64_t attempt, uint64_t stream_seq);

#endif
