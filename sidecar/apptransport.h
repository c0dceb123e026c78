/*
 * Between the app channel and its transports. A transport embeds struct
 * app first in its per-app state, registers it with appchan_attach(),
 * reports what the app says through the appchan_*() calls below and
 * carries out what the core sends through its struct app_ops. The core
 * sees none of this (appchan.h).
 */
#ifndef SIDECAR_APPTRANSPORT_H
#define SIDECAR_APPTRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "appchan.h"

struct app_ops {
	/* Queues a delivery; -1 if it cannot fit the app's frame limit. */
	int (*delivery)(
	    struct app *, const NatsSidecar__Channel__V1__Delivery *);
	void (*publish_ack)(
	    struct app *, const NatsSidecar__Channel__V1__PublishAck *);
	void (*error)(struct app *, NatsSidecar__Channel__V1__Error__Code,
	    const char *message, uint64_t ref_id, bool fatal);
	void (*drain)(struct app *, uint32_t grace_ms);
	/* Writes queued output; may end in appchan_detach() and the
	 * transport freeing the app. */
	void (*flush)(struct app *);
	/* Closes and frees the app at once, raising no events. */
	void (*free)(struct app *);
};

/* Owned by the channel, except for the memory around it. */
struct app {
	const struct app_ops *ops;
	struct appchan *chan;
	uint64_t id;
	bool ready;
	char *name;
	uint32_t capacity;
	char **subscriptions;
	size_t nsubscriptions;
	void *data; /* the core's */
	TAILQ_ENTRY(app) entry;
};

/* Registers a new connection |app| (zeroed by the transport); it is not
 * ready until appchan_ready(). */
void appchan_attach(struct appchan *, struct app *, const struct app_ops *);
/* The handshake is done: copies the app's description and raises
 * app_ready (after telling the app to drain if the channel is draining). */
void appchan_ready(struct app *, const char *name, uint32_t capacity,
    char *const *subscriptions, size_t nsubscriptions);
/* Passes a valid Result to the core, or answers an invalid one with a
 * non-fatal INVALID_FIELD error. */
void appchan_result(struct app *, const NatsSidecar__Channel__V1__Result *);
/* Passes a valid Publish to the core, or answers an invalid one with an
 * INVALID PublishAck giving the reason. */
void appchan_publish(struct app *, const NatsSidecar__Channel__V1__Publish *);
/* Unregisters |app|, raising app_gone if it was ready. The transport frees
 * its memory afterwards. */
void appchan_detach(struct app *);

#endif
