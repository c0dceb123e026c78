/*
 * A subscription's durable pull consumer on the server: created
 * explicitly (never by a subscribe call, which would delete it on drain),
 * always with the full configuration, and checked against it per
 * consumer_policy. Everything runs through asynchronous API requests; a
 * failure is retried with backoff and reported once, not per attempt.
 */
#ifndef SIDECAR_CONSUMER_H
#define SIDECAR_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

struct bus;
struct config_subscription;
struct ev_loop;

struct consumer_events {
	/* The consumer exists and matches the policy: pulling may start. */
	void (*bound)(void *arg);
	void *arg;
	/* A pending poll was answered: messages not yet delivered and
	 * deliveries not yet acked, as the server counts them. May be NULL. */
	void (*pending)(void *arg, uint64_t pending, uint64_t ack_pending);
};

struct consumer *consumer_new(struct ev_loop *, struct bus *,
    const struct config_subscription *, const struct consumer_events *);
void consumer_free(struct consumer *);

/* Looks the consumer up and creates, verifies or updates it. Idempotent:
 * a check already under way is not started twice. */
void consumer_bind(struct consumer *);
/* The consumer was found gone or unreachable while pulling: mark it
 * unbound and bind again. */
void consumer_lost(struct consumer *, const char *why);
bool consumer_is_bound(const struct consumer *);
/* The AckWait the bound consumer really has (a consumer used as it is
 * may differ from the configuration), in ns. */
int64_t consumer_ack_wait(const struct consumer *);
/*
 * Asks CONSUMER.INFO for the pending counts every |interval_ns| while the
 * consumer is bound, one request at a time, and reports each answer
 * through the pending event. The server recounts on every call and audits
 * it, so the interval should be seconds, never per message.
 */
void consumer_poll_pending(struct consumer *, int64_t interval_ns);
/* Why it is not bound, for readiness reports; NULL when bound. */
const char *consumer_problem(const struct consumer *);

#endif
