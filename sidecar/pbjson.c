#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

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

static json_t *enc_message(const ProtobufCMessage *, char **);

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

/*
 * The decoder. yajl reports the JSON as a stream of events, and the
 * decoder fills the message as they come, with no tree in between: a
 * stack of frames follows the objects and arrays that are open (a
 * message, a map, a list, or a value being skipped), and each value
 * goes where the innermost frame says. yajl checks the grammar; the
 * decoder checks what yajl lets through and the JSON RFC does not (see
 * str_decode() and pbjson_decode()). The first error of content (a
 * value that does not fit its field) stops the decoding, but the rest
 * of the text is still parsed, so that invalid JSON is reported as
 * such, as it was when a whole tree was parsed first; only a limit
 * stops the parser at once (nesting deeper than allowed, or keys kept
 * for duplicates that take more memory than allowed), and then the text
 * after it is not read.
 */

/* The kinds of JSON value. */
enum jtype { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_OBJECT, J_ARRAY };

/* One JSON value as the parser reports it; objects and arrays by their
 * start alone. */
struct jval {
	enum jtype type;
	const char *s; /* J_NUMBER, J_STRING: the text, NUL-terminated */
	size_t len;
	bool b; /* J_BOOL */
};

enum frame_kind {
	FRAME_MESSAGE, /* the object of a message */
	FRAME_MAP, /* the object of a map field (a Struct's included) */
	FRAME_LIST, /* the array of a repeated field (a ListValue's too) */
	FRAME_SKIP, /* an object or array that nothing reads */
};

#define FIELD_NONE (-1) /* no key yet */
#define FIELD_UNKNOWN (-2) /* an unknown key: its value is skipped */

#define KEY_SHOWN 40 /* errors cut a longer key to this many bytes */

/* An open object or array. */
struct frame {
	enum frame_kind kind;
	unsigned depth; /* nesting of the message it fills */
	ProtobufCMessage *m; /* MESSAGE: the message; MAP, LIST: the owner */
	ProtobufCMessage *entry; /* MAP: the current entry */
	int field; /* MESSAGE: the current key's field; MAP, LIST: the field */
	size_t cap; /* MAP, LIST: elements allocated */
	size_t index; /* LIST: the current element */
	size_t marks; /* MESSAGE: where its flags start in dec.marks */
	size_t keys; /* the number of keys in dec.keys when it opened */
	char key[KEY_SHOWN + 4]; /* MAP: the current key, for errors */
};

/* A stack of bytes, in a fixed buffer until it outgrows it. */
struct vec {
	char *p;
	size_t len, cap;
	bool heap;
};

/* One key of an object whose duplicates the decoder looks for itself. */
struct key {
	uint64_t hash;
	size_t off, len; /* in keyset.text */
	size_t next; /* the entry before it in its chain, plus one; 0: none */
};

/*
 * The keys of the open objects that are not messages' (maps, Structs,
 * skipped objects; a map's integer keys by their value, see map_key())
 * and the unknown keys of messages: a hash table of chains whose
 * entries come and go last in, first out, as objects open and close, so
 * that the keys of one object are the last entries of each chain. Keys
 * are hashed with SipHash under a random key, so that no input can make
 * the chains long.
 */
struct keyset {
	struct vec keys; /* struct key */
	struct vec text;
	size_t *heads; /* by hash & mask: the last entry of a chain, plus one */
	size_t mask;
};

struct dec {
	const struct schema_type *top;
	const struct schema_limits *lim;
	const char *text;
	size_t len;
	yajl_handle parser;
	ProtobufCMessage **out;
	size_t memory; /* taken by the message so far, and by |keys| */
	size_t keys_memory; /* the part of |memory| that |keys| takes */
	char *err; /* the first error */
	size_t err_at; /* syntax errors: the byte offset */
	bool failed; /* an error was found: the rest is only parsed */
	bool stop; /* a limit was reached: the parser stops at once */
	bool syntax; /* |err| is a syntax error */
	bool finishing; /* yajl is at the end of the text */
	size_t end; /* where the value ended; 0 before */
	struct vec frames; /* struct frame */
	struct vec marks; /* per MESSAGE frame: fields and oneofs seen */
	struct vec scratch; /* the current string or number */
	struct keyset keys;
	char unknown[KEY_SHOWN + 4]; /* the unknown key skipped, for errors */
	size_t arena_used;
	struct frame frame0[16];
	uint8_t marks0[256];
	char scratch0[256];
	_Alignas(16) char arena[8192]; /* for yajl's own allocations */
};

static int dec_message(struct dec *, const struct schema_type *,
    const struct jval *, ProtobufCMessage **, unsigned);

/* Makes room for |n| more bytes at the end of |v|; returns where they
 * go. */
static void *
vec_room(struct vec *v, size_t n)
{
	size_t cap;
	char *p;

	if (n > v->cap - v->len) {
		cap = v->len + n > 2 * v->cap ? v->len + n : 2 * v->cap;
		p = xmalloc(cap);
		if (v->len > 0)
			memcpy(p, v->p, v->len);
		if (v->heap)
			free(v->p);
		v->p = p;
		v->cap = cap;
		v->heap = true;
	}
	return v->p + v->len;
}

/* Adds |n| zero bytes at the end of |v|; returns them. */
static void *
vec_push(struct vec *v, size_t n)
{
	char *p = vec_room(v, n);

	memset(p, 0, n);
	v->len += n;
	return p;
}

static void
vec_free(struct vec *v)
{
	if (v->heap)
		free(v->p);
}

static uint64_t
rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void
sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13) ^ v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17) ^ v[2];
	v[2] = rotl64(v[2], 32);
}

/* SipHash-1-3 of the |len| bytes at |s| under |k|. */
static uint64_t
siphash(const uint64_t k[2], const char *s, size_t len)
{
	uint64_t v[4] = { 0x736f6d6570736575ULL ^ k[0],
		0x646f72616e646f6dULL ^ k[1], 0x6c7967656e657261ULL ^ k[0],
		0x7465646279746573ULL ^ k[1] };
	uint64_t m, last = (uint64_t)len << 56;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, s + i, 8);
		v[3] ^= m;
		sipround(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)(unsigned char)s[i + j] << (8 * j);
	v[3] ^= last;
	sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint64_t keyset_seed[2];
static pthread_once_t keyset_seeded = PTHREAD_ONCE_INIT;

static void
keyset_seed_init(void)
{
	arc4random_buf(keyset_seed, sizeof keyset_seed);
}

