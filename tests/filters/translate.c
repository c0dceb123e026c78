/*
 * The translate filter in a real chain: v1 and v2 orders, JSON and
 * protobuf, reach the app as v2 JSON (or v3 through a chain of
 * mappings); the translated message is the delivery's view; an unknown
 * version is retried or dead-lettered as configured; a payload that does
 * not decode or translate is dead-lettered naming the field; startup
 * fails when a version has no route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/chain.h"
#include "filters/filter.h"
#include "filters/translate.h"
#include "harness/cmocka.h"
#include "harness/proc.h"
#include "harness/protoc.h"
#include "sidecar/bus.h"
#include "sidecar/config.h"
#include "sidecar/delivery.h"
#include "sidecar/metrics.h"
#include "sidecar/schema.h"
#include "sidecar/view.h"

static const struct config_subscription orders_sub = { .name = "orders",
	.content_type = "application/json" };

struct world {
	struct schema *events;
	struct metrics *metrics;
	struct translate_options opt;
	struct translate_version versions[3];
	char *files[3];
	struct chain *chain;
	struct filter_verdict last;
};

static void
on_inbound(void *arg, struct delivery *d, struct filter_verdict v)
{
	struct world *w = arg;

	(void)d;
	w->last = v;
}

static void
on_outcome(void *arg, struct delivery *d, struct filter_verdict v)
{
	(void)arg;
	(void)d;
	(void)v;
}

static char *
tree_file(const char *rel)
{
	char path[1024];

	proc_tree_path(path, sizeof path, "top_srcdir", rel);
	return strdup(path);
}

/* A chain with one translate filter wanting |version| (v2 or v3). */
static struct world *
world_new(const char *version, int unknown)
{
	struct world *w = calloc(1, sizeof *w);
	struct config_filter entry = { .ops = &translate_filter,
		.options = &w->opt };
	struct config_filters cf = { &entry, 1 };
	struct chain_events ev = { on_inbound, on_outcome, w };
	struct filter_services fs;

	w->events = protoc_events();
	w->metrics = metrics_new();
	w->versions[0] =
	    (struct translate_version){ "v1", "orders.v1.OrderCreated" };
	w->versions[1] =
	    (struct translate_version){ "v2", "orders.v2.OrderCreated" };
	w->versions[2] =
	    (struct translate_version){ "v3", "orders.v3.OrderCreated" };
	w->files[0] = tree_file("examples/mappings/orders-v1-to-v2.yaml");
	w->files[1] = tree_file("examples/mappings/orders-v2-to-v3.yaml");
	w->files[2] = tree_file("examples/mappings/orders-v2-to-v1.yaml");
	w->opt.version = (char *)version;
	w->opt.encoding = VIEW_JSON;
	w->opt.version_from = "subject";
	w->opt.versions = (struct config_tables){ w->versions,
		strcmp(version, "v3") == 0 ? 3 : 2 };
	w->opt.mappings = (struct config_strings){ w->files, 3 };
	if (strcmp(version, "v2") == 0) {
		static char *pv[] = { "v2", "v1" };

		w->opt.publish_subject = "orders.created.{version}";
		w->opt.publish_versions = (struct config_strings){ pv, 2 };
	}
	w->opt.unknown_version = unknown;
	w->opt.unknown_delay = 60000000000LL;
	fs = (struct filter_services){ w->metrics, NULL, 0, w->events };
	w->chain = chain_new(&cf, &orders_sub, &fs, &ev);
	return w;
}

static void
world_free(struct world *w)
{
	chain_free(w->chain);
	metrics_free(w->metrics);
	schema_free(w->events);
	free(w->files[0]);
	free(w->files[1]);
	free(w->files[2]);
	free(w);
}

static struct delivery *
delivery(const char *subject, const char *ct, const void *payload, size_t len)
{
	natsMsg *m = NULL;
	struct delivery *d;

	assert_int_equal(natsMsg_Create(&m, subject,
			     "$JS.ACK.ORDERS.app.1.1.1.1700000000000000000.0",
			     payload, (int)len),
	    NATS_OK);
	if (ct != NULL)
		assert_int_equal(
		    natsMsgHeader_Set(m, "Content-Type", ct), NATS_OK);
	assert_non_null(d = delivery_new(m, NULL, bus_msg_size(m)));
	d->id = 1;
	return d;
}

static struct filter_verdict
run(struct world *w, struct delivery *d)
{
	d->chain_pos = 0;
	return chain_deliver(w->chain, d, 0);
}

