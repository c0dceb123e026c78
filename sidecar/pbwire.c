#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"
#include "schema-t.h"
#include "schema.h"
#include "xmalloc.h"

#define FIELD_NUMBER_MAX 536870911u
/* What protobuf-c keeps per field occurrence while it unpacks. */
#define SCAN_COST 32u

/* The field being read, and the fields that hold it. */
struct frame {
	const struct frame *up;
	const ProtobufCFieldDescriptor *f;
	const uint8_t *msg; /* start of the message holding the field */
	const uint8_t *at; /* its tag */
};

struct check {
	const ProtobufCMessageDescriptor *top;
	const uint8_t *base;
	const struct schema_limits *lim;
	size_t memory;
	char **err;
};

static const char *const wire_names[] = { "varint", "64-bit",
	"length-delimited", "group start", "group end", "32-bit", "6", "7" };

/* Reads a varint of at most |max| bytes; returns its length, 0 if it is
 * truncated or longer. */
static size_t
varint(const uint8_t *p, size_t n, size_t max, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < n && i < max; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

/* Offset of the first byte of |s| that is not in strict UTF-8 (no
 * surrogates, nothing above U+10FFFF, no overlong forms) or is a NUL,
 * which protobuf-c's strings cannot hold; |n| if there is none. */
static size_t
utf8_check(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = s[i];
		size_t need;
		uint8_t lo = 0x80, hi = 0xbf;

		if (b == 0)
			return i;
		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			need = 1;
		else if (b >= 0xe0 && b <= 0xef) {
			need = 2;
			if (b == 0xe0)
				lo = 0xa0;
			else if (b == 0xed)
				hi = 0x9f;
		} else if (b >= 0xf0 && b <= 0xf4) {
			need = 3;
			if (b == 0xf0)
				lo = 0x90;
			else if (b == 0xf4)
				hi = 0x8f;
		} else
			return i;
		if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
		}
		i += need + 1;
	}
	return n;
}

/* The wire type of a single value of |t|. */
static unsigned
wire_type(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return PROTOBUF_C_WIRE_TYPE_32BIT;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return PROTOBUF_C_WIRE_TYPE_64BIT;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	default:
		return PROTOBUF_C_WIRE_TYPE_VARINT;
	}
}

/* The index of repeated field |x| among its occurrences before it in
 * its message, which was checked up to there. */
static size_t
occurrence(const struct frame *x)
{
	const uint8_t *p = x->msg;
	size_t index = 0;
	uint64_t tag = 0, l = 0;

	while (p < x->at) {
		p += varint(p, (size_t)(x->at - p), 5, &tag);
		index += (tag >> 3) == x->f->id;
		switch (tag & 7) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			p += varint(p, (size_t)(x->at - p), 10, &l);
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
			p += 8;
			break;
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			p += 4;
			break;
		default:
			p += varint(p, (size_t)(x->at - p), 5, &l);
			p += l;
			break;
		}
	}
	return index;
}

/* Writes "a.b[2].c", the fields from the top to |fr| (the innermost 16
 * of them), into |out|. */
