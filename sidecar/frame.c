#include <stdlib.h>

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

size_t
frame_encode(const Frame *f, size_t max, struct buf *b)
{
	size_t n = nats_sidecar__channel__v1__frame__get_packed_size(f);
	uint8_t *p;

	if (n > max || n > FRAME_PREFIX_MAX)
		return 0;
	p = buf_reserve(b, FRAME_PREFIX_SIZE + n);
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	nats_sidecar__channel__v1__frame__pack(f, p + FRAME_PREFIX_SIZE);
	buf_commit(b, FRAME_PREFIX_SIZE + n);
	return FRAME_PREFIX_SIZE + n;
}
