/*
 * Mappings between schema versions: golden translations of the reference
 * orders (v1 JSON -> v2 protobuf, v1 protobuf -> v2 JSON, v2 -> v1, v1 ->
 * v2 -> v3) checked field by field, a round-trip property over generated
 * v1 messages, a mapping over a schema protoc builds while the test runs,
 * bad values that must fail naming the field, compile errors naming the
 * file, line and field, and the report of unfilled and lost fields.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/orders_v1.pb-c.h"
#include "events/orders_v2.pb-c.h"
#include "harness/cmocka.h"
#include "harness/proc.h"
#include "harness/protoc.h"
#include "sidecar/mapping.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"

struct fixture {
	struct schema *events;
	struct mapping *up, *down, *v3;
};

static struct mapping *
load(const struct schema *s, const char *name)
{
	char path[1024], *err = NULL;
	struct mapping *m;

	proc_tree_path(path, sizeof path, "top_srcdir", name);
	if ((m = mapping_load(path, s, &err)) == NULL)
		fail_msg("%s", err);
	return m;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	f->events = protoc_events();
	f->up = load(f->events, "examples/mappings/orders-v1-to-v2.yaml");
	f->down = load(f->events, "examples/mappings/orders-v2-to-v1.yaml");
	f->v3 = load(f->events, "examples/mappings/orders-v2-to-v3.yaml");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	mapping_free(f->up);
	mapping_free(f->down);
	mapping_free(f->v3);
	schema_free(f->events);
	free(f);
	return 0;
}

static ProtobufCMessage *
json_in(const struct schema *s, const char *type, const char *json)
{
	ProtobufCMessage *m = NULL;
	char *err = NULL;

	if (pbjson_decode(schema_lookup(s, type), json, strlen(json),
		&schema_limits_default, &m, &err) == -1)
		fail_msg("%s", err);
	return m;
}

static char *
json_out(const ProtobufCMessage *m)
{
	char *err = NULL, *s;
	size_t len;

	if ((s = pbjson_encode(m, &len, &err)) == NULL)
		fail_msg("%s", err);
	return s;
}

static ProtobufCMessage *
apply(const struct mapping *m, const ProtobufCMessage *in)
{
	ProtobufCMessage *out = NULL;
	char *err = NULL;

	if (mapping_apply(m, in, &out, &err) == -1)
		fail_msg("%s", err);
	return out;
}

/* The error mapping |json| of |type| through |m| gives. */
static char *
apply_error(const struct schema *s, const struct mapping *m, const char *type,
    const char *json)
{
	ProtobufCMessage *in = json_in(s, type, json), *out = NULL;
	char *err = NULL;

	assert_int_equal(mapping_apply(m, in, &out, &err), -1);
	assert_null(out);
	assert_non_null(err);
	schema_message_free(in);
	return err;
}

static const char v1_json[] =
    "{\"messageId\":\"m-1\",\"orderId\":\"o-42\",\"customerId\":\"c-7\","
    "\"totalAmount\":12.5,\"createdAt\":\"1732356000250\"}";

static void
test_v1_json_to_v2_protobuf(void **state)
{
	struct fixture *f = *state;
	ProtobufCMessage *in = json_in(
			     f->events, "orders.v1.OrderCreated", v1_json),
			 *out = apply(f->up, in);
	size_t len;
	uint8_t *bytes = pbwire_encode(out, &len);
	Orders__V2__OrderCreated *v2 =
	    orders__v2__order_created__unpack(NULL, len, bytes);

	assert_non_null(v2);
	assert_string_equal(v2->message_id, "m-1");
	assert_string_equal(v2->order_ref, "o-42");
	assert_non_null(v2->customer);
	assert_string_equal(v2->customer->id, "c-7");
	assert_string_equal(v2->customer->email, "");
	assert_int_equal(v2->total_minor, 1250);
	assert_string_equal(v2->currency, "EUR");
	assert_non_null(v2->created_at);
	assert_int_equal(v2->created_at->seconds, 1732356000);
	assert_int_equal(v2->created_at->nanos, 250000000);
	assert_int_equal(v2->n_items, 0);
	assert_int_equal(v2->channel, ORDERS__V2__CHANNEL__CHANNEL_UNSPECIFIED);
	orders__v2__order_created__free_unpacked(v2, NULL);
	free(bytes);
	schema_message_free(in);
	schema_message_free(out);
}