static void
path(const struct frame *fr, char *out, size_t size)
{
	const struct frame *v[16];
	size_t n = 0, used = 0;
	int w;

	for (; fr != NULL && n < 16; fr = fr->up)
		v[n++] = fr;
	out[0] = '\0';
	if (fr != NULL)
		used = (size_t)snprintf(out, size, "...");
	while (n-- > 0 && used < size) {
		const ProtobufCFieldDescriptor *f = v[n]->f;

		if (f->label == PROTOBUF_C_LABEL_REPEATED &&
		    wire_type(f->type) == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			w = snprintf(out + used, size - used, "%s%s[%zu]",
			    used > 0 && out[used - 1] != '.' ? "." : "",
			    f->name, occurrence(v[n]));
		else
			w = snprintf(out + used, size - used, "%s%s",
			    used > 0 && out[used - 1] != '.' ? "." : "",
			    f->name);
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/* Sets the error for a problem at |at| within field |fr|; returns -1. */
static int __attribute__((format(printf, 4, 5))) fail(struct check *c,
    const struct frame *fr, const uint8_t *at, const char *fmt, ...)
{
	char where[512], what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (fr == NULL) {
		*c->err = xasprintf("%s: at offset %zu: %s", c->top->name,
		    (size_t)(at - c->base), what);
		return -1;
	}
	path(fr, where, sizeof where);
	*c->err = xasprintf("%s: field %s (number %u) at offset %zu: %s",
	    c->top->name, where, fr->f->id, (size_t)(at - c->base), what);
	return -1;
}

/* Counts |n| more bytes of the decoded message against the limit. */
static int
spend(struct check *c, const struct frame *fr, const uint8_t *at, size_t n)
{
	if (n > c->lim->max_memory - c->memory)
		return fail(c, fr, at,
		    "decoding would take more than %zu bytes",
		    c->lim->max_memory);
	c->memory += n;
	return 0;
}

/* Checks a varint value against the range of its field's type. */
static int
check_varint(struct check *c, const struct frame *fr, const uint8_t *at,
    size_t used, uint64_t v)
{
	if (used == 10 && at[9] > 1)
		return fail(c, fr, at, "varint overflows 64 bits");
	switch (fr->f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		if (v > INT32_MAX && v < (uint64_t)INT32_MIN)
			return fail(c, fr, at, "value %lld out of range for %s",
			    (long long)v,
			    fr->f->type == PROTOBUF_C_TYPE_ENUM ? "an enum"
								: "int32");
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_SINT32:
		if (v > UINT32_MAX)
			return fail(c, fr, at, "value %llu out of range for %s",
			    (unsigned long long)v,
			    fr->f->type == PROTOBUF_C_TYPE_UINT32 ? "uint32"
								  : "sint32");
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (v > 1)
			return fail(c, fr, at, "value %llu is not a bool",
			    (unsigned long long)v);
		break;
	default:
		break;
	}
	return 0;
}

/* Checks the elements of a packed repeated field. */
static int
check_packed(
    struct check *c, const struct frame *fr, const uint8_t *p, size_t len)
{
	size_t size = schema_element_size(fr->f->type), off = 0, used,
	       count = 0;
	uint64_t v;

	switch (wire_type(fr->f->type)) {
	case PROTOBUF_C_WIRE_TYPE_32BIT:
	case PROTOBUF_C_WIRE_TYPE_64BIT:
		if (len % size != 0)
			return fail(c, fr, p,
			    "packed length %zu is not a multiple of %zu", len,
			    size);
		count = len / size;
		break;
	default:
		while (off < len) {
			if ((used = varint(p + off, len - off, 10, &v)) == 0)
				return fail(c, fr, p + off,
				    "truncated or overlong varint");
			if (check_varint(c, fr, p + off, used, v) == -1)
				return -1;
			off += used;
			count++;
		}
		break;
	}
	return spend(c, fr, p, count * size);
}

static int check_message(struct check *, const ProtobufCMessageDescriptor *,
    const uint8_t *, size_t, unsigned, const struct frame *);

/* Checks the value of known field |fr| at |p| (|v|: a varint's value). */
static int
check_value(struct check *c, const struct frame *fr, unsigned wt,
    const uint8_t *p, size_t len, uint64_t v, unsigned depth)
{
	const ProtobufCFieldDescriptor *f = fr->f;
	size_t bad;

	if (wt != wire_type(f->type)) {
		if (wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
		    f->label == PROTOBUF_C_LABEL_REPEATED &&
		    wire_type(f->type) != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			return check_packed(c, fr, p, len);
		return fail(c, fr, fr->at,
		    "wire type %u (%s), expected %u (%s)", wt, wire_names[wt],
		    wire_type(f->type), wire_names[wire_type(f->type)]);
	}
	if (spend(c, fr, p,
		f->label == PROTOBUF_C_LABEL_REPEATED
		    ? schema_element_size(f->type)
		    : 0) == -1)
		return -1;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		if ((bad = utf8_check(p, len)) < len)
			return fail(c, fr, p + bad,
			    p[bad] == 0 ? "NUL character in a string"
					: "invalid UTF-8");
		return spend(c, fr, p, len + 1);
	case PROTOBUF_C_TYPE_BYTES:
		return spend(c, fr, p, len);
	case PROTOBUF_C_TYPE_MESSAGE:
		if (depth + 1 > c->lim->max_depth)
			return fail(c, fr, p, "nested deeper than %u",
			    c->lim->max_depth);
		return check_message(c, f->descriptor, p, len, depth + 1, fr);
	default:
		if (wt == PROTOBUF_C_WIRE_TYPE_VARINT)
			return check_varint(c, fr, p, len, v);
		return 0;
	}
}

/* The singular message fields of a message seen so far, by index. */
struct seen {
	uint64_t bits; /* the first 64 fields */
	uint8_t *more; /* all fields, when there are more */
};

/* Marks field |i|; returns whether it was marked already. */
static int
seen_twice(struct seen *s, size_t i)
{
	int was;

	if (s->more != NULL) {
		was = s->more[i];
		s->more[i] = 1;
	} else {
		was = (s->bits >> i) & 1;
		s->bits |= UINT64_C(1) << i;
	}
	return was;
}

/* Checks the fields of one message of |d| in |p|, |len| bytes, held by
 * field |up|. */
static int
check_fields(struct check *c, const ProtobufCMessageDescriptor *d,
    const uint8_t *p, size_t len, unsigned depth, const struct frame *up,
    struct seen *seen)
{
	size_t off = 0;

	while (off < len) {
		struct frame fr = { up, NULL, p, p + off };
		const struct frame *in;
		size_t used, vlen = 0;
		uint64_t tag, v = 0, number;
		char unknown[48] = "";
		unsigned wt;

		if ((used = varint(p + off, len - off, 5, &tag)) == 0)
			return fail(
			    c, up, p + off, "truncated or overlong tag");
		number = tag >> 3;
		wt = (unsigned)(tag & 7);
		if (number == 0 || number > FIELD_NUMBER_MAX)
			return fail(c, up, p + off, "invalid field number %llu",
			    (unsigned long long)number);
		fr.f = protobuf_c_message_descriptor_get_field(
		    d, (unsigned)number);
		/* Errors name the field, or its number if it is unknown. */
		in = fr.f != NULL ? &fr : up;
		if (fr.f == NULL)
			snprintf(unknown, sizeof unknown,
			    "unknown field %u: ", (unsigned)number);
		off += used;
		switch (wt) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			if ((vlen = varint(p + off, len - off, 10, &v)) == 0)
				return fail(c, in, p + off,
				    "%struncated or overlong varint", unknown);
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			vlen = wt == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
			if (len - off < vlen)
				return fail(c, in, p + off,
				    "%struncated %s value", unknown,
				    wire_names[wt]);
			break;
		case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
			if ((used = varint(p + off, len - off, 5, &v)) == 0)
				return fail(c, in, p + off,
				    "%struncated or overlong length", unknown);
			if (v > INT_MAX || v > len - off - used)
				return fail(c, in, p + off,
				    "%slength %llu runs past the end", unknown,
				    (unsigned long long)v);
			off += used;
			vlen = (size_t)v;
			break;
		case 3:
		case 4:
			return fail(c, in, fr.at, "%sgroups are not supported",
			    unknown);
		default:
			return fail(c, in, fr.at, "%sinvalid wire type %u",
			    unknown, wt);
		}
		if (spend(c, up, fr.at, SCAN_COST) == -1)
			return -1;
		/* protobuf-c merges a message given twice wrongly (proto3
		 * scalars of the first are lost, unset oneofs fail): refuse. */
		if (fr.f != NULL && fr.f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    fr.f->label != PROTOBUF_C_LABEL_REPEATED &&
		    wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
		    seen_twice(seen, (size_t)(fr.f - d->fields)))
			return fail(c, &fr, fr.at,
			    "message field given twice, which is not "
			    "supported");
		if (fr.f == NULL) {
			if (spend(c, up, fr.at,
				sizeof(ProtobufCMessageUnknownField) +
				    (size_t)(p + off + vlen - fr.at)) == -1)
				return -1;
		} else if (check_value(c, &fr, wt, p + off, vlen, v, depth) ==
		    -1) {
			return -1;
		}
		off += vlen;
	}
	return 0;
}

/* Checks one message of |d| in |p|, |len| bytes, held by field |up|. */
static int
check_message(struct check *c, const ProtobufCMessageDescriptor *d,
    const uint8_t *p, size_t len, unsigned depth, const struct frame *up)
{
	struct seen seen = { 0, NULL };
	int rc;

	if (spend(c, up, p, d->sizeof_message) == -1)
		return -1;
	if (d->n_fields > 64)
		seen.more = xcalloc(d->n_fields, 1);
	rc = check_fields(c, d, p, len, depth, up, &seen);
	free(seen.more);
	return rc;
}

int
pbwire_check(const ProtobufCMessageDescriptor *desc, const void *data,
    size_t len, const struct schema_limits *lim, char **err)
{
	struct check c = { desc, data, lim, 0, err };

	*err = NULL;
	if (len > lim->max_size) {
		*err = xasprintf("%s: %zu bytes, more than the limit of %zu",
		    desc->name, len, lim->max_size);
		return -1;
	}
	return check_message(&c, desc, data, len, 0, NULL);
}

int
pbwire_decode(const struct schema_type *t, const void *data, size_t len,
    const struct schema_limits *lim, ProtobufCMessage **out, char **err)
{
	const ProtobufCMessageDescriptor *d = schema_type_descriptor(t);

	*out = NULL;
	if (pbwire_check(d, data, len, lim, err) == -1)
		return -1;
	/* protobuf-c reads a NULL buffer of length 0 as an empty message. */
	*out = protobuf_c_message_unpack(
	    d, &schema_allocator, len, len > 0 ? data : (const uint8_t *)"");
	if (*out == NULL) {
		*err = xasprintf("%s: protobuf-c could not unpack it", d->name);
		return -1;
	}
	return 0;
}

uint8_t *
pbwire_encode(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *out;

	*len = protobuf_c_message_get_packed_size(m);
	out = xmalloc(*len);
	protobuf_c_message_pack(m, out);
	return out;
}
