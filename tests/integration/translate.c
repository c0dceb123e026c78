/*
 * Schema translation end to end: a stream holding v1 and v2 orders, in
 * protobuf and JSON, reaches an app that declared v2 JSON as v2 JSON
 * only; a v1 order whose amount is NaN lands in the dead-letter stream
 * with the reason naming the field, and waits for that stream when it is
 * missing; an unknown version is retried or
 * dead-lettered as configured; an app on v2 publishes for consumers
 * still on v1, and a copy that finds no stream fails the publish while
 * the retry stores nothing twice. nats_sidecar_translations_total counts
 * each outcome.
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
#include "harness/promcheck.h"
#include "harness/testjs.h"

static const char v1_json[] =
    "{\"messageId\":\"m-1\",\"orderId\":\"o-1\",\"customerId\":\"c-1\","
    "\"totalAmount\":1.5,\"createdAt\":\"1000\"}";
/* The same order as v1 protobuf. */
static const unsigned char v1_pb[] = { 0x0a, 0x03, 'm', '-', '1', 0x12, 0x03,
	'o', '-', '1', 0x1a, 0x03, 'c', '-', '1', 0x21, 0, 0, 0, 0, 0, 0, 0xf8,
	0x3f, 0x28, 0xe8, 0x07 };
/* ... and as the app must get it. */
static const char v2_json[] =
    "{\"messageId\":\"m-1\",\"orderRef\":\"o-1\",\"customer\":{\"id\":"
    "\"c-1\"},\"totalMinor\":\"150\",\"currency\":\"EUR\",\"createdAt\":"
    "\"1970-01-01T00:00:01Z\"}";
/* v2 protobuf: message_id "m-1", order_ref "o-1", customer.id "c-1",
 * total_minor 150, currency "EUR", created_at 1 s. */
static const unsigned char v2_pb[] = { 0x0a, 0x03, 'm', '-', '1', 0x12, 0x03,
	'o', '-', '1', 0x1a, 0x05, 0x0a, 0x03, 'c', '-', '1', 0x20, 0x96, 0x01,
	0x2a, 0x03, 'E', 'U', 'R', 0x32, 0x02, 0x08, 0x01 };

static void
publish(struct fixture *f, const char *subject, const char *ct,
    const void *data, size_t len)
{
	const char *hdrs[] = { "Content-Type", ct, NULL };

	assert_int_equal(testjs_publish(f->js, subject, data, len,
			     ct != NULL ? hdrs : NULL, NULL, NULL),
	    0);
}

/* Starts the daemon with a v2-JSON translate filter; |unknown| is the
 * unknown_version policy, |more| more of its options. */
static void
start(struct fixture *f, const char *unknown, const char *more)
{
	char top[1024], sub[4096];

	snprintf(top, sizeof top, "schemas: [\"%s/proto/events.desc\"]",
	    getenv("top_builddir"));
	snprintf(sub, sizeof sub,
	    "filters:\n"
	    "  - deadletter: {stream: DLQ}\n"
	    "  - translate:\n"
	    "      version: v2\n"
	    "      encoding: json\n"
	    "      versions:\n"
	    "        - {version: v1, type: orders.v1.OrderCreated}\n"
	    "        - {version: v2, type: orders.v2.OrderCreated}\n"
	    "      mappings:\n"
	    "        - \"%s/examples/mappings/orders-v1-to-v2.yaml\"\n"
	    "        - \"%s/examples/mappings/orders-v2-to-v1.yaml\"\n"
	    "      unknown_version: %s\n"
	    "      unknown_delay: 500ms\n"
	    "%s",
	    getenv("top_srcdir"), getenv("top_srcdir"), unknown,
	    more != NULL ? more : "");
	assert_non_null(fixture_start_daemon(f, sub, top));
}

/* nats_sidecar_translations_total of |direction|, |from| -> |to| and
 * |result|, from the daemon's /metrics. */
static double
translations(struct fixture *f, const char *direction, const char *from,
    const char *to, const char *result)
{
	char series[256], *body = NULL;
	double v = -1;

	snprintf(series, sizeof series,
	    "nats_sidecar_translations_total{subscription=\"orders\","
	    "direction=\"%s\",from=\"%s\",to=\"%s\",result=\"%s\"}",
	    direction, from, to, result);
	assert_int_equal(
	    httpget(daemon_http_port(f->d), "/metrics", &body), 200);
	assert_int_equal(promcheck_value(body, series, &v), 0);
	free(body);
	return v;
}

