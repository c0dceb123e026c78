#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "log.h"
#include "pbjson.h"
#include "schema-t.h"
#include "schema.h"
#include "xmalloc.h"

/* Timestamps from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define TIMESTAMP_MIN INT64_C(-62135596800)
#define TIMESTAMP_MAX INT64_C(253402300799)
/* Durations within about +-10000 years. */
#define DURATION_MAX INT64_C(315576000000)
#define NANOS_MAX 999999999

#define MEMBER(m, off) ((char *)(m) + (off))

/* Where a value is, for errors: a field, an element or a map key. */
struct jpath {
	const struct jpath *up;
	const char *name; /* field name, or map key */
	size_t index; /* element of a list */
	enum { JPATH_FIELD, JPATH_INDEX, JPATH_KEY } kind;
};

struct dec {
	const struct schema_type *top;
	const struct schema_limits *lim;
	size_t memory; /* taken by the message so far */
	char **err;
};

static int dec_message(struct dec *, const struct schema_type *, const json_t *,
    ProtobufCMessage **, const struct jpath *, unsigned);
static json_t *enc_message(const ProtobufCMessage *, char **);

/* Writes the path of |p| as "items[1].sku" or attrs["k"] into |out|. */
static void
jpath_format(const struct jpath *p, char *out, size_t size)
{
	const struct jpath *v[16];
	size_t n = 0, used = 0;
	int w = 0;

	for (; p != NULL && n < 16; p = p->up)
		v[n++] = p;
	out[0] = '\0';
	if (p != NULL)
		used = (size_t)snprintf(out, size, "...");
	while (n-- > 0 && used < size) {
		switch (v[n]->kind) {
		case JPATH_FIELD:
			w = snprintf(out + used, size - used, "%s%s",
			    used > 0 && out[used - 1] != '.' ? "." : "",
			    v[n]->name);
			break;
		case JPATH_INDEX:
			w = snprintf(
			    out + used, size - used, "[%zu]", v[n]->index);
			break;
		case JPATH_KEY:
			w = snprintf(
			    out + used, size - used, "[\"%.40s\"]", v[n]->name);
			break;
		}
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/* Sets the error for the value at |p|; returns -1. */
static int __attribute__((format(printf, 3, 4)))
dec_fail(struct dec *d, const struct jpath *p, const char *fmt, ...)
{
	char where[512], what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (p == NULL) {
		*d->err = xasprintf("%s: %s", d->top->pb.name, what);
		return -1;
	}
	jpath_format(p, where, sizeof where);
	*d->err = xasprintf("%s: field %s: %s", d->top->pb.name, where, what);
	return -1;
}

/* Counts |n| more bytes of the message against the limit. */
static int
dec_spend(struct dec *d, const struct jpath *p, size_t n)
{
	if (n > d->lim->max_memory - d->memory)
		return dec_fail(d, p, "decoding would take more than %zu bytes",
		    d->lim->max_memory);
	d->memory += n;
	return 0;
}

/* Sets an encoding error; returns NULL. */
static json_t *__attribute__((format(printf, 3, 4)))
enc_fail(char **err, const ProtobufCFieldDescriptor *f, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (*err == NULL)
		*err = f != NULL ? xasprintf("field %s: %s", f->name, what)
				 : xstrdup(what);
	return NULL;
}

/* What |v| is, for errors. */
static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* The date of |z| days since 1970-01-01. */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Writes ".123", ".123456" or ".123456789" for |nanos| (none for 0). */
static void
format_nanos(char *out, size_t size, int32_t nanos)
{
	if (nanos == 0)
		*out = '\0';
	else if (nanos % 1000000 == 0)
		snprintf(out, size, ".%03d", nanos / 1000000);
	else if (nanos % 1000 == 0)
		snprintf(out, size, ".%06d", nanos / 1000);
	else
		snprintf(out, size, ".%09d", nanos);
}

/* A Timestamp as an RFC 3339 string in UTC. */
static json_t *
enc_timestamp(int64_t s, int32_t nanos, char **err)
{
	char buf[64], frac[16];
	int64_t days, y;
	unsigned m, d, sod;

	if (s < TIMESTAMP_MIN || s > TIMESTAMP_MAX || nanos < 0 ||
	    nanos > NANOS_MAX)
		return enc_fail(err, NULL,
		    "timestamp %" PRId64 "s %" PRId32
		    "ns is out of range for RFC 3339",
		    s, nanos);
	days = (s >= 0 ? s : s - 86399) / 86400;
	sod = (unsigned)(s - days * 86400);
	civil_from_days(days, &y, &m, &d);
	format_nanos(frac, sizeof frac, nanos);
	snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u%sZ", (int)y, m,
	    d, sod / 3600, sod / 60 % 60, sod % 60, frac);
	return json_string(buf);
}

/* A Duration as "[-]S[.F]s". */
static json_t *
enc_duration(int64_t s, int32_t nanos, char **err)
{
	char buf[64], frac[16];

	if (s < -DURATION_MAX || s > DURATION_MAX || nanos < -NANOS_MAX ||
	    nanos > NANOS_MAX || (s > 0 && nanos < 0) || (s < 0 && nanos > 0))
		return enc_fail(err, NULL,
		    "duration %" PRId64 "s %" PRId32 "ns is out of range", s,
		    nanos);
	format_nanos(frac, sizeof frac, nanos < 0 ? -nanos : nanos);
	snprintf(buf, sizeof buf, "%s%" PRId64 "%ss",
	    s < 0 || nanos < 0 ? "-" : "", s < 0 ? -s : s, frac);
	return json_string(buf);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding of |len| bytes at |p|. */
static json_t *
enc_bytes(const uint8_t *p, size_t len)
{
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	json_t *v;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t x = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			x |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			x |= p[i + 2];
		*o++ = b64[x >> 18];
		*o++ = b64[(x >> 12) & 63];
		*o++ = i + 1 < len ? b64[(x >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64[x & 63] : '=';
	}
	v = json_stringn_nocheck(out, (size_t)(o - out));
	free(out);
	return v;
}

/* The fewest significant digits (1 to 17) that print |v| so that it
 * reads back exactly. */
static int
shortest_digits(double v)
{
	char buf[40];

	for (int p = 1; p < 17; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, v);
		if (strtod(buf, NULL) == v)
			return p;
	}
	return 17;
}

/* A JSON number for |v|: an integer when it is one that a double holds
 * exactly, NaN and infinities as the strings proto3 JSON uses. */
static json_t *
enc_double(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	if (v == trunc(v) && fabs(v) < 9007199254740992.0 &&
	    !(v == 0 && signbit(v)))
		return json_integer((json_int_t)v);
	return json_real(v);
}

/* A float as the double of its shortest decimal form, so that it prints
 * as "0.1", not as the double nearest to the float 0.1. */
static json_t *
enc_float(float f)
{
	char buf[40];

	if (isnan(f) || isinf(f) || f == truncf(f))
		return enc_double(f);
	for (int p = 1; p < 9; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, (double)f);
		if (strtof(buf, NULL) == f)
			return enc_double(strtod(buf, NULL));
	}
	snprintf(buf, sizeof buf, "%.9g", (double)f);
	return enc_double(strtod(buf, NULL));
}

/* Whether field |f| of |m| is written: when present, unless it is a
 * NullValue without presence, which prints as null and reads back as
 * unset. */
static int
present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_ENUM &&
	    f->label != PROTOBUF_C_LABEL_REPEATED &&
	    f->label != PROTOBUF_C_LABEL_OPTIONAL &&
	    !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	    schema_type_of(m->descriptor)
		->fields[f - m->descriptor->fields]
		.null_value)
		return 0;
	return schema_field_present(m, f);
}

