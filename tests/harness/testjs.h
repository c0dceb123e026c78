/*
 * Synchronous JetStream helpers for tests (blocking is fine here, never in
 * the daemon): connect, create streams, publish with headers, read back.
 * Each returns 0 on success or -1 after printing the reason on stderr.
 */
#ifndef TESTS_HARNESS_TESTJS_H
#define TESTS_HARNESS_TESTJS_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

struct testjs;

/* Connects to |url|; returns NULL on failure. */
struct testjs *testjs_connect(const char *url);
/* The same over TLS, trusting the CA certificate in |ca_file|. */
struct testjs *testjs_connect_tls(const char *url, const char *ca_file);
void testjs_free(struct testjs *);
natsConnection *testjs_conn(struct testjs *);
jsCtx *testjs_ctx(struct testjs *);

/* Creates stream |name| (file storage) capturing |subjects| (a
 * NULL-terminated list). */
int testjs_add_stream(
    struct testjs *, const char *name, const char *const *subjects);
/*
 * Publishes |len| bytes to |subject| and waits for the PubAck. |headers| is
 * a NULL-terminated list of name, value pairs, or NULL. Stores the stream
 * sequence in |*seq| and whether it was a duplicate in |*dup| when not NULL.
 */
int testjs_publish(struct testjs *, const char *subject, const void *data,
    size_t len, const char *const *headers, uint64_t *seq, int *dup);
/*
 * Publishes |n| small order events to |subject| asynchronously and waits
 * for every PubAck: event i (from |first|) has payload "order-<i>" and
 * Nats-Msg-Id "<id_prefix>-<i>".
 */
int testjs_publish_orders(struct testjs *, const char *subject,
    const char *id_prefix, uint64_t first, uint64_t n);
/* Reads message |seq| of |stream|; the caller destroys |*msg|. */
int testjs_get(
    struct testjs *, const char *stream, uint64_t seq, natsMsg **msg);
/* Messages in |stream| now. */
int testjs_stream_msgs(struct testjs *, const char *stream, uint64_t *n);
/* Creates a durable pull consumer on |stream| with explicit acks, the
 * given AckWait, delivering all messages or only new ones. */
int testjs_add_consumer(struct testjs *, const char *stream,
    const char *durable, int64_t ack_wait_ns, int deliver_new);
/* A durable consumer's AckWait, as the server has it. */
int testjs_consumer_ack_wait(struct testjs *, const char *stream,
    const char *durable, int64_t *ack_wait_ns);
/* Deletes a durable consumer, as an operator might at runtime. */
int testjs_delete_consumer(
    struct testjs *, const char *stream, const char *durable);
/* A durable consumer's pending (not yet delivered) and ack-pending counts. */
int testjs_consumer_pending(struct testjs *, const char *stream,
    const char *durable, uint64_t *pending, uint64_t *ack_pending);

#endif
