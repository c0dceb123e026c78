/*
 * Mappings between message types: compiled from YAML into rules whose
 * paths are arrays of field descriptors, then applied member by member
 * on protobuf-c messages. Messages of the same type are copied whole;
 * messages and enums of different types that a copy meets are mapped by
 * name, through implicit mappings compiled on demand (and shared, so
 * recursive types terminate).
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "mapping.h"
#include "schema-t.h"
#include "schema.h"
#include "xmalloc.h"

#define MEMBER(m, off) ((char *)(m) + (off))
#define PATH_DEPTH_MAX 16
#define RULES_MAX 4096
#define APPLY_DEPTH_MAX 100
#define MAPPING_FILE_MAX (1024 * 1024)
#define CONVERTERS_MAX 32
#define PARAMS_MAX 16

struct path {
	const ProtobufCFieldDescriptor *f[PATH_DEPTH_MAX];
	unsigned n;
	char *text;
};

enum rule_kind {
	RULE_COPY, /* from -> to, same type (or mapped by name) */
	RULE_CONVERT, /* from -> to through a converter */
	RULE_DEFAULT, /* a constant -> to */
	RULE_EXPECT, /* from must hold a constant; nothing written */
};

struct rule {
	enum rule_kind kind;
	struct path from, to;
	bool required;
	const struct mapping_converter *conv;
	void *state;
	struct mapping_value value; /* DEFAULT, EXPECT */
	char *value_text;
	/* COPY of enums of different types: target number by source
	 * value index, when has[index]. */
	int32_t *enum_map;
	bool *enum_has;
	/* COPY of messages of different types. */
	const struct mapping *nested;
	int line;
};

struct mapping {
	char *name;
	const struct schema_type *from, *to;
	struct rule *rules;
	size_t n, cap;
	/* Text paths read and written, for mapping_report(). */
	char **used_from, **used_to;
	size_t n_from, n_to;
	/* The top mapping owns the nested ones: those its file declares
	 * under types, then the implicit ones it needed. */
	struct mapping **nested;
	size_t n_nested;
	struct mapping *top;
	bool used; /* some rule copies a field through it */
};

/* Built-in converters, then registered ones. */
static const struct mapping_converter *registered[CONVERTERS_MAX];
static size_t n_registered;
static const struct mapping_converter *const builtins[];

static int __attribute__((format(printf, 2, 3)))
fail(char **err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	free(*err);
	*err = s;
	return -1;
}

/* Converters. */

static const char *
arg_get(const struct mapping_args *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->keys[i], key) == 0)
			return a->values[i];
	}
	return NULL;
}

/* Fails on any parameter not in |known| (NULL-terminated). */
static int
args_known(const struct mapping_args *a, const char *const *known, char **err)
{
	for (size_t i = 0; i < a->n; i++) {
		size_t k;

		for (k = 0; known[k] != NULL; k++) {
			if (strcmp(a->keys[i], known[k]) == 0)
				break;
		}
		if (known[k] == NULL)
			return fail(err, "unknown parameter %s", a->keys[i]);
	}
	return 0;
}

static int
parse_int(const char *s, int64_t min, int64_t max, int64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || *v < min || *v > max
	    ? -1
	    : 0;
}

enum rounding {
	ROUND_HALF_EVEN,
	ROUND_HALF_UP, /* half away from zero */
	ROUND_DOWN, /* toward zero */
	ROUND_EXACT, /* fail unless exact */
};

struct money {
	int exponent;
	double scale;
	enum rounding rounding;
	int64_t min, max;
};

static int
money_compile(const struct mapping_args *a, void **state, char **err)
{
	static const char *const known[] = { "exponent", "rounding", "min",
		"max", NULL };
	static const char *const roundings[] = { "half_even", "half_up", "down",
		"exact", NULL };
	/* Beyond 2^53 a double no longer holds every integer. */
	const int64_t limit = INT64_C(1) << 53;
	struct money *m = xcalloc(1, sizeof *m);
	const char *v;
	int64_t x;

	if (args_known(a, known, err) == -1)
		goto fail;
	m->exponent = 2;
	if ((v = arg_get(a, "exponent")) != NULL) {
		if (parse_int(v, 0, 9, &x) == -1) {
			fail(err, "exponent: expected 0 to 9, got \"%s\"", v);
			goto fail;
		}
		m->exponent = (int)x;
	}
	m->scale = pow(10, m->exponent);
	if ((v = arg_get(a, "rounding")) != NULL) {
		int r;

		for (r = 0; roundings[r] != NULL; r++) {
			if (strcmp(v, roundings[r]) == 0)
				break;
		}
		if (roundings[r] == NULL) {
			fail(err,
			    "rounding: expected half_even, half_up, down or "
			    "exact, got \"%s\"",
			    v);
			goto fail;
		}
		m->rounding = (enum rounding)r;
	}
	m->min = -limit;
	m->max = limit;
	if ((v = arg_get(a, "min")) != NULL &&
	    parse_int(v, -limit, limit, &m->min) == -1) {
		fail(err, "min: expected an integer within +-2^53");
		goto fail;
	}
	if ((v = arg_get(a, "max")) != NULL &&
	    parse_int(v, m->min, limit, &m->max) == -1) {
		fail(err, "max: expected an integer from min to 2^53");
		goto fail;
	}
	*state = m;
	return 0;
fail:
	free(m);
	return -1;
}

/* A double in major units to integer minor units: x * 10^exponent,
 * rounded as declared. Values within 1e-9 of an integer or of a half
 * count as that (decimal fractions are not exact in binary). */
static int
major_to_minor(const void *state, const struct mapping_value *in,
    struct mapping_value *out, char **err)
{
	const struct money *m = state;
	double x, fl, frac, r;

	if (!isfinite(in->d))
		return fail(err, "%g is not a finite amount", in->d);
	x = in->d * m->scale;
	if (x > (double)m->max + 1 || x < (double)m->min - 1)
		goto range;
	fl = floor(x);
	frac = x - fl;
	if (frac < 1e-9 || frac > 1 - 1e-9)
		r = round(x);
	else if (m->rounding == ROUND_EXACT)
		return fail(
		    err, "%.17g has more than %d decimals", in->d, m->exponent);
	else if (m->rounding == ROUND_DOWN)
		r = trunc(x);
	else if (fabs(frac - 0.5) < 1e-9) {
		if (m->rounding == ROUND_HALF_UP)
			r = x < 0 ? fl : fl + 1;
		else
			r = fmod(fl, 2) == 0 ? fl : fl + 1;
	} else
		r = round(x);
	if (r < (double)m->min || r > (double)m->max)
		goto range;
	out->kind = MAPPING_INT;
	out->i = (int64_t)r;
	return 0;
range:
	return fail(err,
	    "%.17g is out of range [%" PRId64 ", %" PRId64 "] in "
	    "minor units",
	    in->d, m->min, m->max);
}

