#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery.h"
#include "pbjson.h"
#include "pbwire.h"
#include "schema-t.h"
#include "view.h"
#include "xmalloc.h"

struct view {
	const struct schema_type *type;
	enum view_encoding enc;
	ProtobufCMessage *msg;
	char *error;
};

/* Where a path ends: field |index| of |owner|, stored at |member| (NULL
 * when only the path was checked). */
struct spot {
	const struct schema_type *owner;
	unsigned index;
	const void *member;
};

int
view_encoding_parse(const char *ct, enum view_encoding *enc)
{
	static const struct {
		const char *name;
		enum view_encoding enc;
	} types[] = { { "application/json", VIEW_JSON },
		{ "application/protobuf", VIEW_PROTOBUF },
		{ "application/x-protobuf", VIEW_PROTOBUF } };
	size_t n;

	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		if (strlen(types[i].name) == n &&
		    strncasecmp(ct, types[i].name, n) == 0) {
			*enc = types[i].enc;
			return 0;
		}
	}
	return -1;
}

struct view *
view_new(const struct schema_type *t, enum view_encoding enc, const void *data,
    size_t len, const struct schema_limits *lim)
{
	struct view *v = xcalloc(1, sizeof *v);

	v->type = t;
	v->enc = enc;
	if (enc == VIEW_JSON)
		pbjson_decode(t, data, len, lim, &v->msg, &v->error);
	else
		pbwire_decode(t, data, len, lim, &v->msg, &v->error);
	return v;
}

struct view *
view_wrap(
    const struct schema_type *t, enum view_encoding enc, ProtobufCMessage *msg)
{
	struct view *v = xcalloc(1, sizeof *v);

	v->type = t;
	v->enc = enc;
	v->msg = msg;
	return v;
}

void
view_free(struct view *v)
{
	if (v == NULL)
		return;
	schema_message_free(v->msg);
	free(v->error);
	free(v);
}

/* A view that failed before decoding. */
static struct view *
view_failed(const struct schema_type *t, char *error)
{
	struct view *v = xcalloc(1, sizeof *v);

	v->type = t;
	v->error = error;
	return v;
}

const struct view *
view_get(struct delivery *d, const struct view_spec *spec)
{
	const struct schema_type *t;
	enum view_encoding enc;
	const char *ct;
	const void *data;
	size_t len;

	if (d->view != NULL)
		return d->view;
	if ((ct = delivery_header(d, "Content-Type")) == NULL)
		ct = spec->default_content_type;
	t = spec->type_of(d, spec->arg);
	if (t == NULL)
		d->view = view_failed(NULL,
		    xasprintf(
			"no message type for subject %s", delivery_subject(d)));
	else if (ct == NULL || view_encoding_parse(ct, &enc) == -1)
		d->view = view_failed(t,
		    xasprintf("%s: unsupported content type \"%.80s\"",
			schema_type_name(t), ct != NULL ? ct : ""));
	else {
		data = delivery_payload(d, &len);
		d->view = view_new(t, enc, data, len, &spec->limits);
	}
	return d->view;
}

const struct schema_type *
view_type_fixed(const struct delivery *d, void *arg)
{
	return arg;
}

const char *
view_error(const struct view *v)
{
	return v->error;
}

const ProtobufCMessage *
view_message(const struct view *v)
{
	return v->msg;
}

const struct schema_type *
view_type(const struct view *v)
{
	return v->type;
}

enum view_encoding
view_encoding_of(const struct view *v)
{
	return v->enc;
}

/* Whether optional, oneof or message field |f| of |m| is set. */
static int
is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) ==
		    f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE ||
	    (f->type == PROTOBUF_C_TYPE_STRING &&
		f->label == PROTOBUF_C_LABEL_OPTIONAL))
		return *(const void *const *)(base + f->offset) != NULL;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
		return *(
		    const protobuf_c_boolean *)(base + f->quantifier_offset);
	return 1;
}

/*
 * Follows |path| from type |t| (and message |m|, or only the types if it
 * is NULL) to the field it names. Returns 1 with |*at| filled, 0 if the
 * field is absent in |m| (or |m| is NULL), -1 with |*err|.
 */
static int
walk(const struct schema_type *t, const ProtobufCMessage *m, const char *path,
    struct spot *at, char **err)
{
	const char *p = path;
	int absent = 0;

