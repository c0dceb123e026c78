#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

#include "pbwire.h"
#include "schema-t.h"
#include "schema.h"
#include "xmalloc.h"

#define SET_MAX_SIZE (64u << 20)
#define SET_MAX_DEPTH 100u
#define FIELD_NUMBER_MAX 536870911

#define FIELD_TYPE(t) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##t
#define FIELD_LABEL(l)                                                         \
	GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_##l

/* A message or enum definition, by its full name. */
struct def {
	char *name; /* ".pkg.Outer.Inner" */
	const Google__Protobuf__FileDescriptorProto *file;
	const Google__Protobuf__DescriptorProto *msg; /* or NULL: an enum */
	const Google__Protobuf__EnumDescriptorProto *en;
	struct schema_type *type;
	ProtobufCEnumDescriptor *enumd;
};

struct schema {
	Google__Protobuf__FileDescriptorSet **sets;
	size_t n_sets;
	struct def *defs; /* sorted by name */
	size_t n_defs;
	struct schema_type **types; /* the messages of defs, in order */
	size_t n_types;
};

/* A file of a set, the first time its name was seen. */
struct file {
	const Google__Protobuf__FileDescriptorProto *fp;
	const char *set;
};

struct loader {
	struct schema *s;
	char **err;
	struct file *files;
	size_t n_files;
	const char *set; /* what errors name: the set, then the file */
	const char *file;
};

const struct schema_limits schema_limits_default = {
	.max_size = SCHEMA_MAX_SIZE_DEFAULT,
	.max_depth = SCHEMA_MAX_DEPTH_DEFAULT,
	.max_memory = SCHEMA_MAX_MEMORY_DEFAULT,
	.ignore_unknown = false,
};

/* protobuf-c allocates through xmalloc: running out is fatal. */
static void *
allocator_alloc(void *data, size_t size)
{
	return xmalloc(size);
}

static void
allocator_free(void *data, void *p)
{
	free(p);
}

ProtobufCAllocator schema_allocator = { allocator_alloc, allocator_free, NULL };

/* Sets the error (the first one wins) as "SET: FILE: what"; returns -1. */
static int __attribute__((format(printf, 2, 3)))
fail(struct loader *l, const char *fmt, ...)
{
	va_list ap;
	char *what;

	if (*l->err != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) == -1)
		what = NULL;
	va_end(ap);
	if (what == NULL)
		*l->err = xstrdup("out of memory formatting an error");
	else if (l->file != NULL)
		*l->err = xasprintf("%s: %s: %s", l->set, l->file, what);
	else
		*l->err = xasprintf("%s: %s", l->set, what);
	free(what);
	return -1;
}

/* An identifier as protoc allows it: [A-Za-z_][A-Za-z0-9_]*. */
static int
is_ident(const char *s)
{
	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s != '\0'; s++) {
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') ||
			(*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return 0;
	}
	return 1;
}

/* A package name: dotted identifiers, or empty. */
static int
is_package(const char *s)
{
	size_t n;

	if (*s == '\0')
		return 1;
	for (;;) {
		n = strcspn(s, ".");
		if (n == 0 || (*s >= '0' && *s <= '9'))
			return 0;
		for (size_t i = 0; i < n; i++) {
			if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
				(s[i] >= 'A' && s[i] <= 'Z') ||
				(s[i] >= '0' && s[i] <= '9')))
				return 0;
		}
		if (s[n] == '\0')
			return 1;
		s += n + 1;
	}
}

/* Orders definitions by full name. */
static int
def_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct def *)a)->name, ((const struct def *)b)->name);
}

/* The definition called |name| (with its leading dot), or NULL. */
static struct def *
def_find(const struct schema *s, const char *name)
{
	struct def key = { .name = (char *)name };

	if (s->n_defs == 0)
		return NULL;
	return bsearch(&key, s->defs, s->n_defs, sizeof *s->defs, def_cmp);
}

/* Appends a definition; the array is sorted once all are in. */
static void
def_add(struct schema *s, char *name,
    const Google__Protobuf__FileDescriptorProto *file,
    const Google__Protobuf__DescriptorProto *msg,
    const Google__Protobuf__EnumDescriptorProto *en)
{
	struct def *d;

	s->defs = xreallocarray(s->defs, s->n_defs + 1, sizeof *s->defs);
	d = &s->defs[s->n_defs++];
	memset(d, 0, sizeof *d);
	d->name = name;
	d->file = file;
	d->msg = msg;
	d->en = en;
}

/* Options extensions (custom options) are the only extensions allowed,
 * and ignored. |where| names the message declaring them, or is NULL. */
static int
check_extensions(struct loader *l, const char *where, size_t n,
    Google__Protobuf__FieldDescriptorProto *const *ext)
{
	static const char *const options[] = { ".google.protobuf.FileOptions",
		".google.protobuf.MessageOptions",
		".google.protobuf.FieldOptions",
		".google.protobuf.OneofOptions", ".google.protobuf.EnumOptions",
		".google.protobuf.EnumValueOptions",
		".google.protobuf.ServiceOptions",
		".google.protobuf.MethodOptions", NULL };

	for (size_t i = 0; i < n; i++) {
		const char *e = ext[i]->extendee;
		size_t j;

		for (j = 0; e != NULL && options[j] != NULL; j++) {
			if (strcmp(e, options[j]) == 0)
				break;
		}
		if (e == NULL || options[j] == NULL)
			return fail(l,
			    "%s%sextension %s of %s: extensions are not "
			    "supported",
			    where != NULL ? where : "",
			    where != NULL ? ": " : "",
			    ext[i]->name != NULL ? ext[i]->name : "?",
			    e != NULL ? e : "?");
	}
	return 0;
}

