/*
 * proto3 JSON: golden texts and bytes of every reference event in both
 * encodings, byte-exact round trips, every spelling the mapping
 * accepts, and every kind of bad JSON. JSON in this file is written with
 * ' for " and converted before use.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_usable_size() */
#endif

#include "events/inventory.pb-c.h"
#include "events/orders_v1.pb-c.h"
#include "events/orders_v2.pb-c.h"
#include "events/payments.pb-c.h"
#include "harness/cmocka.h"
#include "harness/protoc.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"
#include "sidecar/xmalloc.h"

struct fixture {
	struct schema *events;
	struct schema *shop;
	const struct schema_type *order;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);

	f->events = protoc_events();
	f->shop = protoc_shop();
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

/* |s| with every ' turned into ", in a new string. */
static char *
js(const char *s)
{
	char *out = xstrdup(s);

	for (char *p = out; *p != '\0'; p++) {
		if (*p == '\'')
			*p = '"';
	}
	return out;
}

static uint8_t *
unhex(const char *s, size_t *len)
{
	uint8_t *out = xmalloc(strlen(s) / 2 + 1);

	*len = strlen(s) / 2;
	for (size_t i = 0; i < *len; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
	return out;
}

static ProtobufCMessage *
decode_json(const struct schema_type *t, const char *text,
    const struct schema_limits *lim)
{
	ProtobufCMessage *m;
	char *err;

	if (pbjson_decode(t, text, strlen(text), lim, &m, &err) == -1)
		fail_msg("%s", err);
	return m;
}

static char *
encode_json(const ProtobufCMessage *m)
{
	char *err = NULL, *s;
	size_t len;

	if ((s = pbjson_encode(m, &len, &err)) == NULL)
		fail_msg("%s", err);
	assert_int_equal(strlen(s), len);
	return s;
}

/* |in| (with ' for ") decodes as |t| and prints as |want|, which reads
 * back and prints the same. */
static void
expect_json(const struct schema_type *t, const char *in, const char *want,
    const struct schema_limits *lim)
{
	char *text = js(in), *w = js(want), *out, *again;
	ProtobufCMessage *m = decode_json(t, text, lim), *back;

	out = encode_json(m);
	if (strcmp(out, w) != 0)
		fail_msg("%s printed as %s, wanted %s", text, out, w);
	back = decode_json(t, out, lim);
	again = encode_json(back);
	if (strcmp(again, out) != 0)
		fail_msg("%s read back as %s", out, again);
	schema_message_free(back);
	free(again);
	free(out);
	free(text);
	free(w);
	schema_message_free(m);
}

/* |in| fails to decode with an error that contains |want|. */
static void
expect_error_lim(const struct schema_type *t, const char *in, const char *want,
    const struct schema_limits *lim)
{
	char *text = js(in), *w = js(want), *err = NULL;
	ProtobufCMessage *m = NULL;

	if (pbjson_decode(t, text, strlen(text), lim, &m, &err) == 0) {
		schema_message_free(m);
		fail_msg("%s decoded; wanted \"%s\"", text, w);
	}
	assert_null(m);
	if (strstr(err, w) == NULL)
		fail_msg("%s: error \"%s\", wanted \"%s\"", text, err, w);
	free(err);
	free(text);
	free(w);
}

static void
expect_error(const struct schema_type *t, const char *in, const char *want)
{
	expect_error_lim(t, in, want, &schema_limits_default);
}

/* The reference events as protoc-c packs them. */
static size_t
pack_orders_v1(uint8_t *buf)
{
	Orders__V1__OrderCreated o = ORDERS__V1__ORDER_CREATED__INIT;

	o.message_id = "ord-000042";
	o.order_id = "o-000042";
	o.customer_id = "c-0042";
	o.total_amount = 123.45;
	o.created_at = 1732356000000;
	return orders__v1__order_created__pack(&o, buf);
}

static size_t
pack_orders_v2(uint8_t *buf)
{
	Orders__V2__OrderCreated o = ORDERS__V2__ORDER_CREATED__INIT;
	Orders__V2__Customer c = ORDERS__V2__CUSTOMER__INIT;
	Orders__V2__LineItem i1 = ORDERS__V2__LINE_ITEM__INIT,
			     i2 = ORDERS__V2__LINE_ITEM__INIT;
	Orders__V2__LineItem *items[] = { &i1, &i2 };
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	c.id = "c-0042";
	c.email = "ana@example.com";
	c.country = "PT";
	i1.sku = "SKU-1";
	i1.quantity = 2;
	i1.unit_price_minor = 5000;
	i2.sku = "SKU-2";
	i2.quantity = 1;
	i2.unit_price_minor = 2345;
	at.seconds = 1732356000;
	at.nanos = 250000000;
	o.message_id = "ord-000042";
	o.order_ref = "o-000042";
	o.customer = &c;
	o.total_minor = 12345;
	o.currency = "EUR";
	o.created_at = &at;
	o.n_items = 2;
	o.items = items;
	o.channel = ORDERS__V2__CHANNEL__CHANNEL_WEB;
	return orders__v2__order_created__pack(&o, buf);
}

static size_t
pack_payment_completed(uint8_t *buf)
{
	Payments__V1__PaymentCompleted p =
	    PAYMENTS__V1__PAYMENT_COMPLETED__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	at.seconds = 1732356005;
	p.message_id = "pay-000042";
	p.payment_id = "p-9f2c";
	p.order_ref = "o-000042";
	p.amount_minor = 12345;
	p.currency = "EUR";
	p.method = PAYMENTS__V1__METHOD__METHOD_CARD;
	p.completed_at = &at;
	return payments__v1__payment_completed__pack(&p, buf);
}

static size_t
pack_payment_failed(uint8_t *buf)
{
	Payments__V1__PaymentFailed p = PAYMENTS__V1__PAYMENT_FAILED__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Google__Protobuf__StringValue code =
	    GOOGLE__PROTOBUF__STRING_VALUE__INIT;

	at.seconds = 1732356006;
	at.nanos = 123456000;
	code.value = "05";
	p.message_id = "pay-000043";
	p.payment_id = "p-9f2d";
	p.order_ref = "o-000043";
	p.amount_minor = 990;
	p.currency = "USD";
	p.method = PAYMENTS__V1__METHOD__METHOD_CARD;
	p.reason = PAYMENTS__V1__FAILURE_REASON__FAILURE_REASON_DECLINED;
	p.retryable = 1;
	p.decline_code = &code;
	p.failed_at = &at;
	return payments__v1__payment_failed__pack(&p, buf);
}

static size_t
pack_inventory_reserved(uint8_t *buf)
{
	Inventory__V1__InventoryReserved r =
	    INVENTORY__V1__INVENTORY_RESERVED__INIT;
	Inventory__V1__Reservation l1 = INVENTORY__V1__RESERVATION__INIT,
				   l2 = INVENTORY__V1__RESERVATION__INIT;
	Inventory__V1__Reservation *lines[] = { &l1, &l2 };
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Google__Protobuf__Duration hold = GOOGLE__PROTOBUF__DURATION__INIT;

	l1.sku = "SKU-1";
	l1.quantity = 2;
	l1.location = "A-03-2";
	l2.sku = "SKU-2";
	l2.quantity = 1;
	l2.location = "B-11-4";
	at.seconds = 1732356001;
	hold.seconds = 900;
	r.message_id = "inv-000042";
	r.reservation_id = "r-77";
	r.order_ref = "o-000042";
	r.warehouse = "LIS-1";
	r.n_lines = 2;
	r.lines = lines;
	r.reserved_at = &at;
	r.hold_for = &hold;
	return inventory__v1__inventory_reserved__pack(&r, buf);
}

/*
 * The goldens: canonical JSON, and the bytes that Google's protobuf
 * (Python) encodes for that JSON.
 */
static const struct golden {
	const char *type;
	const char *json;
	const char *hex;
	size_t (*pack)(uint8_t *);
} goldens[] = {
	{ "orders.v1.OrderCreated",
	    "{'messageId':'ord-000042','orderId':'o-000042','customerId':"
	    "'c-0042','totalAmount':123.45,'createdAt':'1732356000000'}",
	    "0a0a6f72642d30303030343212086f2d3030303034321a06632d3030343221"
	    "cdccccccccdc5e40288092dbc3b532",
	    pack_orders_v1 },
	{ "orders.v2.OrderCreated",
	    "{'messageId':'ord-000042','orderRef':'o-000042','customer':{"
	    "'id':'c-0042','email':'ana@example.com','country':'PT'},"
	    "'totalMinor':'12345','currency':'EUR','createdAt':'2024-11-"
	    "23T10:00:00.250Z','items':[{'sku':'SKU-1','quantity':2,"
	    "'unitPriceMinor':'5000'},{'sku':'SKU-2','quantity':1,"
	    "'unitPriceMinor':'2345'}],'channel':'CHANNEL_WEB'}",
	    "0a0a6f72642d30303030343212086f2d3030303034321a1d0a06632d303034"
	    "32120f616e61406578616d706c652e636f6d1a02505420b9602a0345555232"
	    "0b08a0cf86ba061080e59a773a0c0a05534b552d3110021888273a0c0a0553"
	    "4b552d32100118a9124001",
	    pack_orders_v2 },
	{ "payments.v1.PaymentCompleted",
	    "{'messageId':'pay-000042','paymentId':'p-9f2c','orderRef':"
	    "'o-000042','amountMinor':'12345','currency':'EUR','method':"
	    "'METHOD_CARD','completedAt':'2024-11-23T10:00:05Z'}",
	    "0a0a7061792d3030303034321206702d396632631a086f2d30303030343220"
	    "b9602a0345555230013a0608a5cf86ba06",
	    pack_payment_completed },
	{ "payments.v1.PaymentFailed",
	    "{'messageId':'pay-000043','paymentId':'p-9f2d','orderRef':"
	    "'o-000043','amountMinor':'990','currency':'USD','method':"
	    "'METHOD_CARD','reason':'FAILURE_REASON_DECLINED','retryable':"
	    "true,'declineCode':'05','failedAt':'2024-11-23T10:00:06."
	    "123456Z'}",
	    "0a0a7061792d3030303034331206702d396632641a086f2d30303030343320"
	    "de072a035553443001380140014a040a023035520b08a6cf86ba0610809"
	    "4ef3a",
	    pack_payment_failed },
	{ "inventory.v1.InventoryReserved",
	    "{'messageId':'inv-000042','reservationId':'r-77','orderRef':"
	    "'o-000042','warehouse':'LIS-1','lines':[{'sku':'SKU-1',"
	    "'quantity':2,'location':'A-03-2'},{'sku':'SKU-2','quantity':1,"
	    "'location':'B-11-4'}],'reservedAt':'2024-11-23T10:00:01Z',"
	    "'holdFor':'900s'}",
	    "0a0a696e762d3030303034321204722d37371a086f2d303030303432220"
	    "54c49532d312a110a05534b552d3110021a06412d30332d322a110a0553"
	    "4b552d3210011a06422d31312d34320608a1cf86ba063a03088407",
	    pack_inventory_reserved },
};

static void
matches_the_goldens_in_both_encodings(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof goldens / sizeof *goldens; i++) {
		const struct golden *g = &goldens[i];
		const struct schema_type *t = schema_lookup(f->events, g->type);
		char *json = js(g->json), *out, *err;
		uint8_t packed[512], *want, *pb;
		ProtobufCMessage *m;
		size_t n, len, plen;

		assert_non_null(t);
		want = unhex(g->hex, &len);
		/* protoc-c agrees with Google's protobuf on the bytes. */
		n = g->pack(packed);
		assert_int_equal(n, len);
		assert_memory_equal(packed, want, len);
		/* protobuf to JSON */
		if (pbwire_decode(
			t, want, len, &schema_limits_default, &m, &err) == -1)
			fail_msg("%s", err);
		out = encode_json(m);
		if (strcmp(out, json) != 0)
			fail_msg("%s printed as %s", g->type, out);
		schema_message_free(m);
		free(out);
		/* JSON to protobuf */
		m = decode_json(t, json, &schema_limits_default);
		pb = pbwire_encode(m, &plen);
		assert_int_equal(plen, len);
		assert_memory_equal(pb, want, len);
		schema_message_free(m);
		free(pb);
		free(want);
		free(json);
	}
}