static void
test_v1_protobuf_to_v2_json(void **state)
{
	struct fixture *f = *state;
	Orders__V1__OrderCreated v1 = ORDERS__V1__ORDER_CREATED__INIT;
	ProtobufCMessage *in = NULL, *out;
	uint8_t buf[256];
	size_t len;
	char *err = NULL, *json;

	v1.message_id = "m-2";
	v1.order_id = "o-43";
	v1.customer_id = "c-8";
	v1.total_amount = 0.125; /* a tie: half_even rounds to 12 */
	v1.created_at = -1; /* 1969-12-31T23:59:59.999Z */
	len = orders__v1__order_created__pack(&v1, buf);
	assert_int_equal(
	    pbwire_decode(schema_lookup(f->events, "orders.v1.OrderCreated"),
		buf, len, &schema_limits_default, &in, &err),
	    0);
	out = apply(f->up, in);
	json = json_out(out);
	assert_string_equal(json,
	    "{\"messageId\":\"m-2\",\"orderRef\":\"o-43\",\"customer\":{\"id\":"
	    "\"c-8\"},\"totalMinor\":\"12\",\"currency\":\"EUR\","
	    "\"createdAt\":\"1969-12-31T23:59:59.999Z\"}");
	free(json);
	schema_message_free(in);
	schema_message_free(out);
}

static const char v2_json_ok[] =
    "{\"messageId\":\"m-3\",\"orderRef\":\"o-44\",\"customer\":{\"id\":"
    "\"c-9\",\"email\":\"a@example.com\",\"country\":\"FR\"},"
    "\"totalMinor\":\"1999\",\"currency\":\"EUR\",\"createdAt\":"
    "\"2024-11-23T10:00:00.250Z\",\"items\":[{\"sku\":\"A\",\"quantity\":2,"
    "\"unitPriceMinor\":\"1000\"},{\"sku\":\"B\",\"quantity\":1}],"
    "\"channel\":\"CHANNEL_MOBILE\"}";

static void
test_v2_to_v1_downcast(void **state)
{
	struct fixture *f = *state;
	ProtobufCMessage *in = json_in(
			     f->events, "orders.v2.OrderCreated", v2_json_ok),
			 *out = apply(f->down, in);
	char *json = json_out(out), *err;

	assert_string_equal(json,
	    "{\"messageId\":\"m-3\",\"orderId\":\"o-44\",\"customerId\":\"c-"
	    "9\","
	    "\"totalAmount\":19.99,\"createdAt\":\"1732356000250\"}");
	free(json);
	schema_message_free(in);
	schema_message_free(out);
	/* Another currency cannot be said in v1's euros. */
	err = apply_error(f->events, f->down, "orders.v2.OrderCreated",
	    "{\"totalMinor\":\"5\",\"currency\":\"USD\"}");
	assert_non_null(strstr(err,
	    "field currency: holds another value than "
	    "\"EUR\""));
	free(err);
}

static void
test_chain_v1_v2_v3(void **state)
{
	struct fixture *f = *state;
	ProtobufCMessage *in = json_in(
			     f->events, "orders.v1.OrderCreated", v1_json),
			 *mid = apply(f->up, in), *out = apply(f->v3, mid);
	char *json = json_out(out);

	assert_string_equal(json,
	    "{\"messageId\":\"m-1\",\"orderRef\":\"o-42\",\"customer\":{\"id\":"
	    "\"c-7\"},\"total\":{\"minor\":\"1250\",\"currency\":\"EUR\"},"
	    "\"createdAt\":\"2024-11-23T10:00:00.250Z\",\"source\":"
	    "\"upcast\"}");
	free(json);
	schema_message_free(out);
	schema_message_free(mid);
	/* v2 -> v3 copies items and customer into v3's own types. */
	schema_message_free(in);
	in = json_in(f->events, "orders.v2.OrderCreated", v2_json_ok);
	out = apply(f->v3, in);
	json = json_out(out);
	assert_string_equal(json,
	    "{\"messageId\":\"m-3\",\"orderRef\":\"o-44\",\"customer\":{\"id\":"
	    "\"c-9\",\"email\":\"a@example.com\",\"country\":\"FR\"},\"total\":"
	    "{\"minor\":\"1999\",\"currency\":\"EUR\"},\"createdAt\":"
	    "\"2024-11-23T10:00:00.250Z\",\"items\":[{\"sku\":\"A\","
	    "\"quantity\":2,\"unitPriceMinor\":\"1000\"},{\"sku\":\"B\","
	    "\"quantity\":1}],\"channel\":\"mobile\",\"source\":\"upcast\"}");
	assert_string_equal(
	    schema_type_name(mapping_to(f->v3)), "orders.v3.OrderCreated");
	free(json);
	schema_message_free(in);
	schema_message_free(out);
}

