/*
 * The scriptable test app and its driver (tests/harness/testapp.c,
 * tests/harness/app.h) against the daemon's own app channel run in this
 * process: every behaviour the integration tests rely on, seen from the
 * sidecar's side and in the app's event log.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/app.h"
#include "harness/appserver.h"
#include "harness/cmocka.h"
#include "harness/proc.h"
#include "sidecar/appchan.h"

#define WAIT_MS 5000

typedef NatsSidecar__Channel__V1__Result Result;

enum {
	ACK = NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK,
	RETRY = NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY,
	REJECT = NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT,
	IN_PROGRESS = NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS,
};

struct fixture {
	struct appserver *srv;
	struct testapp *app;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	fx->srv = appserver_start(200, 2000);
	*state = fx;
	return fx->srv != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	testapp_free(fx->app);
	appserver_free(fx->srv);
	free(fx);
	return 0;
}

/* Starts the app with |arg|..., NULL-terminated, and waits until the
 * channel has it ready. */
#define START(fx, ...)                                                         \
	do {                                                                   \
		(fx)->app = testapp_start(                                     \
		    appserver_socket((fx)->srv), __VA_ARGS__, NULL);           \
		assert_non_null((fx)->app);                                    \
		assert_int_equal(                                              \
		    appserver_wait((fx)->srv, APPSERVER_READY, 1, WAIT_MS),    \
		    0);                                                        \
	} while (0)

static void
deliver(struct fixture *fx, uint64_t id, uint32_t attempt, const char *payload)
{
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;

	d.id = id;
	d.subscription = "orders";
	d.subject = "orders.created.v1";
	d.payload.data = (uint8_t *)payload;
	d.payload.len = strlen(payload);
	d.attempt = attempt;
	d.stream_sequence = 100 + id;
	assert_int_equal(appserver_deliver(fx->srv, 0, &d), 0);
}

/* The |i|th result, once it came: |id| with |outcome|. */
static const Result *
expect_result(struct fixture *fx, size_t i, uint64_t id, int outcome)
{
	const Result *r;

	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS, i + 1, WAIT_MS), 0);
	r = appserver_result(fx->srv, i);
	if (r->id != id || (int)r->outcome != outcome)
		fail_msg("result %zu is %llu/%d, wanted %llu/%d", i,
		    (unsigned long long)r->id, (int)r->outcome,
		    (unsigned long long)id, outcome);
	return r;
}

/* Deliveries and answers are logged with every field, escaped where
 * needed; the hello carries name and capacity. */
static void
logs_every_field(void **state)
{
	static const char payload[] = "a\tb\\c\nd\x01\xc3\xa9";
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	NatsSidecar__Channel__V1__Header h =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header *hv[] = { &h, &h };
	const struct testapp_event *ev;
	struct app *app;

	START(fx, "--capacity", "2", "--name", "logger");
	app = appserver_app(fx->srv, 0);
	assert_string_equal(app_name(app), "logger");
	assert_int_equal(app_capacity(app), 2);
	ev = testapp_find(fx->app, "connected", 0);
	assert_non_null(ev);
	assert_string_equal(ev->fields[0], "200");
	assert_string_equal(ev->fields[2], "test-instance");

	h.name = "X-A";
	h.value = "1";
	d.id = 41;
	d.subscription = "orders";
	d.subject = "orders.created.v1";
	d.headers = hv;
	d.n_headers = 2;
	d.payload.data = (uint8_t *)payload;
	d.payload.len = sizeof payload - 1;
	d.attempt = 4;
	d.stream_sequence = 9000000001ULL;
	d.message_id = "m-41";
	d.traceparent = "00-11-22-01";
	assert_int_equal(appserver_deliver(fx->srv, 0, &d), 0);
	expect_result(fx, 0, 41, ACK);
	assert_int_equal(testapp_wait_for(fx->app, "ack", 1, WAIT_MS), 0);

	for (size_t i = 0; i < 2; i++) {
		ev = testapp_find(fx->app, i == 0 ? "delivery" : "ack", 0);
		assert_non_null(ev);
		assert_int_equal(ev->id, 41);
		assert_string_equal(ev->subscription, "orders");
		assert_string_equal(ev->subject, "orders.created.v1");
		assert_int_equal(ev->attempt, 4);
		assert_int_equal(ev->stream_sequence, 9000000001ULL);
		assert_string_equal(ev->message_id, "m-41");
		assert_int_equal(ev->payload_len, sizeof payload - 1);
		assert_memory_equal(ev->payload, payload, sizeof payload - 1);
		assert_int_equal(ev->nheaders, 2);
		assert_string_equal(ev->traceparent, "00-11-22-01");
	}
}

/* A sleeping app works on deliveries concurrently up to its capacity,
 * sending IN_PROGRESS while it sleeps. */