/* Adds enum |en| under |scope|. */
static int
collect_enum(struct loader *l, const char *scope,
    const Google__Protobuf__FileDescriptorProto *file,
    const Google__Protobuf__EnumDescriptorProto *en)
{
	if (!is_ident(en->name))
		return fail(l, "%s: an enum has an invalid name", scope);
	def_add(l->s, xasprintf("%s.%s", scope, en->name), file, NULL, en);
	return 0;
}

/* Adds |msg| and everything nested in it under |scope|. */
static int
collect_message(struct loader *l, const char *scope,
    const Google__Protobuf__FileDescriptorProto *file,
    const Google__Protobuf__DescriptorProto *msg)
{
	char *name;

	if (!is_ident(msg->name))
		return fail(l, "%s: a message has an invalid name", scope);
	name = xasprintf("%s.%s", scope, msg->name);
	def_add(l->s, name, file, msg, NULL);
	if (msg->n_extension_range > 0)
		return fail(
		    l, "%s: extension ranges are not supported", name + 1);
	if (check_extensions(l, name + 1, msg->n_extension, msg->extension) ==
	    -1)
		return -1;
	for (size_t i = 0; i < msg->n_nested_type; i++) {
		if (collect_message(l, name, file, msg->nested_type[i]) == -1)
			return -1;
	}
	for (size_t i = 0; i < msg->n_enum_type; i++) {
		if (collect_enum(l, name, file, msg->enum_type[i]) == -1)
			return -1;
	}
	return 0;
}

/* Adds the definitions of |fp|, checking what the file may use. */
static int
collect_file(struct loader *l, const Google__Protobuf__FileDescriptorProto *fp)
{
	const char *pkg = fp->package != NULL ? fp->package : "";
	char *scope;
	int rc = 0;

	if (fp->syntax == NULL || strcmp(fp->syntax, "proto3") != 0) {
		/* descriptor.proto (proto2) comes with files that declare
		 * custom options; nothing in it is a payload type. */
		if ((fp->syntax == NULL || strcmp(fp->syntax, "proto2") == 0) &&
		    strcmp(fp->name, "google/protobuf/descriptor.proto") == 0)
			return 0;
		return fail(l, "syntax \"%s\" is not supported (proto3 only)",
		    fp->syntax != NULL ? fp->syntax : "proto2");
	}
	if (!is_package(pkg))
		return fail(l, "invalid package name \"%s\"", pkg);
	if (check_extensions(l, NULL, fp->n_extension, fp->extension) == -1)
		return -1;
	scope = *pkg != '\0' ? xasprintf(".%s", pkg) : xstrdup("");
	for (size_t i = 0; rc == 0 && i < fp->n_message_type; i++)
		rc = collect_message(l, scope, fp, fp->message_type[i]);
	for (size_t i = 0; rc == 0 && i < fp->n_enum_type; i++)
		rc = collect_enum(l, scope, fp, fp->enum_type[i]);
	free(scope);
	return rc;
}

/* Records |fp| unless a file of that name was seen: then it must be the
 * same file. */
static int
add_file(struct loader *l, const Google__Protobuf__FileDescriptorProto *fp)
{
	if (fp->name == NULL || *fp->name == '\0')
		return fail(l, "a file has no name");
	for (size_t i = 0; i < l->n_files; i++) {
		const ProtobufCMessage *a = &l->files[i].fp->base;
		size_t n;
		uint8_t *pa, *pb;
		int same;

		if (strcmp(l->files[i].fp->name, fp->name) != 0)
			continue;
		n = protobuf_c_message_get_packed_size(a);
		if (protobuf_c_message_get_packed_size(&fp->base) != n)
			return fail(l,
			    "%s differs from the file of that name "
			    "in %s",
			    fp->name, l->files[i].set);
		pa = xmalloc(n);
		pb = xmalloc(n);
		protobuf_c_message_pack(a, pa);
		protobuf_c_message_pack(&fp->base, pb);
		same = memcmp(pa, pb, n) == 0;
		free(pa);
		free(pb);
		if (!same)
			return fail(l,
			    "%s differs from the file of that name "
			    "in %s",
			    fp->name, l->files[i].set);
		return 0;
	}
	l->files = xreallocarray(l->files, l->n_files + 1, sizeof *l->files);
	l->files[l->n_files].fp = fp;
	l->files[l->n_files++].set = l->set;
	return 0;
}

/* Parses one set and records its files. */
static int
load_set(struct loader *l, const struct schema_source *src)
{
	struct schema_limits lim = schema_limits_default;
	Google__Protobuf__FileDescriptorSet *set;
	char *why = NULL;

	l->set = src->name;
	l->file = NULL;
	lim.max_size = SET_MAX_SIZE;
	lim.max_depth = SET_MAX_DEPTH;
	lim.max_memory = 16 * (size_t)SET_MAX_SIZE;
	if (pbwire_check(&google__protobuf__file_descriptor_set__descriptor,
		src->data, src->len, &lim, &why) == -1) {
		fail(l, "not a FileDescriptorSet (%s)", why);
		free(why);
		return -1;
	}
	set = (Google__Protobuf__FileDescriptorSet *)protobuf_c_message_unpack(
	    &google__protobuf__file_descriptor_set__descriptor,
	    &schema_allocator, src->len, src->data);
	if (set == NULL)
		return fail(l, "not a FileDescriptorSet");
	l->s->sets =
	    xreallocarray(l->s->sets, l->s->n_sets + 1, sizeof *l->s->sets);
	l->s->sets[l->s->n_sets++] = set;
	if (set->n_file == 0)
		return fail(l, "the set holds no files");
	for (size_t i = 0; i < set->n_file; i++) {
		if (add_file(l, set->file[i]) == -1)
			return -1;
	}
	return 0;
}

/* Orders enum values by number. */
static int
enum_value_cmp(const void *a, const void *b)
{
	const ProtobufCEnumValue *x = a, *y = b;

	return (x->value > y->value) - (x->value < y->value);
}

