/*
 * The client library against the daemon's own app channel: appchan on a
 * libev loop in a second thread (tests/harness/appserver.h), a real Unix
 * socket, and this thread as the app.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness/appserver.h"
#include "harness/cmocka.h"
#include "sidecar/appchan.h"
#include "sidecar/client/nsc.h"

#define WAIT_MS 3000
/* Heartbeat settings for tests about other things: out of the way. */
#define QUIET_HEARTBEAT_MS 10000
#define QUIET_DEAD_AFTER_MS 30000

typedef NatsSidecar__Channel__V1__Result Result;

struct fixture {
	struct appserver *srv;
	struct nsc *c;
	struct nsc_event ev;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	nsc_event_clear(&fx->ev);
	nsc_close(fx->c);
	appserver_free(fx->srv);
	free(fx);
	return 0;
}

static void
start(struct fixture *fx, uint32_t heartbeat_ms, uint32_t dead_after_ms)
{
	fx->srv = appserver_start(heartbeat_ms, dead_after_ms);
	assert_non_null(fx->srv);
}

/* Connects with |opts| and waits until the channel has the app ready. */
static void
connect_app(struct fixture *fx, const struct nsc_options *opts)
{
	size_t before = appserver_count(fx->srv, APPSERVER_READY);
	char *err = NULL;

	fx->c = nsc_connect(appserver_socket(fx->srv), opts, &err);
	if (fx->c == NULL)
		fail_msg("nsc_connect: %s", err);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_READY, before + 1, WAIT_MS), 0);
}

/* The next event, which must be of kind |kind|. */
static struct nsc_event *
expect_event(struct fixture *fx, enum nsc_event_kind kind)
{
	int rc = nsc_next(fx->c, WAIT_MS, &fx->ev);

	if (rc != NSC_NEXT_EVENT)
		fail_msg("nsc_next returned %d (%s), wanted event %d", rc,
		    nsc_last_error(fx->c), (int)kind);
	assert_int_equal(fx->ev.kind, kind);
	return &fx->ev;
}

/* Waits for nsc_next() to report the end of the connection. */
static void
expect_closed(struct fixture *fx, const char *why)
{
	long long until = now_ms() + WAIT_MS;
	int rc;

	do
		rc = nsc_next(fx->c, WAIT_MS, &fx->ev);
	while (rc == NSC_NEXT_TIMEOUT && now_ms() < until);
	if (rc != NSC_NEXT_CLOSED)
		fail_msg("nsc_next returned %d, wanted closed", rc);
	if (strstr(nsc_last_error(fx->c), why) == NULL)
		fail_msg("closed because \"%s\", wanted \"%s\"",
		    nsc_last_error(fx->c), why);
}

static void
deliver_simple(struct fixture *fx, uint64_t id)
{
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;

	d.id = id;
	d.subscription = "orders";
	d.subject = "orders.created.v1";
	d.attempt = 1;
	assert_int_equal(appserver_deliver(fx->srv, 0, &d), 0);
}

/* The handshake carries the app's description both ways. */
static void
handshake(void **state)
{
	static const char *const subs[] = { "orders", "payments", NULL };
	struct fixture *fx = *state;
	struct nsc_options opts = {
		.capacity = 3, .app_name = "worker-1", .subscriptions = subs
	};
	struct app *app;

	start(fx, 750, QUIET_DEAD_AFTER_MS);
	connect_app(fx, &opts);
	app = appserver_app(fx->srv, 0);
	assert_string_equal(app_name(app), "worker-1");
	assert_int_equal(app_capacity(app), 3);
	assert_true(app_serves(app, "orders"));
	assert_true(app_serves(app, "payments"));
	assert_false(app_serves(app, "audit"));
	assert_int_equal(nsc_heartbeat_ms(fx->c), 750);
	assert_string_equal(nsc_sidecar_version(fx->c), PACKAGE_VERSION);
	assert_string_equal(nsc_instance_id(fx->c), "test-instance");
	assert_string_equal(nsc_last_error(fx->c), "");
	assert_int_equal(nsc_next(fx->c, 0, &fx->ev), NSC_NEXT_TIMEOUT);
}

