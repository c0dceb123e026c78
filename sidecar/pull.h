/*
 * The pipelined pull engine of one subscription: hand-written pull
 * requests on one wildcard inbox (each request its own reply subject),
 * asking for more as soon as the window and the byte budget leave room,
 * not once the app has finished a batch as natsSubscription_Fetch does.
 * A request reserves the bytes that are free, so with small messages one
 * is live at a time and the next goes out when its batch is filled.
 *
 * Credits: what the sidecar holds plus what the live requests may still
 * bring never exceeds the window (at most max_in_flight messages) and
 * max_in_flight_bytes.
 * Data messages do not say which request they answer, so the engine
 * counts what may still arrive in total, subtracts what the server's end
 * statuses report as unfilled (Nats-Pending-Messages/Bytes), and caps the
 * total to nothing once no request is left. Requests that end
 * silently (batch filled, the 2.9.10 missing 408) expire by their own
 * deadline; silence beyond two heartbeats means the pull is dead.
 */
#ifndef SIDECAR_PULL_H
#define SIDECAR_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

struct bus;
struct config_subscription;
struct ev_loop;

struct pull_events {
	/* A data message (the callee owns it) and its size as
	 * bus_msg_size() gives it. */
	void (*message)(void *arg, natsMsg *msg, size_t size);
	/* The consumer is gone or unreachable: it needs binding again. */
	void (*lost)(void *arg, const char *why);
	void *arg;
	/* A pull request for |batch| messages was sent. May be NULL. */
	void (*requested)(void *arg, int64_t batch);
};

struct pull *pull_new(struct ev_loop *, struct bus *,
    const struct config_subscription *, const struct pull_events *);
/* Closes the inbox at once; nothing reaches the events afterwards. */
void pull_free(struct pull *);

/* Opens the inbox and starts pulling, or starts afresh as pull_reset()
 * when already pulling. Returns 0 or -1. */
int pull_start(struct pull *);
/* Stops pulling and drains the inbox: requests still queued at the server
 * bring nothing more, messages already on their way still arrive. */
void pull_stop(struct pull *);
/* After pull_stop(): whether the last message on its way has arrived. */
bool pull_drained(const struct pull *);
/* Forgets every live request (after a reconnect or a re-bind); the next
 * pull_refill() asks afresh. */
void pull_reset(struct pull *);
/*
 * Tops up credits given what the subscription holds now, up to |window|
 * messages (at most max_in_flight) and max_in_flight_bytes. Cheap when
 * there is nothing to do; call it once per loop turn.
 */
void pull_refill(struct pull *, size_t held, size_t held_bytes, int64_t window);

/* Counters for metrics and tests. */
struct pull_stats {
	uint64_t requests; /* pull requests sent */
	uint64_t messages; /* data messages received */
	uint64_t expired; /* requests that ended by their deadline */
	uint64_t dead; /* heartbeat silence detected */
	int64_t outstanding; /* messages that may still arrive */
	int64_t outstanding_bytes;
	size_t live; /* requests alive */
};

void pull_stats(const struct pull *, struct pull_stats *);

#endif
