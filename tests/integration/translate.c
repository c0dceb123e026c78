/*
 * Schema translation end to end: a stream holding v1 and v2 orders, in
 * protobuf and JSON, reaches an app that declared v2 JSON as v2 JSON
 * only; a v1 order whose amount is NaN lands in the dead-letter stream
 * with the reason naming the field; an unknown version is retried or
 * dead-lettered as configured.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/fixture.h"
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

static uint64_t
stream_msgs(struct fixture *f, const char *stream)
{
	uint64_t n = 0;

	if (testjs_stream_msgs(f->js, stream, &n) == -1)
		return 0;
	return n;
}

static void
wait_stream_msgs(struct fixture *f, const char *stream, uint64_t n)
{
	for (int i = 0; i < 400 && stream_msgs(f, stream) < n; i++)
		fixture_sleep_ms(50);
	assert_int_equal(stream_msgs(f, stream), n);
}

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
 * unknown_version policy. */
static void
start(struct fixture *f, const char *unknown)
{
	char top[1024], sub[2048];

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
	    "      mappings: [\"%s/examples/mappings/orders-v1-to-v2.yaml\"]\n"
	    "      unknown_version: %s\n"
	    "      unknown_delay: 500ms",
	    getenv("top_srcdir"), unknown);
	assert_non_null(fixture_start_daemon(f, sub, top));
}

static void
assert_header(natsMsg *m, const char *name, const char *want)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, name, &v) != NATS_OK)
		fail_msg("no header %s on the dead letter", name);
	if (strstr(v, want) == NULL)
		fail_msg("header %s is \"%s\", want \"%s\"", name, v, want);
}

static void
mixed_stream_reaches_the_app_as_v2_json(void **state)
{
	struct fixture *f = *state;
	static const char nan[] = "{\"customerId\":\"c-2\",\"totalAmount\":"
				  "\"NaN\"}";
	struct testapp *app;
	natsMsg *m = NULL;

	start(f, "dead_letter");
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
	wait_stream_msgs(f, "DLQ", 1);
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
	assert_header(m, "Nats-Sidecar-Reason", "untranslatable");
	assert_header(m, "Nats-Sidecar-Reason-Text",
	    "field total_amount: nan is not a finite amount");
	assert_header(m, "Nats-Sidecar-Sequence", "3");
	natsMsg_Destroy(m);
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

	start(f, "dead_letter");
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish(f, "orders.created.v3", NULL, "{}", 2);
	publish(f, "orders.created.v1", NULL, v1_json, strlen(v1_json));
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	wait_stream_msgs(f, "DLQ", 1);
	fixture_assert_settles(f);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	assert_header(m, "Nats-Sidecar-Reason", "untranslatable");
	assert_header(m, "Nats-Sidecar-Reason-Text",
	    "schema version \"v3\" is not declared");
	natsMsg_Destroy(m);
	testapp_free(app);
}

/* retry: a producer upgraded before its consumers does not flood the
 * dead-letter stream; the message waits in JetStream and comes back. */
static void
unknown_version_is_retried(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;

	start(f, "retry");
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish(f, "orders.created.v3", NULL, "{}", 2);
	publish(f, "orders.created.v1", NULL, v1_json, strlen(v1_json));
	assert_int_equal(testapp_wait_for(app, "ack", 1, 20000), 0);
	/* unknown_delay is 500ms: several redeliveries in 2 s, none kept. */
	fixture_sleep_ms(2000);
	assert_int_equal(testapp_count(app, "delivery"), 1);
	assert_int_equal(stream_msgs(f, "DLQ"), 0);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
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
	};

	return cmocka_run_group_tests_name("translate", tests, NULL, NULL);
}