/* The JSON of the message at |p|, which may be NULL: then a default
 * one of type |t|. */
static json_t *
enc_submessage(
    const struct schema_type *t, const ProtobufCMessage *sub, char **err)
{
	ProtobufCMessage *def;
	json_t *v;

	if (sub != NULL)
		return enc_message(sub, err);
	def = schema_message_new(t);
	v = enc_message(def, err);
	schema_message_free(def);
	return v;
}

/* The JSON of one value of field |f| (|sf|) at |p|. */
static json_t *
enc_value(const ProtobufCFieldDescriptor *f, const struct schema_field *sf,
    const void *p, char **err)
{
	const ProtobufCEnumValue *ev;
	char buf[32];
	const char *s;
	json_t *v;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)p);
		return json_string(buf);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)p);
		return json_string(buf);
	case PROTOBUF_C_TYPE_FLOAT:
		return enc_float(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return enc_double(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		if (sf->null_value)
			return json_null();
		ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, *(const int32_t *)p);
		if (ev != NULL)
			return json_string(ev->name);
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_STRING:
		s = *(const char *const *)p;
		/* jansson refuses strings that are not UTF-8. */
		if ((v = json_string(s != NULL ? s : "")) == NULL)
			return enc_fail(err, f, "string is not UTF-8");
		return v;
	case PROTOBUF_C_TYPE_BYTES:
		return enc_bytes(((const ProtobufCBinaryData *)p)->data,
		    ((const ProtobufCBinaryData *)p)->len);
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		return enc_submessage(
		    sf->message, *(const ProtobufCMessage *const *)p, err);
	}
}