/* Orders the enum name index by name. */
static int
enum_name_cmp(const void *a, const void *b)
{
	return strcmp(((const ProtobufCEnumValueIndex *)a)->name,
	    ((const ProtobufCEnumValueIndex *)b)->name);
}

/* Builds protobuf-c's descriptor of an enum, as protoc-c would: values
 * by number without aliases, every name in the name index. */
static int
build_enum(struct loader *l, struct def *d)
{
	const Google__Protobuf__EnumDescriptorProto *en = d->en;
	ProtobufCEnumDescriptor *ed;
	ProtobufCEnumValue *values;
	ProtobufCEnumValueIndex *names;
	ProtobufCIntRange *ranges;
	size_t n = en->n_value, u, r;

	if (n == 0)
		return fail(l, "enum %s has no values", d->name + 1);
	values = xcalloc(n, sizeof *values);
	names = xcalloc(n, sizeof *names);
	ranges = xcalloc(n + 1, sizeof *ranges);
	ed = xcalloc(1, sizeof *ed);
	ed->magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC;
	ed->name = d->name + 1;
	ed->short_name = en->name;
	ed->c_name = d->name + 1;
	ed->package_name = d->file->package != NULL ? d->file->package : "";
	ed->values = values;
	ed->values_by_name = names;
	ed->value_ranges = ranges;
	d->enumd = ed;
	for (size_t i = 0; i < n; i++) {
		if (!is_ident(en->value[i]->name))
			return fail(l, "enum %s: a value has an invalid name",
			    d->name + 1);
		values[i].name = en->value[i]->name;
		values[i].c_name = en->value[i]->name;
		values[i].value = en->value[i]->number;
	}
	/* Stable by number: the first of aliases keeps the number. */
	for (size_t i = 1; i < n; i++) {
		ProtobufCEnumValue v = values[i];
		size_t j = i;

		while (j > 0 && enum_value_cmp(&values[j - 1], &v) > 0) {
			values[j] = values[j - 1];
			j--;
		}
		values[j] = v;
	}
	for (u = 0, r = 0; u < n; u++) {
		if (r == 0 || values[r - 1].value != values[u].value)
			values[r++] = values[u];
	}
	ed->n_values = (unsigned)r;
	/* Ranges of consecutive numbers, and the closing entry. */
	u = 0;
	for (size_t i = 0; i < r; i++) {
		if (i == 0 || values[i].value != values[i - 1].value + 1) {
			ranges[u].start_value = values[i].value;
			ranges[u++].orig_index = (int)i;
		}
	}
	ed->n_value_ranges = (unsigned)u;
	ranges[u].start_value = 0;
	ranges[u].orig_index = (int)r;
	for (size_t i = 0; i < n; i++) {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(
			ed, en->value[i]->number);

		names[i].name = en->value[i]->name;
		names[i].index = (unsigned)(v - values);
	}
	qsort(names, n, sizeof *names, enum_name_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(names[i].name, names[i - 1].name) == 0)
			return fail(l, "enum %s: value %s is defined twice",
			    d->name + 1, names[i].name);
	}
	ed->n_value_names = (unsigned)n;
	return 0;
}

/* protoc's lowerCamelCase JSON name of a field. */
static char *
json_name(const char *name)
{
	char *out = xmalloc(strlen(name) + 1), *p = out;
	int up = 0;

	for (; *name != '\0'; name++) {
		if (*name == '_') {
			up = 1;
		} else if (up) {
			*p++ =
			    (*name >= 'a' && *name <= 'z') ? *name - 32 : *name;
			up = 0;
		} else {
			*p++ = *name;
		}
	}
	*p = '\0';
	return out;
}

/* protobuf-c's type for a descriptor.proto type; -1 if unsupported. */
static int
pb_type(int t)
{
	switch (t) {
	case FIELD_TYPE(DOUBLE):
		return PROTOBUF_C_TYPE_DOUBLE;
	case FIELD_TYPE(FLOAT):
		return PROTOBUF_C_TYPE_FLOAT;
	case FIELD_TYPE(INT64):
		return PROTOBUF_C_TYPE_INT64;
	case FIELD_TYPE(UINT64):
		return PROTOBUF_C_TYPE_UINT64;
	case FIELD_TYPE(INT32):
		return PROTOBUF_C_TYPE_INT32;
	case FIELD_TYPE(FIXED64):
		return PROTOBUF_C_TYPE_FIXED64;
	case FIELD_TYPE(FIXED32):
		return PROTOBUF_C_TYPE_FIXED32;
	case FIELD_TYPE(BOOL):
		return PROTOBUF_C_TYPE_BOOL;
	case FIELD_TYPE(STRING):
		return PROTOBUF_C_TYPE_STRING;
	case FIELD_TYPE(MESSAGE):
		return PROTOBUF_C_TYPE_MESSAGE;
	case FIELD_TYPE(BYTES):
		return PROTOBUF_C_TYPE_BYTES;
	case FIELD_TYPE(UINT32):
		return PROTOBUF_C_TYPE_UINT32;
	case FIELD_TYPE(ENUM):
		return PROTOBUF_C_TYPE_ENUM;
	case FIELD_TYPE(SFIXED32):
		return PROTOBUF_C_TYPE_SFIXED32;
	case FIELD_TYPE(SFIXED64):
		return PROTOBUF_C_TYPE_SFIXED64;
	case FIELD_TYPE(SINT32):
		return PROTOBUF_C_TYPE_SINT32;
	case FIELD_TYPE(SINT64):
		return PROTOBUF_C_TYPE_SINT64;
	default:
		return -1;
	}
}

