/*
 * The translate filter: upcasts (and downcasts) every delivery to the
 * schema version the app declared, before it is assigned to an app.
 *
 *   filters:
 *     - translate:
 *         version: v2                   # what the app gets
 *         encoding: json                # ... and how
 *         version_from: subject         # or header:Schema-Version
 *         versions:
 *           - { version: v1, type: orders.v1.OrderCreated }
 *           - { version: v2, type: orders.v2.OrderCreated }
 *         mappings: [orders-v1-v2.yaml]
 *         unknown_version: retry        # or dead_letter
 *         publish_subject: orders.created.{version}
 *         publish_versions: [v1, v2]    # what the app publishes on v2
 *
 * At startup every declared version gets its route, the chain of
 * mappings from its type to the wanted one (found breadth-first, so
 * v1 -> v2 -> v3 composes); per message the work is one decode, the
 * route's mappings and one encode, with no YAML and no name lookups.
 * The translated message becomes the delivery's view, so later filters
 * read fields of the wanted version; a message that does not decode or
 * translate is dead-lettered with the reason naming the field.
 *
 * A publish of the app to publish_subject in its own version is sent
 * once per publish_versions entry instead, downcast where needed, each
 * copy with its own Nats-Msg-Id (the app's, or the app's with
 * ":VERSION" for other versions) so stream deduplication keeps them all,
 * and with version_from's header, when there is one, saying its version.
 * A publish that does not decode or translate is refused, and nothing
 * of it is sent.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "delivery.h"
#include "filter.h"
#include "log.h"
#include "mapping.h"
#include "metrics.h"
#include "pbjson.h"
#include "pbwire.h"
#include "schema.h"
#include "translate.h"
#include "view.h"
#include "xmalloc.h"

#define HEADER_PREFIX "header:"
#define MS INT64_C(1000000)
#define S (1000 * MS)

/* How one declared version reaches the wanted one (or, for publishing,
 * the wanted one another). */
struct route {
	const char *version;
	const struct schema_type *type;
	const struct mapping **steps;
	size_t n;
	/* nats_sidecar_translations_total's series of this route. */
	struct metric_series *translated, *failed;
};

/* What the options compile to: the filter's and --check-config's. */
struct compiled {
	struct mapping **mappings;
	size_t n_mappings;
	struct route *routes;
	size_t n_routes;
	const struct schema_type *want;
	/* From the wanted version to each of publish_versions. */
	struct route *publish;
	size_t n_publish;
};

struct translate {
	struct filter base;
	const struct translate_options *o;
	struct compiled c;
	const char *header; /* version_from's header, or NULL: the subject */
	struct view_spec spec; /* what later filters' view_get() is given */
	const char *content_type;
	char **subjects; /* publish_subject in each publish version */
	char *own_subject; /* ... in the app's version */
	struct metric_series *unknown; /* deliveries of undeclared versions */
};

static const char *const encodings[] = { "json", "protobuf", NULL };
_Static_assert(VIEW_JSON == 0 && VIEW_PROTOBUF == 1,
    "encoding's choices follow enum view_encoding");
static const char *const unknown_policies[] = { "retry", "dead_letter", NULL };

static const struct config_option version_options[] = {
	{ .name = "version",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct translate_version, version),
	    .help = "the version as the subject or header gives it" },
	{ .name = "type",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct translate_version, type),
	    .help = "its message type (full name, from the loaded schemas)" },
	{ .name = NULL },
};

