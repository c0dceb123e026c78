/* JetStream API bodies, as the sidecar writes and reads them. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "harness/cmocka.h"
#include "jsapi.h"

static struct config_subscription
orders(void)
{
	struct config_subscription s;

	memset(&s, 0, sizeof s);
	s.name = "orders";
	s.stream = "ORDERS";
	s.durable = "orders-app";
	s.filter_subject = "orders.>";
	s.deliver_policy = DELIVER_POLICY_ALL;
	s.ack_wait = 30000000000LL;
	s.max_deliver = -1;
	s.max_in_flight = 256;
	return s;
}

/* What nats-server 2.9.10 answers to CONSUMER.INFO for that consumer. */
static const char info_2_9[] =
    "{\"type\":\"io.nats.jetstream.api.v1.consumer_info_response\","
    "\"stream_name\":\"ORDERS\",\"name\":\"orders-app\","
    "\"created\":\"2026-11-24T00:00:00Z\",\"config\":{"
    "\"durable_name\":\"orders-app\",\"name\":\"orders-app\","
    "\"deliver_policy\":\"all\",\"ack_policy\":\"explicit\","
    "\"ack_wait\":30000000000,\"max_deliver\":-1,"
    "\"filter_subject\":\"orders.>\",\"replay_policy\":\"instant\","
    "\"max_waiting\":512,\"max_ack_pending\":1024,\"num_replicas\":0},"
    "\"delivered\":{\"consumer_seq\":0,\"stream_seq\":0},"
    "\"ack_floor\":{\"consumer_seq\":0,\"stream_seq\":0},"
    "\"num_ack_pending\":0,\"num_redelivered\":0,\"num_waiting\":0,"
    "\"num_pending\":0,\"cluster\":{\"leader\":\"x\"}}";

static void
create_body_carries_the_full_config(void **state)
{
	struct config_subscription s = orders();
	char *body = jsapi_consumer_create(&s);
	json_t *root = json_loads(body, 0, NULL), *c;

	assert_non_null(root);
	assert_string_equal(
	    json_string_value(json_object_get(root, "stream_name")), "ORDERS");
	c = json_object_get(root, "config");
	assert_string_equal(
	    json_string_value(json_object_get(c, "durable_name")),
	    "orders-app");
	assert_string_equal(
	    json_string_value(json_object_get(c, "ack_policy")), "explicit");
	assert_int_equal(
	    json_integer_value(json_object_get(c, "ack_wait")), 30000000000LL);
	assert_int_equal(
	    json_integer_value(json_object_get(c, "max_deliver")), -1);
	/* Four times max_in_flight when not configured. */
	assert_int_equal(
	    json_integer_value(json_object_get(c, "max_ack_pending")), 1024);
	assert_string_equal(
	    json_string_value(json_object_get(c, "filter_subject")),
	    "orders.>");
	json_decref(root);
	free(body);
}

static void
same_config_has_no_diff(void **state)
{
	struct config_subscription s = orders();
	bool immutable = true;
	char *diff = NULL;

	assert_int_equal(jsapi_consumer_diff(
			     &s, info_2_9, strlen(info_2_9), &diff, &immutable),
	    0);
	assert_null(diff);
	assert_false(immutable);
}

static void
diff_names_fields_and_mutability(void **state)
{
	struct config_subscription s = orders();
	bool immutable = true;
	char *diff = NULL;

	s.ack_wait = 60000000000LL;
	assert_int_equal(jsapi_consumer_diff(
			     &s, info_2_9, strlen(info_2_9), &diff, &immutable),
	    1);
	assert_non_null(strstr(diff,
	    "ack_wait: server has 30000000000, "
	    "configured 60000000000"));
	assert_false(immutable);
	free(diff);

	s = orders();
	s.deliver_policy = DELIVER_POLICY_NEW;
	assert_int_equal(jsapi_consumer_diff(
			     &s, info_2_9, strlen(info_2_9), &diff, &immutable),
	    1);
	assert_non_null(strstr(diff, "deliver_policy"));
	assert_true(immutable);
	free(diff);

	s = orders();
	s.filter_subject = NULL;
	assert_int_equal(jsapi_consumer_diff(
			     &s, info_2_9, strlen(info_2_9), &diff, &immutable),
	    1);
	assert_non_null(strstr(diff,
	    "filter_subject: server has orders.>, "
	    "configured (unset)"));
	free(diff);
}

static void
push_consumers_and_garbage_are_refused(void **state)
{
	struct config_subscription s = orders();
	const char *push = "{\"config\":{\"deliver_subject\":\"x\"}}";
	bool immutable = false;
	char *diff = NULL;

	assert_int_equal(
	    jsapi_consumer_diff(&s, push, strlen(push), &diff, &immutable), 1);
	assert_true(immutable);
	assert_non_null(strstr(diff, "push consumer"));
	free(diff);
	assert_int_equal(
	    jsapi_consumer_diff(&s, "nope", 4, &diff, &immutable), -1);
	free(diff);
}

static void
errors_and_pub_acks(void **state)
{
	const char *err = "{\"type\":\"x\",\"error\":{\"code\":404,"
			  "\"err_code\":10014,\"description\":\"consumer not "
			  "found\"}}";
	const char *ok =
	    "{\"stream\":\"ORDERS\",\"seq\":42,\"duplicate\":true}";
	struct jsapi_pub_ack pa;
	struct jsapi_error e;

	assert_int_equal(jsapi_error(err, strlen(err), &e), 1);
	assert_int_equal(e.code, 404);
	assert_int_equal(e.err_code, JSAPI_ERR_CONSUMER_NOT_FOUND);
	assert_string_equal(e.description, "consumer not found");
	assert_int_equal(jsapi_error(ok, strlen(ok), &e), 0);
	assert_int_equal(jsapi_error("{", 1, &e), -1);

	assert_int_equal(jsapi_pub_ack(ok, strlen(ok), &pa, &e), 0);
	assert_string_equal(pa.stream, "ORDERS");
	assert_int_equal(pa.seq, 42);
	assert_true(pa.duplicate);
	assert_int_equal(jsapi_pub_ack(err, strlen(err), &pa, &e), 1);
	assert_int_equal(jsapi_pub_ack("{\"seq\":1}", 9, &pa, &e), -1);
}