/* splitmix64, for reproducible generated messages. */
static uint64_t
next_random(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
random_text(uint64_t *s, char *buf, size_t cap)
{
	static const char alphabet[] = "abcXYZ019-_ \xc3\xa9";
	size_t n = 1 + next_random(s) % (cap - 2), i = 0;

	while (i < n) {
		size_t k = next_random(s) % (sizeof alphabet - 1);

		if (alphabet[k] == '\xc3') {
			if (i + 2 > n)
				break;
			buf[i++] = '\xc3';
			buf[i++] = '\xa9';
		} else if (alphabet[k] != '\xa9')
			buf[i++] = alphabet[k];
	}
	if (i == 0)
		buf[i++] = 'a';
	buf[i] = '\0';
}

/* v1 -> v2 -> v1 gives the same bytes for any v1 message the upcast
 * accepts: amounts in whole cents, times in the years 1 to 9999. */
static void
test_round_trip_property(void **state)
{
	struct fixture *f = *state;
	const struct schema_type *t =
	    schema_lookup(f->events, "orders.v1.OrderCreated");
	uint64_t seed = 20241123;

	for (int i = 0; i < 2000; i++) {
		Orders__V1__OrderCreated v1 = ORDERS__V1__ORDER_CREATED__INIT;
		char id[24], order[24], customer[24];
		ProtobufCMessage *in = NULL, *mid, *back;
		uint8_t a[256], *b;
		size_t alen, blen;
		char *err = NULL;

		random_text(&seed, id, sizeof id);
		random_text(&seed, order, sizeof order);
		random_text(&seed, customer, sizeof customer);
		v1.message_id = next_random(&seed) % 5 == 0 ? "" : id;
		v1.order_id = next_random(&seed) % 5 == 0 ? "" : order;
		v1.customer_id = customer;
		v1.total_amount = (double)(next_random(&seed) %
				      (i % 2 ? 100000000000ULL : 100000ULL)) /
		    100;
		v1.created_at =
		    (int64_t)(next_random(&seed) % 315537897600000ULL) -
		    62135596800000LL;
		alen = orders__v1__order_created__pack(&v1, a);
		assert_int_equal(pbwire_decode(t, a, alen,
				     &schema_limits_default, &in, &err),
		    0);
		mid = apply(f->up, in);
		back = apply(f->down, mid);
		b = pbwire_encode(back, &blen);
		if (blen != alen || memcmp(a, b, alen) != 0) {
			char *x = json_out(in), *y = json_out(back);

			fail_msg("message %d: %s came back as %s", i, x, y);
		}
		free(b);
		schema_message_free(in);
		schema_message_free(mid);
		schema_message_free(back);
	}
}

static void
test_bad_values(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{\"customerId\":\"c\",\"totalAmount\":\"NaN\"}",
		    "orders.v1.OrderCreated -> orders.v2.OrderCreated: field "
		    "total_amount: nan is not a finite amount" },
		{ "{\"customerId\":\"c\",\"totalAmount\":1e300}",
		    "field total_amount: 1.0000000000000001e+300 is out of "
		    "range [0, 100000000000] in minor units" },
		{ "{\"customerId\":\"c\",\"totalAmount\":-0.01}",
		    "field total_amount: -0.01 is out of range" },
		{ "{\"customerId\":\"c\",\"createdAt\":"
		  "\"9223372036854775807\"}",
		    "field created_at: 9223372036854775807 ms is outside the "
		    "years 1 to 9999" },
		{ "{\"orderId\":\"o\"}",
		    "field customer_id: is required and missing" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *err = apply_error(
		    f->events, f->up, "orders.v1.OrderCreated", cases[i].json);

		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json,
			    err, cases[i].want);
		free(err);
	}
}

