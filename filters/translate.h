/*
 * The translate filter (filters/translate.c): every delivery reaches the
 * app in the one schema version and encoding its subscription declares,
 * translated by the declared mappings of sidecar/mapping.h.
 */
#ifndef FILTERS_TRANSLATE_H
#define FILTERS_TRANSLATE_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct schema;

enum translate_unknown {
	TRANSLATE_UNKNOWN_RETRY, /* NAK with delay: consumers catch up */
	TRANSLATE_UNKNOWN_DEAD_LETTER,
};

/* A version the subscription may see, and its message type. */
struct translate_version {
	char *version; /* "v1" */
	char *type; /* "orders.v1.OrderCreated" */
};

struct translate_options {
	char *version; /* the one the app wants */
	int encoding; /* enum view_encoding */
	char *version_from; /* "subject" or "header:NAME" */
	struct config_tables versions; /* struct translate_version */
	struct config_strings mappings; /* mapping files */
	int unknown_version; /* enum translate_unknown */
	int64_t unknown_delay;
	/* The app's publishes to publish_subject (with {version} its own
	 * version) go out in each of publish_versions instead. */
	char *publish_subject;
	struct config_strings publish_versions;
};

extern const struct filter_ops translate_filter;

/*
 * For --check-config: compiles |o| against |schemas| as the filter would
 * and writes to |out| one line per target field nothing fills and per
 * source field lost without a drop, each after |prefix|. Returns 0, or
 * -1 after writing why it does not compile.
 */
int translate_check(const struct translate_options *o,
    const struct schema *schemas, const char *prefix, FILE *out);

#endif
