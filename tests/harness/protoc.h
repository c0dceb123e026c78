/*
 * Schemas for the codec tests: the reference events as the build wrote
 * them (proto/events.desc), and schemas that protoc builds while a test
 * runs, from .proto text that the sidecar was not compiled with.
 * Failures fail the calling cmocka test.
 */
#ifndef TESTS_HARNESS_PROTOC_H
#define TESTS_HARNESS_PROTOC_H

#include <stddef.h>

struct schema;

/* The reference event schemas, loaded from $top_builddir. */
struct schema *protoc_events(void);

/*
 * Runs protoc on |proto|, saved as |name| (e.g. "shop.proto") in a
 * scratch directory; the well-known types can be imported. Returns the
 * FileDescriptorSet (with its imports if |imports|), |*len| bytes that
 * the caller frees.
 */
void *protoc_compile(
    const char *name, const char *proto, int imports, size_t *len);

/* protoc_compile() with imports, loaded by schema_load(). */
struct schema *protoc_schema(const char *name, const char *proto);

/*
 * tests/harness/shop.proto, compiled by protoc_schema(): package
 * shop.test, whose Order has a field of every scalar type, nested and
 * recursive messages, repeated fields packed and not, maps, a oneof,
 * proto3 optional fields, enums (one nested, one with a negative value),
 * a json_name option and the well-known types.
 */
struct schema *protoc_shop(void);

#endif
