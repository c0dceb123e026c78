#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "bus.h"
#include "config.h"
#include "handoff.h"
#include "idmap.h"
#include "log.h"
#include "nkey.h"
#include "xmalloc.h"

#define NS_PER_MS INT64_C(1000000)
#define SYNC_AT_CLOSE_NS (2000 * NS_PER_MS)
/* One read of the socket takes up to this much. */
#define IO_BUF_SIZE (1024 * 1024)
/* How long bus_free() waits for nats.c's threads to leave our callbacks. */
#define THREADS_DONE_MS 5000
/* While not connected, why is reported this often (each reason once). */
#define UNREACHABLE_CHECK_S 2.0

enum { HANDOFF_MSG, HANDOFF_STATE };

/* What nats.c's delivery thread gets as the request inbox's closure:
 * kept until bus_free(), because a callback may still run after its
 * subscription was closed. */
struct inbox_ref {
	struct bus *bus;
	uint64_t id;
	struct inbox_ref *next;
};

struct inbox {
	natsSubscription *sub;
	/* NULL for an inbox read on the loop (a synchronous subscription
	 * drained after each read); else nats.c's delivery thread hands
	 * its messages over. */
	struct inbox_ref *ref;
	bus_msg_fn fn;
	void *arg;
	char *prefix;
	bool drained; /* unsubscribed at once when a drain could not start */
};

struct request {
	struct bus *bus;
	uint64_t id;
	bus_reply_fn fn;
	void *arg;
	ev_timer timer;
};

/*
 * What nats.c asked of its socket through the event loop hooks. They run
 * on whichever thread nats.c is on, with the connection locked, so they
 * only record it here; the loop applies it before it sleeps.
 */
struct socket_wish {
	int fd;
	unsigned attached; /* bumped by each attach: the fd may be new */
	bool reading; /* attached and polled */
	bool writing; /* nats.c has bytes to send */
};

struct bus {
	struct ev_loop *loop;
	pthread_t loop_thread;
	struct bus_events events;
	struct handoff *handoff;
	natsOptions *opts;
	natsConnection *nc;
	pthread_mutex_t wish_lock;
	struct socket_wish wish;
	ev_io reader, writer;
	unsigned polled; /* the attach generation the watchers follow */
	ev_prepare before_sleep;
	ev_async wake;
	enum bus_state state;
	bool closing; /* bus_free() runs: a disconnect is expected */
	ev_timer connect_again; /* after nats.c closed the connection */
	ev_timer unreachable;
	char *unreachable_why; /* the last reason logged */
	char base[48]; /* "_SC.<nuid>": every inbox of this process */

	struct idmap *inboxes;
	struct inbox_ref *refs;
	uint64_t next_inbox;
	uint64_t *loop_inboxes; /* the ids of the inboxes read on the loop */
	size_t nloop_inboxes;

	struct idmap *requests;
	uint64_t next_request;
	uint64_t request_inbox;
	const char *request_prefix;

	/* Set by nats.c's threads once they will call us no more: the
	 * hand-off queue must outlive every callback. */
	atomic_int subs_done;
	atomic_bool closed_cb_done;
	int subs_opened;

	int64_t reconnect_wait_ms;
	int64_t reconnect_wait_max_ms;
	int64_t reconnect_jitter_ms;
};

static const char *const state_names[] = {
	[BUS_CONNECTING] = "connecting",
	[BUS_CONNECTED] = "connected",
	[BUS_DISCONNECTED] = "disconnected",
	[BUS_CLOSED] = "closed",
};

const char *
bus_state_name(enum bus_state s)
{
	return state_names[s];
}

static void on_connect_again(struct ev_loop *, ev_timer *, int);
static uint64_t open_inbox(
    struct bus *, bus_msg_fn, void *, const char **, bool by_nats);
static void sync_with_server(struct bus *, int64_t timeout_ns);

/* nats.c threads: everything goes through the hand-off queue. */
static void
on_nats_msg(
    natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct inbox_ref *ref = closure;

	handoff_push(ref->bus->handoff, HANDOFF_MSG, ref->id, msg);
}

static void
on_connected(natsConnection *nc, void *closure)
{
	struct bus *b = closure;

	handoff_push(b->handoff, HANDOFF_STATE, BUS_CONNECTED, NULL);
}

