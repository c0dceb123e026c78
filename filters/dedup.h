/*
 * The dedup filter (filters/dedup.c): each key reaches the app once
 * within the window, across restarts, through the store of sidecar/store.h.
 */
#ifndef FILTERS_DEDUP_H
#define FILTERS_DEDUP_H

#include <stdint.h>

enum dedup_missing {
	DEDUP_MISSING_FALLBACK, /* key on stream and sequence */
	DEDUP_MISSING_DEAD_LETTER, /* dead-letter as "no_key" */
};

struct dedup_options {
	char *key; /* "header:NAME" or "field:PATH" */
	int64_t ttl;
	int missing_key; /* enum dedup_missing */
};

extern const struct filter_ops dedup_filter;

#endif