/* A user's schema, compiled while the test runs, with a mapping given as
 * text: string -> enum, a move out of a nested message, a repeated field
 * of a nested type copied by name, a oneof, and an unknown enum name. */
static const char shop_proto[] =
    "syntax = \"proto3\";\n"
    "package shop;\n"
    "message Addr { string city = 1; string zip = 2; }\n"
    "message LineV1 { string sku = 1; uint32 qty = 2; }\n"
    "message LineV2 { string sku = 1; uint32 qty = 2; string note = 3; }\n"
    "enum State { STATE_UNKNOWN = 0; STATE_OPEN = 1; STATE_PAID = 2; }\n"
    "message OrderV1 { string id = 1; string state = 2; Addr addr = 3;\n"
    "  repeated LineV1 lines = 4; oneof pay { string card = 5;\n"
    "  string iban = 6; } double fee = 7; }\n"
    "message OrderV2 { string id = 1; State state = 2; string city = 3;\n"
    "  repeated LineV2 lines = 4; oneof pay { string card = 5;\n"
    "  string iban = 6; } int32 fee_cents = 7; bool migrated = 8; }\n";

static const char shop_mapping[] =
    "from: shop.OrderV1\n"
    "to: shop.OrderV2\n"
    "fields:\n"
    "  - { from: state, to: state, convert: string_to_enum, prefix: STATE_ "
    "}\n"
    "  - { from: addr.city, to: city }\n"
    "  - { drop: addr.zip }\n"
    "  - { from: fee, to: fee_cents, convert: major_to_minor, rounding: "
    "half_up }\n"
    "  - { to: migrated, default: true }\n";

static void
test_user_schema_at_run_time(void **state)
{
	struct schema *s = protoc_schema("shop.proto", shop_proto);
	struct mapping *m;
	ProtobufCMessage *in, *out;
	char *err = NULL, *json;

	(void)state;
	m = mapping_parse(
	    "shop.yaml", shop_mapping, strlen(shop_mapping), s, &err);
	if (m == NULL)
		fail_msg("%s", err);
	in = json_in(s, "shop.OrderV1",
	    "{\"id\":\"x\",\"state\":\"paid\",\"addr\":{\"city\":\"Lyon\","
	    "\"zip\":\"69001\"},\"lines\":[{\"sku\":\"a\",\"qty\":3},{}],"
	    "\"iban\":\"FR76\",\"fee\":0.125}");
	out = apply(m, in);
	json = json_out(out);
	assert_string_equal(json,
	    "{\"id\":\"x\",\"state\":\"STATE_PAID\",\"city\":\"Lyon\","
	    "\"lines\":"
	    "[{\"sku\":\"a\",\"qty\":3},{}],\"iban\":\"FR76\",\"feeCents\":13,"
	    "\"migrated\":true}");
	free(json);
	schema_message_free(in);
	schema_message_free(out);
	/* An unknown enum name; a fee beyond int32. */
	err = apply_error(s, m, "shop.OrderV1", "{\"state\":\"lost\"}");
	assert_string_equal(err,
	    "shop.OrderV1 -> shop.OrderV2: field state: \"lost\" names no "
	    "value of shop.State");
	free(err);
	err = apply_error(s, m, "shop.OrderV1", "{\"fee\":3e7}");
	assert_string_equal(err,
	    "shop.OrderV1 -> shop.OrderV2: field fee: 3000000000 is out of "
	    "range for the target field");
	free(err);
	mapping_free(m);
	schema_free(s);
}

/* Rules for nested types (types:): every element of a repeated field,
 * every map value and a singular field of those types are translated by
 * the declared rules, at any depth. */
static const char cart_proto[] =
    "syntax = \"proto3\";\n"
    "package cart;\n"
    "enum Kind { KIND_UNKNOWN = 0; KIND_GOODS = 1; KIND_SERVICE = 2; }\n"
    "message PartV1 { string ref = 1; }\n"
    "message PartV2 { string part_ref = 1; }\n"
    "message ItemV1 { string sku = 1; uint32 qty = 2; double price = 3;\n"
    "  string kind = 4; repeated PartV1 parts = 5; }\n"
    "message ItemV2 { string sku = 1; uint32 quantity = 2;\n"
    "  int64 price_minor = 3; Kind kind = 4; repeated PartV2 parts = 5; }\n"
    "message CartV1 { string id = 1; repeated ItemV1 items = 2;\n"
    "  map<string, ItemV1> by_sku = 3; ItemV1 gift = 4; }\n"
    "message CartV2 { string id = 1; repeated ItemV2 lines = 2;\n"
    "  map<string, ItemV2> by_sku = 3; ItemV2 gift = 4; }\n";

