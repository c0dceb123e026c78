/*
 * The dedup filter: effectively-once delivery to the app.
 *
 * A delivery's key (a header, or a payload field) is looked up in the
 * store: committed and not expired means the app already processed it, so
 * it is acked without reaching the app. A key is committed only after the
 * app ACKed: on_result holds the delivery, queues the key, and on_turn
 * commits the queue of the whole store in one transaction and releases
 * the ACK once the commit is durable, so the JetStream ack always follows
 * the commit.
 *
 * A second delivery of a key whose first is still in the sidecar is held
 * and settled by the first's outcome: acked as a duplicate after an ACK;
 * otherwise it takes over the key and goes on (one at a time, in arrival
 * order). Releases happen in on_turn, never inside on_done, which runs
 * while the core is still ending a delivery.
 *
 *   dedup: {path: /var/lib/nats-sidecar/dedup}
 *   subscriptions:
 *     - ...
 *       filters:
 *         - dedup: {key: "field:message_id", ttl: 24h}
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "dedup.h"
#include "delivery.h"
#include "filter.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "view.h"
#include "xmalloc.h"

#define HEADER_PREFIX "header:"
#define FIELD_PREFIX "field:"
#define S INT64_C(1000000000)

/* A key in the sidecar: the delivery that has it, and those held on it. */
struct dedup_key {
	uint8_t digest[STORE_KEY_SIZE];
	struct delivery *owner;
	struct delivery **waiting;
	size_t nwaiting, cap;
	uint64_t ticket; /* the owner's queued commit, or 0 */
	bool committed; /* the owner's commit is durable */
	struct dedup_key *next; /* same hash */
};

/* A release to make in on_turn. */
struct dedup_release {
	struct delivery *d;
	struct filter_verdict v;
};

struct dedup {
	struct filter base;
	const struct dedup_options *o;
	bool field; /* a payload field, else a header */
	const char *name; /* the header or the field path */
	struct idmap *keys; /* first 8 bytes of the digest -> dedup_key */
	struct idmap *by_delivery; /* delivery id -> its dedup_key */
	uint64_t *committing; /* ids of owners held for their commit */
	size_t ncommitting, ccap;
	struct dedup_release *ready;
	size_t nready, rcap;
	struct metric_series *duplicates, *held, *committed, *no_key;
};

static const char *const missing_choices[] = { "fallback", "dead_letter",
	NULL };

static const struct config_option dedup_options_table[] = {
	{ .name = "key",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct dedup_options, key),
	    .def = "header:Nats-Msg-Id",
	    .help = "what identifies an event: header:NAME, or field:PATH "
		    "of the payload (e.g. field:message_id)" },
	{ .name = "ttl",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct dedup_options, ttl),
	    .def = "24h",
	    .min = S,
	    .max = 365 * 24 * 3600 * S,
	    .help = "how long a processed key is remembered" },
	{ .name = "missing_key",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct dedup_options, missing_key),
	    .def = "fallback",
	    .choices = missing_choices,
	    .help = "a delivery without the key: fallback (keyed on stream "
		    "and sequence, which catches redeliveries only) or "
		    "dead_letter" },
	{ .name = NULL },
};

static int
dedup_validate(const void *options, char **err)
{
	const struct dedup_options *o = options;
	const char *rest = NULL;

	if (strncmp(o->key, HEADER_PREFIX, strlen(HEADER_PREFIX)) == 0)
		rest = o->key + strlen(HEADER_PREFIX);
	else if (strncmp(o->key, FIELD_PREFIX, strlen(FIELD_PREFIX)) == 0)
		rest = o->key + strlen(FIELD_PREFIX);
	if (rest == NULL || rest[0] == '\0') {
		*err = xasprintf("key: expected header:NAME or field:PATH, "
				 "got \"%s\"",
		    o->key);
		return -1;
	}
	return 0;
}