/* Size and alignment of one value of |type| in a message struct. */
static void
value_layout(ProtobufCType type, size_t *size, size_t *align)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		*size = sizeof(int32_t);
		*align = _Alignof(int32_t);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*size = sizeof(float);
		*align = _Alignof(float);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*size = sizeof(int64_t);
		*align = _Alignof(int64_t);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*size = sizeof(double);
		*align = _Alignof(double);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*size = sizeof(protobuf_c_boolean);
		*align = _Alignof(protobuf_c_boolean);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		*size = sizeof(ProtobufCBinaryData);
		*align = _Alignof(ProtobufCBinaryData);
		break;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		*size = sizeof(void *);
		*align = _Alignof(void *);
		break;
	}
}

/* Places |size| bytes aligned to |align| at the end of a struct being
 * laid out; returns their offset. */
static unsigned
place(size_t *end, size_t *max_align, size_t size, size_t align)
{
	size_t at = (*end + align - 1) / align * align;

	*end = at + size;
	if (align > *max_align)
		*max_align = align;
	return (unsigned)at;
}

/* Whether the oneof at |index| of |msg| is a real one, not the synthetic
 * oneof of a proto3 optional field. */
static int
oneof_is_real(const Google__Protobuf__DescriptorProto *msg, int32_t index)
{
	for (size_t i = 0; i < msg->n_field; i++) {
		const Google__Protobuf__FieldDescriptorProto *f = msg->field[i];

		if (f->has_oneof_index && f->oneof_index == index &&
		    !(f->has_proto3_optional && f->proto3_optional))
			return 1;
	}
	return 0;
}

/* Whether repeated fields of |t| are packed in proto3. */
static int
is_packable(ProtobufCType t)
{
	return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES &&
	    t != PROTOBUF_C_TYPE_MESSAGE;
}

/* The definition a field's type_name names, of the kind it must be. */
static struct def *
resolve(struct loader *l, const char *where,
    const Google__Protobuf__FieldDescriptorProto *f, int want_msg)
{
	struct def *d;

	if (f->type_name == NULL || f->type_name[0] != '.') {
		fail(l, "%s: type name \"%s\" is not fully qualified", where,
		    f->type_name != NULL ? f->type_name : "");
		return NULL;
	}
	if ((d = def_find(l->s, f->type_name)) == NULL) {
		fail(l,
		    "%s: type %s is not in the descriptor sets (did protoc "
		    "run with --include_imports?)",
		    where, f->type_name + 1);
		return NULL;
	}
	if ((d->msg != NULL) != want_msg) {
		fail(l, "%s: %s is not %s", where, f->type_name + 1,
		    want_msg ? "a message" : "an enum");
		return NULL;
	}
	return d;
}

struct field_build {
	const Google__Protobuf__FieldDescriptorProto *fp;
	ProtobufCFieldDescriptor pb;
	struct schema_field sf;
};

/* Orders fields by number, as protobuf-c looks them up. */
static int
field_number_cmp(const void *a, const void *b)
{
	const struct field_build *x = a, *y = b;

	return (x->pb.id > y->pb.id) - (x->pb.id < y->pb.id);
}