static void
mixed_stream_reaches_the_app_as_v2_json(void **state)
{
	struct fixture *f = *state;
	static const char nan[] = "{\"customerId\":\"c-2\",\"totalAmount\":"
				  "\"NaN\"}";
	struct testapp *app;
	natsMsg *m = NULL;

	start(f, "dead_letter", NULL);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish(f, "orders.created.v1", NULL, v1_json, strlen(v1_json));
	publish(f, "orders.created.v1", "application/protobuf", v1_pb,
	    sizeof v1_pb);
	publish(f, "orders.created.v1", NULL, nan, strlen(nan));
	publish(f, "orders.created.v2", "application/json", v2_json,
	    strlen(v2_json));
	publish(f, "orders.created.v2", "application/x-protobuf", v2_pb,
	    sizeof v2_pb);
	assert_int_equal(testapp_wait_for(app, "ack", 4, 20000), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testapp_count(app, "delivery"), 4);
	for (size_t i = 0; i < 4; i++) {
		const struct testapp_event *e =
		    testapp_find(app, "delivery", i);

		if (e->payload_len != strlen(v2_json) ||
		    memcmp(e->payload, v2_json, e->payload_len) != 0)
			fail_msg("delivery %zu (stream sequence %llu) is %s", i,
			    (unsigned long long)e->stream_sequence, e->payload);
	}
	/* The dead letter keeps the original payload and says why. */
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	assert_int_equal(natsMsg_GetDataLength(m), (int)strlen(nan));
	fixture_assert_header(m, "Nats-Sidecar-Reason", "untranslatable");
	fixture_assert_header(m, "Nats-Sidecar-Reason-Text",
	    "orders.v1.OrderCreated -> orders.v2.OrderCreated: field "
	    "total_amount: nan is not a finite amount");
	fixture_assert_header(m, "Nats-Sidecar-Sequence", "3");
	natsMsg_Destroy(m);
	assert_true(translations(f, "delivery", "v1", "v2", "translated") == 2);
	assert_true(translations(f, "delivery", "v1", "v2", "failed") == 1);
	assert_true(translations(f, "delivery", "v2", "v2", "translated") == 2);
	assert_true(translations(f, "delivery", "v2", "v2", "failed") == 0);
	assert_true(translations(f, "delivery", "unknown", "v2",
			"unknown_version") == 0);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	testapp_free(app);
}

static void
unknown_version_is_dead_lettered(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	natsMsg *m = NULL;

	start(f, "dead_letter", NULL);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish(f, "orders.created.v3", NULL, "{}", 2);
	publish(f, "orders.created.v1", NULL, v1_json, strlen(v1_json));
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	fixture_assert_header(m, "Nats-Sidecar-Reason", "untranslatable");
	fixture_assert_header(m, "Nats-Sidecar-Reason-Text",
	    "schema version \"v3\" is not declared");
	natsMsg_Destroy(m);
	assert_true(translations(f, "delivery", "unknown", "v2",
			"unknown_version") == 1);
	testapp_free(app);
}

/* retry: a producer upgraded before its consumers does not flood the
 * dead-letter stream; the message waits in JetStream and comes back. */
static void
unknown_version_is_retried(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;

	start(f, "retry", NULL);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish(f, "orders.created.v3", NULL, "{}", 2);
	publish(f, "orders.created.v1", NULL, v1_json, strlen(v1_json));
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	/* unknown_delay is 500ms: several redeliveries in 2 s, none kept. */
	fixture_sleep_ms(2000);
	assert_int_equal(testapp_count(app, "delivery"), 1);
	assert_int_equal(fixture_stream_msgs(f, "DLQ"), 0);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	testapp_free(app);
}

/* The stored message of |subject| in ORDERS, of |n| messages. */
static natsMsg *
stored(struct fixture *f, uint64_t n, const char *subject)
{
	for (uint64_t seq = 1; seq <= n; seq++) {
		natsMsg *m = NULL;

		assert_int_equal(testjs_get(f->js, "ORDERS", seq, &m), 0);
		if (strcmp(natsMsg_GetSubject(m), subject) == 0)
			return m;
		natsMsg_Destroy(m);
	}
	fail_msg("no message on %s in ORDERS", subject);
	return NULL;
}

