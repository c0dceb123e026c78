/*
 * The serial filter: per-key serial delivery. Deliveries that share a key
 * (a header's value, e.g. an order id) reach the app one at a time, in the
 * order they arrived: while one is at the app, later ones are held, and
 * the next is released when the previous leaves the sidecar (acked, NAKed
 * for a retry, dead-lettered), in the next on_turn: releasing from inside
 * on_done would run the next one's chain while the core is still ending
 * the previous. Deliveries without the key pass freely.
 *
 *   filters:
 *     - serial:
 *         key: header:Order-Id
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "config.h"
#include "delivery.h"
#include "filter.h"
#include "idmap.h"
#include "serial.h"
#include "xmalloc.h"

#define HEADER_PREFIX "header:"

/* One key in use: the delivery that has it, and those waiting for it. */
struct serial_key {
	char *value;
	struct delivery *owner;
	struct delivery **waiting;
	size_t nwaiting, cap;
	struct serial_key *next; /* same hash */
};

struct serial {
	struct filter base;
	const char *header;
	struct idmap *keys; /* FNV-1a of the value -> chain of serial_key */
	struct delivery **ready; /* new owners to release in on_turn */
	size_t nready, cap;
};

static const struct config_option serial_options_table[] = {
	{ .name = "key",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct serial_options, key),
	    .help = "what makes deliveries related: header:NAME" },
	{ .name = NULL },
};

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h != 0 ? h : 1;
}

static int
serial_validate(const void *options, char **err)
{
	const struct serial_options *o = options;

	if (strncmp(o->key, HEADER_PREFIX, strlen(HEADER_PREFIX)) != 0 ||
	    o->key[strlen(HEADER_PREFIX)] == '\0') {
		*err = xasprintf("expected header:NAME, got \"%s\"", o->key);
		return -1;
	}
	return 0;
}

static struct filter *
serial_init(const void *options, const struct filter_host *host)
{
	const struct serial_options *o = options;
	struct serial *s = xcalloc(1, sizeof *s);

	s->header = o->key + strlen(HEADER_PREFIX);
	s->keys = idmap_new();
	return &s->base;
}

static void
free_chain(void *arg, uint64_t id, void *value)
{
	struct serial_key *k, *next;

	for (k = value; k != NULL; k = next) {
		next = k->next;
		free(k->value);
		free(k->waiting);
		free(k);
	}
}

static void
serial_free(struct filter *f)
{
	struct serial *s = (struct serial *)f;

	idmap_foreach(s->keys, free_chain, NULL);
	idmap_free(s->keys);
	free(s->ready);
	free(s);
}

/* The entry for |value|, created when |create| is set; NULL otherwise. */
static struct serial_key *
find_key(struct serial *s, const char *value, bool create)
{
	uint64_t h = fnv1a(value);
	struct serial_key *head = idmap_get(s->keys, h), *k;

	for (k = head; k != NULL; k = k->next) {
		if (strcmp(k->value, value) == 0)
			return k;
	}
	if (!create)
		return NULL;
	k = xcalloc(1, sizeof *k);
	k->value = xstrdup(value);
	k->next = head;
	idmap_put(s->keys, h, k);
	return k;
}

static void
drop_key(struct serial *s, struct serial_key *gone)
{
	uint64_t h = fnv1a(gone->value);
	struct serial_key *head = idmap_get(s->keys, h), **p;

	for (p = &head; *p != gone; p = &(*p)->next)
		;
	*p = gone->next;
	if (head != NULL)
		idmap_put(s->keys, h, head);
	else
		idmap_del(s->keys, h);
	free(gone->value);
	free(gone->waiting);
	free(gone);
}

static struct filter_verdict
serial_on_delivery(struct filter *f, struct delivery *d, int64_t now)
{
	struct serial *s = (struct serial *)f;
	struct filter_verdict v = { .action = FILTER_DELIVER };
	const char *value = delivery_header(d, s->header);
	struct serial_key *k;

	if (value == NULL)
		return v;
	k = find_key(s, value, true);
	if (k->owner == NULL) {
		k->owner = d;
		return v;
	}
	if (k->nwaiting == k->cap) {
		k->cap = k->cap == 0 ? 4 : k->cap * 2;
		k->waiting =
		    xreallocarray(k->waiting, k->cap, sizeof *k->waiting);
	}
	k->waiting[k->nwaiting++] = d;
	v.action = FILTER_HOLD;
	return v;
}

/* Removes |d| from |v| (|*n| entries) if it is there. */
static void
remove_from(struct delivery **v, size_t *n, struct delivery *d)
{
	for (size_t i = 0; i < *n; i++) {
		if (v[i] == d) {
			memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof d);
			(*n)--;
			return;
		}
	}
}

static void
serial_on_done(struct filter *f, struct delivery *d)
{
	struct serial *s = (struct serial *)f;
	const char *value = delivery_header(d, s->header);
	struct serial_key *k;

	if (value == NULL || (k = find_key(s, value, false)) == NULL)
		return;
	if (k->owner != d) {
		/* A waiting one leaves (e.g. at shutdown): just forget it. */
		remove_from(k->waiting, &k->nwaiting, d);
		return;
	}
	/* An owner that leaves before its release came passes it on. */
	remove_from(s->ready, &s->nready, d);
	if (k->nwaiting == 0) {
		drop_key(s, k);
		return;
	}
	k->owner = k->waiting[0];
	remove_from(k->waiting, &k->nwaiting, k->owner);
	if (s->nready == s->cap) {
		s->cap = s->cap == 0 ? 8 : s->cap * 2;
		s->ready = xreallocarray(s->ready, s->cap, sizeof *s->ready);
	}
	s->ready[s->nready++] = k->owner;
}

static void
serial_on_turn(struct filter *f, int64_t now)
{
	struct serial *s = (struct serial *)f;
	struct filter_verdict go = { .action = FILTER_DELIVER };

	/* A release may end deliveries, which may add to the list. */
	while (s->nready > 0) {
		struct delivery *next = s->ready[0];

		remove_from(s->ready, &s->nready, next);
		f->host->release(f->host->arg, next, go);
	}
}

const struct filter_ops serial_filter = {
	.name = "serial",
	.options = serial_options_table,
	.options_size = sizeof(struct serial_options),
	.validate = serial_validate,
	.init = serial_init,
	.free = serial_free,
	.on_delivery = serial_on_delivery,
	.on_turn = serial_on_turn,
	.on_done = serial_on_done,
};
