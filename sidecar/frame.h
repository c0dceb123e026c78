/*
 * The app channel's framing: a 4-byte big-endian length, then that many
 * bytes of one nats_sidecar.channel.v1.Frame (proto/channel.proto). Pure
 * code with no I/O, shared by the daemon and the client library, and
 * fuzzed (tests/fuzz/frame.c).
 */
#ifndef SIDECAR_FRAME_H
#define SIDECAR_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "channel.pb-c.h"

struct buf;

#define FRAME_PREFIX_SIZE 4
#define FRAME_DEFAULT_MAX (1024 * 1024)
#define FRAME_PROTOCOL_VERSION 1

typedef NatsSidecar__Channel__V1__Frame Frame;

enum frame_status {
	FRAME_OK, /* a frame was decoded */
	FRAME_NEED_MORE, /* the buffer holds no whole frame yet */
	FRAME_TOO_LARGE, /* the length prefix exceeds the limit */
	FRAME_MALFORMED, /* the body is not a valid Frame */
};

/*
 * Decodes the first frame of |len| bytes at |data|, refusing bodies over
 * |max| bytes before reading them. On FRAME_OK stores the frame in |*out|
 * (free with frame_free()) and the bytes it took in |*used|; on
 * FRAME_MALFORMED, |*used| still covers the bad frame so a caller may skip
 * it. Never reads past |len|.
 */
enum frame_status frame_decode(
    const uint8_t *data, size_t len, size_t max, Frame **out, size_t *used);
void frame_free(Frame *);

/* Appends |f| with its length prefix to |b|; returns the bytes added, or
 * 0 if the frame would exceed |max|. */
size_t frame_encode(const Frame *f, size_t max, struct buf *b);

#endif
