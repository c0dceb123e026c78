/*
 * Fuzz target for the frame decoder: the input is read as a socket reader
 * would, frame after frame, skipping malformed frames and stopping where
 * the reader would wait or give up. Every frame that decodes must encode
 * and decode again to the same bytes, unless it carries fields unknown to
 * this schema: protobuf-c keeps those as they came, including some it
 * would refuse to decode (field number 0 behind a padded tag varint).
 * A Delivery or a PublishAck, which frame_encode() writes by hand, must
 * come out as the bytes protobuf-c writes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/buf.h"
#include "sidecar/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Whether |m|, or a message inside it, kept fields this schema lacks. */
static int
has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	if (m->n_unknown_fields > 0)
		return 1;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];

		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* A oneof member's pointer is valid only when it is set. */
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
		    *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n =
			    *(const size_t *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *v =
			    *(ProtobufCMessage *const *const *)(base +
				fd->offset);

			for (size_t j = 0; j < n; j++) {
				if (has_unknown(v[j]))
					return 1;
			}
		} else {
			const ProtobufCMessage *sub = *(
			    const ProtobufCMessage *const *)(base + fd->offset);

			if (sub != NULL && has_unknown(sub))
				return 1;
		}
	}
	return 0;
}

/* Re-encoding a decoded frame is stable: what a peer is sent decodes to
 * what was meant. */
static void
check_stable(const Frame *f)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	Frame *again = NULL;
	size_t n, used = 0;

	n = frame_encode(f, SIZE_MAX, &a);
	if (n == 0 ||
	    frame_decode(buf_head(&a), n, SIZE_MAX, &again, &used) !=
		FRAME_OK ||
	    used != n || again->body_case != f->body_case)
		abort();
	if (frame_encode(again, SIZE_MAX, &b) != n ||
	    memcmp(buf_head(&a), buf_head(&b), n) != 0)
		abort();
	/* Deliveries and PublishAcks are written by hand: the bytes must be
	 * protobuf-c's. */
	if (f->body_case == NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY ||
	    f->body_case ==
		NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK) {
		size_t want =
		    nats_sidecar__channel__v1__frame__get_packed_size(f);
		uint8_t *packed = malloc(want > 0 ? want : 1);

		if (packed == NULL)
			abort();
		nats_sidecar__channel__v1__frame__pack(f, packed);
		if (n != FRAME_PREFIX_SIZE + want ||
		    memcmp(buf_head(&a) + FRAME_PREFIX_SIZE, packed, want) != 0)
			abort();
		free(packed);
	}
	frame_free(again);
	buf_free(&a);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, used;
	Frame *f;

	while (off < size) {
		switch (frame_decode(
		    data + off, size - off, FRAME_DEFAULT_MAX, &f, &used)) {
		case FRAME_OK:
			if (!has_unknown(&f->base))
				check_stable(f);
			frame_free(f);
			off += used;
			break;
		case FRAME_MALFORMED:
			if (used < FRAME_PREFIX_SIZE || used > size - off)
				abort();
			off += used;
			break;
		case FRAME_NEED_MORE:
		case FRAME_TOO_LARGE:
			return 0;
		}
	}
	return 0;
}