static const struct config_option translate_options_table[] = {
	{ .name = "version",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct translate_options, version),
	    .help = "the schema version the app gets" },
	{ .name = "encoding",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct translate_options, encoding),
	    .def = "json",
	    .choices = encodings,
	    .help = "the encoding the app gets" },
	{ .name = "version_from",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct translate_options, version_from),
	    .def = "subject",
	    .help = "where a message's version is: \"subject\" (its last "
		    "token) or \"header:NAME\"" },
	{ .name = "versions",
	    .type = CONFIG_TABLES,
	    .offset = offsetof(struct translate_options, versions),
	    .sub = version_options,
	    .sub_size = sizeof(struct translate_version),
	    .help = "every version the subscription may see, with its "
		    "message type" },
	{ .name = "mappings",
	    .type = CONFIG_STRINGS,
	    .offset = offsetof(struct translate_options, mappings),
	    .optional = true,
	    .help = "mapping files (docs/translation.md)" },
	{ .name = "unknown_version",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct translate_options, unknown_version),
	    .def = "retry",
	    .choices = unknown_policies,
	    .help = "a message of a version not declared: retry later (its "
		    "consumers are being upgraded) or dead-letter it" },
	{ .name = "unknown_delay",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct translate_options, unknown_delay),
	    .def = "1m",
	    .min = 100 * MS,
	    .max = 24 * 3600 * S,
	    .help = "retry: the redelivery delay of an unknown version" },
	{ .name = "publish_subject",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct translate_options, publish_subject),
	    .optional = true,
	    .help = "the app's publishes to this subject, with {version} "
		    "its own version, go out in publish_versions" },
	{ .name = "publish_versions",
	    .type = CONFIG_STRINGS,
	    .offset = offsetof(struct translate_options, publish_versions),
	    .optional = true,
	    .help = "the versions an app's publish is sent in, each to "
		    "publish_subject with its {version}" },
	{ .name = NULL },
};

static const struct translate_version *
version_at(const struct translate_options *o, size_t i)
{
	return (const struct translate_version *)o->versions.v + i;
}

static int
translate_validate(const void *options, char **err)
{
	const struct translate_options *o = options;
	bool wanted = false;

	if (strcmp(o->version_from, "subject") != 0 &&
	    (strncmp(o->version_from, HEADER_PREFIX, strlen(HEADER_PREFIX)) !=
		    0 ||
		o->version_from[strlen(HEADER_PREFIX)] == '\0')) {
		*err = xasprintf("version_from: expected \"subject\" or "
				 "\"header:NAME\", got \"%s\"",
		    o->version_from);
		return -1;
	}
	for (size_t i = 0; i < o->versions.n; i++) {
		wanted |= strcmp(version_at(o, i)->version, o->version) == 0;
		for (size_t k = 0; k < i; k++) {
			if (strcmp(version_at(o, i)->version,
				version_at(o, k)->version) == 0) {
				*err = xasprintf("versions: %s is declared "
						 "twice",
				    version_at(o, i)->version);
				return -1;
			}
		}
	}
	if (!wanted) {
		*err = xasprintf("versions: the wanted version %s is not "
				 "declared",
		    o->version);
		return -1;
	}
	if ((o->publish_versions.n > 0) != (o->publish_subject != NULL) ||
	    (o->publish_subject != NULL &&
		strstr(o->publish_subject, "{version}") == NULL)) {
		*err = xstrdup("publish_subject (with {version}) and "
			       "publish_versions go together");
		return -1;
	}
	for (size_t i = 0; i < o->publish_versions.n; i++) {
		size_t k;

		for (k = 0; k < o->versions.n; k++) {
			if (strcmp(version_at(o, k)->version,
				o->publish_versions.v[i]) == 0)
				break;
		}
		if (k == o->versions.n) {
			*err = xasprintf("publish_versions: %s is not declared "
					 "in versions",
			    o->publish_versions.v[i]);
			return -1;
		}
	}
	return 0;
}

static void
compiled_free(struct compiled *c)
{
	for (size_t i = 0; i < c->n_mappings; i++)
		mapping_free(c->mappings[i]);
	free(c->mappings);
	for (size_t i = 0; i < c->n_routes; i++)
		free(c->routes[i].steps);
	free(c->routes);
	for (size_t i = 0; i < c->n_publish; i++)
		free(c->publish[i].steps);
	free(c->publish);
	memset(c, 0, sizeof *c);
}

/* The shortest chain of mappings from |from| to |to|, breadth-first
 * over the mappings as edges. */
