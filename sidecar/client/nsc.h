/*
 * nsc: the client library for apps served by nats-sidecar.
 *
 * An app connects to the sidecar's Unix socket, says how many deliveries
 * it works on at once, and then receives events (deliveries, publish
 * acknowledgements, errors, drain) from nsc_next() and answers them with
 * nsc_ack() and friends. The wire protocol is described in
 * docs/protocol.md; this library speaks version 1 of it.
 *
 * The library is blocking and poll()-based: it starts no thread, installs
 * no signal handler and needs no event loop. Calls on one connection
 * must not run concurrently.
 *
 * Answers and publishes are queued, not written at once: nsc_flush()
 * writes them, and so does nsc_next() before it waits for input, so an
 * app that answers a batch of deliveries sends them in one write.
 *
 * The sidecar requires a sign of life at least every heartbeat interval
 * (nsc_heartbeat_ms()); nsc_next() sends heartbeats when nothing else was
 * sent for that long, so call it at least that often (with a timeout of 0
 * when the app polls nsc_fd() in a loop of its own).
 *
 * Errors: functions returning int return 0 on success and -1 on failure;
 * nsc_last_error() then says why. Once the connection is lost every call
 * fails; the app closes it and connects again. Running out of memory ends
 * the process.
 *
 * Link with -lnats-sidecar-client -lprotobuf-c.
 */
#ifndef NATS_SIDECAR_NSC_H
#define NATS_SIDECAR_NSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nsc;

struct nsc_options {
	/* Deliveries the app works on at once; the sidecar never has more
	 * than this many unanswered at the app. 0: 1. */
	uint32_t capacity;
	/* The largest frame the app accepts, in bytes: 0 (the sidecar's
	 * default, 1 MiB) or 1 KiB to 64 MiB. */
	uint32_t max_frame_size;
	/* Shown in the sidecar's logs; NULL: none. */
	const char *app_name;
	/* The subscriptions (by name in the sidecar's configuration) this
	 * app serves, NULL-terminated; NULL: all of them. */
	const char *const *subscriptions;
	/* How long nsc_connect() waits for the sidecar's answer;
	 * 0: 5000 ms. */
	int handshake_timeout_ms;
};

struct nsc_header {
	const char *name;
	const char *value;
};

/* One message to process. Empty strings stand for absent fields. */
struct nsc_delivery {
	uint64_t id; /* pass to nsc_ack() and friends */
	const char *subscription;
	const char *subject;
	const struct nsc_header *headers; /* in their original order */
	size_t nheaders;
	const void *payload;
	size_t payload_len;
	const char *content_type;
	const char *schema_version;
	uint32_t attempt; /* JetStream delivery count, from 1 */
	uint64_t stream_sequence;
	const char *message_id;
	const char *traceparent; /* W3C trace context */
	const char *tracestate;
	int64_t published_at_ns; /* ns since the epoch */
	const char *stream;
	/* Time the sidecar waits for an answer before retrying it;
	 * nsc_in_progress() extends it. */
	uint32_t processing_timeout_ms;
};

/* Values of PublishAck.Status in proto/channel.proto; a value not listed
 * here (from a newer sidecar) is a failure of the publish. */
enum nsc_publish_status {
	NSC_PUBLISH_OK = 1,
	NSC_PUBLISH_NO_STREAM = 2, /* no stream captures the subject */
	NSC_PUBLISH_TIMEOUT = 3, /* no answer in time; may have landed */
	NSC_PUBLISH_REJECTED = 4, /* the server refused it (see error) */
	NSC_PUBLISH_NOT_CONNECTED = 5, /* NATS unreachable; nothing sent */
	NSC_PUBLISH_INVALID = 6, /* the publish was malformed */
};

/* The outcome of one nsc_publish(). */
struct nsc_publish_ack {
	uint64_t id; /* as given to nsc_publish() */
	enum nsc_publish_status status;
	const char *stream;
	uint64_t sequence;
	bool duplicate; /* the stream had this message id already */
	const char *error;
};

/* Values of Error.Code in proto/channel.proto. */
enum nsc_error_code {
	NSC_ERROR_MALFORMED_FRAME = 1,
	NSC_ERROR_FRAME_TOO_LARGE = 2,
	NSC_ERROR_PROTOCOL = 3,
	NSC_ERROR_UNKNOWN_ID = 4, /* an answer for a delivery not held */
	NSC_ERROR_UNSUPPORTED_VERSION = 5,
	NSC_ERROR_INVALID_FIELD = 6,
};

/* Something the app sent that the sidecar could not accept. */
struct nsc_error {
	enum nsc_error_code code;
	const char *message;
	uint64_t ref_id; /* the delivery or publish concerned; 0: none */
	bool fatal; /* the sidecar closes the connection after it */
};

enum nsc_event_kind {
	NSC_EVENT_NONE,
	NSC_EVENT_DELIVERY,
	NSC_EVENT_PUBLISH_ACK,
	NSC_EVENT_ERROR,
	/* The sidecar is shutting down: no more deliveries come; answer
	 * those held within grace_ms, then close. */
	NSC_EVENT_DRAIN,
};

