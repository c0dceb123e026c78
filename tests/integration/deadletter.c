/*
 * Retries with backoff and the dead-letter stream: a message failed every
 * time is delivered exactly max_attempts times, the gaps following the
 * schedule, then stored in the dead-letter stream with its full context
 * and terminated; a poison message does not hold up the others; when the
 * dead-letter stream is missing the original is kept until it exists.
 */
#include <sys/wait.h>

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
exhausted_message_is_dead_lettered_with_context(void **state)
{
	struct fixture *f = *state;
	const char *hdrs[] = { "Nats-Msg-Id", "ord-1", "X-Tenant", "acme",
		"traceparent",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Nats-Expected-Last-Subject-Sequence", "0", NULL };
	double at[3];
	struct testapp *app;
	natsMsg *m = NULL;

	assert_non_null(fixture_start_daemon(f,
	    "max_attempts: 3\n"
	    "filters:\n"
	    "  - backoff: {schedule: [400ms, 800ms]}\n"
	    "  - deadletter: {stream: DLQ}",
	    NULL));
	assert_non_null(
	    app = testapp_start(daemon_socket(f->d), "--mode", "retry", NULL));
	assert_int_equal(testjs_publish(f->js, "orders.created.v1",
			     "{\"order_id\":\"o-1\"}", 18, hdrs, NULL, NULL),
	    0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    testapp_wait_deliveries(app, (size_t)i + 1, 20000), 0);
		at[i] = fixture_now();
	}
	/* At least the scheduled delay; the upper bound is loose. */
	if (at[1] - at[0] < 0.35 || at[1] - at[0] > 10)
		fail_msg(
		    "second attempt after %.2f s, want 0.4 s", at[1] - at[0]);
	if (at[2] - at[1] < 0.75 || at[2] - at[1] > 10)
		fail_msg(
		    "third attempt after %.2f s, want 0.8 s", at[2] - at[1]);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_sleep_ms(1500);
	assert_int_equal(testapp_count(app, "delivery"), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    testapp_find(app, "delivery", (size_t)i)->attempt,
		    (uint32_t)i + 1);
	fixture_assert_settles(f);

	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	assert_int_equal(natsMsg_GetDataLength(m), 18);
	assert_memory_equal(natsMsg_GetData(m), "{\"order_id\":\"o-1\"}", 18);
	fixture_assert_dead_letter(m, "max_attempts", "3", "ord-1");
	fixture_assert_header(m, "Nats-Sidecar-Original-X-Tenant", "acme");
	fixture_assert_header(m,
	    "Nats-Sidecar-Original-Nats-Expected-Last-Subject-"
	    "Sequence",
	    "0");
	fixture_assert_header(m, "traceparent",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	natsMsg_Destroy(m);
	/* A clean exit: no leak or error on the dead-letter path. */
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	testapp_free(app);
}

static void
poison_does_not_hold_up_the_rest(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	natsMsg *m = NULL;

	assert_non_null(fixture_start_daemon(f,
	    "max_attempts: 5\n"
	    "filters:\n"
	    "  - deadletter: {stream: DLQ}",
	    NULL));
	assert_non_null(
	    app = testapp_start(daemon_socket(f->d), "--capacity", "32",
		"--reject-if-payload-contains", "poison", NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "g", 1, 500), 0);
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", "poison", 6,
			     NULL, NULL, NULL),
	    0);
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "g", 501, 500),
	    0);
	assert_int_equal(testapp_wait_for(app, "ack", 1000, 60000), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testapp_count(app, "reject"), 1);
	assert_int_equal(testapp_find(app, "reject", 0)->attempt, 1);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	fixture_assert_header(m, "Nats-Sidecar-Reason", "rejected");
	fixture_assert_header(m, "Nats-Sidecar-Sequence", "501");
	natsMsg_Destroy(m);
	testapp_free(app);
}

static void
missing_dead_letter_stream_keeps_the_message(void **state)
{
	static const char *const dlq_subjects[] = { "dlq.>", NULL };
	struct fixture *f = *state;
	struct testapp *app;

	/* No stream captures dlq.> yet: the publish fails, the original is
	 * NAKed with a delay and comes back. */
	assert_non_null(fixture_start_daemon(f,
	    "retry_delay: 300ms\n"
	    "filters:\n"
	    "  - deadletter: {}",
	    NULL));
	assert_non_null(
	    app = testapp_start(daemon_socket(f->d), "--mode", "reject", NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "m", 1, 1), 0);
	assert_int_equal(
	    daemon_log_wait(f->d, "delivery.dead_letter_failed", 2, 20000), 0);
	assert_true(testapp_count(app, "delivery") >= 2);
	assert_int_equal(testjs_add_stream(f->js, "DLQ", dlq_subjects), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	fixture_sleep_ms(500);
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 1);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	testapp_free(app);
}

/* A subscription that declares its message type: payloads that do not
 * decode go to the dead-letter stream at once, with the reason naming
 * the field; the others reach the app. */