/* Fills the protobuf-c descriptor of field |f| of |d| except offsets. */
static int
build_field(struct loader *l, struct def *d, struct field_build *fb)
{
	const Google__Protobuf__FieldDescriptorProto *f = fb->fp;
	ProtobufCFieldDescriptor *pb = &fb->pb;
	char where[512];
	struct def *t;
	int type;

	if (!is_ident(f->name))
		return fail(l, "%s: a field has an invalid name", d->name + 1);
	snprintf(where, sizeof where, "%s.%s", d->name + 1, f->name);
	if (!f->has_number || f->number < 1 || f->number > FIELD_NUMBER_MAX)
		return fail(l, "%s: invalid field number", where);
	if (!f->has_type || f->type == FIELD_TYPE(GROUP) ||
	    (type = pb_type(f->type)) == -1)
		return fail(l, "%s: %s", where,
		    f->has_type && f->type == FIELD_TYPE(GROUP)
			? "groups are not supported"
			: "unknown field type");
	if (f->has_label && f->label == FIELD_LABEL(REQUIRED))
		return fail(l, "%s: required fields are not supported", where);
	if (f->has_label && f->label != FIELD_LABEL(OPTIONAL) &&
	    f->label != FIELD_LABEL(REPEATED))
		return fail(l, "%s: unknown field label", where);
	if (f->default_value != NULL)
		return fail(l, "%s: default values are not supported", where);
	if (f->extendee != NULL)
		return fail(l, "%s: extensions are not supported", where);
	pb->name = f->name;
	pb->id = (uint32_t)f->number;
	pb->type = (ProtobufCType)type;
	fb->sf.oneof = -1;
	if (f->has_label && f->label == FIELD_LABEL(REPEATED)) {
		pb->label = PROTOBUF_C_LABEL_REPEATED;
		if (is_packable(pb->type) &&
		    !(f->options != NULL && f->options->has_packed &&
			!f->options->packed))
			pb->flags |= PROTOBUF_C_FIELD_FLAG_PACKED;
	} else if (f->has_proto3_optional && f->proto3_optional) {
		pb->label = PROTOBUF_C_LABEL_OPTIONAL;
	} else {
		pb->label = PROTOBUF_C_LABEL_NONE;
	}
	if (f->has_oneof_index) {
		if (f->oneof_index < 0 ||
		    (size_t)f->oneof_index >= d->msg->n_oneof_decl)
			return fail(l, "%s: invalid oneof index", where);
		if (oneof_is_real(d->msg, f->oneof_index)) {
			if (pb->label == PROTOBUF_C_LABEL_REPEATED)
				return fail(
				    l, "%s: repeated field in a oneof", where);
			pb->flags |= PROTOBUF_C_FIELD_FLAG_ONEOF;
			fb->sf.oneof = f->oneof_index;
		}
	} else if (pb->label == PROTOBUF_C_LABEL_OPTIONAL) {
		return fail(l, "%s: optional field outside a oneof", where);
	}
	/* Implicit-presence strings default to protobuf-c's "" so that
	 * they are never NULL; optional ones are NULL when unset. */
	if (pb->type == PROTOBUF_C_TYPE_STRING &&
	    pb->label != PROTOBUF_C_LABEL_OPTIONAL &&
	    (pb->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0)
		pb->default_value = &protobuf_c_empty_string;
	if (pb->type == PROTOBUF_C_TYPE_MESSAGE) {
		if ((t = resolve(l, where, f, 1)) == NULL)
			return -1;
		pb->descriptor = &t->type->pb;
		fb->sf.message = t->type;
		if (t->msg->options != NULL && t->msg->options->map_entry) {
			if (pb->label != PROTOBUF_C_LABEL_REPEATED)
				return fail(l,
				    "%s: a map entry used as a "
				    "field that is not repeated",
				    where);
			fb->sf.map = true;
		}
	} else if (pb->type == PROTOBUF_C_TYPE_ENUM) {
		if ((t = resolve(l, where, f, 0)) == NULL)
			return -1;
		pb->descriptor = t->enumd;
		fb->sf.null_value =
		    strcmp(t->name, ".google.protobuf.NullValue") == 0;
	} else if (f->type_name != NULL) {
		return fail(l, "%s: a scalar field with a type name", where);
	}
	if (f->json_name != NULL && *f->json_name != '\0')
		fb->sf.json_name = xstrdup(f->json_name);
	else
		fb->sf.json_name = json_name(f->name);
	return 0;
}

/* Lays fields out as protoc-c does: fields in declaration order (a count
 * before each repeated field, a has_ flag before each optional scalar),
 * then each real oneof as a case and a union. */
static void
layout(struct schema_type *t, struct field_build *fb, size_t n, size_t n_oneofs)
{
	size_t end = sizeof(ProtobufCMessage), align = _Alignof(void *);
	size_t size, a;

	for (size_t i = 0; i < n; i++) {
		ProtobufCFieldDescriptor *pb = &fb[i].pb;

		if (pb->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			continue;
		if (pb->label == PROTOBUF_C_LABEL_REPEATED) {
			pb->quantifier_offset = place(
			    &end, &align, sizeof(size_t), _Alignof(size_t));
			pb->offset = place(
			    &end, &align, sizeof(void *), _Alignof(void *));
			continue;
		}
		if (pb->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    pb->type != PROTOBUF_C_TYPE_STRING &&
		    pb->type != PROTOBUF_C_TYPE_MESSAGE)
			pb->quantifier_offset =
			    place(&end, &align, sizeof(protobuf_c_boolean),
				_Alignof(protobuf_c_boolean));
		value_layout(pb->type, &size, &a);
		pb->offset = place(&end, &align, size, a);
	}
	for (size_t o = 0; o < n_oneofs; o++) {
		size_t usize = 0, ualign = 1;
		unsigned qoff = 0, uoff;
		int any = 0;

		for (size_t i = 0; i < n; i++) {
			if (fb[i].sf.oneof != (int)o)
				continue;
			value_layout(fb[i].pb.type, &size, &a);
			usize = size > usize ? size : usize;
			ualign = a > ualign ? a : ualign;
			any = 1;
		}
		if (!any)
			continue;
		qoff =
		    place(&end, &align, sizeof(uint32_t), _Alignof(uint32_t));
		usize = (usize + ualign - 1) / ualign * ualign;
		uoff = place(&end, &align, usize, ualign);
		for (size_t i = 0; i < n; i++) {
			if (fb[i].sf.oneof != (int)o)
				continue;
			fb[i].pb.quantifier_offset = qoff;
			fb[i].pb.offset = uoff;
		}
	}
	t->pb.sizeof_message = (end + align - 1) / align * align;
}

/* Orders field indexes by field name. */
static int
field_name_cmp(const void *a, const void *b, void *fields)
{
	const ProtobufCFieldDescriptor *f = fields;

	return strcmp(
	    f[*(const unsigned *)a].name, f[*(const unsigned *)b].name);
}

/* Orders field indexes by JSON name. */
static int
field_json_cmp(const void *a, const void *b, void *fields)
{
	const struct schema_field *f = fields;

	return strcmp(f[*(const unsigned *)a].json_name,
	    f[*(const unsigned *)b].json_name);
}

/* Checks that each name and JSON name selects one field only. */
static int
check_names(struct loader *l, struct schema_type *t)
{
	size_t n = t->pb.n_fields;

	for (size_t i = 1; i < n; i++) {
		const char *a =
		    t->pb.fields[t->pb.fields_sorted_by_name[i]].name;
		const char *b = t->fields[t->by_json_name[i]].json_name;

		if (strcmp(a,
			t->pb.fields[t->pb.fields_sorted_by_name[i - 1]]
			    .name) == 0)
			return fail(
			    l, "%s: field %s is defined twice", t->pb.name, a);
		if (strcmp(b, t->fields[t->by_json_name[i - 1]].json_name) == 0)
			return fail(
			    l, "%s: JSON name %s is used twice", t->pb.name, b);
	}
	for (size_t i = 0; i < n; i++) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(
			&t->pb, t->fields[i].json_name);

		if (f != NULL && f != &t->pb.fields[i])
			return fail(l,
			    "%s: JSON name %s of field %s is the name of "
			    "another field",
			    t->pb.name, t->fields[i].json_name,
			    t->pb.fields[i].name);
	}
	return 0;
}

/* A map entry has a key (1) of an integer, bool or string type and a
 * value (2), both without presence. */
static int
check_map_entry(struct loader *l, const struct schema_type *t)
{
	const ProtobufCFieldDescriptor *f = t->pb.fields;

	if (t->pb.n_fields != 2 || f[0].id != 1 || f[1].id != 2 ||
	    strcmp(f[0].name, "key") != 0 || strcmp(f[1].name, "value") != 0 ||
	    f[0].label != PROTOBUF_C_LABEL_NONE ||
	    f[1].label != PROTOBUF_C_LABEL_NONE ||
	    ((f[0].flags | f[1].flags) & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 ||
	    f[0].type == PROTOBUF_C_TYPE_FLOAT ||
	    f[0].type == PROTOBUF_C_TYPE_DOUBLE ||
	    f[0].type == PROTOBUF_C_TYPE_BYTES ||
	    f[0].type == PROTOBUF_C_TYPE_MESSAGE ||
	    f[0].type == PROTOBUF_C_TYPE_ENUM)
		return fail(l, "map entry %s does not have the shape of one",
		    t->pb.name);
	return 0;
}

/* Builds the descriptor of message |d|, whose struct schema_type exists
 * (as do those of every message it refers to). */
static int
build_type(struct loader *l, struct def *d)
{
	const Google__Protobuf__DescriptorProto *msg = d->msg;
	struct schema_type *t = d->type;
	ProtobufCFieldDescriptor *fields;
	ProtobufCIntRange *ranges;
	struct field_build *fb;
	unsigned *by_name, *by_json, r;
	size_t n = msg->n_field;
	int rc = -1;

	t->pb.magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
	t->pb.name = d->name + 1;
	t->pb.short_name = msg->name;
	t->pb.c_name = d->name + 1;
	t->pb.package_name = d->file->package != NULL ? d->file->package : "";
	t->map_entry = msg->options != NULL && msg->options->map_entry;
	t->n_oneofs = (unsigned)msg->n_oneof_decl;
	t->oneofs = xcalloc(msg->n_oneof_decl, sizeof *t->oneofs);
	for (size_t i = 0; i < msg->n_oneof_decl; i++) {
		if (!is_ident(msg->oneof_decl[i]->name))
			return fail(
			    l, "%s: a oneof has an invalid name", t->pb.name);
		t->oneofs[i] = msg->oneof_decl[i]->name;
	}

	fb = xcalloc(n, sizeof *fb);
	for (size_t i = 0; i < n; i++) {
		fb[i].fp = msg->field[i];
		if (build_field(l, d, &fb[i]) == -1)
			goto out;
	}
	layout(t, fb, n, msg->n_oneof_decl);
	/* protobuf-c finds fields by number in a sorted table. */
	qsort(fb, n, sizeof *fb, field_number_cmp);
	fields = xcalloc(n, sizeof *fields);
	t->fields = xcalloc(n, sizeof *t->fields);
	t->pb.fields = fields;
	t->pb.n_fields = (unsigned)n;
	for (size_t i = 0; i < n; i++) {
		fields[i] = fb[i].pb;
		t->fields[i] = fb[i].sf;
		fb[i].sf.json_name = NULL;
		if (i > 0 && fields[i].id == fields[i - 1].id) {
			fail(l, "%s: field number %u is used twice", t->pb.name,
			    fields[i].id);
			goto out;
		}
	}
	ranges = xcalloc(n + 1, sizeof *ranges);
	t->pb.field_ranges = ranges;
	r = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || fields[i].id != fields[i - 1].id + 1) {
			ranges[r].start_value = (int)fields[i].id;
			ranges[r++].orig_index = (int)i;
		}
	}
	ranges[r].start_value = 0;
	ranges[r].orig_index = (int)n;
	t->pb.n_field_ranges = r;
	by_name = xcalloc(n, sizeof *by_name);
	by_json = xcalloc(n, sizeof *by_json);
	for (size_t i = 0; i < n; i++)
		by_name[i] = by_json[i] = (unsigned)i;
	qsort_r(by_name, n, sizeof *by_name, field_name_cmp, fields);
	qsort_r(by_json, n, sizeof *by_json, field_json_cmp, t->fields);
	t->pb.fields_sorted_by_name = by_name;
	t->by_json_name = by_json;
	rc = check_names(l, t);
	if (rc == 0 && t->map_entry)
		rc = check_map_entry(l, t);
out:
	for (size_t i = 0; i < n; i++)
		free((char *)fb[i].sf.json_name);
	free(fb);
	return rc;
}