static void
on_disconnected(natsConnection *nc, void *closure)
{
	struct bus *b = closure;

	handoff_push(b->handoff, HANDOFF_STATE, BUS_DISCONNECTED, NULL);
}

static void
on_closed(natsConnection *nc, void *closure)
{
	struct bus *b = closure;

	handoff_push(b->handoff, HANDOFF_STATE, BUS_CLOSED, NULL);
	atomic_store(&b->closed_cb_done, true);
}

static void
on_sub_complete(void *closure)
{
	struct inbox_ref *ref = closure;

	atomic_fetch_add(&ref->bus->subs_done, 1);
}

/* After natsConnection_Close(): waits (bounded) until no nats.c thread
 * can enter one of our callbacks any more. Returns 0, or -1 if some still
 * may. */
static int
wait_threads_done(struct bus *b)
{
	struct timespec ms = { 0, 1000000 };

	for (int i = 0; i < THREADS_DONE_MS; i++) {
		if (atomic_load(&b->closed_cb_done) &&
		    atomic_load(&b->subs_done) >= b->subs_opened)
			return 0;
		nanosleep(&ms, NULL);
	}
	log_warnx("nats.close_slow",
	    "nats.c threads still busy after %d ms; not freeing what they use",
	    THREADS_DONE_MS);
	return -1;
}

/*
 * nats.c's event loop hooks. The loop reads and writes the socket, so
 * that a message reaches the sidecar without crossing a thread and what
 * a loop turn buffered goes out in one write before the loop sleeps.
 */
static void
wish_changed(struct bus *b)
{
	if (!pthread_equal(pthread_self(), b->loop_thread))
		ev_async_send(b->loop, &b->wake);
}

static natsStatus
el_attach(void **user, void *loop, natsConnection *nc, natsSock fd)
{
	struct bus *b = loop;

	*user = b;
	pthread_mutex_lock(&b->wish_lock);
	b->wish.fd = (int)fd;
	b->wish.attached++;
	b->wish.reading = true;
	pthread_mutex_unlock(&b->wish_lock);
	wish_changed(b);
	return NATS_OK;
}

static natsStatus
el_read(void *user, bool add)
{
	struct bus *b = user;

	pthread_mutex_lock(&b->wish_lock);
	b->wish.reading = add;
	pthread_mutex_unlock(&b->wish_lock);
	wish_changed(b);
	return NATS_OK;
}

static natsStatus
el_write(void *user, bool add)
{
	struct bus *b = user;

	pthread_mutex_lock(&b->wish_lock);
	b->wish.writing = add;
	pthread_mutex_unlock(&b->wish_lock);
	if (add)
		wish_changed(b);
	return NATS_OK;
}

static natsStatus
el_detach(void *user)
{
	struct bus *b = user;

	pthread_mutex_lock(&b->wish_lock);
	b->wish.reading = b->wish.writing = false;
	pthread_mutex_unlock(&b->wish_lock);
	wish_changed(b);
	return NATS_OK;
}

static bool
wants_to_write(struct bus *b)
{
	bool w;

	pthread_mutex_lock(&b->wish_lock);
	w = b->wish.writing && b->wish.reading;
	pthread_mutex_unlock(&b->wish_lock);
	return w;
}

/*
 * NextMsg() swallows a no-responders status: make it again, so that the
 * inbox's reader learns that a request went nowhere. Which one is
 * unknown: its subject is the inbox prefix alone.
 */
static natsMsg *
no_responders(const struct inbox *in)
{
	natsMsg *m = NULL;

	if (natsMsg_Create(&m, in->prefix, NULL, NULL, 0) != NATS_OK ||
	    natsMsgHeader_Set(m, "Status", "503") != NATS_OK) {
		bus_msg_free(m);
		return NULL;
	}
	return m;
}

/* Hands inbox |id| what the last read queued for it. Its callback may
 * close it, or open and close others. */
