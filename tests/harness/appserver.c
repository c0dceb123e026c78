#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "harness/appserver.h"
#include "harness/proc.h"
#include "sidecar/appchan.h"
#include "sidecar/config.h"
#include "sidecar/xmalloc.h"

#define APPSERVER_MAX 256 /* apps, results and publishes recorded */
#define MS 1000000LL /* config durations are in ns */

struct appserver {
	char dir[256];
	char path[300];
	struct config_app cfg;
	struct ev_loop *loop;
	struct appchan *chan; /* the loop thread's */
	struct appchan_events events;
	ev_prepare flush;
	ev_async wake;
	pthread_t thread;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t done;
	void (*call)(struct appserver *, void *);
	void *arg;
	int stall_ms;
	struct app *ready[APPSERVER_MAX];
	size_t nready, ngone;
	NatsSidecar__Channel__V1__Result *results[APPSERVER_MAX];
	size_t nresults;
	NatsSidecar__Channel__V1__Publish *publishes[APPSERVER_MAX];
	size_t npublishes;
};

/* A test that goes past what the harness records is broken. */
static void __attribute__((noreturn)) overflow(const char *what)
{
	fprintf(stderr, "# appserver: more than %d %s\n", APPSERVER_MAX, what);
	abort();
}

/* A deep copy of |m| that outlives the frame it came in. */
static void *
copy_message(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = xmalloc(n);
	void *copy;

	protobuf_c_message_pack(m, b);
	copy = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
	free(b);
	if (copy == NULL)
		abort();
	return copy;
}

/* Appends |p| to |v| under the lock. */
static void
record(struct appserver *s, void **v, size_t *n, void *p, const char *what)
{
	pthread_mutex_lock(&s->lock);
	if (*n == APPSERVER_MAX)
		overflow(what);
	v[(*n)++] = p;
	pthread_mutex_unlock(&s->lock);
}

static void
on_ready(void *arg, struct app *app)
{
	struct appserver *s = arg;

	record(s, (void **)s->ready, &s->nready, app, "apps");
}

static void
on_result(void *arg, struct app *app, const NatsSidecar__Channel__V1__Result *r)
{
	struct appserver *s = arg;

	record(s, (void **)s->results, &s->nresults, copy_message(&r->base),
	    "results");
}

static void
on_publish(
    void *arg, struct app *app, const NatsSidecar__Channel__V1__Publish *p)
{
	struct appserver *s = arg;

	record(s, (void **)s->publishes, &s->npublishes, copy_message(&p->base),
	    "publishes");
}

static void
on_gone(void *arg, struct app *app)
{
	struct appserver *s = arg;

	pthread_mutex_lock(&s->lock);
	s->ngone++;
	pthread_mutex_unlock(&s->lock);
}

/* The daemon's once-per-turn flush. */
static void
flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct appserver *s = w->data;

	if (s->chan != NULL)
		appchan_flush(s->chan);
}

