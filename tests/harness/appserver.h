/*
 * The daemon's app channel (sidecar/appchan.h) served for one test: a
 * libev loop on a thread of its own, a real Unix socket in a temporary
 * directory, and a record of what apps said. The test's own thread is
 * then free to be the app, blocking in the client library or waiting for
 * a child process. Everything touching the channel runs on the loop
 * thread; the calls below hand it over and wait until it is done.
 */
#ifndef TESTS_HARNESS_APPSERVER_H
#define TESTS_HARNESS_APPSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.pb-c.h"

struct app;
struct appserver;

/* What appserver_count() counts. */
enum appserver_what {
	APPSERVER_READY, /* apps that finished their handshake */
	APPSERVER_GONE, /* ready apps that went away */
	APPSERVER_RESULTS, /* Result frames received */
	APPSERVER_PUBLISHES, /* Publish frames received */
};

/*
 * Listens with the given heartbeat interval and dead-app limit. Returns
 * NULL (with a message on stderr) if the channel cannot be set up.
 */
struct appserver *appserver_start(
    uint32_t heartbeat_ms, uint32_t dead_after_ms);
/* Closes every connection, stops the thread and removes the directory. */
void appserver_free(struct appserver *);

const char *appserver_socket(const struct appserver *);

size_t appserver_count(struct appserver *, enum appserver_what);
/* Waits until the count reaches |n|; returns 0, or -1 (saying so on
 * stderr) after |timeout_ms|. */
int appserver_wait(
    struct appserver *, enum appserver_what, size_t n, int timeout_ms);

/* The |i|th app to become ready; its name, capacity and subscriptions
 * may be read until it is gone. */
struct app *appserver_app(struct appserver *, size_t i);
/* Copies of the |i|th Result and Publish received, valid until
 * appserver_free(). */
const NatsSidecar__Channel__V1__Result *appserver_result(
    struct appserver *, size_t i);
const NatsSidecar__Channel__V1__Publish *appserver_publish(
    struct appserver *, size_t i);

/* The channel's calls, made on the loop thread for the |i|th ready app;
 * each returns what the channel's call returns, or 0. */
int appserver_deliver(
    struct appserver *, size_t i, const NatsSidecar__Channel__V1__Delivery *);
void appserver_publish_ack(
    struct appserver *, size_t i, const NatsSidecar__Channel__V1__PublishAck *);
void appserver_error(struct appserver *, size_t i,
    NatsSidecar__Channel__V1__Error__Code, const char *message, uint64_t ref_id,
    bool fatal);
void appserver_drain(struct appserver *, uint32_t grace_ms);
/* Frees the channel, closing every connection at once. */
void appserver_close(struct appserver *);
/* Makes the loop thread sleep |ms|, serving nothing, as a hung sidecar
 * would; returns at once. */
void appserver_stall(struct appserver *, int ms);

#endif
