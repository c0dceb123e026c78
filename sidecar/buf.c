#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

const uint8_t *
buf_head(const struct buf *b)
{
	return b->data + b->off;
}

uint8_t *
buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->data + b->len;
	/* Slide the unread bytes down before growing. */
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return b->data + b->len;
	}
	size_t cap = b->cap == 0 ? 4096 : b->cap;
	while (cap - b->len < n)
		cap *= 2;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	memcpy(buf_reserve(b, n), p, n);
	buf_commit(b, n);
}

void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void
buf_clear(struct buf *b)
{
	b->off = b->len = 0;
}