/* Every field of shop.test.Order set, in canonical JSON. */
static const char full_order[] =
    "{'id':'ord-1','i32':-5,'i64':'-9000000000','u32':4000000000,"
    "'u64':'18000000000000000000','s32':-7,'s64':'-8','f32':9,"
    "'f64':'10','sf32':-11,'sf64':'-12','fl':0.1,'db':1.5e-7,"
    "'ok':true,'blob':'3q2+7w==','status':'STATUS_CANCELLED',"
    "'shipTo':{'street':'Rua A','city':'Lisboa','lines':['1 esq','2']},"
    "'lines':[{'sku':'A','qty':2,'delta':'-3','kind':'KIND_GOODS'},"
    "{'sku':'B','kind':'KIND_SERVICE'}],'counts':[1,-1,300],"
    "'weights':[0.5,2],'tags':{'a':'1','b':'-2'},'byZone':{'-1':"
    "{'city':'Porto'},'7':{'street':'X'}},'card':'visa','createdAt':"
    "'2024-02-29T23:59:59.999999999Z','ttl':'-1.500s','limit':'0',"
    "'gift':false,'priority':0,'note':'','extra':{'k':[1,'two',true,"
    "null,{'n':{}}]},'history':['STATUS_OPEN',5],'flags':{'false':"
    "'no','true':'yes'},'alias':3,'anything':[null,1.25,'s',false,[],"
    "{}],'parent':{'id':'p'},'codes':[1,4294967295]}";

