/*
 * The decoded view: one API for protobuf and JSON payloads, fields read
 * by path, a delivery decoded at most once.
 */
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "harness/cmocka.h"
#include "harness/protoc.h"
#include "sidecar/bus.h"
#include "sidecar/delivery.h"
#include "sidecar/view.h"
#include "sidecar/xmalloc.h"

/* The v2 golden of tests/sidecar/pbjson.c, in both encodings. */
static const char order_json[] =
    "{\"messageId\":\"ord-000042\",\"orderRef\":\"o-000042\",\"customer\":"
    "{\"id\":\"c-0042\",\"email\":\"ana@example.com\",\"country\":\"PT\"},"
    "\"totalMinor\":\"12345\",\"currency\":\"EUR\",\"createdAt\":\"2024-11-"
    "23T10:00:00.250Z\",\"items\":[{\"sku\":\"SKU-1\",\"quantity\":2,"
    "\"unitPriceMinor\":\"5000\"},{\"sku\":\"SKU-2\",\"quantity\":1,"
    "\"unitPriceMinor\":\"2345\"}],\"channel\":\"CHANNEL_WEB\"}";
static const uint8_t order_pb[] = { 0x0a, 0x0a, 'o', 'r', 'd', '-', '0', '0',
	'0', '0', '4', '2', 0x12, 0x08, 'o', '-', '0', '0', '0', '0', '4', '2',
	0x1a, 0x1d, 0x0a, 0x06, 'c', '-', '0', '0', '4', '2', 0x12, 0x0f, 'a',
	'n', 'a', '@', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
	0x1a, 0x02, 'P', 'T', 0x20, 0xb9, 0x60, 0x2a, 0x03, 'E', 'U', 'R', 0x32,
	0x0b, 0x08, 0xa0, 0xcf, 0x86, 0xba, 0x06, 0x10, 0x80, 0xe5, 0x9a, 0x77,
	0x3a, 0x0c, 0x0a, 0x05, 'S', 'K', 'U', '-', '1', 0x10, 0x02, 0x18, 0x88,
	0x27, 0x3a, 0x0c, 0x0a, 0x05, 'S', 'K', 'U', '-', '2', 0x10, 0x01, 0x18,
	0xa9, 0x12, 0x40, 0x01 };

struct fixture {
	struct schema *events;
	const struct schema_type *v2, *failed;
	struct view *json, *pb;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);

	/* Deliveries hold nats.c messages, which need the library open. */
	if (nats_Open(-1) != NATS_OK)
		return -1;
	f->events = protoc_events();
	f->v2 = schema_lookup(f->events, "orders.v2.OrderCreated");
	f->failed = schema_lookup(f->events, "payments.v1.PaymentFailed");
	f->json = view_new(f->v2, VIEW_JSON, order_json, strlen(order_json),
	    &schema_limits_default);
	f->pb = view_new(f->v2, VIEW_PROTOBUF, order_pb, sizeof order_pb,
	    &schema_limits_default);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	view_free(f->json);
	view_free(f->pb);
	view_free(NULL);
	schema_free(f->events);
	free(f);
	nats_Close();
	return 0;
}

/* The text at |path| of |v|; fails unless the field is there. */
static char *
text(const struct view *v, const char *path)
{
	char *t = NULL, *err = NULL;
	int rc = view_text(v, path, &t, &err);

	if (rc != 1)
		fail_msg("%s: %d %s", path, rc, err != NULL ? err : "absent");
	return t;
}

static void
parses_content_types(void **state)
{
	static const struct {
		const char *ct;
		int rc;
		enum view_encoding enc;
	} cases[] = {
		{ "application/json", 0, VIEW_JSON },
		{ "Application/JSON; charset=utf-8", 0, VIEW_JSON },
		{ " application/json ;charset=utf-8", 0, VIEW_JSON },
		{ "application/protobuf", 0, VIEW_PROTOBUF },
		{ "application/x-protobuf; messageType=x.Y", 0, VIEW_PROTOBUF },
		{ "application/jsonx", -1, VIEW_JSON },
		{ "text/plain", -1, VIEW_JSON },
		{ "application/", -1, VIEW_JSON },
		{ "", -1, VIEW_JSON },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		enum view_encoding enc = VIEW_JSON;

		if (view_encoding_parse(cases[i].ct, &enc) != cases[i].rc)
			fail_msg("\"%s\"", cases[i].ct);
		if (cases[i].rc == 0)
			assert_int_equal(enc, cases[i].enc);
	}
}

