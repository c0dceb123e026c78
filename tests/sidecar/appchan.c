/*
 * The app channel over real Unix sockets and a real libev loop: clients
 * in the same thread speak the framed protocol while the loop runs in
 * small steps, as the daemon's would.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "harness/cmocka.h"
#include "sidecar/appchan.h"
#include "sidecar/buf.h"
#include "sidecar/config.h"
#include "sidecar/frame.h"
#include "sidecar/xmalloc.h"

#define MS 1000000LL /* config durations are in ns */
#define WAIT_SECONDS 3.0
#define MAX_SEEN 16

typedef NatsSidecar__Channel__V1__Error__Code Code;

struct fixture {
	char dir[64];
	char path[128];
	struct config_app cfg;
	struct ev_loop *loop;
	ev_prepare flush;
	struct appchan *chan;
	struct appchan_events events;

	struct app *ready[MAX_SEEN];
	size_t nready;
	struct app *gone[MAX_SEEN];
	size_t ngone;
	uint64_t result_ids[MAX_SEEN];
	int result_outcomes[MAX_SEEN];
	size_t nresults;
	uint64_t publish_ids[MAX_SEEN];
	char *publish_subjects[MAX_SEEN];
	size_t npublishes;
};

struct client {
	int fd;
	struct buf in;
	bool closed;
};

static void
on_ready(void *arg, struct app *app)
{
	struct fixture *fx = arg;

	assert_true(fx->nready < MAX_SEEN);
	fx->ready[fx->nready++] = app;
}

static void
on_result(void *arg, struct app *app, const NatsSidecar__Channel__V1__Result *r)
{
	struct fixture *fx = arg;

	assert_true(fx->nresults < MAX_SEEN);
	fx->result_ids[fx->nresults] = r->id;
	fx->result_outcomes[fx->nresults++] = (int)r->outcome;
}

static void
on_publish(
    void *arg, struct app *app, const NatsSidecar__Channel__V1__Publish *p)
{
	struct fixture *fx = arg;

	assert_true(fx->npublishes < MAX_SEEN);
	fx->publish_ids[fx->npublishes] = p->id;
	fx->publish_subjects[fx->npublishes++] = xstrdup(p->subject);
}

static void
on_gone(void *arg, struct app *app)
{
	struct fixture *fx = arg;

	assert_true(fx->ngone < MAX_SEEN);
	fx->gone[fx->ngone++] = app;
}

/* The core's once-per-turn flush. */
static void
flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct fixture *fx = w->data;

	if (fx->chan != NULL)
		appchan_flush(fx->chan);
}

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof *fx);

	strcpy(fx->dir, "/tmp/appchan-test-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/app.sock", fx->dir);
	fx->cfg.socket = fx->path;
	fx->cfg.socket_mode = 0660;
	fx->cfg.max_frame_size = 1024 * 1024;
	/* Long enough to stay out of the way of tests about other things. */
	fx->cfg.heartbeat_interval = 10000 * MS;
	fx->cfg.dead_after = 30000 * MS;
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	ev_prepare_init(&fx->flush, flush_cb);
	fx->flush.data = fx;
	ev_prepare_start(fx->loop, &fx->flush);
	fx->events.app_ready = on_ready;
	fx->events.result = on_result;
	fx->events.publish = on_publish;
	fx->events.app_gone = on_gone;
	fx->events.arg = fx;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	appchan_free(fx->chan);
	ev_prepare_stop(fx->loop, &fx->flush);
	ev_loop_destroy(fx->loop);
	for (size_t i = 0; i < fx->npublishes; i++)
		free(fx->publish_subjects[i]);
	/* What a test may leave: a socket or a regular file at the path. */
	unlink(fx->path);
	if (rmdir(fx->dir) == -1)
		return -1;
	free(fx);
	return 0;
}

static void
start(struct fixture *fx)
{
	fx->chan =
	    appchan_new(fx->loop, &fx->cfg, "test-instance", &fx->events);
	assert_non_null(fx->chan);
}

/* One turn of the loop, then a short pause for the peer. */
static void
step(struct fixture *fx)
{
	struct timespec ts = { 0, 1000000 };

	ev_run(fx->loop, EVRUN_NOWAIT);
	nanosleep(&ts, NULL);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
unix_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd != -1);
	return fd;
}

