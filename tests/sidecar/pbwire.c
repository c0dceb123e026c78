/*
 * The checking protobuf decoder: what protoc-c encodes decodes into the
 * same struct layout, and every kind of bad input fails with the field
 * and offset at fault, within the limits, without a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "events/orders_v1.pb-c.h"
#include "events/orders_v2.pb-c.h"
#include "harness/cmocka.h"
#include "harness/protoc.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"
#include "sidecar/xmalloc.h"

struct fixture {
	struct schema *events;
	struct schema *shop;
	const struct schema_type *v1, *v2, *failed, *order;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);

	f->events = protoc_events();
	f->shop = protoc_shop();
	f->v1 = schema_lookup(f->events, "orders.v1.OrderCreated");
	f->v2 = schema_lookup(f->events, "orders.v2.OrderCreated");
	f->failed = schema_lookup(f->events, "payments.v1.PaymentFailed");
	f->order = schema_lookup(f->shop, "shop.test.Order");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	schema_free(f->events);
	schema_free(f->shop);
	free(f);
	return 0;
}

/* Decodes |len| bytes as |t| and expects exactly the error |want|. */
static void
expect_error_lim(const struct schema_type *t, const void *data, size_t len,
    const struct schema_limits *lim, const char *want)
{
	ProtobufCMessage *m = NULL;
	char *err = NULL;

	if (pbwire_decode(t, data, len, lim, &m, &err) == 0) {
		schema_message_free(m);
		fail_msg("decoded; wanted \"%s\"", want);
	}
	assert_null(m);
	assert_non_null(err);
	if (strcmp(err, want) != 0)
		fail_msg("error \"%s\", wanted \"%s\"", err, want);
	free(err);
}

static void
expect_error(
    const struct schema_type *t, const void *data, size_t len, const char *want)
{
	expect_error_lim(t, data, len, &schema_limits_default, want);
}

/* Decodes what is known to be good; fails the test otherwise. */
static ProtobufCMessage *
decode(const struct schema_type *t, const void *data, size_t len)
{
	ProtobufCMessage *m;
	char *err;

	if (pbwire_decode(t, data, len, &schema_limits_default, &m, &err) == -1)
		fail_msg("%s", err);
	return m;
}