static int
minor_to_major(const void *state, const struct mapping_value *in,
    struct mapping_value *out, char **err)
{
	const struct money *m = state;

	if (in->i < m->min || in->i > m->max)
		return fail(err,
		    "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
		    in->i, m->min, m->max);
	out->kind = MAPPING_DOUBLE;
	out->d = (double)in->i / m->scale;
	return 0;
}

/* What google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31. */
#define TS_MIN INT64_C(-62135596800)
#define TS_MAX INT64_C(253402300799)

static int
ms_to_timestamp(const void *state, const struct mapping_value *in,
    struct mapping_value *out, char **err)
{
	int64_t s = in->i / 1000, ms = in->i % 1000;

	(void)state;
	if (ms < 0) {
		s--;
		ms += 1000;
	}
	if (s < TS_MIN || s > TS_MAX)
		return fail(err,
		    "%" PRId64 " ms is outside the years 1 to 9999", in->i);
	out->kind = MAPPING_TIMESTAMP;
	out->i = s;
	out->nanos = (int32_t)(ms * 1000000);
	return 0;
}

static int
timestamp_to_ms(const void *state, const struct mapping_value *in,
    struct mapping_value *out, char **err)
{
	(void)state;
	if (in->i < TS_MIN || in->i > TS_MAX || in->nanos < 0 ||
	    in->nanos > 999999999)
		return fail(err,
		    "%" PRId64 "s %" PRId32 "ns is not a valid "
		    "timestamp",
		    in->i, in->nanos);
	out->kind = MAPPING_INT;
	/* Whole milliseconds, toward the past. */
	out->i = in->i * 1000 + in->nanos / 1000000;
	return 0;
}

/* string <-> enum: the enum's name is the prefix plus the string in
 * upper case ("web" with prefix CHANNEL_ is CHANNEL_WEB). */
struct enum_names {
	const ProtobufCEnumDescriptor *e;
	char *prefix;
	bool lower;
	char buf[128]; /* enum_to_string's output; the loop is one thread */
};

static int
names_compile(const struct mapping_args *a, void **state, char **err)
{
	static const char *const known[] = { "prefix", "lower", NULL };
	const ProtobufCFieldDescriptor *f =
	    a->to->type == PROTOBUF_C_TYPE_ENUM ? a->to : a->from;
	struct enum_names *n;
	const char *v;

	if (args_known(a, known, err) == -1)
		return -1;
	n = xcalloc(1, sizeof *n);
	n->e = f->descriptor;
	n->prefix = xstrdup((v = arg_get(a, "prefix")) != NULL ? v : "");
	n->lower = (v = arg_get(a, "lower")) != NULL && strcmp(v, "true") == 0;
	*state = n;
	return 0;
}

static void
names_free(void *state)
{
	struct enum_names *n = state;

	if (n != NULL)
		free(n->prefix);
	free(n);
}

static int
string_to_enum(const void *state, const struct mapping_value *in,
    struct mapping_value *out, char **err)
{
	const struct enum_names *n = state;
	const ProtobufCEnumValue *ev;
	size_t plen = strlen(n->prefix), len = strlen(in->s);
	char name[128];

	if (plen + len >= sizeof name)
		return fail(
		    err, "\"%.40s...\" is too long for an enum name", in->s);
	memcpy(name, n->prefix, plen);
	for (size_t i = 0; i <= len; i++) {
		char c = in->s[i];

		name[plen + i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
	}
	if ((ev = protobuf_c_enum_descriptor_get_value_by_name(n->e, name)) ==
	    NULL)
		return fail(
		    err, "\"%.80s\" names no value of %s", in->s, n->e->name);
	out->kind = MAPPING_ENUM;
	out->i = ev->value;
	return 0;
}

static int
enum_to_string(const void *state, const struct mapping_value *in,
    struct mapping_value *out, char **err)
{
	struct enum_names *n = (struct enum_names *)state;
	size_t plen = strlen(n->prefix);
	const char *s = in->s;

	if (s == NULL)
		return fail(
		    err, "%" PRId64 " is not a value of %s", in->i, n->e->name);
	if (strncmp(s, n->prefix, plen) == 0)
		s += plen;
	snprintf(n->buf, sizeof n->buf, "%s", s);
	for (char *p = n->buf; n->lower && *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	}
	out->kind = MAPPING_STRING;
	out->s = n->buf;
	return 0;
}

static const struct mapping_converter conv_major_to_minor = { "major_to_minor",
	MAPPING_DOUBLE, MAPPING_INT, money_compile, major_to_minor, free };
static const struct mapping_converter conv_minor_to_major = { "minor_to_major",
	MAPPING_INT, MAPPING_DOUBLE, money_compile, minor_to_major, free };
static const struct mapping_converter conv_ms_to_timestamp = {
	"ms_to_timestamp", MAPPING_INT, MAPPING_TIMESTAMP, NULL,
	ms_to_timestamp, NULL
};
static const struct mapping_converter conv_timestamp_to_ms = {
	"timestamp_to_ms", MAPPING_TIMESTAMP, MAPPING_INT, NULL,
	timestamp_to_ms, NULL
};
static const struct mapping_converter conv_string_to_enum = { "string_to_enum",
	MAPPING_STRING, MAPPING_ENUM, names_compile, string_to_enum,
	names_free };
static const struct mapping_converter conv_enum_to_string = { "enum_to_string",
	MAPPING_ENUM, MAPPING_STRING, names_compile, enum_to_string,
	names_free };

static const struct mapping_converter *const builtins[] = {
	&conv_major_to_minor,
	&conv_minor_to_major,
	&conv_ms_to_timestamp,
	&conv_timestamp_to_ms,
	&conv_string_to_enum,
	&conv_enum_to_string,
	NULL,
};

const struct mapping_converter *
mapping_converter_find(const char *name)
{
	for (size_t i = 0; builtins[i] != NULL; i++) {
		if (strcmp(builtins[i]->name, name) == 0)
			return builtins[i];
	}
	for (size_t i = 0; i < n_registered; i++) {
		if (strcmp(registered[i]->name, name) == 0)
			return registered[i];
	}
	return NULL;
}

int
mapping_converter_register(const struct mapping_converter *c)
{
	if (mapping_converter_find(c->name) != NULL ||
	    n_registered == CONVERTERS_MAX)
		return -1;
	registered[n_registered++] = c;
	return 0;
}

/* Values in fields. */

static bool
is_timestamp(const ProtobufCFieldDescriptor *f)
{
	return f->type == PROTOBUF_C_TYPE_MESSAGE &&
	    schema_type_of(f->descriptor)->wkt == SCHEMA_WKT_TIMESTAMP;
}

/* The kind a singular field reads as, or -1. */
static int
field_kind(const ProtobufCFieldDescriptor *f)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return -1;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return MAPPING_INT;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return MAPPING_UINT;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		return MAPPING_DOUBLE;
	case PROTOBUF_C_TYPE_BOOL:
		return MAPPING_BOOL;
	case PROTOBUF_C_TYPE_STRING:
		return MAPPING_STRING;
	case PROTOBUF_C_TYPE_ENUM:
		return MAPPING_ENUM;
	case PROTOBUF_C_TYPE_MESSAGE:
		return is_timestamp(f) ? MAPPING_TIMESTAMP : -1;
	default:
		return -1;
	}
}