/* The shape a well-known type must have to be mapped specially. */
struct wkt_field {
	const char *name;
	ProtobufCType type;
	ProtobufCLabel label;
	const char *message; /* full name of a MESSAGE field's type */
};

struct wkt_shape {
	const char *name;
	enum schema_wkt wkt;
	struct wkt_field fields[6]; /* numbered from 1 */
};

#define WRAPPER(n, t)                                                          \
	{                                                                      \
		"google.protobuf." n, SCHEMA_WKT_WRAPPER,                      \
		{                                                              \
			{                                                      \
				"value", PROTOBUF_C_TYPE_##t,                  \
				    PROTOBUF_C_LABEL_NONE, NULL                \
			}                                                      \
		}                                                              \
	}

static const struct wkt_shape wkt_shapes[] = {
	{ "google.protobuf.Timestamp", SCHEMA_WKT_TIMESTAMP,
	    { { "seconds", PROTOBUF_C_TYPE_INT64, PROTOBUF_C_LABEL_NONE, NULL },
		{ "nanos", PROTOBUF_C_TYPE_INT32, PROTOBUF_C_LABEL_NONE,
		    NULL } } },
	{ "google.protobuf.Duration", SCHEMA_WKT_DURATION,
	    { { "seconds", PROTOBUF_C_TYPE_INT64, PROTOBUF_C_LABEL_NONE, NULL },
		{ "nanos", PROTOBUF_C_TYPE_INT32, PROTOBUF_C_LABEL_NONE,
		    NULL } } },
	WRAPPER("DoubleValue", DOUBLE),
	WRAPPER("FloatValue", FLOAT),
	WRAPPER("Int64Value", INT64),
	WRAPPER("UInt64Value", UINT64),
	WRAPPER("Int32Value", INT32),
	WRAPPER("UInt32Value", UINT32),
	WRAPPER("BoolValue", BOOL),
	WRAPPER("StringValue", STRING),
	WRAPPER("BytesValue", BYTES),
	{ "google.protobuf.Struct", SCHEMA_WKT_STRUCT,
	    { { "fields", PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED,
		"google.protobuf.Struct.FieldsEntry" } } },
	{ "google.protobuf.Struct.FieldsEntry", SCHEMA_WKT_NONE,
	    { { "key", PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE, NULL },
		{ "value", PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE,
		    "google.protobuf.Value" } } },
	{ "google.protobuf.Value", SCHEMA_WKT_VALUE,
	    { { "null_value", PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_LABEL_NONE,
		  NULL },
		{ "number_value", PROTOBUF_C_TYPE_DOUBLE, PROTOBUF_C_LABEL_NONE,
		    NULL },
		{ "string_value", PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE,
		    NULL },
		{ "bool_value", PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE,
		    NULL },
		{ "struct_value", PROTOBUF_C_TYPE_MESSAGE,
		    PROTOBUF_C_LABEL_NONE, "google.protobuf.Struct" },
		{ "list_value", PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_NONE,
		    "google.protobuf.ListValue" } } },
	{ "google.protobuf.ListValue", SCHEMA_WKT_LIST_VALUE,
	    { { "values", PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_LABEL_REPEATED,
		"google.protobuf.Value" } } },
};

