/*
 * What the server gives up on: a message whose consumer reached its own
 * max_deliver while sidecars were killed holding it reaches the
 * dead-letter stream through the MAX_DELIVERIES advisory, exactly once,
 * with two sidecars running; advisories written by hand show the rest of
 * the path: a second copy is a duplicate, a message already gone and an
 * unreadable advisory are acked away, and a work-queue style deletion of
 * the original.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/fixture.h"
#include "harness/httpget.h"
#include "harness/natsserver.h"
#include "harness/promcheck.h"
#include "harness/testjs.h"
#include "sidecar/xmalloc.h"

#define CAPTURE "NATS_SIDECAR_ADVISORIES_ORDERS_orders-app"
#define ADVISORY_SUBJECT                                                       \
	"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.orders-app"

/* The capture stream's consumer has handled everything it was given. */
static void
assert_advisories_settle(struct fixture *f)
{
	uint64_t pending = 1, ack_pending = 1;

	for (int i = 0; i < 200 && (pending | ack_pending) != 0; i++) {
		if (testjs_consumer_pending(f->js, CAPTURE, "nats-sidecar",
			&pending, &ack_pending) == -1)
			pending = 1;
		fixture_sleep_ms(50);
	}
	assert_int_equal(pending, 0);
	assert_int_equal(ack_pending, 0);
}

/* The capture stream takes exactly the advisory subject of "orders". */
static void
assert_capture_subjects(struct fixture *f)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;

	assert_int_equal(
	    js_GetStreamInfo(&si, testjs_ctx(f->js), CAPTURE, NULL, &jerr),
	    NATS_OK);
	assert_int_equal(si->Config->SubjectsLen, 1);
	assert_string_equal(si->Config->Subjects[0], ADVISORY_SUBJECT);
	assert_int_equal(si->Config->Retention, js_LimitsPolicy);
	assert_int_equal(si->Config->Storage, js_FileStorage);
	assert_true(si->Config->MaxAge == INT64_C(7) * 24 * 3600 * 1000000000);
	jsStreamInfo_Destroy(si);
}

/* nats_sidecar_dead_letters_total for max_deliveries_advisory in the
 * daemon's /metrics now. */
static double
advisory_dead_letters(struct daemon *d)
{
	char *body = NULL;
	double v = -1;

	assert_int_equal(httpget(daemon_http_port(d), "/metrics", &body), 200);
	assert_int_equal(promcheck_value(body,
			     "nats_sidecar_dead_letters_total{subscription=\""
			     "orders\",reason=\"max_deliveries_advisory\"}",
			     &v),
	    0);
	free(body);
	return v;
}

static const char given_up_sub[] = "max_attempts: 1\n"
				   "max_deliver: 3\n"
				   "ack_wait: 1s\n"
				   "processing_timeout: 2m\n"
				   "filters:\n"
				   "  - deadletter: {stream: DLQ}";

