/*
 * Fuzz target for the protobuf decoder: the first byte picks a message
 * type of the fuzz schemas, the rest is its payload. Whatever the checks
 * let through, protobuf-c must unpack (the checks stand in front of it),
 * and what decodes must stay the same through protobuf and JSON.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/codec.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct schema_type *t;
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;
	char *err = NULL;

	if (size == 0)
		return 0;
	t = fuzz_type(data[0]);
	d = schema_type_descriptor(t);
	if (pbwire_check(d, data + 1, size - 1, &schema_limits_default, &err) ==
	    -1) {
		free(err);
		return 0;
	}
	m = protobuf_c_message_unpack(d, &schema_allocator, size - 1,
	    size > 1 ? data + 1 : (const uint8_t *)"");
	if (m == NULL)
		abort();
	fuzz_check_stable(t, m);
	schema_message_free(m);
	return 0;
}