static const char cart_mapping[] =
    "from: cart.CartV1\n"
    "to: cart.CartV2\n"
    "fields:\n"
    "  - { from: items, to: lines }\n"
    "types:\n"
    "  - from: cart.ItemV1\n"
    "    to: cart.ItemV2\n"
    "    fields:\n"
    "      - { from: qty, to: quantity }\n"
    "      - { from: price, to: price_minor, convert: major_to_minor, "
    "min: 0 }\n"
    "      - { from: kind, to: kind, convert: string_to_enum, prefix: "
    "KIND_ }\n"
    "  - from: cart.PartV1\n"
    "    to: cart.PartV2\n"
    "    fields:\n"
    "      - { from: ref, to: part_ref, required: true }\n";

static void
test_rules_for_nested_types(void **state)
{
	struct schema *s = protoc_schema("cart.proto", cart_proto);
	struct mapping *m;
	ProtobufCMessage *in, *out;
	char *err = NULL, *json, *text = NULL;
	size_t len = 0;
	FILE *report;

	(void)state;
	m = mapping_parse(
	    "cart.yaml", cart_mapping, strlen(cart_mapping), s, &err);
	if (m == NULL)
		fail_msg("%s", err);
	in = json_in(s, "cart.CartV1",
	    "{\"id\":\"c1\",\"items\":[{\"sku\":\"a\",\"qty\":2,"
	    "\"price\":1.5,\"kind\":\"goods\",\"parts\":[{\"ref\":\"p1\"},"
	    "{\"ref\":\"p2\"}]},{\"sku\":\"b\",\"price\":0.1,\"kind\":"
	    "\"service\"}],\"bySku\":{\"a\":{\"qty\":7,\"price\":2}},"
	    "\"gift\":{\"sku\":\"g\",\"qty\":1}}");
	out = apply(m, in);
	json = json_out(out);
	assert_string_equal(json,
	    "{\"id\":\"c1\",\"lines\":[{\"sku\":\"a\",\"quantity\":2,"
	    "\"priceMinor\":\"150\",\"kind\":\"KIND_GOODS\",\"parts\":"
	    "[{\"partRef\":\"p1\"},{\"partRef\":\"p2\"}]},{\"sku\":\"b\","
	    "\"priceMinor\":\"10\",\"kind\":\"KIND_SERVICE\"}],\"bySku\":"
	    "{\"a\":{\"quantity\":7,\"priceMinor\":\"200\"}},\"gift\":"
	    "{\"sku\":\"g\",\"quantity\":1}}");
	free(json);
	schema_message_free(in);
	schema_message_free(out);
	/* A bad element names its index and field; nothing comes out. */
	err = apply_error(
	    s, m, "cart.CartV1", "{\"items\":[{\"price\":1},{\"price\":-3}]}");
	assert_string_equal(err,
	    "cart.CartV1 -> cart.CartV2: field items[1].price: -3 is out of "
	    "range [0, 9007199254740992] in minor units");
	free(err);
	err = apply_error(
	    s, m, "cart.CartV1", "{\"gift\":{\"parts\":[{\"ref\":\"x\"},{}]}}");
	assert_string_equal(err,
	    "cart.CartV1 -> cart.CartV2: field gift.parts[1].ref: is "
	    "required and missing");
	free(err);
	/* The declared types are reported like the file's own pair. */
	report = open_memstream(&text, &len);
	assert_int_equal(mapping_report(m, "", report), 0);
	fclose(report);
	free(text);
	mapping_free(m);
	schema_free(s);
}

#define V2_V3 "from: orders.v2.OrderCreated\nto: orders.v3.OrderCreated\n"