/* Orders two map entries by key: numbers by value, strings by bytes,
 * false before true. */
static int
map_entry_cmp(const void *a, const void *b)
{
	const ProtobufCMessage *x = *(const ProtobufCMessage *const *)a;
	const ProtobufCMessage *y = *(const ProtobufCMessage *const *)b;
	const ProtobufCFieldDescriptor *k = &x->descriptor->fields[0];
	const void *px = MEMBER(x, k->offset), *py = MEMBER(y, k->offset);
	int c;

	switch (k->type) {
	case PROTOBUF_C_TYPE_STRING:
		c = strcmp(*(const char *const *)px != NULL
			? *(const char *const *)px
			: "",
		    *(const char *const *)py != NULL ? *(const char *const *)py
						     : "");
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		c = (*(const int64_t *)px > *(const int64_t *)py) -
		    (*(const int64_t *)px < *(const int64_t *)py);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		c = (*(const uint64_t *)px > *(const uint64_t *)py) -
		    (*(const uint64_t *)px < *(const uint64_t *)py);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		c = (*(const uint32_t *)px > *(const uint32_t *)py) -
		    (*(const uint32_t *)px < *(const uint32_t *)py);
		break;
	default: /* 32-bit signed, bool */
		c = (*(const int32_t *)px > *(const int32_t *)py) -
		    (*(const int32_t *)px < *(const int32_t *)py);
		break;
	}
	return c;
}

/* Stable merge sort of |n| entries of |v|, with |tmp| as room. */
static void
merge_sort(ProtobufCMessage **v, ProtobufCMessage **tmp, size_t n)
{
	size_t h = n / 2, i = 0, j = h, k = 0;

	if (n < 2)
		return;
	merge_sort(v, tmp, h);
	merge_sort(v + h, tmp, n - h);
	while (i < h && j < n)
		tmp[k++] = map_entry_cmp(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
	while (i < h)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof *v);
}

/* Sorts map entries by key, keeping equal keys in their order so that
 * the last of them wins in JSON as on the wire. */
static void
map_sort(ProtobufCMessage **v, size_t n)
{
	ProtobufCMessage **tmp;

	if (n < 2)
		return;
	tmp = xreallocarray(NULL, n, sizeof *tmp);
	merge_sort(v, tmp, n);
	free(tmp);
}

/* The JSON object of a map field's |n| entries. */
static json_t *
enc_map(const struct schema_type *et, ProtobufCMessage *const *entries,
    size_t n, char **err)
{
	const ProtobufCFieldDescriptor *kf = &et->pb.fields[0];
	ProtobufCMessage **sorted = xmemdup(entries, n * sizeof *entries);
	json_t *obj = json_object(), *v;
	char buf[32];

	map_sort(sorted, n);
	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessage *e = sorted[i];
		const void *k = MEMBER(e, kf->offset);
		const char *key = buf;

		switch (kf->type) {
		case PROTOBUF_C_TYPE_STRING:
			key = *(const char *const *)k != NULL
			    ? *(const char *const *)k
			    : "";
			break;
		case PROTOBUF_C_TYPE_BOOL:
			key = *(const protobuf_c_boolean *)k ? "true" : "false";
			break;
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
			snprintf(
			    buf, sizeof buf, "%" PRId64, *(const int64_t *)k);
			break;
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			snprintf(
			    buf, sizeof buf, "%" PRIu64, *(const uint64_t *)k);
			break;
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			snprintf(
			    buf, sizeof buf, "%" PRIu32, *(const uint32_t *)k);
			break;
		default:
			snprintf(
			    buf, sizeof buf, "%" PRId32, *(const int32_t *)k);
			break;
		}
		v = enc_value(&et->pb.fields[1], &et->fields[1],
		    MEMBER(e, et->pb.fields[1].offset), err);
		if (v == NULL || json_object_set_new(obj, key, v) == -1) {
			enc_fail(err, kf, "map key is not UTF-8");
			json_decref(obj);
			obj = NULL;
			break;
		}
	}
	free(sorted);
	return obj;
}

/* The JSON of field |i| of |m|, present or not. */
static json_t *
enc_field(const ProtobufCMessage *m, unsigned i, char **err)
{
	const struct schema_type *t = schema_type_of(m->descriptor);
	const ProtobufCFieldDescriptor *f = &t->pb.fields[i];
	const struct schema_field *sf = &t->fields[i];
	const char *base;
	size_t n, size;
	json_t *arr, *v;

	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return enc_value(f, sf, MEMBER(m, f->offset), err);
	n = *(const size_t *)MEMBER(m, f->quantifier_offset);
	base = *(const char *const *)MEMBER(m, f->offset);
	if (sf->map)
		return enc_map(sf->message,
		    (ProtobufCMessage *const *)(const void *)base, n, err);
	size = schema_element_size(f->type);
	arr = json_array();
	for (size_t k = 0; k < n; k++) {
		if ((v = enc_value(f, sf, base + k * size, err)) == NULL) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, v);
	}
	return arr;
}

