/*
 * Descriptor sets loaded at run time: the reference events, a schema
 * protoc writes while the test runs, and every startup error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/inventory.pb-c.h"
#include "events/orders_v1.pb-c.h"
#include "events/orders_v2.pb-c.h"
#include "events/payments.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "harness/cmocka.h"
#include "harness/protoc.h"
#include "sidecar/pbjson.h"
#include "sidecar/pbwire.h"
#include "sidecar/schema-t.h"
#include "sidecar/schema.h"

/* Hex of |len| bytes, in a static buffer. */
static const char *
hex(const uint8_t *p, size_t len)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; i < len && 2 * i + 2 < sizeof buf; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	return buf;
}

/* The load error of the sets in |src|; fails if they load. */
static char *
load_error(const struct schema_source *src, size_t n)
{
	char *err = NULL;
	struct schema *s = schema_load(src, n, &err);

	if (s != NULL) {
		schema_free(s);
		fail_msg("the sets loaded");
	}
	assert_non_null(err);
	return err;
}

static void
expect_error(const struct schema_source *src, size_t n, const char *want)
{
	char *err = load_error(src, n);

	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, want);
	free(err);
}

/* Compiles |proto| as |name| and expects loading it to fail with
 * |want|. */
static void
expect_proto_error(
    const char *name, const char *proto, int imports, const char *want)
{
	struct schema_source src = { name, NULL, 0 };

	src.data = protoc_compile(name, proto, imports, &src.len);
	expect_error(&src, 1, want);
	free((void *)src.data);
}

static void
loads_the_reference_events(void **state)
{
	static const char *const names[] = { "orders.v1.OrderCreated",
		"orders.v2.OrderCreated", "orders.v2.Customer",
		"orders.v2.LineItem", "orders.v3.OrderCreated",
		"orders.v3.Money", "orders.v3.Customer", "orders.v3.LineItem",
		"payments.v1.PaymentCompleted", "payments.v1.PaymentFailed",
		"inventory.v1.InventoryReserved", "inventory.v1.Reservation",
		"google.protobuf.Timestamp", "google.protobuf.Duration",
		"google.protobuf.StringValue" };
	struct schema *s = protoc_events();
	char dotted[128];

	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		const struct schema_type *t = schema_lookup(s, names[i]);

		if (t == NULL)
			fail_msg("%s is missing", names[i]);
		assert_string_equal(schema_type_name(t), names[i]);
		snprintf(dotted, sizeof dotted, ".%s", names[i]);
		assert_ptr_equal(schema_lookup(s, dotted), t);
		assert_ptr_equal(schema_type_descriptor(t)->magic,
		    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
	}
	assert_null(schema_lookup(s, "orders.v4.OrderCreated"));
	assert_null(schema_lookup(s, "orders.v2.Channel")); /* an enum */
	assert_null(schema_lookup(s, "orders"));
	/* 6 events, 6 nested types, 2 time types, 9 wrappers. */
	assert_int_equal(schema_count(s), 23);
	for (size_t i = 1; i < schema_count(s); i++)
		assert_true(strcmp(schema_type_name(schema_type_at(s, i - 1)),
				schema_type_name(schema_type_at(s, i))) < 0);
	schema_free(s);
}

static void
same_enum(const ProtobufCEnumDescriptor *a, const ProtobufCEnumDescriptor *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->n_values, b->n_values);
	assert_int_equal(a->n_value_names, b->n_value_names);
	assert_int_equal(a->n_value_ranges, b->n_value_ranges);
	for (unsigned i = 0; i < a->n_values; i++) {
		assert_string_equal(a->values[i].name, b->values[i].name);
		assert_int_equal(a->values[i].value, b->values[i].value);
	}
	for (unsigned i = 0; i < a->n_value_names; i++) {
		assert_string_equal(
		    a->values_by_name[i].name, b->values_by_name[i].name);
		assert_int_equal(
		    a->values_by_name[i].index, b->values_by_name[i].index);
	}
	for (unsigned i = 0; i <= a->n_value_ranges; i++) {
		assert_int_equal(a->value_ranges[i].start_value,
		    b->value_ranges[i].start_value);
		assert_int_equal(a->value_ranges[i].orig_index,
		    b->value_ranges[i].orig_index);
	}
}