static void
sleeps_concurrently(void **state)
{
	struct fixture *fx = *state;
	size_t progress[4] = { 0 }, acked[4] = { 0 };
	int64_t t0;

	START(fx, "--capacity", "3", "--sleep-ms", "600", "--in-progress-ms",
	    "150");
	t0 = proc_now_ms();
	for (uint64_t id = 1; id <= 3; id++)
		deliver(fx, id, 1, "x");
	assert_int_equal(testapp_wait_for(fx->app, "ack", 3, WAIT_MS), 0);
	/* One after the other would take 1.8 s. */
	assert_in_range(proc_now_ms() - t0, 550, 1500);
	/* The app logs an answer as it sends it: let the server read all. */
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS,
		testapp_count(fx->app, "in_progress") + 3, WAIT_MS),
	    0);
	for (size_t i = 0; i < appserver_count(fx->srv, APPSERVER_RESULTS);
	     i++) {
		const Result *r = appserver_result(fx->srv, i);

		assert_in_range(r->id, 1, 3);
		/* Nothing follows the final answer. */
		assert_int_equal(acked[r->id], 0);
		if ((int)r->outcome == IN_PROGRESS)
			progress[r->id]++;
		else {
			assert_int_equal(r->outcome, ACK);
			acked[r->id]++;
		}
	}
	for (int id = 1; id <= 3; id++) {
		assert_int_equal(acked[id], 1);
		assert_in_range(progress[id], 2, 4);
	}
	assert_int_equal(testapp_count(fx->app, "in_progress"),
	    progress[1] + progress[2] + progress[3]);
}

/* --fail-first retries early attempts with the configured delay. */
static void
fails_first_attempts(void **state)
{
	struct fixture *fx = *state;
	const Result *r;

	START(fx, "--fail-first", "2", "--retry-delay-ms", "1234");
	deliver(fx, 1, 1, "x");
	r = expect_result(fx, 0, 1, RETRY);
	assert_int_equal(r->retry_delay_ms, 1234);
	assert_string_not_equal(r->reason, "");
	deliver(fx, 2, 2, "x");
	expect_result(fx, 1, 2, RETRY);
	deliver(fx, 3, 3, "x");
	expect_result(fx, 2, 3, ACK);
	assert_int_equal(testapp_wait_for(fx->app, "retry", 2, WAIT_MS), 0);
}

/* A payload holding the poison string is rejected, others acked. */
static void
rejects_poison(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--reject-if-payload-contains", "poison");
	deliver(fx, 1, 1, "{\"x\":\"poison\"}");
	expect_result(fx, 0, 1, REJECT);
	deliver(fx, 2, 1, "{\"x\":\"fine\"}");
	expect_result(fx, 1, 2, ACK);
	assert_int_equal(testapp_count(fx->app, "reject"), 1);
}

/* Commands change how later deliveries are answered. */
static void
commands_change_mode(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--capacity", "4");
	assert_int_equal(testapp_command(fx->app, "mode retry"), 0);
	deliver(fx, 1, 1, "x");
	expect_result(fx, 0, 1, RETRY);
	assert_int_equal(testapp_command(fx->app, "mode reject"), 0);
	deliver(fx, 2, 1, "x");
	expect_result(fx, 1, 2, REJECT);
	assert_int_equal(testapp_command(fx->app, "mode hang"), 0);
	deliver(fx, 3, 1, "x");
	assert_int_equal(testapp_wait_deliveries(fx->app, 3, WAIT_MS), 0);
	assert_int_equal(testapp_command(fx->app, "mode ack"), 0);
	assert_int_equal(testapp_command(fx->app, "sleep 300"), 0);
	deliver(fx, 4, 1, "x");
	assert_int_equal(testapp_wait_deliveries(fx->app, 4, WAIT_MS), 0);
	proc_sleep_ms(150);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_RESULTS), 2);
	/* The hung delivery is never answered; the sleeping one is. */
	expect_result(fx, 2, 4, ACK);
	proc_sleep_ms(300);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_RESULTS), 3);
	assert_non_null(testapp_find(fx->app, "command", 4));
	assert_string_equal(
	    testapp_find(fx->app, "command", 4)->fields[0], "sleep 300");
}

/* "publish" sends a Publish; its PublishAck is logged. */
static void
publishes(void **state)
{
	struct fixture *fx = *state;
	NatsSidecar__Channel__V1__PublishAck ack =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	const NatsSidecar__Channel__V1__Publish *p;
	const struct testapp_event *ev;

	START(fx, "--name", "pub");
	assert_int_equal(testapp_command(fx->app,
			     "publish orders.shipped.v1 s-1 hello world"),
	    0);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_PUBLISHES, 1, WAIT_MS), 0);
	p = appserver_publish(fx->srv, 0);
	assert_string_equal(p->subject, "orders.shipped.v1");
	assert_string_equal(p->message_id, "s-1");
	assert_int_equal(p->payload.len, 11);
	assert_memory_equal(p->payload.data, "hello world", 11);
	ev = testapp_find(fx->app, "publish", 0);
	assert_non_null(ev);
	assert_int_equal(ev->id, p->id);

	ack.id = p->id;
	ack.status = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK;
	ack.stream = "ORDERS";
	ack.sequence = 12;
	ack.duplicate = true;
	appserver_publish_ack(fx->srv, 0, &ack);
	assert_int_equal(
	    testapp_wait_for(fx->app, "publish_ack", 1, WAIT_MS), 0);
	ev = testapp_find(fx->app, "publish_ack", 0);
	assert_int_equal(ev->id, p->id);
	assert_string_equal(ev->status, "OK");
	assert_string_equal(ev->stream, "ORDERS");
	assert_int_equal(ev->sequence, 12);
	assert_true(ev->duplicate);
	assert_string_equal(ev->error, "");

	/* Without a message id; the channel refuses the subject. */
	assert_int_equal(
	    testapp_command(fx->app, "publish bad..subject - x"), 0);
	assert_int_equal(
	    testapp_wait_for(fx->app, "publish_ack", 2, WAIT_MS), 0);
	ev = testapp_find(fx->app, "publish_ack", 1);
	assert_string_equal(ev->status, "INVALID");
	assert_non_null(strstr(ev->error, "empty token"));
}

