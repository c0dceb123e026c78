/*
 * The one structure shared between threads: nats.c's threads push items,
 * the loop thread takes them all at once when ev_async wakes it. Items are
 * kept in a growing array swapped under the lock, so a push allocates
 * nothing once the arrays have grown to the traffic.
 */
#ifndef SIDECAR_HANDOFF_H
#define SIDECAR_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

struct handoff_item {
	int kind; /* chosen by the producer */
	uint64_t tag; /* e.g. which inbox a message arrived on */
	void *ptr; /* e.g. a natsMsg, owned by the item */
};

/* Called on the loop thread with every item pushed since the last call. */
typedef void (*handoff_fn)(void *arg, const struct handoff_item *, size_t n);

/* Returns a started queue delivering to |fn| on |loop|. */
struct handoff *handoff_new(struct ev_loop *, handoff_fn fn, void *arg);
/* Stops the watcher; items not yet taken are passed to |fn| first. */
void handoff_free(struct handoff *);
/* Any thread: queues an item and wakes the loop. */
void handoff_push(struct handoff *, int kind, uint64_t tag, void *ptr);

#endif