static struct sockaddr_un
unix_addr(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	assert_true(strlen(path) < sizeof sun.sun_path);
	strcpy(sun.sun_path, path);
	return sun;
}

/* Returns connect()'s errno, 0 on success. */
static int
try_connect(int fd, const char *path)
{
	struct sockaddr_un sun = unix_addr(path);

	return connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ? 0
								     : errno;
}

static struct client *
client_new(struct fixture *fx)
{
	struct client *c = xcalloc(1, sizeof *c);

	c->fd = unix_socket();
	assert_int_equal(try_connect(c->fd, fx->path), 0);
	return c;
}

static void
client_free(struct client *c)
{
	close(c->fd);
	buf_free(&c->in);
	free(c);
}

/* Writes |len| bytes, running the loop while the socket is full. */
static void
client_send_raw(struct fixture *fx, struct client *c, const void *p, size_t len)
{
	const uint8_t *b = p;
	double until = now_s() + WAIT_SECONDS;

	while (len > 0) {
		ssize_t n = send(c->fd, b, len, MSG_NOSIGNAL);

		if (n > 0) {
			b += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(errno == EAGAIN);
		assert_true(now_s() < until);
		step(fx);
	}
}

static void
client_send(struct fixture *fx, struct client *c, const Frame *f)
{
	struct buf b = BUF_INIT;

	assert_true(frame_encode(f, FRAME_DEFAULT_MAX, &b) > 0);
	client_send_raw(fx, c, buf_head(&b), buf_used(&b));
	buf_free(&b);
}

/* Reads what is there; notes the end of the connection. */
static void
client_poll(struct client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf_reserve(&c->in, 65536), 65536, 0);

		if (n > 0) {
			buf_commit(&c->in, (size_t)n);
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			c->closed = true;
		else
			assert_true(errno == EAGAIN);
		return;
	}
}

/* The next frame from the sidecar, or NULL if none came in time. */
static Frame *
client_frame(struct fixture *fx, struct client *c)
{
	double until = now_s() + WAIT_SECONDS;
	Frame *f;
	size_t used;

	for (;;) {
		client_poll(c);
		switch (frame_decode(buf_head(&c->in), buf_used(&c->in),
		    FRAME_DEFAULT_MAX, &f, &used)) {
		case FRAME_OK:
			buf_consume(&c->in, used);
			return f;
		case FRAME_NEED_MORE:
			break;
		default:
			fail_msg("the sidecar sent a bad frame");
		}
		if (c->closed || now_s() > until)
			return NULL;
		step(fx);
	}
}

/* The next frame, which must be of kind |kind|. */
static Frame *
client_expect(struct fixture *fx, struct client *c,
    NatsSidecar__Channel__V1__Frame__BodyCase kind)
{
	Frame *f = client_frame(fx, c);

	if (f == NULL)
		fail_msg("no frame of kind %d came", (int)kind);
	if (f->body_case != kind)
		fail_msg("frame of kind %d came instead of %d",
		    (int)f->body_case, (int)kind);
	return f;
}

/* Whether the sidecar closes |c| in time; frames before are dropped. */
static bool
client_closed(struct fixture *fx, struct client *c)
{
	double until = now_s() + WAIT_SECONDS;

	while (now_s() < until) {
		client_poll(c);
		buf_clear(&c->in);
		if (c->closed)
			return true;
		step(fx);
	}
	return false;
}

/* Runs the loop until |*n| reaches |want|. */
static void
wait_count(struct fixture *fx, const size_t *n, size_t want)
{
	double until = now_s() + WAIT_SECONDS;

	while (*n < want && now_s() < until)
		step(fx);
	assert_int_equal(*n, want);
}

/* Runs the loop for |ms| milliseconds. */
static void
run_for(struct fixture *fx, int ms)
{
	double until = now_s() + ms / 1e3;

	while (now_s() < until)
		step(fx);
}