/* Whether a converter's |want| kind can be given a field of |have|. */
static bool
kind_fits(int want, int have)
{
	bool ints_w = want == MAPPING_INT || want == MAPPING_UINT;
	bool ints_h = have == MAPPING_INT || have == MAPPING_UINT;

	return want == have || (ints_w && ints_h);
}

static const char *const kind_names[] = { "a signed integer",
	"an unsigned integer", "a floating-point number", "a bool", "a string",
	"an enum", "a google.protobuf.Timestamp" };

static const ProtobufCFieldDescriptor *
field_number(const ProtobufCMessageDescriptor *d, unsigned number)
{
	return protobuf_c_message_descriptor_get_field(d, number);
}

/* Reads singular field |f| of |m| (which may be NULL: the defaults). */
static void
value_read(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    struct mapping_value *v)
{
	const void *p = m != NULL ? MEMBER(m, f->offset) : NULL;

	memset(v, 0, sizeof *v);
	v->kind = (enum mapping_kind)field_kind(f);
	v->s = "";
	if (p == NULL)
		return;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		v->i = *(const int32_t *)p;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		v->i = *(const int64_t *)p;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		v->u = *(const uint32_t *)p;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		v->u = *(const uint64_t *)p;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		v->d = *(const float *)p;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		v->d = *(const double *)p;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		v->b = *(const protobuf_c_boolean *)p != 0;
		break;
	case PROTOBUF_C_TYPE_STRING:
		v->s = *(const char *const *)p != NULL ? *(const char *const *)p
						       : "";
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev;

		v->i = *(const int32_t *)p;
		ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, (int)v->i);
		v->s = ev != NULL ? ev->name : NULL;
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *ts =
		    *(const ProtobufCMessage *const *)p;
		const ProtobufCFieldDescriptor *sf, *nf;

		if (ts == NULL)
			break;
		sf = field_number(ts->descriptor, 1);
		nf = field_number(ts->descriptor, 2);
		v->i = *(const int64_t *)MEMBER(ts, sf->offset);
		v->nanos = *(const int32_t *)MEMBER(ts, nf->offset);
		break;
	}
	default:
		break;
	}
}

/* Marks field |f| of |m| as set: its oneof case or has_ flag. */
static int
mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, char **err)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *c = (uint32_t *)MEMBER(m, f->quantifier_offset);

		if (*c != 0 && *c != f->id)
			return fail(err, "another member of its oneof is set");
		*c = f->id;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) = 1;
	return 0;
}

static int
int_store(void *p, const ProtobufCFieldDescriptor *f,
    const struct mapping_value *v, char **err)
{
	bool neg = v->kind != MAPPING_UINT && v->i < 0;
	uint64_t mag = v->kind == MAPPING_UINT ? v->u
	    : neg			       ? 0 - (uint64_t)v->i
					       : (uint64_t)v->i;
	char text[32];

	if (v->kind == MAPPING_UINT)
		snprintf(text, sizeof text, "%" PRIu64, v->u);
	else
		snprintf(text, sizeof text, "%" PRId64, v->i);
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		if (mag > (neg ? UINT64_C(0x80000000) : UINT64_C(0x7fffffff)))
			goto range;
		*(int32_t *)p = neg ? (int32_t)v->i : (int32_t)mag;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!neg && mag > INT64_MAX)
			goto range;
		*(int64_t *)p = neg ? v->i : (int64_t)mag;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (neg || mag > UINT32_MAX)
			goto range;
		*(uint32_t *)p = (uint32_t)mag;
		return 0;
	default:
		if (neg)
			goto range;
		*(uint64_t *)p = mag;
		return 0;
	}
range:
	return fail(err, "%s is out of range for the target field", text);
}

/* Writes |v| into singular field |f| of |m|, which holds its default. */
static int
value_write(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct mapping_value *v, char **err)
{
	void *p = MEMBER(m, f->offset);

	/* First: a oneof whose other member is set must not be touched. */
	if (mark_present(m, f, err) == -1)
		return -1;
	switch (f->type) {
	case PROTOBUF_C_TYPE_FLOAT:
		if (isfinite(v->d) && fabs(v->d) > FLT_MAX)
			return fail(
			    err, "%g is out of range for a float", v->d);
		*(float *)p = (float)v->d;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = v->d;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = v->b;
		break;
	case PROTOBUF_C_TYPE_STRING:
		*(char **)p = xstrdup(v->s);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const struct schema_type *t = schema_type_of(f->descriptor);
		ProtobufCMessage *ts;

		if (*(ProtobufCMessage **)p != NULL)
			return fail(err, "set twice");
		ts = schema_message_new(t);
		*(int64_t *)MEMBER(ts, field_number(&t->pb, 1)->offset) = v->i;
		*(int32_t *)MEMBER(ts, field_number(&t->pb, 2)->offset) =
		    v->nanos;
		*(ProtobufCMessage **)p = ts;
		break;
	}
	default:
		return int_store(p, f, v, err);
	}
	return 0;
}

/* Paths. */

/* The field |name| (|len| bytes) of |t|, or NULL. */
static const ProtobufCFieldDescriptor *
field_named(const struct schema_type *t, const char *name, size_t len)
{
	int i = schema_field_find(t, name, len);

	return i < 0 ? NULL : &t->pb.fields[i];
}

/* Resolves "a.b.c" in |t|: every field but the last a singular message. */
static int
path_resolve(
    const struct schema_type *t, const char *text, struct path *p, char **err)
{
	const char *s = text;

	p->n = 0;
	p->text = xstrdup(text);
	for (;;) {
		size_t len = strcspn(s, ".");
		const ProtobufCFieldDescriptor *f;

		if (len == 0)
			return fail(err, "%s: empty field name", text);
		if ((f = field_named(t, s, len)) == NULL)
			return fail(err, "%s: %s has no field %.*s", text,
			    schema_type_name(t), (int)len, s);
		if (p->n == PATH_DEPTH_MAX)
			return fail(err, "%s: deeper than %d fields", text,
			    PATH_DEPTH_MAX);
		p->f[p->n++] = f;
		if (s[len] == '\0')
			return 0;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
		    f->label == PROTOBUF_C_LABEL_REPEATED)
			return fail(err,
			    "%s: %.*s is not a singular message field", text,
			    (int)len, s);
		t = schema_type_of(f->descriptor);
		s += len + 1;
	}
}

