/*
 * The NATS side of the sidecar, and the only module that talks to nats.c
 * (besides the JetStream message accessors of delivery.c). It connects in
 * the background and reconnects forever with backoff and jitter. The
 * connection runs on the loop (nats.c's external event loop mode): the
 * loop reads the socket, and messages of the inboxes below are handed
 * over right after the read, on the loop thread, without crossing a
 * thread. nats.c's own threads (reconnects, pings, the delivery of
 * request replies) only push into a hand-off queue; every callback below
 * runs on the loop thread. Publishing never waits: bytes go into nats.c's
 * buffer, and the loop writes what a turn buffered before it sleeps.
 */
#ifndef SIDECAR_BUS_H
#define SIDECAR_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

struct config_nats;
struct ev_loop;

enum bus_state {
	BUS_CONNECTING, /* never connected yet */
	BUS_CONNECTED,
	BUS_DISCONNECTED, /* lost, reconnecting */
	BUS_CLOSED,
};

struct bus_events {
	/* The connection changed state (each change once). */
	void (*state)(void *arg, enum bus_state);
	void *arg;
};

struct bus_header {
	const char *name;
	const char *value;
};

/* A message on an inbox; the callee owns |msg|. */
typedef void (*bus_msg_fn)(void *arg, natsMsg *msg);
/* The reply to a request (the callee owns it), or NULL after the timeout
 * or when the bus is freed. */
typedef void (*bus_reply_fn)(void *arg, natsMsg *reply);

/*
 * Applies the servers, name, connect timeout, TLS and credentials of |c|
 * to |o|; for tools that connect without the loop (operator commands).
 * Returns 0, or -1 after logging why.
 */
int bus_connect_options(natsOptions *o, const struct config_nats *c);

/*
 * Starts connecting to the configured servers. Returns NULL (after
 * logging why) when the options cannot be applied, e.g. an unreadable TLS
 * or credentials file.
 */
struct bus *bus_new(
    struct ev_loop *, const struct config_nats *, const struct bus_events *);
/* Sends what is buffered and runs the loop until the server has read it
 * (at most 2 s), closes, and calls every pending request's callback with
 * NULL. Call it after the loop ended, once the other owners of watchers
 * on the loop have stopped them. */
void bus_free(struct bus *);
enum bus_state bus_state(const struct bus *);
const char *bus_state_name(enum bus_state);

/*
 * Subscribes to a fresh wildcard inbox "PREFIX.*"; every message on it
 * goes to |fn|, in the loop turn that read it. A "no responders" status
 * (503) comes with the subject PREFIX alone: which request went nowhere
 * is unknown. Stores the prefix (valid until the inbox is closed) in
 * |*prefix|. Returns the inbox id, or 0 on failure.
 */
uint64_t bus_inbox_open(
    struct bus *, bus_msg_fn fn, void *arg, const char **prefix);
/* Asks the server for nothing more on the inbox, while messages already
 * on their way still reach its callback. */
void bus_inbox_drain(struct bus *, uint64_t id);
/* Whether a drained (or closed) inbox has delivered its last message. */
bool bus_inbox_done(const struct bus *, uint64_t id);
/* Unsubscribes; messages still queued for it are dropped. */
void bus_inbox_close(struct bus *, uint64_t id);

/* Publishes |len| bytes with an optional reply subject; returns 0 or -1
 * (not connected and the reconnect buffer full, or an invalid subject). */
int bus_publish(struct bus *, const char *subject, const char *reply,
    const void *data, size_t len);

/*
 * Sends a request with |nhdrs| headers; |fn| gets the reply or NULL after
 * |timeout_ns|. Returns the request id, or 0 if it could not be sent (then
 * |fn| is not called).
 */
uint64_t bus_request(struct bus *, const char *subject,
    const struct bus_header *hdrs, size_t nhdrs, const void *data, size_t len,
    int64_t timeout_ns, bus_reply_fn fn, void *arg);
/* Forgets a request: its callback will not be called. Returns the arg
 * it was given (for the caller to free), or NULL if it was not pending. */
void *bus_request_cancel(struct bus *, uint64_t id);

/* The largest message the server takes (headers and payload), in bytes;
 * 1 MiB until connected. */
int64_t bus_max_payload(const struct bus *);

/* Frees |msg|, a message the bus handed over or one made with nats.c, at
 * once (natsMsg_Destroy() would pass it to nats.c's collector thread: a
 * lock and a thread wake-up per message). NULL is a no-op. */
void bus_msg_free(natsMsg *msg);
/* |msg|'s size as the server counts it against a pull's max_bytes:
 * subject, reply, headers and payload. */
size_t bus_msg_size(natsMsg *msg);
/* The first value of header |name| of |msg|, or NULL. */
const char *bus_msg_header(natsMsg *msg, const char *name);
/* A JetStream status message's code (100, 404, 408, 409, 503, ...), or 0
 * for an ordinary message. */
int bus_msg_status(natsMsg *msg);

#endif