static void
send_hello(struct fixture *fx, struct client *c, uint32_t version,
    uint32_t capacity, uint32_t max_frame, const char *name, char **subs,
    size_t nsubs)
{
	NatsSidecar__Channel__V1__Hello h =
	    NATS_SIDECAR__CHANNEL__V1__HELLO__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	h.protocol_version = version;
	h.capacity = capacity;
	h.max_frame_size = max_frame;
	h.app_name = (char *)name;
	h.subscriptions = subs;
	h.n_subscriptions = nsubs;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HELLO;
	f.hello = &h;
	client_send(fx, c, &f);
}

/* Connects and completes the handshake; returns the client and, through
 * |app|, the channel's app. */
static struct client *
client_ready(
    struct fixture *fx, uint32_t capacity, uint32_t max_frame, struct app **app)
{
	struct client *c = client_new(fx);
	size_t before = fx->nready;

	send_hello(fx, c, 1, capacity, max_frame, "worker", NULL, 0);
	frame_free(client_expect(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME));
	wait_count(fx, &fx->nready, before + 1);
	if (app != NULL)
		*app = fx->ready[before];
	return c;
}

static void
send_result(struct fixture *fx, struct client *c, uint64_t id, int outcome)
{
	NatsSidecar__Channel__V1__Result r =
	    NATS_SIDECAR__CHANNEL__V1__RESULT__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	r.id = id;
	r.outcome = (NatsSidecar__Channel__V1__Result__Outcome)outcome;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_RESULT;
	f.result = &r;
	client_send(fx, c, &f);
}

static void
send_heartbeat(struct fixture *fx, struct client *c)
{
	NatsSidecar__Channel__V1__Heartbeat hb =
	    NATS_SIDECAR__CHANNEL__V1__HEARTBEAT__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT;
	f.heartbeat = &hb;
	client_send(fx, c, &f);
}

/* Expects an Error frame with |code| and |fatal|; returns its ref_id. */
static uint64_t
expect_error(struct fixture *fx, struct client *c, Code code, bool fatal)
{
	Frame *f =
	    client_expect(fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR);
	uint64_t ref;

	if (f->error->code != code || f->error->fatal != fatal)
		fail_msg("error code %d fatal %d (\"%s\"), wanted %d fatal %d",
		    (int)f->error->code, (int)f->error->fatal,
		    f->error->message, (int)code, (int)fatal);
	assert_true(strlen(f->error->message) > 0);
	ref = f->error->ref_id;
	frame_free(f);
	return ref;
}

static void
handshake_and_welcome(void **state)
{
	struct fixture *fx = *state;
	char *subs[] = { "orders", "refunds" };
	struct client *a, *b;
	Frame *f;
	int tag;

	start(fx);
	a = client_new(fx);
	/* A newer app is answered with the version both speak. */
	send_hello(fx, a, 3, 5, 0, "payments-7f9c/1", subs, 2);
	f = client_expect(
	    fx, a, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME);
	assert_int_equal(f->welcome->protocol_version, FRAME_PROTOCOL_VERSION);
	assert_int_equal(f->welcome->max_frame_size, 1024 * 1024);
	assert_int_equal(f->welcome->heartbeat_interval_ms, 10000);
	assert_string_equal(f->welcome->sidecar_version, PACKAGE_VERSION);
	assert_string_equal(f->welcome->instance_id, "test-instance");
	frame_free(f);

	wait_count(fx, &fx->nready, 1);
	assert_int_equal(appchan_ready_count(fx->chan), 1);
	assert_int_equal(app_capacity(fx->ready[0]), 5);
	assert_string_equal(app_name(fx->ready[0]), "payments-7f9c/1");
	assert_int_equal(app_id(fx->ready[0]), 1);
	assert_true(app_serves(fx->ready[0], "orders"));
	assert_true(app_serves(fx->ready[0], "refunds"));
	assert_false(app_serves(fx->ready[0], "invoices"));
	assert_null(app_data(fx->ready[0]));
	app_set_data(fx->ready[0], &tag);
	assert_ptr_equal(app_data(fx->ready[0]), &tag);

	/* No subscriptions named: it serves them all. */
	b = client_ready(fx, 1, 0, NULL);
	assert_int_equal(appchan_ready_count(fx->chan), 2);
	assert_int_equal(app_id(fx->ready[1]), 2);
	assert_string_equal(app_name(fx->ready[1]), "worker");
	assert_true(app_serves(fx->ready[1], "invoices"));
	assert_int_equal(fx->ngone, 0);
	client_free(a);
	client_free(b);
}

