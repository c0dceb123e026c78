/*
 * The pipeline end to end, on the happy paths: a real nats-server, the
 * real daemon and the scriptable test app. Messages are delivered once
 * and acked; RETRY comes back after its delay with the next attempt;
 * IN_PROGRESS keeps long work from being redelivered; publishes from the
 * app get their PubAcks.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/fixture.h"
#include "harness/natsserver.h"
#include "harness/testjs.h"

static void
ten_thousand_delivered_once_and_acked(void **state)
{
	struct fixture *f = *state;
	enum { N = 10000 };
	static unsigned char seen[N + 1];
	struct testapp *app;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "ord", 1, N), 0);
	assert_non_null(fixture_start_daemon(f, "max_in_flight: 512", NULL));
	assert_non_null(app = testapp_start(
			    daemon_socket(f->d), "--capacity", "128", NULL));
	assert_int_equal(testapp_wait_for(app, "ack", N, 120000), 0);
	fixture_assert_settles(f);

	memset(seen, 0, sizeof seen);
	assert_int_equal(testapp_count(app, "delivery"), N);
	for (size_t i = 0; i < N; i++) {
		const struct testapp_event *e =
		    testapp_find(app, "delivery", i);
		unsigned long n =
		    strtoul(e->payload + strlen("order-"), NULL, 10);

		assert_true(n >= 1 && n <= N);
		assert_int_equal(seen[n], 0);
		seen[n] = 1;
		assert_int_equal(e->attempt, 1);
		assert_string_equal(e->subscription, "orders");
		assert_string_equal(e->subject, "orders.created.v1");
	}
	testapp_free(app);
}

static void
retry_comes_back_after_its_delay(void **state)
{
	struct fixture *f = *state;
	const struct testapp_event *retried, *acked;
	struct testapp *app;
	double t_retry, gap;

	assert_non_null(fixture_start_daemon(f, "retry_delay: 1500ms", NULL));
	assert_non_null(app = testapp_start(
			    daemon_socket(f->d), "--fail-first", "1", NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "retry", 1, 1),
	    0);
	assert_int_equal(testapp_wait_for(app, "retry", 1, 20000), 0);
	t_retry = fixture_now();
	assert_int_equal(testapp_wait_deliveries(app, 2, 20000), 0);
	gap = fixture_now() - t_retry;
	/* Not before the delay; the upper bound is loose (sanitizers). */
	if (gap < 1.4 || gap > 10)
		fail_msg("redelivered %.2f s after the RETRY, want 1.5 s", gap);
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	retried = testapp_find(app, "retry", 0);
	acked = testapp_find(app, "ack", 0);
	assert_int_equal(retried->attempt, 1);
	assert_int_equal(acked->attempt, 2);
	assert_string_equal(retried->message_id, "retry-1");
	assert_string_equal(acked->message_id, "retry-1");
	fixture_assert_settles(f);
	testapp_free(app);
}

static void
in_progress_outlives_ack_wait(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;

	/* 3.5 s of work against an AckWait of 1 s and a processing timeout
	 * of 1 s, kept alive by IN_PROGRESS every 300 ms. */
	assert_non_null(fixture_start_daemon(
	    f, "ack_wait: 1s\nprocessing_timeout: 1s", NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--sleep-ms",
			    "3500", "--in-progress-ms", "300", NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "slow", 1, 1), 0);
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	assert_int_equal(testapp_count(app, "delivery"), 1);
	assert_true(testapp_count(app, "in_progress") >= 5);
	assert_int_equal(testapp_find(app, "ack", 0)->attempt, 1);
	fixture_assert_settles(f);
	testapp_free(app);
}