/* Marks a well-known type, after checking that it has the known shape
 * (the JSON mapping relies on it). */
static int
check_wkt(struct loader *l, struct schema_type *t)
{
	const struct wkt_shape *w = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof wkt_shapes / sizeof *wkt_shapes; i++) {
		if (strcmp(wkt_shapes[i].name, t->pb.name) == 0)
			w = &wkt_shapes[i];
	}
	if (w == NULL)
		return 0;
	while (n < 6 && w->fields[n].name != NULL)
		n++;
	if (t->pb.n_fields != n)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		const ProtobufCFieldDescriptor *f = &t->pb.fields[i];
		const struct wkt_field *e = &w->fields[i];

		if (f->id != i + 1 || strcmp(f->name, e->name) != 0 ||
		    f->type != e->type ||
		    (f->label == PROTOBUF_C_LABEL_REPEATED) !=
			(e->label == PROTOBUF_C_LABEL_REPEATED) ||
		    (f->label == PROTOBUF_C_LABEL_OPTIONAL) ||
		    ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) !=
			(w->wkt == SCHEMA_WKT_VALUE) ||
		    (e->message != NULL &&
			strcmp(
			    ((const ProtobufCMessageDescriptor *)f->descriptor)
				->name,
			    e->message) != 0))
			goto bad;
	}
	t->wkt = w->wkt;
	return 0;
bad:
	return fail(
	    l, "%s does not have the shape of the well-known type", t->pb.name);
}

/* The nullable enum must be the well-known one too. */
static int
check_null_value(struct loader *l, const struct def *d)
{
	const ProtobufCEnumDescriptor *e = d->enumd;

	if (strcmp(d->name, ".google.protobuf.NullValue") != 0)
		return 0;
	if (e->n_values != 1 || e->values[0].value != 0)
		return fail(l,
		    "%s does not have the shape of the well-known "
		    "type",
		    d->name + 1);
	return 0;
}

/* Errors from now on name the set and file that define |d|. */
static void
locate(struct loader *l, const struct def *d)
{
	for (size_t j = 0; j < l->n_files; j++) {
		if (l->files[j].fp == d->file)
			l->set = l->files[j].set;
	}
	l->file = d->file->name;
}

/* Builds every definition of the files collected. */
static int
build(struct loader *l)
{
	struct schema *s = l->s;

	l->file = NULL;
	for (size_t i = 0; i < l->n_files; i++) {
		l->set = l->files[i].set;
		l->file = l->files[i].fp->name;
		if (collect_file(l, l->files[i].fp) == -1)
			return -1;
	}
	l->file = NULL;
	if (s->n_defs > 0)
		qsort(s->defs, s->n_defs, sizeof *s->defs, def_cmp);
	for (size_t i = 1; i < s->n_defs; i++) {
		if (strcmp(s->defs[i].name, s->defs[i - 1].name) == 0)
			return fail(
			    l, "%s is defined twice", s->defs[i].name + 1);
	}
	for (size_t i = 0; i < s->n_defs; i++) {
		struct def *d = &s->defs[i];

		locate(l, d);
		if (d->msg != NULL) {
			if (strcmp(d->name, ".google.protobuf.Any") == 0 ||
			    strcmp(d->name, ".google.protobuf.FieldMask") == 0)
				return fail(
				    l, "%s is not supported", d->name + 1);
			d->type = xcalloc(1, sizeof *d->type);
			s->types = xreallocarray(
			    s->types, s->n_types + 1, sizeof *s->types);
			s->types[s->n_types++] = d->type;
		} else if (build_enum(l, d) == -1 ||
		    check_null_value(l, d) == -1) {
			return -1;
		}
	}
	for (size_t i = 0; i < s->n_defs; i++) {
		struct def *d = &s->defs[i];

		locate(l, d);
		if (d->msg != NULL && build_type(l, d) == -1)
			return -1;
	}
	/* Fields name the types they refer to only once all are built. */
	for (size_t i = 0; i < s->n_defs; i++) {
		struct def *d = &s->defs[i];

		locate(l, d);
		if (d->msg != NULL && check_wkt(l, d->type) == -1)
			return -1;
	}
	return 0;
}