static void
reads_the_same_fields_from_both_encodings(void **state)
{
	static const char *const paths[][2] = {
		{ "message_id", "ord-000042" },
		{ "messageId", "ord-000042" },
		{ "orderRef", "o-000042" },
		{ "customer.id", "c-0042" },
		{ "customer",
		    "{\"id\":\"c-0042\",\"email\":\"ana@example.com\","
		    "\"country\":\"PT\"}" },
		{ "items[1].sku", "SKU-2" },
		{ "items[0].quantity", "2" },
		{ "items[0].unitPriceMinor", "5000" },
		{ "total_minor", "12345" },
		{ "channel", "CHANNEL_WEB" },
		{ "created_at", "2024-11-23T10:00:00.250Z" },
		{ "created_at.nanos", "250000000" },
	};
	struct fixture *f = *state;

	assert_null(view_error(f->json));
	assert_null(view_error(f->pb));
	assert_int_equal(view_encoding_of(f->json), VIEW_JSON);
	assert_int_equal(view_encoding_of(f->pb), VIEW_PROTOBUF);
	assert_ptr_equal(view_type(f->pb), f->v2);
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		char *a = text(f->json, paths[i][0]);
		char *b = text(f->pb, paths[i][0]);

		assert_string_equal(a, paths[i][1]);
		assert_string_equal(b, paths[i][1]);
		free(a);
		free(b);
	}
}

static void
reads_typed_values(void **state)
{
	struct fixture *f = *state;
	struct view_value v;
	char *err = NULL;

	assert_int_equal(view_read(f->pb, "customer.email", &v, &err), 1);
	assert_int_equal(v.kind, VIEW_STRING);
	assert_string_equal(v.s, "ana@example.com");
	assert_int_equal(v.len, 15);
	assert_int_equal(view_read(f->pb, "total_minor", &v, &err), 1);
	assert_int_equal(v.kind, VIEW_INT);
	assert_int_equal(v.i, 12345);
	assert_int_equal(view_read(f->json, "items[1].quantity", &v, &err), 1);
	assert_int_equal(v.kind, VIEW_UINT);
	assert_int_equal(v.u, 1);
	assert_int_equal(view_read(f->json, "channel", &v, &err), 1);
	assert_int_equal(v.kind, VIEW_ENUM);
	assert_int_equal(v.i, 1);
	assert_string_equal(v.s, "CHANNEL_WEB");
	assert_int_equal(view_read(f->json, "created_at", &v, &err), 1);
	assert_int_equal(v.kind, VIEW_MESSAGE);
	assert_string_equal(
	    v.msg->descriptor->name, "google.protobuf.Timestamp");
	assert_null(err);
}

static void
tells_absent_fields(void **state)
{
	struct fixture *f = *state;
	static const char failed[] =
	    "{\"declineCode\":\"05\",\"retryable\":true}";
	struct view *bare =
	    view_new(f->v2, VIEW_JSON, "{}", 2, &schema_limits_default);
	struct view *fv = view_new(f->failed, VIEW_JSON, failed, strlen(failed),
	    &schema_limits_default);
	struct view *unset =
	    view_new(f->failed, VIEW_PROTOBUF, "", 0, &schema_limits_default);
	struct view_value v;
	char *err = NULL, *t;

	assert_int_equal(view_read(f->pb, "items[2].sku", &v, &err), 0);
	assert_int_equal(view_read(bare, "customer.id", &v, &err), 0);
	assert_int_equal(view_read(bare, "created_at", &v, &err), 0);
	assert_int_equal(view_read(bare, "items[0]", &v, &err), 0);
	/* Absent or not, a path that names no field is an error. */
	assert_int_equal(view_read(bare, "customer.nope", &v, &err), -1);
	assert_string_equal(
	    err, "path customer.nope: orders.v2.Customer has no field nope");
	free(err);
	err = NULL;
	/* Fields without presence read as their default. */
	assert_int_equal(view_read(bare, "currency", &v, &err), 1);
	assert_string_equal(v.s, "");
	assert_int_equal(view_read(bare, "total_minor", &v, &err), 1);
	assert_int_equal(v.i, 0);
	/* A wrapper reads as what it wraps, or as absent. */
	assert_int_equal(view_read(fv, "decline_code", &v, &err), 1);
	assert_int_equal(v.kind, VIEW_STRING);
	assert_string_equal(v.s, "05");
	assert_int_equal(view_text(fv, "retryable", &t, &err), 1);
	assert_string_equal(t, "true");
	free(t);
	assert_int_equal(view_read(unset, "decline_code", &v, &err), 0);
	assert_int_equal(view_text(unset, "decline_code", &t, &err), 0);
	assert_null(t);
	assert_null(err);
	view_free(bare);
	view_free(fv);
	view_free(unset);
}