static void
decodes_what_protoc_c_encodes(void **state)
{
	struct fixture *f = *state;
	Orders__V2__OrderCreated o = ORDERS__V2__ORDER_CREATED__INIT, *back;
	Orders__V2__Customer c = ORDERS__V2__CUSTOMER__INIT;
	Orders__V2__LineItem i1 = ORDERS__V2__LINE_ITEM__INIT,
			     i2 = ORDERS__V2__LINE_ITEM__INIT, *items[2];
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ProtobufCMessage *m;
	uint8_t buf[256], *again;
	size_t len, len2;

	c.id = "c-0042";
	i1.sku = "SKU-1";
	i1.quantity = 2;
	i1.unit_price_minor = 5000;
	i2.sku = "SKU-2";
	i2.quantity = 4000000000u;
	i2.unit_price_minor = -1;
	items[0] = &i1;
	items[1] = &i2;
	ts.seconds = 1732356000;
	ts.nanos = 250000000;
	o.message_id = "ord-000042";
	o.order_ref = "o-000042";
	o.customer = &c;
	o.total_minor = 12345;
	o.currency = "EUR";
	o.created_at = &ts;
	o.n_items = 2;
	o.items = items;
	o.channel = ORDERS__V2__CHANNEL__CHANNEL_MOBILE;
	len = orders__v2__order_created__pack(&o, buf);

	/* The runtime layout is protoc-c's: the generated struct reads the
	 * message the runtime descriptor unpacked. */
	m = decode(f->v2, buf, len);
	back = (Orders__V2__OrderCreated *)m;
	assert_string_equal(back->message_id, "ord-000042");
	assert_string_equal(back->customer->id, "c-0042");
	assert_string_equal(back->customer->email, "");
	assert_int_equal(back->total_minor, 12345);
	assert_int_equal(back->created_at->seconds, 1732356000);
	assert_int_equal(back->created_at->nanos, 250000000);
	assert_int_equal(back->n_items, 2);
	assert_string_equal(back->items[1]->sku, "SKU-2");
	assert_int_equal(back->items[1]->quantity, 4000000000u);
	assert_int_equal(back->items[1]->unit_price_minor, -1);
	assert_int_equal(back->channel, ORDERS__V2__CHANNEL__CHANNEL_MOBILE);
	again = pbwire_encode(m, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	free(again);
	schema_message_free(m);
}

static void
keeps_unknown_fields(void **state)
{
	struct fixture *f = *state;
	/* v1 message_id "m", then field 99 (varint 7) and field 100
	 * (length-delimited "xy"), which v1 does not know. */
	static const uint8_t in[] = { 0x0a, 0x01, 'm', 0x98, 0x06, 0x07, 0xa2,
		0x06, 0x02, 'x', 'y' };
	ProtobufCMessage *m = decode(f->v1, in, sizeof in);
	uint8_t *out;
	size_t len;

	assert_int_equal(m->n_unknown_fields, 2);
	assert_string_equal(((Orders__V1__OrderCreated *)m)->message_id, "m");
	out = pbwire_encode(m, &len);
	assert_int_equal(len, sizeof in);
	assert_memory_equal(out, in, len);
	free(out);
	schema_message_free(m);
}

static void
follows_protobuf_merge_rules(void **state)
{
	struct fixture *f = *state;
	/* total_minor twice: the last wins. */
	static const uint8_t v2[] = { 0x20, 0x01, 0x20, 0x02 };
	/* counts packed, then one more unpacked: concatenated. */
	static const uint8_t shop[] = { 0x9a, 0x01, 0x02, 0x01, 0x02, 0x98,
		0x01, 0x03 };
	Orders__V2__OrderCreated *o;
	ProtobufCMessage *m;
	const ProtobufCFieldDescriptor *counts;

	m = decode(f->v2, "", 0);
	assert_string_equal(((Orders__V2__OrderCreated *)m)->message_id, "");
	assert_null(((Orders__V2__OrderCreated *)m)->customer);
	schema_message_free(m);

	o = (Orders__V2__OrderCreated *)decode(f->v2, v2, sizeof v2);
	assert_int_equal(o->total_minor, 2);
	schema_message_free(&o->base);

	m = decode(f->order, shop, sizeof shop);
	counts = protobuf_c_message_descriptor_get_field_by_name(
	    m->descriptor, "counts");
	assert_int_equal(*(size_t *)((char *)m + counts->quantifier_offset), 3);
	assert_int_equal((*(int32_t **)((char *)m + counts->offset))[2], 3);
	schema_message_free(m);

	/* A message given twice should merge; protobuf-c merges wrongly,
	 * so it is refused (a oneof member too). */
	expect_error(f->v2,
	    "\x1a\x03\x0a\x01"
	    "a\x1a\x03\x12\x01"
	    "e",
	    10,
	    "orders.v2.OrderCreated: field customer (number 3) at offset 5: "
	    "message field given twice, which is not supported");
	expect_error(f->order, "\xc2\x01\x00\xc2\x01\x00", 6,
	    "shop.test.Order: field invoice_to (number 24) at offset 3: "
	    "message field given twice, which is not supported");
}

static void
rejects_broken_encodings(void **state)
{
	struct fixture *f = *state;

	expect_error(f->v2, "\x20\x80", 2,
	    "orders.v2.OrderCreated: field total_minor (number 4) at offset "
	    "1: truncated or overlong varint");
	expect_error(f->v2, "\x20\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
	    12,
	    "orders.v2.OrderCreated: field total_minor (number 4) at offset "
	    "1: truncated or overlong varint");
	expect_error(f->v2, "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11,
	    "orders.v2.OrderCreated: field total_minor (number 4) at offset "
	    "1: varint overflows 64 bits");
	expect_error(f->v2,
	    "\x0a\x05"
	    "ab",
	    4,
	    "orders.v2.OrderCreated: field message_id (number 1) at offset 1: "
	    "length 5 runs past the end");
	expect_error(f->v2, "\x0a\x80\x80\x80\x80\x80\x01", 7,
	    "orders.v2.OrderCreated: field message_id (number 1) at offset 1: "
	    "truncated or overlong length");
	expect_error(f->v2, "\x31\x01\x02\x03", 4,
	    "orders.v2.OrderCreated: field created_at (number 6) at offset 1: "
	    "truncated 64-bit value");
	expect_error(f->v2, "\x80", 1,
	    "orders.v2.OrderCreated: at offset 0: truncated or overlong tag");
	expect_error(f->v2, "\x00\x01", 2,
	    "orders.v2.OrderCreated: at offset 0: invalid field number 0");
	expect_error(f->v2, "\x80\x80\x80\x80\x10\x01", 6,
	    "orders.v2.OrderCreated: at offset 0: invalid field number "
	    "536870912");
	expect_error(f->v2, "\x0b", 1,
	    "orders.v2.OrderCreated: field message_id (number 1) at offset 0: "
	    "groups are not supported");
	expect_error(f->v2, "\xfb\x01", 2,
	    "orders.v2.OrderCreated: at offset 0: unknown field 31: groups "
	    "are not supported");
	expect_error(f->v2, "\x0f", 1,
	    "orders.v2.OrderCreated: field message_id (number 1) at offset 0: "
	    "invalid wire type 7");
}

static void
rejects_wire_types_that_do_not_fit(void **state)
{
	struct fixture *f = *state;

	expect_error(f->v2, "\x21\x00\x00\x00\x00\x00\x00\x00\x00", 9,
	    "orders.v2.OrderCreated: field total_minor (number 4) at offset "
	    "0: wire type 1 (64-bit), expected 0 (varint)");
	expect_error(f->v2, "\x0a\x00\x18\x01", 4,
	    "orders.v2.OrderCreated: field customer (number 3) at offset 2: "
	    "wire type 0 (varint), expected 2 (length-delimited)");
	/* Inside a nested message, the path leads to the field. */
	expect_error(f->v2, "\x3a\x00\x3a\x05\x0d\x01\x02\x03\x04", 9,
	    "orders.v2.OrderCreated: field items[1].sku (number 1) at offset "
	    "4: wire type 5 (32-bit), expected 2 (length-delimited)");
}

static void
rejects_numbers_out_of_range(void **state)
{
	struct fixture *f = *state;
	/* -5 as int32, sign-extended to ten bytes, is in range. */
	static const uint8_t minus5[] = { 0x10, 0xfb, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0x01 };
	ProtobufCMessage *m = decode(f->order, minus5, sizeof minus5);

	schema_message_free(m);
	expect_error(f->order, "\x10\x80\x80\x80\x80\x08", 6,
	    "shop.test.Order: field i32 (number 2) at offset 1: value "
	    "2147483648 out of range for int32");
	expect_error(f->v2, "\x3a\x00\x3a\x06\x10\x80\x80\x80\x80\x10", 10,
	    "orders.v2.OrderCreated: field items[1].quantity (number 2) at "
	    "offset 5: value 4294967296 out of range for uint32");
	expect_error(f->v2, "\x40\x80\x80\x80\x80\x08", 6,
	    "orders.v2.OrderCreated: field channel (number 8) at offset 1: "
	    "value 2147483648 out of range for an enum");
	expect_error(f->failed, "\x40\x02", 2,
	    "payments.v1.PaymentFailed: field retryable (number 8) at offset "
	    "1: value 2 is not a bool");
	/* Packed: every element is checked; fixed sizes must divide. */
	expect_error(f->order, "\x98\x01\x01\x9a\x01\x02\x01\xff", 8,
	    "shop.test.Order: field counts (number 19) at offset 7: "
	    "truncated or overlong varint");
	expect_error(f->order, "\xb2\x02\x03\x01\x02\x03", 6,
	    "shop.test.Order: field codes (number 38) at offset 3: packed "
	    "length 3 is not a multiple of 4");
}

static void
rejects_strings_that_are_not_utf8(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"\xc3\x28", /* a lead byte without its continuation */
		"\xc0\x80", /* overlong NUL */
		"\xe0\x80\xaf", /* overlong '/' */
		"\xed\xa0\x80", /* a surrogate */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
		"\xe2\x82", /* cut short */
		"\xff",
	};
	char in[32];
	const char *good = "a\xc3\xa7\xc3\xa3o \xe2\x82\xac\xf0\x9f\x98\x80";
	ProtobufCMessage *m;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		size_t n = strlen(bad[i]);

		/* items[1].sku = "x" + bad */
		memcpy(in, "\x3a\x00\x3a\x00\x0a\x00x", 7);
		in[3] = (char)(n + 3);
		in[5] = (char)(n + 1);
		memcpy(in + 7, bad[i], n);
		expect_error(f->v2, in, 7 + n,
		    "orders.v2.OrderCreated: field items[1].sku (number 1) "
		    "at offset 7: invalid UTF-8");
	}
	expect_error(f->v2,
	    "\x0a\x03"
	    "a\0b",
	    5,
	    "orders.v2.OrderCreated: field message_id (number 1) at offset 3: "
	    "NUL character in a string");
	in[0] = 0x0a;
	in[1] = (char)strlen(good);
	memcpy(in + 2, good, strlen(good));
	m = decode(f->v2, in, 2 + strlen(good));
	assert_string_equal(((Orders__V2__OrderCreated *)m)->message_id, good);
	schema_message_free(m);
}