/* The message holding the leaf of |p| in |m|, or NULL when a message on
 * the way is not set. */
static const ProtobufCMessage *
path_owner(const struct path *p, const ProtobufCMessage *m)
{
	for (unsigned i = 0; i + 1 < p->n && m != NULL; i++) {
		if (!schema_field_present(m, p->f[i]))
			return NULL;
		m = *(const ProtobufCMessage *const *)MEMBER(
		    m, p->f[i]->offset);
	}
	return m;
}

/* As path_owner(), creating the messages on the way. */
static ProtobufCMessage *
path_make(const struct path *p, ProtobufCMessage *m, char **err)
{
	for (unsigned i = 0; i + 1 < p->n; i++) {
		ProtobufCMessage **sub =
		    (ProtobufCMessage **)MEMBER(m, p->f[i]->offset);

		if (*sub == NULL) {
			if (mark_present(m, p->f[i], err) == -1)
				return NULL;
			*sub = schema_message_new(
			    schema_type_of(p->f[i]->descriptor));
		}
		m = *sub;
	}
	return m;
}

/* Copying. */

static ProtobufCMessage *
message_clone(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(len + 1);
	ProtobufCMessage *c;

	protobuf_c_message_pack(m, buf);
	c = protobuf_c_message_unpack(
	    m->descriptor, &schema_allocator, len, buf);
	free(buf);
	return c;
}

static int apply_into(const struct mapping *, const ProtobufCMessage *,
    ProtobufCMessage *, unsigned depth, char **err);

/* Copies one value (a singular field or an element) from |sp| to |dp|. */
static int
element_copy(const struct rule *r, const ProtobufCFieldDescriptor *sf,
    const void *sp, void *dp, unsigned depth, char **err)
{
	switch (sf->type) {
	case PROTOBUF_C_TYPE_STRING:
		*(char **)dp = xstrdup(*(const char *const *)sp != NULL
			? *(const char *const *)sp
			: "");
		return 0;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *s = sp;
		ProtobufCBinaryData *d = dp;

		d->len = s->len;
		d->data = s->len > 0 ? xmemdup(s->data, s->len) : NULL;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *s =
		    *(const ProtobufCMessage *const *)sp;
		ProtobufCMessage *d;

		if (s == NULL)
			return 0;
		if (r->nested == NULL) {
			if ((d = message_clone(s)) == NULL)
				return fail(err, ": cannot be copied");
		} else {
			d = schema_message_new(r->nested->to);
			char *sub = NULL;

			if (apply_into(r->nested, s, d, depth + 1, &sub) ==
			    -1) {
				fail(err, ".%s", sub);
				free(sub);
				schema_message_free(d);
				return -1;
			}
		}
		*(ProtobufCMessage **)dp = d;
		return 0;
	}
	case PROTOBUF_C_TYPE_ENUM:
		if (r->enum_map != NULL) {
			int32_t n = *(const int32_t *)sp;
			const ProtobufCEnumValue *ev =
			    protobuf_c_enum_descriptor_get_value(
				sf->descriptor, n);

			if (ev != NULL) {
				size_t k = (size_t)(ev -
				    ((const ProtobufCEnumDescriptor *)
					    sf->descriptor)
					->values);

				if (!r->enum_has[k])
					return fail(err,
					    ": %s has no counterpart in %s",
					    ev->name,
					    ((const ProtobufCEnumDescriptor *)
						    r->to.f[r->to.n - 1]
							->descriptor)
						->name);
				n = r->enum_map[k];
			}
			*(int32_t *)dp = n;
			return 0;
		}
		/* FALLTHROUGH */
	default:
		memcpy(dp, sp, schema_element_size(sf->type));
		return 0;
	}
}

/* COPY: field |sf| of |s| to field |df| of |d|. */
static int
field_copy(const struct rule *r, const ProtobufCMessage *s,
    const ProtobufCFieldDescriptor *sf, ProtobufCMessage *d,
    const ProtobufCFieldDescriptor *df, unsigned depth, char **err)
{
	size_t n, size, *dn;
	const char *src;
	char *arr, *sub;
	int rc;

	if (sf->label != PROTOBUF_C_LABEL_REPEATED) {
		if (mark_present(d, df, err) == -1)
			return -1;
		return element_copy(r, sf, MEMBER(s, sf->offset),
		    MEMBER(d, df->offset), depth, err);
	}
	n = *(const size_t *)MEMBER(s, sf->quantifier_offset);
	size = schema_element_size(sf->type);
	src = *(const char *const *)MEMBER(s, sf->offset);
	dn = (size_t *)MEMBER(d, df->quantifier_offset);
	arr = xcalloc(n, size);
	*(char **)MEMBER(d, df->offset) = arr;
	for (size_t i = 0; i < n; i++) {
		sub = NULL;
		rc = element_copy(
		    r, sf, src + i * size, arr + i * size, depth, &sub);
		if (rc == -1) {
			fail(err, "[%zu]%s", i, sub);
			free(sub);
			return -1;
		}
		(*dn)++;
	}
	return 0;
}

static bool
value_equal(const struct mapping_value *a, const struct mapping_value *b)
{
	switch (b->kind) {
	case MAPPING_INT:
	case MAPPING_ENUM:
		return a->i == b->i;
	case MAPPING_UINT:
		return a->u == b->u;
	case MAPPING_DOUBLE:
		return a->d == b->d;
	case MAPPING_BOOL:
		return a->b == b->b;
	case MAPPING_STRING:
		return strcmp(a->s, b->s) == 0;
	default:
		return a->i == b->i && a->nanos == b->nanos;
	}
}

