#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

/* The largest body a 4-byte prefix can announce. */
#define FRAME_PREFIX_MAX 0xffffffffu

enum frame_status
frame_decode(
    const uint8_t *data, size_t len, size_t max, Frame **out, size_t *used)
{
	Frame *f;
	size_t n;

	if (len < FRAME_PREFIX_SIZE)
		return FRAME_NEED_MORE;
	n = (size_t)data[0] << 24 | (size_t)data[1] << 16 |
	    (size_t)data[2] << 8 | (size_t)data[3];
	/* Checked before anything is read or allocated for the body. */
	if (n > max)
		return FRAME_TOO_LARGE;
	if (len - FRAME_PREFIX_SIZE < n)
		return FRAME_NEED_MORE;
	*used = FRAME_PREFIX_SIZE + n;

	f = nats_sidecar__channel__v1__frame__unpack(
	    NULL, n, data + FRAME_PREFIX_SIZE);
	if (f == NULL)
		return FRAME_MALFORMED;
	/* An empty Frame, or one whose only member is a kind this version
	 * does not know, carries nothing to act on. */
	if (f->body_case == NATS_SIDECAR__CHANNEL__V1__FRAME__BODY__NOT_SET) {
		frame_free(f);
		return FRAME_MALFORMED;
	}
	*out = f;
	return FRAME_OK;
}

void
frame_free(Frame *f)
{
	if (f != NULL)
		nats_sidecar__channel__v1__frame__free_unpacked(f, NULL);
}

/*
 * Deliveries and PublishAcks, one per message, are written by hand:
 * protobuf-c's packer walks the descriptor twice (size, then bytes) and
 * took a fifth of the sidecar's instructions per message. The bytes are
 * the ones protobuf-c writes (fields in number order, proto3 defaults
 * left out), which tests/sidecar/frame.c and the frame fuzzer check
 * against it. A Frame's body field has the number of its body_case.
 */
#define WIRE_VARINT 0
#define WIRE_LEN 2
#define TAG(field, wire) ((uint8_t)((field) << 3 | (wire)))

