/*
 * Fuzz target for the descriptor loader: the input is a descriptor set.
 * Whatever it loads must make message types that protobuf-c and the
 * codec use safely: each of the first types decodes the input itself as
 * a payload, prints a message of its own defaults, and what decodes stays
 * the same through protobuf and JSON.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/codec.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct schema_source src = { "fuzz", data, size };
	struct schema *s;
	char *err = NULL, *json;
	size_t len;

	if ((s = schema_load(&src, 1, &err)) == NULL) {
		free(err);
		return 0;
	}
	for (size_t i = 0; i < schema_count(s) && i < 8; i++) {
		const struct schema_type *t = schema_type_at(s, i);
		ProtobufCMessage *m = schema_message_new(t);

		if ((json = pbjson_encode(m, &len, &err)) != NULL)
			free(json);
		else
			free(err);
		schema_message_free(m);
		if (pbwire_decode(t, data, size, &schema_limits_default, &m,
			&err) == -1) {
			free(err);
			continue;
		}
		fuzz_check_stable(t, m);
		schema_message_free(m);
	}
	schema_free(s);
	return 0;
}