static struct filter *
dedup_init(const void *options, const struct filter_host *host)
{
	static const char *const sub_label[] = { "subscription", NULL };
	const struct dedup_options *o = options;
	const char *name[] = { host->subscription, NULL };
	struct dedup *f;

	if (host->store == NULL) {
		log_errorx("dedup.no_store",
		    "subscription %s: the dedup filter needs a store: set "
		    "dedup.path",
		    host->subscription);
		return NULL;
	}
	f = xcalloc(1, sizeof *f);
	f->o = o;
	f->field = strncmp(o->key, FIELD_PREFIX, strlen(FIELD_PREFIX)) == 0;
	f->name =
	    o->key + (f->field ? strlen(FIELD_PREFIX) : strlen(HEADER_PREFIX));
	f->keys = idmap_new();
	f->by_delivery = idmap_new();
	f->duplicates = metric_series(
	    metrics_counter(host->metrics,
		"nats_sidecar_dedup_duplicates_total",
		"Deliveries acked without reaching the app: their key was "
		"processed already.",
		sub_label),
	    name);
	f->held = metric_series(
	    metrics_counter(host->metrics, "nats_sidecar_dedup_held_total",
		"Deliveries held because their key was in flight.", sub_label),
	    name);
	f->committed = metric_series(
	    metrics_counter(host->metrics, "nats_sidecar_dedup_committed_total",
		"Keys committed to the store after the app's ACK.", sub_label),
	    name);
	f->no_key = metric_series(
	    metrics_counter(host->metrics,
		"nats_sidecar_dedup_missing_keys_total",
		"Deliveries without the configured key.", sub_label),
	    name);
	return &f->base;
}

static void
free_chain(void *arg, uint64_t id, void *value)
{
	struct dedup_key *k, *next;

	for (k = value; k != NULL; k = next) {
		next = k->next;
		free(k->waiting);
		free(k);
	}
}

static void
dedup_free(struct filter *base)
{
	struct dedup *f = (struct dedup *)base;

	idmap_foreach(f->keys, free_chain, NULL);
	idmap_free(f->keys);
	idmap_free(f->by_delivery);
	free(f->committing);
	free(f->ready);
	free(f);
}

static uint64_t
key_hash(const uint8_t digest[STORE_KEY_SIZE])
{
	uint64_t h;

	memcpy(&h, digest, sizeof h);
	return h != 0 ? h : 1;
}

/* The entry for |digest|, created when |create| is set; NULL otherwise. */
static struct dedup_key *
find_key(struct dedup *f, const uint8_t digest[STORE_KEY_SIZE], bool create)
{
	uint64_t h = key_hash(digest);
	struct dedup_key *head = idmap_get(f->keys, h), *k;

	for (k = head; k != NULL; k = k->next) {
		if (memcmp(k->digest, digest, STORE_KEY_SIZE) == 0)
			return k;
	}
	if (!create)
		return NULL;
	k = xcalloc(1, sizeof *k);
	memcpy(k->digest, digest, STORE_KEY_SIZE);
	k->next = head;
	idmap_put(f->keys, h, k);
	return k;
}

static void
drop_key(struct dedup *f, struct dedup_key *gone)
{
	uint64_t h = key_hash(gone->digest);
	struct dedup_key *head = idmap_get(f->keys, h), **p;

	for (p = &head; *p != gone; p = &(*p)->next)
		;
	*p = gone->next;
	if (head != NULL)
		idmap_put(f->keys, h, head);
	else
		idmap_del(f->keys, h);
	free(gone->waiting);
	free(gone);
}

/*
 * The value at |path| ("a.b", "items[0].sku") of a JSON payload, as text
 * in |*out| (the caller frees it). Returns 1, 0 if absent or not a
 * scalar, -1 if the payload is not JSON (|*why| says so).
 */
static int
json_key(const void *data, size_t len, const char *path, char **out,
    const char **why)
{
	json_error_t e;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &e), *v;
	char *copy, *seg, *save = NULL;
	int r = 0;

	if (root == NULL) {
		*why = "the payload is not JSON";
		return -1;
	}
	v = root;
	copy = xstrdup(path);
	for (seg = strtok_r(copy, ".", &save); seg != NULL && v != NULL;
	     seg = strtok_r(NULL, ".", &save)) {
		char *br = strchr(seg, '[');

		if (br != NULL)
			*br = '\0';
		v = json_object_get(v, seg);
		while (br != NULL && v != NULL) {
			char *end;
			unsigned long i = strtoul(br + 1, &end, 10);

			v = *end == ']' ? json_array_get(v, i) : NULL;
			br = v != NULL && end[1] == '[' ? end + 1 : NULL;
		}
	}
	if (v != NULL && json_is_string(v)) {
		*out = xstrdup(json_string_value(v));
		r = 1;
	} else if (v != NULL && json_is_integer(v)) {
		*out =
		    xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		r = 1;
	}
	free(copy);
	json_decref(root);
	return r;
}