/* Doubles the chains of |ks| (16 to start with). */
static void
keyset_grow(struct keyset *ks)
{
	struct key *k = (struct key *)(void *)ks->keys.p;
	size_t n = ks->keys.len / sizeof *k;

	if (ks->heads == NULL)
		pthread_once(&keyset_seeded, keyset_seed_init);
	free(ks->heads);
	ks->mask = ks->mask == 0 ? 15 : 2 * ks->mask + 1;
	ks->heads = xcalloc(ks->mask + 1, sizeof *ks->heads);
	for (size_t i = 0; i < n; i++) {
		k[i].next = ks->heads[k[i].hash & ks->mask];
		ks->heads[k[i].hash & ks->mask] = i + 1;
	}
}

/* Adds the key |s| (|len| bytes) to the object whose keys are the
 * entries from |from| on. Returns 0, or -1 if that object has it
 * already. */
static int
keyset_add(struct keyset *ks, size_t from, const char *s, size_t len)
{
	struct key *k = (struct key *)(void *)ks->keys.p;
	size_t n = ks->keys.len / sizeof *k, off = ks->text.len;
	uint64_t h;

	if (n >= ks->mask)
		keyset_grow(ks);
	h = siphash(keyset_seed, s, len);
	for (size_t i = ks->heads[h & ks->mask]; i > from; i = k[i - 1].next) {
		if (k[i - 1].hash == h && k[i - 1].len == len &&
		    (len == 0 ||
			memcmp(ks->text.p + k[i - 1].off, s, len) == 0))
			return -1;
	}
	if (len > 0)
		memcpy(vec_push(&ks->text, len), s, len);
	k = vec_push(&ks->keys, sizeof *k);
	k->hash = h;
	k->off = off;
	k->len = len;
	k->next = ks->heads[h & ks->mask];
	ks->heads[h & ks->mask] = n + 1;
	return 0;
}

/* Forgets the keys from entry |to| on. */
static void
keyset_pop(struct keyset *ks, size_t to)
{
	struct key *k = (struct key *)(void *)ks->keys.p;
	size_t n = ks->keys.len / sizeof *k;

	if (n <= to)
		return;
	ks->text.len = k[to].off;
	while (n > to) {
		n--;
		ks->heads[k[n].hash & ks->mask] = k[n].next;
	}
	ks->keys.len = to * sizeof *k;
}

static void
keyset_free(struct keyset *ks)
{
	vec_free(&ks->keys);
	vec_free(&ks->text);
	free(ks->heads);
}

static size_t
frame_count(const struct dec *d)
{
	return d->frames.len / sizeof(struct frame);
}

/* The innermost open frame, or NULL. */
static struct frame *
frame_top(struct dec *d)
{
	if (d->frames.len == 0)
		return NULL;
	return (struct frame *)(void *)(d->frames.p + d->frames.len) - 1;
}

/* Opens a frame of |kind| for |m| (and its field |field|, for maps and
 * lists). */
static void
frame_push(struct dec *d, enum frame_kind kind, unsigned depth,
    ProtobufCMessage *m, int field)
{
	struct frame *fr = vec_push(&d->frames, sizeof *fr);
	const struct schema_type *t;

	fr->kind = kind;
	fr->depth = depth;
	fr->m = m;
	fr->field = field;
	fr->index = SIZE_MAX;
	fr->keys = d->keys.keys.len / sizeof(struct key);
	if (kind == FRAME_MESSAGE) {
		t = schema_type_of(m->descriptor);
		fr->marks = d->marks.len;
		vec_push(&d->marks, t->pb.n_fields + t->n_oneofs);
	}
}

/* Writes the key |s| (|len| bytes) into |out| (|size| bytes) for an
 * error: cut to |size| - 4 bytes and "..." if it is longer, at the start
 * of a character, so that the error stays UTF-8. */
static void
key_cut(char *out, size_t size, const char *s, size_t len)
{
	size_t n = size - 4;

	if (len <= n) {
		memcpy(out, s, len);
		out[len] = '\0';
		return;
	}
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(out, s, n);
	memcpy(out + n, "...", 4);
}

/* Writes the path of the value being decoded, as "items[1].sku" or
 * attrs["k"], into |out|: the last 16 steps of it. */
