/*
 * Fuzz target for the proto3 JSON decoder: the first byte picks a
 * message type of the fuzz schemas, the rest is its JSON. What fails
 * leaves no message and says why; what decodes must print (JSON the
 * decoder accepted can always be printed), and stay the same through
 * protobuf and JSON.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/codec.h"
#include "sidecar/pbjson.h"
#include "sidecar/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct schema_limits lim = schema_limits_default;
	const struct schema_type *t;
	ProtobufCMessage *m;
	char *err = NULL, *json;
	size_t len;

	if (size == 0)
		return 0;
	t = fuzz_type(data[0]);
	/* Odd types ignore unknown fields, even ones refuse them. */
	lim.ignore_unknown = (data[0] / schema_count(fuzz_schema())) & 1;
	if (pbjson_decode(t, data + 1, size - 1, &lim, &m, &err) == -1) {
		/* A message that failed is freed, never returned in part. */
		if (m != NULL || err == NULL)
			abort();
		free(err);
		return 0;
	}
	if ((json = pbjson_encode(m, &len, &err)) == NULL)
		abort();
	free(json);
	fuzz_check_stable(t, m);
	schema_message_free(m);
	return 0;
}
