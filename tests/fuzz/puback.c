/*
 * Fuzz target for the PubAck reader, which reads the server's own form
 * without jansson and anything else with it: whatever it accepts must be
 * what jansson reads from the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sidecar/jsapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsapi_pub_ack pa;
	struct jsapi_error e;
	json_t *root, *seq;
	const char *stream;

	if (jsapi_pub_ack((const char *)data, size, &pa, &e) != 0)
		return 0;
	root = json_loadb((const char *)data, size, 0, NULL);
	if (root == NULL || json_is_object(json_object_get(root, "error")))
		abort();
	stream = json_string_value(json_object_get(root, "stream"));
	seq = json_object_get(root, "seq");
	if (stream == NULL ||
	    strncmp(stream, pa.stream, sizeof pa.stream - 1) != 0 ||
	    strlen(pa.stream) != strnlen(stream, sizeof pa.stream - 1) ||
	    !json_is_integer(seq) ||
	    (uint64_t)json_integer_value(seq) != pa.seq ||
	    json_is_true(json_object_get(root, "duplicate")) != pa.duplicate)
		abort();
	json_decref(root);
	return 0;
}
