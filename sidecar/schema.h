/*
 * Users' event schemas, loaded at startup from FileDescriptorSet files
 * (protoc --include_imports --descriptor_set_out=FILE) into protobuf-c
 * message descriptors built at run time, so that protobuf-c's own
 * pack and unpack work on message types the sidecar was not compiled
 * with. pbwire.h and pbjson.h encode and decode them; view.h gives
 * filters one decoded view per delivery. docs/schemas.md lists what is
 * supported.
 *
 * A schema is immutable once loaded; the types it holds live as long as
 * it does.
 */
#ifndef SIDECAR_SCHEMA_H
#define SIDECAR_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct schema;
struct schema_type;

/* Bounds on decoding one payload, whatever it holds. */
struct schema_limits {
	size_t max_size; /* payload bytes */
	unsigned max_depth; /* nesting of messages (and JSON values) */
	size_t max_memory; /* bytes a decoded protobuf payload may take */
	bool ignore_unknown; /* JSON: skip unknown fields and enum names */
};

#define SCHEMA_MAX_SIZE_DEFAULT (8u << 20)
#define SCHEMA_MAX_DEPTH_DEFAULT 64u
#define SCHEMA_MAX_MEMORY_DEFAULT (64u << 20)

/* The defaults: 8 MiB payloads, depth 64, 64 MiB decoded, strict JSON. */
extern const struct schema_limits schema_limits_default;

/* A FileDescriptorSet in memory; |name| is used in errors. */
struct schema_source {
	const char *name;
	const void *data;
	size_t len;
};

/*
 * Loads the descriptor sets in |src| (types in one may refer to types in
 * another; a file given by several sets must be the same in each) and
 * builds every message type in them. Returns the schema, or NULL with an
 * allocated message in |*err| (the caller frees it) naming the set and
 * the file, type or field at fault: a set that does not parse, an
 * unsupported feature (proto2 or editions syntax, extensions, groups,
 * google.protobuf.Any or FieldMask), a referenced type that is missing,
 * or a set over 64 MiB.
 */
struct schema *schema_load(
    const struct schema_source *src, size_t n, char **err);

/* As schema_load(), reading the sets from the files in |paths|; errors
 * name the file (unreadable or too large files included). */
struct schema *schema_load_files(
    const char *const *paths, size_t n, char **err);

void schema_free(struct schema *);

/* The message type called |full_name| ("orders.v2.OrderCreated"; a
 * leading dot is accepted), or NULL. */
const struct schema_type *schema_lookup(
    const struct schema *, const char *full_name);

/* Message types in full-name order: i < schema_count(). */
size_t schema_count(const struct schema *);
const struct schema_type *schema_type_at(const struct schema *, size_t i);

/* The full name, without a leading dot. */
const char *schema_type_name(const struct schema_type *);
/* protobuf-c's descriptor of the type: message_init is NULL, so make
 * messages with schema_message_new(), not protobuf_c_message_init(). */
const ProtobufCMessageDescriptor *schema_type_descriptor(
    const struct schema_type *);

/* A message of |t| with every field at its default; never NULL. */
ProtobufCMessage *schema_message_new(const struct schema_type *t);
/* Frees a message from schema_message_new(), pbwire_decode() or
 * pbjson_decode(), with everything in it; NULL is a no-op. */
void schema_message_free(ProtobufCMessage *);

/* protobuf-c's allocator for such messages: malloc that never fails,
 * and free. */
extern ProtobufCAllocator schema_allocator;

#endif