/* What jsapi_pub_ack() makes of |json|: its result, and the ack. */
static int
pub_ack(const char *json, struct jsapi_pub_ack *pa)
{
	struct jsapi_error e;

	return jsapi_pub_ack(json, strlen(json), pa, &e);
}

/* The server's own form is read without jansson, anything else with it,
 * to the same effect. */
static void
pub_ack_forms(void **state)
{
	struct jsapi_pub_ack pa;

	(void)state;
	/* As nats-server 2.9 writes them. */
	assert_int_equal(pub_ack("{\"stream\":\"ORDERS\", \"seq\":7}", &pa), 0);
	assert_string_equal(pa.stream, "ORDERS");
	assert_int_equal(pa.seq, 7);
	assert_false(pa.duplicate);
	assert_int_equal(pub_ack("{\"stream\":\"ORDERS\", \"domain\":\"hub\", "
				 "\"seq\":8,\"duplicate\": true}",
			     &pa),
	    0);
	assert_int_equal(pa.seq, 8);
	assert_true(pa.duplicate);
	assert_int_equal(
	    pub_ack(" {\"seq\" : 123456789012345678 ,\"stream\":\"\"}\n", &pa),
	    0);
	assert_int_equal(pa.seq, 123456789012345678u);
	assert_string_equal(pa.stream, "");
	/* Read in full: escapes, other members, repeated keys. */
	assert_int_equal(
	    pub_ack("{\"stream\":\"OR\\u0044ERS\",\"seq\":1}", &pa), 0);
	assert_string_equal(pa.stream, "ORDERS");
	assert_int_equal(
	    pub_ack("{\"stream\":\"S\",\"seq\":1,\"x\":[1]}", &pa), 0);
	assert_int_equal(
	    pub_ack("{\"stream\":\"S\",\"seq\":1,\"seq\":2}", &pa), 0);
	assert_int_equal(pa.seq, 2);
	assert_int_equal(
	    pub_ack("{\"stream\":\"S\",\"seq\":1,\"duplicate\":1}", &pa), 0);
	assert_false(pa.duplicate);
	/* Not a PubAck, either way. */
	assert_int_equal(pub_ack("{\"stream\":\"S\",\"seq\":01}", &pa), -1);
	assert_int_equal(pub_ack("{\"stream\":\"S\",\"seq\":1.5}", &pa), -1);
	assert_int_equal(pub_ack("{\"stream\":\"S\",\"seq\":1} x", &pa), -1);
	assert_int_equal(pub_ack("{\"stream\":\"S\",\"seq\":1,}", &pa), -1);
	assert_int_equal(pub_ack("{\"stream\":\"S\"}", &pa), -1);
	assert_int_equal(pub_ack("{\"stream\":7,\"seq\":1}", &pa), -1);
	assert_int_equal(pub_ack("", &pa), -1);
}

static void
pull_request_body(void **state)
{
	char buf[128];
	size_t n;

	n = jsapi_pull_request(
	    buf, sizeof buf, 256, 30000000000LL, 5000000000LL, 1048576);
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf,
	    "{\"batch\":256,\"expires\":30000000000,"
	    "\"idle_heartbeat\":5000000000,"
	    "\"max_bytes\":1048576}");
	n = jsapi_pull_request(buf, sizeof buf, 1, 1000, 500, 0);
	assert_string_equal(
	    buf, "{\"batch\":1,\"expires\":1000,\"idle_heartbeat\":500}");
	assert_int_equal(jsapi_pull_request(buf, 8, 1, 1, 1, 0), 0);
}

static void
consumer_pending_counts(void **state)
{
	static const char *const bad[] = { "{\"num_pending\":3}",
		"{\"num_pending\":-1,\"num_ack_pending\":0}",
		"{\"num_pending\":\"3\",\"num_ack_pending\":0}",
		"{\"error\":{\"code\":404,\"err_code\":10014}}", "not json" };
	const char *info = "{\"stream_name\":\"ORDERS\",\"name\":\"app\","
			   "\"num_ack_pending\":2,\"num_redelivered\":1,"
			   "\"num_waiting\":1,\"num_pending\":40}";
	uint64_t p = 7, a = 7;

	assert_int_equal(jsapi_consumer_pending(info, strlen(info), &p, &a), 0);
	assert_int_equal(p, 40);
	assert_int_equal(a, 2);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p = a = 7;
		if (jsapi_consumer_pending(bad[i], strlen(bad[i]), &p, &a) !=
		    -1)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(p, 7);
		assert_int_equal(a, 7);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_body_carries_the_full_config),
		cmocka_unit_test(same_config_has_no_diff),
		cmocka_unit_test(diff_names_fields_and_mutability),
		cmocka_unit_test(push_consumers_and_garbage_are_refused),
		cmocka_unit_test(errors_and_pub_acks),
		cmocka_unit_test(pub_ack_forms),
		cmocka_unit_test(pull_request_body),
		cmocka_unit_test(consumer_pending_counts),
	};

	return cmocka_run_group_tests_name("jsapi", tests, NULL, NULL);
}