static void
path_format(const struct dec *d, char *out, size_t size)
{
	const struct frame *base = (const struct frame *)(void *)d->frames.p;
	const struct frame *v[16];
	size_t n = 0, used = 0, i = frame_count(d);
	bool more = false;
	int w = 0;

	for (; i-- > 0;) {
		const struct frame *fr = &base[i];

		if (fr->kind == FRAME_SKIP ||
		    (fr->kind == FRAME_MESSAGE && fr->field == FIELD_NONE))
			continue;
		if (n == 16) {
			more = true;
			break;
		}
		v[n++] = fr;
	}
	out[0] = '\0';
	if (more)
		used = (size_t)snprintf(out, size, "...");
	while (n-- > 0 && used < size) {
		const struct frame *fr = v[n];

		switch (fr->kind) {
		case FRAME_MESSAGE:
			w = snprintf(out + used, size - used, "%s%s",
			    used > 0 && out[used - 1] != '.' ? "." : "",
			    fr->field == FIELD_UNKNOWN
				? d->unknown
				: fr->m->descriptor->fields[fr->field].name);
			break;
		case FRAME_LIST:
			w = snprintf(
			    out + used, size - used, "[%zu]", fr->index);
			break;
		case FRAME_MAP:
		default:
			w = snprintf(
			    out + used, size - used, "[\"%s\"]", fr->key);
			break;
		}
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/* Sets the error for the value being decoded, unless there is one
 * already; returns -1. */
static int __attribute__((format(printf, 2, 3)))
dec_fail(struct dec *d, const char *fmt, ...)
{
	char where[512], what[512];
	va_list ap;

	if (d->failed)
		return -1;
	d->failed = true;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	path_format(d, where, sizeof where);
	if (where[0] == '\0')
		d->err = xasprintf("%s: %s", d->top->pb.name, what);
	else
		d->err =
		    xasprintf("%s: field %s: %s", d->top->pb.name, where, what);
	return -1;
}

/* Sets a syntax error at byte |at|, in place of any error of content;
 * returns 0, which makes yajl stop. */
static int __attribute__((format(printf, 3, 4)))
syntax_fail(struct dec *d, size_t at, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	free(d->err);
	d->err = xstrdup(what);
	d->err_at = at;
	d->failed = true;
	d->syntax = true;
	return 0;
}

/* Fails for nesting deeper than the limit, and stops the parser there:
 * the decoding has failed, and reading on, deeper still, would only
 * spend what the limit is there to bound. Returns -1. */
static int
dec_too_deep(struct dec *d)
{
	d->stop = true;
	return dec_fail(d, "nested deeper than %u", d->lim->max_depth);
}

/* Counts |n| more bytes of the message against the limit. */
static int
dec_spend(struct dec *d, size_t n)
{
	if (n > d->lim->max_memory - d->memory)
		return dec_fail(d, "decoding would take more than %zu bytes",
		    d->lim->max_memory);
	d->memory += n;
	return 0;
}

/* Counts the key set against the memory limit before a key of |len|
 * bytes joins it: by the most it has held, twice over, as its arrays
 * double when they grow. Past the limit duplicates can no longer be
 * looked for, so the parser stops. */
static int
dec_spend_key(struct dec *d, size_t len)
{
	size_t n = d->keys.keys.len / sizeof(struct key) + 1, need;

	/* an entry and a chain's head a key, and the text of the keys */
	need = n * (sizeof(struct key) + sizeof(size_t)) + d->keys.text.len;
	need = 2 * (need + len);
	if (need <= d->keys_memory)
		return 0;
	if (dec_spend(d, need - d->keys_memory) == -1) {
		d->stop = true;
		return -1;
	}
	d->keys_memory = need;
	return 0;
}

/* What |v| is, for errors. */
static const char *
jval_kind(const struct jval *v)
{
	static const char *const kinds[] = { "null", "a boolean", "a number",
		"a string", "an object", "an array" };

	return kinds[v->type];
}

/* Whether the number text |s| is an integer: no fraction, no exponent. */
static bool
integer_syntax(const char *s)
{
	return strpbrk(s, ".eE") == NULL;
}

/*
 * The JSON number |s| as an integer, read exactly from its digits (a
 * double holds 53 bits): its sign into |*neg| and its magnitude into
 * |*mag|. "1e3", "5.0" and "-0" are integers. Returns 0; 1 if it has a
 * fraction that is not zero ("1.5", "1e-400"); 2 if its magnitude is
 * above UINT64_MAX.
 */
static int
integer_read(const char *s, bool *neg, uint64_t *mag)
{
	const char *e, *p;
	int64_t point = 0, exp = 0;
	uint64_t m = 0;
	unsigned digit;

	*neg = *s == '-';
	s += *neg;
	/* Where the point falls among the digits: after the integer part,
	 * moved by the exponent (held short of overflow; no text has that
	 * many digits) and by each leading zero: "0.05e2" is 5. */
	e = s + strcspn(s, "eE");
	for (p = s; p < e && *p != '.'; p++)
		point++;
	if (*e != '\0') {
		p = e + 1 + (e[1] == '-' || e[1] == '+');
		for (; *p != '\0'; p++) {
			if (exp < INT64_C(1) << 50)
				exp = exp * 10 + (*p - '0');
		}
		point += e[1] == '-' ? -exp : exp;
	}
	for (p = s; p < e && (*p == '0' || *p == '.'); p++) {
		if (*p == '0')
			point--;
	}
	if (p == e) {
		*mag = 0;
		return 0;
	}
	if (point <= 0)
		return 1;
	/* The integer part, with zeros past the last digit. */
	for (; point > 0; point--) {
		p += p < e && *p == '.';
		digit = p < e ? (unsigned)(*p++ - '0') : 0;
		if (m > (UINT64_MAX - digit) / 10)
			return 2;
		m = m * 10 + digit;
	}
	/* The fraction. */
	for (; p < e; p++) {
		if (*p != '0' && *p != '.')
			return 1;
	}
	*mag = m;
	return 0;
}

/* Whether |s| is decimal digits, after a '-' if |sign| allows one: an
 * integer as a string. */
static bool
digits_syntax(const char *s, bool sign)
{
	s += sign && *s == '-';
	return *s != '\0' && s[strspn(s, "0123456789")] == '\0';
}

/*
 * The integer of |v|, a JSON number or a string of decimal digits (with
 * a '-' if |sign|), read exactly from its text: its sign into |*neg| and
 * its magnitude into |*mag|. Returns 0, 1 if it is beyond 64 bits, or -1.
 */
static int
dec_integer(
    struct dec *d, const struct jval *v, bool sign, bool *neg, uint64_t *mag)
{
	const char *s = v->s;
	int rc;

	switch (v->type) {
	case J_NUMBER:
		if ((rc = integer_read(s, neg, mag)) == 1)
			return dec_fail(d, "%.40s is not an integer", s);
		return rc == 2;
	case J_STRING:
		if (!digits_syntax(s, sign))
			return dec_fail(d, "\"%.40s\" is not %s integer", s,
			    sign ? "an" : "an unsigned");
		return integer_read(s, neg, mag) == 2;
	default:
		return dec_fail(d, "expected an integer, got %s", jval_kind(v));
	}
}

/* A signed integer in [min, max] from a JSON number or string. */
static int
dec_int(struct dec *d, const struct jval *v, int64_t min, int64_t max,
    const char *type, int64_t *out)
{
	uint64_t mag;
	bool neg;
	int rc;

	if ((rc = dec_integer(d, v, true, &neg, &mag)) == -1)
		return -1;
	/* -(uint64_t)min: the magnitude of min, which -min may not hold. */
	if (rc == 1 || mag > (neg ? -(uint64_t)min : (uint64_t)max))
		return dec_fail(d, "%.40s is out of range for %s", v->s, type);
	*out = neg && mag > 0 ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
	return 0;
}

/* An unsigned integer up to |max| from a JSON number or string: -0 is
 * 0, a '-' in a string is an error. */
static int
dec_uint(struct dec *d, const struct jval *v, uint64_t max, const char *type,
    uint64_t *out)
{
	uint64_t mag;
	bool neg;
	int rc;

	if ((rc = dec_integer(d, v, false, &neg, &mag)) == -1)
		return -1;
	if (rc == 1 || (neg && mag > 0) || mag > max)
		return dec_fail(d, "%.40s is out of range for %s", v->s, type);
	*out = mag;
	return 0;
}

/* The number text |s| as a double, or as a float if |single|: rounded
 * once, by strtof, as a double then cast to a float may round twice.
 * Beyond the type's range, an infinity. */
static double
real_read(const char *s, int single)
{
	return single ? strtof(s, NULL) : strtod(s, NULL);
}

/* A double (or float, |single|, which |*out| then holds exactly) from
 * a number, a numeric string, or "NaN", "Infinity", "-Infinity". */
static int
dec_real(struct dec *d, const struct jval *v, int single, double *out)
{
	const char *s = v->s;

	if (v->type == J_NUMBER) {
		*out = real_read(s, single);
		/* An integer is an integer: -0 is 0, as jansson read it. */
		if (*out == 0 && integer_syntax(s))
			*out = 0;
		if (isinf(*out))
			return dec_fail(d, "%.40s is out of range for %s", s,
			    single ? "float" : "double");
	} else if (v->type == J_STRING) {
		if (strcmp(s, "NaN") == 0)
			*out = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*out = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*out = -INFINITY;
		else if (number_syntax(s))
			*out = real_read(s, single);
		else
			return dec_fail(d, "\"%.40s\" is not a number", s);
		if (isinf(*out) && number_syntax(s))
			return dec_fail(d, "%.40s is out of range for %s", s,
			    single ? "float" : "double");
	} else {
		return dec_fail(d, "expected a number, got %s", jval_kind(v));
	}
	return 0;
}

/* A Timestamp or Duration from its string. */
static int
dec_time(struct dec *d, const struct schema_type *t, const struct jval *v,
    ProtobufCMessage *m)
{
	int timestamp = t->wkt == SCHEMA_WKT_TIMESTAMP;
	int64_t sec;
	int32_t nanos;

	if (v->type != J_STRING)
		return dec_fail(d, "expected %s string, got %s",
		    timestamp ? "an RFC 3339" : "a duration", jval_kind(v));
	if ((timestamp ? pbjson_parse_timestamp : parse_duration)(
		v->s, &sec, &nanos) == -1)
		return dec_fail(d,
		    timestamp ? "\"%.40s\" is not an RFC 3339 time from year 1 "
				"to 9999"
			      : "\"%.40s\" is not a duration such as \"1.5s\" "
				"within 10000 years",
		    v->s);
	*(int64_t *)MEMBER(m, t->pb.fields[0].offset) = sec;
	*(int32_t *)MEMBER(m, t->pb.fields[1].offset) = nanos;
	return 0;
}

/*
 * Decodes |v| as one value of field |f| (|sf|) of a message at |depth|
 * into |out|; an object or array opens a frame. Returns 0, 1 if the
 * value is an unknown enum name to skip (lim->ignore_unknown), or -1.
 */
static int
dec_value(struct dec *d, const ProtobufCFieldDescriptor *f,
    const struct schema_field *sf, const struct jval *v, void *out,
    unsigned depth)
{
	const ProtobufCEnumValue *ev;
	int64_t i;
	uint64_t u;
	double r;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (dec_int(d, v, INT32_MIN, INT32_MAX, "int32", &i) == -1)
			return -1;
		*(int32_t *)out = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return dec_int(
		    d, v, INT64_MIN, INT64_MAX, "int64", (int64_t *)out);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (dec_uint(d, v, UINT32_MAX, "uint32", &u) == -1)
			return -1;
		*(uint32_t *)out = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return dec_uint(d, v, UINT64_MAX, "uint64", (uint64_t *)out);
	case PROTOBUF_C_TYPE_FLOAT:
		if (dec_real(d, v, 1, &r) == -1)
			return -1;
		*(float *)out = (float)r;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return dec_real(d, v, 0, (double *)out);
	case PROTOBUF_C_TYPE_BOOL:
		if (v->type != J_BOOL)
			return dec_fail(
			    d, "expected true or false, got %s", jval_kind(v));
		*(protobuf_c_boolean *)out = v->b;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		if (sf->null_value && v->type == J_NULL) {
			*(int32_t *)out = 0;
			return 0;
		}
		if (v->type == J_STRING) {
			ev = protobuf_c_enum_descriptor_get_value_by_name(
			    f->descriptor, v->s);
			if (ev != NULL) {
				*(int32_t *)out = ev->value;
				return 0;
			}
			if (d->lim->ignore_unknown)
				return 1;
			return dec_fail(d, "\"%.40s\" is not a value of %s",
			    v->s,
			    ((const ProtobufCEnumDescriptor *)f->descriptor)
				->name);
		}
		if (v->type != J_NUMBER || !integer_syntax(v->s))
			return dec_fail(d,
			    "expected an enum name or number, got %s",
			    jval_kind(v));
		if (dec_int(d, v, INT32_MIN, INT32_MAX, "an enum", &i) == -1)
			return -1;
		*(int32_t *)out = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		if (v->type != J_STRING)
			return dec_fail(
			    d, "expected a string, got %s", jval_kind(v));
		if (dec_spend(d, v->len + 1) == -1)
			return -1;
		*(char **)out = xstrndup(v->s, v->len);
		return 0;
	case PROTOBUF_C_TYPE_BYTES:
		if (v->type == J_STRING && dec_spend(d, v->len) == -1)
			return -1;
		if (v->type != J_STRING ||
		    base64_decode(v->s, v->len,
			&((ProtobufCBinaryData *)out)->data,
			&((ProtobufCBinaryData *)out)->len) == -1)
			return dec_fail(d, "expected base64, got %s",
			    v->type == J_STRING ? "other text" : jval_kind(v));
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		return dec_message(
		    d, sf->message, v, (ProtobufCMessage **)out, depth + 1);
	}
}

/* Sets field |i| of |m|, a message at |depth|, from |v| (not a null
 * that means unset); a map or list opens a frame. */
static int
dec_field(struct dec *d, ProtobufCMessage *m, unsigned i, const struct jval *v,
    unsigned depth)
{
	const struct schema_type *t = schema_type_of(m->descriptor);
	const ProtobufCFieldDescriptor *f = &t->pb.fields[i];
	const struct schema_field *sf = &t->fields[i];
	void *member = MEMBER(m, f->offset);
	int rc;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (v->type != (sf->map ? J_OBJECT : J_ARRAY))
			return dec_fail(d, "expected %s, got %s",
			    sf->map ? "an object" : "an array", jval_kind(v));
		frame_push(
		    d, sf->map ? FRAME_MAP : FRAME_LIST, depth, m, (int)i);
		return 0;
	}
	/* The default "" of an implicit string is static: not freed. A
	 * message that failed halfway, or is still being filled, is kept,
	 * for schema_message_free() to find. */
	rc = dec_value(d, f, sf, v, member, depth);
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
dec_kind(
    struct dec *d, ProtobufCMessage *m, const struct jval *v, unsigned depth)
{
	/* The fields in number order: null_value, number_value,
	 * string_value, bool_value, struct_value, list_value. */
	static const unsigned field_of[] = { [J_NULL] = 0,
		[J_NUMBER] = 1,
		[J_STRING] = 2,
		[J_BOOL] = 3,
		[J_OBJECT] = 4,
		[J_ARRAY] = 5 };
	const ProtobufCFieldDescriptor *f = m->descriptor->fields;

	if (v->type == J_NULL) {
		*(uint32_t *)MEMBER(m, f[0].quantifier_offset) = f[0].id;
		return 0;
	}
	return dec_field(d, m, field_of[v->type], v, depth);
}

/* Decodes |v| as a message of |t| at |depth| into |*out| (set even on
 * failure, for the caller to free); an object opens a frame. */
static int
dec_message(struct dec *d, const struct schema_type *t, const struct jval *v,
    ProtobufCMessage **out, unsigned depth)
{
	ProtobufCMessage *m;

	if (depth > d->lim->max_depth)
		return dec_too_deep(d);
	if (dec_spend(d, t->pb.sizeof_message) == -1)
		return -1;
	*out = m = schema_message_new(t);
	switch (t->wkt) {
	case SCHEMA_WKT_TIMESTAMP:
	case SCHEMA_WKT_DURATION:
		return dec_time(d, t, v, m);
	case SCHEMA_WKT_WRAPPER:
		if (dec_value(d, t->pb.fields, t->fields, v,
			MEMBER(m, t->pb.fields[0].offset), depth) == -1)
			return -1;
		return 0;
	case SCHEMA_WKT_STRUCT:
	case SCHEMA_WKT_LIST_VALUE:
		return dec_field(d, m, 0, v, depth);
	case SCHEMA_WKT_VALUE:
		return dec_kind(d, m, v, depth);
	case SCHEMA_WKT_NONE:
		break;
	}
	if (v->type != J_OBJECT)
		return dec_fail(d, "expected an object, got %s", jval_kind(v));
	frame_push(d, FRAME_MESSAGE, depth, m, FIELD_NONE);
	return 0;
}

/* A value that nothing reads: only its numbers are checked, as a
 * number too large for a double is refused wherever it is. */
static int
dec_skip(struct dec *d, const struct jval *v)
{
	if (v->type == J_NUMBER && isinf(strtod(v->s, NULL)))
		return dec_fail(d, "%.40s is out of range for double", v->s);
	return 0;
}

/* Whether null is a value of field |f| (|sf|): of a NullValue, whose
 * only value it is, or of a google.protobuf.Value. */
static bool
null_is_value(const ProtobufCFieldDescriptor *f, const struct schema_field *sf)
{
	return sf->null_value ||
	    (f->type == PROTOBUF_C_TYPE_MESSAGE &&
		sf->message->wkt == SCHEMA_WKT_VALUE);
}

/* The value of the current key of the message of |fr|. */
static int
dec_member(struct dec *d, struct frame *fr, const struct jval *v)
{
	ProtobufCMessage *m = fr->m;
	const struct schema_type *t = schema_type_of(m->descriptor);
	const ProtobufCFieldDescriptor *f;
	const struct schema_field *sf;
	uint8_t *oneof_seen;
	int i = fr->field;

	if (i == FIELD_UNKNOWN)
		return dec_skip(d, v);
	f = &t->pb.fields[i];
	sf = &t->fields[i];
	/* null is unset (for a repeated field, the empty list), but where
	 * it is a value of the field's type. */
	if (v->type == J_NULL &&
	    (f->label == PROTOBUF_C_LABEL_REPEATED || !null_is_value(f, sf)))
		return 0;
	if (sf->oneof >= 0) {
		oneof_seen = (uint8_t *)d->marks.p + fr->marks +
		    t->pb.n_fields + sf->oneof;
		if (*oneof_seen)
			return dec_fail(d, "a second member of oneof %s",
			    t->oneofs[sf->oneof]);
		*oneof_seen = 1;
	}
	return dec_field(d, m, (unsigned)i, v, fr->depth);
}

/* Makes room for one more element in the array of field |f| of |m|,
 * which |fr| fills; returns it. */
static void *
dec_grow(struct dec *d, struct frame *fr, const ProtobufCFieldDescriptor *f,
    size_t size)
{
	size_t n = *(size_t *)MEMBER(fr->m, f->quantifier_offset);
	char **arr = (char **)MEMBER(fr->m, f->offset);
	size_t cap = fr->cap == 0 ? 4 : 2 * fr->cap;

	if (n < fr->cap)
		return *arr + n * size;
	/* Counted as allocated, so that the limit bounds the memory. */
	if (dec_spend(d, (cap - fr->cap) * size) == -1)
		return NULL;
	*arr = xreallocarray(*arr, cap, size);
	memset(*arr + n * size, 0, (cap - n) * size);
	fr->cap = cap;
	return *arr + n * size;
}

/* Cuts the array of field |f| that |fr| has filled to its length, now
 * that it is finished, and counts it by that length: the room it grew
 * for and no longer takes is there for the rest of the message. */
static void
dec_trim(struct dec *d, struct frame *fr, const ProtobufCFieldDescriptor *f)
{
	size_t n = *(size_t *)MEMBER(fr->m, f->quantifier_offset);
	size_t size = schema_element_size(f->type);
	void **arr = (void **)MEMBER(fr->m, f->offset);

	if (n == fr->cap)
		return;
	d->memory -= (fr->cap - n) * size;
	if (n == 0) {
		free(*arr);
		*arr = NULL;
	} else {
		*arr = xreallocarray(*arr, n, size);
	}
	fr->cap = n;
}

/* The next element of the list of |fr|. */
static int
dec_element(struct dec *d, struct frame *fr, const struct jval *v)
{
	ProtobufCMessage *m = fr->m;
	const struct schema_type *t = schema_type_of(m->descriptor);
	const ProtobufCFieldDescriptor *f = &t->pb.fields[fr->field];
	const struct schema_field *sf = &t->fields[fr->field];
	size_t *n = (size_t *)MEMBER(m, f->quantifier_offset);
	void *slot;
	int rc;

	fr->index++;
	if (v->type == J_NULL && !null_is_value(f, sf))
		return dec_fail(d, "null in a list");
	if ((slot = dec_grow(d, fr, f, schema_element_size(f->type))) == NULL)
		return -1;
	rc = dec_value(d, f, sf, v, slot, fr->depth);
	/* A message that failed halfway, or is still being filled, is
	 * counted, to be freed. */
	if (rc == 0 ||
	    (rc == -1 && f->type == PROTOBUF_C_TYPE_MESSAGE &&
		*(void **)slot != NULL))
		(*n)++;
	return rc == 1 ? 0 : rc;
}

/* A key of the map of |fr|: a new entry, and its key from the text. */
static int
dec_entry_key(struct dec *d, struct frame *fr, const struct jval *k)
{
	const ProtobufCFieldDescriptor *f =
	    &fr->m->descriptor->fields[fr->field];
	const struct schema_type *et =
	    schema_type_of(fr->m->descriptor)->fields[fr->field].message;
	const ProtobufCFieldDescriptor *kf = &et->pb.fields[0];
	size_t *n = (size_t *)MEMBER(fr->m, f->quantifier_offset);
	ProtobufCMessage **slot, *e;
	struct jval kv = *k;

	key_cut(fr->key, sizeof fr->key, k->s, k->len);
	if ((slot = dec_grow(d, fr, f, sizeof e)) == NULL ||
	    dec_spend(d, et->pb.sizeof_message) == -1)
		return -1;
	*slot = fr->entry = e = schema_message_new(et);
	(*n)++;
	/* Keys are strings in JSON; bool keys are "true", "false". */
	if (kf->type == PROTOBUF_C_TYPE_BOOL &&
	    (strcmp(k->s, "true") == 0 || strcmp(k->s, "false") == 0)) {
		kv.type = J_BOOL;
		kv.b = strcmp(k->s, "true") == 0;
	}
	return dec_value(d, kf, &et->fields[0], &kv, MEMBER(e, kf->offset), 0);
}

/* The value of the current entry of the map of |fr|. */
static int
dec_entry_value(struct dec *d, struct frame *fr, const struct jval *v)
{
	const ProtobufCFieldDescriptor *f =
	    &fr->m->descriptor->fields[fr->field];
	const struct schema_type *et = schema_type_of(fr->entry->descriptor);
	size_t *n = (size_t *)MEMBER(fr->m, f->quantifier_offset);
	int rc;

	rc = dec_value(d, &et->pb.fields[1], &et->fields[1], v,
	    MEMBER(fr->entry, et->pb.fields[1].offset), fr->depth);
	if (rc == 1) {
		/* An unknown enum name: the entry goes. */
		schema_message_free(fr->entry);
		(*n)--;
		return 0;
	}
	return rc;
}

/* A key |k| that its object has already: a syntax error. Returns 0. */
static int
dec_duplicate(struct dec *d, const struct jval *k)
{
	char shown[KEY_SHOWN + 4];

	key_cut(shown, sizeof shown, k->s, k->len);
	return syntax_fail(d, yajl_get_bytes_consumed(d->parser),
	    "duplicate object key \"%s\"", shown);
}

/*
 * The key |k| of the map of |fr| as its duplicates are looked for, in
 * |*len| bytes: an integer key in its shortest decimal, written in |buf|,
 * so that "1" and "01", "0" and "-0" are one key as they are one
 * integer; any other key as it is.
 */
static const char *
map_key(const struct frame *fr, const struct jval *k, char buf[24], size_t *len)
{
	const struct schema_type *et =
	    schema_type_of(fr->m->descriptor)->fields[fr->field].message;
	ProtobufCType type = et->pb.fields[0].type;
	bool sign = type != PROTOBUF_C_TYPE_UINT32 &&
	    type != PROTOBUF_C_TYPE_FIXED32 && type != PROTOBUF_C_TYPE_UINT64 &&
	    type != PROTOBUF_C_TYPE_FIXED64;
	uint64_t mag;
	bool neg;

	*len = k->len;
	if (type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_BOOL ||
	    !digits_syntax(k->s, sign) || integer_read(k->s, &neg, &mag) != 0)
		return k->s;
	*len = (size_t)snprintf(
	    buf, 24, "%s%" PRIu64, neg && mag > 0 ? "-" : "", mag);
	return buf;
}

/* The key |k| of the object of the innermost frame: a field of a
 * message, a map entry, or a key of an object skipped. Duplicate keys
 * are syntax errors, found even after an error of content. Returns 1 to
 * go on, 0 to stop the parser. */
static int
dec_key(struct dec *d, const struct jval *k)
{
	struct frame *fr = frame_top(d);
	const struct schema_type *t = NULL;
	uint8_t *seen, spelling;
	const char *key = k->s;
	size_t len = k->len;
	char buf[24];
	int i = -1;

	if (fr->kind == FRAME_MESSAGE) {
		t = schema_type_of(fr->m->descriptor);
		i = schema_field_find(t, k->s, k->len);
	} else if (fr->kind == FRAME_MAP) {
		key = map_key(fr, k, buf, &len);
	}
	if (i == -1) {
		if (dec_spend_key(d, len) == -1)
			return 0;
		if (keyset_add(&d->keys, fr->keys, key, len) == -1)
			return dec_duplicate(d, k);
		if (d->failed || fr->kind == FRAME_SKIP)
			return 1;
		if (fr->kind == FRAME_MAP) {
			dec_entry_key(d, fr, k);
			return 1;
		}
		/* An unknown field: its value is skipped, or an error. Its
		 * name is not quoted in paths, but for "". */
		fr->field = FIELD_UNKNOWN;
		if (k->len == 0)
			strcpy(d->unknown, "\"\"");
		else
			key_cut(d->unknown, sizeof d->unknown, k->s, k->len);
		if (!d->lim->ignore_unknown)
			dec_fail(d, "no such field in %s", t->pb.name);
		return 1;
	}
	/* A field by one name twice is a duplicate key; by its JSON name
	 * and its .proto name, a field given twice. */
	seen = (uint8_t *)d->marks.p + fr->marks + i;
	spelling = strcmp(t->fields[i].json_name, k->s) == 0 ? 1 : 2;
	if (*seen & spelling)
		return dec_duplicate(d, k);
	fr->field = i;
	if (*seen != 0)
		dec_fail(d, "given twice");
	*seen |= spelling;
	return 1;
}

/* Notes where the value of the text ended. */
static void
dec_ended(struct dec *d)
{
	d->end = d->finishing ? d->len : yajl_get_bytes_consumed(d->parser);
}

/* The next value, wherever the innermost frame puts it. */
static int
dec_next(struct dec *d, const struct jval *v)
{
	struct frame *fr = frame_top(d);

	if (fr == NULL)
		return dec_message(d, d->top, v, d->out, 0);
	switch (fr->kind) {
	case FRAME_MESSAGE:
		return dec_member(d, fr, v);
	case FRAME_LIST:
		return dec_element(d, fr, v);
	case FRAME_MAP:
		return dec_entry_value(d, fr, v);
	case FRAME_SKIP:
	default:
		return dec_skip(d, v);
	}
}

/*
 * One value from the parser. An object or array that opened no frame
 * (an unknown field's, or one after an error) opens a frame to skip it,
 * so that its keys are still checked; one deeper than the limit stops
 * the parser. Returns 1 to go on, 0 to stop the parser.
 */
static int
dec_event(struct dec *d, const struct jval *v)
{
	size_t n = frame_count(d);
	struct frame *fr;
	unsigned depth;

	if (!d->failed)
		dec_next(d, v);
	if (d->stop)
		return 0;
	if (v->type != J_OBJECT && v->type != J_ARRAY) {
		if (frame_count(d) == 0)
			dec_ended(d);
		return 1;
	}
	if (frame_count(d) > n)
		return 1;
	fr = frame_top(d);
	depth = fr != NULL ? fr->depth + 1 : 1;
	if (depth > d->lim->max_depth) {
		dec_too_deep(d);
		return 0;
	}
	frame_push(d, FRAME_SKIP, depth, NULL, FIELD_NONE);
	return 1;
}

/* The end of the object or array of the innermost frame. */
static int
dec_end(struct dec *d)
{
	struct frame *fr = frame_top(d);
	const ProtobufCFieldDescriptor *f;

	if ((fr->kind == FRAME_LIST || fr->kind == FRAME_MAP) && !d->failed) {
		f = &fr->m->descriptor->fields[fr->field];
		dec_trim(d, fr, f);
		if (fr->kind == FRAME_MAP)
			map_sort(
			    *(ProtobufCMessage ***)MEMBER(fr->m, f->offset),
			    *(size_t *)MEMBER(fr->m, f->quantifier_offset));
	}
	if (fr->kind == FRAME_MESSAGE)
		d->marks.len = fr->marks;
	keyset_pop(&d->keys, fr->keys);
	d->frames.len -= sizeof *fr;
	if (d->frames.len == 0)
		dec_ended(d);
	return 1;
}

/* The length of the strict UTF-8 sequence at |s| (|n| bytes left): no
 * overlong forms, surrogates or code points above U+10FFFF; 0 if there
 * is none. */
static size_t
utf8_length(const unsigned char *s, size_t n)
{
	/* RFC 3629's table: by lead byte, the length and the range of the
	 * second byte. */
	static const struct {
		unsigned char first, last, len, lo, hi;
	} forms[] = { { 0xc2, 0xdf, 2, 0x80, 0xbf },
		{ 0xe0, 0xe0, 3, 0xa0, 0xbf }, { 0xe1, 0xec, 3, 0x80, 0xbf },
		{ 0xed, 0xed, 3, 0x80, 0x9f }, { 0xee, 0xef, 3, 0x80, 0xbf },
		{ 0xf0, 0xf0, 4, 0x90, 0xbf }, { 0xf1, 0xf3, 4, 0x80, 0xbf },
		{ 0xf4, 0xf4, 4, 0x80, 0x8f } };

	for (size_t k = 0; k < sizeof forms / sizeof *forms; k++) {
		if (s[0] < forms[k].first || s[0] > forms[k].last)
			continue;
		if (n < forms[k].len || s[1] < forms[k].lo ||
		    s[1] > forms[k].hi)
			return 0;
		for (size_t i = 2; i < forms[k].len; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
		}
		return forms[k].len;
	}
	return 0;
}

/* The value of the 4 hex digits at |s|, which yajl has checked. */
static unsigned
hex4(const unsigned char *s)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++)
		v = v * 16 +
		    (s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10);
	return v;
}

