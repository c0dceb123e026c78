#include <stdlib.h>
#include <string.h>

#include "fuzz/codec.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"

const struct schema *
fuzz_schema(void)
{
	static struct schema *s;
	struct schema_source src = { "schemas.desc", fuzz_schemas,
		fuzz_schemas_len };
	char *err = NULL;

	if (s == NULL && (s = schema_load(&src, 1, &err)) == NULL)
		abort();
	return s;
}

const struct schema_type *
fuzz_type(unsigned char b)
{
	const struct schema *s = fuzz_schema();

	return schema_type_at(s, b % schema_count(s));
}

/* Limits for decoding what the codec wrote itself: JSON nests less than
 * the protobuf of the same message (a Struct level is two messages in
 * JSON, three in protobuf), so depth gets room. */
static const struct schema_limits roomy = { 1u << 30, 1024, 1u << 30, false };

void
fuzz_check_stable(const struct schema_type *t, const void *msg)
{
	const ProtobufCMessage *m = msg;
	ProtobufCMessage *again;
	uint8_t *a, *b;
	char *j1, *j2, *err = NULL;
	size_t alen, blen, j1len, j2len;

	a = pbwire_encode(m, &alen);
	if (pbwire_decode(t, a, alen, &roomy, &again, &err) == -1)
		abort();
	b = pbwire_encode(again, &blen);
	if (blen != alen || memcmp(a, b, alen) != 0)
		abort();
	schema_message_free(again);
	free(a);
	free(b);
	if ((j1 = pbjson_encode(m, &j1len, &err)) == NULL) {
		free(err);
		return;
	}
	if (pbjson_decode(t, j1, j1len, &roomy, &again, &err) == -1)
		abort();
	if ((j2 = pbjson_encode(again, &j2len, &err)) == NULL ||
	    j2len != j1len || memcmp(j1, j2, j1len) != 0)
		abort();
	schema_message_free(again);
	free(j1);
	free(j2);
}