/* Runs what another thread handed over. */
static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct appserver *s = w->data;
	void (*call)(struct appserver *, void *);
	struct timespec ts;
	void *arg;
	int stall;

	pthread_mutex_lock(&s->lock);
	call = s->call;
	arg = s->arg;
	stall = s->stall_ms;
	s->stall_ms = 0;
	pthread_mutex_unlock(&s->lock);
	if (stall > 0) {
		ts.tv_sec = stall / 1000;
		ts.tv_nsec = (long)(stall % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
	if (call == NULL)
		return;
	/* Unlocked: the channel's events take the lock themselves. */
	call(s, arg);
	pthread_mutex_lock(&s->lock);
	s->call = NULL;
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
}

static void *
loop_main(void *arg)
{
	struct appserver *s = arg;

	ev_run(s->loop, 0);
	return NULL;
}

/* Runs |call|(|s|, |arg|) on the loop thread and waits for it. */
static void
appserver_call(
    struct appserver *s, void (*call)(struct appserver *, void *), void *arg)
{
	pthread_mutex_lock(&s->lock);
	while (s->call != NULL)
		pthread_cond_wait(&s->done, &s->lock);
	s->call = call;
	s->arg = arg;
	pthread_mutex_unlock(&s->lock);
	ev_async_send(s->loop, &s->wake);
	pthread_mutex_lock(&s->lock);
	while (s->call != NULL)
		pthread_cond_wait(&s->done, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

static void
do_listen(struct appserver *s, void *arg)
{
	s->chan = appchan_new(s->loop, &s->cfg, "test-instance", &s->events);
}

struct appserver *
appserver_start(uint32_t heartbeat_ms, uint32_t dead_after_ms)
{
	struct appserver *s = xcalloc(1, sizeof *s);
	int err;

	if (proc_tmpdir(s->dir, sizeof s->dir, "appserver") == -1) {
		free(s);
		return NULL;
	}
	snprintf(s->path, sizeof s->path, "%s/app.sock", s->dir);
	s->cfg.socket = s->path;
	s->cfg.socket_mode = 0660;
	s->cfg.max_frame_size = 1024 * 1024;
	s->cfg.heartbeat_interval = heartbeat_ms * MS;
	s->cfg.dead_after = dead_after_ms * MS;
	s->events.app_ready = on_ready;
	s->events.result = on_result;
	s->events.publish = on_publish;
	s->events.app_gone = on_gone;
	s->events.arg = s;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->done, NULL);
	s->loop = ev_loop_new(EVFLAG_AUTO);
	ev_prepare_init(&s->flush, flush_cb);
	s->flush.data = s;
	ev_prepare_start(s->loop, &s->flush);
	ev_async_init(&s->wake, wake_cb);
	s->wake.data = s;
	ev_async_start(s->loop, &s->wake);
	if ((err = pthread_create(&s->thread, NULL, loop_main, s)) != 0) {
		fprintf(
		    stderr, "# appserver: pthread_create: %s\n", strerror(err));
		ev_loop_destroy(s->loop);
		proc_rmtree(s->dir);
		free(s);
		return NULL;
	}
	appserver_call(s, do_listen, NULL);
	if (s->chan == NULL) {
		fprintf(stderr, "# appserver: cannot listen on %s\n", s->path);
		appserver_free(s);
		return NULL;
	}
	return s;
}

static void
do_stop(struct appserver *s, void *arg)
{
	appchan_free(s->chan);
	s->chan = NULL;
	ev_break(s->loop, EVBREAK_ALL);
}

void
appserver_free(struct appserver *s)
{
	if (s == NULL)
		return;
	appserver_call(s, do_stop, NULL);
	pthread_join(s->thread, NULL);
	ev_loop_destroy(s->loop);
	for (size_t i = 0; i < s->nresults; i++)
		protobuf_c_message_free_unpacked(&s->results[i]->base, NULL);
	for (size_t i = 0; i < s->npublishes; i++)
		protobuf_c_message_free_unpacked(&s->publishes[i]->base, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->done);
	proc_rmtree(s->dir);
	free(s);
}

const char *
appserver_socket(const struct appserver *s)
{
	return s->path;
}

/* The counter behind |what|; called with the lock held. */
static size_t
count_locked(const struct appserver *s, enum appserver_what what)
{
	switch (what) {
	case APPSERVER_READY:
		return s->nready;
	case APPSERVER_GONE:
		return s->ngone;
	case APPSERVER_RESULTS:
		return s->nresults;
	case APPSERVER_PUBLISHES:
		return s->npublishes;
	}
	return 0;
}

size_t
appserver_count(struct appserver *s, enum appserver_what what)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = count_locked(s, what);
	pthread_mutex_unlock(&s->lock);
	return n;
}

int
appserver_wait(
    struct appserver *s, enum appserver_what what, size_t n, int timeout_ms)
{
	static const char *const names[] = { "ready apps", "gone apps",
		"results", "publishes" };
	struct timespec ts = { 0, 5000000 };
	size_t have;

	for (int waited = 0;; waited += 5) {
		if ((have = appserver_count(s, what)) >= n)
			return 0;
		if (waited >= timeout_ms)
			break;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "# appserver: %zu %s after %d ms, wanted %zu\n", have,
	    names[what], timeout_ms, n);
	return -1;
}

/* A test asking for a record that is not there is broken. */
static void __attribute__((noreturn)) missing(const char *what, size_t i)
{
	fprintf(
	    stderr, "# appserver: no %s %zu (wait for it first)\n", what, i);
	abort();
}

struct app *
appserver_app(struct appserver *s, size_t i)
{
	struct app *app;

	pthread_mutex_lock(&s->lock);
	app = i < s->nready ? s->ready[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	if (app == NULL)
		missing("app", i);
	return app;
}

const NatsSidecar__Channel__V1__Result *
appserver_result(struct appserver *s, size_t i)
{
	const NatsSidecar__Channel__V1__Result *r;

	pthread_mutex_lock(&s->lock);
	r = i < s->nresults ? s->results[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	if (r == NULL)
		missing("result", i);
	return r;
}

const NatsSidecar__Channel__V1__Publish *
appserver_publish(struct appserver *s, size_t i)
{
	const NatsSidecar__Channel__V1__Publish *p;

	pthread_mutex_lock(&s->lock);
	p = i < s->npublishes ? s->publishes[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	if (p == NULL)
		missing("publish", i);
	return p;
}

/* Arguments of the calls below, carried to the loop thread. */
struct send {
	size_t i;
	const void *msg;
	NatsSidecar__Channel__V1__Error__Code code;
	const char *message;
	uint64_t ref_id;
	bool fatal;
	uint32_t grace_ms;
	int rc;
};

static void
do_deliver(struct appserver *s, void *arg)
{
	struct send *a = arg;

	a->rc = appchan_send_delivery(s->ready[a->i], a->msg);
}

int
appserver_deliver(
    struct appserver *s, size_t i, const NatsSidecar__Channel__V1__Delivery *d)
{
	struct send a = { .i = i, .msg = d };

	(void)appserver_app(s, i);
	appserver_call(s, do_deliver, &a);
	return a.rc;
}

static void
do_publish_ack(struct appserver *s, void *arg)
{
	struct send *a = arg;

	appchan_send_publish_ack(s->ready[a->i], a->msg);
}

void
appserver_publish_ack(struct appserver *s, size_t i,
    const NatsSidecar__Channel__V1__PublishAck *ack)
{
	struct send a = { .i = i, .msg = ack };

	(void)appserver_app(s, i);
	appserver_call(s, do_publish_ack, &a);
}

static void
do_error(struct appserver *s, void *arg)
{
	struct send *a = arg;

	appchan_send_error(
	    s->ready[a->i], a->code, a->message, a->ref_id, a->fatal);
}

void
appserver_error(struct appserver *s, size_t i,
    NatsSidecar__Channel__V1__Error__Code code, const char *message,
    uint64_t ref_id, bool fatal)
{
	struct send a = { .i = i,
		.code = code,
		.message = message,
		.ref_id = ref_id,
		.fatal = fatal };

	(void)appserver_app(s, i);
	appserver_call(s, do_error, &a);
}

static void
do_drain(struct appserver *s, void *arg)
{
	struct send *a = arg;

	appchan_drain(s->chan, a->grace_ms);
}

void
appserver_drain(struct appserver *s, uint32_t grace_ms)
{
	struct send a = { .grace_ms = grace_ms };

	appserver_call(s, do_drain, &a);
}

static void
do_close(struct appserver *s, void *arg)
{
	appchan_free(s->chan);
	s->chan = NULL;
}

void
appserver_close(struct appserver *s)
{
	appserver_call(s, do_close, NULL);
}

void
appserver_stall(struct appserver *s, int ms)
{
	pthread_mutex_lock(&s->lock);
	s->stall_ms = ms;
	pthread_mutex_unlock(&s->lock);
	ev_async_send(s->loop, &s->wake);
}