/* Writes code point |cp| as UTF-8 at |o|; returns the bytes written. */
static size_t
utf8_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decodes the |len| bytes between the quotes of a string token, at byte
 * |at| of the text and ending at byte |end|, into d->scratch, checking
 * what yajl does not: strict UTF-8, escapes of surrogates that pair up,
 * no \u0000 (C strings cannot hold it). Returns 0, or -1 after a syntax
 * error (at the bad byte, or at the end of the token for escapes, as
 * jansson reported them).
 */
static int
str_read(struct dec *d, const unsigned char *raw, size_t len, size_t at,
    size_t end, struct jval *v)
{
	char *o, *start;
	unsigned cp, lo;
	size_t i = 0, n;

	d->scratch.len = 0;
	start = o = vec_room(&d->scratch, len + 1);
	while (i < len) {
		for (n = i; n < len && raw[n] < 0x80 && raw[n] != '\\'; n++)
			;
		memcpy(o, raw + i, n - i);
		o += n - i;
		if ((i = n) == len)
			break;
		if (raw[i] != '\\') {
			if ((n = utf8_length(raw + i, len - i)) == 0) {
				syntax_fail(d, at + i,
				    "unable to decode byte 0x%x", raw[i]);
				return -1;
			}
			memcpy(o, raw + i, n);
			o += n;
			i += n;
			continue;
		}
		i += 2;
		switch (raw[i - 1]) {
		case 'b':
			*o++ = '\b';
			continue;
		case 'f':
			*o++ = '\f';
			continue;
		case 'n':
			*o++ = '\n';
			continue;
		case 'r':
			*o++ = '\r';
			continue;
		case 't':
			*o++ = '\t';
			continue;
		case 'u':
			break;
		default: /* " \ / */
			*o++ = (char)raw[i - 1];
			continue;
		}
		cp = hex4(raw + i);
		i += 4;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (i + 6 > len || raw[i] != '\\' ||
			    raw[i + 1] != 'u') {
				syntax_fail(
				    d, end, "invalid Unicode '\\u%04X'", cp);
				return -1;
			}
			lo = hex4(raw + i + 2);
			if (lo < 0xdc00 || lo > 0xdfff) {
				syntax_fail(d, end,
				    "invalid Unicode '\\u%04X\\u%04X'", cp, lo);
				return -1;
			}
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 6;
		} else if (cp >= 0xdc00 && cp <= 0xdfff) {
			syntax_fail(d, end, "invalid Unicode '\\u%04X'", cp);
			return -1;
		} else if (cp == 0) {
			syntax_fail(d, end, "\\u0000 is not allowed");
			return -1;
		}
		o += utf8_put(o, cp);
	}
	*o = '\0';
	v->type = J_STRING;
	v->s = start;
	v->len = (size_t)(o - start);
	return 0;
}