static void
deliver_queued(struct bus *b, uint64_t id)
{
	struct inbox *in = idmap_get(b->inboxes, id);
	uint64_t n = 0;

	if (in == NULL || in->sub == NULL ||
	    natsSubscription_QueuedMsgs(in->sub, &n) != NATS_OK)
		return;
	for (; n > 0 && (in = idmap_get(b->inboxes, id)) != NULL; n--) {
		natsMsg *msg = NULL;
		natsStatus s = natsSubscription_NextMsg(&msg, in->sub, 0);

		if (s == NATS_NO_RESPONDERS)
			msg = no_responders(in);
		else if (s != NATS_OK)
			return;
		if (msg != NULL)
			in->fn(in->arg, msg);
	}
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bus *b = w->data;
	uint64_t ids[8], *v = ids;
	size_t n = b->nloop_inboxes;

	natsConnection_ProcessReadEvent(b->nc);
	if (n == 0)
		return;
	/* Callbacks may open and close inboxes: go by a copy of the ids. */
	if (n > sizeof ids / sizeof ids[0])
		v = xreallocarray(NULL, n, sizeof *v);
	memcpy(v, b->loop_inboxes, n * sizeof *v);
	for (size_t i = 0; i < n; i++)
		deliver_queued(b, v[i]);
	if (v != ids)
		free(v);
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bus *b = w->data;

	natsConnection_ProcessWriteEvent(b->nc);
	if (!wants_to_write(b))
		ev_io_stop(loop, w);
}

/* Last before the loop sleeps: the watchers follow what nats.c asked
 * for, and what this turn buffered is written, in one go if the socket
 * takes it (else the rest once it is writable). */
static void
on_before_sleep(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct bus *b = w->data;
	struct socket_wish now;

	pthread_mutex_lock(&b->wish_lock);
	now = b->wish;
	pthread_mutex_unlock(&b->wish_lock);
	if (!now.reading || now.attached != b->polled) {
		ev_io_stop(loop, &b->reader);
		ev_io_stop(loop, &b->writer);
	}
	if (!now.reading)
		return;
	if (!ev_is_active(&b->reader)) {
		ev_io_set(&b->reader, now.fd, EV_READ);
		ev_io_set(&b->writer, now.fd, EV_WRITE);
		ev_io_start(loop, &b->reader);
		b->polled = now.attached;
	}
	if (now.writing && !ev_is_active(&b->writer)) {
		natsConnection_ProcessWriteEvent(b->nc);
		if (wants_to_write(b))
			ev_io_start(loop, &b->writer);
	}
}

/* A nats.c thread changed the wish; on_before_sleep() follows it. */
static void
on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
}

static void
on_async_error(
    natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	log_warnx("nats.async_error", "%s", natsStatus_GetText(err));
}

/* Doubles from reconnect_wait up to reconnect_wait_max, plus jitter. */
static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	struct bus *b = closure;
	int64_t d = b->reconnect_wait_ms;

	for (int i = 1; i < attempts && d < b->reconnect_wait_max_ms; i++)
		d *= 2;
	if (d > b->reconnect_wait_max_ms)
		d = b->reconnect_wait_max_ms;
	if (b->reconnect_jitter_ms > 0)
		d += random() % (b->reconnect_jitter_ms + 1);
	return d;
}

/* Logs why NATS is unreachable, once per distinct reason. */
static void
report_unreachable(struct bus *b, const char *why)
{
	if (why == NULL || *why == '\0')
		why = "no server answered";
	if (b->unreachable_why != NULL && strcmp(b->unreachable_why, why) == 0)
		return;
	log_warnx("nats.unreachable", "not connected, still trying: %s", why);
	free(b->unreachable_why);
	b->unreachable_why = xstrdup(why);
}

/* nats.c retries on its own and says nothing: look now and then. */
static void
on_unreachable(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bus *b = w->data;
	const char *why = NULL;

	if (b->state == BUS_CONNECTED || b->nc == NULL ||
	    ev_is_active(&b->connect_again))
		return;
	natsConnection_GetLastError(b->nc, &why);
	report_unreachable(b, why);
}

