/*
 * Fuzz target for the HTTP request reader: the input is what a client
 * sends, handed to httpd_handle() the way the server hands it over (what
 * has arrived so far, at most HTTPD_HEAD_MAX bytes): all at once, a byte at
 * a time, and in chunks whose sizes follow from the input. Every way must
 * give the same status and the same response; the response must be
 * well-formed and bounded; and, under ASan, the reader must not touch a
 * byte that has not arrived yet.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "sidecar/buf.h"
#include "sidecar/httpd.h"
#include "sidecar/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char metrics_text[] = "# HELP up 1 when up.\n"
				   "# TYPE up gauge\n"
				   "up 1\n";
static const char why_text[] = "nats: disconnected";

static void
on_metrics(void *arg, struct buf *out)
{
	buf_append(out, metrics_text, sizeof metrics_text - 1);
}

static int
on_startup(void *arg, struct buf *why)
{
	return 1;
}

static int
on_ready(void *arg, struct buf *why)
{
	buf_append(why, why_text, sizeof why_text - 1);
	return 0;
}

static const struct httpd_handlers handlers = { on_metrics, on_startup,
	on_ready, NULL };

/* Feeds |in| (|len| bytes) in pieces of the sizes |next| gives; the bytes
 * that have not arrived yet stay poisoned. */
static int
feed(const uint8_t *in, size_t len, size_t (*next)(uint32_t *), uint32_t seed,
    struct buf *out)
{
	struct httpd_reader r = { 0 };
	size_t have = 0, before;
	int status = 0;

	ASAN_POISON_MEMORY_REGION(in, len);
	while (status == 0 && have < len) {
		size_t n = next(&seed);

		before = have;
		have = n < len - have ? have + n : len;
		ASAN_UNPOISON_MEMORY_REGION(in + before, have - before);
		status = httpd_handle(&handlers, &r, in, have, out);
		if (r.scanned > have || r.line > r.scanned)
			abort();
	}
	ASAN_UNPOISON_MEMORY_REGION(in, len);
	/* Short of the limit, only a complete head is answered. */
	if (status == 0 && len >= HTTPD_HEAD_MAX)
		abort();
	return status;
}

static size_t
all(uint32_t *seed)
{
	return SIZE_MAX;
}

static size_t
one(uint32_t *seed)
{
	return 1;
}

/* Mostly small pieces, sometimes large ones (xorshift32). */
static size_t
random_piece(uint32_t *seed)
{
	uint32_t x = *seed;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*seed = x;
	return (x & 7) == 0 ? 1 + (x >> 8) % 4096 : 1 + (x >> 8) % 16;
}

/* A response is a status line, header fields with a Content-Length, an
 * empty line and a body of that length (none for HEAD). */
static void
check_response(const uint8_t *in, size_t inlen, int status, const struct buf *b)
{
	const char *p = (const char *)buf_head(b), *end, *cl;
	size_t len = buf_used(b), head, body, want;
	char *text;

	if (status != 200 && status != 400 && status != 404 && status != 405 &&
	    status != 413 && status != 414 && status != 431 && status != 503 &&
	    status != 505)
		abort();
	/* The handlers' texts and a few hundred bytes of head at most. */
	if (len < 12 || len > 512 + sizeof metrics_text)
		abort();
	text = xmalloc(len + 1);
	memcpy(text, p, len);
	text[len] = '\0';
	if (strncmp(text, "HTTP/1.1 ", 9) != 0 || atoi(text + 9) != status ||
	    (end = strstr(text, "\r\n\r\n")) == NULL ||
	    (cl = strstr(text, "\r\nContent-Length: ")) == NULL || cl > end)
		abort();
	head = (size_t)(end + 4 - text);
	body = len - head;
	want = strtoul(cl + 18, NULL, 10);
	/* No body only where the request said HEAD. */
	if (body != want &&
	    (body != 0 || inlen < 5 || memcmp(in, "HEAD ", 5) != 0))
		abort();
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = size < HTTPD_HEAD_MAX ? size : HTTPD_HEAD_MAX;
	struct buf whole = BUF_INIT, bytes = BUF_INIT, pieces = BUF_INIT;
	/* The server never holds more than HTTPD_HEAD_MAX bytes; an exact
	 * copy lets ASan see a read past them. */
	uint8_t *in = len > 0 ? xmemdup(data, len) : xmalloc(1);
	uint32_t seed = 2166136261u;
	int status;

	for (size_t i = 0; i < len; i++)
		seed = (seed ^ in[i]) * 16777619u;
	status = feed(in, len, all, 0, &whole);
	if (feed(in, len, one, 0, &bytes) != status ||
	    feed(in, len, random_piece, seed | 1, &pieces) != status)
		abort();
	if (buf_used(&bytes) != buf_used(&whole) ||
	    buf_used(&pieces) != buf_used(&whole) ||
	    (buf_used(&whole) > 0 &&
		(memcmp(buf_head(&bytes), buf_head(&whole), buf_used(&whole)) !=
			0 ||
		    memcmp(buf_head(&pieces), buf_head(&whole),
			buf_used(&whole)) != 0)))
		abort();
	if (status != 0)
		check_response(in, len, status, &whole);
	else if (buf_used(&whole) != 0)
		abort();
	buf_free(&whole);
	buf_free(&bytes);
	buf_free(&pieces);
	free(in);
	return 0;
}
