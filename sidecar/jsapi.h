/*
 * JetStream API bodies: what the sidecar sends to $JS.API and what it reads
 * back (consumer configurations, errors, publish acks). Pure functions over
 * JSON text, so they are unit-tested without a server.
 */
#ifndef SIDECAR_JSAPI_H
#define SIDECAR_JSAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_header;
struct config_subscription;

/* JetStream error codes the sidecar acts on. */
#define JSAPI_ERR_CONSUMER_NOT_FOUND 10014
#define JSAPI_ERR_STREAM_NOT_FOUND 10059
#define JSAPI_ERR_NO_MESSAGE_FOUND 10037
#define JSAPI_ERR_STREAM_NAME_IN_USE 10058
#define JSAPI_ERR_SEQUENCE_NOT_FOUND 10043
#define JSAPI_ERR_MSG_DELETE_FAILED 10057

struct jsapi_error {
	int code; /* HTTP-like: 400, 404, 503 */
	int err_code; /* JetStream's own, e.g. 10014 */
	char description[256];
};

struct jsapi_pub_ack {
	char stream[64];
	uint64_t seq;
	bool duplicate;
};

/* The consumer's max_ack_pending for a subscription (the rule is in
 * docs/configuration.md). */
int64_t jsapi_max_ack_pending(const struct config_subscription *);

/* The body of $JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>, with the
 * full configuration (an omitted field would mean its default). The caller
 * frees it. */
char *jsapi_consumer_create(const struct config_subscription *);

/*
 * Compares a CONSUMER.INFO or CREATE response with what |sub| wants.
 * Returns 0 when they match, 1 when they differ (|*diff| then lists each
 * field as "name: server has X, configured Y", the caller frees it), or -1
 * when |json| is not a consumer info (|*diff| says why).
 * |*immutable| is set when a differing field cannot be updated in place.
 */
int jsapi_consumer_diff(const struct config_subscription *, const char *json,
    size_t len, char **diff, bool *immutable);

/* The AckWait (ns) of a CONSUMER.INFO or CREATE response, or -1. */
int64_t jsapi_consumer_ack_wait(const char *json, size_t len);

/* Reads num_pending and num_ack_pending of a CONSUMER.INFO response;
 * returns 0, or -1 when it has not both as non-negative integers. */
int jsapi_consumer_pending(
    const char *json, size_t len, uint64_t *pending, uint64_t *ack_pending);

/* Returns 1 and fills |e| if |json| is an API error response, 0 if it is
 * not, -1 if it is not JSON. */
int jsapi_error(const char *json, size_t len, struct jsapi_error *e);

/* Parses a publish ack; returns 0, 1 for an error response (|e| filled),
 * or -1 for anything else. */
int jsapi_pub_ack(const char *json, size_t len, struct jsapi_pub_ack *,
    struct jsapi_error *e);

/* Writes the body of a pull request into |buf|; returns its length. */
size_t jsapi_pull_request(char *buf, size_t cap, int64_t batch,
    int64_t expires_ns, int64_t heartbeat_ns, int64_t max_bytes);

/* A message read with $JS.API.STREAM.MSG.GET.<stream>. */
struct jsapi_stream_msg {
	char *subject;
	uint64_t seq;
	/* When the stream stored it (ns since the epoch); 0 when the answer
	 * says nothing readable: it is only context. */
	int64_t time_ns;
	/* The message's headers in order, pointing into storage the
	 * struct owns. */
	struct bus_header *headers;
	size_t nheaders;
	uint8_t *data;
	size_t len;
	char *header_text; /* owned: what headers point into */
};

/*
 * Parses a STREAM.MSG.GET response. Returns 0 with |m| filled (free it
 * with jsapi_stream_msg_free()), 1 for an error response (|e| filled), or
 * -1 when it is neither (then |m| needs no freeing).
 */
int jsapi_stream_msg(const char *json, size_t len, struct jsapi_stream_msg *m,
    struct jsapi_error *e);
void jsapi_stream_msg_free(struct jsapi_stream_msg *);

/*
 * Parses a NATS header block ("NATS/1.0\r\nName: value\r\n...\r\n") of
 * |len| bytes. Returns 0 with |*h| (|*n| entries, names and values in
 * |*text|; the caller frees both), or -1 if it is not a header block.
 */
int jsapi_header_block(const uint8_t *block, size_t len, struct bus_header **h,
    size_t *n, char **text);

/* The body of a STREAM.MSG.GET or STREAM.MSG.DELETE request for |seq|. */
size_t jsapi_msg_request(char *buf, size_t cap, uint64_t seq, bool no_erase);

#endif