/*
 * The key text of |d| in |*out| (the caller frees it). Returns 1, 0 if
 * the delivery has none (|*why| says why).
 */
static int
key_text(struct dedup *f, struct delivery *d, char **out, const char **why)
{
	const char *h;
	char *err = NULL;
	size_t len;
	int r;

	*why = "the key is not set";
	if (!f->field) {
		if ((h = delivery_header(d, f->name)) == NULL || h[0] == '\0')
			return 0;
		*out = xstrdup(h);
		return 1;
	}
	if (d->view_spec != NULL) {
		/* The subscription's decoded view: never a second parse. */
		r = view_text(view_get(d, d->view_spec), f->name, out, &err);
		if (r == -1) {
			*why = delivery_set_text(d, err);
			free(err);
			return 0;
		}
	} else {
		const void *data = delivery_payload(d, &len);

		if ((r = json_key(data, len, f->name, out, why)) == -1)
			return 0;
	}
	if (r == 1 && (*out)[0] == '\0') {
		free(*out);
		return 0;
	}
	return r;
}

static struct filter_verdict
dedup_on_delivery(struct filter *base, struct delivery *d, int64_t now)
{
	struct dedup *f = (struct dedup *)base;
	const struct filter_host *host = base->host;
	struct filter_verdict v = { .action = FILTER_DELIVER };
	uint8_t digest[STORE_KEY_SIZE];
	const char *why;
	char *text = NULL;
	struct dedup_key *k;

	if (key_text(f, d, &text, &why) == 0) {
		metric_inc(f->no_key);
		if (f->o->missing_key == DEDUP_MISSING_DEAD_LETTER) {
			v.action = FILTER_DEAD_LETTER;
			v.reason = FILTER_REASON_NO_KEY;
			v.text = delivery_set_text(d, why);
			return v;
		}
		text = xasprintf("\x01stream-seq:%s:%llu", d->meta.stream,
		    (unsigned long long)d->meta.stream_seq);
	}
	store_key(host->subscription, text, strlen(text), digest);
	free(text);
	if ((k = find_key(f, digest, false)) != NULL) {
		if (k->nwaiting == k->cap) {
			k->cap = k->cap == 0 ? 2 : k->cap * 2;
			k->waiting = xreallocarray(
			    k->waiting, k->cap, sizeof *k->waiting);
		}
		k->waiting[k->nwaiting++] = d;
		idmap_put(f->by_delivery, d->id, k);
		metric_inc(f->held);
		v.action = FILTER_HOLD;
		return v;
	}
	switch (
	    store_lookup(host->store, digest, now + host->wall_offset, NULL)) {
	case 1:
		metric_inc(f->duplicates);
		v.action = FILTER_ACK;
		v.text = "duplicate: its key was processed already";
		return v;
	case -1:
		/* Never skip dedup: try again once the store reads. */
		v.action = FILTER_RETRY;
		v.text = "the dedup store cannot be read";
		return v;
	}
	k = find_key(f, digest, true);
	k->owner = d;
	idmap_put(f->by_delivery, d->id, k);
	return v;
}

static void
dedup_on_result(struct filter *base, struct delivery *d,
    struct filter_verdict *v, int64_t now)
{
	struct dedup *f = (struct dedup *)base;
	const struct filter_host *host = base->host;
	struct dedup_key *k = idmap_get(f->by_delivery, d->id);

	if (k == NULL || k->owner != d || v->action != FILTER_ACK)
		return;
	k->ticket = store_stage(host->store, k->digest, host->subscription,
	    d->meta.stream_seq, now + host->wall_offset + f->o->ttl,
	    now + host->wall_offset);
	if (f->ncommitting == f->ccap) {
		f->ccap = f->ccap == 0 ? 64 : f->ccap * 2;
		f->committing = xreallocarray(
		    f->committing, f->ccap, sizeof *f->committing);
	}
	f->committing[f->ncommitting++] = d->id;
	v->action = FILTER_HOLD;
}