static void
set_state(struct bus *b, enum bus_state s)
{
	enum bus_state was = b->state;

	/* Once closing, the owner is going away: nothing is reported. */
	if (s == was || b->closing)
		return;
	/* A reconnect is reported as connected, after the first connect. */
	b->state = s;
	if (s == BUS_CONNECTED) {
		char url[256] = "";

		free(b->unreachable_why);
		b->unreachable_why = NULL;
		natsConnection_GetConnectedUrl(b->nc, url, sizeof url);
		log_info(was == BUS_CONNECTING ? "nats.connected"
					       : "nats.reconnected",
		    "connected to %s", url);
	} else if (s == BUS_DISCONNECTED)
		log_warnx("nats.disconnected",
		    "connection lost, reconnecting with backoff");
	else if (s == BUS_CLOSED && !b->closing) {
		/* nats.c gives up for good on some errors (an authorization
		 * violation among them), which an operator may fix: begin
		 * anew after the longest reconnect delay. */
		report_unreachable(b,
		    "the server refused the connection "
		    "(credentials?)");
		ev_timer_set(&b->connect_again,
		    (double)b->reconnect_wait_max_ms / 1e3, 0);
		ev_timer_start(b->loop, &b->connect_again);
	}
	if (b->events.state != NULL)
		b->events.state(b->events.arg, s);
}

static void
on_handoff(void *arg, const struct handoff_item *items, size_t n)
{
	struct bus *b = arg;

	for (size_t i = 0; i < n; i++) {
		const struct handoff_item *it = &items[i];
		struct inbox *in;

		if (it->kind == HANDOFF_STATE) {
			set_state(b, (enum bus_state)it->tag);
			continue;
		}
		if ((in = idmap_get(b->inboxes, it->tag)) == NULL) {
			bus_msg_free(it->ptr);
			continue;
		}
		in->fn(in->arg, it->ptr);
	}
}

static void
request_finish(struct request *r, natsMsg *reply)
{
	struct bus *b = r->bus;

	ev_timer_stop(b->loop, &r->timer);
	idmap_del(b->requests, r->id);
	r->fn(r->arg, reply);
	free(r);
}

static void
on_request_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	request_finish(w->data, NULL);
}

/* Replies arrive on "<request prefix>.<id>". */
static void
on_reply(void *arg, natsMsg *msg)
{
	struct bus *b = arg;
	const char *subj = natsMsg_GetSubject(msg);
	size_t plen = strlen(b->request_prefix);
	struct request *r = NULL;

	if (strncmp(subj, b->request_prefix, plen) == 0 && subj[plen] == '.')
		r = idmap_get(b->requests, strtoull(subj + plen + 1, NULL, 10));
	if (r == NULL) {
		bus_msg_free(msg);
		return;
	}
	request_finish(r, msg);
}

int
bus_connect_options(natsOptions *o, const struct config_nats *c)
{
	const struct config_tls *tls = &c->tls;
	const struct config_auth *auth = &c->auth;
	bool secure = tls->ca_file != NULL || tls->cert_file != NULL;
	char *pub = NULL;
	natsStatus s;

	for (size_t i = 0; i < c->urls.n; i++)
		secure = secure || strncmp(c->urls.v[i], "tls://", 6) == 0;

	s = natsOptions_SetServers(o, (const char **)c->urls.v, (int)c->urls.n);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, c->name);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, c->connect_timeout / NS_PER_MS);
	if (s != NATS_OK) {
		log_errorx("nats.options", "cannot set connection options: %s",
		    nats_GetLastError(NULL));
		return -1;
	}

	if (secure && (s = natsOptions_SetSecure(o, true)) != NATS_OK)
		goto tls_failed;
	if (tls->ca_file != NULL &&
	    (s = natsOptions_LoadCATrustedCertificates(o, tls->ca_file)) !=
		NATS_OK)
		goto tls_failed;
	if (tls->cert_file != NULL &&
	    (s = natsOptions_LoadCertificatesChain(
		 o, tls->cert_file, tls->key_file)) != NATS_OK)
		goto tls_failed;
	if (tls->server_name != NULL &&
	    (s = natsOptions_SetExpectedHostname(o, tls->server_name)) !=
		NATS_OK)
		goto tls_failed;

	if (auth->creds_file != NULL)
		s = natsOptions_SetUserCredentialsFromFiles(
		    o, auth->creds_file, NULL);
	else if (auth->nkey_seed_file != NULL) {
		if ((pub = nkey_public_from_seed_file(auth->nkey_seed_file)) ==
		    NULL)
			return -1;
		s = natsOptions_SetNKeyFromSeed(o, pub, auth->nkey_seed_file);
		free(pub);
	} else if (auth->user != NULL)
		s = natsOptions_SetUserInfo(o, auth->user, auth->password);
	else if (auth->token != NULL)
		s = natsOptions_SetToken(o, auth->token);
	if (s != NATS_OK) {
		log_errorx("nats.credentials", "cannot use the credentials: %s",
		    nats_GetLastError(NULL));
		return -1;
	}
	return 0;

