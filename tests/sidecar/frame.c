/*
 * Framing: every frame kind survives a round trip, the hand-written
 * Delivery encoder writes the bytes protobuf-c writes, partial input asks
 * for more without reading past the end, and bad prefixes and bodies are
 * refused with the bytes to skip.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cmocka.h"
#include "sidecar/buf.h"
#include "sidecar/frame.h"
#include "sidecar/xmalloc.h"

/* Decodes from a copy of exactly |len| bytes, so that ASan catches any
 * read past the end. */
static enum frame_status
decode_exact(
    const uint8_t *data, size_t len, size_t max, Frame **out, size_t *used)
{
	uint8_t *copy = xmalloc(len > 0 ? len : 1);
	enum frame_status st;

	memcpy(copy, data, len);
	st = frame_decode(copy, len, max, out, used);
	free(copy);
	return st;
}

/* Encodes |f|, decodes it back and checks that it packs to the same
 * bytes; returns the decoded frame. */
static Frame *
round_trip(const Frame *f)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	Frame *got = NULL;
	size_t n, used = 0;

	n = frame_encode(f, FRAME_DEFAULT_MAX, &a);
	assert_true(n > FRAME_PREFIX_SIZE);
	assert_int_equal(n, buf_used(&a));
	assert_int_equal(
	    decode_exact(buf_head(&a), n, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_OK);
	assert_int_equal(used, n);
	assert_int_equal(got->body_case, f->body_case);
	assert_int_equal(frame_encode(got, FRAME_DEFAULT_MAX, &b), n);
	assert_memory_equal(buf_head(&a), buf_head(&b), n);
	buf_free(&a);
	buf_free(&b);
	return got;
}