static void
given_up_message_is_dead_lettered_once(void **state)
{
	struct fixture *f = *state;
	const char *hdrs[] = { "Nats-Msg-Id", "ord-7", "X-Tenant", "acme",
		NULL };
	struct daemon_subscription sub = {
		.name = "orders",
		.stream = "ORDERS",
		.durable = "orders-app",
		.yaml = given_up_sub,
	};
	struct daemon_config cfg = {
		.nats_url = natsserver_url(f->srv),
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info",
	};
	struct daemon *second;
	struct testapp *app;
	uint64_t pending = 0, ack_pending = 0;
	const char *published = NULL;
	natsMsg *m = NULL;
	size_t watching;

	/* Each run holds the message at a hung app until it is killed; the
	 * third delivery is the consumer's last. */
	for (uint32_t run = 1; run <= 3; run++) {
		if (run == 1)
			assert_non_null(
			    fixture_start_daemon(f, given_up_sub, NULL));
		else
			assert_int_equal(daemon_restart(f->d), 0);
		assert_non_null(app = testapp_start(daemon_socket(f->d),
				    "--mode", "hang", NULL));
		/* The capture stream is there before anything is given up. */
		if (run == 1)
			assert_int_equal(
			    daemon_log_wait(f->d, "advisory.stream", 1, 20000),
			    0);
		if (run == 1)
			assert_int_equal(
			    testjs_publish(f->js, "orders.created.v1",
				"{\"order_id\":\"o-7\"}", 18, hdrs, NULL, NULL),
			    0);
		assert_int_equal(testapp_wait_deliveries(app, 1, 20000), 0);
		assert_int_equal(
		    testapp_find(app, "delivery", 0)->attempt, run);
		assert_int_equal(daemon_kill(f->d), 0);
		testapp_free(app);
	}
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 0);

	/* Two sidecars pull again, both on the shared capture consumer; the
	 * server gives the message up.  A killed run may not have got as far
	 * as watching, so count from what the runs left. */
	watching = daemon_log_count(f->d, "advisory.watching");
	assert_int_equal(daemon_restart(f->d), 0);
	assert_non_null(second = daemon_start(&cfg));
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.watching", watching + 1, 20000), 0);
	assert_int_equal(
	    daemon_log_wait(second, "advisory.watching", 1, 20000), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_sleep_ms(2000);
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 1);
	assert_int_equal(daemon_log_count(f->d, "advisory.dead_lettered") +
		daemon_log_count(second, "advisory.dead_lettered"),
	    1);
	assert_true(
	    advisory_dead_letters(f->d) + advisory_dead_letters(second) == 1);
	assert_int_equal(fixture_stream_msgs(f, CAPTURE), 1);
	assert_advisories_settle(f);
	assert_capture_subjects(f);
	/* The server no longer delivers it: nothing is left for anyone. */
	assert_int_equal(testjs_consumer_pending(f->js, "ORDERS", "orders-app",
			     &pending, &ack_pending),
	    0);
	assert_int_equal(pending, 0);
	assert_int_equal(ack_pending, 0);

	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	assert_int_equal(natsMsg_GetDataLength(m), 18);
	assert_memory_equal(natsMsg_GetData(m), "{\"order_id\":\"o-7\"}", 18);
	fixture_assert_dead_letter(m, "max_deliveries_advisory", "3", "ord-7");
	/* The stored time, read from STREAM.MSG.GET (0 would be 1970). */
	assert_int_equal(
	    natsMsgHeader_Get(m, "Nats-Sidecar-Published", &published),
	    NATS_OK);
	assert_true(strncmp(published, "1970", 4) != 0);
	fixture_assert_header(m, "Nats-Sidecar-Original-X-Tenant", "acme");
	natsMsg_Destroy(m);

	/* Clean exits: nothing leaks on the advisory path. */
	assert_int_equal(daemon_signal(second, SIGTERM), 0);
	assert_int_equal(daemon_wait(second, 20000), 0);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	daemon_free(second);
}

/* Publishes an advisory as the server would, for message |seq|. */
static void
forge(struct fixture *f, const char *body)
{
	assert_int_equal(natsConnection_PublishString(
			     testjs_conn(f->js), ADVISORY_SUBJECT, body),
	    NATS_OK);
	assert_int_equal(natsConnection_Flush(testjs_conn(f->js)), NATS_OK);
}

static void
forge_for(struct fixture *f, uint64_t seq, uint64_t deliveries)
{
	char body[512];

	snprintf(body, sizeof body,
	    "{\"type\":\"io.nats.jetstream.advisory.v1.max_deliver\","
	    "\"id\":\"x\",\"timestamp\":\"2026-12-03T00:00:00Z\","
	    "\"stream\":\"ORDERS\",\"consumer\":\"orders-app\","
	    "\"stream_seq\":%llu,\"deliveries\":%llu}",
	    (unsigned long long)seq, (unsigned long long)deliveries);
	forge(f, body);
}

/* The subscription consumes only a subject nothing is published to, so
 * the messages stay in the stream for the advisories to find. */
static struct daemon *
start_idle_daemon(struct fixture *f, const char *filters)
{
	char *sub = xasprintf("filter_subject: orders.none\n%s", filters);

	assert_non_null(
	    fixture_start_daemon(f, sub, "advisories: {retry_delay: 200ms}"));
	free(sub);
	assert_int_equal(daemon_log_wait(f->d, "consumer.bound", 2, 20000), 0);
	return f->d;
}

