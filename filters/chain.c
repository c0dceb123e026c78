#include <stdlib.h>

#include "chain.h"
#include "sidecar/config.h"
#include "sidecar/delivery.h"
#include "sidecar/log.h"
#include "sidecar/xmalloc.h"

/* One filter of the chain, with the host it calls back through: the host's
 * arg is the slot, so a release names the filter that made it. */
struct chain_slot {
	struct chain *chain;
	size_t index;
	const struct filter_ops *ops;
	struct filter *filter;
	struct filter_host host;
};

struct chain {
	struct chain_slot *slots;
	size_t n; /* slots built */
	char *subscription;
	struct chain_events events;
	int64_t now; /* of the latest call, for hooks resumed by a release */
};

static const struct filter_verdict chain_pass = { .action = FILTER_DELIVER };

static void chain_release(void *, struct delivery *, struct filter_verdict);

struct chain *
chain_new(const struct config_filters *filters,
    const struct config_subscription *subscription,
    const struct filter_services *services, const struct chain_events *events)
{
	struct chain *c = xcalloc(1, sizeof *c);

	c->subscription = xstrdup(subscription->name);
	c->events = *events;
	c->slots = xcalloc(filters->n, sizeof *c->slots);
	for (size_t i = 0; i < filters->n; i++) {
		const struct config_filter *cf = &filters->v[i];
		struct chain_slot *slot = &c->slots[i];

		if (cf->ops->init == NULL || cf->ops->free == NULL)
			fatalx("filter %s has no init or free", cf->ops->name);
		slot->chain = c;
		slot->index = i;
		slot->ops = cf->ops;
		slot->host.release = chain_release;
		slot->host.arg = slot;
		slot->host.metrics = services->metrics;
		slot->host.store = services->store;
		slot->host.wall_offset = services->wall_offset;
		slot->host.schemas = services->schemas;
		slot->host.subscription = c->subscription;
		slot->host.config = subscription;
		if ((slot->filter = cf->ops->init(cf->options, &slot->host)) ==
		    NULL)
			goto fail;
		slot->filter->ops = cf->ops;
		slot->filter->host = &slot->host;
		c->n = i + 1;
	}
	return c;

fail:
	chain_free(c);
	return NULL;
}

void
chain_free(struct chain *c)
{
	if (c == NULL)
		return;
	while (c->n > 0) {
		c->n--;
		c->slots[c->n].ops->free(c->slots[c->n].filter);
	}
	free(c->slots);
	free(c->subscription);
	free(c);
}

/* Ends the process if |d| is parked: running it again would fork it. */
static void
chain_check_unheld(
    const struct chain *c, const struct delivery *d, const char *what)
{
	if (d->verdict.action == FILTER_HOLD)
		fatalx(
		    "chain %s: %s of delivery %llu while filter %zu holds it",
		    c->subscription, what, (unsigned long long)d->id,
		    d->chain_pos);
}

/* Runs on_delivery from d->chain_pos on; stops at the first non-DELIVER. */
static struct filter_verdict
chain_run_inbound(struct chain *c, struct delivery *d)
{
	for (; d->chain_pos < c->n; d->chain_pos++) {
		struct chain_slot *slot = &c->slots[d->chain_pos];
		struct filter_verdict v;

		if (slot->ops->on_delivery == NULL)
			continue;
		v = slot->ops->on_delivery(slot->filter, d, c->now);
		if (v.action != FILTER_DELIVER) {
			d->verdict = v;
			return v;
		}
	}
	d->verdict = chain_pass;
	return chain_pass;
}