static void
rejects_paths_that_name_no_field(void **state)
{
	static const char *const cases[][2] = {
		{ "nope",
		    "path nope: orders.v2.OrderCreated has no field nope" },
		{ "customer.nope",
		    "path customer.nope: orders.v2.Customer has no field "
		    "nope" },
		{ "items.sku",
		    "path items.sku: field items is repeated: give an index" },
		{ "items",
		    "path items: field items is repeated: give an index" },
		{ "message_id[0]",
		    "path message_id[0]: field message_id is not repeated" },
		{ "items[x].sku",
		    "path items[x].sku: expected an index in []" },
		{ "items[-1]", "path items[-1]: expected an index in []" },
		{ "items[0]sku",
		    "path items[0]sku: expected . or the end after items" },
		{ "message_id.x",
		    "path message_id.x: field message_id is not a message" },
		{ "", "path : orders.v2.OrderCreated has no field " },
		{ "customer.",
		    "path customer.: orders.v2.Customer has no field " },
	};
	struct fixture *f = *state;
	struct view_value v;
	char *err;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		assert_int_equal(view_read(f->pb, cases[i][0], &v, &err), -1);
		assert_string_equal(err, cases[i][1]);
		free(err);
		assert_int_equal(view_path_check(f->v2, cases[i][0], &err), -1);
		assert_string_equal(err, cases[i][1]);
		free(err);
	}
	assert_int_equal(view_path_check(f->v2, "items[7].sku", &err), 0);
	assert_int_equal(view_path_check(f->v2, "customer.email", &err), 0);
	assert_null(err);
}

static void
refuses_map_paths(void **state)
{
	struct schema *shop = protoc_shop();
	const struct schema_type *t = schema_lookup(shop, "shop.test.Order");
	char *err = NULL;

	assert_int_equal(view_path_check(t, "tags", &err), -1);
	assert_string_equal(
	    err, "path tags: field tags is a map, which paths cannot read");
	free(err);
	assert_int_equal(view_path_check(t, "lines[0].kind", &err), 0);
	assert_int_equal(
	    view_path_check(t, "parent.parent.ship_to.lines[3]", &err), 0);
	schema_free(shop);
}

static void
carries_decoding_errors(void **state)
{
	struct fixture *f = *state;
	struct view *v = view_new(
	    f->v2, VIEW_JSON, "{\"channel\":true}", 16, &schema_limits_default);
	struct view_value val;
	char *err, *t;
	void *out;
	size_t len;

	assert_string_equal(view_error(v),
	    "orders.v2.OrderCreated: field channel: expected an enum name or "
	    "number, got a boolean");
	assert_null(view_message(v));
	assert_int_equal(view_read(v, "channel", &val, &err), -1);
	assert_string_equal(err,
	    "payload did not decode: orders.v2.OrderCreated: field channel: "
	    "expected an enum name or number, got a boolean");
	free(err);
	assert_int_equal(view_text(v, "channel", &t, &err), -1);
	free(err);
	assert_int_equal(view_encode(v, VIEW_PROTOBUF, &out, &len, &err), -1);
	assert_null(out);
	free(err);
	view_free(v);
	v = view_new(
	    f->v2, VIEW_PROTOBUF, "\x0a\x05", 2, &schema_limits_default);
	assert_string_equal(view_error(v),
	    "orders.v2.OrderCreated: field message_id (number 1) at offset 1: "
	    "length 5 runs past the end");
	view_free(v);
}

