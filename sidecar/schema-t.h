/*
 * What the codec modules (schema, pbwire, pbjson, view) share about a
 * loaded message type beyond protobuf-c's own descriptor: JSON names,
 * presence, maps and the well-known types that JSON maps specially.
 * Everything here is built by schema.c and read-only afterwards.
 */
#ifndef SIDECAR_SCHEMA_T_H
#define SIDECAR_SCHEMA_T_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Well-known types whose proto3 JSON form is not a plain object. */
enum schema_wkt {
	SCHEMA_WKT_NONE,
	SCHEMA_WKT_TIMESTAMP, /* RFC 3339 string */
	SCHEMA_WKT_DURATION, /* "1.5s" */
	SCHEMA_WKT_WRAPPER, /* the JSON of its field `value` */
	SCHEMA_WKT_STRUCT, /* any JSON object */
	SCHEMA_WKT_VALUE, /* any JSON value */
	SCHEMA_WKT_LIST_VALUE, /* any JSON array */
};

struct schema_type;

/* One field, at the same index as its ProtobufCFieldDescriptor. */
struct schema_field {
	const char *json_name; /* lowerCamelCase, or the json_name option */
	const struct schema_type *message; /* MESSAGE fields */
	bool map; /* repeated map entries: a JSON object */
	bool null_value; /* enum google.protobuf.NullValue: JSON null */
	int oneof; /* index of its (real) oneof, or -1 */
};

struct schema_type {
	ProtobufCMessageDescriptor pb; /* first: fields point at it */
	struct schema_field *fields; /* parallel to pb.fields */
	unsigned *by_json_name; /* field indexes sorted by json_name */
	char **oneofs; /* names of the real oneofs */
	unsigned n_oneofs;
	enum schema_wkt wkt;
	bool map_entry; /* fields: key (1) and value (2) */
};

/* The index of the field of |t| called |name| (|len| bytes), by JSON
 * name or by field name; -1 if there is none. */
int schema_field_find(
    const struct schema_type *t, const char *name, size_t len);

/* Bytes one element of a repeated field of |type| takes in protobuf-c's
 * arrays. */
size_t schema_element_size(ProtobufCType type);

/* Whether field |f| of |m| is present, as protobuf-c decides when it
 * packs |m|: by its quantifier where it has one, else by holding a value
 * other than the default. */
bool schema_field_present(
    const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* The type behind a descriptor that schema.c built. */
static inline const struct schema_type *
schema_type_of(const ProtobufCMessageDescriptor *d)
{
	return (const struct schema_type *)d;
}

#endif