static void
publish_gets_pub_acks(void **state)
{
	struct fixture *f = *state;
	const struct testapp_event *a, *b, *c;
	struct testapp *app;
	uint64_t n = 0;

	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	assert_int_equal(testapp_command(app,
			     "publish orders.paid.v1 pay-1 "
			     "{\"order_id\":\"o-1\"}"),
	    0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 1, 10000), 0);
	assert_int_equal(testapp_command(app,
			     "publish orders.paid.v1 pay-1 "
			     "{\"order_id\":\"o-1\"}"),
	    0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 2, 10000), 0);
	assert_int_equal(testapp_command(app, "publish nowhere.v1 - x"), 0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 3, 10000), 0);
	/* The JetStream API is not the app's to use. */
	assert_int_equal(
	    testapp_command(app, "publish $JS.API.STREAM.DELETE.ORDERS - {}"),
	    0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 4, 10000), 0);
	assert_string_equal(
	    testapp_find(app, "publish_ack", 3)->status, "INVALID");
	assert_int_equal(testjs_stream_msgs(f->js, "ORDERS", &n), 0);
	assert_int_equal(n, 1);

	a = testapp_find(app, "publish_ack", 0);
	b = testapp_find(app, "publish_ack", 1);
	c = testapp_find(app, "publish_ack", 2);
	assert_string_equal(a->status, "OK");
	assert_string_equal(a->stream, "ORDERS");
	assert_int_equal(a->sequence, 1);
	assert_false(a->duplicate);
	assert_string_equal(b->status, "OK");
	assert_int_equal(b->sequence, 1);
	assert_true(b->duplicate);
	assert_string_equal(c->status, "NO_STREAM");
	testapp_free(app);
}

/* publish_max_pending bounds the app's publishes waiting for a PubAck;
 * a subscriber that never answers holds them until their timeout. */
static void
publish_limit_counts_waiting_publishes(void **state)
{
	struct fixture *f = *state;
	struct daemon_subscription sub = {
		.name = "orders", .stream = "ORDERS", .durable = "orders-app"
	};
	struct daemon_config cfg = {
		.nats_url = natsserver_url(f->srv),
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info",
		.nats_yaml = "publish_max_pending: 2\npublish_timeout: 3s",
	};
	natsSubscription *silent = NULL;
	struct testapp *app;

	assert_int_equal(
	    natsConnection_SubscribeSync(&silent, testjs_conn(f->js), "hold.>"),
	    NATS_OK);
	assert_int_equal(natsConnection_Flush(testjs_conn(f->js)), NATS_OK);
	assert_non_null(f->d = daemon_start(&cfg));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	for (int i = 0; i < 3; i++)
		assert_int_equal(testapp_command(app, "publish hold.x - x"), 0);
	/* The third is refused at once; the first two wait. */
	assert_int_equal(testapp_wait_for(app, "publish_ack", 1, 2000), 0);
	assert_string_equal(
	    testapp_find(app, "publish_ack", 0)->status, "REJECTED");
	assert_int_equal(testapp_wait_for(app, "publish_ack", 3, 10000), 0);
	assert_string_equal(
	    testapp_find(app, "publish_ack", 1)->status, "TIMEOUT");
	assert_string_equal(
	    testapp_find(app, "publish_ack", 2)->status, "TIMEOUT");
	/* Nothing waits any more: the next one goes through. */
	assert_int_equal(testapp_command(app,
			     "publish orders.paid.v1 pay-9 "
			     "{\"order_id\":\"o-9\"}"),
	    0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 4, 10000), 0);
	assert_string_equal(testapp_find(app, "publish_ack", 3)->status, "OK");
	testapp_free(app);
	natsSubscription_Destroy(silent);
}

/* Messages of one key reach the app one at a time and in stream order,
 * while other keys go on in parallel. */