/* Runs on_result from d->chain_pos on; stops only at a hold. */
static struct filter_verdict
chain_run_outcome(struct chain *c, struct delivery *d, struct filter_verdict v)
{
	for (; d->chain_pos < c->n; d->chain_pos++) {
		struct chain_slot *slot = &c->slots[d->chain_pos];

		if (slot->ops->on_result == NULL)
			continue;
		slot->ops->on_result(slot->filter, d, &v, c->now);
		if (v.action == FILTER_HOLD)
			break;
		if (v.action == FILTER_DELIVER)
			fatalx(
			    "chain %s: filter %s turned the result of delivery "
			    "%llu into DELIVER",
			    c->subscription, slot->ops->name,
			    (unsigned long long)d->id);
	}
	d->verdict = v;
	return v;
}

/* The host's release: checks the releaser holds |d|, then resumes. */
static void
chain_release(void *arg, struct delivery *d, struct filter_verdict v)
{
	struct chain_slot *slot = arg;
	struct chain *c = slot->chain;

	if ((d->state != DELIVERY_CHAIN && d->state != DELIVERY_OUTCOME) ||
	    d->verdict.action != FILTER_HOLD || d->chain_pos != slot->index)
		fatalx("chain %s: filter %s released delivery %llu, which it "
		       "does not hold",
		    c->subscription, slot->ops->name,
		    (unsigned long long)d->id);
	if (v.action == FILTER_HOLD ||
	    (d->state == DELIVERY_OUTCOME && v.action == FILTER_DELIVER))
		fatalx("chain %s: filter %s released delivery %llu with %s",
		    c->subscription, slot->ops->name, (unsigned long long)d->id,
		    v.action == FILTER_HOLD ? "HOLD" : "DELIVER");

	d->verdict = v;
	if (d->state == DELIVERY_CHAIN) {
		if (v.action == FILTER_DELIVER) {
			d->chain_pos++;
			if ((v = chain_run_inbound(c, d)).action == FILTER_HOLD)
				return;
		}
		c->events.inbound_done(c->events.arg, d, v);
		return;
	}
	d->chain_pos++;
	if ((v = chain_run_outcome(c, d, v)).action == FILTER_HOLD)
		return;
	c->events.outcome_done(c->events.arg, d, v);
}

struct filter_verdict
chain_deliver(struct chain *c, struct delivery *d, int64_t now)
{
	chain_check_unheld(c, d, "deliver");
	c->now = now;
	d->state = DELIVERY_CHAIN;
	return chain_run_inbound(c, d);
}

struct filter_verdict
chain_result(
    struct chain *c, struct delivery *d, struct filter_verdict v, int64_t now)
{
	chain_check_unheld(c, d, "result");
	if (v.action == FILTER_DELIVER || v.action == FILTER_HOLD)
		fatalx("chain %s: result of delivery %llu is not an outcome",
		    c->subscription, (unsigned long long)d->id);
	c->now = now;
	d->state = DELIVERY_OUTCOME;
	d->chain_pos = 0;
	d->verdict = v;
	return chain_run_outcome(c, d, v);
}

void
chain_turn(struct chain *c, int64_t now)
{
	c->now = now;
	for (size_t i = 0; i < c->n; i++) {
		if (c->slots[i].ops->on_turn != NULL)
			c->slots[i].ops->on_turn(c->slots[i].filter, now);
	}
}

void
chain_done(struct chain *c, struct delivery *d)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->slots[i].ops->on_done != NULL)
			c->slots[i].ops->on_done(c->slots[i].filter, d);
	}
}

struct filter_verdict
chain_publish(struct chain *c, struct publication *p, int64_t now)
{
	c->now = now;
	for (size_t i = 0; i < c->n; i++) {
		struct filter_verdict v;

		if (c->slots[i].ops->on_publish == NULL)
			continue;
		v = c->slots[i].ops->on_publish(c->slots[i].filter, p, now);
		if (v.action != FILTER_DELIVER)
			return v;
	}
	return chain_pass;
}

size_t
chain_length(const struct chain *c)
{
	return c->n;
}

const char *
chain_filter_name(const struct chain *c, size_t i)
{
	return c->slots[i].ops->name;
}