/* google.protobuf.Value: the JSON of its kind. */
static json_t *
enc_kind(const ProtobufCMessage *m, char **err)
{
	const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
	uint32_t kind = *(const uint32_t *)MEMBER(m, f->quantifier_offset);

	if (kind < 1 || kind > 6)
		return enc_fail(err, NULL, "google.protobuf.Value has no kind");
	f = &m->descriptor->fields[kind - 1];
	if (f->type == PROTOBUF_C_TYPE_DOUBLE &&
	    !isfinite(*(const double *)MEMBER(m, f->offset)))
		return enc_fail(err, NULL,
		    "google.protobuf.Value holds a number that is not finite");
	return enc_field(m, kind - 1, err);
}

/* The JSON of message |m|: an object, or a well-known type's form. */
static json_t *
enc_message(const ProtobufCMessage *m, char **err)
{
	const struct schema_type *t = schema_type_of(m->descriptor);
	const ProtobufCFieldDescriptor *f = t->pb.fields;
	json_t *obj, *v;

	switch (t->wkt) {
	case SCHEMA_WKT_TIMESTAMP:
	case SCHEMA_WKT_DURATION:
		return (t->wkt == SCHEMA_WKT_TIMESTAMP ? enc_timestamp
						       : enc_duration)(
		    *(const int64_t *)MEMBER(m, f[0].offset),
		    *(const int32_t *)MEMBER(m, f[1].offset), err);
	case SCHEMA_WKT_WRAPPER:
	case SCHEMA_WKT_STRUCT:
	case SCHEMA_WKT_LIST_VALUE:
		return enc_field(m, 0, err);
	case SCHEMA_WKT_VALUE:
		return enc_kind(m, err);
	case SCHEMA_WKT_NONE:
		break;
	}
	obj = json_object();
	for (unsigned i = 0; i < t->pb.n_fields; i++) {
		if (!present(m, &f[i]))
			continue;
		if ((v = enc_field(m, i, err)) == NULL) {
			json_decref(obj);
			return NULL;
		}
		json_object_set_new_nocheck(obj, t->fields[i].json_name, v);
	}
	return obj;
}

/* The most digits any real in |v| needs; 0 if it holds none. */
static int
precision(const json_t *v)
{
	const char *key;
	json_t *x;
	size_t i;
	int p = 0, q;

	switch (json_typeof(v)) {
	case JSON_REAL:
		return shortest_digits(json_real_value(v));
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, x)
		{
			if ((q = precision(x)) > p)
				p = q;
		}
		return p;
	case JSON_ARRAY:
		json_array_foreach((json_t *)v, i, x)
		{
			if ((q = precision(x)) > p)
				p = q;
		}
		return p;
	default:
		return 0;
	}
}

char *
pbjson_dump(const json_t *v, size_t *len)
{
	int p = precision(v);
	char *s;

	/* jansson prints every real with one precision: the most any of
	 * them needs keeps each exact and the output a function of the
	 * values alone. */
	s = json_dumps(v,
	    JSON_COMPACT | JSON_ENCODE_ANY |
		JSON_REAL_PRECISION(p > 0 ? p : 17));
	if (s == NULL)
		fatalx("out of memory printing JSON");
	*len = strlen(s);
	return s;
}

char *
pbjson_encode(const ProtobufCMessage *m, size_t *len, char **err)
{
	json_t *v;
	char *s;

	*err = NULL;
	if ((v = enc_message(m, err)) == NULL) {
		char *e = xasprintf("%s: %s", m->descriptor->name, *err);

		free(*err);
		*err = e;
		return NULL;
	}
	s = pbjson_dump(v, len);
	json_decref(v);
	return s;
}

json_t *
pbjson_value(
    const struct schema_type *t, unsigned i, const void *member, char **err)
{
	*err = NULL;
	return enc_value(&t->pb.fields[i], &t->fields[i], member, err);
}

/* Whether |s| has the syntax of a JSON number (strtod also takes hex,
 * "inf" and leading spaces, which proto3 JSON does not). */