static int
route_find(struct compiled *c, const struct schema_type *from,
    const struct schema_type *to, struct route *r)
{
	size_t n = c->n_mappings, head = 0, tail = 0;
	/* Per mapping: reached, and the mapping before it (n: none). */
	size_t *prev = xcalloc(n + 1, sizeof *prev);
	size_t *queue = xcalloc(n + 1, sizeof *queue);
	bool *seen = xcalloc(n + 1, sizeof *seen);
	int rc = -1;

	r->type = from;
	if (from == to) {
		rc = 0;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if (mapping_from(c->mappings[i]) == from) {
			seen[i] = true;
			prev[i] = n;
			queue[tail++] = i;
		}
	}
	while (head < tail) {
		size_t i = queue[head++], len = 0;

		if (mapping_to(c->mappings[i]) == to) {
			for (size_t k = i; k != n; k = prev[k])
				len++;
			r->steps = xcalloc(len, sizeof *r->steps);
			r->n = len;
			for (size_t k = i; k != n; k = prev[k])
				r->steps[--len] = c->mappings[k];
			rc = 0;
			goto done;
		}
		for (size_t k = 0; k < n; k++) {
			if (!seen[k] &&
			    mapping_from(c->mappings[k]) ==
				mapping_to(c->mappings[i])) {
				seen[k] = true;
				prev[k] = i;
				queue[tail++] = k;
			}
		}
	}
done:
	free(prev);
	free(queue);
	free(seen);
	return rc;
}

/* Loads the mappings and finds every version's route; -1 with |*err|. */
static int
compile(const struct translate_options *o, const struct schema *schemas,
    struct compiled *c, char **err)
{
	memset(c, 0, sizeof *c);
	if (schemas == NULL) {
		*err = xstrdup("no schemas are loaded (set schemas)");
		return -1;
	}
	c->mappings = xcalloc(o->mappings.n + 1, sizeof *c->mappings);
	for (size_t i = 0; i < o->mappings.n; i++) {
		if ((c->mappings[i] = mapping_load(
			 o->mappings.v[i], schemas, err)) == NULL)
			goto fail;
		c->n_mappings++;
	}
	c->routes = xcalloc(o->versions.n, sizeof *c->routes);
	/* Every type first: the routes all lead to the wanted one. */
	for (size_t i = 0; i < o->versions.n; i++) {
		const struct translate_version *v = version_at(o, i);

		if ((c->routes[i].type = schema_lookup(schemas, v->type)) ==
		    NULL) {
			*err = xasprintf("versions: %s: no message type %s in "
					 "the schemas",
			    v->version, v->type);
			goto fail;
		}
		if (strcmp(v->version, o->version) == 0)
			c->want = c->routes[i].type;
	}
	for (size_t i = 0; i < o->versions.n; i++) {
		const struct translate_version *v = version_at(o, i);
		const struct schema_type *t = c->routes[i].type;
		struct route *r = &c->routes[c->n_routes];

		r->version = v->version;
		if (route_find(c, t, c->want, r) == -1) {
			*err = xasprintf("versions: %s: no mapping, nor chain "
					 "of mappings, from %s to %s",
			    v->version, v->type, schema_type_name(c->want));
			goto fail;
		}
		c->n_routes++;
	}
	c->publish = xcalloc(o->publish_versions.n + 1, sizeof *c->publish);
	for (size_t i = 0; i < o->publish_versions.n; i++) {
		struct route *r = &c->publish[c->n_publish];
		size_t k = 0;

		while (strcmp(c->routes[k].version, o->publish_versions.v[i]))
			k++;
		r->version = c->routes[k].version;
		if (route_find(c, c->want, c->routes[k].type, r) == -1) {
			*err =
			    xasprintf("publish_versions: %s: no mapping, nor "
				      "chain of mappings, from %s to %s",
				r->version, schema_type_name(c->want),
				schema_type_name(c->routes[k].type));
			goto fail;
		}
		r->type = c->routes[k].type;
		c->n_publish++;
	}
	return 0;
fail:
	compiled_free(c);
	return -1;
}

int
translate_check(const struct translate_options *o, const struct schema *schemas,
    const char *prefix, FILE *out)
{
	struct compiled c;
	char *err = NULL;

	if (compile(o, schemas, &c, &err) == -1) {
		fprintf(out, "%s%s\n", prefix, err);
		free(err);
		return -1;
	}
	for (size_t i = 0; i < c.n_mappings; i++)
		mapping_report(c.mappings[i], prefix, out);
	compiled_free(&c);
	return 0;
}