/*
 * An event from nsc_next(). Its strings, headers and payload belong to
 * the event and stay valid until nsc_event_clear() or the next
 * nsc_next() on the same event, whatever happens to the connection. Zero
 * it (or use NSC_EVENT_INIT) before first use.
 */
struct nsc_event {
	enum nsc_event_kind kind;
	union {
		struct nsc_delivery delivery;
		struct nsc_publish_ack publish_ack;
		struct nsc_error error;
		struct {
			uint32_t grace_ms;
		} drain;
	};
	/* Private: the memory behind the pointers above. */
	void *priv_frame;
	struct nsc_header *priv_headers;
};

#define NSC_EVENT_INIT                                                         \
	{                                                                      \
		.kind = NSC_EVENT_NONE                                         \
	}

/* What nsc_next() returns. */
enum nsc_next_status {
	NSC_NEXT_CLOSED = -1, /* the connection is over; see nsc_last_error() */
	NSC_NEXT_TIMEOUT = 0, /* no event within the timeout */
	NSC_NEXT_EVENT = 1, /* |ev| holds an event */
};

/*
 * Connects to the sidecar at |path|, says hello and waits for its welcome.
 * |opts| may be NULL for the defaults. Returns the connection, or NULL
 * with, if |err| is not NULL, a message in |*err| for the caller to
 * free(): the socket cannot be reached, the options are out of range,
 * the sidecar refused them, or it did not answer in time.
 */
struct nsc *nsc_connect(
    const char *path, const struct nsc_options *opts, char **err);
/*
 * Writes what is still queued (giving up when the sidecar reads nothing
 * for a second), then closes the connection and frees it. Deliveries left
 * unanswered are retried by the sidecar. NULL is a no-op.
 */
void nsc_close(struct nsc *);

/*
 * The socket, for a poll loop of the app's own: when it is readable, call
 * nsc_next() with a timeout of 0 until it returns NSC_NEXT_TIMEOUT (one
 * read may bring several events), and call nsc_flush() after answering.
 */
int nsc_fd(const struct nsc *);
/* The interval the sidecar asked for; 0: no heartbeats needed. */
uint32_t nsc_heartbeat_ms(const struct nsc *);
/* From the sidecar's welcome; valid until nsc_close(). */
const char *nsc_sidecar_version(const struct nsc *);
const char *nsc_instance_id(const struct nsc *);
/* Why the last call failed or the connection ended; "" if nothing did.
 * Valid until the next call on the connection. */
const char *nsc_last_error(const struct nsc *);

/*
 * Waits up to |timeout_ms| (-1: without limit, 0: not at all) for the
 * next event and stores it in |ev|, after clearing what |ev| held.
 * Meanwhile writes queued answers and sends heartbeats when due; it
 * answers no delivery by itself. Returns NSC_NEXT_EVENT; NSC_NEXT_TIMEOUT
 * when the time is up, or earlier when a signal interrupts the wait (so
 * that the app can look at its flags); or NSC_NEXT_CLOSED once the
 * sidecar closed the connection, sent something this library cannot
 * read, or stayed silent for three heartbeat intervals (events received
 * before that are returned first).
 */
int nsc_next(struct nsc *, int timeout_ms, struct nsc_event *ev);
/* Frees what |ev| holds and zeroes it; a cleared event is a no-op. */
void nsc_event_clear(struct nsc_event *ev);

/*
 * Answers delivery |id|. Each call queues one answer and returns 0, or
 * -1 if the connection is over or |reason| makes the frame too large.
 * nsc_ack: done. nsc_retry: failed for now; redeliver after |delay_ms|
 * (0: the sidecar's backoff schedule). nsc_reject: will never succeed;
 * dead-letter it. |reason| (NULL: none) goes with the dead letter.
 * nsc_in_progress: still working; extends the processing timeout and may
 * be sent any number of times before the final answer.
 */
int nsc_ack(struct nsc *, uint64_t id);
int nsc_retry(struct nsc *, uint64_t id, uint32_t delay_ms, const char *reason);
int nsc_reject(struct nsc *, uint64_t id, const char *reason);
int nsc_in_progress(struct nsc *, uint64_t id);

/*
 * Queues a publish of |len| bytes at |payload| to |subject| with
 * |nheaders| headers; |msg_id| (the stream's de-duplication id) and
 * |traceparent| may be NULL. |id| is the app's own and comes back in the
 * NSC_EVENT_PUBLISH_ACK event that reports the outcome. Returns 0, or -1
 * if the connection is over, |subject| is NULL, or the frame would exceed
 * the sidecar's limit (the connection stays usable). The sidecar checks
 * the subject and headers and answers a bad one with
 * NSC_PUBLISH_INVALID.
 */
int nsc_publish(struct nsc *, uint64_t id, const char *subject,
    const struct nsc_header *headers, size_t nheaders, const void *payload,
    size_t len, const char *msg_id, const char *traceparent);

/* Writes everything queued, blocking until it is written. Returns 0, or
 * -1 if the connection is over or the sidecar stopped reading. */
int nsc_flush(struct nsc *);

#endif