/* |depth| messages of shop.test.Order nested through field parent
 * (number 37), built from the inside out. */
static uint8_t *
nested(size_t depth, size_t *len)
{
	size_t cap = depth * 8 + 8, at = cap, inner = 0;
	uint8_t *buf = xmalloc(cap);

	for (size_t i = 0; i < depth; i++) {
		uint8_t v[10];
		size_t n = 0, l = inner;

		do {
			v[n++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
			l >>= 7;
		} while (l != 0);
		at -= n;
		memcpy(buf + at, v, n);
		buf[--at] = 0x02; /* tag 298 = 37 << 3 | 2 */
		buf[--at] = 0xaa;
		inner = cap - at;
	}
	memmove(buf, buf + at, cap - at);
	*len = cap - at;
	return buf;
}

static void
bounds_depth_size_and_memory(void **state)
{
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;
	uint8_t *deep, *many;
	ProtobufCMessage *m;
	char *err = NULL;
	size_t len;

	/* 64 levels below the top are allowed, 65 are not. */
	deep = nested(64, &len);
	m = decode(f->order, deep, len);
	schema_message_free(m);
	free(deep);
	deep = nested(65, &len);
	assert_int_equal(
	    pbwire_decode(f->order, deep, len, &lim, &m, &err), -1);
	assert_non_null(strstr(err, "nested deeper than 64"));
	assert_non_null(strstr(err, "...parent.parent"));
	free(err);
	free(deep);
	/* A million levels end at the limit too, not on a stack overflow. */
	deep = nested(1000000, &len);
	assert_int_equal(
	    pbwire_decode(f->order, deep, len, &lim, &m, &err), -1);
	assert_non_null(strstr(err, "nested deeper than 64"));
	free(err);
	free(deep);

	lim.max_size = 10;
	expect_error_lim(f->v2,
	    "\x0a\x09"
	    "123456789",
	    11, &lim,
	    "orders.v2.OrderCreated: 11 bytes, more than the limit of 10");

	/* 100000 empty items: 200 KB that would take megabytes. */
	lim = schema_limits_default;
	lim.max_memory = 1 << 20;
	many = xmalloc(200000);
	for (size_t i = 0; i < 100000; i++) {
		many[2 * i] = 0x3a;
		many[2 * i + 1] = 0x00;
	}
	assert_int_equal(
	    pbwire_decode(f->v2, many, 200000, &lim, &m, &err), -1);
	assert_non_null(strstr(err,
	    "decoding would take more than 1048576 "
	    "bytes"));
	free(err);
	lim.max_memory = 64 << 20;
	assert_int_equal(pbwire_decode(f->v2, many, 200000, &lim, &m, &err), 0);
	assert_int_equal(((Orders__V2__OrderCreated *)m)->n_items, 100000);
	schema_message_free(m);
	free(many);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_what_protoc_c_encodes),
		cmocka_unit_test(keeps_unknown_fields),
		cmocka_unit_test(follows_protobuf_merge_rules),
		cmocka_unit_test(rejects_broken_encodings),
		cmocka_unit_test(rejects_wire_types_that_do_not_fit),
		cmocka_unit_test(rejects_numbers_out_of_range),
		cmocka_unit_test(rejects_strings_that_are_not_utf8),
		cmocka_unit_test(bounds_depth_size_and_memory),
	};

	return cmocka_run_group_tests_name("pbwire", tests, setup, teardown);
}
