/*
 * The dedup filter in a real chain over a real store in a temporary
 * directory: processed keys are acked without the app, a key is
 * committed only after the app's ACK and released only once durable, a
 * duplicate in flight is settled by the first delivery's outcome, keys
 * come from headers or JSON fields, a missing key falls back or is
 * dead-lettered, a failing store holds the ACK instead of skipping dedup,
 * and keys expire after their ttl.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/chain.h"
#include "filters/dedup.h"
#include "filters/filter.h"
#include "harness/cmocka.h"
#include "harness/proc.h"
#include "harness/protoc.h"
#include "sidecar/bus.h"
#include "sidecar/config.h"
#include "sidecar/delivery.h"
#include "sidecar/metrics.h"
#include "sidecar/schema.h"
#include "sidecar/store.h"
#include "sidecar/view.h"

#define S INT64_C(1000000000)

static const struct config_subscription orders_sub = { .name = "orders" };

struct world {
	char dir[256];
	struct store *store;
	struct metrics *metrics;
	struct dedup_options opt;
	struct chain *chain;
	/* The last verdict a phase ended with through the events, by id. */
	struct filter_verdict inbound[16], outcome[16];
	bool inbound_seen[16], outcome_seen[16];
	uint64_t next_id;
};

static void
on_inbound(void *arg, struct delivery *d, struct filter_verdict v)
{
	struct world *w = arg;

	w->inbound[d->id] = v;
	w->inbound_seen[d->id] = true;
}

static void
on_outcome(void *arg, struct delivery *d, struct filter_verdict v)
{
	struct world *w = arg;

	w->outcome[d->id] = v;
	w->outcome_seen[d->id] = true;
}

static struct world *
world_new(const char *key, int missing)
{
	struct world *w = calloc(1, sizeof *w);
	char path[512], *err = NULL;
	struct store_options so = { path, false, 1 << 20, 1 << 20, 100 };
	struct config_filter entry = { .ops = &dedup_filter,
		.options = &w->opt };
	struct config_filters cf = { &entry, 1 };
	struct chain_events ev = { on_inbound, on_outcome, w };
	struct filter_services fs;

	assert_int_equal(proc_tmpdir(w->dir, sizeof w->dir, "dedup-filter"), 0);
	snprintf(path, sizeof path, "%s/db", w->dir);
	if ((w->store = store_open(NULL, &so, STORE_DAEMON, &err)) == NULL)
		fail_msg("store_open: %s", err);
	w->metrics = metrics_new();
	w->opt.key = (char *)key;
	w->opt.ttl = 60 * S;
	w->opt.missing_key = missing;
	fs = (struct filter_services){ w->metrics, w->store, 0, NULL };
	assert_non_null(w->chain = chain_new(&cf, &orders_sub, &fs, &ev));
	return w;
}

static void
world_free(struct world *w)
{
	chain_free(w->chain);
	store_close(w->store);
	metrics_free(w->metrics);
	proc_rmtree(w->dir);
	free(w);
}

/* A delivery of stream sequence |seq| with Nats-Msg-Id |msg_id| (or none)
 * and |payload|. */
static struct delivery *
delivery(struct world *w, uint64_t seq, const char *msg_id, const char *payload)
{
	char reply[128];
	natsMsg *m = NULL;
	struct delivery *d;

	snprintf(reply, sizeof reply,
	    "$JS.ACK.ORDERS.app.1.%llu.%llu.1700000000000000000.0",
	    (unsigned long long)seq, (unsigned long long)seq);
	assert_int_equal(natsMsg_Create(&m, "orders.created.v1", reply, payload,
			     (int)strlen(payload)),
	    NATS_OK);
	if (msg_id != NULL)
		assert_int_equal(
		    natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id), NATS_OK);
	assert_non_null(d = delivery_new(m, NULL, bus_msg_size(m)));
	d->id = ++w->next_id;
	assert_true(d->id < 16);
	return d;
}

static enum filter_action
deliver(struct world *w, struct delivery *d, int64_t now)
{
	d->chain_pos = 0;
	return chain_deliver(w->chain, d, now).action;
}

static enum filter_action
result(struct world *w, struct delivery *d, enum filter_action a, int64_t now)
{
	struct filter_verdict v = { .action = a };

	return chain_result(w->chain, d, v, now).action;
}

/* What the core does once a delivery is settled. */
static void
done(struct world *w, struct delivery *d)
{
	chain_done(w->chain, d);
	delivery_free(d);
}

static double
counter(struct world *w, const char *name)
{
	struct metric *m = metrics_counter(w->metrics, name, "",
	    (const char *const[]){ "subscription", NULL });

	return metric_value(
	    metric_series(m, (const char *const[]){ "orders", NULL }));
}