/* Without options the app serves everything, one delivery at a time. */
static void
default_options(void **state)
{
	struct fixture *fx = *state;
	struct app *app;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	app = appserver_app(fx->srv, 0);
	assert_string_equal(app_name(app), "");
	assert_int_equal(app_capacity(app), 1);
	assert_true(app_serves(app, "anything"));
}

/* Failures to connect say why, and within the time given. */
static void
connect_failures(void **state)
{
	struct fixture *fx = *state;
	struct nsc_options small = { .max_frame_size = 100 };
	struct nsc_options quick = { .handshake_timeout_ms = 200 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[160], *err = NULL;
	long long t0;
	int fd;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	snprintf(path, sizeof path, "%s.missing", appserver_socket(fx->srv));
	assert_null(nsc_connect(path, NULL, &err));
	assert_non_null(strstr(err, "cannot connect"));
	assert_non_null(strstr(err, path));
	free(err);

	/* The sidecar checks the hello and refuses it with a reason. */
	assert_null(nsc_connect(appserver_socket(fx->srv), &small, &err));
	assert_non_null(strstr(err, "refused"));
	assert_non_null(strstr(err, "max_frame_size"));
	free(err);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_READY), 0);

	/* A listener that never answers: connect() succeeds through the
	 * backlog, the welcome never comes. */
	snprintf(path, sizeof path, "%s.mute", appserver_socket(fx->srv));
	strcpy(sun.sun_path, path);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(listen(fd, 4), 0);
	t0 = now_ms();
	assert_null(nsc_connect(path, &quick, &err));
	assert_in_range(now_ms() - t0, 190, 2000);
	assert_non_null(strstr(err, "did not answer hello within 200 ms"));
	free(err);
	close(fd);
	unlink(path);

	/* |err| is optional. */
	assert_null(nsc_connect("", NULL, NULL));
}

/* Every field of a delivery arrives as sent, payload bytes included. */
static void
delivery_has_every_field(void **state)
{
	static const uint8_t payload[] = { '{', 0, 1, 0xff, '}' };
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	NatsSidecar__Channel__V1__Header h1 =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header h2 =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header h3 =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header *hv[] = { &h1, &h2, &h3 };
	const struct nsc_delivery *e;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	h1.name = "X-Tenant";
	h1.value = "acme";
	h2.name = "X-Tag";
	h2.value = "a";
	h3.name = "X-Tag";
	h3.value = "b";
	d.id = 77;
	d.subscription = "orders";
	d.subject = "orders.created.v1";
	d.headers = hv;
	d.n_headers = 3;
	d.payload.data = (uint8_t *)payload;
	d.payload.len = sizeof payload;
	d.content_type = "application/json";
	d.schema_version = "v1";
	d.attempt = 3;
	d.stream_sequence = 1234567890123ULL;
	d.message_id = "order-1";
	d.traceparent =
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	d.tracestate = "vendor=x";
	d.published_at_ns = 1700000000123456789LL;
	d.stream = "ORDERS";
	d.processing_timeout_ms = 30000;
	assert_int_equal(appserver_deliver(fx->srv, 0, &d), 0);

	e = &expect_event(fx, NSC_EVENT_DELIVERY)->delivery;
	assert_int_equal(e->id, 77);
	assert_string_equal(e->subscription, "orders");
	assert_string_equal(e->subject, "orders.created.v1");
	assert_int_equal(e->nheaders, 3);
	assert_string_equal(e->headers[0].name, "X-Tenant");
	assert_string_equal(e->headers[0].value, "acme");
	assert_string_equal(e->headers[1].name, "X-Tag");
	assert_string_equal(e->headers[1].value, "a");
	assert_string_equal(e->headers[2].name, "X-Tag");
	assert_string_equal(e->headers[2].value, "b");
	assert_int_equal(e->payload_len, sizeof payload);
	assert_memory_equal(e->payload, payload, sizeof payload);
	assert_string_equal(e->content_type, "application/json");
	assert_string_equal(e->schema_version, "v1");
	assert_int_equal(e->attempt, 3);
	assert_int_equal(e->stream_sequence, 1234567890123ULL);
	assert_string_equal(e->message_id, "order-1");
	assert_string_equal(e->traceparent, d.traceparent);
	assert_string_equal(e->tracestate, "vendor=x");
	assert_int_equal(e->published_at_ns, 1700000000123456789LL);
	assert_string_equal(e->stream, "ORDERS");
	assert_int_equal(e->processing_timeout_ms, 30000);
}