/*
 * The string that yajl reports as the |len| bytes at |s|. Without
 * escapes, that is the text itself; with them, yajl's own decoding,
 * which turns a lone high surrogate into '?' and pairs it with whatever
 * escape follows: the token is then read again from the text, where it
 * ends at the parser's offset and starts at the last quote before it
 * that no backslash escapes.
 */
static int
str_decode(struct dec *d, const unsigned char *s, size_t len, struct jval *v)
{
	const unsigned char *text = (const unsigned char *)d->text;
	uintptr_t p = (uintptr_t)s, base = (uintptr_t)text;
	size_t at, end, b;

	if (p >= base && p - base <= d->len && len <= d->len - (p - base)) {
		at = p - base;
		return str_read(d, s, len, at, at + len + 1, v);
	}
	end = yajl_get_bytes_consumed(d->parser);
	if (d->finishing || end < 2 || end > d->len || text[end - 1] != '"') {
		syntax_fail(d, end, "string not found in the text");
		return -1;
	}
	for (at = end - 1; at-- > 0;) {
		if (text[at] != '"')
			continue;
		for (b = 0; b < at && text[at - 1 - b] == '\\'; b++)
			;
		if (b % 2 == 0)
			break;
	}
	at++;
	return str_read(d, text + at, end - 1 - at, at, end, v);
}