static void
assert_app_json(const struct delivery *d, const char *want)
{
	assert_non_null(d->app_payload);
	if (d->app_payload_len != strlen(want) ||
	    memcmp(d->app_payload, want, strlen(want)) != 0)
		fail_msg("got %.*s", (int)d->app_payload_len,
		    (const char *)d->app_payload);
	assert_string_equal(d->app_content_type, "application/json");
	assert_int_equal(d->app_payload_len, strlen(want));
	assert_memory_equal(d->app_payload, want, strlen(want));
}

static const char v1_json[] =
    "{\"messageId\":\"m-1\",\"orderId\":\"o-1\",\"customerId\":\"c-1\","
    "\"totalAmount\":1.5,\"createdAt\":\"1000\"}";
static const char v2_json[] =
    "{\"messageId\":\"m-1\",\"orderRef\":\"o-1\",\"customer\":{\"id\":"
    "\"c-1\"},\"totalMinor\":\"150\",\"currency\":\"EUR\",\"createdAt\":"
    "\"1970-01-01T00:00:01Z\"}";

static void
test_upcast_json_and_protobuf(void **state)
{
	struct world *w = world_new("v2", TRANSLATE_UNKNOWN_RETRY);
	struct delivery *d;
	struct view_value v;
	char *err = NULL;
	/* v1 as protobuf: message_id "m-1", order_id "o-1", customer_id
	 * "c-1", total_amount 1.5, created_at 1000. */
	static const unsigned char v1_pb[] = { 0x0a, 0x03, 'm', '-', '1', 0x12,
		0x03, 'o', '-', '1', 0x1a, 0x03, 'c', '-', '1', 0x21, 0, 0, 0,
		0, 0, 0, 0xf8, 0x3f, 0x28, 0xe8, 0x07 };

	(void)state;
	assert_non_null(w->chain);
	d = delivery("orders.created.v1", NULL, v1_json, strlen(v1_json));
	assert_int_equal(run(w, d).action, FILTER_DELIVER);
	assert_app_json(d, v2_json);
	assert_string_equal(d->app_version, "v2");
	/* Later filters read the v2 message. */
	assert_non_null(d->view_spec);
	assert_int_equal(
	    view_read(view_get(d, d->view_spec), "customer.id", &v, &err), 1);
	assert_string_equal(v.s, "c-1");
	delivery_free(d);

	d = delivery(
	    "orders.created.v1", "application/protobuf", v1_pb, sizeof v1_pb);
	assert_int_equal(run(w, d).action, FILTER_DELIVER);
	assert_app_json(d, v2_json);
	delivery_free(d);

	/* v2 JSON is passed as it is; v2 protobuf is printed as JSON. */
	d = delivery("orders.created.v2", NULL, v2_json, strlen(v2_json));
	assert_int_equal(run(w, d).action, FILTER_DELIVER);
	assert_null(d->app_payload);
	delivery_free(d);
	world_free(w);
}

static void
test_chain_to_v3(void **state)
{
	struct world *w = world_new("v3", TRANSLATE_UNKNOWN_RETRY);
	struct delivery *d;

	(void)state;
	assert_non_null(w->chain);
	d = delivery("orders.created.v1", NULL, v1_json, strlen(v1_json));
	assert_int_equal(run(w, d).action, FILTER_DELIVER);
	assert_app_json(d,
	    "{\"messageId\":\"m-1\",\"orderRef\":\"o-1\",\"customer\":{\"id\":"
	    "\"c-1\"},\"total\":{\"minor\":\"150\",\"currency\":\"EUR\"},"
	    "\"createdAt\":\"1970-01-01T00:00:01Z\",\"source\":\"upcast\"}");
	assert_string_equal(d->app_version, "v3");
	delivery_free(d);
	world_free(w);
}

static void
test_unknown_version(void **state)
{
	struct world *w = world_new("v2", TRANSLATE_UNKNOWN_RETRY);
	struct filter_verdict v;
	struct delivery *d;

	(void)state;
	d = delivery("orders.created.v9", NULL, "{}", 2);
	v = run(w, d);
	assert_int_equal(v.action, FILTER_RETRY);
	assert_int_equal(v.delay_ns, 60000000000LL);
	assert_string_equal(v.text, "schema version \"v9\" is not declared");
	delivery_free(d);
	world_free(w);

	w = world_new("v2", TRANSLATE_UNKNOWN_DEAD_LETTER);
	d = delivery("orders.created.v9", NULL, "{}", 2);
	v = run(w, d);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_UNTRANSLATABLE);
	delivery_free(d);
	world_free(w);
}

