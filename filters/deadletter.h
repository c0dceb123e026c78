/*
 * The dead-letter filter (filters/deadletter.c): decides when retries are
 * exhausted, and says where dead letters go. Publishing them is the
 * core's (sidecar/dlq.c), which finds these options in the chain.
 */
#ifndef FILTERS_DEADLETTER_H
#define FILTERS_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delivery;

struct deadletter_options {
	char *subject; /* template: {subject} {stream} {consumer} {subscription}
			*/
	char *stream; /* a stream to create for them, or NULL */
	int64_t max_age;
	int64_t duplicate_window;
	char *header_prefix; /* original headers are copied under it */
	/* After a MAX_DELIVERIES advisory: delete the original from its
	 * stream once the dead letter is stored (work-queue streams). */
	bool delete_original;
};

extern const struct filter_ops deadletter_filter;

/* Expands the subject template for |d| into |buf|; returns 0, or -1 if it
 * does not fit or would not be a valid subject. */
int deadletter_subject(const struct deadletter_options *,
    const struct delivery *d, const char *subscription, char *buf, size_t cap);
/* The same for a message known by its subject, stream and consumer. */
int deadletter_subject_for(const struct deadletter_options *,
    const char *subject, const char *stream, const char *consumer,
    const char *subscription, char *buf, size_t cap);
/* The subject filter a dead-letter stream needs to capture every expansion
 * of the template, e.g. "dlq.>" for "dlq.{subject}". */
void deadletter_stream_subjects(
    const struct deadletter_options *, char *buf, size_t cap);

#endif