static void
advisories_by_hand(void **state)
{
	struct fixture *f = *state;
	natsMsg *m = NULL;

	start_idle_daemon(f, "filters:\n  - deadletter: {stream: DLQ}");
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", "first", 5,
			     NULL, NULL, NULL),
	    0);
	forge_for(f, 1, 9);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	/* The same advisory again: the copy is a duplicate. */
	forge_for(f, 1, 9);
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.dead_lettered", 2, 20000), 0);
	/* A message that is not there, and something not an advisory. */
	forge_for(f, 42, 3);
	forge(f,
	    "{\"type\":\"io.nats.jetstream.advisory.v1.max_deliver\","
	    "\"stream\":\"ORDERS\"}");
	forge(f, "not json");
	/* On the subject of orders-app, but naming another consumer. */
	forge(f,
	    "{\"type\":\"io.nats.jetstream.advisory.v1.max_deliver\","
	    "\"stream\":\"ORDERS\",\"consumer\":\"billing\","
	    "\"stream_seq\":1,\"deliveries\":9}");
	assert_int_equal(daemon_log_wait(f->d, "advisory.gone", 1, 20000), 0);
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.invalid", 3, 20000), 0);
	assert_advisories_settle(f);
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 1);
	assert_int_equal(daemon_log_count(f->d, "advisory.dead_lettered"), 2);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	fixture_assert_header(
	    m, "Nats-Sidecar-Reason", "max_deliveries_advisory");
	fixture_assert_header(m, "Nats-Sidecar-Deliveries", "9");
	assert_int_equal(natsMsg_GetDataLength(m), 5);
	natsMsg_Destroy(m);
	/* A limits stream keeps its original unless told otherwise. */
	assert_int_equal(fixture_stream_msgs(f, "ORDERS"), 1);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
}

static void
delete_original_after_the_copy(void **state)
{
	struct fixture *f = *state;

	start_idle_daemon(f,
	    "max_attempts: 1\n"
	    "max_deliver: 3\n"
	    "filters:\n"
	    "  - deadletter: {stream: DLQ, delete_original: "
	    "true}");
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", "first", 5,
			     NULL, NULL, NULL),
	    0);
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", "second", 6,
			     NULL, NULL, NULL),
	    0);
	forge_for(f, 1, 4);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.dead_lettered", 1, 20000), 0);
	assert_int_equal(fixture_stream_msgs(f, "ORDERS"), 1);
	/* Once deleted, a second advisory finds nothing to copy. */
	forge_for(f, 1, 4);
	assert_int_equal(daemon_log_wait(f->d, "advisory.gone", 1, 20000), 0);
	/* One claiming fewer deliveries than max_deliver is stale or
	 * forged: the copy is made, the original kept. */
	forge_for(f, 2, 1);
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.delete_refused", 1, 20000), 0);
	fixture_wait_stream_msgs(f, "DLQ", 2);
	assert_advisories_settle(f);
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 2);
	assert_int_equal(fixture_stream_msgs(f, "ORDERS"), 1);
}

/* Nowhere to put the dead letter yet: the advisory is kept and retried,
 * and the message dead-lettered once a stream captures dlq.>; the trace
 * context travels with it. */
static void
dead_letter_stream_missing_keeps_the_advisory(void **state)
{
	struct fixture *f = *state;
	static const char *const dlq_subjects[] = { "dlq.>", NULL };
	const char tp[] =
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	const char *hdrs[] = { "traceparent", tp, NULL };
	natsMsg *m = NULL;

	start_idle_daemon(f, "filters:\n  - deadletter: {}");
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", "first", 5,
			     hdrs, NULL, NULL),
	    0);
	forge_for(f, 1, 9);
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.dead_letter_failed", 2, 20000), 0);
	assert_int_equal(daemon_log_count(f->d, "advisory.dead_lettered"), 0);
	assert_int_equal(testjs_add_stream(f->js, "DLQ", dlq_subjects), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	assert_int_equal(
	    daemon_log_wait(f->d, "advisory.dead_lettered", 1, 20000), 0);
	assert_advisories_settle(f);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	fixture_assert_header(
	    m, "Nats-Sidecar-Reason", "max_deliveries_advisory");
	fixture_assert_header(m, "traceparent", tp);
	natsMsg_Destroy(m);
	assert_int_equal(fixture_stream_msgs(f, "ORDERS"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    given_up_message_is_dead_lettered_once, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    advisories_by_hand, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(delete_original_after_the_copy,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    dead_letter_stream_missing_keeps_the_advisory,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests_name("advisory", tests, NULL, NULL);
}