/* Starts the daemon (more options in |more|) publishing in v1 and v2
 * what the app publishes in v2, and the app, which publishes one v2 order
 * (pay-1): the two copies are in the stream then. */
static struct testapp *
publish_v2_order(struct fixture *f, const char *more)
{
	char options[512], line[512];
	struct testapp *app;

	snprintf(options, sizeof options,
	    "%s"
	    "      publish_subject: orders.created.{version}\n"
	    "      publish_versions: [v1, v2]\n",
	    more);
	start(f, "dead_letter", options);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	snprintf(
	    line, sizeof line, "publish orders.created.v2 pay-1 %s", v2_json);
	assert_int_equal(testapp_command(app, line), 0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 1, 10000), 0);
	assert_string_equal(testapp_find(app, "publish_ack", 0)->status, "OK");
	fixture_wait_stream_msgs(f, "ORDERS", 2);
	return app;
}

/* An app on v2 publishes for consumers still on v1: one copy per
 * version, each with its own Nats-Msg-Id; what cannot be downcast is
 * refused whole. The copies come back to the app, both as v2 JSON. */
static void
publish_downcasts_for_v1_consumers(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	natsMsg *m;

	app = publish_v2_order(f, "");

	m = stored(f, 2, "orders.created.v1");
	fixture_assert_header(m, "Nats-Msg-Id", "pay-1:v1");
	assert_int_equal(natsMsg_GetDataLength(m), (int)strlen(v1_json));
	assert_memory_equal(natsMsg_GetData(m), v1_json, strlen(v1_json));
	natsMsg_Destroy(m);
	m = stored(f, 2, "orders.created.v2");
	fixture_assert_header(m, "Nats-Msg-Id", "pay-1");
	assert_int_equal(natsMsg_GetDataLength(m), (int)strlen(v2_json));
	assert_memory_equal(natsMsg_GetData(m), v2_json, strlen(v2_json));
	natsMsg_Destroy(m);
	assert_int_equal(testapp_wait_for(app, "ack", 2, 20000), 0);
	for (size_t i = 0; i < 2; i++)
		assert_string_equal(
		    testapp_find(app, "delivery", i)->payload, v2_json);

	/* v1 amounts are in euros: a dollar order cannot be downcast, and
	 * neither copy goes out. */
	assert_int_equal(testapp_command(app,
			     "publish orders.created.v2 pay-2 "
			     "{\"orderRef\":\"o-2\",\"currency\":\"USD\"}"),
	    0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 2, 10000), 0);
	assert_string_equal(
	    testapp_find(app, "publish_ack", 1)->status, "REJECTED");
	assert_non_null(
	    strstr(testapp_find(app, "publish_ack", 1)->error, "currency"));
	/* Elsewhere the app's publishes pass untouched. */
	assert_int_equal(
	    testapp_command(app, "publish orders.paid.v1 pay-3 {}"), 0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 3, 10000), 0);
	assert_string_equal(testapp_find(app, "publish_ack", 2)->status, "OK");
	fixture_wait_stream_msgs(f, "ORDERS", 3);

	assert_true(translations(f, "publish", "v2", "v1", "translated") == 1);
	assert_true(translations(f, "publish", "v2", "v2", "translated") == 1);
	assert_true(translations(f, "publish", "v2", "v1", "failed") == 1);
	assert_true(translations(f, "publish", "v2", "v2", "failed") == 1);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	testapp_free(app);
}

/* With the version in a header, each copy says its own. */
static void
publish_copies_carry_their_version_header(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	natsMsg *m;

	app =
	    publish_v2_order(f, "      version_from: header:Schema-Version\n");
	m = stored(f, 2, "orders.created.v1");
	fixture_assert_header(m, "Schema-Version", "v1");
	natsMsg_Destroy(m);
	m = stored(f, 2, "orders.created.v2");
	fixture_assert_header(m, "Schema-Version", "v2");
	natsMsg_Destroy(m);
	/* Read back by the header: both reach the app as v2. */
	assert_int_equal(testapp_wait_for(app, "ack", 2, 20000), 0);
	for (size_t i = 0; i < 2; i++)
		assert_string_equal(
		    testapp_find(app, "delivery", i)->payload, v2_json);
	fixture_assert_settles(f);
	testapp_free(app);
}

