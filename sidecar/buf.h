/*
 * A growable byte buffer with a read offset: bytes are appended at the
 * end and consumed from the front, as socket I/O needs.
 */
#ifndef SIDECAR_BUF_H
#define SIDECAR_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t off; /* first unread byte */
	size_t len; /* end of the written bytes */
	size_t cap;
};

#define BUF_INIT                                                               \
	{                                                                      \
		NULL, 0, 0, 0                                                  \
	}

void buf_free(struct buf *);
/* Bytes written and not yet consumed. */
size_t buf_used(const struct buf *);
const uint8_t *buf_head(const struct buf *);
/* Makes room for |n| more bytes and returns where they go; commit them
 * with buf_commit(). */
uint8_t *buf_reserve(struct buf *, size_t n);
void buf_commit(struct buf *, size_t n);
void buf_append(struct buf *, const void *, size_t);
/* Consumes |n| bytes from the front; n <= buf_used(). */
void buf_consume(struct buf *, size_t n);
void buf_clear(struct buf *);

#endif