/* --crash-after dies by SIGKILL on the Nth delivery, unanswered. */
static void
crashes_after(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--crash-after", "2", "--capacity", "2");
	deliver(fx, 1, 1, "x");
	expect_result(fx, 0, 1, ACK);
	deliver(fx, 2, 1, "x");
	assert_int_equal(testapp_wait(fx->app, WAIT_MS), 128 + SIGKILL);
	assert_int_equal(testapp_count(fx->app, "delivery"), 2);
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_GONE, 1, WAIT_MS), 0);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_RESULTS), 1);
}

/* "crash" and testapp_kill() kill it; "quit" closes cleanly. */
static void
crash_kill_and_quit(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--name", "a");
	assert_int_equal(testapp_command(fx->app, "crash"), 0);
	assert_int_equal(testapp_wait(fx->app, WAIT_MS), 128 + SIGKILL);
	testapp_free(fx->app);

	fx->app = testapp_start(appserver_socket(fx->srv), NULL);
	assert_non_null(fx->app);
	assert_int_equal(testapp_kill(fx->app), 0);
	assert_int_equal(testapp_kill(fx->app), -1);
	testapp_free(fx->app);

	fx->app = testapp_start(appserver_socket(fx->srv), NULL);
	assert_non_null(fx->app);
	assert_int_equal(testapp_stop(fx->app, WAIT_MS), 0);
	assert_string_equal(
	    testapp_find(fx->app, "closed", 0)->fields[0], "quit");
	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_GONE, 3, WAIT_MS), 0);
}

/* --exit-after closes cleanly once N ACKs are written. */
static void
exits_after(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--exit-after", "2", "--capacity", "2");
	deliver(fx, 1, 1, "x");
	deliver(fx, 2, 1, "x");
	assert_int_equal(testapp_wait(fx->app, WAIT_MS), 0);
	expect_result(fx, 0, 1, ACK);
	expect_result(fx, 1, 2, ACK);
	assert_string_equal(
	    testapp_find(fx->app, "closed", 0)->fields[0], "exit-after");
}

/* On drain the app answers what it holds, then exits 0. */
static void
drains(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--sleep-ms", "300");
	deliver(fx, 1, 1, "x");
	assert_int_equal(testapp_wait_deliveries(fx->app, 1, WAIT_MS), 0);
	appserver_drain(fx->srv, 5000);
	assert_int_equal(testapp_wait(fx->app, WAIT_MS), 0);
	expect_result(fx, 0, 1, ACK);
	assert_string_equal(
	    testapp_find(fx->app, "drain", 0)->fields[0], "5000");
	assert_string_equal(
	    testapp_find(fx->app, "closed", 0)->fields[0], "drained");
}

/* A hung app waits out the drain until the sidecar closes (status 0);
 * losing the sidecar without a drain is status 1. */
static void
hangs_through_drain(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--mode", "hang");
	deliver(fx, 1, 1, "x");
	assert_int_equal(testapp_wait_deliveries(fx->app, 1, WAIT_MS), 0);
	appserver_drain(fx->srv, 5000);
	assert_int_equal(testapp_wait_for(fx->app, "drain", 1, WAIT_MS), 0);
	assert_int_equal(testapp_wait(fx->app, 300), -1);
	appserver_close(fx->srv);
	assert_int_equal(testapp_wait(fx->app, WAIT_MS), 0);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_RESULTS), 0);
}

static void
lost_sidecar(void **state)
{
	struct fixture *fx = *state;

	START(fx, "--name", "b");
	appserver_close(fx->srv);
	assert_int_equal(testapp_wait(fx->app, WAIT_MS), 1);
	assert_non_null(strstr(testapp_find(fx->app, "closed", 0)->fields[0],
	    "closed the connection"));
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(logs_every_field),
		T(sleeps_concurrently),
		T(fails_first_attempts),
		T(rejects_poison),
		T(commands_change_mode),
		T(publishes),
		T(crashes_after),
		T(crash_kill_and_quit),
		T(exits_after),
		T(drains),
		T(hangs_through_drain),
		T(lost_sidecar),
	};
#undef T

	return cmocka_run_group_tests_name("testapp", tests, NULL, NULL);
}
