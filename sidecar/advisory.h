/*
 * What the server gives up on. When a consumer's own max_deliver is
 * reached (a pod of an older configuration, repeated kills), nats-server
 * stops delivering the message and says so only in an advisory on
 * $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>, which
 * carries no payload. For every subscription with a dead-letter filter
 * that subject is captured by a small stream (exactly those subjects,
 * nothing wider), read through one durable consumer that every pod
 * shares, so an advisory is handled once however many pods run and none
 * is lost while they restart. Each one is handled as:
 *
 *   STREAM.MSG.GET the original by its sequence
 *     -> dead letter (reason max_deliveries_advisory, full context, the
 *        same derived Nats-Msg-Id as any dead letter of that message)
 *     -> optionally STREAM.MSG.DELETE the original (work-queue streams)
 *     -> +ACK the advisory
 *
 * A failure on the way NAKs the advisory with advisories.retry_delay; a
 * message already gone acks it. The capture stream and its consumer are
 * created (or the stream's subjects extended) on every connect.
 */
#ifndef SIDECAR_ADVISORY_H
#define SIDECAR_ADVISORY_H

#include <stddef.h>
#include <stdint.h>

struct bus;
struct config;
struct ev_loop;
struct metrics;

/* One MAX_DELIVERIES advisory, as the sidecar needs it. */
struct advisory_event {
	char stream[64];
	char consumer[64];
	uint64_t stream_seq;
	uint64_t deliveries;
};

/*
 * Parses an advisory body ({"type":"io.nats.jetstream.advisory.v1.
 * max_deliver","stream":…,"consumer":…,"stream_seq":…,"deliveries":…}).
 * Returns 0, or -1 with the reason in |why| (|cap| bytes).
 */
int advisory_parse(const char *json, size_t len, struct advisory_event *,
    char *why, size_t cap);

/*
 * Watches the advisories of every subscription of |cfg| that has a
 * dead-letter filter, counting dead letters in |metrics|. Returns NULL
 * when there is none, or advisories.enabled is false; every function
 * below accepts NULL and then does nothing. Nothing is asked of the
 * server before advisory_connected().
 */
struct advisory *advisory_new(
    struct ev_loop *, struct bus *, const struct config *, struct metrics *);
/* Returns unfinished advisories to the server (plain NAK) and forgets
 * every request. Call it before bus_free(). */
void advisory_free(struct advisory *);

/* The bus (re)connected: ensure the stream and the consumer, pull. */
void advisory_connected(struct advisory *);

#endif