static int
number_syntax(const char *s)
{
	if (*s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9')
		s++;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* A signed integer in [min, max] from a JSON number or string. */
static int
dec_int(struct dec *d, const struct jpath *p, const json_t *v, int64_t min,
    int64_t max, const char *type, int64_t *out)
{
	const char *s;
	char *end;
	double r;

	switch (json_typeof(v)) {
	case JSON_INTEGER:
		*out = json_integer_value(v);
		break;
	case JSON_REAL:
		r = json_real_value(v);
		if (r != trunc(r))
			return dec_fail(d, p, "%.*g is not an integer",
			    shortest_digits(r), r);
		if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
			return dec_fail(d, p, "%.*g is out of range for %s",
			    shortest_digits(r), r, type);
		*out = (int64_t)r;
		break;
	case JSON_STRING:
		s = json_string_value(v);
		errno = 0;
		if ((*s != '-' && (*s < '0' || *s > '9')) ||
		    (*out = strtoll(s, &end, 10), *end != '\0'))
			return dec_fail(d, p, "\"%.40s\" is not an integer", s);
		if (errno == ERANGE)
			return dec_fail(
			    d, p, "%.40s is out of range for %s", s, type);
		break;
	default:
		return dec_fail(
		    d, p, "expected an integer, got %s", json_kind(v));
	}
	if (*out < min || *out > max)
		return dec_fail(
		    d, p, "%" PRId64 " is out of range for %s", *out, type);
	return 0;
}

/* An unsigned integer up to |max| from a JSON number or string. */
static int
dec_uint(struct dec *d, const struct jpath *p, const json_t *v, uint64_t max,
    const char *type, uint64_t *out)
{
	const char *s;
	char *end;
	int64_t i;

	if (!json_is_string(v)) {
		if (dec_int(d, p, v, 0, INT64_MAX, type, &i) == -1)
			return -1;
		*out = (uint64_t)i;
	} else {
		s = json_string_value(v);
		errno = 0;
		if (*s < '0' || *s > '9' ||
		    (*out = strtoull(s, &end, 10), *end != '\0'))
			return dec_fail(
			    d, p, "\"%.40s\" is not an unsigned integer", s);
		if (errno == ERANGE)
			return dec_fail(
			    d, p, "%.40s is out of range for %s", s, type);
	}
	if (*out > max)
		return dec_fail(
		    d, p, "%" PRIu64 " is out of range for %s", *out, type);
	return 0;
}

/* A double (or float, |single|) from a number, a numeric string, or
 * "NaN", "Infinity", "-Infinity". */
static int
dec_real(struct dec *d, const struct jpath *p, const json_t *v, int single,
    double *out)
{
	const char *s;

	if (json_is_number(v)) {
		*out = json_number_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (strcmp(s, "NaN") == 0)
			*out = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*out = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*out = -INFINITY;
		else if (number_syntax(s))
			*out = strtod(s, NULL);
		else
			return dec_fail(d, p, "\"%.40s\" is not a number", s);
		if (isinf(*out) && number_syntax(s))
			return dec_fail(d, p, "%.40s is out of range for %s", s,
			    single ? "float" : "double");
	} else {
		return dec_fail(
		    d, p, "expected a number, got %s", json_kind(v));
	}
	if (single && isfinite(*out) && fabs(*out) > FLT_MAX)
		return dec_fail(d, p, "%.*g is out of range for float",
		    shortest_digits(*out), *out);
	return 0;
}

/* Parses "[-]S[.F]s" into seconds and nanoseconds. */
static int
parse_duration(const char *s, int64_t *sec, int32_t *nanos)
{
	int neg = *s == '-';
	int64_t v = 0;
	int32_t n = 0;
	int digits = 0;

	s += neg;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > DURATION_MAX)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (++digits > 9)
				return -1;
			n = n * 10 + (*s - '0');
		}
		if (digits == 0)
			return -1;
		for (int k = digits; k < 9; k++)
			n *= 10;
	}
	if (strcmp(s, "s") != 0 || v > DURATION_MAX)
		return -1;
	*sec = neg ? -v : v;
	*nanos = neg ? -n : n;
	return 0;
}