/* A runtime descriptor is what protoc-c generates, offsets included. */
static void
same_descriptor(
    const ProtobufCMessageDescriptor *rt, const ProtobufCMessageDescriptor *gen)
{
	assert_string_equal(rt->name, gen->name);
	assert_string_equal(rt->short_name, gen->short_name);
	assert_string_equal(rt->package_name, gen->package_name);
	if (rt->sizeof_message != gen->sizeof_message)
		fail_msg("%s: %zu bytes, protoc-c says %zu", rt->name,
		    rt->sizeof_message, gen->sizeof_message);
	assert_int_equal(rt->n_fields, gen->n_fields);
	for (unsigned i = 0; i < rt->n_fields; i++) {
		const ProtobufCFieldDescriptor *a = &rt->fields[i],
					       *b = &gen->fields[i];

		assert_string_equal(a->name, b->name);
		assert_int_equal(a->id, b->id);
		assert_int_equal(a->label, b->label);
		assert_int_equal(a->type, b->type);
		if (a->offset != b->offset ||
		    a->quantifier_offset != b->quantifier_offset)
			fail_msg("%s.%s at %u/%u, protoc-c says %u/%u",
			    rt->name, a->name, a->offset, a->quantifier_offset,
			    b->offset, b->quantifier_offset);
		assert_int_equal(a->flags, b->flags);
		assert_true(
		    (a->default_value == NULL) == (b->default_value == NULL));
		if (a->type == PROTOBUF_C_TYPE_MESSAGE)
			assert_string_equal(
			    ((const ProtobufCMessageDescriptor *)a->descriptor)
				->name,
			    ((const ProtobufCMessageDescriptor *)b->descriptor)
				->name);
		if (a->type == PROTOBUF_C_TYPE_ENUM)
			same_enum(a->descriptor, b->descriptor);
	}
	for (unsigned i = 0; i < rt->n_fields; i++)
		assert_int_equal(rt->fields_sorted_by_name[i],
		    gen->fields_sorted_by_name[i]);
	assert_int_equal(rt->n_field_ranges, gen->n_field_ranges);
	for (unsigned i = 0; i <= rt->n_field_ranges; i++) {
		assert_int_equal(rt->field_ranges[i].start_value,
		    gen->field_ranges[i].start_value);
		assert_int_equal(rt->field_ranges[i].orig_index,
		    gen->field_ranges[i].orig_index);
	}
}

static void
lays_out_messages_as_protoc_c_does(void **state)
{
	const ProtobufCMessageDescriptor *gen[] = {
		&orders__v1__order_created__descriptor,
		&orders__v2__order_created__descriptor,
		&orders__v2__customer__descriptor,
		&orders__v2__line_item__descriptor,
		&payments__v1__payment_completed__descriptor,
		&payments__v1__payment_failed__descriptor,
		&inventory__v1__inventory_reserved__descriptor,
		&inventory__v1__reservation__descriptor,
		&google__protobuf__timestamp__descriptor,
		&google__protobuf__duration__descriptor,
		&google__protobuf__string_value__descriptor,
		&google__protobuf__bytes_value__descriptor,
		&google__protobuf__bool_value__descriptor,
	};
	struct schema *s = protoc_events();

	for (size_t i = 0; i < sizeof gen / sizeof *gen; i++) {
		const struct schema_type *t = schema_lookup(s, gen[i]->name);

		assert_non_null(t);
		same_descriptor(schema_type_descriptor(t), gen[i]);
	}
	schema_free(s);
}

