/*
 * Fuzz target for what the advisory path reads from the server: a
 * MAX_DELIVERIES advisory (anyone allowed to publish on the advisory
 * subject can forge one), a STREAM.MSG.GET answer and the NATS header
 * block inside it. The first byte picks the parser; whatever is accepted
 * must hold what the callers rely on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/advisory.h"
#include "sidecar/bus.h"
#include "sidecar/jsapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_headers(const struct bus_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (h[i].name[0] == '\0' || strpbrk(h[i].name, ": \r\n") ||
		    strpbrk(h[i].value, "\r\n"))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	struct advisory_event ev;
	struct jsapi_stream_msg m;
	struct jsapi_error e;
	struct bus_header *h;
	char why[256], *text;
	size_t n;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (advisory_parse(body, size - 1, &ev, why, sizeof why) == 0 &&
		    (ev.stream_seq == 0 || ev.stream[0] == '\0' ||
			ev.consumer[0] == '\0' ||
			strpbrk(ev.stream, ".*> ") != NULL ||
			strpbrk(ev.consumer, ".*> ") != NULL))
			abort();
		break;
	case 1:
		if (jsapi_stream_msg(body, size - 1, &m, &e) == 0) {
			if (m.seq == 0 || m.subject == NULL ||
			    m.subject[0] == '\0' || m.time_ns < 0)
				abort();
			check_headers(m.headers, m.nheaders);
			jsapi_stream_msg_free(&m);
		}
		break;
	default:
		if (jsapi_header_block(data + 1, size - 1, &h, &n, &text) ==
		    0) {
			check_headers(h, n);
			free(h);
			free(text);
		}
		break;
	}
	return 0;
}