static void
test_bad_messages(void **state)
{
	struct world *w = world_new("v2", TRANSLATE_UNKNOWN_RETRY);
	static const char nan[] = "{\"customerId\":\"c\",\"totalAmount\":"
				  "\"NaN\"}";
	struct filter_verdict v;
	struct delivery *d;

	(void)state;
	d = delivery("orders.created.v1", NULL, nan, strlen(nan));
	v = run(w, d);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_UNTRANSLATABLE);
	assert_string_equal(v.text,
	    "orders.v1.OrderCreated -> orders.v2.OrderCreated: field "
	    "total_amount: nan is not a finite amount");
	assert_null(d->app_payload);
	delivery_free(d);

	d = delivery("orders.created.v1", NULL, "{\"x\":1}", 7);
	v = run(w, d);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_UNDECODABLE);
	assert_non_null(strstr(v.text, "field x: no such field"));
	delivery_free(d);

	d = delivery("orders.created.v1", "text/plain", "{}", 2);
	v = run(w, d);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_UNDECODABLE);
	delivery_free(d);
	world_free(w);
}

/* An app on v2 publishes once; v1 and v2 copies go out, each with its
 * own Nats-Msg-Id. */
static void
test_publish_downcast(void **state)
{
	struct world *w = world_new("v2", TRANSLATE_UNKNOWN_RETRY);
	struct publication p = { .subject = "orders.created.v2",
		.message_id = "ord-1",
		.payload = v2_json,
		.len = strlen(v2_json) };
	struct publication other = { .subject = "payments.v2",
		.message_id = "",
		.payload = "x",
		.len = 1 };
	struct filter_verdict v;

	(void)state;
	assert_non_null(w->chain);
	v = chain_publish(w->chain, &p, 0);
	assert_int_equal(v.action, FILTER_DELIVER);
	assert_int_equal(p.n_copies, 2);
	assert_string_equal(p.copies[0].subject, "orders.created.v2");
	assert_string_equal(p.copies[0].message_id, "ord-1");
	assert_int_equal(p.copies[0].len, strlen(v2_json));
	assert_string_equal(p.copies[1].subject, "orders.created.v1");
	assert_string_equal(p.copies[1].message_id, "ord-1:v1");
	/* The version is in the subject: no header to set. */
	assert_null(p.copies[1].header);
	assert_memory_equal(p.copies[1].payload,
	    "{\"messageId\":\"m-1\",\"orderId\":\"o-1\",\"customerId\":"
	    "\"c-1\",\"totalAmount\":1.5,\"createdAt\":\"1000\"}",
	    p.copies[1].len);
	for (size_t i = 0; i < p.n_copies; i++) {
		free(p.copies[i].subject);
		free(p.copies[i].message_id);
		free(p.copies[i].payload);
	}
	free(p.copies);
	/* Other subjects pass as they are. */
	assert_int_equal(
	    chain_publish(w->chain, &other, 0).action, FILTER_DELIVER);
	assert_int_equal(other.n_copies, 0);
	/* A v2 publish that v1 cannot carry is refused whole. */
	p.payload = "{\"currency\":\"USD\",\"totalMinor\":\"1\"}";
	p.len = strlen(p.payload);
	p.copies = NULL;
	p.n_copies = 0;
	v = chain_publish(w->chain, &p, 0);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_non_null(strstr(v.text, "field currency"));
	assert_int_equal(p.n_copies, 0);
	free(p.text);
	world_free(w);
}

static void
test_no_route(void **state)
{
	struct world *w;

	(void)state;
	/* v3 wanted, but only the v1 -> v2 mapping: no way from v1. */
	w = world_new("v3", TRANSLATE_UNKNOWN_RETRY);
	chain_free(w->chain);
	w->opt.mappings.n = 1;
	{
		struct config_filter entry = { .ops = &translate_filter,
			.options = &w->opt };
		struct config_filters cf = { &entry, 1 };
		struct chain_events ev = { on_inbound, on_outcome, w };
		struct filter_services fs = { w->metrics, NULL, 0, w->events };

		w->chain = chain_new(&cf, &orders_sub, &fs, &ev);
		assert_null(w->chain);
	}
	world_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upcast_json_and_protobuf),
		cmocka_unit_test(test_chain_to_v3),
		cmocka_unit_test(test_unknown_version),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_publish_downcast),
		cmocka_unit_test(test_no_route),
	};

	int rc;

	nats_Open(-1);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	nats_Close();
	return rc;
}
