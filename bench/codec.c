/*
 * codec: microseconds per decode and per encode of an order event
 * (orders.v2.OrderCreated, about 200 bytes as JSON) in each encoding,
 * through the schema loaded at run time from the reference descriptor
 * set. Decoding includes the checks and freeing the message.
 *
 * Then the translation of a v1 JSON order (the benchmark suite's) to v2
 * protobuf by examples/mappings/orders-v1-to-v2.yaml: the mapping alone,
 * and decode + mapping + encode, as the translate filter does it.
 *
 *   bench/codec [-n ITERATIONS] [-d proto/events.desc]
 *               [-m examples/mappings/orders-v1-to-v2.yaml]
 *
 * Run it from the build directory after `make`, which writes
 * proto/events.desc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/mapping.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"
#include "sidecar/view.h"

static const char order[] =
    "{\"messageId\":\"ord-000042\",\"orderRef\":\"o-000042\",\"customer\":"
    "{\"id\":\"c-0042\"},\"totalMinor\":\"12345\",\"currency\":\"EUR\","
    "\"createdAt\":\"2024-11-23T10:00:00.250Z\",\"items\":[{\"sku\":"
    "\"SKU-1\",\"quantity\":2,\"unitPriceMinor\":\"5000\"}]}";

/* A v1 order as bench/suite publishes it. */
static const char order_v1[] =
    "{\"message_id\":\"ord-000000000042\",\"order_id\":\"order-2026-12-03-"
    "000000000042\",\"customer_id\":\"customer-00000042-eu-west-1-retail-"
    "web-checkout\",\"total_amount\":52.42,\"created_at\":1764720000042}";

struct input {
	const struct schema_type *type;
	enum view_encoding enc;
	const void *data;
	size_t len;
	const ProtobufCMessage *msg;
	struct mapping *mapping; /* translations */
};

/* Monotonic time in microseconds. */
static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Reports |what| failed and exits. */
static void
fail(const char *what, const char *err)
{
	fprintf(stderr, "codec: %s: %s\n", what, err);
	exit(1);
}

/* One decode of the input, message freed. */
static void
decode(const struct input *in)
{
	ProtobufCMessage *m;
	char *err;
	int rc;

	if (in->enc == VIEW_JSON)
		rc = pbjson_decode(in->type, in->data, in->len,
		    &schema_limits_default, &m, &err);
	else
		rc = pbwire_decode(in->type, in->data, in->len,
		    &schema_limits_default, &m, &err);
	if (rc == -1)
		fail("decode", err);
	schema_message_free(m);
}

/* One encode of the message, output freed. */
static void
encode(const struct input *in)
{
	char *err;
	size_t len;
	void *out;

	if (in->enc == VIEW_JSON) {
		if ((out = pbjson_encode(in->msg, &len, &err)) == NULL)
			fail("encode", err);
	} else {
		out = pbwire_encode(in->msg, &len);
	}
	free(out);
}

/* A view and one field read through it, as a filter would. */
static void
view_read_one(const struct input *in)
{
	struct view *v = view_new(
	    in->type, in->enc, in->data, in->len, &schema_limits_default);
	char *text, *err;

	if (view_text(v, "customer.id", &text, &err) != 1)
		fail("view", err != NULL ? err : "absent");
	free(text);
	view_free(v);
}

/* The mapping applied to the decoded message. */
static void
map_only(const struct input *in)
{
	ProtobufCMessage *out;
	char *err;

	if (mapping_apply(in->mapping, in->msg, &out, &err) == -1)
		fail("translate", err);
	schema_message_free(out);
}

/* Decode, mapping, encode: the translate filter's work per message. */
static void
translate_whole(const struct input *in)
{
	ProtobufCMessage *m, *out;
	size_t len;
	char *err;

	if (pbjson_decode(in->type, in->data, in->len, &schema_limits_default,
		&m, &err) == -1)
		fail("decode", err);
	if (mapping_apply(in->mapping, m, &out, &err) == -1)
		fail("translate", err);
	free(pbwire_encode(out, &len));
	schema_message_free(out);
	schema_message_free(m);
}

/* Microseconds per call of |fn| over |n| calls, after a warm-up. */
static double
measure(void (*fn)(const struct input *), const struct input *in, long n)
{
	double start;

	for (long i = 0; i < n / 10 + 1; i++)
		fn(in);
	start = now_us();
	for (long i = 0; i < n; i++)
		fn(in);
	return (now_us() - start) / (double)n;
}

int
main(int argc, char **argv)
{
	const char *path = "proto/events.desc",
		   *mapping = "examples/mappings/orders-v1-to-v2.yaml";
	struct input json, pb, v1 = { .enc = VIEW_JSON };
	const char *paths[1];
	struct schema *s;
	ProtobufCMessage *m, *v1m;
	long n = 200000;
	uint8_t *bytes;
	char *err;
	int ch;

	while ((ch = getopt(argc, argv, "n:d:m:")) != -1) {
		switch (ch) {
		case 'n':
			n = atol(optarg);
			break;
		case 'd':
			path = optarg;
			break;
		case 'm':
			mapping = optarg;
			break;
		default:
			fprintf(stderr,
			    "usage: codec [-n ITERATIONS] "
			    "[-d DESCRIPTOR_SET] [-m MAPPING]\n");
			return 2;
		}
	}
	paths[0] = path;
	if (n < 1)
		fail("-n", "not a positive number");
	if ((s = schema_load_files(paths, 1, &err)) == NULL)
		fail("schema", err);
	json.type = pb.type = schema_lookup(s, "orders.v2.OrderCreated");
	json.enc = VIEW_JSON;
	json.data = order;
	json.len = strlen(order);
	if (pbjson_decode(json.type, order, json.len, &schema_limits_default,
		&m, &err) == -1)
		fail("decode", err);
	json.msg = pb.msg = m;
	pb.enc = VIEW_PROTOBUF;
	pb.data = bytes = pbwire_encode(m, &pb.len);

	printf("orders.v2.OrderCreated: %zu bytes as JSON, %zu as protobuf; "
	       "%ld iterations\n\n",
	    json.len, pb.len, n);
	printf("%-10s %12s %12s %22s\n", "encoding", "decode (us)",
	    "encode (us)", "view + 1 field (us)");
	printf("%-10s %12.3f %12.3f %22.3f\n", "protobuf",
	    measure(decode, &pb, n), measure(encode, &pb, n),
	    measure(view_read_one, &pb, n));
	printf("%-10s %12.3f %12.3f %22.3f\n", "json",
	    measure(decode, &json, n), measure(encode, &json, n),
	    measure(view_read_one, &json, n));

	if ((v1.mapping = mapping_load(mapping, s, &err)) == NULL)
		fail("mapping", err);
	v1.type = schema_lookup(s, "orders.v1.OrderCreated");
	v1.data = order_v1;
	v1.len = strlen(order_v1);
	if (pbjson_decode(v1.type, order_v1, v1.len, &schema_limits_default,
		&v1m, &err) == -1)
		fail("decode", err);
	v1.msg = v1m;
	printf("\n%-34s %12s %22s\n", "translation", "mapping (us)",
	    "decode+map+encode (us)");
	printf("%-34s %12.3f %22.3f\n", "v1-json-to-v2-protobuf",
	    measure(map_only, &v1, n), measure(translate_whole, &v1, n));
	schema_message_free(v1m);
	mapping_free(v1.mapping);
	free(bytes);
	schema_message_free(m);
	schema_free(s);
	return 0;
}