	for (;;) {
		size_t n = strcspn(p, ".["), index = 0;
		int i, indexed = 0;
		const ProtobufCFieldDescriptor *f;
		const char *member;

		if ((i = schema_field_find(t, p, n)) == -1) {
			*err = xasprintf("path %s: %s has no field %.*s", path,
			    t->pb.name, (int)n, p);
			return -1;
		}
		f = &t->pb.fields[i];
		p += n;
		if (*p == '[') {
			char *end;

			if (p[1] < '0' || p[1] > '9' ||
			    (index = strtoul(p + 1, &end, 10), *end != ']')) {
				*err = xasprintf(
				    "path %s: expected an index in []", path);
				return -1;
			}
			indexed = 1;
			p = end + 1;
		}
		if (*p != '\0' && *p != '.') {
			*err = xasprintf("path %s: expected . or the end after "
					 "%s",
			    path, f->name);
			return -1;
		}
		if (t->fields[i].map ||
		    (f->label == PROTOBUF_C_LABEL_REPEATED) != indexed) {
			*err = xasprintf("path %s: field %s %s", path, f->name,
			    t->fields[i].map ? "is a map, which paths cannot "
					       "read"
				: indexed    ? "is not repeated"
					     : "is repeated: give an index");
			return -1;
		}
		/* Once a field is absent, the rest of the path is only
		 * checked against the types. */
		member = NULL;
		if (m != NULL && indexed &&
		    index < *(const size_t *)((const char *)m +
				f->quantifier_offset))
			member = *(const char *const *)((const char *)m +
				     f->offset) +
			    index * schema_element_size(f->type);
		else if (m != NULL && !indexed && is_set(m, f))
			member = (const char *)m + f->offset;
		absent |= member == NULL;
		if (*p == '\0') {
			at->owner = t;
			at->index = (unsigned)i;
			at->member = member;
			return absent ? 0 : 1;
		}
		if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
			*err = xasprintf("path %s: field %s is not a message",
			    path, f->name);
			return -1;
		}
		t = t->fields[i].message;
		m = member != NULL ? *(const ProtobufCMessage *const *)member
				   : NULL;
		p++;
	}
}

/* Steps into a wrapper at |at| to the value it holds. */
static int
unwrap(struct spot *at)
{
	const struct schema_field *sf = &at->owner->fields[at->index];
	const ProtobufCMessage *w;

	if (sf->message == NULL || sf->message->wkt != SCHEMA_WKT_WRAPPER)
		return 1;
	w = at->member != NULL ? *(const ProtobufCMessage *const *)at->member
			       : NULL;
	at->owner = sf->message;
	at->index = 0;
	if (w == NULL)
		return 0;
	at->member = (const char *)w + at->owner->pb.fields[0].offset;
	return 1;
}

int
view_path_check(const struct schema_type *t, const char *path, char **err)
{
	struct spot at;

	*err = NULL;
	return walk(t, NULL, path, &at, err) == -1 ? -1 : 0;
}

/* Finds the value at |path| in |v|; as view_read(). */
static int
find(const struct view *v, const char *path, struct spot *at, char **err)
{
	int rc;

	*err = NULL;
	if (v->error != NULL) {
		*err = xasprintf("payload did not decode: %s", v->error);
		return -1;
	}
	if ((rc = walk(v->type, v->msg, path, at, err)) != 1)
		return rc;
	return unwrap(at);
}

int
view_read(
    const struct view *v, const char *path, struct view_value *out, char **err)
{
	const ProtobufCFieldDescriptor *f;
	const ProtobufCEnumValue *ev;
	const void *p;
	struct spot at;
	int rc;

	if ((rc = find(v, path, &at, err)) != 1)
		return rc;
	f = &at.owner->pb.fields[at.index];
	p = at.member;
	memset(out, 0, sizeof *out);
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		out->kind = VIEW_BOOL;
		out->b = *(const protobuf_c_boolean *)p != 0;
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		out->kind = VIEW_INT;
		out->i = *(const int32_t *)p;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		out->kind = VIEW_INT;
		out->i = *(const int64_t *)p;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		out->kind = VIEW_UINT;
		out->u = *(const uint32_t *)p;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		out->kind = VIEW_UINT;
		out->u = *(const uint64_t *)p;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		out->kind = VIEW_DOUBLE;
		out->d = *(const float *)p;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		out->kind = VIEW_DOUBLE;
		out->d = *(const double *)p;
		break;
	case PROTOBUF_C_TYPE_ENUM:
		out->kind = VIEW_ENUM;
		out->i = *(const int32_t *)p;
		ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, (int)out->i);
		out->s = ev != NULL ? ev->name : NULL;
		break;
	case PROTOBUF_C_TYPE_STRING:
		out->kind = VIEW_STRING;
		out->s = *(const char *const *)p != NULL
		    ? *(const char *const *)p
		    : "";
		out->len = strlen(out->s);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		out->kind = VIEW_BYTES;
		out->bytes = ((const ProtobufCBinaryData *)p)->data;
		out->len = ((const ProtobufCBinaryData *)p)->len;
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		out->kind = VIEW_MESSAGE;
		out->msg = *(const ProtobufCMessage *const *)p;
		break;
	}
	return 1;
}

int
view_text(const struct view *v, const char *path, char **text, char **err)
{
	struct spot at;
	json_t *j;
	size_t len;
	int rc;

	*text = NULL;
	if ((rc = find(v, path, &at, err)) != 1)
		return rc;
	if ((j = pbjson_value(at.owner, at.index, at.member, err)) == NULL)
		return -1;
	/* JSON strings (strings, enum names, 64-bit integers, bytes,
	 * timestamps) lose their quotes; the rest is JSON text. */
	if (json_is_string(j))
		*text = xstrdup(json_string_value(j));
	else
		*text = pbjson_dump(j, &len);
	json_decref(j);
	return 1;
}

int
view_encode(const struct view *v, enum view_encoding enc, void **out,
    size_t *len, char **err)
{
	*err = NULL;
	*out = NULL;
	if (v->error != NULL) {
		*err = xasprintf("payload did not decode: %s", v->error);
		return -1;
	}
	if (enc == VIEW_PROTOBUF) {
		*out = pbwire_encode(v->msg, len);
		return 0;
	}
	*out = pbjson_encode(v->msg, len, err);
	return *out != NULL ? 0 : -1;
}