static void
ack_is_committed_before_it_is_released(void **state)
{
	struct world *w =
	    world_new("header:Nats-Msg-Id", DEDUP_MISSING_FALLBACK);
	struct delivery *d = delivery(w, 1, "m-1", "{}"), *again;

	assert_int_equal(deliver(w, d, S), FILTER_DELIVER);
	assert_int_equal(result(w, d, FILTER_ACK, S), FILTER_HOLD);
	assert_false(w->outcome_seen[d->id]);
	chain_turn(w->chain, S);
	assert_true(w->outcome_seen[d->id]);
	assert_int_equal(w->outcome[d->id].action, FILTER_ACK);
	assert_int_equal(counter(w, "nats_sidecar_dedup_committed_total"), 1);
	done(w, d);
	/* A second publish of the same event, or a redelivery. */
	again = delivery(w, 2, "m-1", "{}");
	assert_int_equal(deliver(w, again, 2 * S), FILTER_ACK);
	assert_int_equal(counter(w, "nats_sidecar_dedup_duplicates_total"), 1);
	done(w, again);
	again = delivery(w, 3, "m-2", "{}");
	assert_int_equal(deliver(w, again, 2 * S), FILTER_DELIVER);
	done(w, again);
	world_free(w);
}

static void
duplicate_in_flight_follows_the_first(void **state)
{
	struct world *w =
	    world_new("header:Nats-Msg-Id", DEDUP_MISSING_FALLBACK);
	struct delivery *a = delivery(w, 1, "m-1", "{}");
	struct delivery *b = delivery(w, 2, "m-1", "{}");
	struct delivery *c = delivery(w, 3, "m-1", "{}");

	/* Failed first: the held one takes over and goes to the app. */
	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	assert_int_equal(deliver(w, b, S), FILTER_HOLD);
	assert_int_equal(deliver(w, c, S), FILTER_HOLD);
	assert_int_equal(counter(w, "nats_sidecar_dedup_held_total"), 2);
	assert_int_equal(result(w, a, FILTER_RETRY, S), FILTER_RETRY);
	done(w, a);
	assert_false(w->inbound_seen[b->id]);
	chain_turn(w->chain, S);
	assert_true(w->inbound_seen[b->id]);
	assert_int_equal(w->inbound[b->id].action, FILTER_DELIVER);
	assert_false(w->inbound_seen[c->id]);
	/* Processed second: the last one is acked as a duplicate. */
	assert_int_equal(result(w, b, FILTER_ACK, S), FILTER_HOLD);
	chain_turn(w->chain, S);
	assert_int_equal(w->outcome[b->id].action, FILTER_ACK);
	done(w, b);
	assert_false(w->inbound_seen[c->id]);
	chain_turn(w->chain, S);
	assert_true(w->inbound_seen[c->id]);
	assert_int_equal(w->inbound[c->id].action, FILTER_ACK);
	done(w, c);
	world_free(w);
}

static void
held_one_leaving_is_forgotten(void **state)
{
	struct world *w =
	    world_new("header:Nats-Msg-Id", DEDUP_MISSING_FALLBACK);
	struct delivery *a = delivery(w, 1, "m-1", "{}");
	struct delivery *b = delivery(w, 2, "m-1", "{}");

	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	assert_int_equal(deliver(w, b, S), FILTER_HOLD);
	/* Shutdown gives the held one back, then the first one. */
	done(w, b);
	done(w, a);
	chain_turn(w->chain, S);
	a = delivery(w, 3, "m-1", "{}");
	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	done(w, a);
	world_free(w);
}

static void
keys_from_json_fields_or_fallback(void **state)
{
	struct world *w = world_new("field:order.id", DEDUP_MISSING_FALLBACK);
	struct delivery *a =
	    delivery(w, 1, "x-1", "{\"order\":{\"id\":\"o-7\"}}");
	struct delivery *b;

	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	assert_int_equal(result(w, a, FILTER_ACK, S), FILTER_HOLD);
	chain_turn(w->chain, S);
	done(w, a);
	/* Another message id, the same field: a duplicate. */
	b = delivery(w, 2, "x-2", "{\"order\":{\"id\":\"o-7\"},\"n\":2}");
	assert_int_equal(deliver(w, b, S), FILTER_ACK);
	done(w, b);
	/* No such field: keyed on stream and sequence, so only its own
	 * redelivery is a duplicate. */
	a = delivery(w, 3, "x-3", "{\"order\":{}}");
	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	assert_int_equal(result(w, a, FILTER_ACK, S), FILTER_HOLD);
	chain_turn(w->chain, S);
	done(w, a);
	a = delivery(w, 3, "x-3", "{\"order\":{}}");
	assert_int_equal(deliver(w, a, S), FILTER_ACK);
	done(w, a);
	a = delivery(w, 4, "x-3", "not json");
	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	done(w, a);
	assert_int_equal(
	    counter(w, "nats_sidecar_dedup_missing_keys_total"), 3);
	world_free(w);
}

