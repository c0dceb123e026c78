/*
 * One JetStream delivery while the sidecar holds it: the NATS message, its
 * metadata from the ack subject, and where it is in the chain and at the
 * app. Created by the pull engine, owned by the core until it is acked,
 * NAKed or dropped; filters read it through the accessors below.
 */
#ifndef SIDECAR_DELIVERY_H
#define SIDECAR_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <nats/nats.h>

#include "filters/filter.h"
#include "trace.h"

struct subscription;
struct view;

/* Parsed from the $JS.ACK reply subject. */
struct delivery_meta {
	char stream[64];
	char consumer[64];
	uint64_t num_delivered; /* JetStream's delivery count, from 1 */
	uint64_t stream_seq;
	uint64_t consumer_seq;
	int64_t timestamp_ns; /* when the stream stored it */
	uint64_t num_pending;
};

enum delivery_state {
	DELIVERY_CHAIN, /* in the inbound chain (maybe held) */
	DELIVERY_QUEUED, /* waiting for app capacity */
	DELIVERY_AT_APP, /* sent, waiting for the result */
	DELIVERY_OUTCOME, /* in the outcome chain (maybe held) */
	DELIVERY_DEAD_LETTERING, /* waiting for the dead letter's PubAck */
	DELIVERY_SETTLED, /* ack/nak sent, about to be freed */
};

struct delivery {
	uint64_t id; /* unique in this process: the app's Result.id */
	struct subscription *sub;
	natsMsg *msg; /* owned */
	struct delivery_meta meta;
	size_t size; /* counted against max_in_flight_bytes */
	enum delivery_state state;
	struct view *view; /* decoded payload, made at most once */
	/* How to decode it (view_get(d, d->view_spec)), or NULL when the
	 * subscription declares no message type. */
	const struct view_spec *view_spec;

	/* Set by translation (delivery_set_payload()): what the app gets
	 * instead of the message's payload, its content type and schema
	 * version; NULL when the app gets the message as it is. */
	void *app_payload; /* owned */
	size_t app_payload_len;
	const char *app_content_type;
	const char *app_version;

	/* Chain runner: the filter to run next, and the verdict so far. */
	size_t chain_pos;
	struct filter_verdict verdict;
	char *text; /* owned text behind verdict.text, if any */

	/* Core: app, timers, and the queue it is on. */
	void *app;
	int64_t sent_at; /* when it went to the app */
	int64_t deadline; /* processing timeout */
	int64_t keepalive_at; /* next +WPI */
	uint64_t pending_request; /* a bus request about it, or 0 */
	bool parked; /* held by a filter before the app: outside the window */
	TAILQ_ENTRY(delivery) entry; /* the queue or the app it is on */
	TAILQ_ENTRY(delivery) all; /* every delivery of its subscription */

	/* Trace context, set by delivery_trace(): the traceparent passed on
	 * ("" for none), its trace id, and whether the message's tracestate
	 * goes with it (only beside the message's own, valid traceparent). */
	char traceparent[TRACE_PARENT_LEN + 1];
	char trace_id[TRACE_ID_LEN + 1];
	bool tracestate_ok;
};

TAILQ_HEAD(delivery_list, delivery);

/*
 * Takes ownership of |msg|, a JetStream message with a $JS.ACK reply, of
 * |size| bytes (bus_msg_size(), which the caller has already computed).
 * Returns NULL (and destroys |msg|) if the reply subject is not one.
 */
struct delivery *delivery_new(
    natsMsg *msg, struct subscription *sub, size_t size);
void delivery_free(struct delivery *);

/* Parses a $JS.ACK reply (9, 11 or 12 tokens); returns 0 or -1. */
int delivery_parse_reply(const char *reply, struct delivery_meta *meta);

const char *delivery_subject(const struct delivery *);
/* The ack subject. */
const char *delivery_reply(const struct delivery *);
/* The first value of header |name|, or NULL. */
const char *delivery_header(const struct delivery *, const char *name);
const void *delivery_payload(const struct delivery *, size_t *len);
/* Nats-Msg-Id, or NULL. */
const char *delivery_msg_id(const struct delivery *);
/*
 * Sets the trace context: the message's traceparent when it is valid;
 * else, when |gen| is not NULL, a new one from it; else none. Returns 1
 * when the message carried a traceparent that is not valid (it is not
 * passed on, nor its tracestate), else 0.
 */
int delivery_trace(struct delivery *, struct trace_gen *gen);
/* The tracestate to pass on with d->traceparent, or NULL. */
const char *delivery_tracestate(const struct delivery *);
/* Gives the app |len| bytes at |data| (which it takes ownership of) in
 * |content_type| and |version| (both outliving |d|) instead of the
 * payload; the message itself, which dead letters carry, is unchanged. */
void delivery_set_payload(struct delivery *, void *data, size_t len,
    const char *content_type, const char *version);
/* Copies |text| into the delivery; returns the copy for verdict.text. */
const char *delivery_set_text(struct delivery *, const char *text);

#endif
