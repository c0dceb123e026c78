/*
 * Sends what nats.c has buffered on a connection now, from a thread of
 * its own. nats.c 3.4.1's flusher thread waits a millisecond after the
 * first buffered write before it sends anything; a pull request must not
 * wait that long, since every message it asks for waits with it and the
 * pipeline runs dry meanwhile. nats.c's only way to send in place is a
 * PING (natsConnection_FlushTimeout), which blocks until the PONG: this
 * thread takes that wait off the loop. Kicks while a flush is under way
 * are folded into the next one.
 */
#ifndef SIDECAR_FLUSHER_H
#define SIDECAR_FLUSHER_H

#include <nats/nats.h>

struct flusher;

/* Starts the thread for |nc|, which must outlive it. Returns NULL (the
 * failure logged) if the thread cannot be created: writes then wait for
 * nats.c's own flush, which is slower but loses nothing. */
struct flusher *flusher_new(natsConnection *nc);
/* Stops and joins the thread; call once |nc| is closed, which ends a
 * flush waiting for its PONG. */
void flusher_free(struct flusher *);
/* Any thread: asks for a flush as soon as the thread is free. */
void flusher_kick(struct flusher *);
/* Flushes done so far (for tests and metrics). */
unsigned long flusher_count(struct flusher *);

#endif
