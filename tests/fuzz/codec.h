/*
 * What the codec fuzz targets share: the schemas they work with, built
 * into them (the reference events and tests/harness/shop.proto as one
 * descriptor set, which the build turns into tests/fuzz/schemas.c), and
 * the check that a message survives JSON and protobuf unchanged.
 */
#ifndef TESTS_FUZZ_CODEC_H
#define TESTS_FUZZ_CODEC_H

#include <stddef.h>

struct schema;
struct schema_type;

extern const unsigned char fuzz_schemas[];
extern const size_t fuzz_schemas_len;

/* The schema loaded from fuzz_schemas, once. */
const struct schema *fuzz_schema(void);
/* The message type that an input's first byte |b| picks. */
const struct schema_type *fuzz_type(unsigned char b);

/*
 * Aborts unless |m| (a message of |t|) encodes to protobuf that decodes
 * and encodes to the same bytes, and, if it prints as JSON, to JSON that
 * parses and prints the same.
 */
void fuzz_check_stable(const struct schema_type *t, const void *m);

#endif
