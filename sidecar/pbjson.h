/*
 * proto3 JSON for message types loaded by schema.h. The parser (yajl's,
 * whose events fill the message directly, with no JSON tree) accepts
 * what the proto3 JSON mapping allows (lowerCamelCase or original field
 * names, 64-bit integers as strings or numbers, enums by name or number,
 * bytes in standard or URL-safe base64, RFC 3339 timestamps, ...); the
 * printer (over jansson) writes one canonical form (fields in number
 * order under their JSON names, default values left out, map entries in
 * key order, doubles in the fewest digits that read back exactly), so
 * equal messages print to equal bytes. docs/schemas.md has the details.
 */
#ifndef SIDECAR_PBJSON_H
#define SIDECAR_PBJSON_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

struct schema_limits;
struct schema_type;

/*
 * Parses |text| (|len| bytes, UTF-8) as the JSON of a message of |t|
 * into |*out|, which the caller frees with schema_message_free().
 * Returns 0, or -1 with |*out| NULL and an allocated message in |*err|
 * (the caller frees it): JSON syntax errors, which win over any other
 * error, give the byte offset, line and column ("...: invalid JSON at
 * offset 17 (line 1, column 18): ..."); errors of content name the field
 * path ("orders.v2.OrderCreated: field items[1].quantity: -1 is out of
 * range for uint32"). Unknown fields and enum names fail unless
 * lim->ignore_unknown; more than lim->max_size bytes, nesting deeper
 * than lim->max_depth (skipped values included) or more than
 * lim->max_memory bytes of message and of the keys kept to find
 * duplicates fail. Past the depth limit, or past the memory limit with
 * a key, the text is not read, so a syntax error after it goes unseen.
 * Thread-safe.
 */
int pbjson_decode(const struct schema_type *t, const void *text, size_t len,
    const struct schema_limits *lim, ProtobufCMessage **out, char **err);

/*
 * The canonical JSON of |m|, a message of a schema type, as a new
 * NUL-terminated string of |*len| bytes that the caller frees. NULL
 * with |*err| set if |m| holds what JSON cannot carry: a Timestamp or
 * Duration out of range, a string that is not UTF-8, a
 * google.protobuf.Value without a kind or with a non-finite number.
 */
char *pbjson_encode(const ProtobufCMessage *m, size_t *len, char **err);

/*
 * The JSON of one value of field |i| of |t| at |member| (the field in
 * its message, or one element of a repeated field), which the caller
 * json_decref()s; NULL with |*err| as for pbjson_encode().
 */
json_t *pbjson_value(
    const struct schema_type *t, unsigned i, const void *member, char **err);

/*
 * Parses an RFC 3339 date-time ("1972-01-01T10:00:20.021Z", or with an
 * offset such as "+01:00"; at most 9 fraction digits; years 1 to 9999)
 * into seconds and nanoseconds since the epoch. Returns 0, or -1 if |s|
 * is not one.
 */
int pbjson_parse_timestamp(const char *s, int64_t *sec, int32_t *nanos);

/* |v| as canonical JSON text, as pbjson_encode() prints it; the caller
 * frees the result. */
char *pbjson_dump(const json_t *v, size_t *len);

#endif