static void
test_compile_errors(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: order_id, to: order_reff }\n",
		    "m.yaml:4: order_reff: orders.v2.OrderCreated has no "
		    "field order_reff" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: order_id, to: order_ref }\n"
		  "  - { from: message_id, to: order_ref }\n",
		    "m.yaml:5: order_ref: filled twice" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: total_amount, to: total_minor }\n",
		    "m.yaml:4: total_amount and total_minor have different "
		    "types (use a converter)" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: created_at, to: created_at, convert: "
		  "ms_to_timestamp, zone: utc }\n",
		    "m.yaml:4: ms_to_timestamp: unknown parameter zone" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: total_amount, to: total_minor, "
		  "convert: "
		  "major_to_minor, rounding: bankers }\n",
		    "m.yaml:4: major_to_minor: rounding: expected half_even" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: order_id, to: total_minor, convert: "
		  "ms_to_timestamp }\n",
		    "m.yaml:4: order_id: ms_to_timestamp takes a signed "
		    "integer" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { to: channel, default: CHANNEL_TV }\n",
		    "m.yaml:4: \"CHANNEL_TV\" names no value of "
		    "orders.v2.Channel" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: x, to: y, convert: nope }\n",
		    "m.yaml:4: x: orders.v1.OrderCreated has no field x" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "fields:\n  - { from: order_id, to: order_ref, convert: "
		  "nope }\n",
		    "m.yaml:4: no converter called nope" },
		{ "from: orders.v1.Nope\nto: orders.v2.OrderCreated\n",
		    "m.yaml:1: no message type orders.v1.Nope" },
		{ "from: [\n", "m.yaml:2:" },
		{ V2_V3 "types:\n  - from: orders.v2.LineItem\n"
			"    to: orders.v3.LineItem\n    fields:\n"
			"      - { from: sku, to: skew }\n",
		    "m.yaml:7: skew: orders.v3.LineItem has no field skew" },
		{ V2_V3
		    "types:\n  - { from: orders.v2.LineItem, to: "
		    "orders.v3.LineItem }\n  - { from: orders.v2.LineItem, to: "
		    "orders.v3.LineItem }\n",
		    "m.yaml:5: orders.v2.LineItem -> orders.v3.LineItem is "
		    "declared twice" },
		{ V2_V3 "types:\n  - { from: orders.v2.OrderCreated, to: "
			"orders.v3.OrderCreated }\n",
		    "m.yaml:4: orders.v2.OrderCreated -> "
		    "orders.v3.OrderCreated "
		    "is the file's own pair" },
		{ V2_V3 "types:\n  - { from: orders.v2.Nope, to: "
			"orders.v3.LineItem }\n",
		    "m.yaml:4: no message type orders.v2.Nope" },
		{ V2_V3 "types:\n  - { from: orders.v2.LineItem, to: "
			"orders.v3.LineItem, types: [] }\n",
		    "m.yaml:4: unexpected key types" },
		{ "from: orders.v1.OrderCreated\nto: orders.v2.OrderCreated\n"
		  "types:\n  - { from: orders.v2.LineItem, to: "
		  "orders.v3.LineItem }\n",
		    "m.yaml: types: orders.v2.LineItem -> orders.v3.LineItem: "
		    "no "
		    "field of orders.v1.OrderCreated is copied through it" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *err = NULL;
		struct mapping *m = mapping_parse("m.yaml", cases[i].yaml,
		    strlen(cases[i].yaml), f->events, &err);

		assert_null(m);
		if (err == NULL || strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
			    err != NULL ? err : "(none)", cases[i].want);
		free(err);
	}
}

static void
test_report(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0, n;
	FILE *out = open_memstream(&text, &len);

	n = mapping_report(f->up, "# ", out);
	fclose(out);
	assert_int_equal(n, 4);
	assert_non_null(strstr(text,
	    "customer.email (target): nothing fills "
	    "it\n"));
	assert_non_null(strstr(text, "customer.country (target)"));
	assert_non_null(strstr(text, "items (target)"));
	assert_non_null(strstr(text, "channel (target)"));
	free(text);
	/* The downcast drops all it loses explicitly. */
	out = open_memstream(&text, &len);
	assert_int_equal(mapping_report(f->down, "", out), 0);
	fclose(out);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_json_to_v2_protobuf),
		cmocka_unit_test(test_v1_protobuf_to_v2_json),
		cmocka_unit_test(test_v2_to_v1_downcast),
		cmocka_unit_test(test_chain_v1_v2_v3),
		cmocka_unit_test(test_round_trip_property),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_user_schema_at_run_time),
		cmocka_unit_test(test_rules_for_nested_types),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_report),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
