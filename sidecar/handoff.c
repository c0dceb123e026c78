#include <pthread.h>
#include <stdlib.h>

#include <ev.h>

#include "handoff.h"
#include "xmalloc.h"

struct items {
	struct handoff_item *v;
	size_t n, cap;
};

struct handoff {
	struct ev_loop *loop;
	ev_async async;
	handoff_fn fn;
	void *arg;
	pthread_mutex_t lock;
	struct items in; /* filled by producers, under lock */
	struct items out; /* drained by the loop */
};

/* Swaps the arrays under the lock and hands the items over without it. */
static void
handoff_drain(struct handoff *h)
{
	struct items tmp;

	pthread_mutex_lock(&h->lock);
	tmp = h->in;
	h->in = h->out;
	h->out = tmp;
	pthread_mutex_unlock(&h->lock);
	if (h->out.n > 0)
		h->fn(h->arg, h->out.v, h->out.n);
	h->out.n = 0;
}

static void
handoff_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	handoff_drain(w->data);
}

struct handoff *
handoff_new(struct ev_loop *loop, handoff_fn fn, void *arg)
{
	struct handoff *h = xcalloc(1, sizeof *h);

	h->loop = loop;
	h->fn = fn;
	h->arg = arg;
	pthread_mutex_init(&h->lock, NULL);
	ev_async_init(&h->async, handoff_cb);
	h->async.data = h;
	ev_async_start(loop, &h->async);
	return h;
}

void
handoff_free(struct handoff *h)
{
	if (h == NULL)
		return;
	ev_async_stop(h->loop, &h->async);
	handoff_drain(h);
	pthread_mutex_destroy(&h->lock);
	free(h->in.v);
	free(h->out.v);
	free(h);
}

void
handoff_push(struct handoff *h, int kind, uint64_t tag, void *ptr)
{
	struct items *in = &h->in;

	pthread_mutex_lock(&h->lock);
	if (in->n == in->cap) {
		in->cap = in->cap == 0 ? 256 : in->cap * 2;
		in->v = xreallocarray(in->v, in->cap, sizeof *in->v);
	}
	in->v[in->n++] = (struct handoff_item){ kind, tag, ptr };
	pthread_mutex_unlock(&h->lock);
	ev_async_send(h->loop, &h->async);
}
