#include <string.h>

#include "filter.h"

#include "backoff.h"
#include "deadletter.h"
#include "dedup.h"
#include "serial.h"
#include "translate.h"

extern const struct filter_ops passthrough_filter;

/* Every filter, found by the name used in the configuration. */
const struct filter_ops *const filter_registry[] = {
	&backoff_filter,
	&deadletter_filter,
	&dedup_filter,
	&passthrough_filter,
	&serial_filter,
	&translate_filter,
	NULL,
};

const struct filter_ops *
filter_lookup(const char *name)
{
	for (size_t i = 0; filter_registry[i] != NULL; i++) {
		if (strcmp(filter_registry[i]->name, name) == 0)
			return filter_registry[i];
	}
	return NULL;
}

const char *
filter_reason_name(enum filter_reason reason)
{
	static const char *const names[] = {
		[FILTER_REASON_NONE] = "none",
		[FILTER_REASON_REJECTED] = "rejected",
		[FILTER_REASON_MAX_ATTEMPTS] = "max_attempts",
		[FILTER_REASON_UNDECODABLE] = "undecodable",
		[FILTER_REASON_UNTRANSLATABLE] = "untranslatable",
		[FILTER_REASON_TOO_LARGE] = "too_large",
		[FILTER_REASON_NO_KEY] = "no_key",
		[FILTER_REASON_MAX_DELIVERIES] = "max_deliveries_advisory",
	};

	if ((size_t)reason >= sizeof names / sizeof names[0])
		return "unknown";
	return names[reason];
}