/* Reads |n| digits at |s|; -1 if they are not all digits. */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
pbjson_parse_timestamp(const char *s, int64_t *sec, int32_t *nanos)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };
	int y, mo, d, h, mi, se, oh, om, sign, n = 0, nd = 0;
	int64_t v;

	if (strlen(s) < 20)
		return -1;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	se = digits(s + 17, 2);
	if (y < 1 || s[4] != '-' || mo < 1 || mo > 12 || s[7] != '-' || d < 1 ||
	    (unsigned)d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 &&
		!(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) ||
	    (s[10] != 'T' && s[10] != 't') || h < 0 || h > 23 || s[13] != ':' ||
	    mi < 0 || mi > 59 || s[16] != ':' || se < 0 || se > 59)
		return -1;
	s += 19;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (++nd > 9)
				return -1;
			n = n * 10 + (*s - '0');
		}
		if (nd == 0)
			return -1;
		for (int k = nd; k < 9; k++)
			n *= 10;
	}
	v = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
	    mi * 60 + se;
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
		/* UTC */
	} else if ((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':' &&
	    (oh = digits(s + 1, 2)) >= 0 && oh <= 23 &&
	    (om = digits(s + 4, 2)) >= 0 && om <= 59) {
		sign = *s == '+' ? 1 : -1;
		v -= sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (v < TIMESTAMP_MIN || v > TIMESTAMP_MAX)
		return -1;
	*sec = v;
	*nanos = n;
	return 0;
}

/* A Timestamp or Duration from its string. */
static int
dec_time(struct dec *d, const struct schema_type *t, const json_t *v,
    ProtobufCMessage *m, const struct jpath *p)
{
	int timestamp = t->wkt == SCHEMA_WKT_TIMESTAMP;
	int64_t sec;
	int32_t nanos;

	if (!json_is_string(v))
		return dec_fail(d, p, "expected %s string, got %s",
		    timestamp ? "an RFC 3339" : "a duration", json_kind(v));
	if ((timestamp ? pbjson_parse_timestamp : parse_duration)(
		json_string_value(v), &sec, &nanos) == -1)
		return dec_fail(d, p,
		    timestamp ? "\"%.40s\" is not an RFC 3339 time from year 1 "
				"to 9999"
			      : "\"%.40s\" is not a duration such as \"1.5s\" "
				"within 10000 years",
		    json_string_value(v));
	*(int64_t *)MEMBER(m, t->pb.fields[0].offset) = sec;
	*(int32_t *)MEMBER(m, t->pb.fields[1].offset) = nanos;
	return 0;
}

/*
 * Decodes one value of field |f| (|sf|) into |out|. Returns 0, 1 if the
 * value is an unknown enum name to skip (lim->ignore_unknown), or -1.
 */
static int
dec_value(struct dec *d, const ProtobufCFieldDescriptor *f,
    const struct schema_field *sf, const json_t *v, void *out,
    const struct jpath *p, unsigned depth)
{
	const ProtobufCEnumValue *ev;
	int64_t i;
	uint64_t u;
	double r;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (dec_int(d, p, v, INT32_MIN, INT32_MAX, "int32", &i) == -1)
			return -1;
		*(int32_t *)out = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return dec_int(
		    d, p, v, INT64_MIN, INT64_MAX, "int64", (int64_t *)out);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (dec_uint(d, p, v, UINT32_MAX, "uint32", &u) == -1)
			return -1;
		*(uint32_t *)out = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return dec_uint(d, p, v, UINT64_MAX, "uint64", (uint64_t *)out);
	case PROTOBUF_C_TYPE_FLOAT:
		if (dec_real(d, p, v, 1, &r) == -1)
			return -1;
		*(float *)out = (float)r;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return dec_real(d, p, v, 0, (double *)out);
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return dec_fail(d, p, "expected true or false, got %s",
			    json_kind(v));
		*(protobuf_c_boolean *)out = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		if (sf->null_value && json_is_null(v)) {
			*(int32_t *)out = 0;
			return 0;
		}
		if (json_is_string(v)) {
			ev = protobuf_c_enum_descriptor_get_value_by_name(
			    f->descriptor, json_string_value(v));
			if (ev != NULL) {
				*(int32_t *)out = ev->value;
				return 0;
			}
			if (d->lim->ignore_unknown)
				return 1;
			return dec_fail(d, p, "\"%.40s\" is not a value of %s",
			    json_string_value(v),
			    ((const ProtobufCEnumDescriptor *)f->descriptor)
				->name);
		}
		if (!json_is_integer(v))
			return dec_fail(d, p,
			    "expected an enum name or number, got %s",
			    json_kind(v));
		if (dec_int(d, p, v, INT32_MIN, INT32_MAX, "an enum", &i) == -1)
			return -1;
		*(int32_t *)out = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		if (!json_is_string(v))
			return dec_fail(
			    d, p, "expected a string, got %s", json_kind(v));
		if (dec_spend(d, p, json_string_length(v) + 1) == -1)
			return -1;
		*(char **)out = xstrdup(json_string_value(v));
		return 0;
	case PROTOBUF_C_TYPE_BYTES:
		if (json_is_string(v) &&
		    dec_spend(d, p, json_string_length(v)) == -1)
			return -1;
		if (!json_is_string(v) ||
		    base64_decode(json_string_value(v), json_string_length(v),
			&((ProtobufCBinaryData *)out)->data,
			&((ProtobufCBinaryData *)out)->len) == -1)
			return dec_fail(d, p, "expected base64, got %s",
			    json_is_string(v) ? "other text" : json_kind(v));
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		return dec_message(
		    d, sf->message, v, (ProtobufCMessage **)out, p, depth + 1);
	}
}