static void
every_kind_round_trips(void **state)
{
	NatsSidecar__Channel__V1__Header h1 =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header h2 =
	    NATS_SIDECAR__CHANNEL__V1__HEADER__INIT;
	NatsSidecar__Channel__V1__Header *hs[] = { &h1, &h2 };
	NatsSidecar__Channel__V1__Hello hello =
	    NATS_SIDECAR__CHANNEL__V1__HELLO__INIT;
	NatsSidecar__Channel__V1__Welcome welcome =
	    NATS_SIDECAR__CHANNEL__V1__WELCOME__INIT;
	NatsSidecar__Channel__V1__Delivery delivery =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	NatsSidecar__Channel__V1__Result result =
	    NATS_SIDECAR__CHANNEL__V1__RESULT__INIT;
	NatsSidecar__Channel__V1__Publish publish =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH__INIT;
	NatsSidecar__Channel__V1__PublishAck ack =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	NatsSidecar__Channel__V1__Heartbeat hb =
	    NATS_SIDECAR__CHANNEL__V1__HEARTBEAT__INIT;
	NatsSidecar__Channel__V1__Error error =
	    NATS_SIDECAR__CHANNEL__V1__ERROR__INIT;
	NatsSidecar__Channel__V1__Drain drain =
	    NATS_SIDECAR__CHANNEL__V1__DRAIN__INIT;
	char *subs[] = { "orders", "payments" };
	uint8_t payload[] = { 0, 1, 2, 0xff, 0, 'x' };
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *got;

	h1.name = "X-Tenant";
	h1.value = "acme";
	h2.name = "X-Tenant";
	h2.value = "second";

	hello.protocol_version = 1;
	hello.capacity = 8;
	hello.max_frame_size = 4096;
	hello.app_name = "payments-7f9c/1";
	hello.n_subscriptions = 2;
	hello.subscriptions = subs;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HELLO;
	f.hello = &hello;
	got = round_trip(&f);
	assert_int_equal(got->hello->capacity, 8);
	assert_int_equal(got->hello->n_subscriptions, 2);
	assert_string_equal(got->hello->subscriptions[1], "payments");
	frame_free(got);

	welcome.protocol_version = 1;
	welcome.max_frame_size = 1 << 20;
	welcome.heartbeat_interval_ms = 5000;
	welcome.sidecar_version = "0.1.0";
	welcome.instance_id = "pod-1";
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME;
	f.welcome = &welcome;
	got = round_trip(&f);
	assert_string_equal(got->welcome->instance_id, "pod-1");
	frame_free(got);

	delivery.id = UINT64_MAX;
	delivery.subscription = "orders";
	delivery.subject = "orders.created.v1";
	delivery.n_headers = 2;
	delivery.headers = hs;
	delivery.payload.data = payload;
	delivery.payload.len = sizeof payload;
	delivery.attempt = 3;
	delivery.stream_sequence = 42;
	delivery.published_at_ns = -1;
	delivery.processing_timeout_ms = 30000;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY;
	f.delivery = &delivery;
	got = round_trip(&f);
	assert_int_equal(got->delivery->id, UINT64_MAX);
	assert_int_equal(got->delivery->published_at_ns, -1);
	assert_int_equal(got->delivery->payload.len, sizeof payload);
	assert_memory_equal(
	    got->delivery->payload.data, payload, sizeof payload);
	/* Repeated headers keep their order. */
	assert_string_equal(got->delivery->headers[0]->value, "acme");
	assert_string_equal(got->delivery->headers[1]->value, "second");
	frame_free(got);

	result.id = 7;
	result.outcome = NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY;
	result.retry_delay_ms = 1500;
	result.reason = "database down";
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_RESULT;
	f.result = &result;
	got = round_trip(&f);
	assert_int_equal(got->result->outcome,
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY);
	assert_int_equal(got->result->retry_delay_ms, 1500);
	frame_free(got);

	publish.id = 9;
	publish.subject = "orders.shipped.v1";
	publish.n_headers = 1;
	publish.headers = hs;
	publish.payload.data = payload;
	publish.payload.len = sizeof payload;
	publish.message_id = "ship-9";
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH;
	f.publish = &publish;
	got = round_trip(&f);
	assert_string_equal(got->publish->message_id, "ship-9");
	frame_free(got);

	ack.id = 9;
	ack.status = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK;
	ack.stream = "ORDERS";
	ack.sequence = 100;
	ack.duplicate = true;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK;
	f.publish_ack = &ack;
	got = round_trip(&f);
	assert_true(got->publish_ack->duplicate);
	assert_int_equal(got->publish_ack->sequence, 100);
	frame_free(got);

	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT;
	f.heartbeat = &hb;
	got = round_trip(&f);
	frame_free(got);

	error.code = NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNKNOWN_ID;
	error.message = "no delivery 5 on this connection";
	error.ref_id = 5;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR;
	f.error = &error;
	got = round_trip(&f);
	assert_int_equal(got->error->ref_id, 5);
	assert_false(got->error->fatal);
	frame_free(got);

	drain.grace_ms = 25000;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DRAIN;
	f.drain = &drain;
	got = round_trip(&f);
	assert_int_equal(got->drain->grace_ms, 25000);
	frame_free(got);
}

