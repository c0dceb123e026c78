/*
 * What the server gives up on. When a consumer's own max_deliver is
 * reached (a pod of an older configuration, repeated kills), nats-server
 * stops delivering the message and says so only in an advisory on
 * $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>, which
 * carries no payload, and which it sends once. For every subscription
 * with a dead-letter filter that subject is captured by a small stream of
 * its own (advisories.stream_prefix + "_<stream>_<durable>": exactly that
 * subject, created and never rewritten, so pods of other configurations
 * cannot undo each other), read through one durable consumer that every
 * pod shares, so an advisory is handled once however many pods run and
 * none is lost while they restart. Each one is handled as:
 *
 *   STREAM.MSG.GET the original by its sequence
 *     -> dead letter (reason max_deliveries_advisory, full context, the
 *        same derived Nats-Msg-Id as any dead letter of that message)
 *     -> optionally STREAM.MSG.DELETE the original (work-queue streams),
 *        only if the advisory's delivery count reached max_deliver
 *     -> +ACK the advisory
 *
 * A failure on the way NAKs the advisory with advisories.retry_delay; a
 * message already gone acks it; one that cannot be acted on is
 * terminated. The streams are looked at on every connect and every
 * minute, and created when missing.
 */
#ifndef SIDECAR_ADVISORY_H
#define SIDECAR_ADVISORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct config;
struct ev_loop;
struct metrics;

/* One MAX_DELIVERIES advisory, as the sidecar needs it. */
struct advisory_event {
	char stream[256];
	char consumer[256];
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

/* The bus (re)connected: ensure the streams and the consumers, pull. */
void advisory_connected(struct advisory *);

/* Shutdown: pull no more; advisory_drained() says when the advisories in
 * hand are done. */
void advisory_drain(struct advisory *);
bool advisory_drained(const struct advisory *);

#endif
