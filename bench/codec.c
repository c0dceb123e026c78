/*
 * codec: microseconds per decode and per encode of an order event
 * (orders.v2.OrderCreated, about 200 bytes as JSON) in each encoding,
 * through the schema loaded at run time from the reference descriptor
 * set. Decoding includes the checks and freeing the message.
 *
 *   bench/codec [-n ITERATIONS] [-d proto/events.desc]
 *
 * Run it from the build directory after `make`, which writes
 * proto/events.desc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"
#include "sidecar/view.h"

static const char order[] =
    "{\"messageId\":\"ord-000042\",\"orderRef\":\"o-000042\",\"customer\":"
    "{\"id\":\"c-0042\"},\"totalMinor\":\"12345\",\"currency\":\"EUR\","
    "\"createdAt\":\"2024-11-23T10:00:00.250Z\",\"items\":[{\"sku\":"
    "\"SKU-1\",\"quantity\":2,\"unitPriceMinor\":\"5000\"}]}";

struct input {
	const struct schema_type *type;
	enum view_encoding enc;
	const void *data;
	size_t len;
	const ProtobufCMessage *msg;
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
	const char *path = "proto/events.desc";
	struct input json, pb;
	const char *paths[1];
	struct schema *s;
	ProtobufCMessage *m;
	long n = 200000;
	uint8_t *bytes;
	char *err;
	int ch;

	while ((ch = getopt(argc, argv, "n:d:")) != -1) {
		switch (ch) {
		case 'n':
			n = atol(optarg);
			break;
		case 'd':
			path = optarg;
			break;
		default:
			fprintf(stderr,
			    "usage: codec [-n ITERATIONS] "
			    "[-d DESCRIPTOR_SET]\n");
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
	free(bytes);
	schema_message_free(m);
	schema_free(s);
	return 0;
}