/* The byte examples of docs/protocol.md, both ways. */
static void
documented_examples(void **state)
{
	static const uint8_t heartbeat[] = { 0, 0, 0, 2, 0x3a, 0 };
	static const uint8_t hello[] = { 0, 0, 0, 0x0c, 0x0a, 0x0a, 0x08, 0x01,
		0x10, 0x08, 0x22, 0x04, 'd', 'e', 'm', 'o' };
	static const uint8_t result[] = { 0, 0, 0, 6, 0x22, 0x04, 0x08, 0x4d,
		0x10, 0x01 };
	NatsSidecar__Channel__V1__Heartbeat hb =
	    NATS_SIDECAR__CHANNEL__V1__HEARTBEAT__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *got;
	struct buf b = BUF_INIT;
	size_t used;

	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT;
	f.heartbeat = &hb;
	assert_int_equal(
	    frame_encode(&f, FRAME_DEFAULT_MAX, &b), sizeof heartbeat);
	assert_memory_equal(buf_head(&b), heartbeat, sizeof heartbeat);
	buf_free(&b);

	assert_int_equal(
	    decode_exact(hello, sizeof hello, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_OK);
	assert_int_equal(used, sizeof hello);
	assert_int_equal(got->hello->protocol_version, 1);
	assert_int_equal(got->hello->capacity, 8);
	assert_string_equal(got->hello->app_name, "demo");
	assert_int_equal(
	    frame_encode(got, FRAME_DEFAULT_MAX, &b), sizeof hello);
	assert_memory_equal(buf_head(&b), hello, sizeof hello);
	frame_free(got);
	buf_free(&b);

	assert_int_equal(
	    decode_exact(result, sizeof result, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_OK);
	assert_int_equal(got->result->id, 77);
	assert_int_equal(got->result->outcome,
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	frame_free(got);
}

/* Two frames back to back, offered one byte more at a time. */
static void
partial_input_byte_by_byte(void **state)
{
	NatsSidecar__Channel__V1__Result r =
	    NATS_SIDECAR__CHANNEL__V1__RESULT__INIT;
	NatsSidecar__Channel__V1__Drain d =
	    NATS_SIDECAR__CHANNEL__V1__DRAIN__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *got;
	struct buf b = BUF_INIT;
	size_t first, second, used;

	r.id = 12345;
	r.outcome = NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK;
	r.reason = "a reason long enough to span many bytes";
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_RESULT;
	f.result = &r;
	first = frame_encode(&f, FRAME_DEFAULT_MAX, &b);
	d.grace_ms = 1;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DRAIN;
	f.drain = &d;
	second = frame_encode(&f, FRAME_DEFAULT_MAX, &b);
	assert_int_equal(buf_used(&b), first + second);

	for (size_t len = 0; len < first; len++) {
		got = NULL;
		assert_int_equal(decode_exact(buf_head(&b), len,
				     FRAME_DEFAULT_MAX, &got, &used),
		    FRAME_NEED_MORE);
		assert_null(got);
	}
	/* From the whole first frame on, the first frame comes out. */
	for (size_t len = first; len <= first + second; len++) {
		assert_int_equal(decode_exact(buf_head(&b), len,
				     FRAME_DEFAULT_MAX, &got, &used),
		    FRAME_OK);
		assert_int_equal(used, first);
		assert_int_equal(got->result->id, 12345);
		frame_free(got);
	}
	for (size_t len = 0; len < second; len++)
		assert_int_equal(decode_exact(buf_head(&b) + first, len,
				     FRAME_DEFAULT_MAX, &got, &used),
		    FRAME_NEED_MORE);
	assert_int_equal(decode_exact(buf_head(&b) + first, second,
			     FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_OK);
	assert_int_equal(used, second);
	assert_int_equal(got->drain->grace_ms, 1);
	frame_free(got);
	buf_free(&b);
}

/* A prefix over the limit is refused from its four bytes alone. */
static void
too_large_prefix(void **state)
{
	static const uint8_t over[] = { 0x00, 0x10, 0x00, 0x01 };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0x3a, 0x00 };
	NatsSidecar__Channel__V1__Error e =
	    NATS_SIDECAR__CHANNEL__V1__ERROR__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *got = NULL;
	struct buf b = BUF_INIT;
	size_t used = 0, n;

	assert_int_equal(
	    decode_exact(over, sizeof over, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_TOO_LARGE);
	assert_int_equal(
	    decode_exact(huge, sizeof huge, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_TOO_LARGE);
	assert_null(got);
	/* 1048576 itself is allowed: it just needs its bytes. */
	assert_int_equal(decode_exact((const uint8_t[]){ 0, 0x10, 0, 0 }, 4,
			     FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_NEED_MORE);

	/* The limit applies to the body, on both sides. */
	e.message = "0123456789";
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR;
	f.error = &e;
	n = nats_sidecar__channel__v1__frame__get_packed_size(&f);
	assert_int_equal(frame_encode(&f, n - 1, &b), 0);
	assert_int_equal(buf_used(&b), 0);
	assert_int_equal(frame_encode(&f, n, &b), n + FRAME_PREFIX_SIZE);
	assert_int_equal(
	    decode_exact(buf_head(&b), buf_used(&b), n - 1, &got, &used),
	    FRAME_TOO_LARGE);
	assert_int_equal(
	    decode_exact(buf_head(&b), buf_used(&b), n, &got, &used), FRAME_OK);
	frame_free(got);
	buf_free(&b);
}

/* Bad bodies are refused, and |used| lets a reader skip them. */
static void
malformed_bodies(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[16];
		size_t len;
	} bad[] = {
		{ "truncated submessage", { 0, 0, 0, 3, 0x0a, 0x05, 0x08 }, 7 },
		{ "invalid wire type", { 0, 0, 0, 2, 0x0f, 0x00 }, 6 },
		{ "truncated varint", { 0, 0, 0, 3, 0x22, 0x02, 0x08 }, 7 },
		{ "field number zero", { 0, 0, 0, 2, 0x00, 0x01 }, 6 },
		{ "unknown frame kind only", { 0, 0, 0, 2, 0x78, 0x01 }, 6 },
		{ "hello as a varint", { 0, 0, 0, 2, 0x08, 0x01 }, 6 },
		{ "garbage in hello", { 0, 0, 0, 4, 0x0a, 0x02, 0xff, 0xff },
		    8 },
	};
	static const uint8_t heartbeat[] = { 0, 0, 0, 2, 0x3a, 0 };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t data[32];
		Frame *got = NULL;
		size_t used = 0;

		/* Followed by a good frame, which must decode after. */
		memcpy(data, bad[i].bytes, bad[i].len);
		memcpy(data + bad[i].len, heartbeat, sizeof heartbeat);
		if (decode_exact(data, bad[i].len + sizeof heartbeat,
			FRAME_DEFAULT_MAX, &got, &used) != FRAME_MALFORMED)
			fail_msg("%s: not refused", bad[i].what);
		assert_null(got);
		assert_int_equal(used, bad[i].len);
		assert_int_equal(decode_exact(data + used, sizeof heartbeat,
				     FRAME_DEFAULT_MAX, &got, &used),
		    FRAME_OK);
		assert_int_equal(got->body_case,
		    NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT);
		frame_free(got);
	}
}

/* An empty Frame has no body: refused, four bytes to skip. */
static void
zero_length_frame(void **state)
{
	static const uint8_t zero[] = { 0, 0, 0, 0 };
	Frame *got = NULL;
	size_t used = 0;

	assert_int_equal(
	    decode_exact(zero, sizeof zero, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_MALFORMED);
	assert_null(got);
	assert_int_equal(used, FRAME_PREFIX_SIZE);
	assert_int_equal(
	    decode_exact(zero, sizeof zero, 0, &got, &used), FRAME_MALFORMED);
}

/* Fields a newer peer adds are skipped (docs/protocol.md, versioning). */
static void
unknown_fields_ignored(void **state)
{
	/* Hello{capacity: 3, field 99: varint 1}. */
	static const uint8_t data[] = { 0, 0, 0, 7, 0x0a, 0x05, 0x10, 0x03,
		0x98, 0x06, 0x01 };
	Frame *got = NULL;
	size_t used = 0;

	assert_int_equal(
	    decode_exact(data, sizeof data, FRAME_DEFAULT_MAX, &got, &used),
	    FRAME_OK);
	assert_int_equal(used, sizeof data);
	assert_int_equal(
	    got->body_case, NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HELLO);
	assert_int_equal(got->hello->capacity, 3);
	frame_free(got);
	frame_free(NULL);
}

/* A string of |n| random printable bytes, or NULL or "" at times. */
static char *
random_string(unsigned *seed, size_t max)
{
	size_t n = (size_t)rand_r(seed) % (max + 1);
	char *s;

	switch (rand_r(seed) % 4) {
	case 0:
		return NULL;
	case 1:
		n = 0;
		break;
	}
	s = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(' ' + rand_r(seed) % 95);
	s[n] = '\0';
	return s;
}

/* 0, a small number, or one of any width, for varints of every length. */
static uint64_t
random_number(unsigned *seed)
{
	uint64_t v = (uint64_t)rand_r(seed) << 33 ^
	    (uint64_t)rand_r(seed) << 11 ^ (uint64_t)rand_r(seed);

	switch (rand_r(seed) % 3) {
	case 0:
		return 0;
	case 1:
		return v % 300;
	}
	return v >> (rand_r(seed) % 64);
}

/* frame_encode() writes |f| as protobuf-c does, and within the limit. */
static void
assert_packs_as_protobuf_c(const Frame *f, int round)
{
	size_t want = nats_sidecar__channel__v1__frame__get_packed_size(f), n;
	uint8_t *packed = xmalloc(want);
	struct buf got = BUF_INIT;

	nats_sidecar__channel__v1__frame__pack(f, packed);
	n = frame_encode(f, FRAME_DEFAULT_MAX, &got);
	if (n != FRAME_PREFIX_SIZE + want ||
	    memcmp(buf_head(&got) + FRAME_PREFIX_SIZE, packed, want) != 0)
		fail_msg("round %d: %zu bytes written, protobuf-c writes %zu, "
			 "or other bytes",
		    round, n, FRAME_PREFIX_SIZE + want);
	/* The limit counts the hand-written body too. */
	assert_int_equal(frame_encode(f, want - 1, &got), 0);
	buf_free(&got);
	free(packed);
}

static void
deliveries_pack_as_protobuf_c_does(void **state)
{
	unsigned seed = 20261203;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		NatsSidecar__Channel__V1__Delivery d =
		    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
		NatsSidecar__Channel__V1__Header hs[4], *hp[4];
		Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
		char **strings[] = { &d.subscription, &d.subject,
			&d.content_type, &d.schema_version, &d.message_id,
			&d.traceparent, &d.tracestate, &d.stream };

		for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
			*strings[i] = random_string(&seed, 200);
		d.n_headers = (size_t)rand_r(&seed) % 5;
		for (size_t i = 0; i < d.n_headers; i++) {
			nats_sidecar__channel__v1__header__init(&hs[i]);
			hs[i].name = random_string(&seed, 20);
			hs[i].value = random_string(&seed, 150);
			hp[i] = &hs[i];
		}
		d.headers = hp;
		d.payload.len =
		    rand_r(&seed) % 3 == 0 ? 0 : (size_t)rand_r(&seed) % 20000;
		d.payload.data = xcalloc(1, d.payload.len + 1);
		d.id = random_number(&seed);
		d.attempt = (uint32_t)random_number(&seed);
		d.stream_sequence = random_number(&seed);
		d.published_at_ns = (int64_t)random_number(&seed) *
		    (rand_r(&seed) % 2 ? 1 : -1);
		d.processing_timeout_ms = (uint32_t)random_number(&seed);
		f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY;
		f.delivery = &d;
		assert_packs_as_protobuf_c(&f, round);
		free(d.payload.data);
		for (size_t i = 0; i < d.n_headers; i++) {
			free(hs[i].name);
			free(hs[i].value);
		}
		for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
			free(*strings[i]);
	}
}

static void
publish_acks_pack_as_protobuf_c_does(void **state)
{
	unsigned seed = 3122026;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		NatsSidecar__Channel__V1__PublishAck a =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
		Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

		a.id = random_number(&seed);
		/* Any int32, as a peer's newer enum values could be. */
		a.status =
		    (NatsSidecar__Channel__V1__PublishAck__Status)(int32_t)
			random_number(&seed);
		a.stream = random_string(&seed, 200);
		a.sequence = random_number(&seed);
		a.duplicate = rand_r(&seed) % 2;
		a.error = random_string(&seed, 300);
		f.body_case =
		    NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK;
		f.publish_ack = &a;
		assert_packs_as_protobuf_c(&f, round);
		free(a.stream);
		free(a.error);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_kind_round_trips),
		cmocka_unit_test(deliveries_pack_as_protobuf_c_does),
		cmocka_unit_test(publish_acks_pack_as_protobuf_c_does),
		cmocka_unit_test(documented_examples),
		cmocka_unit_test(partial_input_byte_by_byte),
		cmocka_unit_test(too_large_prefix),
		cmocka_unit_test(malformed_bodies),
		cmocka_unit_test(zero_length_frame),
		cmocka_unit_test(unknown_fields_ignored),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
