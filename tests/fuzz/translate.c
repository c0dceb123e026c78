/*
 * Fuzz target for schema translation, decode -> translate -> encode. The
 * first byte picks what the rest is: below 0x80, a payload (JSON when
 * bit 6 is set, else protobuf) of the source type of one of the example
 * mappings (the low bits), translated and encoded both ways; from 0x80, a
 * mapping file, compiled against the fuzz schemas and, if it compiles,
 * applied to an empty message. A translated message must encode to
 * protobuf that reads back the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/codec.h"
#include "sidecar/mapping.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema.h"

/* tests/fuzz/mappings.c, generated from examples/mappings/. */
extern const char *const fuzz_mappings[];
extern const size_t fuzz_mappings_count;

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct mapping **
mappings(void)
{
	static struct mapping **v;
	char *err = NULL;

	if (v != NULL)
		return v;
	v = calloc(fuzz_mappings_count, sizeof *v);
	for (size_t i = 0; i < fuzz_mappings_count; i++) {
		v[i] = mapping_parse("example", fuzz_mappings[i],
		    strlen(fuzz_mappings[i]), fuzz_schema(), &err);
		if (v[i] == NULL) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
	}
	return v;
}

/* Translates |in| by |m| and encodes the result. */
static void
translate(const struct mapping *m, const ProtobufCMessage *in)
{
	ProtobufCMessage *out = NULL;
	char *err = NULL, *json;
	size_t len;

	if (mapping_apply(m, in, &out, &err) == -1) {
		if (out != NULL || err == NULL)
			abort();
		free(err);
		return;
	}
	/* JSON may refuse what protobuf carried (a Timestamp out of
	 * range); protobuf may not. */
	if ((json = pbjson_encode(out, &len, &err)) == NULL)
		free(err);
	free(json);
	fuzz_check_stable(mapping_to(m), out);
	schema_message_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	const struct mapping *m;
	ProtobufCMessage *in = NULL;
	char *err = NULL;
	int rc;

	if (size == 0)
		return 0;
	if (data[0] & 0x80) {
		struct mapping *user = mapping_parse("fuzz.yaml",
		    (const char *)data + 1, size - 1, fuzz_schema(), &err);

		if (user == NULL) {
			free(err);
			return 0;
		}
		if (devnull == NULL &&
		    (devnull = fopen("/dev/null", "w")) == NULL)
			abort();
		mapping_report(user, "", devnull);
		in = schema_message_new(mapping_from(user));
		translate(user, in);
		schema_message_free(in);
		mapping_free(user);
		return 0;
	}
	m = mappings()[(data[0] & 0x3f) % fuzz_mappings_count];
	if (data[0] & 0x40)
		rc = pbjson_decode(mapping_from(m), data + 1, size - 1,
		    &schema_limits_default, &in, &err);
	else
		rc = pbwire_decode(mapping_from(m), data + 1, size - 1,
		    &schema_limits_default, &in, &err);
	if (rc == -1) {
		free(err);
		return 0;
	}
	translate(m, in);
	schema_message_free(in);
	return 0;
}