static void
round_trips_byte_exact(void **state)
{
	struct fixture *f = *state;
	char *json = js(full_order), *out, *err;
	ProtobufCMessage *m, *back;
	uint8_t *pb, *pb2;
	size_t len, len2;

	/* JSON -> message -> JSON */
	m = decode_json(f->order, json, &schema_limits_default);
	out = encode_json(m);
	assert_string_equal(out, json);
	free(out);
	/* JSON -> protobuf -> JSON, and protobuf -> JSON -> protobuf */
	pb = pbwire_encode(m, &len);
	if (pbwire_decode(
		f->order, pb, len, &schema_limits_default, &back, &err) == -1)
		fail_msg("%s", err);
	out = encode_json(back);
	assert_string_equal(out, json);
	schema_message_free(back);
	back = decode_json(f->order, out, &schema_limits_default);
	pb2 = pbwire_encode(back, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(pb2, pb, len);
	free(out);
	free(pb);
	free(pb2);
	free(json);
	schema_message_free(m);
	schema_message_free(back);
}

static void
accepts_every_spelling(void **state)
{
	static const char *const cases[][2] = {
		/* names */
		{ "{'ship_to':{'city':'X'},'renamed':3}",
		    "{'shipTo':{'city':'X'},'alias':3}" },
		{ "{'lines':[{'sku':'A'}],'id':'x'}",
		    "{'id':'x','lines':[{'sku':'A'}]}" },
		/* integers */
		{ "{'i64':-9000000000,'u64':'18446744073709551615'}",
		    "{'i64':'-9000000000','u64':'18446744073709551615'}" },
		/* 64-bit numbers read exactly, uint64 above 2^63-1 too */
		{ "{'u64':18446744073709551615,'f64':9223372036854775808}",
		    "{'u64':'18446744073709551615','f64':'9223372036854775808'"
		    "}" },
		{ "{'i64':-9223372036854775808,'sf64':9223372036854775807}",
		    "{'i64':'-9223372036854775808','sf64':'9223372036854775807'"
		    "}" },
		{ "{'u64':1.8e19}", "{'u64':'18000000000000000000'}" },
		{ "{'i32':'-5','u32':'7','s64':12}",
		    "{'i32':-5,'u32':7,'s64':'12'}" },
		{ "{'i32':1e2,'sf32':3.0}", "{'i32':100,'sf32':3}" },
		/* enums */
		{ "{'status':1,'history':[2,'STATUS_CANCELLED',9]}",
		    "{'status':'STATUS_OPEN','history':['STATUS_SHIPPED',"
		    "'STATUS_CANCELLED',9]}" },
		{ "{'status':7}", "{'status':7}" },
		/* bytes, standard or URL-safe, padded or not */
		{ "{'blob':'3q2-7w'}", "{'blob':'3q2+7w=='}" },
		{ "{'blob':'_w'}", "{'blob':'/w=='}" },
		/* times */
		{ "{'createdAt':'2024-11-23T11:30:00+01:30'}",
		    "{'createdAt':'2024-11-23T10:00:00Z'}" },
		{ "{'createdAt':'2024-11-23t10:00:00.1z'}",
		    "{'createdAt':'2024-11-23T10:00:00.100Z'}" },
		{ "{'createdAt':'0001-01-01T00:00:00.000001Z'}",
		    "{'createdAt':'0001-01-01T00:00:00.000001Z'}" },
		{ "{'createdAt':'1969-12-31T23:59:59.123456789-00:00'}",
		    "{'createdAt':'1969-12-31T23:59:59.123456789Z'}" },
		{ "{'ttl':'1.5s'}", "{'ttl':'1.500s'}" },
		{ "{'ttl':'-0.000000001s'}", "{'ttl':'-0.000000001s'}" },
		{ "{'ttl':'315576000000.999999999s'}",
		    "{'ttl':'315576000000.999999999s'}" },
		/* wrappers, optional fields, presence */
		{ "{'limit':5,'gift':false}", "{'limit':'5','gift':false}" },
		{ "{'limit':null,'id':null,'lines':null,'tags':null}", "{}" },
		{ "{'priority':0,'note':'','i32':0,'id':''}",
		    "{'priority':0,'note':''}" },
		/* oneof */
		{ "{'card':null,'voucher':'7'}", "{'voucher':'7'}" },
		{ "{'invoice_to':{}}", "{'invoiceTo':{}}" },
		/* maps: keys in order, whatever the input order */
		{ "{'tags':{'b':'1','a':2}}", "{'tags':{'a':'2','b':'1'}}" },
		{ "{'byZone':{'10':{},'-2':{},'9':{}}}",
		    "{'byZone':{'-2':{},'9':{},'10':{}}}" },
		{ "{'flags':{'true':'y','false':'n'}}",
		    "{'flags':{'false':'n','true':'y'}}" },
		/* floating point */
		{ "{'fl':0.1,'db':0.1}", "{'fl':0.1,'db':0.1}" },
		{ "{'fl':'NaN','db':'-Infinity'}",
		    "{'fl':'NaN','db':'-Infinity'}" },
		{ "{'db':'1.5','weights':['Infinity',1e300,-2.5e-300]}",
		    "{'db':1.5,'weights':['Infinity',1e300,-2.5e-300]}" },
		{ "{'db':5.0,'fl':16777216}", "{'fl':16777216,'db':5}" },
		{ "{'db':-0.0}", "{}" },
		/* Struct, Value, ListValue */
		{ "{'extra':{'z':[1,'x',null,true,{'b':{}}],'a':null}}",
		    "{'extra':{'a':null,'z':[1,'x',null,true,{'b':{}}]}}" },
		{ "{'anything':[null,{'a':[]},0.5,'s']}",
		    "{'anything':[null,{'a':[]},0.5,'s']}" },
		{ "{'extra':{}}", "{'extra':{}}" },
		{ "{'extra':{'a':{'a':1},'b':{'a':{'a':2}}}}",
		    "{'extra':{'a':{'a':1},'b':{'a':{'a':2}}}}" },
		/* escapes, in values and keys */
		{ "{'id':'\\ud83d\\ude00 \\u00e9 \\'\\\\\\/\\b\\f\\n\\r\\t'}",
		    "{'id':'\xf0\x9f\x98\x80 \xc3\xa9 "
		    "\\'\\\\/\\b\\f\\n\\r\\t'}" },
		{ "{'id':'\\\\'}", "{'id':'\\\\'}" },
		{ "{'id':'a\\'\\\\\\''}", "{'id':'a\\'\\\\\\''}" },
		{ "{'\\u0069d':'x','tags':{'\\u00e9':'1'}}",
		    "{'id':'x','tags':{'\xc3\xa9':'1'}}" },
		/* numbers that jansson could not hold, -0 as 0 */
		{ "{'db':100000000000000000000,'fl':-0,'i64':'-0'}",
		    "{'db':1e20}" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		expect_json(
		    f->order, cases[i][0], cases[i][1], &schema_limits_default);
}

static void
treats_unknown_fields_by_setting(void **state)
{
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;

	expect_error(f->order, "{'id':'x','nope':1}",
	    "shop.test.Order: field nope: no such field in shop.test.Order");
	expect_error(f->order, "{'shipTo':{'zip':'1000'}}",
	    "shop.test.Order: field ship_to.zip: no such field in "
	    "shop.test.Address");
	expect_error(f->order, "{'history':['STATUS_OPEN','STATUS_LOST']}",
	    "shop.test.Order: field history[1]: 'STATUS_LOST' is not a value "
	    "of shop.test.Status");
	lim.ignore_unknown = true;
	expect_json(f->order,
	    "{'id':'x','nope':{'a':[1]},'shipTo':{'zip':'1000'}}",
	    "{'id':'x','shipTo':{}}", &lim);
	expect_json(f->order,
	    "{'status':'STATUS_LOST','history':['STATUS_LOST','STATUS_OPEN'],"
	    "'tags':{'a':'1'}}",
	    "{'tags':{'a':'1'},'history':['STATUS_OPEN']}", &lim);
}

static void
rejects_bad_json(void **state)
{
	struct fixture *f = *state;

	/* Syntax: jansson's message, with offset, line and column. */
	expect_error(f->order, "{'id':",
	    "shop.test.Order: invalid JSON at offset 6 (line 1, column 6)");
	expect_error(f->order, "{'id':'a'} x", "invalid JSON at offset 12");
	expect_error(f->order, "{'id':'\xc3\x28'}",
	    "invalid JSON at offset 7 (line 1, column 7): unable to decode "
	    "byte 0xc3");
	expect_error(f->order, "{'id':'a\\u0000b'}",
	    "invalid JSON at offset 16 (line 1, column 16): \\u0000 is not "
	    "allowed");
	expect_error(f->order, "{'id':'a','id':'b'}", "duplicate object key");
	expect_error(f->order, "[]",
	    "shop.test.Order: expected an object, got an array");
	/* Fields given twice, oneofs given twice. */
	expect_error(f->order, "{'shipTo':{},'ship_to':{}}",
	    "shop.test.Order: field ship_to: given twice");
	expect_error(f->order, "{'card':'v','voucher':1}",
	    "shop.test.Order: field voucher: a second member of oneof "
	    "payment");
	/* JSON types that do not fit. */
	expect_error(
	    f->order, "{'id':1}", "field id: expected a string, got a number");
	expect_error(f->order, "{'ok':'true'}",
	    "field ok: expected true or false, got a string");
	expect_error(f->order, "{'lines':{}}",
	    "field lines: expected an array, got an object");
	expect_error(f->order, "{'tags':[]}",
	    "field tags: expected an object, got an array");
	expect_error(f->order, "{'shipTo':'x'}",
	    "field ship_to: expected an object, got a string");
	expect_error(
	    f->order, "{'lines':[{},null]}", "field lines[1]: null in a list");
	expect_error(f->order, "{'lines':[{},{'qty':[]}]}",
	    "field lines[1].qty: expected an integer, got an array");
	expect_error(f->order, "{'status':true}",
	    "field status: expected an enum name or number, got a boolean");
	expect_error(f->order, "{'createdAt':1}",
	    "field created_at: expected an RFC 3339 string, got a number");
}

/* |len| bytes at |in| (raw, NUL bytes and all) fail to decode with an
 * error that contains |want|. */
static void
expect_error_bytes(
    const struct schema_type *t, const char *in, size_t len, const char *want)
{
	ProtobufCMessage *m = NULL;
	char *err = NULL;

	if (pbjson_decode(t, in, len, &schema_limits_default, &m, &err) == 0) {
		schema_message_free(m);
		fail_msg("%zu bytes decoded; wanted \"%s\"", len, want);
	}
	assert_null(m);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\", wanted \"%s\"", err, want);
	free(err);
}

/* What the JSON RFC and jansson refuse and yajl lets through: each is a
 * syntax error, with its offset. */
static void
rejects_what_the_parser_lets_through(void **state)
{
	static const char *const cases[][2] = {
		/* \v and \f are not white space, after the value neither */
		{ "{'id':\v'a'}",
		    "invalid JSON at offset 6 (line 1, column 6): byte 0x0b "
		    "is not JSON white space" },
		{ "{'id':'a'}\f", "offset 10 (line 1, column 10): byte 0x0c" },
		/* a string that never ends, after the value */
		{ "{'id':'a'} 'x",
		    "invalid JSON at offset 11 (line 1, column 11): trailing "
		    "garbage" },
		/* UTF-8: overlong, surrogates, above U+10FFFF, cut short */
		{ "{'id':'\xc0\xaf'}",
		    "offset 7 (line 1, column 7): unable to decode byte 0xc0" },
		{ "{'id':'\xe0\x80\xaf'}", "unable to decode byte 0xe0" },
		{ "{'id':'\xed\xa0\x80'}", "unable to decode byte 0xed" },
		{ "{'id':'\xf4\x90\x80\x80'}", "unable to decode byte 0xf4" },
		{ "{'id':'\xf5\x80\x80\x80'}", "unable to decode byte 0xf5" },
		{ "{'id':'\x80'}", "unable to decode byte 0x80" },
		{ "{'id':'\xe2\x82'}", "unable to decode byte 0xe2" },
		{ "{'\xff':1}",
		    "offset 2 (line 1, column 2): unable to decode "
		    "byte 0xff" },
		{ "{'id':'\\u00e9\xff'}",
		    "offset 13 (line 1, column 13): unable to decode byte "
		    "0xff" },
		{ "{\n'id':'\xff'}",
		    "offset 8 (line 2, column 6): unable to decode byte 0xff" },
		/* surrogates that do not pair, \u0000, in values and keys */
		{ "{'id':'\\ud800'}",
		    "offset 14 (line 1, column 14): invalid Unicode" },
		{ "{'id':'\\ud800\\u0041'}", "\\uD800\\u0041" },
		{ "{'id':'\\udc00x'}", "\\uDC00" },
		{ "{'\\ud800':1}",
		    "offset 9 (line 1, column 9): invalid Unicode" },
		{ "{'\\u0000':1}", "\\u0000 is not allowed" },
		/* the grammar, as yajl has it */
		{ "{} {}",
		    "offset 4 (line 1, column 4): parse error: "
		    "trailing garbage" },
		{ "{'id':'a'/*c*/}", "invalid JSON at offset 9" },
		{ "{'id':'a',}", "invalid JSON at offset 11" },
		{ "{'counts':[1,]}", "invalid JSON at offset 14" },
		{ "{'i32':01}", "invalid JSON at offset 8" },
		{ "",
		    "shop.test.Order: invalid JSON at offset 0 (line 1, "
		    "column 0): parse error: premature EOF" },
	};
	static const struct {
		const char *text;
		size_t len;
		const char *want;
	} nul[] = {
		{ "{\"id\":\"a\0\"}", 11, "invalid JSON at offset 8" },
		{ "{}\0", 3, "invalid JSON at offset 3" },
		{ "\0{}", 3, "invalid JSON at offset 1" },
	};
	struct fixture *f = *state;
	const struct schema_type *i64 =
	    schema_lookup(f->shop, "google.protobuf.Int64Value");

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		expect_error(f->order, cases[i][0], cases[i][1]);
	for (size_t i = 0; i < sizeof nul / sizeof *nul; i++)
		expect_error_bytes(
		    f->order, nul[i].text, nul[i].len, nul[i].want);
	/* jansson stopped at a NUL after a number, and took "1\0" as 1. */
	expect_error_bytes(i64, "1\0", 2, "invalid JSON at offset 2");
}

static void
rejects_duplicate_keys_everywhere(void **state)
{
	static const char *const dups[] = {
		"{'tags':{'a':'1','a':'2'}}",
		"{'tags':{'a':'1','\\u0061':'2'}}",
		"{'byZone':{'1':{},'2':{},'1':{}}}",
		"{'extra':{'k':1,'k':2}}",
		"{'anything':[{'a':{'b':1,'b':1}}]}",
		"{'shipTo':{'city':'x','city':'y'}}",
		"{'lines':[{'sku':'A','sku':'B'}]}",
		/* after an error of content */
		"{'id':1,'id':'b'}",
		"{'tags':{'a':'x','a':'2'}}",
	};
	static const char *const unknown[] = {
		"{'nope':1,'nope':2}",
		"{'nope':{'x':1,'x':2}}",
		"{'nope':[{'x':{'y':1,'y':1}}]}",
	};
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;
	char *many;
	size_t n;

	for (size_t i = 0; i < sizeof dups / sizeof *dups; i++)
		expect_error(f->order, dups[i], "duplicate object key");
	lim.ignore_unknown = true;
	for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
		expect_error_lim(
		    f->order, unknown[i], "duplicate object key", &lim);
	/* The same key in different objects is no duplicate. */
	expect_json(f->order, "{'nope':{'x':{'x':1}},'nope2':{'x':1},'id':'i'}",
	    "{'id':'i'}", &lim);
	/* Thousands of keys, and one twice at the end. */
	many = xmalloc(5000 * 16 + 64);
	n = (size_t)sprintf(many, "{'extra':{");
	for (int i = 0; i < 5000; i++)
		n += (size_t)sprintf(many + n, "'k%04d':%d,", i, i);
	sprintf(many + n - 1, "}}");
	expect_json(f->order, many, many, &schema_limits_default);
	sprintf(many + n - 1, ",'k4321':0}}");
	expect_error(f->order, many, "duplicate object key 'k4321'");
	free(many);
}

/* |s| |n| times over, in |out|. */
static char *
repeat(char *out, const char *s, size_t n)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	out[n * len] = '\0';
	return out;
}

/* Errors name an empty key as "", and cut a long one short with "...",
 * at the start of a character. */
static void
names_keys_in_errors(void **state)
{
	static const char euro[] = "\xe2\x82\xac";
	struct fixture *f = *state;
	char a50[51], a40[41], k200[201], k40[41], e20[61], e13[40];
	char in[512], want[512];

	repeat(a50, "a", 50);
	repeat(a40, "a", 40);
	repeat(k200, "k", 200);
	repeat(k40, "k", 40);
	repeat(e20, euro, 20);
	repeat(e13, euro, 13);
	expect_error(f->order, "{'':1}",
	    "shop.test.Order: field '': no such field in shop.test.Order");
	expect_error(f->order, "{'shipTo':{'':1}}",
	    "shop.test.Order: field ship_to.'': no such field in "
	    "shop.test.Address");
	expect_error(
	    f->order, "{'extra':{'':1,'':2}}", "duplicate object key ''");
	snprintf(in, sizeof in, "{'%s':1}", k200);
	snprintf(want, sizeof want, "field %s...: no such field", k40);
	expect_error(f->order, in, want);
	snprintf(in, sizeof in, "{'extra':{'%s':1,'%s':2}}", a50, a50);
	snprintf(want, sizeof want, "duplicate object key '%s...'", a40);
	expect_error(f->order, in, want);
	snprintf(in, sizeof in, "{'tags':{'%s':'x'}}", a50);
	snprintf(want, sizeof want, "field tags['%s...']: 'x' is not an", a40);
	expect_error(f->order, in, want);
	/* 13 euro signs, 39 bytes: the 14th would be cut in two */
	snprintf(in, sizeof in, "{'extra':{'%s':1,'%s':2}}", e20, e20);
	snprintf(want, sizeof want, "duplicate object key '%s...'", e13);
	expect_error(f->order, in, want);
	/* 40 bytes are shown whole */
	snprintf(in, sizeof in, "{'%s':1}", a40);
	snprintf(want, sizeof want, "field %s: no such field", a40);
	expect_error(f->order, in, want);
}

/* Invalid JSON is reported as such even after an error of content. */
static void
reports_syntax_errors_first(void **state)
{
	static const char *const cases[][2] = {
		{ "{'id':1,'i32':",
		    "invalid JSON at offset 14 (line 1, column "
		    "14): parse error: premature EOF" },
		{ "{'nope':1} x", "invalid JSON at offset 12" },
		{ "{'lines':[{'qty':-1}],'id':'\xff'}",
		    "invalid JSON at offset 28" },
		{ "{'i32':'x'}\v", "invalid JSON at offset 11" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		expect_error(f->order, cases[i][0], cases[i][1]);
}

/* Writes |head|, |n| arrays one in the other, and |tail| into |out|. */
static void
nest_arrays(char *out, const char *head, size_t n, const char *tail)
{
	size_t len = strlen(head);

	memcpy(out, head, len);
	memset(out + len, '[', n);
	memset(out + len + n, ']', n);
	strcpy(out + len + 2 * n, tail);
}

static void
bounds_skipped_values(void **state)
{
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;
	char *deep = xmalloc(200000 + 64);

	lim.ignore_unknown = true;
	/* Each level of a skipped value counts against the depth. */
	nest_arrays(deep, "{'nope':", 64, ",'id':'x'}");
	expect_json(f->order, deep, "{'id':'x'}", &lim);
	nest_arrays(deep, "{'nope':", 65, "}");
	expect_error_lim(
	    f->order, deep, "field nope: nested deeper than 64", &lim);
	/* A number too large for a double is refused, skipped or not. */
	expect_error_lim(f->order, "{'nope':[1,{'x':-1e999}]}",
	    "field nope: -1e999 is out of range for double", &lim);
	/* After an error, a deep rest is not followed to its end. */
	nest_arrays(deep, "{'id':1,'x':", 100000, "}");
	expect_error(
	    f->order, deep, "field id: expected a string, got a number");
	free(deep);
}

/* Every prefix of a document fails, and every byte changed fails or
 * decodes to what prints and reads back the same; a message that failed
 * halfway is freed (the sanitizers see leaks), never returned. */
static void
fails_cleanly_at_every_byte(void **state)
{
	static const char subst[] = "}]\"\\:,1x{[ \xff";
	struct fixture *f = *state;
	char *json = js(full_order), *err, *out, *again;
	size_t len = strlen(json), olen;
	ProtobufCMessage *m, *back;

	for (size_t i = 0; i < len; i++) {
		m = NULL;
		if (pbjson_decode(f->order, json, i, &schema_limits_default, &m,
			&err) == 0)
			fail_msg("%zu bytes of the order decoded", i);
		assert_null(m);
		free(err);
	}
	for (size_t i = 0; i < len; i++) {
		char was = json[i];

		for (size_t k = 0; k < sizeof subst - 1; k++) {
			json[i] = subst[k];
			m = NULL;
			err = NULL;
			if (pbjson_decode(f->order, json, len,
				&schema_limits_default, &m, &err) == -1) {
				assert_null(m);
				free(err);
				continue;
			}
			if ((out = pbjson_encode(m, &olen, &err)) == NULL) {
				free(err);
				schema_message_free(m);
				continue;
			}
			back =
			    decode_json(f->order, out, &schema_limits_default);
			again = encode_json(back);
			assert_string_equal(again, out);
			free(out);
			free(again);
			schema_message_free(back);
			schema_message_free(m);
		}
		json[i] = was;
	}
	free(json);
}

/*
 * Outputs and errors exactly as they were when a jansson tree was
 * decoded: paths through lists, maps, Structs and Values, well-known
 * types at the top, messages and kinds of value.
 */
static void
reads_as_before(void **state)
{
	static const char *const cases[][3] = {
		{ "shop.test.Order", "{'lines':[{'sku':'A'},{'qty':-1}]}",
		    "shop.test.Order: field lines[1].qty: -1 is out of range "
		    "for uint32" },
		{ "shop.test.Order", "{'byZone':{'7':{'lines':['a',3]}}}",
		    "shop.test.Order: field by_zone['7'].lines[1]: expected a "
		    "string, got a number" },
		{ "shop.test.Order", "{'extra':{'a':{'b':[1,{'c':'x'}]}}}",
		    "{'extra':{'a':{'b':[1,{'c':'x'}]}}}" },
		{ "shop.test.Order", "{'tags':{'a':'x'}}",
		    "shop.test.Order: field tags['a']: 'x' is not an "
		    "integer" },
		{ "shop.test.Order", "{'flags':{'true':1}}",
		    "shop.test.Order: field flags['true']: expected a string, "
		    "got a number" },
		{ "shop.test.Order",
		    "{'limit':null,'gift':null,'priority':null,'note':null}",
		    "{}" },
		{ "shop.test.Order",
		    "{'card':'v','invoiceTo':null,'voucher':"
		    "'x'}",
		    "shop.test.Order: field voucher: a second member of oneof "
		    "payment" },
		{ "shop.test.Order", "{'invoiceTo':{'city':1}}",
		    "shop.test.Order: field invoice_to.city: expected a "
		    "string, got a number" },
		{ "shop.test.Order",
		    "{'parent':{'parent':{'lines':[{'kind':'KIND_X'}]}}}",
		    "shop.test.Order: field parent.parent.lines[0].kind: "
		    "'KIND_X' is not a value of shop.test.Order.Line.Kind" },
		{ "shop.test.Order", "{'history':['STATUS_OPEN',{}]}",
		    "shop.test.Order: field history[1]: expected an enum name "
		    "or number, got an object" },
		{ "shop.test.Order", "{'counts':[1,'2',3.5]}",
		    "shop.test.Order: field counts[2]: 3.5 is not an "
		    "integer" },
		{ "shop.test.Order", "{'codes':[-1]}",
		    "shop.test.Order: field codes[0]: -1 is out of range for "
		    "uint32" },
		{ "shop.test.Order", "{'anything':{}}",
		    "shop.test.Order: field anything: expected an array, got "
		    "an object" },
		{ "shop.test.Order",
		    "{'anything':[true,false,{}],'extra':"
		    "null}",
		    "{'anything':[true,false,{}]}" },
		{ "shop.test.Order", "{'byZone':{'':{}}}",
		    "shop.test.Order: field by_zone['']: '' is not an "
		    "integer" },
		{ "shop.test.Order", "{'tags':{'k':'9223372036854775808'}}",
		    "shop.test.Order: field tags['k']: 9223372036854775808 is "
		    "out of range for int64" },
		{ "shop.test.Order", "null",
		    "shop.test.Order: expected an object, got null" },
		{ "google.protobuf.Timestamp", "'2024-01-01T00:00:00+01:00'",
		    "'2023-12-31T23:00:00Z'" },
		{ "google.protobuf.Timestamp", "1",
		    "google.protobuf.Timestamp: expected an RFC 3339 string, "
		    "got a number" },
		{ "google.protobuf.Int64Value", "'5'", "'5'" },
		{ "google.protobuf.Int64Value", "null",
		    "google.protobuf.Int64Value: expected an integer, got "
		    "null" },
		{ "google.protobuf.Value", "null", "null" },
		{ "google.protobuf.Value", "[1,{'a':null}]", "[1,{'a':null}]" },
		{ "google.protobuf.Struct", "[]",
		    "google.protobuf.Struct: expected an object, got an "
		    "array" },
		{ "google.protobuf.ListValue", "{}",
		    "google.protobuf.ListValue: expected an array, got an "
		    "object" },
		{ "google.protobuf.Duration", "'-1.5s'", "'-1.500s'" },
		{ "google.protobuf.DoubleValue", "-0", "0" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct schema_type *t =
		    schema_lookup(f->shop, cases[i][0]);
		char *text = js(cases[i][1]), *want = js(cases[i][2]), *got;
		ProtobufCMessage *m;

		assert_non_null(t);
		if (pbjson_decode(t, text, strlen(text), &schema_limits_default,
			&m, &got) == 0) {
			got = encode_json(m);
			schema_message_free(m);
		}
		if (strcmp(got, want) != 0)
			fail_msg("%s as %s: %s, wanted %s", text, cases[i][0],
			    got, want);
		free(got);
		free(text);
		free(want);
	}
}

static void
rejects_numbers_out_of_range(void **state)
{
	static const char *const past[][2] = {
		{ "{'u64':18446744073709551616}",
		    "field u64: 18446744073709551616 is out of range for "
		    "uint64" },
		{ "{'i64':9223372036854775808}",
		    "field i64: 9223372036854775808 is out of range for "
		    "int64" },
		{ "{'i64':-9223372036854775809}",
		    "field i64: -9223372036854775809 is out of range for "
		    "int64" },
		{ "{'u32':18446744073709551615}",
		    "field u32: 18446744073709551615 is out of range for "
		    "uint32" },
		{ "{'u64':2e19}",
		    "field u64: 2e19 is out of range for uint64" },
		{ "{'db':1e400}",
		    "field db: 1e400 is out of range for double" },
		{ "{'fl':-1e400}",
		    "field fl: -1e400 is out of range for float" },
		{ "{'i32':1e400}",
		    "field i32: 1e400 is out of range for int32" },
		{ "{'anything':[1e400]}",
		    "field anything[0]: 1e400 is out of range for double" },
		{ "{'status':1.0}",
		    "field status: expected an enum name or number, got a "
		    "number" },
		{ "{'status':2147483648}",
		    "field status: 2147483648 is out of range for an enum" },
	};
	struct fixture *f = *state;

	expect_error(f->order, "{'i32':2147483648}",
	    "field i32: 2147483648 is out of range for int32");
	expect_error(f->order, "{'i32':'-2147483649'}",
	    "field i32: -2147483649 is out of range for int32");
	expect_error(
	    f->order, "{'u32':-1}", "field u32: -1 is out of range for uint32");
	expect_error(f->order, "{'u64':'-1'}",
	    "field u64: '-1' is not an unsigned integer");
	expect_error(f->order, "{'u64':'18446744073709551616'}",
	    "field u64: 18446744073709551616 is out of range for uint64");
	expect_error(f->order, "{'i64':'9223372036854775808'}",
	    "field i64: 9223372036854775808 is out of range for int64");
	expect_error(f->order, "{'i64':1e19}",
	    "field i64: 1e19 is out of range for int64");
	/* Numbers are read from their text: past 64 bits, past a double. */
	for (size_t i = 0; i < sizeof past / sizeof *past; i++)
		expect_error(f->order, past[i][0], past[i][1]);
	expect_error(
	    f->order, "{'i32':1.5}", "field i32: 1.5 is not an integer");
	expect_error(
	    f->order, "{'i32':'1e2'}", "field i32: '1e2' is not an integer");
	expect_error(
	    f->order, "{'i32':' 1'}", "field i32: ' 1' is not an integer");
	expect_error(f->order, "{'fl':1e39}",
	    "field fl: 1e39 is out of range for float");
	expect_error(f->order, "{'db':'1e400'}",
	    "field db: 1e400 is out of range for double");
	expect_error(
	    f->order, "{'db':'0x10'}", "field db: '0x10' is not a number");
	expect_error(
	    f->order, "{'db':'inf'}", "field db: 'inf' is not a number");
	expect_error(f->order, "{'byZone':{'x':{}}}",
	    "field by_zone['x']: 'x' is not an integer");
	expect_error(f->order, "{'byZone':{'2147483648':{}}}",
	    "field by_zone['2147483648']: 2147483648 is out of range for "
	    "int32");
	expect_error(f->order, "{'flags':{'yes':'1'}}",
	    "field flags['yes']: expected true or false, got a string");
}

/* Integers are read exactly from their decimal text, in float form too,
 * never through a double, which holds 53 bits. */
static void
reads_integral_numbers_exactly(void **state)
{
	static const char *const exact[][2] = {
		{ "{'i64':9007199254740993.0,'u64':9007199254740993e0}",
		    "{'i64':'9007199254740993','u64':'9007199254740993'}" },
		{ "{'u64':1.8446744073709551615e19,"
		  "'f64':18446744073709551615.0}",
		    "{'u64':'18446744073709551615','f64':'18446744073709551615'"
		    "}" },
		{ "{'i64':-9.223372036854775808e18,"
		  "'sf64':92233720368547758.07e2}",
		    "{'i64':'-9223372036854775808','sf64':'9223372036854775807'"
		    "}" },
		{ "{'u64':100000000000000000000e-2,"
		  "'s64':0.00000000000000000005e20}",
		    "{'u64':'1000000000000000000','s64':'5'}" },
		{ "{'i32':1e3,'u32':5.0,'s32':-2.50e1,'sf32':-2147483648.0}",
		    "{'i32':1000,'u32':5,'s32':-25,'sf32':-2147483648}" },
		{ "{'i32':-0.0,'u32':-0e5,'f32':0e99999999999999999999}",
		    "{}" },
		{ "{'counts':[2147483.647e3,214748364700000e-5]}",
		    "{'counts':[2147483647,2147483647]}" },
	};
	static const char *const bad[][2] = {
		{ "{'i64':9223372036854775807.5}",
		    "field i64: 9223372036854775807.5 is not an integer" },
		{ "{'i32':1e-400}", "field i32: 1e-400 is not an integer" },
		{ "{'u64':0.5e-99999999999999999999}",
		    "field u64: 0.5e-99999999999999999999 is not an integer" },
		{ "{'i64':9223372036854775808.0}",
		    "field i64: 9223372036854775808.0 is out of range for "
		    "int64" },
		{ "{'i64':-9223372036854775809e0}",
		    "field i64: -9223372036854775809e0 is out of range for "
		    "int64" },
		{ "{'u64':18446744073709551616e0}",
		    "field u64: 18446744073709551616e0 is out of range for "
		    "uint64" },
		{ "{'i32':2147483648.0}",
		    "field i32: 2147483648.0 is out of range for int32" },
		{ "{'u32':4294967296e0}",
		    "field u32: 4294967296e0 is out of range for uint32" },
		{ "{'i32':1e99999999999999999999}",
		    "field i32: 1e99999999999999999999 is out of range for "
		    "int32" },
		{ "{'status':9007199254740993}",
		    "field status: 9007199254740993 is out of range for an "
		    "enum" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
		expect_json(
		    f->order, exact[i][0], exact[i][1], &schema_limits_default);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		expect_error(f->order, bad[i][0], bad[i][1]);
}

/* The float field fl of |json| decoded as shop.test.Order. */
static float
decode_fl(const struct schema_type *t, const char *json)
{
	char *text = js(json);
	ProtobufCMessage *m = decode_json(t, text, &schema_limits_default);
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(
		m->descriptor, "fl");
	float v = *(float *)((char *)m + fd->offset);

	schema_message_free(m);
	free(text);
	return v;
}

/* A float is rounded once, from the text: rounding to a double first
 * and then to a float may round twice, and takes FLT_MAX as written
 * ("3.4028235e38", above FLT_MAX itself) for out of range. */
static void
rounds_floats_from_the_text(void **state)
{
	static const struct {
		const char *json;
		float want;
	} cases[] = {
		{ "{'fl':3.4028235e38}", FLT_MAX },
		{ "{'fl':'-3.4028235e38'}", -FLT_MAX },
		/* just above 1 + 2^-24, half way between two floats */
		{ "{'fl':1.0000000596046447753906251}", 1.00000012f },
		{ "{'fl':'1.0000000596046447753906251'}", 1.00000012f },
		{ "{'fl':7.038531e-26}", 7.03853069e-26f },
		{ "{'fl':1e-46}", 0 },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		float got = decode_fl(f->order, cases[i].json);

		if (got != cases[i].want)
			fail_msg("%s read as %.9g, wanted %.9g", cases[i].json,
			    (double)got, (double)cases[i].want);
	}
	expect_json(f->order, "{'fl':1.0000000596046447753906251}",
	    "{'fl':1.0000001}", &schema_limits_default);
	expect_error(f->order, "{'fl':3.4028236e38}",
	    "field fl: 3.4028236e38 is out of range for float");
	expect_error(f->order, "{'fl':'-1e39'}",
	    "field fl: -1e39 is out of range for float");
}

/* google.protobuf.NullValue's only value is JSON null: where a field's
 * type is NullValue, null is that value, not an absent field. */
static void
reads_null_where_it_is_a_value(void **state)
{
	static const char proto[] =
	    "syntax = \"proto3\";\n"
	    "package n;\n"
	    "import \"google/protobuf/struct.proto\";\n"
	    "message N {\n"
	    "  google.protobuf.NullValue plain = 1;\n"
	    "  optional google.protobuf.NullValue opt = 2;\n"
	    "  repeated google.protobuf.NullValue list = 3;\n"
	    "  map<string, google.protobuf.NullValue> by_key = 4;\n"
	    "  oneof o { google.protobuf.NullValue none = 5; string s = 6; }\n"
	    "}\n";
	struct schema *s = protoc_schema("n.proto", proto);
	const struct schema_type *t = schema_lookup(s, "n.N");

	(void)state;
	expect_json(t, "{'plain':null}", "{}", &schema_limits_default);
	expect_json(t, "{'opt':null}", "{'opt':null}", &schema_limits_default);
	expect_json(
	    t, "{'none':null}", "{'none':null}", &schema_limits_default);
	expect_json(t, "{'list':[null,null]}", "{'list':[null,null]}",
	    &schema_limits_default);
	expect_json(t, "{'byKey':{'a':null,'b':null}}",
	    "{'byKey':{'a':null,'b':null}}", &schema_limits_default);
	/* null for the whole of a repeated field or map is empty */
	expect_json(
	    t, "{'list':null,'byKey':null}", "{}", &schema_limits_default);
	expect_error(
	    t, "{'none':null,'s':'x'}", "field s: a second member of oneof o");
	/* NULL_VALUE by name and number reads too */
	expect_json(t, "{'list':['NULL_VALUE',0],'opt':0}",
	    "{'opt':null,'list':[null,null]}", &schema_limits_default);
	schema_free(s);
}

/* Integer map keys are one key if they are one integer, however the
 * text spells them. */
static void
rejects_map_keys_equal_as_integers(void **state)
{
	static const char *const dups[][2] = {
		{ "{'byZone':{'1':{},'01':{}}}", "duplicate object key '01'" },
		{ "{'byZone':{'0':{},'-0':{}}}", "duplicate object key '-0'" },
		{ "{'byZone':{'-0':{},'000':{}}}",
		    "duplicate object key '000'" },
		{ "{'byZone':{'-7':{},'2':{},'-007':{}}}",
		    "duplicate object key '-007'" },
		/* after an error of content in the map */
		{ "{'byZone':{'1':{'city':1},'001':{}}}",
		    "duplicate object key '001'" },
	};
	static const char proto[] =
	    "syntax = \"proto3\";\n"
	    "package k;\n"
	    "message K { map<uint64, string> u = 1; }\n";
	struct fixture *f = *state;
	struct schema *s = protoc_schema("k.proto", proto);
	const struct schema_type *t = schema_lookup(s, "k.K");

	for (size_t i = 0; i < sizeof dups / sizeof *dups; i++)
		expect_error(f->order, dups[i][0], dups[i][1]);
	expect_error(t,
	    "{'u':{'18446744073709551615':'a','018446744073709551615':'b'}}",
	    "duplicate object key '018446744073709551615'");
	/* each alone reads as before */
	expect_json(f->order, "{'byZone':{'01':{},'-0':{'city':'x'}}}",
	    "{'byZone':{'0':{'city':'x'},'1':{}}}", &schema_limits_default);
	expect_json(f->order, "{'byZone':{'-1':{},'1':{},'10':{}}}",
	    "{'byZone':{'-1':{},'1':{},'10':{}}}", &schema_limits_default);
	expect_json(t, "{'u':{'8':'b','007':'a'}}", "{'u':{'7':'a','8':'b'}}",
	    &schema_limits_default);
	/* a sign where none can be is no integer, and no duplicate */
	expect_error(t, "{'u':{'0':'a','-0':'b'}}",
	    "field u['-0']: '-0' is not an unsigned integer");
	schema_free(s);
}

static void
rejects_bad_text_values(void **state)
{
	static const char *const times[] = {
		"2023-02-29T00:00:00Z", /* not a leap year */
		"2024-11-31T00:00:00Z",
		"2024-11-23 10:00:00Z",
		"2024-11-23T24:00:00Z",
		"2024-11-23T10:00:60Z",
		"2024-11-23T10:00:00",
		"2024-11-23T10:00:00.Z",
		"2024-11-23T10:00:00.1234567890Z",
		"2024-11-23T10:00:00+1:00",
		"2024-11-23T10:00:00+24:00",
		"0000-12-31T00:00:00Z",
		"0001-01-01T00:00:00+00:01", /* before year 1 in UTC */
		"10000-01-01T00:00:00Z",
		"",
	};
	static const char *const durations[] = { "1.5", "1.5S", "s", "-s",
		"1.s", "1.0000000001s", "315576000001s", "+1s", " 1s",
		"99999999999999999999s" };
	struct fixture *f = *state;
	char in[128], want[160];

	for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
		snprintf(in, sizeof in, "{'createdAt':'%s'}", times[i]);
		snprintf(want, sizeof want,
		    "field created_at: '%s' is not an RFC 3339 time", times[i]);
		expect_error(f->order, in, want);
	}
	for (size_t i = 0; i < sizeof durations / sizeof *durations; i++) {
		snprintf(in, sizeof in, "{'ttl':'%s'}", durations[i]);
		snprintf(want, sizeof want, "field ttl: '%s' is not a duration",
		    durations[i]);
		expect_error(f->order, in, want);
	}
	expect_error(f->order, "{'blob':'!!!!'}",
	    "field blob: expected base64, got other text");
	expect_error(f->order, "{'blob':'abcde'}",
	    "field blob: expected base64, got other text");
	expect_error(f->order, "{'blob':1}",
	    "field blob: expected base64, got a number");
}

static void
bounds_depth_size_and_memory(void **state)
{
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;
	char *deep = xmalloc(70 * 16 + 32), *many;
	size_t n = 0;

	/* Struct values 70 deep: more than 64 levels of messages. */
	n += (size_t)sprintf(deep + n, "{'extra':");
	for (int i = 0; i < 70; i++)
		n += (size_t)sprintf(deep + n, "{'a':");
	n += (size_t)sprintf(deep + n, "1");
	for (int i = 0; i < 71; i++)
		deep[n++] = '}';
	deep[n] = '\0';
	expect_error(f->order, deep, "nested deeper than 64");
	/* Recursive messages likewise. */
	n = 0;
	for (int i = 0; i < 70; i++)
		n += (size_t)sprintf(deep + n, "{'parent':");
	n += (size_t)sprintf(deep + n, "{}");
	for (int i = 0; i < 70; i++)
		deep[n++] = '}';
	deep[n] = '\0';
	expect_error(f->order, deep,
	    "field ...parent.parent.parent.parent.parent.parent.parent.parent."
	    "parent.parent.parent.parent.parent.parent.parent.parent: nested "
	    "deeper than 64");
	free(deep);

	lim.max_size = 10;
	expect_error_lim(f->order, "{'id':'123456'}",
	    "shop.test.Order: 15 bytes, more than the limit of 10", &lim);

	/* 20000 empty lines take megabytes as messages. */
	lim = schema_limits_default;
	lim.max_memory = 1 << 20;
	many = xmalloc(20000 * 3 + 16);
	n = (size_t)sprintf(many, "{'lines':[");
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(many + n, "{},");
	many[n - 1] = ']';
	many[n++] = '}';
	many[n] = '\0';
	expect_error_lim(f->order, many, "field lines[", &lim);
	expect_error_lim(f->order, many,
	    "decoding would take more than 1048576 bytes", &lim);
	free(many);
}

/* Past the depth limit the text is not read on: an error there, or
 * after, does not replace the limit's. */
static void
stops_at_the_depth_limit(void **state)
{
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;
	char *deep = xmalloc(65 * 16 + 64);
	size_t n = 0;

	lim.ignore_unknown = true;
	/* a skipped value one level too deep, then invalid JSON */
	nest_arrays(deep, "{'nope':", 65, "} x");
	expect_error_lim(
	    f->order, deep, "field nope: nested deeper than 64", &lim);
	nest_arrays(deep, "{'nope':", 65, ",'id':1,'id':2}");
	expect_error_lim(
	    f->order, deep, "field nope: nested deeper than 64", &lim);
	/* a message one level too deep, then invalid JSON */
	for (int i = 0; i < 65; i++)
		n += (size_t)sprintf(deep + n, "{'parent':");
	n += (size_t)sprintf(deep + n, "{'id':1}");
	memset(deep + n, '}', 65);
	strcpy(deep + n + 65, "\v");
	expect_error(f->order, deep, ".parent: nested deeper than 64");
	free(deep);
}

/* The keys kept to find duplicates take memory as the message does:
 * those of an object that is skipped too, while it is open. */
static void
counts_the_keys_against_memory(void **state)
{
	struct fixture *f = *state;
	struct schema_limits lim = schema_limits_default;
	char *many = xmalloc(5000 * 16 + 64);
	size_t n;

	lim.ignore_unknown = true;
	lim.max_memory = 64 << 10;
	/* 5000 keys open at once: a few hundred kilobytes */
	n = (size_t)sprintf(many, "{'nope':{");
	for (int i = 0; i < 5000; i++)
		n += (size_t)sprintf(many + n, "'k%04d':%d,", i, i);
	sprintf(many + n - 1, "}}");
	expect_error_lim(f->order, many,
	    "field nope: decoding would take more than 65536 bytes", &lim);
	/* 5000 keys, two at a time */
	n = (size_t)sprintf(many, "{'nope':[");
	for (int i = 0; i < 2500; i++)
		n += (size_t)sprintf(many + n, "{'a%d':1,'b':2},", i);
	sprintf(many + n - 1, "]}");
	expect_json(f->order, many, "{}", &lim);
	free(many);
}

/* The array of field |name| of |m|, and its length in |*n|. */
static void *
array_of(const ProtobufCMessage *m, const char *name, size_t *n)
{
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(
		m->descriptor, name);

	*n = *(const size_t *)((const char *)m + fd->quantifier_offset);
	return *(void *const *)((const char *)m + fd->offset);
}

/* A list's array grows by doubling while it is read; once it is
 * finished, it is cut to its length and counted by that length, so
 * that the room it no longer takes is there for the rest. */
static void
counts_a_finished_list_by_its_length(void **state)
{
	struct fixture *f = *state;
	const ProtobufCMessageDescriptor *d = schema_type_descriptor(f->order);
	struct schema_limits lim = schema_limits_default;
	char *json = xmalloc(1025 * 16 + 64);
	ProtobufCMessage *m;
	void *counts, *tags;
	size_t n, ncounts, ntags;

	/* 5 int32s take 8 while they are read; then 11 bytes of id and
	 * its NUL take the 3 left over. */
	lim.max_memory = d->sizeof_message + 8 * sizeof(int32_t);
	m = decode_json(
	    f->order, "{\"counts\":[1,2,3,4,5],\"id\":\"abcdefghijk\"}", &lim);
	schema_message_free(m);
	expect_error_lim(f->order, "{'counts':[1,2,3,4,5],'id':'abcdefghijkl'}",
	    "field id: decoding would take more than", &lim);
	/* 1025 elements, and map entries, in arrays of 2048 before they
	 * are cut */
	n = (size_t)sprintf(json, "{\"counts\":[");
	for (int i = 0; i < 1025; i++)
		n += (size_t)sprintf(json + n, "0,");
	n += (size_t)sprintf(json + n - 1, "],\"tags\":{") - 1;
	for (int i = 0; i < 1025; i++)
		n += (size_t)sprintf(json + n, "\"%d\":\"0\",", i);
	sprintf(json + n - 1, "}}");
	m = decode_json(f->order, json, &schema_limits_default);
	counts = array_of(m, "counts", &ncounts);
	tags = array_of(m, "tags", &ntags);
	assert_int_equal(ncounts, 1025);
	assert_int_equal(ntags, 1025);
#ifdef __GLIBC__
	assert_true(malloc_usable_size(counts) < 2048 * sizeof(int32_t));
	assert_true(malloc_usable_size(tags) < 2048 * sizeof(void *));
#endif
	schema_message_free(m);
	free(json);
}

/* The error of printing |json| as |t| once |set| has changed it. */
static char *
encode_error(const struct schema_type *t, const char *json,
    void (*set)(ProtobufCMessage *))
{
	ProtobufCMessage *m = decode_json(t, json, &schema_limits_default);
	char *err = NULL, *out;
	size_t len;

	set(m);
	out = pbjson_encode(m, &len, &err);
	assert_null(out);
	schema_message_free(m);
	return err;
}

/* The first field of |m|'s first set message field. */
static void *
inner_field(ProtobufCMessage *m, const char *name, int i)
{
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(
		m->descriptor, name);
	ProtobufCMessage *sub;

	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		sub = (*(ProtobufCMessage ***)((char *)m + fd->offset))[0];
	else
		sub = *(ProtobufCMessage **)((char *)m + fd->offset);
	return (char *)sub + sub->descriptor->fields[i].offset;
}

static void
set_late_time(ProtobufCMessage *m)
{
	*(int64_t *)inner_field(m, "created_at", 0) = 253402300800;
}

static void
set_long_duration(ProtobufCMessage *m)
{
	*(int64_t *)inner_field(m, "ttl", 0) = 315576000001;
}

static void
set_mixed_signs(ProtobufCMessage *m)
{
	*(int64_t *)inner_field(m, "ttl", 0) = 1;
	*(int32_t *)inner_field(m, "ttl", 1) = -1;
}

static void
set_no_kind(ProtobufCMessage *m)
{
	/* number_value's oneof case back to unset */
	const ProtobufCFieldDescriptor *fd;
	ProtobufCMessage *v = (*(ProtobufCMessage ***)((char *)m +
	    protobuf_c_message_descriptor_get_field_by_name(
		m->descriptor, "anything")
		->offset))[0];

	fd = &v->descriptor->fields[1];
	*(uint32_t *)((char *)v + fd->quantifier_offset) = 0;
}

static void
set_nan_value(ProtobufCMessage *m)
{
	*(double *)inner_field(m, "anything", 1) = 0.0 / 0.0;
}

static void
set_bad_utf8(ProtobufCMessage *m)
{
	char **id = (char **)((char *)m +
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "id")
		->offset);

	free(*id);
	*id = xstrdup("\xff");
}

static void
refuses_to_print_what_json_cannot_hold(void **state)
{
	static const struct {
		const char *json;
		void (*set)(ProtobufCMessage *);
		const char *want;
	} cases[] = {
		{ "{\"createdAt\":\"2024-01-01T00:00:00Z\"}", set_late_time,
		    "shop.test.Order: timestamp 253402300800s 0ns is out of "
		    "range for RFC 3339" },
		{ "{\"ttl\":\"1s\"}", set_long_duration,
		    "shop.test.Order: duration 315576000001s 0ns is out of "
		    "range" },
		{ "{\"ttl\":\"1s\"}", set_mixed_signs,
		    "shop.test.Order: duration 1s -1ns is out of range" },
		{ "{\"anything\":[1]}", set_no_kind,
		    "shop.test.Order: google.protobuf.Value has no kind" },
		{ "{\"anything\":[1]}", set_nan_value,
		    "shop.test.Order: google.protobuf.Value holds a number "
		    "that is not finite" },
		{ "{\"id\":\"x\"}", set_bad_utf8,
		    "shop.test.Order: field id: string is not UTF-8" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *err = encode_error(f->order, cases[i].json, cases[i].set);

		assert_string_equal(err, cases[i].want);
		free(err);
	}
}

static void
prints_single_values(void **state)
{
	struct fixture *f = *state;
	const struct schema_type *t = f->order;
	const ProtobufCMessageDescriptor *d = schema_type_descriptor(t);
	ProtobufCMessage *m = decode_json(t,
	    "{\"i64\":\"-3\",\"db\":0.25,\"createdAt\":\"2024-11-23T10:00:"
	    "00Z\"}",
	    &schema_limits_default);
	const char *names[] = { "i64", "db", "created_at" };
	const char *want[] = { "\"-3\"", "0.25", "\"2024-11-23T10:00:00Z\"" };
	char *err;

	for (int i = 0; i < 3; i++) {
		const ProtobufCFieldDescriptor *fd =
		    protobuf_c_message_descriptor_get_field_by_name(
			d, names[i]);
		json_t *v = pbjson_value(t, (unsigned)(fd - d->fields),
		    (char *)m + fd->offset, &err);
		size_t len;
		char *s;

		assert_non_null(v);
		s = pbjson_dump(v, &len);
		assert_string_equal(s, want[i]);
		free(s);
		json_decref(v);
	}
	schema_message_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_the_goldens_in_both_encodings),
		cmocka_unit_test(round_trips_byte_exact),
		cmocka_unit_test(accepts_every_spelling),
		cmocka_unit_test(treats_unknown_fields_by_setting),
		cmocka_unit_test(rejects_bad_json),
		cmocka_unit_test(rejects_what_the_parser_lets_through),
		cmocka_unit_test(rejects_duplicate_keys_everywhere),
		cmocka_unit_test(names_keys_in_errors),
		cmocka_unit_test(reports_syntax_errors_first),
		cmocka_unit_test(bounds_skipped_values),
		cmocka_unit_test(fails_cleanly_at_every_byte),
		cmocka_unit_test(reads_as_before),
		cmocka_unit_test(rejects_numbers_out_of_range),
		cmocka_unit_test(reads_integral_numbers_exactly),
		cmocka_unit_test(rounds_floats_from_the_text),
		cmocka_unit_test(reads_null_where_it_is_a_value),
		cmocka_unit_test(rejects_map_keys_equal_as_integers),
		cmocka_unit_test(rejects_bad_text_values),
		cmocka_unit_test(bounds_depth_size_and_memory),
		cmocka_unit_test(stops_at_the_depth_limit),
		cmocka_unit_test(counts_the_keys_against_memory),
		cmocka_unit_test(counts_a_finished_list_by_its_length),
		cmocka_unit_test(refuses_to_print_what_json_cannot_hold),
		cmocka_unit_test(prints_single_values),
	};

	return cmocka_run_group_tests_name("pbjson", tests, setup, teardown);
}