/* An orders.v2.OrderCreated with message_id "ord-42" and order_ref
 * |ref|, in protobuf. */
static struct delivery *
order_v2(struct world *w, uint64_t seq, const char *msg_id, char ref)
{
	const char pb[] = { 0x0a, 0x06, 'o', 'r', 'd', '-', '4', '2', 0x12,
		0x01, ref, 0 };
	struct delivery *d = delivery(w, seq, msg_id, pb);

	assert_int_equal(
	    natsMsgHeader_Set(d->msg, "Content-Type", "application/protobuf"),
	    NATS_OK);
	return d;
}

static void
protobuf_field_is_read_from_the_view(void **state)
{
	struct world *w = world_new("field:message_id", DEDUP_MISSING_FALLBACK);
	struct schema *events = protoc_events();
	struct view_spec spec = { view_type_fixed,
		(void *)schema_lookup(events, "orders.v2.OrderCreated"),
		"application/json", schema_limits_default };
	struct delivery *a = order_v2(w, 1, "p-1", 'a'), *b;

	a->view_spec = &spec;
	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	/* Decoded once, for the filter and the app alike. */
	assert_non_null(a->view);
	assert_null(view_error(a->view));
	assert_int_equal(result(w, a, FILTER_ACK, S), FILTER_HOLD);
	chain_turn(w->chain, S);
	done(w, a);
	b = order_v2(w, 2, "p-2", 'b');
	b->view_spec = &spec;
	assert_int_equal(deliver(w, b, S), FILTER_ACK);
	done(w, b);
	schema_free(events);
	world_free(w);
}

static void
missing_key_can_dead_letter(void **state)
{
	struct world *w =
	    world_new("field:message_id", DEDUP_MISSING_DEAD_LETTER);
	struct delivery *a = delivery(w, 1, NULL, "[1,2]");
	struct filter_verdict v;

	a->chain_pos = 0;
	v = chain_deliver(w->chain, a, S);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_NO_KEY);
	assert_non_null(v.text);
	done(w, a);
	world_free(w);
}

static void
failing_store_holds_the_ack(void **state)
{
	struct world *w =
	    world_new("header:Nats-Msg-Id", DEDUP_MISSING_FALLBACK);
	struct delivery *a = delivery(w, 1, "m-1", "{}");

	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	assert_int_equal(result(w, a, FILTER_ACK, S), FILTER_HOLD);
	store_fail_nth(w->store, 1, EIO);
	chain_turn(w->chain, S);
	assert_false(w->outcome_seen[a->id]);
	assert_non_null(store_problem(w->store));
	/* Retried on a later turn, once a second has passed. */
	chain_turn(w->chain, S + 1);
	assert_false(w->outcome_seen[a->id]);
	chain_turn(w->chain, 3 * S);
	assert_true(w->outcome_seen[a->id]);
	assert_null(store_problem(w->store));
	done(w, a);
	/* A store that cannot be read never lets a message through. */
	a = delivery(w, 2, "m-1", "{}");
	store_fail_nth(w->store, 1, EIO);
	assert_int_equal(deliver(w, a, 4 * S), FILTER_RETRY);
	done(w, a);
	world_free(w);
}

static void
keys_expire_after_the_ttl(void **state)
{
	struct world *w =
	    world_new("header:Nats-Msg-Id", DEDUP_MISSING_FALLBACK);
	struct delivery *a = delivery(w, 1, "m-1", "{}");

	assert_int_equal(deliver(w, a, S), FILTER_DELIVER);
	assert_int_equal(result(w, a, FILTER_ACK, S), FILTER_HOLD);
	chain_turn(w->chain, S);
	done(w, a);
	a = delivery(w, 2, "m-1", "{}");
	assert_int_equal(deliver(w, a, 60 * S), FILTER_ACK);
	done(w, a);
	a = delivery(w, 3, "m-1", "{}");
	assert_int_equal(deliver(w, a, 62 * S), FILTER_DELIVER);
	done(w, a);
	world_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ack_is_committed_before_it_is_released),
		cmocka_unit_test(duplicate_in_flight_follows_the_first),
		cmocka_unit_test(held_one_leaving_is_forgotten),
		cmocka_unit_test(keys_from_json_fields_or_fallback),
		cmocka_unit_test(protobuf_field_is_read_from_the_view),
		cmocka_unit_test(missing_key_can_dead_letter),
		cmocka_unit_test(failing_store_holds_the_ack),
		cmocka_unit_test(keys_expire_after_the_ttl),
	};

	int failed;

	/* natsMsg_Destroy() needs the library's collector. */
	nats_Open(-1);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	nats_Close();
	return failed;
}