static size_t
varint_size(uint64_t v)
{
	size_t n = 1;

	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

/* A varint field: left out when 0. */
static size_t
varint_field_size(uint64_t v)
{
	return v != 0 ? 1 + varint_size(v) : 0;
}

static uint8_t *
put_varint_field(uint8_t *p, unsigned field, uint64_t v)
{
	if (v == 0)
		return p;
	*p++ = TAG(field, WIRE_VARINT);
	return put_varint(p, v);
}

/* A length-delimited field of |len| bytes: left out when empty. */
static size_t
len_field_size(size_t len)
{
	return len != 0 ? 1 + varint_size(len) + len : 0;
}

static uint8_t *
put_len_field(uint8_t *p, unsigned field, const void *data, size_t len)
{
	if (len == 0)
		return p;
	*p++ = TAG(field, WIRE_LEN);
	p = put_varint(p, len);
	memcpy(p, data, len);
	return p + len;
}

static size_t
str_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

/* The strings of a Delivery, by field number (0: unused). */
struct delivery_strings {
	const char *s[16];
	size_t len[16];
};

static const unsigned delivery_string_fields[] = { 2, 3, 6, 7, 10, 11, 12, 14 };
#define NSTRINGS                                                               \
	(sizeof delivery_string_fields / sizeof *delivery_string_fields)

static size_t
header_size(const NatsSidecar__Channel__V1__Header *h)
{
	return len_field_size(str_len(h->name)) +
	    len_field_size(str_len(h->value));
}

/* The body of |d|, with its strings' lengths in |st|. */
static size_t
delivery_size(
    const NatsSidecar__Channel__V1__Delivery *d, struct delivery_strings *st)
{
	size_t n;

	st->s[2] = d->subscription;
	st->s[3] = d->subject;
	st->s[6] = d->content_type;
	st->s[7] = d->schema_version;
	st->s[10] = d->message_id;
	st->s[11] = d->traceparent;
	st->s[12] = d->tracestate;
	st->s[14] = d->stream;
	n = varint_field_size(d->id) + len_field_size(d->payload.len) +
	    varint_field_size(d->attempt) +
	    varint_field_size(d->stream_sequence) +
	    varint_field_size((uint64_t)d->published_at_ns) +
	    varint_field_size(d->processing_timeout_ms);
	for (size_t i = 0; i < NSTRINGS; i++) {
		unsigned k = delivery_string_fields[i];

		st->len[k] = str_len(st->s[k]);
		n += len_field_size(st->len[k]);
	}
	/* A header is a message: written even when empty. */
	for (size_t i = 0; i < d->n_headers; i++) {
		size_t h = header_size(d->headers[i]);

		n += 1 + varint_size(h) + h;
	}
	return n;
}

static uint8_t *
put_string(uint8_t *p, const struct delivery_strings *st, unsigned field)
{
	return put_len_field(p, field, st->s[field], st->len[field]);
}

static uint8_t *
put_delivery(uint8_t *p, const NatsSidecar__Channel__V1__Delivery *d,
    const struct delivery_strings *st)
{
	p = put_varint_field(p, 1, d->id);
	p = put_string(p, st, 2);
	p = put_string(p, st, 3);
	for (size_t i = 0; i < d->n_headers; i++) {
		const NatsSidecar__Channel__V1__Header *h = d->headers[i];

		*p++ = TAG(4, WIRE_LEN);
		p = put_varint(p, header_size(h));
		p = put_len_field(p, 1, h->name, str_len(h->name));
		p = put_len_field(p, 2, h->value, str_len(h->value));
	}
	p = put_len_field(p, 5, d->payload.data, d->payload.len);
	p = put_string(p, st, 6);
	p = put_string(p, st, 7);
	p = put_varint_field(p, 8, d->attempt);
	p = put_varint_field(p, 9, d->stream_sequence);
	p = put_string(p, st, 10);
	p = put_string(p, st, 11);
	p = put_string(p, st, 12);
	p = put_varint_field(p, 13, (uint64_t)d->published_at_ns);
	p = put_string(p, st, 14);
	return put_varint_field(p, 15, d->processing_timeout_ms);
}

/* An enum is an int32 on the wire, sign-extended: a negative one takes
 * ten bytes. */
static size_t
publish_ack_size(const NatsSidecar__Channel__V1__PublishAck *a)
{
	return varint_field_size(a->id) +
	    varint_field_size((uint64_t)(int64_t)(int32_t)a->status) +
	    len_field_size(str_len(a->stream)) +
	    varint_field_size(a->sequence) + varint_field_size(a->duplicate) +
	    len_field_size(str_len(a->error));
}

static uint8_t *
put_publish_ack(uint8_t *p, const NatsSidecar__Channel__V1__PublishAck *a)
{
	p = put_varint_field(p, 1, a->id);
	p = put_varint_field(p, 2, (uint64_t)(int64_t)(int32_t)a->status);
	p = put_len_field(p, 3, a->stream, str_len(a->stream));
	p = put_varint_field(p, 4, a->sequence);
	p = put_varint_field(p, 5, a->duplicate);
	return put_len_field(p, 6, a->error, str_len(a->error));
}

size_t
frame_encode(const Frame *f, size_t max, struct buf *b)
{
	struct delivery_strings st;
	size_t body = 0, n;
	bool by_hand = true;
	uint8_t *p;

	if (f->body_case == NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY &&
	    f->delivery != NULL)
		body = delivery_size(f->delivery, &st);
	else if (f->body_case ==
		NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK &&
	    f->publish_ack != NULL)
		body = publish_ack_size(f->publish_ack);
	else
		by_hand = false;
	n = by_hand ? 1 + varint_size(body) + body
		    : nats_sidecar__channel__v1__frame__get_packed_size(f);
	if (n > max || n > FRAME_PREFIX_MAX)
		return 0;
	p = buf_reserve(b, FRAME_PREFIX_SIZE + n);
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	p += FRAME_PREFIX_SIZE;
	if (!by_hand)
		nats_sidecar__channel__v1__frame__pack(f, p);
	else {
		*p++ = TAG(f->body_case, WIRE_LEN);
		p = put_varint(p, body);
		if (f->body_case ==
		    NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY)
			put_delivery(p, f->delivery, &st);
		else
			put_publish_ack(p, f->publish_ack);
	}
	buf_commit(b, FRAME_PREFIX_SIZE + n);
	return FRAME_PREFIX_SIZE + n;
}