static void
ready_add(struct dedup *f, struct delivery *d, struct filter_verdict v)
{
	if (f->nready == f->rcap) {
		f->rcap = f->rcap == 0 ? 16 : f->rcap * 2;
		f->ready = xreallocarray(f->ready, f->rcap, sizeof *f->ready);
	}
	f->ready[f->nready++] = (struct dedup_release){ d, v };
}

/* Removes |d| from |v| (|*n| entries) if it is there. */
static void
remove_delivery(struct delivery **v, size_t *n, struct delivery *d)
{
	for (size_t i = 0; i < *n; i++) {
		if (v[i] == d) {
			memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof *v);
			(*n)--;
			return;
		}
	}
}

static void
dedup_on_done(struct filter *base, struct delivery *d)
{
	static const struct filter_verdict duplicate = { .action = FILTER_ACK,
		.text = "duplicate of a delivery the app processed" };
	static const struct filter_verdict go = { .action = FILTER_DELIVER };
	struct dedup *f = (struct dedup *)base;
	struct dedup_key *k = idmap_del(f->by_delivery, d->id);

	for (size_t i = 0; i < f->nready; i++) {
		if (f->ready[i].d == d) {
			memmove(&f->ready[i], &f->ready[i + 1],
			    (f->nready - i - 1) * sizeof *f->ready);
			f->nready--;
			break;
		}
	}
	if (k == NULL)
		return;
	if (k->owner != d) {
		remove_delivery(k->waiting, &k->nwaiting, d);
		return;
	}
	if (k->committed) {
		/* The app processed the key: the held ones are duplicates. */
		for (size_t i = 0; i < k->nwaiting; i++) {
			idmap_del(f->by_delivery, k->waiting[i]->id);
			metric_inc(f->duplicates);
			ready_add(f, k->waiting[i], duplicate);
		}
		drop_key(f, k);
		return;
	}
	if (k->nwaiting == 0) {
		drop_key(f, k);
		return;
	}
	/* Not processed: the next one takes the key over and goes on. */
	k->owner = k->waiting[0];
	k->ticket = 0;
	remove_delivery(k->waiting, &k->nwaiting, k->owner);
	ready_add(f, k->owner, go);
}

static void
dedup_on_turn(struct filter *base, int64_t now)
{
	static const struct filter_verdict ack = { .action = FILTER_ACK };
	struct dedup *f = (struct dedup *)base;
	const struct filter_host *host = base->host;
	uint64_t durable;
	size_t n = 0;

	/* The first filter of the turn commits every chain's queue. */
	store_flush(host->store, now + host->wall_offset);
	durable = store_durable(host->store);
	while (n < f->ncommitting) {
		struct dedup_key *k =
		    idmap_get(f->by_delivery, f->committing[n]);

		if (k != NULL && k->ticket > durable)
			break;
		n++;
	}
	if (n > 0) {
		uint64_t *batch = xreallocarray(NULL, n, sizeof *batch);

		memcpy(batch, f->committing, n * sizeof *batch);
		memmove(f->committing, f->committing + n,
		    (f->ncommitting - n) * sizeof *f->committing);
		f->ncommitting -= n;
		for (size_t i = 0; i < n; i++) {
			struct dedup_key *k =
			    idmap_get(f->by_delivery, batch[i]);

			/* Gone meanwhile (given back): nothing to release. */
			if (k == NULL || k->owner->id != batch[i])
				continue;
			k->committed = true;
			metric_inc(f->committed);
			host->release(host->arg, k->owner, ack);
		}
		free(batch);
	}
	/* A release may end deliveries, which may add to the list. */
	while (f->nready > 0) {
		struct dedup_release r = f->ready[0];

		memmove(&f->ready[0], &f->ready[1],
		    (f->nready - 1) * sizeof *f->ready);
		f->nready--;
		host->release(host->arg, r.d, r.v);
	}
}

const struct filter_ops dedup_filter = {
	.name = "dedup",
	.options = dedup_options_table,
	.options_size = sizeof(struct dedup_options),
	.validate = dedup_validate,
	.init = dedup_init,
	.free = dedup_free,
	.on_delivery = dedup_on_delivery,
	.on_result = dedup_on_result,
	.on_turn = dedup_on_turn,
	.on_done = dedup_on_done,
};