/* Deliveries sent together come out one per call, in order; absent
 * fields read as empty, never NULL. */
static void
deliveries_in_order(void **state)
{
	struct fixture *fx = *state;
	const struct nsc_delivery *e;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, &(struct nsc_options){ .capacity = 3 });
	for (uint64_t id = 1; id <= 3; id++)
		deliver_simple(fx, id);
	for (uint64_t id = 1; id <= 3; id++) {
		e = &expect_event(fx, NSC_EVENT_DELIVERY)->delivery;
		assert_int_equal(e->id, id);
		assert_int_equal(e->nheaders, 0);
		assert_int_equal(e->payload_len, 0);
		assert_non_null(e->payload);
		assert_string_equal(e->message_id, "");
		assert_string_equal(e->traceparent, "");
	}
	assert_int_equal(nsc_next(fx->c, 50, &fx->ev), NSC_NEXT_TIMEOUT);
	assert_int_equal(fx->ev.kind, NSC_EVENT_NONE);
}

/* Answers wait for nsc_flush(), then all four kinds reach the channel
 * with their fields. */
static void
answers_are_buffered_until_flush(void **state)
{
	struct fixture *fx = *state;
	const Result *r;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, &(struct nsc_options){ .capacity = 4 });
	for (uint64_t id = 1; id <= 4; id++)
		deliver_simple(fx, id);
	for (int i = 0; i < 4; i++)
		expect_event(fx, NSC_EVENT_DELIVERY);

	assert_int_equal(nsc_in_progress(fx->c, 1), 0);
	assert_int_equal(nsc_ack(fx->c, 1), 0);
	assert_int_equal(nsc_retry(fx->c, 2, 1500, "database down"), 0);
	assert_int_equal(nsc_reject(fx->c, 3, "bad order"), 0);
	assert_int_equal(nsc_retry(fx->c, 4, 0, NULL), 0);
	sleep_ms(100);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_RESULTS), 0);

	assert_int_equal(nsc_flush(fx->c), 0);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS, 5, WAIT_MS), 0);
	r = appserver_result(fx->srv, 0);
	assert_int_equal(r->id, 1);
	assert_int_equal(r->outcome,
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS);
	r = appserver_result(fx->srv, 1);
	assert_int_equal(r->id, 1);
	assert_int_equal(
	    r->outcome, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	r = appserver_result(fx->srv, 2);
	assert_int_equal(r->id, 2);
	assert_int_equal(
	    r->outcome, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY);
	assert_int_equal(r->retry_delay_ms, 1500);
	assert_string_equal(r->reason, "database down");
	r = appserver_result(fx->srv, 3);
	assert_int_equal(r->id, 3);
	assert_int_equal(
	    r->outcome, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT);
	assert_string_equal(r->reason, "bad order");
	r = appserver_result(fx->srv, 4);
	assert_int_equal(r->id, 4);
	assert_int_equal(r->retry_delay_ms, 0);
	assert_string_equal(r->reason, "");
	/* Nothing left to write. */
	assert_int_equal(nsc_flush(fx->c), 0);
}

/* nsc_next() writes what was queued while it waits. */
static void
next_writes_answers(void **state)
{
	struct fixture *fx = *state;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	deliver_simple(fx, 9);
	expect_event(fx, NSC_EVENT_DELIVERY);
	assert_int_equal(nsc_ack(fx->c, 9), 0);
	assert_int_equal(nsc_next(fx->c, 0, &fx->ev), NSC_NEXT_TIMEOUT);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS, 1, WAIT_MS), 0);
	assert_int_equal(appserver_result(fx->srv, 0)->id, 9);
}

/* A publish arrives with every field; its outcome comes back as an
 * event with every field. */