/* |template| with its first "{version}" replaced by |version|. */
static char *
subject_for(const char *template, const char *version)
{
	const char *at = strstr(template, "{version}");

	return xasprintf("%.*s%s%s", (int)(at - template), template, version,
	    at + strlen("{version}"));
}

/* The series of |from| -> |to| in |direction| with |result|. */
static struct metric_series *
route_series(struct metric *m, const char *sub, const char *direction,
    const char *from, const char *to, const char *result)
{
	const char *values[] = { sub, direction, from, to, result, NULL };

	return metric_series(m, values);
}

/* Every route's series, from the start: the labels are the declared
 * versions, a fixed set. */
static void
count_routes(struct translate *f, const struct filter_host *host)
{
	static const char *const labels[] = { "subscription", "direction",
		"from", "to", "result", NULL };
	struct metric *m =
	    metrics_counter(host->metrics, "nats_sidecar_translations_total",
		"Messages the translate filter handled, by direction, source "
		"and target version and result (translated: reached the target "
		"version and encoding; failed: dead-lettered or refused; "
		"unknown_version: a version not declared).",
		labels);
	const char *sub = host->subscription, *want = f->o->version;

	for (size_t i = 0; i < f->c.n_routes; i++) {
		struct route *r = &f->c.routes[i];

		r->translated = route_series(
		    m, sub, "delivery", r->version, want, "translated");
		r->failed = route_series(
		    m, sub, "delivery", r->version, want, "failed");
	}
	f->unknown = route_series(
	    m, sub, "delivery", "unknown", want, "unknown_version");
	for (size_t i = 0; i < f->c.n_publish; i++) {
		struct route *r = &f->c.publish[i];

		r->translated = route_series(
		    m, sub, "publish", want, r->version, "translated");
		r->failed =
		    route_series(m, sub, "publish", want, r->version, "failed");
	}
}

static struct filter *
translate_init(const void *options, const struct filter_host *host)
{
	const struct translate_options *o = options;
	struct translate *f = xcalloc(1, sizeof *f);
	char *err = NULL;

	f->o = o;
	if (compile(o, host->schemas, &f->c, &err) == -1) {
		log_errorx("translate.config", "subscription %s: translate: %s",
		    host->subscription, err);
		free(err);
		free(f);
		return NULL;
	}
	if (strncmp(o->version_from, HEADER_PREFIX, strlen(HEADER_PREFIX)) == 0)
		f->header = o->version_from + strlen(HEADER_PREFIX);
	f->content_type = o->encoding == VIEW_JSON ? "application/json"
						   : "application/protobuf";
	f->spec.type_of = view_type_fixed;
	f->spec.arg = (void *)f->c.want;
	f->spec.default_content_type = f->content_type;
	f->spec.limits = schema_limits_default;
	count_routes(f, host);
	if (o->publish_subject != NULL) {
		f->own_subject = subject_for(o->publish_subject, o->version);
		f->subjects = xcalloc(f->c.n_publish, sizeof *f->subjects);
		for (size_t i = 0; i < f->c.n_publish; i++)
			f->subjects[i] = subject_for(
			    o->publish_subject, f->c.publish[i].version);
	}
	for (size_t i = 0; i < f->c.n_mappings; i++) {
		FILE *mem;
		char *text = NULL;
		size_t len = 0;

		/* Fields a mapping loses or leaves empty: said once. */
		if ((mem = open_memstream(&text, &len)) == NULL)
			continue;
		mapping_report(f->c.mappings[i], "", mem);
		fclose(mem);
		for (char *line = strtok(text, "\n"); line != NULL;
		     line = strtok(NULL, "\n"))
			log_info("translate.mapping_gap", "subscription %s: %s",
			    host->subscription, line);
		free(text);
	}
	return &f->base;
}