tls_failed:
	log_errorx(
	    "nats.tls", "cannot set up TLS: %s", nats_GetLastError(NULL));
	return -1;
}

/* The daemon's own: reconnect forever, every event through the queue. */
static int
apply_options(struct bus *b, const struct config_nats *c)
{
	natsOptions *o = b->opts;
	natsStatus s;

	if (bus_connect_options(o, c) == -1)
		return -1;
	s = natsOptions_SetPingInterval(o, c->ping_interval / NS_PER_MS);
	if (s == NATS_OK)
		s = natsOptions_SetIOBufSize(o, IO_BUF_SIZE);
	/* The socket is the loop's; nats.c only buffers. Sent at once means
	 * handed to the loop, which writes before it sleeps: no flusher
	 * thread and its millisecond of delay. */
	if (s == NATS_OK)
		s = natsOptions_SetEventLoop(
		    o, b, el_attach, el_read, el_write, el_detach);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, b);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(
		    o, true, on_connected, b);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_connected, b);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed, b);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_async_error, b);
	if (s != NATS_OK) {
		log_errorx("nats.options", "cannot set connection options: %s",
		    nats_GetLastError(NULL));
		return -1;
	}
	return 0;
}

struct bus *
bus_new(struct ev_loop *loop, const struct config_nats *c,
    const struct bus_events *events)
{
	struct bus *b = xcalloc(1, sizeof *b);
	natsInbox *inbox = NULL;
	natsStatus s;

	b->loop = loop;
	b->events = *events;
	b->state = BUS_CONNECTING;
	b->inboxes = idmap_new();
	b->requests = idmap_new();
	b->reconnect_wait_ms = c->reconnect_wait / NS_PER_MS;
	if (b->reconnect_wait_ms < 1)
		b->reconnect_wait_ms = 1;
	b->reconnect_wait_max_ms = c->reconnect_wait_max / NS_PER_MS;
	b->reconnect_jitter_ms = c->reconnect_jitter / NS_PER_MS;
	b->handoff = handoff_new(loop, on_handoff, b);
	ev_timer_init(&b->unreachable, on_unreachable, UNREACHABLE_CHECK_S,
	    UNREACHABLE_CHECK_S);
	b->unreachable.data = b;
	ev_timer_init(&b->connect_again, on_connect_again, 0, 0);
	b->connect_again.data = b;
	b->loop_thread = pthread_self();
	pthread_mutex_init(&b->wish_lock, NULL);
	b->wish.fd = -1;
	ev_io_init(&b->reader, on_readable, -1, EV_READ);
	b->reader.data = b;
	ev_io_init(&b->writer, on_writable, -1, EV_WRITE);
	b->writer.data = b;
	/* After every other prepare watcher: what they wrote goes out. */
	ev_prepare_init(&b->before_sleep, on_before_sleep);
	ev_set_priority(&b->before_sleep, EV_MINPRI);
	b->before_sleep.data = b;
	ev_prepare_start(loop, &b->before_sleep);
	ev_async_init(&b->wake, on_wake);
	ev_async_start(loop, &b->wake);

	/* A unique token: the random part of a nats.c inbox name. */
	if (natsInbox_Create(&inbox) != NATS_OK ||
	    natsOptions_Create(&b->opts) != NATS_OK) {
		log_errorx("nats.init", "cannot initialise nats.c: %s",
		    nats_GetLastError(NULL));
		natsInbox_Destroy(inbox);
		goto fail;
	}
	snprintf(b->base, sizeof b->base, "_SC.%s",
	    strchr(inbox, '.') != NULL ? strchr(inbox, '.') + 1 : inbox);
	natsInbox_Destroy(inbox);
	if (apply_options(b, c) == -1)
		goto fail;

	s = natsConnection_Connect(&b->nc, b->opts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		log_errorx("nats.connect", "cannot start connecting: %s",
		    nats_GetLastError(NULL));
		goto fail;
	}
	if (s == NATS_OK)
		handoff_push(b->handoff, HANDOFF_STATE, BUS_CONNECTED, NULL);
	ev_timer_start(loop, &b->unreachable);
	/* Replies may be "no responders" statuses, which a synchronous
	 * subscription swallows whole: this inbox is read by nats.c. */
	b->request_inbox = open_inbox(b, on_reply, b, &b->request_prefix, true);
	if (b->request_inbox == 0)
		goto fail;
	return b;

fail:
	bus_free(b);
	return NULL;
}