static void
publish_and_ack(void **state)
{
	static const uint8_t payload[] = { 'h', 0, 'i' };
	static const struct nsc_header hdrs[] = { { "X-Tenant", "acme" },
		{ "X-Empty", "" } };
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__PublishAck ack =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	const NatsSidecar__Channel__V1__Publish *p;
	const struct nsc_publish_ack *e;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	assert_int_equal(
	    nsc_publish(fx->c, 5, "orders.shipped.v1", hdrs, 2, payload,
		sizeof payload, "ship-1", "00-abc-def-01"),
	    0);
	assert_int_equal(nsc_flush(fx->c), 0);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_PUBLISHES, 1, WAIT_MS), 0);
	p = appserver_publish(fx->srv, 0);
	assert_int_equal(p->id, 5);
	assert_string_equal(p->subject, "orders.shipped.v1");
	assert_int_equal(p->n_headers, 2);
	assert_string_equal(p->headers[0]->name, "X-Tenant");
	assert_string_equal(p->headers[0]->value, "acme");
	assert_string_equal(p->headers[1]->name, "X-Empty");
	assert_string_equal(p->headers[1]->value, "");
	assert_int_equal(p->payload.len, sizeof payload);
	assert_memory_equal(p->payload.data, payload, sizeof payload);
	assert_string_equal(p->message_id, "ship-1");
	assert_string_equal(p->traceparent, "00-abc-def-01");

	ack.id = 5;
	ack.status = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK;
	ack.stream = "ORDERS";
	ack.sequence = 42;
	ack.duplicate = true;
	appserver_publish_ack(fx->srv, 0, &ack);
	e = &expect_event(fx, NSC_EVENT_PUBLISH_ACK)->publish_ack;
	assert_int_equal(e->id, 5);
	assert_int_equal(e->status, NSC_PUBLISH_OK);
	assert_string_equal(e->stream, "ORDERS");
	assert_int_equal(e->sequence, 42);
	assert_true(e->duplicate);
	assert_string_equal(e->error, "");

	/* Without optional parts; the channel itself refuses the subject. */
	assert_int_equal(
	    nsc_publish(fx->c, 6, "orders.*", NULL, 0, NULL, 0, NULL, NULL), 0);
	e = &expect_event(fx, NSC_EVENT_PUBLISH_ACK)->publish_ack;
	assert_int_equal(e->id, 6);
	assert_int_equal(e->status, NSC_PUBLISH_INVALID);
	assert_non_null(strstr(e->error, "wildcard"));
	assert_int_equal(appserver_count(fx->srv, APPSERVER_PUBLISHES), 1);
}

/* What cannot be sent is refused locally and the connection goes on. */
static void
publish_refused_locally(void **state)
{
	struct fixture *fx = *state;
	size_t big = 2 * 1024 * 1024;
	char *payload = calloc(1, big);

	assert_non_null(payload);
	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	assert_int_equal(nsc_publish(fx->c, 1, "orders.big", NULL, 0, payload,
			     big, NULL, NULL),
	    -1);
	assert_non_null(strstr(nsc_last_error(fx->c), "max_frame_size"));
	assert_int_equal(
	    nsc_publish(fx->c, 2, NULL, NULL, 0, NULL, 0, NULL, NULL), -1);
	assert_int_equal(
	    nsc_publish(fx->c, 3, "x", NULL, 1, NULL, 0, NULL, NULL), -1);
	free(payload);

	deliver_simple(fx, 1);
	expect_event(fx, NSC_EVENT_DELIVERY);
	assert_int_equal(nsc_ack(fx->c, 1), 0);
	assert_int_equal(nsc_flush(fx->c), 0);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS, 1, WAIT_MS), 0);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_PUBLISHES), 0);
}

/* An app waiting in nsc_next() is kept alive by its heartbeats, and the
 * sidecar's heartbeats raise no event; an app that stops calling it is
 * dropped as dead. */
static void
heartbeats(void **state)
{
	struct fixture *fx = *state;

	start(fx, 100, 350);
	connect_app(fx, NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(
		    nsc_next(fx->c, 250, &fx->ev), NSC_NEXT_TIMEOUT);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_GONE), 0);

	sleep_ms(700);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_GONE, 1, WAIT_MS), 0);
	expect_closed(fx, "the sidecar closed the connection");
}