struct schema *
schema_load(const struct schema_source *src, size_t n, char **err)
{
	struct schema *s = xcalloc(1, sizeof *s);
	struct loader l = { .s = s, .err = err };

	*err = NULL;
	if (n == 0) {
		*err = xstrdup("no descriptor sets");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (load_set(&l, &src[i]) == -1)
			goto fail;
	}
	if (build(&l) == -1)
		goto fail;
	free(l.files);
	return s;
fail:
	free(l.files);
	schema_free(s);
	return NULL;
}

/* Reads all of |path|, at most SET_MAX_SIZE bytes. */
static void *
read_file(const char *path, size_t *len, char **err)
{
	struct stat st;
	void *data = NULL;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
		*err = xasprintf("%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)SET_MAX_SIZE) {
		*err = xasprintf(
		    "%s: larger than %u bytes", path, (unsigned)SET_MAX_SIZE);
		goto out;
	}
	*len = (size_t)st.st_size;
	data = xmalloc(*len);
	if (fread(data, 1, *len, f) != *len) {
		*err = xasprintf("%s: read error", path);
		free(data);
		data = NULL;
	}
out:
	fclose(f);
	return data;
}

struct schema *
schema_load_files(const char *const *paths, size_t n, char **err)
{
	struct schema_source *src = xcalloc(n, sizeof *src);
	struct schema *s = NULL;
	size_t i;

	*err = NULL;
	for (i = 0; i < n; i++) {
		src[i].name = paths[i];
		if ((src[i].data = read_file(paths[i], &src[i].len, err)) ==
		    NULL)
			goto out;
	}
	s = schema_load(src, n, err);
out:
	while (i-- > 0)
		free((void *)src[i].data);
	free(src);
	return s;
}

/* Frees what build_type() allocated. */
static void
type_free(struct schema_type *t)
{
	if (t == NULL)
		return;
	if (t->fields != NULL) {
		for (unsigned i = 0; i < t->pb.n_fields; i++)
			free((char *)t->fields[i].json_name);
	}
	free(t->fields);
	free(t->by_json_name);
	free(t->oneofs);
	free((void *)t->pb.fields);
	free((void *)t->pb.fields_sorted_by_name);
	free((void *)t->pb.field_ranges);
	free(t);
}

/* Frees what build_enum() allocated. */
static void
enum_free(ProtobufCEnumDescriptor *e)
{
	if (e == NULL)
		return;
	free((void *)e->values);
	free((void *)e->values_by_name);
	free((void *)e->value_ranges);
	free(e);
}

void
schema_free(struct schema *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_defs; i++) {
		type_free(s->defs[i].type);
		enum_free(s->defs[i].enumd);
		free(s->defs[i].name);
	}
	for (size_t i = 0; i < s->n_sets; i++)
		protobuf_c_message_free_unpacked(
		    &s->sets[i]->base, &schema_allocator);
	free(s->defs);
	free(s->types);
	free(s->sets);
	free(s);
}

const struct schema_type *
schema_lookup(const struct schema *s, const char *full_name)
{
	const struct def *d;
	char *name;

	if (*full_name == '.')
		d = def_find(s, full_name);
	else {
		name = xasprintf(".%s", full_name);
		d = def_find(s, name);
		free(name);
	}
	return d != NULL ? d->type : NULL;
}

size_t
schema_count(const struct schema *s)
{
	return s->n_types;
}

const struct schema_type *
schema_type_at(const struct schema *s, size_t i)
{
	return s->types[i];
}

const char *
schema_type_name(const struct schema_type *t)
{
	return t->pb.name;
}

const ProtobufCMessageDescriptor *
schema_type_descriptor(const struct schema_type *t)
{
	return &t->pb;
}

size_t
schema_element_size(ProtobufCType type)
{
	size_t size, align;

	value_layout(type, &size, &align);
	return size;
}

bool
schema_field_present(
    const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *p = ((const char *)m + f->offset);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)((const char *)m +
			   f->quantifier_offset) > 0;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)((const char *)m +
			   f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(const void *const *)p != NULL;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (f->type == PROTOBUF_C_TYPE_STRING)
			return *(const void *const *)p != NULL;
		return *(const protobuf_c_boolean *)((const char *)m +
		    f->quantifier_offset);
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return *(const char *const *)p != NULL &&
		    **(const char *const *)p != '\0';
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len > 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p != 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p != 0;
	default:
		return schema_element_size(f->type) == 8
		    ? *(const uint64_t *)p != 0
		    : *(const uint32_t *)p != 0;
	}
}

/* Compares |len| bytes at |name| with the string |s|, as strcmp(). */
static int
name_cmp(const char *name, size_t len, const char *s)
{
	size_t sl = strlen(s);
	int c = memcmp(name, s, len < sl ? len : sl);

	if (c != 0)
		return c;
	return (len > sl) - (len < sl);
}

int
schema_field_find(const struct schema_type *t, const char *name, size_t len)
{
	const unsigned *idx[2] = { t->by_json_name,
		t->pb.fields_sorted_by_name };

	for (int k = 0; k < 2; k++) {
		size_t lo = 0, hi = t->pb.n_fields;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			unsigned i = idx[k][mid];
			int c = name_cmp(name, len,
			    k == 0 ? t->fields[i].json_name
				   : t->pb.fields[i].name);

			if (c == 0)
				return (int)i;
			if (c < 0)
				hi = mid;
			else
				lo = mid + 1;
		}
	}
	return -1;
}

ProtobufCMessage *
schema_message_new(const struct schema_type *t)
{
	ProtobufCMessage *m = xcalloc(1, t->pb.sizeof_message);

	m->descriptor = &t->pb;
	for (unsigned i = 0; i < t->pb.n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &t->pb.fields[i];

		if (f->default_value != NULL &&
		    f->label != PROTOBUF_C_LABEL_REPEATED)
			*(const void **)((char *)m + f->offset) =
			    f->default_value;
	}
	return m;
}

void
schema_message_free(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, &schema_allocator);
}