static void
delivery_reaches_app_byte_exact(void **state)
{
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Header h =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header *hs[] = { &h };
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	uint8_t payload[3000];
	struct buf want = BUF_INIT;
	struct client *c;
	struct app *app;
	double until = now_s() + WAIT_SECONDS;

	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	start(fx);
	c = client_ready(fx, 4, 0, &app);

	h.name = "Nats-Msg-Id";
	h.value = "order-1";
	d.id = 77;
	d.subscription = "orders";
	d.subject = "orders.created.v1";
	d.headers = hs;
	d.n_headers = 1;
	d.payload.data = payload;
	d.payload.len = sizeof payload;
	d.attempt = 2;
	d.stream_sequence = 901;
	d.message_id = "order-1";
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY;
	f.delivery = &d;
	assert_true(frame_encode(&f, FRAME_DEFAULT_MAX, &want) > 0);

	assert_int_equal(appchan_send_delivery(app, &d), 0);
	while (buf_used(&c->in) < buf_used(&want) && now_s() < until) {
		step(fx);
		client_poll(c);
	}
	assert_int_equal(buf_used(&c->in), buf_used(&want));
	assert_memory_equal(buf_head(&c->in), buf_head(&want), buf_used(&want));
	buf_free(&want);
	client_free(c);
}