static void
translate_free(struct filter *base)
{
	struct translate *f = (struct translate *)base;

	if (f == NULL)
		return;
	for (size_t i = 0; f->subjects != NULL && i < f->c.n_publish; i++)
		free(f->subjects[i]);
	free(f->subjects);
	free(f->own_subject);
	compiled_free(&f->c);
	free(f);
}

/* The version |d| carries, or NULL. */
static const char *
version_of(const struct translate *f, const struct delivery *d)
{
	const char *subject, *last;

	if (f->header != NULL)
		return delivery_header(d, f->header);
	subject = delivery_subject(d);
	last = strrchr(subject, '.');
	return last != NULL ? last + 1 : subject;
}

static struct filter_verdict
dead_letter(struct delivery *d, enum filter_reason reason, const char *text)
{
	struct filter_verdict v = { .action = FILTER_DEAD_LETTER,
		.reason = reason };

	v.text = delivery_set_text(d, text);
	return v;
}

/* Translates |in| along |r| into |*out| (NULL: |in| itself). */
static int
route_apply(const struct route *r, const ProtobufCMessage *in,
    ProtobufCMessage **out, char **err)
{
	ProtobufCMessage *msg = NULL, *next;

	for (size_t i = 0; i < r->n; i++) {
		if (mapping_apply(r->steps[i], msg != NULL ? msg : in, &next,
			err) == -1) {
			schema_message_free(msg);
			return -1;
		}
		schema_message_free(msg);
		msg = next;
	}
	*out = msg;
	return 0;
}

static struct filter_verdict
translate_on_delivery(struct filter *base, struct delivery *d, int64_t now)
{
	struct translate *f = (struct translate *)base;
	const enum view_encoding want = (enum view_encoding)f->o->encoding;
	struct filter_verdict v = { .action = FILTER_DELIVER };
	const struct route *r = NULL;
	const char *version = version_of(f, d), *ct;
	enum view_encoding enc;
	ProtobufCMessage *msg;
	struct view *src;
	const void *data;
	char *err = NULL, *text = NULL;
	void *out;
	size_t len;

	(void)now;
	for (size_t i = 0; version != NULL && i < f->c.n_routes; i++) {
		if (strcmp(f->c.routes[i].version, version) == 0)
			r = &f->c.routes[i];
	}
	if (r == NULL) {
		metric_inc(f->unknown);
		text = xasprintf("schema version \"%.40s\" is not declared",
		    version != NULL ? version : "");
		if (f->o->unknown_version == TRANSLATE_UNKNOWN_RETRY) {
			v = (struct filter_verdict){ .action = FILTER_RETRY,
				.delay_ns = f->o->unknown_delay,
				.reason = FILTER_REASON_UNTRANSLATABLE };
			v.text = delivery_set_text(d, text);
		} else
			v = dead_letter(d, FILTER_REASON_UNTRANSLATABLE, text);
		free(text);
		return v;
	}
	if ((ct = delivery_header(d, "Content-Type")) == NULL)
		ct = f->base.host->config != NULL
		    ? f->base.host->config->content_type
		    : NULL;
	if (ct == NULL || view_encoding_parse(ct, &enc) == -1) {
		text = xasprintf("%s: unsupported content type \"%.80s\"",
		    schema_type_name(r->type), ct != NULL ? ct : "");
		v = dead_letter(d, FILTER_REASON_UNDECODABLE, text);
		goto failed;
	}
	data = delivery_payload(d, &len);
	src = view_new(r->type, enc, data, len, &f->spec.limits);
	if (view_error(src) != NULL) {
		v = dead_letter(d, FILTER_REASON_UNDECODABLE, view_error(src));
		view_free(src);
		goto failed;
	}
	if (route_apply(r, view_message(src), &msg, &err) == -1) {
		view_free(src);
		v = dead_letter(d, FILTER_REASON_UNTRANSLATABLE, err);
		goto failed;
	}
	view_free(d->view);
	d->view_spec = &f->spec;
	if (msg == NULL) {
		/* The wanted version already: at most re-encoded. */
		d->view = src;
		if (enc == want)
			goto translated;
	} else {
		view_free(src);
		d->view = view_wrap(f->c.want, want, msg);
	}
	if (view_encode(d->view, want, &out, &len, &err) == -1) {
		text = xasprintf("%s: %s", schema_type_name(f->c.want), err);
		v = dead_letter(d, FILTER_REASON_UNTRANSLATABLE, text);
		goto failed;
	}
	delivery_set_payload(d, out, len, f->content_type, f->o->version);
translated:
	metric_inc(r->translated);
	return v;
failed:
	metric_inc(r->failed);
	free(text);
	free(err);
	return v;
}