struct request_list {
	struct request **v;
	size_t n;
};

static void
collect_request(void *arg, uint64_t id, void *value)
{
	struct request_list *l = arg;

	l->v[l->n++] = value;
}

void
bus_free(struct bus *b)
{
	struct inbox_ref *ref, *next;
	struct request_list pending;

	if (b == NULL)
		return;
	ev_timer_stop(b->loop, &b->unreachable);
	ev_timer_stop(b->loop, &b->connect_again);
	free(b->unreachable_why);
	if (b->nc != NULL) {
		bool connected = b->state == BUS_CONNECTED;

		b->closing = true;
		/* Acks and NAKs still buffered must reach the server. */
		if (connected)
			sync_with_server(b, SYNC_AT_CLOSE_NS);
		natsConnection_Close(b->nc);
		/* Better a leak at exit than a callback into freed memory. */
		if (wait_threads_done(b) == -1)
			return;
	}
	ev_io_stop(b->loop, &b->reader);
	ev_io_stop(b->loop, &b->writer);
	ev_prepare_stop(b->loop, &b->before_sleep);
	ev_async_stop(b->loop, &b->wake);
	/* Queued messages go back through on_handoff and are destroyed. */
	handoff_free(b->handoff);
	b->handoff = NULL;
	/* Finishing a request removes it from the map: collect them first. */
	pending.n = 0;
	pending.v = xcalloc(idmap_count(b->requests) + 1, sizeof *pending.v);
	idmap_foreach(b->requests, collect_request, &pending);
	for (size_t i = 0; i < pending.n; i++)
		request_finish(pending.v[i], NULL);
	free(pending.v);
	for (uint64_t id = 1; id <= b->next_inbox; id++)
		bus_inbox_close(b, id);
	natsConnection_Destroy(b->nc);
	natsOptions_Destroy(b->opts);
	for (ref = b->refs; ref != NULL; ref = next) {
		next = ref->next;
		free(ref);
	}
	idmap_free(b->inboxes);
	idmap_free(b->requests);
	free(b->loop_inboxes);
	pthread_mutex_destroy(&b->wish_lock);
	free(b);
}

enum bus_state
bus_state(const struct bus *b)
{
	return b->state;
}

/* Subscribes |in| on the current connection; returns 0 or -1. */
static int
subscribe_inbox(struct bus *b, struct inbox *in)
{
	char *subject = xasprintf("%s.*", in->prefix);
	natsStatus s;

	in->sub = NULL;
	if (in->ref == NULL)
		s = natsConnection_SubscribeSync(&in->sub, b->nc, subject);
	else
		s = natsConnection_Subscribe(
		    &in->sub, b->nc, subject, on_nats_msg, in->ref);
	/* Credits bound what arrives; nats.c must never drop any of it. */
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(in->sub, -1, -1);
	if (s == NATS_OK && in->ref != NULL) {
		s = natsSubscription_SetOnCompleteCB(
		    in->sub, on_sub_complete, in->ref);
		b->subs_opened += s == NATS_OK;
	}
	free(subject);
	if (s != NATS_OK) {
		if (!natsConnection_IsClosed(b->nc))
			log_errorx("nats.subscribe",
			    "cannot subscribe to an inbox: %s",
			    nats_GetLastError(NULL));
		natsSubscription_Destroy(in->sub);
		in->sub = NULL;
		return -1;
	}
	return 0;
}

static void
resubscribe(void *arg, uint64_t id, void *value)
{
	struct inbox *in = value;

	natsSubscription_Destroy(in->sub);
	subscribe_inbox(arg, in);
}

/*
 * nats.c gave up on the connection (it does so for an authorization
 * error, which an operator may fix at any time): start a new one, with
 * every inbox subscribed again.
 */
