/*
 * Declared mappings between two versions of a message type: a YAML file
 * says, field by field, what fills each field of the target type (copy,
 * rename, move into or out of a nested message, a default, a named
 * converter) and which source fields are dropped on purpose, and the
 * same for the nested types it contains (types:, applied to every
 * element, map value or field of those types); fields it does not
 * mention are copied when name and type match. A mapping is
 * compiled once against the loaded schemas (every path resolved to field
 * descriptors) and then applied to decoded messages with no name
 * lookups. docs/translation.md describes the format.
 */
#ifndef SIDECAR_MAPPING_H
#define SIDECAR_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

struct mapping;
struct schema;
struct schema_type;

/* What a converter reads and writes. */
enum mapping_kind {
	MAPPING_INT, /* i: any signed integer field */
	MAPPING_UINT, /* u: any unsigned integer field */
	MAPPING_DOUBLE, /* d: double, float */
	MAPPING_BOOL, /* b */
	MAPPING_STRING, /* s */
	MAPPING_ENUM, /* i: the number; s: its name (NULL if unknown) */
	MAPPING_TIMESTAMP, /* i: seconds, nanos: google.protobuf.Timestamp */
};

/* One value; |s| is valid until the next value is read or written. */
struct mapping_value {
	enum mapping_kind kind;
	int64_t i;
	uint64_t u;
	double d;
	bool b;
	int32_t nanos;
	const char *s;
};

/* What a converter's compile hook is given. */
struct mapping_args {
	const ProtobufCFieldDescriptor *from, *to; /* the two leaf fields */
	/* The rule's other keys and their values, |n| of each. */
	const char *const *keys;
	const char *const *values;
	size_t n;
};

/* A named converter ("major_to_minor", ...), in a const table. */
struct mapping_converter {
	const char *name;
	enum mapping_kind in, out;
	/*
	 * Checks the rule's parameters (every key must be known) and
	 * builds the state apply() gets; may be NULL (no parameters).
	 * Returns 0, or -1 with an allocated message in |*err|.
	 */
	int (*compile)(const struct mapping_args *, void **state, char **err);
	/* Converts |in| into |out| (kind |out|); returns 0, or -1 with an
	 * allocated message in |*err| saying what is wrong with the value
	 * (the caller adds the field). |out->s| may point into |in| or
	 * into static data. */
	int (*apply)(const void *state, const struct mapping_value *in,
	    struct mapping_value *out, char **err);
	void (*free)(void *state);
};

/*
 * Adds |c| to the converters mappings may name (|c| must outlive every
 * mapping). Call before loading mappings, from the main thread. Returns
 * 0, or -1 if the name is taken or the table (32 converters) is full.
 */
int mapping_converter_register(const struct mapping_converter *c);

/* The converter called |name|, built in or registered, or NULL. */
const struct mapping_converter *mapping_converter_find(const char *name);

/*
 * Compiles the mapping in |text| (|len| bytes of YAML; |name| is used in
 * errors) against |schemas|. Returns it, or NULL with an allocated
 * message in |*err| naming the file, line and field: YAML that does not
 * parse, an unknown type or field, a path through a repeated field,
 * types that do not fit, an unknown converter or parameter, a target
 * field filled twice, a default that does not parse, a nested type pair
 * declared twice or used by no field.
 */
struct mapping *mapping_parse(const char *name, const char *text, size_t len,
    const struct schema *schemas, char **err);

/* As mapping_parse(), reading |path| (at most 1 MiB). */
struct mapping *mapping_load(
    const char *path, const struct schema *schemas, char **err);

void mapping_free(struct mapping *);

/* The source and target types. */
const struct schema_type *mapping_from(const struct mapping *);
const struct schema_type *mapping_to(const struct mapping *);
/* The name it was loaded under. */
const char *mapping_name(const struct mapping *);

/*
 * Translates |src| (a message of mapping_from()) into a new message of
 * mapping_to() in |*out|, which the caller frees with
 * schema_message_free(). Returns 0, or -1 with an allocated message in
 * |*err| naming the mapping and the field ("orders.v1.OrderCreated ->
 * orders.v2.OrderCreated: field total_amount: NaN is not a finite
 * number"); nothing is left half-translated.
 */
int mapping_apply(const struct mapping *, const ProtobufCMessage *src,
    ProtobufCMessage **out, char **err);

/*
 * Writes one line per target field that nothing fills and per source
 * field that is lost without an explicit drop, each starting with
 * |prefix|; returns how many lines it wrote.
 */
size_t mapping_report(const struct mapping *, const char *prefix, FILE *out);

#endif