/* Refuses a publish with |text|: none of its copies is sent. */
static struct filter_verdict
refuse(const struct translate *f, struct publication *p, char *text)
{
	struct filter_verdict v = { .action = FILTER_DEAD_LETTER,
		.reason = FILTER_REASON_UNTRANSLATABLE };

	for (size_t i = 0; i < f->c.n_publish; i++)
		metric_inc(f->c.publish[i].failed);
	free(p->text);
	p->text = text;
	v.text = text;
	return v;
}

/* |m| in |enc|, in a new buffer; NULL with |*err|. */
static void *
encode(
    const ProtobufCMessage *m, enum view_encoding enc, size_t *len, char **err)
{
	if (enc == VIEW_JSON)
		return pbjson_encode(m, len, err);
	return pbwire_encode(m, len);
}

static struct filter_verdict
translate_on_publish(struct filter *base, struct publication *p, int64_t now)
{
	struct translate *f = (struct translate *)base;
	struct filter_verdict pass = { .action = FILTER_DELIVER };
	struct publication_copy *copies;
	const char *ct = p->content_type;
	enum view_encoding enc;
	struct view *src;
	char *err = NULL, *text;
	size_t n = 0;

	(void)now;
	if (f->own_subject == NULL || strcmp(p->subject, f->own_subject) != 0)
		return pass;
	if (ct == NULL && f->base.host->config != NULL)
		ct = f->base.host->config->content_type;
	if (ct == NULL || view_encoding_parse(ct, &enc) == -1)
		return refuse(f, p,
		    xasprintf("%s: unsupported content type \"%.80s\"",
			schema_type_name(f->c.want), ct != NULL ? ct : ""));
	src = view_new(f->c.want, enc, p->payload, p->len, &f->spec.limits);
	if (view_error(src) != NULL) {
		text = xstrdup(view_error(src));
		view_free(src);
		return refuse(f, p, text);
	}
	copies = xcalloc(f->c.n_publish, sizeof *copies);
	for (; n < f->c.n_publish; n++) {
		const struct route *r = &f->c.publish[n];
		struct publication_copy *cp = &copies[n];
		ProtobufCMessage *msg;

		if (route_apply(r, view_message(src), &msg, &err) == -1)
			break;
		cp->payload = encode(
		    msg != NULL ? msg : view_message(src), enc, &cp->len, &err);
		schema_message_free(msg);
		if (cp->payload == NULL)
			break;
		cp->subject = xstrdup(f->subjects[n]);
		cp->header = f->header;
		cp->header_value = r->version;
		/* Copies in other versions get ids of their own, or stream
		 * deduplication would keep only the first. */
		cp->message_id = p->message_id[0] == '\0' ||
			strcmp(r->version, f->o->version) == 0
		    ? xstrdup(p->message_id)
		    : xasprintf("%s:%s", p->message_id, r->version);
	}
	view_free(src);
	if (n < f->c.n_publish) {
		for (size_t i = 0; i <= n && i < f->c.n_publish; i++) {
			free(copies[i].subject);
			free(copies[i].message_id);
			free(copies[i].payload);
		}
		free(copies);
		return refuse(f, p, err);
	}
	for (size_t i = 0; i < n; i++)
		metric_inc(f->c.publish[i].translated);
	p->copies = copies;
	p->n_copies = n;
	return pass;
}

const struct filter_ops translate_filter = {
	.name = "translate",
	.options = translate_options_table,
	.options_size = sizeof(struct translate_options),
	.validate = translate_validate,
	.init = translate_init,
	.free = translate_free,
	.on_delivery = translate_on_delivery,
	.on_publish = translate_on_publish,
};