/* Runs rule |r| from |src| into |dst|. */
static int
rule_apply(const struct rule *r, const ProtobufCMessage *src,
    ProtobufCMessage *dst, unsigned depth, char **err)
{
	const ProtobufCFieldDescriptor *sf =
	    r->from.n ? r->from.f[r->from.n - 1] : NULL;
	const ProtobufCFieldDescriptor *df =
	    r->to.n ? r->to.f[r->to.n - 1] : NULL;
	const ProtobufCMessage *so = NULL;
	struct mapping_value in, out;
	ProtobufCMessage *dm;
	bool has = false;

	if (sf != NULL) {
		so = path_owner(&r->from, src);
		has = so != NULL && schema_field_present(so, sf);
		if (!has && r->required)
			return fail(err, "is required and missing");
	}
	switch (r->kind) {
	case RULE_EXPECT:
		value_read(so, sf, &in);
		if (!value_equal(&in, &r->value))
			return fail(err,
			    "holds another value than \"%s\", "
			    "the only one the mapping drops",
			    r->value_text);
		return 0;
	case RULE_DEFAULT:
		if ((dm = path_make(&r->to, dst, err)) == NULL)
			return -1;
		return value_write(dm, df, &r->value, err);
	case RULE_COPY:
		if (!has)
			return 0;
		if ((dm = path_make(&r->to, dst, err)) == NULL)
			return -1;
		return field_copy(r, so, sf, dm, df, depth, err);
	case RULE_CONVERT:
		if (!has)
			return 0;
		value_read(so, sf, &in);
		if (r->conv->in == MAPPING_INT && in.kind == MAPPING_UINT) {
			if (in.u > INT64_MAX)
				return fail(
				    err, "%" PRIu64 " is too large", in.u);
			in.kind = MAPPING_INT;
			in.i = (int64_t)in.u;
		} else if (r->conv->in == MAPPING_UINT &&
		    in.kind == MAPPING_INT) {
			if (in.i < 0)
				return fail(
				    err, "%" PRId64 " is negative", in.i);
			in.kind = MAPPING_UINT;
			in.u = (uint64_t)in.i;
		}
		memset(&out, 0, sizeof out);
		if (r->conv->apply(r->state, &in, &out, err) == -1)
			return -1;
		if ((dm = path_make(&r->to, dst, err)) == NULL)
			return -1;
		return value_write(dm, df, &out, err);
	}
	return 0;
}

static int
apply_into(const struct mapping *m, const ProtobufCMessage *src,
    ProtobufCMessage *dst, unsigned depth, char **err)
{
	if (depth > APPLY_DEPTH_MAX)
		return fail(err, ": nested deeper than %d", APPLY_DEPTH_MAX);
	for (size_t i = 0; i < m->n; i++) {
		const struct rule *r = &m->rules[i];
		char *sub = NULL;

		if (rule_apply(r, src, dst, depth, &sub) == -1) {
			const char *name =
			    r->from.text != NULL ? r->from.text : r->to.text;

			fail(err, "%s%s%s", name,
			    sub[0] == '[' || sub[0] == '.' || sub[0] == ':'
				? ""
				: ": ",
			    sub);
			free(sub);
			return -1;
		}
	}
	return 0;
}

int
mapping_apply(const struct mapping *m, const ProtobufCMessage *src,
    ProtobufCMessage **out, char **err)
{
	ProtobufCMessage *dst = schema_message_new(m->to);
	char *sub = NULL;

	*out = NULL;
	if (src->descriptor != &m->from->pb) {
		schema_message_free(dst);
		return fail(err, "%s -> %s: the message is a %s",
		    m->from->pb.name, m->to->pb.name, src->descriptor->name);
	}
	if (apply_into(m, src, dst, 0, &sub) == -1) {
		fail(err, "%s -> %s: field %s", schema_type_name(m->from),
		    schema_type_name(m->to), sub);
		free(sub);
		schema_message_free(dst);
		return -1;
	}
	*out = dst;
	return 0;
}

/* Compiling. */

static struct rule *
rule_add(struct mapping *m)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->rules = xreallocarray(m->rules, m->cap, sizeof *m->rules);
	}
	memset(&m->rules[m->n], 0, sizeof *m->rules);
	return &m->rules[m->n++];
}

static void
used_add(char ***v, size_t *n, const char *text)
{
	*v = xreallocarray(*v, *n + 1, sizeof **v);
	(*v)[(*n)++] = xstrdup(text);
}

/* Whether |a| is |b| or a field inside it, or |b| inside |a|. */
static bool
path_overlaps(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	return strncmp(a, b, n) == 0 &&
	    (la == lb || (la < lb ? b[la] : a[lb]) == '.');
}

static struct mapping *
mapping_new(const char *name, const struct schema_type *from,
    const struct schema_type *to)
{
	struct mapping *m = xcalloc(1, sizeof *m);

	m->name = xstrdup(name);
	m->from = from;
	m->to = to;
	return m;
}

static struct mapping *implicit_mapping(struct mapping *top,
    const struct schema_type *from, const struct schema_type *to);

/* Whether a COPY from |sf| to |df| can work; fills |r|'s enum map or
 * nested mapping. */
static int
copy_compile(struct mapping *top, struct rule *r,
    const ProtobufCFieldDescriptor *sf, const ProtobufCFieldDescriptor *df,
    char **err)
{
	if ((sf->label == PROTOBUF_C_LABEL_REPEATED) !=
	    (df->label == PROTOBUF_C_LABEL_REPEATED))
		return fail(err, "one of %s and %s is repeated, the other not",
		    sf->name, df->name);
	if (sf->type != df->type)
		return fail(err,
		    "%s and %s have different types (use a "
		    "converter)",
		    sf->name, df->name);
	if (sf->type == PROTOBUF_C_TYPE_ENUM &&
	    sf->descriptor != df->descriptor) {
		const ProtobufCEnumDescriptor *se = sf->descriptor;

		r->enum_map = xcalloc(se->n_values + 1, sizeof *r->enum_map);
		r->enum_has = xcalloc(se->n_values + 1, sizeof *r->enum_has);
		for (unsigned i = 0; i < se->n_values; i++) {
			const ProtobufCEnumValue *dv =
			    protobuf_c_enum_descriptor_get_value_by_name(
				df->descriptor, se->values[i].name);

			/* Prefixed names: CHANNEL_WEB in v2 and v3 alike. */
			if (dv != NULL) {
				r->enum_map[i] = dv->value;
				r->enum_has[i] = true;
			}
		}
	}
	if (sf->type == PROTOBUF_C_TYPE_MESSAGE &&
	    sf->descriptor != df->descriptor) {
		if (schema_type_of(sf->descriptor)->wkt !=
		    schema_type_of(df->descriptor)->wkt)
			return fail(err,
			    "%s and %s are different kinds of "
			    "message",
			    sf->name, df->name);
		struct mapping *nested =
		    implicit_mapping(top, schema_type_of(sf->descriptor),
			schema_type_of(df->descriptor));

		nested->used = true;
		r->nested = nested;
	}
	return 0;
}

/* Adds a COPY for every field of m->to not yet filled that m->from has
 * by the same name and a type that fits. */