static void
on_connect_again(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bus *b = w->data;
	natsStatus s;

	natsConnection_Destroy(b->nc);
	b->nc = NULL;
	atomic_store(&b->closed_cb_done, false);
	s = natsConnection_Connect(&b->nc, b->opts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		log_errorx("nats.connect", "cannot start connecting: %s",
		    nats_GetLastError(NULL));
		b->nc = NULL;
		ev_timer_set(w, (double)b->reconnect_wait_max_ms / 1e3, 0);
		ev_timer_start(loop, w);
		return;
	}
	b->state = BUS_DISCONNECTED;
	idmap_foreach(b->inboxes, resubscribe, b);
	if (s == NATS_OK)
		handoff_push(b->handoff, HANDOFF_STATE, BUS_CONNECTED, NULL);
}

/* Opens an inbox read on the loop, or by nats.c's delivery thread when
 * |by_nats| (its messages then come through the hand-off queue). */
static uint64_t
open_inbox(
    struct bus *b, bus_msg_fn fn, void *arg, const char **prefix, bool by_nats)
{
	struct inbox *in = xcalloc(1, sizeof *in);
	uint64_t id = ++b->next_inbox;

	if (by_nats) {
		in->ref = xcalloc(1, sizeof *in->ref);
		in->ref->bus = b;
		in->ref->id = id;
		in->ref->next = b->refs;
		b->refs = in->ref;
	}
	in->fn = fn;
	in->arg = arg;
	in->prefix = xasprintf("%s.%" PRIu64, b->base, id);
	/* A connection nats.c already gave up on subscribes nothing; the
	 * fresh connection started after it subscribes every inbox. */
	if (subscribe_inbox(b, in) == -1 && !natsConnection_IsClosed(b->nc)) {
		free(in->prefix);
		free(in);
		return 0;
	}
	idmap_put(b->inboxes, id, in);
	if (!by_nats) {
		b->loop_inboxes = xreallocarray(b->loop_inboxes,
		    b->nloop_inboxes + 1, sizeof *b->loop_inboxes);
		b->loop_inboxes[b->nloop_inboxes++] = id;
	}
	*prefix = in->prefix;
	return id;
}

uint64_t
bus_inbox_open(struct bus *b, bus_msg_fn fn, void *arg, const char **prefix)
{
	return open_inbox(b, fn, arg, prefix, false);
}

void
bus_inbox_drain(struct bus *b, uint64_t id)
{
	struct inbox *in = idmap_get(b->inboxes, id);

	if (in == NULL || in->sub == NULL)
		return;
	if (natsSubscription_Drain(in->sub) != NATS_OK) {
		natsSubscription_Unsubscribe(in->sub);
		in->drained = true;
	}
}

bool
bus_inbox_done(const struct bus *b, uint64_t id)
{
	struct inbox *in = idmap_get(b->inboxes, id);

	/* A drain ends once the server confirmed the unsubscribe and the
	 * last message before it was taken. */
	return in == NULL || in->sub == NULL || in->drained ||
	    natsSubscription_DrainCompletionStatus(in->sub) !=
	    NATS_ILLEGAL_STATE;
}

void
bus_inbox_close(struct bus *b, uint64_t id)
{
	struct inbox *in = idmap_del(b->inboxes, id);

	if (in == NULL)
		return;
	for (size_t i = 0; i < b->nloop_inboxes; i++) {
		if (b->loop_inboxes[i] == id) {
			b->loop_inboxes[i] =
			    b->loop_inboxes[--b->nloop_inboxes];
			break;
		}
	}
	natsSubscription_Unsubscribe(in->sub);
	natsSubscription_Destroy(in->sub);
	free(in->prefix);
	free(in);
}