/* Fills map field |f| of |m| from the JSON object |v|. */
static int
dec_map(struct dec *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct schema_field *sf, const json_t *v, const struct jpath *p,
    unsigned depth)
{
	const struct schema_type *et = sf->message;
	size_t *n = (size_t *)MEMBER(m, f->quantifier_offset);
	ProtobufCMessage **entries;
	const char *key;
	json_t *x;

	if (!json_is_object(v))
		return dec_fail(
		    d, p, "expected an object, got %s", json_kind(v));
	if (dec_spend(d, p, json_object_size(v) * sizeof *entries) == -1)
		return -1;
	entries = xcalloc(json_object_size(v), sizeof *entries);
	*(ProtobufCMessage ***)MEMBER(m, f->offset) = entries;
	json_object_foreach((json_t *)v, key, x)
	{
		struct jpath kp = { p, key, 0, JPATH_KEY };
		const ProtobufCFieldDescriptor *kf = &et->pb.fields[0];
		ProtobufCMessage *e;
		json_t *kv;
		int rc;

		if (dec_spend(d, &kp, et->pb.sizeof_message) == -1)
			return -1;
		e = entries[(*n)++] = schema_message_new(et);
		/* Keys are strings in JSON; bool keys are "true", "false". */
		if (kf->type == PROTOBUF_C_TYPE_BOOL &&
		    (strcmp(key, "true") == 0 || strcmp(key, "false") == 0))
			kv = json_boolean(strcmp(key, "true") == 0);
		else
			kv = json_string(key);
		rc = dec_value(
		    d, kf, &et->fields[0], kv, MEMBER(e, kf->offset), &kp, 0);
		json_decref(kv);
		if (rc == -1)
			return -1;
		rc = dec_value(d, &et->pb.fields[1], &et->fields[1], x,
		    MEMBER(e, et->pb.fields[1].offset), &kp, depth);
		if (rc == -1)
			return -1;
		if (rc == 1)
			schema_message_free(entries[--(*n)]);
	}
	map_sort(entries, *n);
	return 0;
}

/* Fills repeated field |f| of |m| from the JSON array |v|. */
static int
dec_list(struct dec *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct schema_field *sf, const json_t *v, const struct jpath *p,
    unsigned depth)
{
	size_t *n = (size_t *)MEMBER(m, f->quantifier_offset);
	size_t size;
	char *arr;
	json_t *x;
	size_t i;
	int rc;

	if (!json_is_array(v))
		return dec_fail(
		    d, p, "expected an array, got %s", json_kind(v));
	size = schema_element_size(f->type);
	if (dec_spend(d, p, json_array_size(v) * size) == -1)
		return -1;
	arr = xcalloc(json_array_size(v), size);
	*(char **)MEMBER(m, f->offset) = arr;
	json_array_foreach(v, i, x)
	{
		struct jpath ip = { p, NULL, i, JPATH_INDEX };

		if (json_is_null(x) && !sf->null_value &&
		    !(f->type == PROTOBUF_C_TYPE_MESSAGE &&
			sf->message->wkt == SCHEMA_WKT_VALUE))
			return dec_fail(d, &ip, "null in a list");
		rc = dec_value(d, f, sf, x, arr + *n * size, &ip, depth);
		/* A message that failed halfway is counted, to be freed. */
		if (rc == 0 ||
		    (rc == -1 && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			*(void **)(arr + *n * size) != NULL))
			(*n)++;
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* Sets field |i| of |m| from JSON value |v| (not null). */
static int
dec_field(struct dec *d, ProtobufCMessage *m, unsigned i, const json_t *v,
    const struct jpath *p, unsigned depth)
{
	const struct schema_type *t = schema_type_of(m->descriptor);
	const ProtobufCFieldDescriptor *f = &t->pb.fields[i];
	const struct schema_field *sf = &t->fields[i];
	void *member = MEMBER(m, f->offset);
	int rc;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return sf->map ? dec_map(d, m, f, sf, v, p, depth)
			       : dec_list(d, m, f, sf, v, p, depth);
	/* The default "" of an implicit string is static: not freed. A
	 * message that failed halfway is kept, for the caller to free. */
	rc = dec_value(d, f, sf, v, member, p, depth);
	if (rc == 1 ||
	    (rc == -1 &&
		(f->type != PROTOBUF_C_TYPE_MESSAGE ||
		    *(void **)member == NULL)))
		return rc == 1 ? 0 : -1;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)MEMBER(m, f->quantifier_offset) = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) = 1;
	return rc;
}