static void
implicit_rules(struct mapping *top, struct mapping *m)
{
	for (unsigned i = 0; i < m->to->pb.n_fields; i++) {
		const ProtobufCFieldDescriptor *df = &m->to->pb.fields[i];
		const ProtobufCFieldDescriptor *sf;
		struct rule *r;
		bool taken = false;
		char *err = NULL;

		for (size_t k = 0; k < m->n_to && !taken; k++)
			taken = path_overlaps(m->used_to[k], df->name);
		if (taken ||
		    (sf = protobuf_c_message_descriptor_get_field_by_name(
			 &m->from->pb, df->name)) == NULL)
			continue;
		for (size_t k = 0; k < m->n_from && !taken; k++)
			taken = path_overlaps(m->used_from[k], sf->name);
		if (taken)
			continue;
		r = rule_add(m);
		if (copy_compile(top, r, sf, df, &err) == -1) {
			free(err);
			free(r->enum_map);
			free(r->enum_has);
			m->n--;
			continue;
		}
		r->kind = RULE_COPY;
		r->from.f[0] = sf;
		r->from.n = 1;
		r->from.text = xstrdup(sf->name);
		r->to.f[0] = df;
		r->to.n = 1;
		r->to.text = xstrdup(df->name);
		used_add(&m->used_from, &m->n_from, sf->name);
		used_add(&m->used_to, &m->n_to, df->name);
	}
}

static struct mapping *
implicit_mapping(struct mapping *top, const struct schema_type *from,
    const struct schema_type *to)
{
	struct mapping *m;

	for (size_t i = 0; i < top->n_nested; i++) {
		if (top->nested[i]->from == from && top->nested[i]->to == to)
			return top->nested[i];
	}
	m = mapping_new(top->name, from, to);
	m->top = top;
	top->nested =
	    xreallocarray(top->nested, top->n_nested + 1, sizeof *top->nested);
	top->nested[top->n_nested++] = m;
	implicit_rules(top, m);
	return m;
}

/* Parses |text| as a constant for field |f|. */
static int
constant_parse(const ProtobufCFieldDescriptor *f, const char *text,
    struct mapping_value *v, char **err)
{
	char *end;

	memset(v, 0, sizeof *v);
	switch (field_kind(f)) {
	case MAPPING_INT:
		v->kind = MAPPING_INT;
		if (parse_int(text, INT64_MIN, INT64_MAX, &v->i) == -1)
			return fail(err, "\"%s\" is not an integer", text);
		break;
	case MAPPING_UINT:
		v->kind = MAPPING_UINT;
		errno = 0;
		v->u = strtoull(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
			return fail(
			    err, "\"%s\" is not an unsigned integer", text);
		break;
	case MAPPING_DOUBLE:
		v->kind = MAPPING_DOUBLE;
		v->d = strtod(text, &end);
		if (end == text || *end != '\0' || !isfinite(v->d))
			return fail(err, "\"%s\" is not a finite number", text);
		break;
	case MAPPING_BOOL:
		v->kind = MAPPING_BOOL;
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
			return fail(err, "\"%s\" is not true or false", text);
		v->b = text[0] == 't';
		break;
	case MAPPING_STRING:
		v->kind = MAPPING_STRING;
		v->s = text;
		break;
	case MAPPING_ENUM: {
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value_by_name(
			f->descriptor, text);

		if (ev == NULL)
			return fail(err, "\"%s\" names no value of %s", text,
			    ((const ProtobufCEnumDescriptor *)f->descriptor)
				->name);
		v->kind = MAPPING_ENUM;
		v->i = ev->value;
		v->s = ev->name;
		break;
	}
	default:
		return fail(err, "%s cannot take a constant", f->name);
	}
	return 0;
}

/* One rule of the file, from its YAML mapping node. */
struct rule_text {
	const char *to, *from, *drop, *convert, *def, *expect, *required;
	const char *keys[PARAMS_MAX], *values[PARAMS_MAX];
	size_t n;
	int line;
};

static int
rule_compile(struct mapping *m, const struct rule_text *t, char **err)
{
	const char *from = t->from != NULL ? t->from : t->drop;
	struct rule *r;
	int modes = (t->def != NULL) + (t->convert != NULL) +
	    (t->drop != NULL && t->from == NULL);

	if (t->drop != NULL && t->from != NULL)
		return fail(err, "a rule has drop or from, not both");
	if (modes > 1 || (t->drop != NULL && t->to != NULL))
		return fail(err,
		    "a rule is one of: from/to, from/to/convert, to/default, "
		    "drop");
	if (t->expect != NULL && t->drop == NULL)
		return fail(err, "expect goes with drop");
	if (t->drop == NULL && t->to == NULL)
		return fail(err, "a rule needs to (or drop)");
	if (t->drop == NULL && t->def == NULL && t->from == NULL)
		return fail(err, "%s: needs from or default", t->to);
	if (t->def != NULL && t->from != NULL)
		return fail(err, "%s: has both from and default", t->to);
	if (t->n > 0 && t->convert == NULL)
		return fail(err, "unknown key %s", t->keys[0]);
	if (t->required != NULL && strcmp(t->required, "true") != 0 &&
	    strcmp(t->required, "false") != 0)
		return fail(err, "required: expected true or false");
	r = rule_add(m);
	r->line = t->line;
	r->required = t->required != NULL && t->required[0] == 't';
	if (from != NULL) {
		if (path_resolve(m->from, from, &r->from, err) == -1)
			return -1;
		for (size_t k = 0; k < m->n_from; k++) {
			if (strcmp(m->used_from[k], from) == 0 &&
			    t->drop != NULL)
				return fail(
				    err, "%s is dropped and read", from);
		}
		used_add(&m->used_from, &m->n_from, from);
	}
	if (t->to != NULL) {
		if (path_resolve(m->to, t->to, &r->to, err) == -1)
			return -1;
		for (size_t k = 0; k < m->n_to; k++) {
			if (path_overlaps(m->used_to[k], t->to))
				return fail(err, "%s: filled twice (%s)", t->to,
				    m->used_to[k]);
		}
		used_add(&m->used_to, &m->n_to, t->to);
	}
	if (t->drop != NULL) {
		/* A drop is a rule only when it checks a value. */
		if (t->expect == NULL) {
			free(r->from.text);
			m->n--;
			return 0;
		}
		r->kind = RULE_EXPECT;
		r->value_text = xstrdup(t->expect);
		return constant_parse(
		    r->from.f[r->from.n - 1], r->value_text, &r->value, err);
	}
	if (t->def != NULL) {
		ProtobufCMessage *scratch, *dm;
		const ProtobufCFieldDescriptor *df = r->to.f[r->to.n - 1];
		int rc;

		r->kind = RULE_DEFAULT;
		r->value_text = xstrdup(t->def);
		if (constant_parse(df, r->value_text, &r->value, err) == -1)
			return -1;
		/* Writing it once finds values out of the field's range. */
		scratch = schema_message_new(m->to);
		dm = path_make(&r->to, scratch, err);
		rc = dm == NULL ? -1 : value_write(dm, df, &r->value, err);
		schema_message_free(scratch);
		return rc;
	}
	if (t->convert != NULL) {
		const ProtobufCFieldDescriptor *sf = r->from.f[r->from.n - 1];
		const ProtobufCFieldDescriptor *df = r->to.f[r->to.n - 1];
		struct mapping_args a = { sf, df, t->keys, t->values, t->n };
		char *sub = NULL;

		r->kind = RULE_CONVERT;
		if ((r->conv = mapping_converter_find(t->convert)) == NULL)
			return fail(err, "no converter called %s", t->convert);
		if (!kind_fits((int)r->conv->in, field_kind(sf)))
			return fail(err, "%s: %s takes %s", from, t->convert,
			    kind_names[r->conv->in]);
		if (!kind_fits((int)r->conv->out, field_kind(df)))
			return fail(err, "%s: %s gives %s", t->to, t->convert,
			    kind_names[r->conv->out]);
		if (r->conv->compile == NULL && t->n > 0)
			return fail(err, "%s: unknown parameter %s", t->convert,
			    t->keys[0]);
		if (r->conv->compile != NULL &&
		    r->conv->compile(&a, &r->state, &sub) == -1) {
			fail(err, "%s: %s", t->convert, sub);
			free(sub);
			return -1;
		}
		return 0;
	}
	r->kind = RULE_COPY;
	return copy_compile(m->top != NULL ? m->top : m, r,
	    r->from.f[r->from.n - 1], r->to.f[r->to.n - 1], err);
}

static const char *
scalar(const yaml_node_t *n)
{
	return n != NULL && n->type == YAML_SCALAR_NODE
	    ? (const char *)n->data.scalar.value
	    : NULL;
}

/* Reads one rule node into |t|. */
static int
rule_read(yaml_document_t *doc, yaml_node_t *n, struct rule_text *t, char **err)
{
	memset(t, 0, sizeof *t);
	t->line = (int)n->start_mark.line + 1;
	if (n->type != YAML_MAPPING_NODE)
		return fail(err, "a rule is a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(doc, p->key));
		const char *v = scalar(yaml_document_get_node(doc, p->value));
		static const char *const names[] = { "to", "from", "drop",
			"convert", "default", "expect", "required" };
		const char **slots[] = { &t->to, &t->from, &t->drop,
			&t->convert, &t->def, &t->expect, &t->required };
		size_t i;

		if (k == NULL || v == NULL)
			return fail(err,
			    "keys and values of a rule are "
			    "scalars");
		for (i = 0; i < sizeof names / sizeof *names; i++) {
			if (strcmp(k, names[i]) == 0)
				break;
		}
		if (i < sizeof names / sizeof *names) {
			if (*slots[i] != NULL)
				return fail(err, "%s given twice", k);
			*slots[i] = v;
		} else if (t->n == PARAMS_MAX)
			return fail(err, "more than %d parameters", PARAMS_MAX);
		else {
			t->keys[t->n] = k;
			t->values[t->n++] = v;
		}
	}
	return 0;
}

/* What a mapping node says: the file's root, or an entry of its types. */
struct section {
	const char *from, *to;
	yaml_node_t *fields, *types;
	int line;
};

static int
section_read(const char *name, yaml_document_t *doc, yaml_node_t *n, bool root,
    struct section *s, char **err)
{
	memset(s, 0, sizeof *s);
	s->line = (int)n->start_mark.line + 1;
	if (n->type != YAML_MAPPING_NODE)
		return fail(err,
		    "%s:%d: expected a mapping with from, to and "
		    "fields",
		    name, s->line);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		const char *k = scalar(yaml_document_get_node(doc, p->key));
		int line = (int)v->start_mark.line + 1;
		bool list = v->type == YAML_SEQUENCE_NODE;

