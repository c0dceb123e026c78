/*
 * The app channel: the apps connected to the sidecar, whatever transport
 * each one uses. The core sees apps, their capacity and the deliveries,
 * results and publishes exchanged with them; framing, handshakes,
 * heartbeats and sockets stay behind this interface (docs/protocol.md
 * describes what goes over the wire).
 *
 * Everything runs on the loop thread. Calls that send only queue output;
 * appchan_flush() writes it, once per loop turn. Events are never raised
 * from inside the appchan_send_*() calls, so the core may send from any of
 * its own code paths without being re-entered.
 */
#ifndef SIDECAR_APPCHAN_H
#define SIDECAR_APPCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.pb-c.h"

struct config_app;
struct ev_loop;

/* Connections served at once; the next one is told so and closed. */
#define APPCHAN_MAX_CONNS 256

struct app;
struct appchan;

struct appchan_events {
	/* The app finished its handshake: deliveries may go to it now. */
	void (*app_ready)(void *arg, struct app *);
	/* A Result with a valid outcome; the id is not checked (the core
	 * answers unknown ids with appchan_send_error()). */
	void (*result)(
	    void *arg, struct app *, const NatsSidecar__Channel__V1__Result *);
	/* A Publish with a valid subject and headers; the core answers it
	 * with appchan_send_publish_ack(). */
	void (*publish)(
	    void *arg, struct app *, const NatsSidecar__Channel__V1__Publish *);
	/* A ready app went away (closed, dead, too slow or told to go).
	 * Raised once; the app pointer is invalid when it returns. */
	void (*app_gone)(void *arg, struct app *);
	void *arg;
};

/*
 * Listens on |cfg|->socket with mode |cfg|->socket_mode. A stale socket
 * file (nobody accepting on it) is replaced. Returns NULL after logging if
 * the path is in use by another process, is not a socket, its directory
 * is missing, or the socket cannot be set up. |events| is copied; |cfg|
 * and |instance_id| must outlive the channel.
 */
struct appchan *appchan_new(struct ev_loop *, const struct config_app *cfg,
    const char *instance_id, const struct appchan_events *events);
/* Closes every app without raising app_gone, then closes and unlinks the
 * socket. */
void appchan_free(struct appchan *);

/*
 * Queues |d| for |app|. Returns 0, or -1 if its frame would exceed the
 * size the app accepts (nothing is queued; the core dead-letters it). To
 * an app that is closing, frames are dropped and 0 returned: app_gone
 * follows.
 */
int appchan_send_delivery(
    struct app *, const NatsSidecar__Channel__V1__Delivery *d);
void appchan_send_publish_ack(
    struct app *, const NatsSidecar__Channel__V1__PublishAck *);
/* Queues an Error frame about |ref_id| (0: none). A fatal one closes the
 * connection once the frame is written, then app_gone is raised. */
void appchan_send_error(struct app *, NatsSidecar__Channel__V1__Error__Code,
    const char *message, uint64_t ref_id, bool fatal);

/* Tells every app to drain within |grace_ms| and stops accepting new
 * connections. */
void appchan_drain(struct appchan *, uint32_t grace_ms);
/*
 * Writes what was queued during this loop turn, one write per connection,
 * and closes connections whose unsent output has grown past what they can
 * owe (they stopped reading). Call it once per turn (ev_prepare); it may
 * raise app_gone.
 */
void appchan_flush(struct appchan *);

/* Ready apps. */
size_t appchan_ready_count(const struct appchan *);

/* Deliveries the app works on at once, from its handshake (>= 1). */
uint32_t app_capacity(const struct app *);
/* The name the app gave; "" if none. */
const char *app_name(const struct app *);
/* Unique for the life of the channel, from 1. */
uint64_t app_id(const struct app *);
/* Whether the app serves |subscription| (it named none: all). */
bool app_serves(const struct app *, const char *subscription);
/* A pointer of the core's own, NULL until set. */
void app_set_data(struct app *, void *);
void *app_data(const struct app *);

#endif