/* An untranslatable message whose dead-letter stream is missing is kept
 * (NAKed and redelivered, never acked, never at the app) until the
 * stream exists. */
static void
untranslatable_waits_for_its_dead_letter_stream(void **state)
{
	static const char *const dlq_subjects[] = { "dlq.>", NULL };
	static const char nan[] = "{\"totalAmount\":\"NaN\"}";
	struct fixture *f = *state;
	struct testapp *app;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;

	/* The filter creates it once connected; it is gone since. */
	start(f, "dead_letter", NULL);
	assert_int_equal(daemon_log_wait(f->d, "dlq.stream", 1, 20000), 0);
	assert_int_equal(
	    js_DeleteStream(testjs_ctx(f->js), "DLQ", NULL, &jerr), NATS_OK);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish(f, "orders.created.v1", NULL, nan, strlen(nan));
	assert_int_equal(
	    daemon_log_wait(f->d, "delivery.dead_letter_failed", 2, 20000), 0);
	assert_int_equal(testapp_count(app, "delivery"), 0);
	assert_int_equal(testjs_add_stream(f->js, "DLQ", dlq_subjects), 0);
	fixture_wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	fixture_assert_header(m, "Nats-Sidecar-Reason", "untranslatable");
	natsMsg_Destroy(m);
	assert_int_equal(testapp_count(app, "delivery"), 0);
	testapp_free(app);
}

/* One copy has no stream: the app is told, and its retry, once the
 * stream exists, stores the missing copy without doubling the other
 * (each copy's own Nats-Msg-Id is what makes the retry safe). */
static void
a_copy_without_a_stream_fails_the_publish_and_its_retry_is_safe(void **state)
{
	static const char *const v2_only[] = { "orders.created.v2", NULL };
	static const char *const v1_only[] = { "orders.created.v1", NULL };
	struct fixture *f = *state;
	const struct testapp_event *e;
	struct testapp *app;
	char line[512];
	jsErrCode jerr = 0;
	uint64_t n = 0;
	natsMsg *m;

	assert_int_equal(
	    js_DeleteStream(testjs_ctx(f->js), "ORDERS", NULL, &jerr), NATS_OK);
	assert_int_equal(testjs_add_stream(f->js, "ORDERS", v2_only), 0);
	start(f, "dead_letter",
	    "      publish_subject: orders.created.{version}\n"
	    "      publish_versions: [v1, v2]\n");
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	snprintf(
	    line, sizeof line, "publish orders.created.v2 pay-1 %s", v2_json);
	assert_int_equal(testapp_command(app, line), 0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 1, 10000), 0);
	e = testapp_find(app, "publish_ack", 0);
	assert_string_equal(e->status, "NO_STREAM");
	fixture_wait_stream_msgs(f, "ORDERS", 1);

	assert_int_equal(testjs_add_stream(f->js, "ORDERSV1", v1_only), 0);
	assert_int_equal(testapp_command(app, line), 0);
	assert_int_equal(testapp_wait_for(app, "publish_ack", 2, 10000), 0);
	/* The answer is the first PubAck's: either copy's. */
	e = testapp_find(app, "publish_ack", 1);
	assert_string_equal(e->status, "OK");
	assert_true(e->duplicate == (strcmp(e->stream, "ORDERS") == 0));
	assert_int_equal(testjs_get(f->js, "ORDERSV1", 1, &m), 0);
	fixture_assert_header(m, "Nats-Msg-Id", "pay-1:v1");
	assert_memory_equal(natsMsg_GetData(m), v1_json, strlen(v1_json));
	natsMsg_Destroy(m);
	/* The v2 copy was a duplicate: ORDERS still holds one. */
	assert_int_equal(testjs_stream_msgs(f->js, "ORDERS", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	fixture_assert_settles(f);
	testapp_free(app);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    mixed_stream_reaches_the_app_as_v2_json, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    unknown_version_is_dead_lettered, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(unknown_version_is_retried,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    publish_downcasts_for_v1_consumers, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    publish_copies_carry_their_version_header, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    untranslatable_waits_for_its_dead_letter_stream,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    a_copy_without_a_stream_fails_the_publish_and_its_retry_is_safe,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests_name("translate", tests, NULL, NULL);
}