		/* An empty value (fields:) is an empty list. */
		if (k != NULL && strcmp(k, "from") == 0 && scalar(v) != NULL)
			s->from = scalar(v);
		else if (k != NULL && strcmp(k, "to") == 0 && scalar(v) != NULL)
			s->to = scalar(v);
		else if (k != NULL && strcmp(k, "fields") == 0 &&
		    (list || scalar(v) != NULL))
			s->fields = list ? v : NULL;
		else if (root && k != NULL && strcmp(k, "types") == 0 &&
		    (list || scalar(v) != NULL))
			s->types = list ? v : NULL;
		else
			return fail(err, "%s:%d: unexpected key %s", name, line,
			    k != NULL ? k : "(not a scalar)");
	}
	if (s->from == NULL || s->to == NULL)
		return fail(err,
		    "%s:%d: from and to (message types) are required", name,
		    s->line);
	return 0;
}

static struct mapping *
section_mapping(const char *name, const struct section *s,
    const struct schema *schemas, char **err)
{
	const struct schema_type *ft, *tt;

	if ((ft = schema_lookup(schemas, s->from)) == NULL ||
	    (tt = schema_lookup(schemas, s->to)) == NULL) {
		fail(err, "%s:%d: no message type %s in the schemas", name,
		    s->line, ft == NULL ? s->from : s->to);
		return NULL;
	}
	return mapping_new(name, ft, tt);
}

static int
rules_compile(const char *name, yaml_document_t *doc, struct mapping *m,
    const yaml_node_t *fields, char **err)
{
	if (fields == NULL)
		return 0;
	if (fields->data.sequence.items.top -
		fields->data.sequence.items.start >
	    RULES_MAX)
		return fail(err, "%s: more than %d rules", name, RULES_MAX);
	for (yaml_node_item_t *i = fields->data.sequence.items.start;
	     i < fields->data.sequence.items.top; i++) {
		struct rule_text t;
		char *sub = NULL;

		if (rule_read(doc, yaml_document_get_node(doc, *i), &t, &sub) ==
			-1 ||
		    rule_compile(m, &t, &sub) == -1) {
			fail(err, "%s:%d: %s", name, t.line, sub);
			free(sub);
			return -1;
		}
	}
	return 0;
}

/*
 * The types a file declares are mappings between nested message types
 * (a repeated field's elements, a map's values, a singular message):
 * they are registered before any rule is compiled, so that every copy
 * between those two types, explicit or implicit, goes through them.
 */
