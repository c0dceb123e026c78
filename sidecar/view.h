/*
 * One decoded view of a delivery's payload: decoded at most once per
 * delivery (into d->view, freed with the delivery), whatever the
 * encoding, and read by filters through field paths such as
 * "message_id", "customer.id" or "items[0].sku" that work the same for
 * protobuf and JSON payloads.
 *
 * A path is a dot-separated list of field names (the .proto name or the
 * JSON name); a repeated field takes an index in brackets. Map fields
 * cannot be read by path. A wrapper (google.protobuf.StringValue, ...)
 * reads as the value it wraps.
 */
#ifndef SIDECAR_VIEW_H
#define SIDECAR_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "schema.h"

struct delivery;
struct view;

enum view_encoding {
	VIEW_JSON,
	VIEW_PROTOBUF,
};

/* How a subscription's deliveries are viewed. */
struct view_spec {
	/* The message type |d| carries, or NULL if it has none (its view
	 * then fails). The version-to-type mapping plugs in here. */
	const struct schema_type *(*type_of)(
	    const struct delivery *d, void *arg);
	void *arg;
	/* For deliveries without a Content-Type header. */
	const char *default_content_type;
	struct schema_limits limits;
};

enum view_kind {
	VIEW_BOOL, /* b */
	VIEW_INT, /* i: int32, int64, sint*, sfixed* */
	VIEW_UINT, /* u: uint32, uint64, fixed* */
	VIEW_DOUBLE, /* d: float, double */
	VIEW_STRING, /* s, NUL-terminated, len bytes */
	VIEW_BYTES, /* bytes, len */
	VIEW_ENUM, /* i: the number; s: its name, or NULL if unknown */
	VIEW_MESSAGE, /* msg */
};

/* A field's value; pointers into the view, valid while it lives. */
struct view_value {
	enum view_kind kind;
	bool b;
	int64_t i;
	uint64_t u;
	double d;
	const char *s;
	const uint8_t *bytes;
	size_t len;
	const ProtobufCMessage *msg;
};

/* Reads "application/json", "application/protobuf" or
 * "application/x-protobuf" (any case, parameters after ';' ignored);
 * returns 0, or -1 for any other content type. */
int view_encoding_parse(const char *content_type, enum view_encoding *);

/*
 * Decodes |len| bytes at |data| as a message of |t| in |enc| within
 * |lim|. Never NULL: a payload that does not decode gives a view whose
 * view_error() says why. The caller frees it with view_free().
 */
struct view *view_new(const struct schema_type *t, enum view_encoding enc,
    const void *data, size_t len, const struct schema_limits *lim);
void view_free(struct view *);

/* A view of |msg|, a decoded message of |t| that came in |enc|; takes
 * ownership of |msg|. For a payload decoded (and translated) elsewhere. */
struct view *view_wrap(
    const struct schema_type *t, enum view_encoding enc, ProtobufCMessage *msg);

/*
 * The view of |d|'s payload, decoded by the first call and kept in
 * d->view (which delivery_free() frees); |spec| says which type and
 * encoding. Never NULL; check view_error().
 */
const struct view *view_get(struct delivery *d, const struct view_spec *spec);

/* A view_spec.type_of that returns |arg|: one type for every delivery. */
const struct schema_type *view_type_fixed(const struct delivery *, void *arg);

/* Why the payload did not decode (naming the field and offset), or
 * NULL if it did. */
const char *view_error(const struct view *);
/* The decoded message, or NULL if view_error() is set. */
const ProtobufCMessage *view_message(const struct view *);
/* The type, NULL if there was none. */
const struct schema_type *view_type(const struct view *);
/* The encoding the payload came in. */
enum view_encoding view_encoding_of(const struct view *);

/*
 * Reads the field at |path|. Returns 1 and fills |v|; 0 if the field is
 * absent (a message on the path is not set, an optional or oneof field
 * or a wrapper is unset, an index is past the end); -1 with an allocated
 * message in |*err| if |path| names no field of the type, or the view
 * failed to decode. Fields without presence read as their value, so an
 * unset string is "".
 */
int view_read(
    const struct view *, const char *path, struct view_value *v, char **err);

/*
 * As view_read(), giving the value as text in a new string |*text| that
 * the caller frees: strings as they are, numbers in decimal, enums by
 * name, bytes in base64, messages as canonical JSON (a Timestamp as RFC
 * 3339). For dedup keys and logs.
 */
int view_text(const struct view *, const char *path, char **text, char **err);

/* Checks that |path| names a field of |t| that can be read (at startup);
 * returns 0, or -1 with an allocated message in |*err|. */
int view_path_check(const struct schema_type *t, const char *path, char **err);

/* The message in |enc| (canonical JSON, or protobuf with fields in number
 * order) in a new buffer |*out| of |*len| bytes that the caller frees.
 * Returns 0, or -1 with |*err| (see pbjson_encode()). */
int view_encode(const struct view *, enum view_encoding enc, void **out,
    size_t *len, char **err);

#endif