static void
results_and_publishes_reach_the_core(void **state)
{
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Header h =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header *hs[] = { &h };
	NatsSidecar__Channel__V1__Publish p =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH__INIT;
	NatsSidecar__Channel__V1__PublishAck ack =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *got;
	struct client *c;
	struct app *app;

	start(fx);
	c = client_ready(fx, 4, 0, &app);
	send_result(fx, c, 7, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	send_result(
	    fx, c, 8, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS);
	wait_count(fx, &fx->nresults, 2);
	assert_int_equal(fx->result_ids[0], 7);
	assert_int_equal(fx->result_outcomes[0],
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	assert_int_equal(fx->result_ids[1], 8);
	assert_int_equal(fx->result_outcomes[1],
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS);

	h.name = "X-Tenant";
	h.value = "acme";
	p.id = 31;
	p.subject = "orders.shipped.v1";
	p.headers = hs;
	p.n_headers = 1;
	p.payload.data = (uint8_t *)"{}";
	p.payload.len = 2;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH;
	f.publish = &p;
	client_send(fx, c, &f);
	wait_count(fx, &fx->npublishes, 1);
	assert_int_equal(fx->publish_ids[0], 31);
	assert_string_equal(fx->publish_subjects[0], "orders.shipped.v1");

	ack.id = 31;
	ack.status = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK;
	ack.stream = "ORDERS";
	ack.sequence = 12;
	appchan_send_publish_ack(app, &ack);
	got = client_expect(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK);
	assert_int_equal(got->publish_ack->id, 31);
	assert_int_equal(got->publish_ack->status,
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK);
	assert_string_equal(got->publish_ack->stream, "ORDERS");
	assert_int_equal(got->publish_ack->sequence, 12);
	frame_free(got);
	assert_int_equal(fx->ngone, 0);
	client_free(c);
}

/* Raw bytes after the handshake end the connection with |code|. */
static void
fatal_after_bytes(
    struct fixture *fx, const uint8_t *bytes, size_t len, Code code)
{
	struct client *c;
	struct app *app;

	start(fx);
	c = client_ready(fx, 1, 0, &app);
	client_send_raw(fx, c, bytes, len);
	expect_error(fx, c, code, true);
	assert_true(client_closed(fx, c));
	wait_count(fx, &fx->ngone, 1);
	assert_ptr_equal(fx->gone[0], app);
	assert_int_equal(appchan_ready_count(fx->chan), 0);
	client_free(c);
}

static void
malformed_frame_is_fatal(void **state)
{
	static const uint8_t bad[] = { 0, 0, 0, 3, 0x0a, 0x05, 0x08 };

	fatal_after_bytes(*state, bad, sizeof bad,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__MALFORMED_FRAME);
}

static void
oversized_frame_is_fatal(void **state)
{
	/* The prefix alone is enough to refuse it. */
	static const uint8_t big[] = { 0, 0x10, 0, 1 };

	fatal_after_bytes(*state, big, sizeof big,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__FRAME_TOO_LARGE);
}

static void
second_hello_is_fatal(void **state)
{
	/* Hello{protocol_version: 1, capacity: 1}. */
	static const uint8_t hello[] = { 0, 0, 0, 6, 0x0a, 0x04, 0x08, 0x01,
		0x10, 0x01 };

	fatal_after_bytes(*state, hello, sizeof hello,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL);
}

static void
sidecar_only_frames_are_fatal(void **state)
{
	/* Drain{grace_ms: 1}, a frame only the sidecar sends. */
	static const uint8_t drain[] = { 0, 0, 0, 4, 0x4a, 0x02, 0x08, 0x01 };

	fatal_after_bytes(*state, drain, sizeof drain,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL);
}

/* Before the handshake, the app is not the core's: no app_gone. */
static void
frame_before_hello_is_fatal(void **state)
{
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	c = client_new(fx);
	send_result(fx, c, 1, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	expect_error(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL, true);
	assert_true(client_closed(fx, c));
	assert_int_equal(fx->nready, 0);
	assert_int_equal(fx->nresults, 0);
	assert_int_equal(fx->ngone, 0);
	client_free(c);
}

static void
bad_hellos_are_fatal(void **state)
{
	static const struct {
		uint32_t version, capacity, max_frame;
		Code code;
	} bad[] = {
		{ 0, 1, 0,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNSUPPORTED_VERSION },
		{ 1, 0, 0,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD },
		{ 1, 1, 1023,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD },
		{ 1, 1, 64 * 1024 * 1024 + 1,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD },
	};
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = client_new(fx);
		send_hello(fx, c, bad[i].version, bad[i].capacity,
		    bad[i].max_frame, "bad", NULL, 0);
		expect_error(fx, c, bad[i].code, true);
		assert_true(client_closed(fx, c));
		client_free(c);
	}
	/* The limits themselves are fine. */
	client_free(client_ready(fx, 1, 1024, NULL));
	client_free(client_ready(fx, 1, 64 * 1024 * 1024, NULL));
	assert_int_equal(fx->nready, 2);
}

/* An out-of-range outcome is refused, and the connection goes on. */
static void
bad_outcome_is_not_fatal(void **state)
{
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	c = client_ready(fx, 1, 0, NULL);
	send_result(fx, c, 41, 0);
	assert_int_equal(
	    expect_error(fx, c,
		NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD, false),
	    41);
	send_result(fx, c, 42, 5);
	assert_int_equal(
	    expect_error(fx, c,
		NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD, false),
	    42);
	send_result(
	    fx, c, 43, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT);
	wait_count(fx, &fx->nresults, 1);
	assert_int_equal(fx->result_ids[0], 43);
	assert_int_equal(fx->ngone, 0);
	client_free(c);
}

static void
invalid_publishes_are_refused(void **state)
{
	static const char *const subjects[] = { "", "orders created",
		"orders..created", ".orders", "orders.", "orders.*", ">",
		"orders.>.x", "orders\tcreated", "orders.\x01", "orders.\x7f" };
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Header h =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header *hs[] = { &h };
	NatsSidecar__Channel__V1__Publish p =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *got;
	char *longest = xmalloc(1026);
	size_t n = sizeof subjects / sizeof subjects[0];
	struct client *c;

	start(fx);
	c = client_ready(fx, 1, 0, NULL);
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH;
	f.publish = &p;
	memset(longest, 'a', 1025);
	longest[1025] = '\0';
	for (size_t i = 0; i <= n + 2; i++) {
		p.id = 100 + i;
		p.subject = i < n ? (char *)subjects[i] : "orders.created";
		p.n_headers = 0;
		if (i == n)
			p.subject = longest;
		if (i == n + 1) {
			/* A header that would end the header block early. */
			h.name = "X-Evil";
			h.value = "a\r\nNats-Msg-Id: forged";
			p.headers = hs;
			p.n_headers = 1;
		}
		if (i == n + 2) {
			h.name = "Bad Name";
			h.value = "x";
			p.headers = hs;
			p.n_headers = 1;
		}
		client_send(fx, c, &f);
		got = client_expect(
		    fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK);
		if (got->publish_ack->id != 100 + i ||
		    got->publish_ack->status !=
			NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__INVALID ||
		    strlen(got->publish_ack->error) == 0)
			fail_msg("publish %zu was not refused as INVALID", i);
		frame_free(got);
	}
	assert_int_equal(fx->npublishes, 0);

	/* A token that merely contains * is a literal, as for NATS. */
	p.id = 7;
	p.subject = "orders.a*b.v1";
	p.n_headers = 0;
	client_send(fx, c, &f);
	wait_count(fx, &fx->npublishes, 1);
	assert_int_equal(fx->publish_ids[0], 7);
	assert_int_equal(fx->ngone, 0);
	free(longest);
	client_free(c);
}

/* The core's own errors: UNKNOWN_ID goes on, a fatal one closes after
 * it is written. */
static void
errors_from_the_core(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct app *app;

	start(fx);
	c = client_ready(fx, 1, 0, &app);
	appchan_send_error(app,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNKNOWN_ID,
	    "no delivery 99 here", 99, false);
	assert_int_equal(
	    expect_error(fx, c,
		NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNKNOWN_ID, false),
	    99);
	run_for(fx, 20);
	assert_int_equal(fx->ngone, 0);

	appchan_send_error(app,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL, "go away", 0,
	    true);
	/* Nothing more goes out after a fatal error. */
	appchan_send_error(app,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNKNOWN_ID, "dropped", 1,
	    false);
	assert_int_equal(fx->ngone, 0);
	expect_error(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL, true);
	assert_null(client_frame(fx, c));
	assert_true(c->closed);
	wait_count(fx, &fx->ngone, 1);
	client_free(c);
}

static void
stale_socket_is_replaced(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_un sun = unix_addr(fx->path);
	int fd = unix_socket();

	/* Bound, never listened on, closed: what a crash leaves behind. */
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	close(fd);
	assert_int_equal(access(fx->path, F_OK), 0);
	start(fx);
	client_free(client_ready(fx, 1, 0, NULL));
}

static void
socket_in_use_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_un sun = unix_addr(fx->path);
	int fd = unix_socket(), probe;

	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_null(appchan_new(fx->loop, &fx->cfg, "x", &fx->events));
	/* The other process's socket is left alone. */
	probe = unix_socket();
	assert_int_equal(try_connect(probe, fx->path), 0);
	close(probe);
	close(fd);
}

static void
unusable_paths_are_refused(void **state)
{
	struct fixture *fx = *state;
	char path[160];
	int fd;

	/* A regular file is not replaced. */
	fd = open(fx->path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd != -1);
	close(fd);
	assert_null(appchan_new(fx->loop, &fx->cfg, "x", &fx->events));
	assert_int_equal(access(fx->path, F_OK), 0);

	/* A missing directory is not created. */
	snprintf(path, sizeof path, "%s/missing/app.sock", fx->dir);
	fx->cfg.socket = path;
	assert_null(appchan_new(fx->loop, &fx->cfg, "x", &fx->events));
	snprintf(path, sizeof path, "%s/missing", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
}

static void
socket_mode_is_applied(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	fx->cfg.socket_mode = 0606;
	start(fx);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0606);
	appchan_free(fx->chan);
	fx->chan = NULL;
	/* Freeing the channel removes the file. */
	assert_int_equal(lstat(fx->path, &st), -1);
}

/* A delivery over the app's own limit is refused and nothing is sent. */
static void
oversized_delivery_is_refused(void **state)
{
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	uint8_t payload[1100] = { 0 };
	struct client *c;
	struct app *app;
	Frame *f;

	start(fx);
	c = client_ready(fx, 1, 1024, &app);
	d.id = 1;
	d.payload.data = payload;
	d.payload.len = sizeof payload;
	assert_int_equal(appchan_send_delivery(app, &d), -1);
	d.id = 2;
	d.payload.len = 900;
	assert_int_equal(appchan_send_delivery(app, &d), 0);
	f = client_expect(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY);
	assert_int_equal(f->delivery->id, 2);
	frame_free(f);
	client_free(c);
}

static void
heartbeat_is_sent_when_idle(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	double t0;
	Frame *f;

	fx->cfg.heartbeat_interval = 60 * MS;
	start(fx);
	c = client_ready(fx, 1, 0, NULL);
	t0 = now_s();
	f = client_expect(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT);
	frame_free(f);
	/* Not before the interval, and more than one over time. */
	assert_true(now_s() - t0 >= 0.03);
	frame_free(client_expect(
	    fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT));
	client_free(c);
}

/* A silent app is dropped; one that sends heartbeats stays. */
static void
silent_app_is_dropped(void **state)
{
	struct fixture *fx = *state;
	struct client *silent, *alive;
	struct app *gone;
	double until;

	fx->cfg.heartbeat_interval = 50 * MS;
	fx->cfg.dead_after = 300 * MS;
	start(fx);
	silent = client_ready(fx, 1, 0, &gone);
	alive = client_ready(fx, 1, 0, NULL);
	until = now_s() + 1.0;
	while (now_s() < until) {
		send_heartbeat(fx, alive);
		run_for(fx, 50);
		client_poll(alive);
		buf_clear(&alive->in);
	}
	assert_int_equal(fx->ngone, 1);
	assert_ptr_equal(fx->gone[0], gone);
	assert_true(client_closed(fx, silent));
	assert_false(alive->closed);
	assert_int_equal(appchan_ready_count(fx->chan), 1);
	client_free(silent);
	client_free(alive);
}

/* A connection that never says Hello is dropped too. */
static void
silent_connection_is_dropped(void **state)
{
	struct fixture *fx = *state;
	struct client *c;

	fx->cfg.dead_after = 100 * MS;
	start(fx);
	c = client_new(fx);
	assert_true(client_closed(fx, c));
	assert_int_equal(fx->ngone, 0);
	client_free(c);
}

static void
drain_is_sent_and_accepting_stops(void **state)
{
	struct fixture *fx = *state;
	struct client *c, *late;
	Frame *f;
	int fd;

	start(fx);
	c = client_ready(fx, 1, 0, NULL);
	late = client_new(fx);
	run_for(fx, 10);
	appchan_drain(fx->chan, 4500);
	f = client_expect(fx, c, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DRAIN);
	assert_int_equal(f->drain->grace_ms, 4500);
	frame_free(f);
	fd = unix_socket();
	assert_int_not_equal(try_connect(fd, fx->path), 0);
	close(fd);
	/* The draining app still answers. */
	send_result(fx, c, 5, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	wait_count(fx, &fx->nresults, 1);

	/* An app whose handshake ends after the drain is told at once. */
	send_hello(fx, late, 1, 1, 0, "late", NULL, 0);
	frame_free(client_expect(
	    fx, late, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME));
	f = client_expect(
	    fx, late, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DRAIN);
	assert_int_equal(f->drain->grace_ms, 4500);
	frame_free(f);
	client_free(late);
	client_free(c);
}

static void
others_keep_working(void **state)
{
	static const uint8_t junk[] = { 0, 0, 0, 2, 0xff, 0xff };
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	struct client *bad, *good;
	struct app *bad_app, *good_app;
	Frame *f;

	start(fx);
	bad = client_ready(fx, 1, 0, &bad_app);
	good = client_ready(fx, 1, 0, &good_app);
	client_send_raw(fx, bad, junk, sizeof junk);
	expect_error(fx, bad,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__MALFORMED_FRAME, true);
	wait_count(fx, &fx->ngone, 1);
	assert_ptr_equal(fx->gone[0], bad_app);

	send_result(
	    fx, good, 3, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	wait_count(fx, &fx->nresults, 1);
	d.id = 4;
	d.subject = "orders.created.v1";
	assert_int_equal(appchan_send_delivery(good_app, &d), 0);
	f = client_expect(
	    fx, good, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY);
	assert_int_equal(f->delivery->id, 4);
	frame_free(f);
	assert_int_equal(appchan_ready_count(fx->chan), 1);
	client_free(bad);
	client_free(good);
}

static void
closed_connection_is_gone_once(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct app *app;

	start(fx);
	c = client_ready(fx, 2, 0, &app);
	client_free(c);
	wait_count(fx, &fx->ngone, 1);
	assert_ptr_equal(fx->gone[0], app);
	run_for(fx, 50);
	assert_int_equal(fx->ngone, 1);
	assert_int_equal(appchan_ready_count(fx->chan), 0);
}

/* An app that stops reading is closed once it owes too much. */
static void
slow_reader_is_closed(void **state)
{
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	uint8_t payload[1000] = { 0 };
	struct client *c;
	struct app *app;

	start(fx);
	c = client_ready(fx, 1, 1024, &app);
	d.payload.data = payload;
	d.payload.len = sizeof payload;
	/* The core would never queue past the capacity; doing it here stands
	 * for anything the app fails to read. 2 MB is far more than the
	 * socket holds plus the (1 + 4) frames of 1024 bytes it may owe. */
	for (uint64_t i = 1; i <= 2000; i++) {
		d.id = i;
		assert_int_equal(appchan_send_delivery(app, &d), 0);
	}
	wait_count(fx, &fx->ngone, 1);
	assert_ptr_equal(fx->gone[0], app);
	client_free(c);
}

/* Connections over APPCHAN_MAX_CONNS are told why and closed. */
static void
connection_limit(void **state)
{
	struct fixture *fx = *state;
	struct client *c[APPCHAN_MAX_CONNS], *extra;
	struct rlimit rl;
	size_t n;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * APPCHAN_MAX_CONNS + 64) {
		rl.rlim_cur = rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	start(fx);
	for (n = 0; n < APPCHAN_MAX_CONNS; n++) {
		c[n] = client_new(fx);
		if (n % 64 == 63)
			run_for(fx, 5);
	}
	run_for(fx, 50);
	extra = client_new(fx);
	expect_error(
	    fx, extra, NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL, true);
	assert_true(client_closed(fx, extra));
	client_free(extra);

	/* Those within the limit still work, and a freed slot is reused. */
	send_hello(fx, c[0], 1, 1, 0, "first", NULL, 0);
	frame_free(client_expect(
	    fx, c[0], NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME));
	client_free(c[1]);
	run_for(fx, 20);
	extra = client_ready(fx, 1, 0, NULL);
	client_free(extra);
	client_free(c[0]);
	for (n = 2; n < APPCHAN_MAX_CONNS; n++)
		client_free(c[n]);
}

/* Freeing the channel raises no app_gone and removes the socket. */
static void
free_is_quiet(void **state)
{
	struct fixture *fx = *state;
	struct client *a, *b;

	start(fx);
	a = client_ready(fx, 1, 0, NULL);
	b = client_ready(fx, 1, 0, NULL);
	appchan_free(fx->chan);
	fx->chan = NULL;
	assert_int_equal(fx->ngone, 0);
	assert_int_equal(access(fx->path, F_OK), -1);
	client_poll(a);
	client_poll(b);
	assert_true(a->closed && b->closed);
	client_free(a);
	client_free(b);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(handshake_and_welcome),
		T(delivery_reaches_app_byte_exact),
		T(results_and_publishes_reach_the_core),
		T(malformed_frame_is_fatal),
		T(oversized_frame_is_fatal),
		T(second_hello_is_fatal),
		T(sidecar_only_frames_are_fatal),
		T(frame_before_hello_is_fatal),
		T(bad_hellos_are_fatal),
		T(bad_outcome_is_not_fatal),
		T(invalid_publishes_are_refused),
		T(errors_from_the_core),
		T(stale_socket_is_replaced),
		T(socket_in_use_is_refused),
		T(unusable_paths_are_refused),
		T(socket_mode_is_applied),
		T(oversized_delivery_is_refused),
		T(heartbeat_is_sent_when_idle),
		T(silent_app_is_dropped),
		T(silent_connection_is_dropped),
		T(drain_is_sent_and_accepting_stops),
		T(others_keep_working),
		T(closed_connection_is_gone_once),
		T(slow_reader_is_closed),
		T(connection_limit),
		T(free_is_quiet),
	};
#undef T

	return cmocka_run_group_tests_name("appchan", tests, NULL, NULL);
}