static int
types_compile(const char *name, yaml_document_t *doc, struct mapping *top,
    const yaml_node_t *types, const struct schema *schemas, char **err)
{
	size_t n = types != NULL ? (size_t)(types->data.sequence.items.top -
				       types->data.sequence.items.start)
				 : 0;
	struct section *s = xcalloc(n + 1, sizeof *s);
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		yaml_node_t *node = yaml_document_get_node(
		    doc, types->data.sequence.items.start[i]);
		struct mapping *d;

		if (section_read(name, doc, node, false, &s[i], err) == -1 ||
		    (d = section_mapping(name, &s[i], schemas, err)) == NULL)
			goto done;
		d->top = top;
		top->nested = xreallocarray(
		    top->nested, top->n_nested + 1, sizeof *top->nested);
		top->nested[top->n_nested++] = d;
		if (d->from == top->from && d->to == top->to) {
			fail(err,
			    "%s:%d: %s -> %s is the file's own pair: its "
			    "rules go under fields",
			    name, s[i].line, s[i].from, s[i].to);
			goto done;
		}
		for (size_t k = 0; k + 1 < top->n_nested; k++) {
			if (top->nested[k]->from == d->from &&
			    top->nested[k]->to == d->to) {
				fail(err, "%s:%d: %s -> %s is declared twice",
				    name, s[i].line, s[i].from, s[i].to);
				goto done;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rules_compile(
			name, doc, top->nested[i], s[i].fields, err) == -1)
			goto done;
	}
	rc = 0;
done:
	free(s);
	return rc;
}

static int
doc_compile(const char *name, yaml_document_t *doc,
    const struct schema *schemas, struct mapping **out, char **err)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	struct section top;
	struct mapping *m;
	size_t declared;

	if (root == NULL)
		return fail(err,
		    "%s:1: expected a mapping with from, to and "
		    "fields",
		    name);
	if (section_read(name, doc, root, true, &top, err) == -1 ||
	    (m = section_mapping(name, &top, schemas, err)) == NULL)
		return -1;
	if (types_compile(name, doc, m, top.types, schemas, err) == -1)
		goto fail;
	declared = m->n_nested;
	if (rules_compile(name, doc, m, top.fields, err) == -1)
		goto fail;
	/* Declared rules first, then what no rule mentions. */
	for (size_t i = 0; i < declared; i++)
		implicit_rules(m, m->nested[i]);
	implicit_rules(m, m);
	for (size_t i = 0; i < declared; i++) {
		if (!m->nested[i]->used) {
			fail(err,
			    "%s: types: %s -> %s: no field of %s is "
			    "copied through it",
			    name, schema_type_name(m->nested[i]->from),
			    schema_type_name(m->nested[i]->to),
			    schema_type_name(m->from));
			goto fail;
		}
	}
	*out = m;
	return 0;
fail:
	mapping_free(m);
	return -1;
}

struct mapping *
mapping_parse(const char *name, const char *text, size_t len,
    const struct schema *schemas, char **err)
{
	yaml_parser_t p;
	yaml_document_t doc;
	struct mapping *m = NULL;

	*err = NULL;
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &doc)) {
		fail(err, "%s:%zu: %s", name, p.problem_mark.line + 1,
		    p.problem != NULL ? p.problem : "invalid YAML");
		yaml_parser_delete(&p);
		return NULL;
	}
	doc_compile(name, &doc, schemas, &m, err);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return m;
}

struct mapping *
mapping_load(const char *path, const struct schema *schemas, char **err)
{
	struct mapping *m;
	char *text;
	size_t len;
	FILE *f;

	*err = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		fail(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	text = xmalloc(MAPPING_FILE_MAX + 1);
	len = fread(text, 1, MAPPING_FILE_MAX + 1, f);
	if (ferror(f) || len > MAPPING_FILE_MAX) {
		fail(err, "%s: %s", path,
		    ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	m = mapping_parse(path, text, len, schemas, err);
	free(text);
	return m;
}

static void
path_free(struct path *p)
{
	free(p->text);
}

void
mapping_free(struct mapping *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct rule *r = &m->rules[i];

		path_free(&r->from);
		path_free(&r->to);
		if (r->conv != NULL && r->conv->free != NULL)
			r->conv->free(r->state);
		free(r->value_text);
		free(r->enum_map);
		free(r->enum_has);
	}
	free(m->rules);
	for (size_t i = 0; i < m->n_from; i++)
		free(m->used_from[i]);
	for (size_t i = 0; i < m->n_to; i++)
		free(m->used_to[i]);
	free(m->used_from);
	free(m->used_to);
	for (size_t i = 0; i < m->n_nested; i++)
		mapping_free(m->nested[i]);
	free(m->nested);
	free(m->name);
	free(m);
}

const struct schema_type *
mapping_from(const struct mapping *m)
{
	return m->from;
}

const struct schema_type *
mapping_to(const struct mapping *m)
{
	return m->to;
}

const char *
mapping_name(const struct mapping *m)
{
	return m->name;
}

/* Reports the fields of |t| under |prefix| that no path in |used|
 * covers; a field that a used path goes into is followed down. */
static size_t
report_type(const struct schema_type *t, char *const *used, size_t n,
    const char *prefix, const char *what, const char *line, FILE *out,
    unsigned depth)
{
	size_t count = 0;

	for (unsigned i = 0; i < t->pb.n_fields && depth < PATH_DEPTH_MAX;
	     i++) {
		const ProtobufCFieldDescriptor *f = &t->pb.fields[i];
		char *path = xasprintf("%s%s", prefix, f->name);
		size_t plen = strlen(path);
		bool exact = false, inside = false;

		for (size_t k = 0; k < n; k++) {
			if (strcmp(used[k], path) == 0)
				exact = true;
			else if (strncmp(used[k], path, plen) == 0 &&
			    used[k][plen] == '.')
				inside = true;
		}
		if (!exact && inside) {
			char *sub = xasprintf("%s.", path);

			count += report_type(schema_type_of(f->descriptor),
			    used, n, sub, what, line, out, depth + 1);
			free(sub);
		} else if (!exact) {
			fprintf(out, "%s%s %s\n", line, path, what);
			count++;
		}
		free(path);
	}
	return count;
}

static size_t
report_one(const struct mapping *m, const char *prefix, FILE *out)
{
	char *line = xasprintf("%s%s (%s -> %s): ", prefix, m->name,
	    schema_type_name(m->from), schema_type_name(m->to));
	size_t count;

	count = report_type(m->to, m->used_to, m->n_to, "",
	    "(target): nothing fills it", line, out, 0);
	count += report_type(m->from, m->used_from, m->n_from, "",
	    "(source): lost, neither mapped nor dropped", line, out, 0);
	free(line);
	return count;
}

size_t
mapping_report(const struct mapping *m, const char *prefix, FILE *out)
{
	size_t count = report_one(m, prefix, out);

	for (size_t i = 0; i < m->n_nested; i++)
		count += report_one(m->nested[i], prefix, out);
	return count;
}