static void
undecodable_payloads_are_dead_lettered(void **state)
{
	struct fixture *f = *state;
	const char *good = "{\"message_id\":\"m-1\",\"order_id\":\"o-1\","
			   "\"customer_id\":\"c-1\",\"total_amount\":12.5,"
			   "\"created_at\":\"1700000000000\"}";
	const char *bad = "{\"message_id\":\"m-2\",\"order_id\":42}";
	char schemas[512];
	struct testapp *app;
	natsMsg *m = NULL;
	const char *why = NULL;

	snprintf(schemas, sizeof schemas, "schemas: [\"%s/proto/events.desc\"]",
	    getenv("top_builddir"));
	assert_non_null(fixture_start_daemon(f,
	    "message_type: orders.v1.OrderCreated\n"
	    "filters:\n"
	    "  - deadletter: {stream: DLQ}",
	    schemas));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", bad,
			     strlen(bad), NULL, NULL, NULL),
	    0);
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", good,
			     strlen(good), NULL, NULL, NULL),
	    0);
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testapp_count(app, "delivery"), 1);
	assert_non_null(strstr(testapp_find(app, "ack", 0)->payload, "o-1"));
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	fixture_assert_header(m, "Nats-Sidecar-Reason", "undecodable");
	assert_int_equal(
	    natsMsgHeader_Get(m, "Nats-Sidecar-Reason-Text", &why), NATS_OK);
	if (strstr(why, "order_id") == NULL)
		fail_msg("the reason does not name the field: %s", why);
	natsMsg_Destroy(m);
	testapp_free(app);
}

/* A message as large as the server allows cannot carry the dead-letter
 * headers too: it is stored cut to fit, saying how long it was. */
static void
too_large_dead_letter_is_truncated(void **state)
{
	enum { LEN = 1048000 };
	struct fixture *f = *state;
	char *payload = malloc(LEN);
	struct testapp *app;
	natsMsg *m = NULL;
	char want[32];

	assert_non_null(payload);
	memset(payload, 'x', LEN);
	memcpy(payload, "poison", 6);
	assert_non_null(fixture_start_daemon(f,
	    "filters:\n"
	    "  - deadletter: {stream: DLQ}",
	    NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d),
			    "--reject-if-payload-contains", "poison", NULL));
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", payload,
			     LEN, NULL, NULL, NULL),
	    0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	snprintf(want, sizeof want, "%d", LEN);
	fixture_assert_header(m, "Nats-Sidecar-Truncated", want);
	fixture_assert_header(m, "Nats-Sidecar-Reason", "rejected");
	assert_true(natsMsg_GetDataLength(m) > 0);
	assert_true(natsMsg_GetDataLength(m) < LEN);
	assert_memory_equal(
	    natsMsg_GetData(m), payload, (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
	free(payload);
	testapp_free(app);
}

/* Runs nats-sidecar's dlq command with the daemon's configuration;
 * returns its exit status and its output in |out| (caller frees). */
static int
dlq_command(struct fixture *f, const char *args, char **out)
{
	char cmd[1024], buf[4096];
	size_t n = 0;
	FILE *p;
	int status;

	snprintf(cmd, sizeof cmd, "%s/nats-sidecar -c %s dlq %s 2>&1",
	    getenv("top_builddir"), daemon_config_path(f->d), args);
	assert_non_null(p = popen(cmd, "r"));
	n = fread(buf, 1, sizeof buf - 1, p);
	buf[n] = '\0';
	status = pclose(p);
	*out = strdup(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
replay_puts_a_dead_letter_back(void **state)
{
	struct fixture *f = *state;
	struct testapp *broken, *fixed;
	const struct testapp_event *e;
	char *out;

	assert_non_null(fixture_start_daemon(f,
	    "filters:\n"
	    "  - deadletter: {stream: DLQ}",
	    NULL));
	assert_non_null(broken = testapp_start(
			    daemon_socket(f->d), "--mode", "reject", NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "p", 1, 1), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testapp_stop(broken, 10000), 0);

	assert_int_equal(dlq_command(f, "list", &out), 0);
	assert_non_null(strstr(out, "1 dead letter(s) in DLQ"));
	assert_non_null(strstr(out, "orders.created.v1"));
	free(out);

	/* The fixed app gets it back, once, however often it is replayed. */
	assert_non_null(fixed = testapp_start(daemon_socket(f->d), NULL));
	assert_int_equal(dlq_command(f, "replay", &out), 0);
	assert_non_null(strstr(out, "1 replayed, 0 failed"));
	free(out);
	assert_int_equal(testapp_wait_for(fixed, "ack", 1, 20000), 0);
	e = testapp_find(fixed, "ack", 0);
	assert_string_equal(e->payload, "order-1");
	assert_string_equal(e->message_id, "replay:DLQ:1");
	assert_int_equal(e->attempt, 1);
	assert_int_equal(dlq_command(f, "replay", &out), 0);
	assert_non_null(strstr(out, "already replayed"));
	free(out);
	fixture_sleep_ms(1000);
	assert_int_equal(testapp_count(fixed, "delivery"), 1);
	fixture_assert_settles(f);

	assert_int_equal(dlq_command(f, "purge", &out), 0);
	free(out);
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 0);
	testapp_free(broken);
	testapp_free(fixed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    exhausted_message_is_dead_lettered_with_context,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    poison_does_not_hold_up_the_rest, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    missing_dead_letter_stream_keeps_the_message, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    undecodable_payloads_are_dead_lettered, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    too_large_dead_letter_is_truncated, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(replay_puts_a_dead_letter_back,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests_name("deadletter", tests, NULL, NULL);
}
