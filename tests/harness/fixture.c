#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmocka.h"
#include "daemon.h"
#include "fixture.h"
#include "natsserver.h"
#include "testjs.h"

static const char *const order_subjects[] = { "orders.>", NULL };

int
fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL || (f->srv = natsserver_start(NULL)) == NULL ||
	    (f->js = testjs_connect(natsserver_url(f->srv))) == NULL ||
	    testjs_add_stream(f->js, "ORDERS", order_subjects) == -1)
		return -1;
	*state = f;
	return 0;
}

int
fixture_teardown(void **state)
{
	struct fixture *f = *state;

	daemon_free(f->d);
	testjs_free(f->js);
	natsserver_free(f->srv);
	free(f);
	return 0;
}

struct daemon *
fixture_start_daemon(struct fixture *f, const char *sub_yaml, const char *yaml)
{
	struct daemon_subscription sub = {
		.name = "orders",
		.stream = "ORDERS",
		.durable = "orders-app",
		.yaml = sub_yaml,
	};
	struct daemon_config cfg = {
		.nats_url = natsserver_url(f->srv),
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info",
		.yaml = yaml,
	};

	return f->d = daemon_start(&cfg);
}

void
fixture_assert_settles(struct fixture *f)
{
	uint64_t pending = 1, ack_pending = 1;

	for (int i = 0; i < 200 && (pending | ack_pending) != 0; i++) {
		if (testjs_consumer_pending(f->js, "ORDERS", "orders-app",
			&pending, &ack_pending) == -1)
			pending = 1;
		fixture_sleep_ms(50);
	}
	assert_int_equal(pending, 0);
	assert_int_equal(ack_pending, 0);
}

void
fixture_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

double
fixture_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t
fixture_stream_msgs(struct fixture *f, const char *stream)
{
	uint64_t n = 0;

	if (testjs_stream_msgs(f->js, stream, &n) == -1)
		return 0;
	return n;
}

void
fixture_wait_stream_msgs(struct fixture *f, const char *stream, uint64_t n)
{
	for (int i = 0; i < 400 && fixture_stream_msgs(f, stream) < n; i++)
		fixture_sleep_ms(50);
	assert_int_equal(fixture_stream_msgs(f, stream), n);
}

void
fixture_assert_header(natsMsg *m, const char *name, const char *want)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, name, &v) != NATS_OK)
		fail_msg("no header %s on the message", name);
	if (want != NULL && strcmp(v, want) != 0)
		fail_msg("header %s is \"%s\", want \"%s\"", name, v, want);
}

void
fixture_assert_dead_letter(
    natsMsg *m, const char *reason, const char *deliveries, const char *msg_id)
{
	assert_string_equal(natsMsg_GetSubject(m), "dlq.orders.created.v1");
	fixture_assert_header(m, "Nats-Sidecar-Reason", reason);
	fixture_assert_header(m, "Nats-Sidecar-Reason-Text", NULL);
	fixture_assert_header(m, "Nats-Sidecar-Subject", "orders.created.v1");
	fixture_assert_header(m, "Nats-Sidecar-Stream", "ORDERS");
	fixture_assert_header(m, "Nats-Sidecar-Sequence", "1");
	fixture_assert_header(m, "Nats-Sidecar-Consumer", "orders-app");
	fixture_assert_header(m, "Nats-Sidecar-Deliveries", deliveries);
	fixture_assert_header(m, "Nats-Sidecar-Published", NULL);
	fixture_assert_header(m, "Nats-Sidecar-Failed", NULL);
	fixture_assert_header(m, "Nats-Sidecar-Instance", NULL);
	fixture_assert_header(m, "Nats-Msg-Id", "dlq:ORDERS:1");
	fixture_assert_header(m, "Nats-Sidecar-Original-Nats-Msg-Id", msg_id);
}