/* An event that is its kind alone. */
static int
on_kind(void *ctx, enum jtype type)
{
	struct jval v = { .type = type };

	return dec_event(ctx, &v);
}

static int
on_null(void *ctx)
{
	return on_kind(ctx, J_NULL);
}

static int
on_start_map(void *ctx)
{
	return on_kind(ctx, J_OBJECT);
}

static int
on_start_array(void *ctx)
{
	return on_kind(ctx, J_ARRAY);
}

static int
on_boolean(void *ctx, int b)
{
	struct jval v = { .type = J_BOOL, .b = b != 0 };

	return dec_event(ctx, &v);
}

static int
on_number(void *ctx, const char *s, size_t len)
{
	struct dec *d = ctx;
	struct jval v = { .type = J_NUMBER, .len = len };
	char *p;

	d->scratch.len = 0;
	p = vec_room(&d->scratch, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	v.s = p;
	return dec_event(d, &v);
}

/* A string, as a value or as a key. */
static int
on_text(void *ctx, const unsigned char *s, size_t len, bool key)
{
	struct jval v;

	if (str_decode(ctx, s, len, &v) == -1)
		return 0;
	return key ? dec_key(ctx, &v) : dec_event(ctx, &v);
}

static int
on_string(void *ctx, const unsigned char *s, size_t len)
{
	return on_text(ctx, s, len, false);
}

static int
on_map_key(void *ctx, const unsigned char *s, size_t len)
{
	return on_text(ctx, s, len, true);
}

static int
on_end(void *ctx)
{
	return dec_end(ctx);
}

/* Takes yajl's error, at the offset where it stopped. */
static void
dec_yajl_error(struct dec *d)
{
	unsigned char *msg = yajl_get_error(
	    d->parser, 0, (const unsigned char *)d->text, d->len);
	size_t n = msg != NULL ? strcspn((char *)msg, "\n") : 0;

	syntax_fail(d,
	    d->finishing ? d->len : yajl_get_bytes_consumed(d->parser), "%.*s",
	    (int)n, msg != NULL ? (char *)msg : "");
	yajl_free_error(d->parser, msg);
}

/* The offset of the first byte from |i| to |n| in |s| that is not JSON
 * white space; |n| if there is none. */
static size_t
not_space(const char *s, size_t i, size_t n)
{
	while (i < n &&
	    (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The offset of the first \v or \f in the first |n| bytes of |s|, which
 * yajl takes for white space and JSON does not; |n| if there is none. */
static size_t
bad_space(const char *s, size_t n)
{
	const char *v, *f;

	if (n == 0)
		return 0;
	v = memchr(s, '\v', n);
	f = memchr(s, '\f', n);
	if (v == NULL && f == NULL)
		return n;
	if (v == NULL || (f != NULL && f < v))
		v = f;
	return (size_t)(v - s);
}

/*
 * yajl's own allocations come from the arena in the decoder while it
 * lasts: its handle, lexer and stacks, and its two 2 KiB buffers, the
 * lexer's, which yajl_complete_parse() uses on every decoding, and the one
 * for decoded strings, once a string has an escape. From the heap, blocks
 * that large made malloc consolidate its free lists each time. Each block
 * starts with its size, for yalloc_realloc(); a block that grows leaves
 * the old one behind. What does not fit (a token longer than the lexer's
 * buffer, a deeply nested value) comes from the heap.
 */
static void *
yalloc_malloc(void *ctx, size_t n)
{
	struct dec *d = ctx;
	size_t need = 16 + ((n + 15) & ~(size_t)15);
	char *p;

	if (n > sizeof d->arena || need > sizeof d->arena - d->arena_used)
		return xmalloc(n);
	p = d->arena + d->arena_used;
	memcpy(p, &n, sizeof n);
	d->arena_used += need;
	return p + 16;
}

static bool
yalloc_owns(const struct dec *d, const void *p)
{
	return (uintptr_t)p >= (uintptr_t)d->arena &&
	    (uintptr_t)p < (uintptr_t)d->arena + sizeof d->arena;
}

static void *
yalloc_realloc(void *ctx, void *p, size_t n)
{
	size_t was;
	void *q;

	if (p == NULL)
		return yalloc_malloc(ctx, n);
	if (!yalloc_owns(ctx, p))
		return xreallocarray(p, n, 1);
	memcpy(&was, (char *)p - 16, sizeof was);
	if (n <= was)
		return p;
	q = yalloc_malloc(ctx, n);
	memcpy(q, p, was);
	return q;
}

static void
yalloc_free(void *ctx, void *p)
{
	if (!yalloc_owns(ctx, p))
		free(p);
}

/* The error of |d| as pbjson_decode() returns it. */
static char *
dec_error(const struct dec *d)
{
	size_t line = 1, column = 0;

	if (!d->syntax)
		return xstrdup(d->err);
	for (size_t i = 0; i < d->err_at; i++) {
		if (d->text[i] == '\n') {
			line++;
			column = 0;
		} else if (((unsigned char)d->text[i] & 0xc0) != 0x80) {
			column++;
		}
	}
	return xasprintf("%s: invalid JSON at offset %zu (line %zu, column "
			 "%zu): %s",
	    d->top->pb.name, d->err_at, line, column, d->err);
}

int
pbjson_decode(const struct schema_type *t, const void *text, size_t len,
    const struct schema_limits *lim, ProtobufCMessage **out, char **err)
{
	static const yajl_callbacks callbacks = { on_null, on_boolean, NULL,
		NULL, on_number, on_string, on_start_map, on_map_key, on_end,
		on_start_array, on_end };
	struct dec d;
	yajl_alloc_funcs alloc = { yalloc_malloc, yalloc_realloc, yalloc_free,
		&d };
	yajl_status st;
	size_t ws, upto;

	*out = NULL;
	*err = NULL;
	if (len > lim->max_size) {
		*err = xasprintf("%s: %zu bytes, more than the limit of %zu",
		    t->pb.name, len, lim->max_size);
		return -1;
	}
	/* The buffers at the end need no zeroing. */
	memset(&d, 0, offsetof(struct dec, frame0));
	d.top = t;
	d.lim = lim;
	d.text = text;
	d.len = len;
	d.out = out;
	d.frames = (struct vec){ (char *)d.frame0, 0, sizeof d.frame0, false };
	d.marks = (struct vec){ (char *)d.marks0, 0, sizeof d.marks0, false };
	d.scratch = (struct vec){ d.scratch0, 0, sizeof d.scratch0, false };
	if ((d.parser = yajl_alloc(&callbacks, &alloc, &d)) == NULL)
		fatalx("out of memory");
	yajl_config(d.parser, yajl_dont_validate_strings, 1);
	st = yajl_parse(d.parser, text, len);
	if (st == yajl_status_ok) {
		d.finishing = true;
		st = yajl_complete_parse(d.parser);
	}
	if (st == yajl_status_error)
		dec_yajl_error(&d);
	/* What the parser read: the text, unless it stopped early. */
	if (d.syntax)
		upto = d.err_at;
	else if (d.stop)
		upto = yajl_get_bytes_consumed(d.parser);
	else
		upto = len;
	if ((ws = bad_space(text, upto)) < upto)
		syntax_fail(&d, ws, "byte 0x%02x is not JSON white space",
		    ((const unsigned char *)text)[ws]);
	else if (st == yajl_status_ok &&
	    (ws = not_space(text, d.end, len)) < len)
		/* yajl lets a string that never ends follow the value. */
		syntax_fail(&d, ws, "trailing garbage");
	if (d.err != NULL) {
		*err = dec_error(&d);
		schema_message_free(*out);
		*out = NULL;
	}
	yajl_free(d.parser);
	vec_free(&d.frames);
	vec_free(&d.marks);
	vec_free(&d.scratch);
	keyset_free(&d.keys);
	free(d.err);
	return *err != NULL ? -1 : 0;
}
