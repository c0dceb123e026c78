/*
 * Dead letters: the original payload, untouched, published with headers
 * that say why it failed and where it came from, to the subject the
 * dead-letter filter's options name. The original headers travel under a
 * prefix (never as themselves: Nats-Msg-Id, Nats-Expected-* and
 * Nats-Rollup would be acted on by the dead-letter stream), except the
 * trace context, which travels as itself too. The dead letter's own
 * Nats-Msg-Id is derived from the stream and sequence, so a second attempt
 * to dead-letter the same message is a duplicate, not a second copy.
 *
 * Headers set (NATS header names):
 *   Nats-Sidecar-Reason        a code: rejected, max_attempts, ...
 *   Nats-Sidecar-Reason-Text   the app's or the filter's words
 *   Nats-Sidecar-Subject, -Stream, -Sequence, -Consumer, -Deliveries
 *   Nats-Sidecar-Published     when the stream stored the original
 *   Nats-Sidecar-Failed        when it was given up on
 *   Nats-Sidecar-Instance      which sidecar did it
 *   Nats-Sidecar-Truncated     original payload length, when cut to fit
 */
#ifndef SIDECAR_DLQ_H
#define SIDECAR_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "filters/filter.h"

struct bus;
struct bus_header;
struct deadletter_options;
struct delivery;

/* What a dead letter is made of, whichever way the message was read: a
 * delivery the sidecar holds, or a message read by its stream sequence. */
struct dlq_source {
	const char *subject;
	const char *stream;
	const char *consumer;
	uint64_t stream_seq;
	uint64_t deliveries; /* JetStream's delivery count */
	int64_t published_ns; /* when the stream stored it, ns since 1970 */
	const struct bus_header *headers; /* the original's, in order */
	size_t nheaders;
	/* The trace context it went with, or NULL: travels as itself. */
	const char *traceparent;
	const char *tracestate;
	const void *payload;
	size_t len;
};

/* |error| is NULL when the dead-letter stream stored it. */
typedef void (*dlq_done_fn)(void *arg, const char *error);

/*
 * Publishes the dead letter of |d| to |subject| and calls |done| with the
 * outcome within |timeout_ns|. Returns the bus request id (cancel it with
 * dlq_cancel()), or 0 if nothing could be sent; |done| is then not
 * called.
 */
uint64_t dlq_publish(struct bus *, const struct deadletter_options *,
    const struct delivery *d, const char *subject, struct filter_verdict v,
    const char *instance_id, int64_t timeout_ns, dlq_done_fn done, void *arg);
/* The same for a message described by |src| (only read during the call). */
uint64_t dlq_publish_source(struct bus *, const struct deadletter_options *,
    const struct dlq_source *src, const char *subject, struct filter_verdict v,
    const char *instance_id, int64_t timeout_ns, dlq_done_fn done, void *arg);

/* Forgets a publish of dlq_publish*() under way: |done| is not called. */
void dlq_cancel(struct bus *, uint64_t id);

/* Creates the options' stream if they name one (asynchronously; the
 * outcome is logged). */
void dlq_create_stream(struct bus *, const struct deadletter_options *);

#endif