static void
serial_key_keeps_one_per_key_at_the_app(void **state)
{
	struct fixture *f = *state;
	static const char *const keys[] = { "A", "B", "C" };
	int next[3] = { 1, 1, 1 }, busy[3] = { 0, 0, 0 }, overlap = 0;
	struct testapp *app;
	size_t n;

	assert_non_null(
	    fixture_start_daemon(f, "serial_key: header:Order-Id", NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "10", "--sleep-ms", "50", NULL));
	for (int i = 1; i <= 5; i++) {
		for (int k = 0; k < 3; k++) {
			const char *hdrs[] = { "Order-Id", keys[k], NULL };
			char body[16];

			snprintf(body, sizeof body, "%s-%d", keys[k], i);
			assert_int_equal(
			    testjs_publish(f->js, "orders.created.v1", body,
				strlen(body), hdrs, NULL, NULL),
			    0);
		}
	}
	assert_int_equal(testapp_wait_for(app, "ack", 15, 30000), 0);
	n = testapp_poll(app);
	for (size_t i = 0; i < n; i++) {
		const struct testapp_event *e = testapp_event(app, i);
		int k, seq;

		if (strcmp(e->kind, "delivery") != 0 &&
		    strcmp(e->kind, "ack") != 0)
			continue;
		k = e->payload[0] - 'A';
		seq = atoi(e->payload + 2);
		if (strcmp(e->kind, "delivery") == 0) {
			assert_int_equal(seq, next[k]);
			overlap += busy[0] + busy[1] + busy[2] > 0;
			assert_int_equal(busy[k], 0);
			busy[k] = 1;
		} else {
			busy[k] = 0;
			next[k]++;
		}
	}
	for (int k = 0; k < 3; k++)
		assert_int_equal(next[k], 6);
	/* Different keys did overlap: serial per key, not overall. */
	assert_true(overlap > 0);
	fixture_assert_settles(f);
	testapp_free(app);
}

/* Acks so far of payloads starting with |first|. */
static size_t
acks_of(struct testapp *app, char first)
{
	size_t n = testapp_poll(app), acks = 0;

	for (size_t i = 0; i < n; i++) {
		const struct testapp_event *e = testapp_event(app, i);

		acks += strcmp(e->kind, "ack") == 0 && e->payload[0] == first;
	}
	return acks;
}

/*
 * A hot key's messages wait in the serial filter outside the window: the
 * messages of other keys behind them in the stream still come in and go
 * to the app, rather than waiting for the hot key's 200 turns (4 s).
 */
static void
hot_key_leaves_room_for_other_keys(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	size_t hot, others = 0;

	for (int i = 1; i <= 300; i++) {
		char key[16], body[16];
		const char *hdrs[] = { "Order-Id", key, NULL };

		snprintf(key, sizeof key, i <= 200 ? "hot" : "k%d", i);
		snprintf(body, sizeof body, "%c-%d", i <= 200 ? 'H' : 'O', i);
		assert_int_equal(testjs_publish(f->js, "orders.created.v1",
				     body, strlen(body), hdrs, NULL, NULL),
		    0);
	}
	assert_non_null(
	    fixture_start_daemon(f, "serial_key: header:Order-Id", NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "8", "--sleep-ms", "20", NULL));
	for (int i = 0; i < 2000 && others < 100; i++) {
		others = acks_of(app, 'O');
		fixture_sleep_ms(10);
	}
	hot = acks_of(app, 'H');
	printf("# hot key: %zu of 200 acked when the 100 others were\n", hot);
	assert_int_equal(others, 100);
	if (hot >= 100)
		fail_msg(
		    "the other keys waited for %zu of the hot key's 200", hot);
	assert_int_equal(testapp_wait_for(app, "ack", 300, 30000), 0);
	fixture_assert_settles(f);
	testapp_free(app);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    ten_thousand_delivered_once_and_acked, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    retry_comes_back_after_its_delay, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(in_progress_outlives_ack_wait,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    publish_gets_pub_acks, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    publish_limit_counts_waiting_publishes, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    serial_key_keeps_one_per_key_at_the_app, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    hot_key_leaves_room_for_other_keys, fixture_setup,
		    fixture_teardown),
	};

	return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