/* google.protobuf.Value from any JSON value. */
static int
dec_kind(struct dec *d, ProtobufCMessage *m, const json_t *v,
    const struct jpath *p, unsigned depth)
{
	const ProtobufCFieldDescriptor *f = m->descriptor->fields;
	unsigned i;

	switch (json_typeof(v)) {
	case JSON_NULL:
		i = 0;
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		i = 1;
		break;
	case JSON_STRING:
		i = 2;
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		i = 3;
		break;
	case JSON_OBJECT:
		i = 4;
		break;
	case JSON_ARRAY:
	default:
		i = 5;
		break;
	}
	if (i == 0) {
		*(uint32_t *)MEMBER(m, f[0].quantifier_offset) = f[0].id;
		return 0;
	}
	return dec_field(d, m, i, v, p, depth);
}

/* Decodes |v| as a message of |t| into |*out| (set even on failure, for
 * the caller to free). */
static int
dec_message(struct dec *d, const struct schema_type *t, const json_t *v,
    ProtobufCMessage **out, const struct jpath *p, unsigned depth)
{
	ProtobufCMessage *m;
	uint8_t *seen, *oneof_seen;
	const char *key;
	json_t *x;
	int rc = 0;

	if (depth > d->lim->max_depth)
		return dec_fail(
		    d, p, "nested deeper than %u", d->lim->max_depth);
	if (dec_spend(d, p, t->pb.sizeof_message) == -1)
		return -1;
	*out = m = schema_message_new(t);
	switch (t->wkt) {
	case SCHEMA_WKT_TIMESTAMP:
	case SCHEMA_WKT_DURATION:
		return dec_time(d, t, v, m, p);
	case SCHEMA_WKT_WRAPPER:
		if (dec_value(d, t->pb.fields, t->fields, v,
			MEMBER(m, t->pb.fields[0].offset), p, depth) == -1)
			return -1;
		return 0;
	case SCHEMA_WKT_STRUCT:
	case SCHEMA_WKT_LIST_VALUE:
		return dec_field(d, m, 0, v, p, depth);
	case SCHEMA_WKT_VALUE:
		return dec_kind(d, m, v, p, depth);
	case SCHEMA_WKT_NONE:
		break;
	}
	if (!json_is_object(v))
		return dec_fail(
		    d, p, "expected an object, got %s", json_kind(v));
	seen = xcalloc(t->pb.n_fields, 1);
	oneof_seen = xcalloc(t->n_oneofs, 1);
	json_object_foreach((json_t *)v, key, x)
	{
		int i = schema_field_find(t, key, strlen(key));
		struct jpath fp = { p, key, 0, JPATH_FIELD };
		const struct schema_field *sf;

		if (i == -1) {
			if (d->lim->ignore_unknown)
				continue;
			rc =
			    dec_fail(d, &fp, "no such field in %s", t->pb.name);
			break;
		}
		sf = &t->fields[i];
		fp.name = t->pb.fields[i].name;
		if (seen[i]) {
			rc = dec_fail(d, &fp, "given twice");
			break;
		}
		seen[i] = 1;
		if (json_is_null(x) && !sf->null_value &&
		    !(sf->message != NULL &&
			sf->message->wkt == SCHEMA_WKT_VALUE &&
			t->pb.fields[i].label != PROTOBUF_C_LABEL_REPEATED))
			continue;
		if (sf->oneof >= 0) {
			if (oneof_seen[sf->oneof]) {
				rc = dec_fail(d, &fp,
				    "a second member of oneof %s",
				    t->oneofs[sf->oneof]);
				break;
			}
			oneof_seen[sf->oneof] = 1;
		}
		if ((rc = dec_field(d, m, (unsigned)i, x, &fp, depth)) == -1)
			break;
	}
	free(seen);
	free(oneof_seen);
	return rc;
}

int
pbjson_decode(const struct schema_type *t, const void *text, size_t len,
    const struct schema_limits *lim, ProtobufCMessage **out, char **err)
{
	struct dec d = { t, lim, 0, err };
	json_error_t je;
	json_t *v;

	*out = NULL;
	*err = NULL;
	if (len > lim->max_size) {
		*err = xasprintf("%s: %zu bytes, more than the limit of %zu",
		    t->pb.name, len, lim->max_size);
		return -1;
	}
	v = json_loadb(
	    text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (v == NULL) {
		*err = xasprintf(
		    "%s: invalid JSON at offset %d (line %d, column %d): %s",
		    t->pb.name, je.position, je.line, je.column, je.text);
		return -1;
	}
	if (dec_message(&d, t, v, out, NULL, 0) == -1) {
		schema_message_free(*out);
		*out = NULL;
		json_decref(v);
		return -1;
	}
	json_decref(v);
	return 0;
}