static void
encodes_either_way(void **state)
{
	struct fixture *f = *state;
	char *err = NULL;
	void *out;
	size_t len;

	assert_int_equal(
	    view_encode(f->json, VIEW_PROTOBUF, &out, &len, &err), 0);
	assert_int_equal(len, sizeof order_pb);
	assert_memory_equal(out, order_pb, len);
	free(out);
	assert_int_equal(view_encode(f->pb, VIEW_JSON, &out, &len, &err), 0);
	assert_int_equal(len, strlen(order_json));
	assert_string_equal(out, order_json);
	free(out);
	assert_null(err);
}

/* A type_of that counts its calls. */
struct counter {
	int calls;
	const struct schema_type *type;
};

static const struct schema_type *
counted_type(const struct delivery *d, void *arg)
{
	struct counter *c = arg;

	c->calls++;
	return c->type;
}

/* A delivery of |len| bytes at |data| with Content-Type |ct| (if not
 * NULL). */
static struct delivery *
make_delivery(const void *data, size_t len, const char *ct)
{
	natsMsg *m = NULL;

	if (natsMsg_Create(&m, "orders.created.v2",
		"$JS.ACK.ORDERS.app.1.7.7.1700000000000000000.0", data,
		(int)len) != NATS_OK)
		fail_msg("natsMsg_Create");
	if (ct != NULL && natsMsgHeader_Set(m, "Content-Type", ct) != NATS_OK)
		fail_msg("natsMsgHeader_Set");
	return delivery_new(m, NULL, bus_msg_size(m));
}

static void
decodes_a_delivery_once(void **state)
{
	struct fixture *f = *state;
	struct counter c = { 0, f->v2 };
	struct view_spec spec = { counted_type, &c, "application/json",
		schema_limits_default };
	struct delivery *d;
	const struct view *v;
	char *t;

	/* The header says protobuf; the subscription default is JSON. */
	d = make_delivery(order_pb, sizeof order_pb, "application/x-protobuf");
	v = view_get(d, &spec);
	assert_null(view_error(v));
	assert_ptr_equal(view_get(d, &spec), v);
	assert_ptr_equal(d->view, v);
	assert_int_equal(c.calls, 1);
	t = text(v, "customer.id");
	assert_string_equal(t, "c-0042");
	free(t);
	delivery_free(d);

	/* No header: the subscription's default. */
	d = make_delivery(order_json, strlen(order_json), NULL);
	v = view_get(d, &spec);
	assert_null(view_error(v));
	assert_int_equal(view_encoding_of(v), VIEW_JSON);
	delivery_free(d);

	/* A failure is decided once too. */
	c.calls = 0;
	d = make_delivery("{", 1, "application/json");
	v = view_get(d, &spec);
	assert_non_null(view_error(v));
	assert_ptr_equal(view_get(d, &spec), v);
	assert_int_equal(c.calls, 1);
	delivery_free(d);
}

static void
fails_deliveries_it_cannot_type(void **state)
{
	struct fixture *f = *state;
	struct view_spec spec = { view_type_fixed, (void *)f->v2,
		"application/json", schema_limits_default };
	struct counter none = { 0, NULL };
	struct delivery *d;

	d = make_delivery(order_json, strlen(order_json), "text/csv");
	assert_string_equal(view_error(view_get(d, &spec)),
	    "orders.v2.OrderCreated: unsupported content type \"text/csv\"");
	delivery_free(d);

	spec.type_of = counted_type;
	spec.arg = &none;
	d = make_delivery(order_json, strlen(order_json), NULL);
	assert_string_equal(view_error(view_get(d, &spec)),
	    "no message type for subject orders.created.v2");
	assert_null(view_type(d->view));
	delivery_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_content_types),
		cmocka_unit_test(reads_the_same_fields_from_both_encodings),
		cmocka_unit_test(reads_typed_values),
		cmocka_unit_test(tells_absent_fields),
		cmocka_unit_test(rejects_paths_that_name_no_field),
		cmocka_unit_test(refuses_map_paths),
		cmocka_unit_test(carries_decoding_errors),
		cmocka_unit_test(encodes_either_way),
		cmocka_unit_test(decodes_a_delivery_once),
		cmocka_unit_test(fails_deliveries_it_cannot_type),
	};

	return cmocka_run_group_tests_name("view", tests, setup, teardown);
}