static void
builds_a_schema_protoc_wrote_at_test_time(void **state)
{
	/* Nested, repeated (packed and not), enum and Timestamp fields;
	 * the bytes are what Google's protobuf encodes for this JSON. */
	static const char json[] =
	    "{\"id\":\"o-1\",\"status\":\"STATUS_OPEN\",\"shipTo\":{\"city\":"
	    "\"Lisboa\",\"lines\":[\"a\",\"b\"]},\"lines\":[{\"sku\":\"A\","
	    "\"qty\":2,\"kind\":\"KIND_GOODS\"},{\"sku\":\"B\",\"delta\":"
	    "\"-3\"}],\"counts\":[1,-1,300],\"createdAt\":\"2024-11-23T10:"
	    "00:00.250Z\"}";
	static const char want[] =
	    "0a036f2d318001018a010e12064c6973626f611a01611a0162920107"
	    "0a0141100220019201050a014218059a010d01ffffffffffffffffff"
	    "01ac02d2010b08a0cf86ba061080e59a77";
	struct schema *s = protoc_shop();
	const struct schema_type *t = schema_lookup(s, "shop.test.Order");
	const ProtobufCMessageDescriptor *d;
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *m, *back;
	uint8_t *pb;
	char *err = NULL, *text;
	size_t len, tlen;

	assert_non_null(t);
	d = schema_type_descriptor(t);
	/* The field table is protobuf-c's: sorted by number, typed. */
	assert_int_equal(d->n_fields, 38);
	for (unsigned i = 0; i < d->n_fields; i++)
		assert_int_equal(d->fields[i].id, i + 1);
	f = protobuf_c_message_descriptor_get_field_by_name(d, "lines");
	assert_int_equal(f->label, PROTOBUF_C_LABEL_REPEATED);
	assert_string_equal(
	    ((const ProtobufCMessageDescriptor *)f->descriptor)->name,
	    "shop.test.Order.Line");
	f = protobuf_c_message_descriptor_get_field_by_name(d, "counts");
	assert_true(f->flags & PROTOBUF_C_FIELD_FLAG_PACKED);
	f = protobuf_c_message_descriptor_get_field_by_name(d, "weights");
	assert_false(f->flags & PROTOBUF_C_FIELD_FLAG_PACKED);
	f = protobuf_c_message_descriptor_get_field_by_name(d, "voucher");
	assert_true(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
	assert_int_equal(f->quantifier_offset,
	    protobuf_c_message_descriptor_get_field_by_name(d, "card")
		->quantifier_offset);
	f = protobuf_c_message_descriptor_get_field_by_name(d, "priority");
	assert_int_equal(f->label, PROTOBUF_C_LABEL_OPTIONAL);
	assert_int_not_equal(f->quantifier_offset, 0);
	f = protobuf_c_message_descriptor_get_field_by_name(d, "status");
	assert_int_equal(f->type, PROTOBUF_C_TYPE_ENUM);
	assert_non_null(protobuf_c_enum_descriptor_get_value_by_name(
	    f->descriptor, "STATUS_CANCELLED"));
	assert_int_equal(protobuf_c_enum_descriptor_get_value_by_name(
			     f->descriptor, "STATUS_CANCELLED")
			     ->value,
	    -1);

	/* Encodes as protobuf does, and decodes back to the same JSON. */
	if (pbjson_decode(
		t, json, strlen(json), &schema_limits_default, &m, &err) == -1)
		fail_msg("%s", err);
	pb = pbwire_encode(m, &len);
	assert_string_equal(hex(pb, len), want);
	if (pbwire_decode(t, pb, len, &schema_limits_default, &back, &err) ==
	    -1)
		fail_msg("%s", err);
	text = pbjson_encode(back, &tlen, &err);
	assert_non_null(text);
	assert_string_equal(text, json);
	free(text);
	free(pb);
	schema_message_free(m);
	schema_message_free(back);
	schema_free(s);
}

static void
finds_fields_by_name_and_json_name(void **state)
{
	struct schema *s = protoc_shop();
	const struct schema_type *t = schema_lookup(s, "shop.test.Order");
	const ProtobufCMessageDescriptor *d = schema_type_descriptor(t);
	int i;

	i = schema_field_find(t, "ship_to", 7);
	assert_int_equal(d->fields[i].id, 17);
	assert_int_equal(schema_field_find(t, "shipTo", 6), i);
	/* Only as long as given: "shipToo" is not "shipTo". */
	assert_int_equal(schema_field_find(t, "shipToo", 6), i);
	assert_int_equal(schema_field_find(t, "shipToo", 7), -1);
	i = schema_field_find(t, "alias", 5);
	assert_int_equal(d->fields[i].id, 35);
	assert_int_equal(schema_field_find(t, "renamed", 7), i);
	assert_int_equal(schema_field_find(t, "nope", 4), -1);
	assert_int_equal(schema_field_find(t, "", 0), -1);
	schema_free(s);
}

static void
makes_messages_with_defaults(void **state)
{
	struct schema *s = protoc_shop();
	const struct schema_type *t = schema_lookup(s, "shop.test.Order");
	const ProtobufCMessageDescriptor *d = schema_type_descriptor(t);
	ProtobufCMessage *m = schema_message_new(t);
	const char *base = (const char *)m;
	const ProtobufCFieldDescriptor *id, *note;
	uint8_t *pb;
	size_t len;

	id = protobuf_c_message_descriptor_get_field_by_name(d, "id");
	note = protobuf_c_message_descriptor_get_field_by_name(d, "note");
	assert_ptr_equal(m->descriptor, d);
	/* An implicit string is "", never NULL; an optional one is NULL. */
	assert_string_equal(*(char *const *)(base + id->offset), "");
	assert_null(*(char *const *)(base + note->offset));
	pb = pbwire_encode(m, &len);
	assert_int_equal(len, 0);
	free(pb);
	schema_message_free(m);
	schema_message_free(NULL);
	schema_free(s);
	schema_free(NULL);
}

static const char uses_timestamp[] =
    "syntax = \"proto3\";\n"
    "package a;\n"
    "import \"google/protobuf/timestamp.proto\";\n"
    "message A { google.protobuf.Timestamp at = 1; }\n";

static void
loads_types_across_sets(void **state)
{
	static const char other[] =
	    "syntax = \"proto3\";\n"
	    "package b;\n"
	    "import \"google/protobuf/timestamp.proto\";\n"
	    "message B { google.protobuf.Timestamp at = 1; }\n";
	struct schema_source src[3] = { { "a.desc", NULL, 0 },
		{ "b.desc", NULL, 0 }, { "a2.desc", NULL, 0 } };
	struct schema *s;
	char *err = NULL;

	/* a.desc lacks timestamp.proto, which b.desc brings. */
	src[0].data = protoc_compile("a.proto", uses_timestamp, 0, &src[0].len);
	src[1].data = protoc_compile("b.proto", other, 1, &src[1].len);
	expect_error(src, 1,
	    "a.desc: a.proto: a.A.at: type "
	    "google.protobuf.Timestamp is not in the "
	    "descriptor sets");
	s = schema_load(src, 2, &err);
	if (s == NULL)
		fail_msg("%s", err);
	assert_non_null(schema_lookup(s, "a.A"));
	assert_non_null(schema_lookup(s, "b.B"));
	schema_free(s);

	/* The same file in two sets is one file... */
	src[2].data = protoc_compile("b.proto", other, 1, &src[2].len);
	s = schema_load(&src[1], 2, &err);
	if (s == NULL)
		fail_msg("%s", err);
	assert_int_equal(schema_count(s), 2);
	schema_free(s);
	free((void *)src[2].data);

	/* ...but two files of one name must not differ. */
	src[2].data = protoc_compile(
	    "b.proto", "syntax = \"proto3\";\npackage b;\n", 0, &src[2].len);
	expect_error(&src[1], 2,
	    "a2.desc: b.proto differs from the file of that name in b.desc");
	for (int i = 0; i < 3; i++)
		free((void *)src[i].data);
}

static void
accepts_custom_options(void **state)
{
	static const char proto[] =
	    "syntax = \"proto3\";\n"
	    "package c;\n"
	    "import \"google/protobuf/descriptor.proto\";\n"
	    "extend google.protobuf.FieldOptions { string pii = 50001; }\n"
	    "message C { string email = 1 [(pii) = \"mask\"]; }\n";
	struct schema *s = protoc_schema("c.proto", proto);

	assert_non_null(schema_lookup(s, "c.C"));
	/* descriptor.proto itself (proto2) is skipped, not loaded. */
	assert_null(schema_lookup(s, "google.protobuf.FieldOptions"));
	schema_free(s);
}

static void
rejects_what_is_not_a_descriptor_set(void **state)
{
	struct schema_source src = { "junk.desc", "\x0a\x09hello", 7 };
	char *err = NULL;

	expect_error(&src, 1,
	    "junk.desc: not a FileDescriptorSet "
	    "(google.protobuf.FileDescriptorSet: field file[0] (number 1) "
	    "at offset 1: length 9 runs past the end)");
	src.data = "";
	src.len = 0;
	expect_error(&src, 1, "junk.desc: the set holds no files");
	assert_null(schema_load(&src, 0, &err));
	assert_string_equal(err, "no descriptor sets");
	free(err);
}

static void
rejects_unsupported_syntax(void **state)
{
	expect_proto_error("p2.proto",
	    "syntax = \"proto2\";\nmessage P { optional int32 a = 1; }\n", 1,
	    "p2.proto: p2.proto: syntax \"proto2\" is not supported");
}

static void
rejects_unsupported_well_known_types(void **state)
{
	expect_proto_error("any.proto",
	    "syntax = \"proto3\";\nimport \"google/protobuf/any.proto\";\n"
	    "message M { google.protobuf.Any a = 1; }\n",
	    1, "google.protobuf.Any is not supported");
	expect_proto_error("mask.proto",
	    "syntax = \"proto3\";\n"
	    "import \"google/protobuf/field_mask.proto\";\n"
	    "message M { google.protobuf.FieldMask m = 1; }\n",
	    1, "google.protobuf.FieldMask is not supported");
	/* A type that takes a well-known name must have its shape. */
	expect_proto_error("fake.proto",
	    "syntax = \"proto3\";\npackage google.protobuf;\n"
	    "message Timestamp { string seconds = 1; }\n",
	    1,
	    "google.protobuf.Timestamp does not have the shape of the "
	    "well-known type");
}

/* A set of one file, x.proto, with message x.X { int32 a = 1; string b
 * = 2; } built field by field, for changes protoc would refuse. */
struct crafted {
	Google__Protobuf__FieldDescriptorProto f[2], *fields[2];
	Google__Protobuf__DescriptorProto msg, *msgs[1];
	Google__Protobuf__FileDescriptorProto file, *files[1];
	Google__Protobuf__FileDescriptorSet set;
};

static void
craft(struct crafted *c)
{
	static char file[] = "x.proto", pkg[] = "x", syntax[] = "proto3",
		    x[] = "X", a[] = "a", b[] = "b";

	for (int i = 0; i < 2; i++) {
		google__protobuf__field_descriptor_proto__init(&c->f[i]);
		c->f[i].name = c->f[i].json_name = i == 0 ? a : b;
		c->f[i].has_number = c->f[i].has_type = c->f[i].has_label = 1;
		c->f[i].number = i + 1;
		c->f[i].label =
		    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_OPTIONAL;
		c->fields[i] = &c->f[i];
	}
	c->f[0].type =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32;
	c->f[1].type =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING;
	google__protobuf__descriptor_proto__init(&c->msg);
	c->msg.name = x;
	c->msg.n_field = 2;
	c->msg.field = c->fields;
	c->msgs[0] = &c->msg;
	google__protobuf__file_descriptor_proto__init(&c->file);
	c->file.name = file;
	c->file.package = pkg;
	c->file.syntax = syntax;
	c->file.n_message_type = 1;
	c->file.message_type = c->msgs;
	c->files[0] = &c->file;
	google__protobuf__file_descriptor_set__init(&c->set);
	c->set.n_file = 1;
	c->set.file = c->files;
}

/* The crafted set, changed by |change|, fails to load with |want|. */
static void
expect_crafted_error(void (*change)(struct crafted *), const char *want)
{
	struct schema_source src = { "x.desc", NULL, 0 };
	struct crafted c;
	uint8_t *data;

	craft(&c);
	change(&c);
	src.len =
	    google__protobuf__file_descriptor_set__get_packed_size(&c.set);
	src.data = data = malloc(src.len);
	google__protobuf__file_descriptor_set__pack(&c.set, data);
	expect_error(&src, 1, want);
	free(data);
}

static void
to_group(struct crafted *c)
{
	c->f[0].type =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP;
}

static void
to_required(struct crafted *c)
{
	c->f[0].label =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED;
}

static void
to_extension(struct crafted *c)
{
	/* Field b becomes an extension of X in the file. */
	static char extendee[] = ".x.X";

	c->msg.n_field = 1;
	c->f[1].extendee = extendee;
	c->file.n_extension = 1;
	c->file.extension = &c->fields[1];
}

static void
to_same_number(struct crafted *c)
{
	c->f[1].number = 1;
}

static void
to_editions(struct crafted *c)
{
	static char editions[] = "editions";

	c->file.syntax = editions;
}

static void
to_json_name_clash(struct crafted *c)
{
	static char b[] = "b";

	c->f[0].json_name = b;
}

static void
to_unknown_type(struct crafted *c)
{
	c->f[0].type = 99;
}

static void
to_bad_name(struct crafted *c)
{
	static char name[] = "a-b";

	c->f[0].name = name;
}

static void
to_missing_type(struct crafted *c)
{
	static char name[] = ".x.Y";

	c->f[0].type =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE;
	c->f[0].type_name = name;
}

static void
to_relative_type(struct crafted *c)
{
	static char name[] = "X";

	c->f[0].type =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE;
	c->f[0].type_name = name;
}

static void
to_twice(struct crafted *c)
{
	/* The file's message again, as a second file of another name. */
	static Google__Protobuf__FileDescriptorProto again, *files[2];
	static char name[] = "y.proto";

	again = c->file;
	again.name = name;
	files[0] = &c->file;
	files[1] = &again;
	c->set.n_file = 2;
	c->set.file = files;
}

static void
rejects_unsupported_features(void **state)
{
	struct schema_source src = { "x.desc", NULL, 0 };
	struct crafted c;
	struct schema *s;
	char *err = NULL;
	uint8_t *data;

	/* As crafted, the set loads. */
	craft(&c);
	src.len =
	    google__protobuf__file_descriptor_set__get_packed_size(&c.set);
	src.data = data = malloc(src.len);
	google__protobuf__file_descriptor_set__pack(&c.set, data);
	if ((s = schema_load(&src, 1, &err)) == NULL)
		fail_msg("%s", err);
	assert_non_null(schema_lookup(s, "x.X"));
	schema_free(s);
	free(data);

	expect_crafted_error(
	    to_group, "x.desc: x.proto: x.X.a: groups are not supported");
	expect_crafted_error(to_required,
	    "x.desc: x.proto: x.X.a: required fields are not supported");
	expect_crafted_error(to_extension,
	    "x.desc: x.proto: extension b of .x.X: extensions are not "
	    "supported");
	expect_crafted_error(to_same_number,
	    "x.desc: x.proto: x.X: field number 1 is used twice");
	expect_crafted_error(to_editions,
	    "x.desc: x.proto: syntax \"editions\" is not supported");
	expect_crafted_error(to_json_name_clash,
	    "x.desc: x.proto: x.X: JSON name b is used twice");
	expect_crafted_error(to_unknown_type, "x.X.a: unknown field type");
	expect_crafted_error(to_bad_name, "x.X: a field has an invalid name");
	expect_crafted_error(
	    to_missing_type, "x.X.a: type x.Y is not in the descriptor sets");
	expect_crafted_error(
	    to_relative_type, "x.X.a: type name \"X\" is not fully qualified");
	expect_crafted_error(to_twice, "x.desc: x.X is defined twice");
}

static void
rejects_unreadable_files(void **state)
{
	const char *paths[] = { "/nonexistent/events.desc" };
	char *err = NULL;

	assert_null(schema_load_files(paths, 1, &err));
	assert_string_equal(
	    err, "/nonexistent/events.desc: No such file or directory");
	free(err);
	paths[0] = "/";
	assert_null(schema_load_files(paths, 1, &err));
	assert_string_equal(err, "/: not a regular file");
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loads_the_reference_events),
		cmocka_unit_test(lays_out_messages_as_protoc_c_does),
		cmocka_unit_test(builds_a_schema_protoc_wrote_at_test_time),
		cmocka_unit_test(finds_fields_by_name_and_json_name),
		cmocka_unit_test(makes_messages_with_defaults),
		cmocka_unit_test(loads_types_across_sets),
		cmocka_unit_test(accepts_custom_options),
		cmocka_unit_test(rejects_what_is_not_a_descriptor_set),
		cmocka_unit_test(rejects_unsupported_syntax),
		cmocka_unit_test(rejects_unsupported_well_known_types),
		cmocka_unit_test(rejects_unsupported_features),
		cmocka_unit_test(rejects_unreadable_files),
	};

	return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