/* A sidecar silent for three heartbeat intervals counts as gone. */
static void
silent_sidecar(void **state)
{
	struct fixture *fx = *state;
	long long t0;

	start(fx, 100, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	assert_int_equal(nsc_next(fx->c, 150, &fx->ev), NSC_NEXT_TIMEOUT);
	t0 = now_ms();
	appserver_stall(fx->srv, 1500);
	expect_closed(fx, "the sidecar sent nothing for");
	/* Silence counts from the last frame, up to an interval before t0. */
	assert_in_range(now_ms() - t0, 190, 1000);
	assert_int_equal(nsc_ack(fx->c, 1), -1);
}

/* Drain arrives as an event; answers still go through after it. */
static void
drain(void **state)
{
	struct fixture *fx = *state;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	deliver_simple(fx, 3);
	expect_event(fx, NSC_EVENT_DELIVERY);
	appserver_drain(fx->srv, 2500);
	assert_int_equal(
	    expect_event(fx, NSC_EVENT_DRAIN)->drain.grace_ms, 2500);
	assert_int_equal(nsc_ack(fx->c, 3), 0);
	assert_int_equal(nsc_flush(fx->c), 0);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS, 1, WAIT_MS), 0);
	assert_int_equal(appserver_result(fx->srv, 0)->id, 3);
}

/* Error frames become events; after a fatal one the connection ends
 * with its message as the reason. */
static void
errors(void **state)
{
	struct fixture *fx = *state;
	const struct nsc_error *e;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	appserver_error(fx->srv, 0,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNKNOWN_ID,
	    "no delivery 42 here", 42, false);
	e = &expect_event(fx, NSC_EVENT_ERROR)->error;
	assert_int_equal(e->code, NSC_ERROR_UNKNOWN_ID);
	assert_string_equal(e->message, "no delivery 42 here");
	assert_int_equal(e->ref_id, 42);
	assert_false(e->fatal);

	/* Still connected. */
	deliver_simple(fx, 1);
	expect_event(fx, NSC_EVENT_DELIVERY);

	appserver_error(fx->srv, 0,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL, "go away", 0,
	    true);
	e = &expect_event(fx, NSC_EVENT_ERROR)->error;
	assert_int_equal(e->code, NSC_ERROR_PROTOCOL);
	assert_true(e->fatal);
	expect_closed(fx, "the sidecar closed the connection: go away");
	assert_int_equal(nsc_ack(fx->c, 1), -1);
	assert_int_equal(nsc_flush(fx->c), -1);
	assert_int_equal(nsc_next(fx->c, 0, &fx->ev), NSC_NEXT_CLOSED);
}

/* The sidecar closing is reported once frames sent before are read, and
 * the event memory outlives the connection. */
static void
server_closes(void **state)
{
	struct fixture *fx = *state;
	struct nsc_event kept = NSC_EVENT_INIT;

	start(fx, QUIET_HEARTBEAT_MS, QUIET_DEAD_AFTER_MS);
	connect_app(fx, NULL);
	deliver_simple(fx, 8);
	appserver_close(fx->srv);
	assert_int_equal(nsc_next(fx->c, WAIT_MS, &kept), NSC_NEXT_EVENT);
	expect_closed(fx, "the sidecar closed the connection");
	assert_int_equal(kept.kind, NSC_EVENT_DELIVERY);
	assert_string_equal(kept.delivery.subject, "orders.created.v1");
	assert_int_equal(nsc_ack(fx->c, 8), -1);
	assert_string_equal(
	    nsc_last_error(fx->c), "the sidecar closed the connection");
	nsc_event_clear(&kept);
	assert_int_equal(kept.kind, NSC_EVENT_NONE);
	nsc_event_clear(&kept);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(handshake),
		T(default_options),
		T(connect_failures),
		T(delivery_has_every_field),
		T(deliveries_in_order),
		T(answers_are_buffered_until_flush),
		T(next_writes_answers),
		T(publish_and_ack),
		T(publish_refused_locally),
		T(heartbeats),
		T(silent_sidecar),
		T(drain),
		T(errors),
		T(server_closes),
	};
#undef T

	return cmocka_run_group_tests_name("nsc", tests, NULL, NULL);
}