int
bus_publish(struct bus *b, const char *subject, const char *reply,
    const void *data, size_t len)
{
	natsStatus s;

	if (reply == NULL)
		s = natsConnection_Publish(b->nc, subject, data, (int)len);
	else
		s = natsConnection_PublishRequest(
		    b->nc, subject, reply, data, (int)len);
	if (s != NATS_OK) {
		log_debug("nats.publish_failed", "publish to %s: %s", subject,
		    natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

/* |b|'s request prefix, ".", |id| in decimal: a request per publish made
 * snprintf() a twentieth of the publish path. |reply| holds 96 bytes. */
static void
reply_subject(const struct bus *b, uint64_t id, char *reply)
{
	char digits[20];
	size_t n = strlen(b->request_prefix), k = 0;

	do
		digits[k++] = (char)('0' + id % 10);
	while ((id /= 10) > 0);
	memcpy(reply, b->request_prefix, n);
	reply[n++] = '.';
	while (k > 0)
		reply[n++] = digits[--k];
	reply[n] = '\0';
}

uint64_t
bus_request(struct bus *b, const char *subject, const struct bus_header *hdrs,
    size_t nhdrs, const void *data, size_t len, int64_t timeout_ns,
    bus_reply_fn fn, void *arg)
{
	struct request *r;
	natsMsg *m = NULL;
	char reply[96];
	natsStatus s;
	uint64_t id = ++b->next_request;

	reply_subject(b, id, reply);
	s = natsMsg_Create(&m, subject, reply, data, (int)len);
	for (size_t i = 0; s == NATS_OK && i < nhdrs; i++)
		s = natsMsgHeader_Add(m, hdrs[i].name, hdrs[i].value);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, m);
	bus_msg_free(m);
	if (s != NATS_OK) {
		log_debug("nats.request_failed", "request to %s: %s", subject,
		    natsStatus_GetText(s));
		return 0;
	}
	r = xcalloc(1, sizeof *r);
	r->bus = b;
	r->id = id;
	r->fn = fn;
	r->arg = arg;
	ev_timer_init(
	    &r->timer, on_request_timeout, (double)timeout_ns / 1e9, 0);
	r->timer.data = r;
	ev_timer_start(b->loop, &r->timer);
	idmap_put(b->requests, id, r);
	return id;
}

static void
on_synced(void *arg, natsMsg *reply)
{
	bool *done = arg;

	*done = true;
	bus_msg_free(reply);
}

/*
 * Runs the loop until the server has read everything written before, or
 * |timeout_ns| passed: a message to the sidecar's own request inbox comes
 * back only after the server went through what preceded it.
 */
static void
sync_with_server(struct bus *b, int64_t timeout_ns)
{
	char subject[96];
	bool done = false;

	reply_subject(b, b->next_request + 1, subject);
	if (bus_request(b, subject, NULL, 0, NULL, 0, timeout_ns, on_synced,
		&done) == 0)
		return;
	while (!done)
		ev_run(b->loop, EVRUN_ONCE);
}

void *
bus_request_cancel(struct bus *b, uint64_t id)
{
	struct request *r = idmap_del(b->requests, id);
	void *arg;

	if (r == NULL)
		return NULL;
	ev_timer_stop(b->loop, &r->timer);
	arg = r->arg;
	free(r);
	return arg;
}

int64_t
bus_max_payload(const struct bus *b)
{
	int64_t n = b->nc != NULL ? natsConnection_GetMaxPayload(b->nc) : 0;

	return n > 0 ? n : 1024 * 1024;
}

#ifdef HAVE_NATSMSG_FREE
/* Exported by nats.c, not declared: natsMsg_Destroy() defers to it on
 * nats.c's collector thread. */
void natsMsg_free(void *);
#endif

void
bus_msg_free(natsMsg *msg)
{
#ifdef HAVE_NATSMSG_FREE
	natsMsg_free(msg);
#else
	natsMsg_Destroy(msg);
#endif
}

size_t
bus_msg_size(natsMsg *msg)
{
	const char *reply = natsMsg_GetReply(msg), **keys = NULL;
	size_t n = strlen(natsMsg_GetSubject(msg)) +
	    (reply != NULL ? strlen(reply) : 0) +
	    (size_t)natsMsg_GetDataLength(msg);
	int nkeys = 0;

	/* "NATS/1.0\r\n", then "Name: value\r\n" each, then "\r\n". */
	if (natsMsgHeader_Keys(msg, &keys, &nkeys) == NATS_OK && nkeys > 0) {
		n += 12;
		for (int i = 0; i < nkeys; i++) {
			const char **vals = NULL;
			int nv = 0;

			natsMsgHeader_Values(msg, keys[i], &vals, &nv);
			for (int j = 0; j < nv; j++)
				n += strlen(keys[i]) + strlen(vals[j]) + 4;
			free(vals);
		}
	}
	free(keys);
	return n;
}

const char *
bus_msg_header(natsMsg *msg, const char *name)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(msg, name, &v) != NATS_OK)
		return NULL;
	return v;
}

int
bus_msg_status(natsMsg *msg)
{
	const char *v;

	if (natsMsg_GetDataLength(msg) != 0 ||
	    (v = bus_msg_header(msg, "Status")) == NULL)
		return 0;
	return atoi(v);
}
