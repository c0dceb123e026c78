/*
 * The chain runner, driven through test filters that write what they see
 * into a trace: hook order, short-circuits, holds and releases in both
 * phases, re-entrant releases, and the programming errors it refuses.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/chain.h"
#include "filters/filter.h"
#include "harness/cmocka.h"
#include "harness/fatal.h"
#include "sidecar/config.h"
#include "sidecar/delivery.h"
#include "sidecar/metrics.h"

static const struct config_subscription orders_sub = { .name = "orders" };

/* Every hook call, in order, as "TAG:what". */
static char trace[4096];

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	size_t len = strlen(trace);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(trace + len, sizeof trace - len, fmt, ap);
	va_end(ap);
	len = strlen(trace);
	snprintf(trace + len, sizeof trace - len, " ");
}

/* Checks the trace since the last check, then clears it. */
static void
assert_trace(const char *want)
{
	size_t len = strlen(trace);

	if (len > 0)
		trace[len - 1] = '\0';
	assert_string_equal(trace, want);
	trace[0] = '\0';
}

static char
action_letter(enum filter_action a)
{
	return "DAHRL"[a];
}

static struct filter_verdict
verdict(enum filter_action action)
{
	return (struct filter_verdict){ .action = action };
}

/*
 * The probe: a filter that does what its options say. Inbound it answers
 * |inbound| (FILTER_HOLD: keeps the delivery until its next on_turn, which
 * releases it with |release_in|); with |hold_result| it keeps every
 * result until on_turn releases it with |release_out|; with
 * |dead_letter_at| it turns RETRY into DEAD_LETTER from that attempt on;
 * with |dedup| it passes the first delivery and holds the others until the
 * first one's result, which releases them with that result.
 */
struct probe_options {
	char tag;
	bool fail_init;
	enum filter_action inbound;
	struct filter_verdict release_in;
	bool hold_result;
	struct filter_verdict release_out;
	uint64_t dead_letter_at;
	bool dedup;
	enum filter_action publish;
};

struct probe {
	struct filter base;
	const struct probe_options *opt;
	struct delivery *held[8];
	size_t nheld;
	struct delivery *first; /* dedup: the one at the app */
};

/* Probes by the order they were built in, for tests that call a host. */
static struct probe *probes[8];
static size_t nprobes;
static int64_t delivery_now; /* seen by the latest on_delivery */

static struct filter *
probe_init(const void *options, const struct filter_host *host)
{
	const struct probe_options *opt = options;
	struct probe *p;

	note("%c:init", opt->tag);
	if (opt->fail_init)
		return NULL;
	p = calloc(1, sizeof *p);
	assert_non_null(p);
	p->opt = opt;
	assert_true(nprobes < 8);
	probes[nprobes++] = p;
	return &p->base;
}

static void
probe_free(struct filter *f)
{
	struct probe *p = (struct probe *)f;

	note("%c:free", p->opt->tag);
	for (size_t i = 0; i < nprobes; i++) {
		if (probes[i] == p)
			probes[i] = NULL;
	}
	free(p);
}

static void
probe_hold(struct probe *p, struct delivery *d)
{
	assert_true(p->nheld < 8);
	p->held[p->nheld++] = d;
}

/* Releases what is held now with |v|; what gets held meanwhile waits. */
static void
probe_release_all(struct probe *p, struct filter_verdict v)
{
	struct delivery *held[8];
	size_t n = p->nheld;

	memcpy(held, p->held, n * sizeof held[0]);
	p->nheld = 0;
	for (size_t i = 0; i < n; i++) {
		struct filter_verdict rv = v;

		if (v.action == FILTER_HOLD)
			rv = held[i]->state == DELIVERY_CHAIN
			    ? p->opt->release_in
			    : p->opt->release_out;
		p->base.host->release(p->base.host->arg, held[i], rv);
	}
}

static struct filter_verdict
probe_delivery(struct filter *f, struct delivery *d, int64_t now)
{
	struct probe *p = (struct probe *)f;

	note("%c:d%llu", p->opt->tag, (unsigned long long)d->id);
	delivery_now = now;
	if (p->opt->dedup) {
		if (p->first == NULL) {
			p->first = d;
			return verdict(FILTER_DELIVER);
		}
		probe_hold(p, d);
		return verdict(FILTER_HOLD);
	}
	if (p->opt->inbound == FILTER_HOLD)
		probe_hold(p, d);
	if (p->opt->inbound == FILTER_DEAD_LETTER)
		return (struct filter_verdict){ .action = FILTER_DEAD_LETTER,
			.reason = FILTER_REASON_UNDECODABLE,
			.text = "probe refused it" };
	return verdict(p->opt->inbound);
}

static void
probe_result(
    struct filter *f, struct delivery *d, struct filter_verdict *v, int64_t now)
{
	struct probe *p = (struct probe *)f;

	note("%c:r%llu%c", p->opt->tag, (unsigned long long)d->id,
	    action_letter(v->action));
	if (p->opt->dead_letter_at > 0 && v->action == FILTER_RETRY &&
	    d->meta.num_delivered >= p->opt->dead_letter_at) {
		v->action = FILTER_DEAD_LETTER;
		v->reason = FILTER_REASON_MAX_ATTEMPTS;
		v->text = "retries exhausted";
	}
	if (p->opt->dedup && d == p->first) {
		p->first = NULL;
		probe_release_all(p, *v);
	}
	if (p->opt->hold_result) {
		probe_hold(p, d);
		v->action = FILTER_HOLD;
	}
}

static void
probe_turn(struct filter *f, int64_t now)
{
	struct probe *p = (struct probe *)f;

	note("%c:t", p->opt->tag);
	probe_release_all(p, verdict(FILTER_HOLD));
}

static void
probe_done(struct filter *f, struct delivery *d)
{
	struct probe *p = (struct probe *)f;
	size_t j = 0;

	note("%c:x%llu", p->opt->tag, (unsigned long long)d->id);
	for (size_t i = 0; i < p->nheld; i++) {
		if (p->held[i] != d)
			p->held[j++] = p->held[i];
	}
	p->nheld = j;
}

static struct filter_verdict
probe_publish(struct filter *f, struct publication *pub, int64_t now)
{
	struct probe *p = (struct probe *)f;

	note("%c:p", p->opt->tag);
	if (p->opt->publish == FILTER_DEAD_LETTER)
		return (struct filter_verdict){ .action = FILTER_DEAD_LETTER,
			.text = "subject not allowed" };
	return verdict(p->opt->publish);
}

static const struct filter_ops probe_filter = {
	.name = "probe",
	.init = probe_init,
	.free = probe_free,
	.on_delivery = probe_delivery,
	.on_result = probe_result,
	.on_publish = probe_publish,
	.on_turn = probe_turn,
	.on_done = probe_done,
};

/* The events, recorded in the trace as E:inID or E:outID plus the action
 * letter; |reenter| runs inside inbound_done when set. */
static int inbound_calls, outcome_calls;
static void (*reenter)(struct delivery *);

static void
event_inbound(void *arg, struct delivery *d, struct filter_verdict v)
{
	note("E:in%llu%c", (unsigned long long)d->id, action_letter(v.action));
	inbound_calls++;
	assert_ptr_equal(arg, &inbound_calls);
	if (reenter != NULL)
		reenter(d);
}

static void
event_outcome(void *arg, struct delivery *d, struct filter_verdict v)
{
	note("E:out%llu%c", (unsigned long long)d->id, action_letter(v.action));
	outcome_calls++;
	assert_ptr_equal(arg, &inbound_calls);
}

static const struct chain_events events = {
	.inbound_done = event_inbound,
	.outcome_done = event_outcome,
	.arg = &inbound_calls,
};

static struct metrics *registry;

static int
setup(void **state)
{
	trace[0] = '\0';
	nprobes = 0;
	inbound_calls = outcome_calls = 0;
	reenter = NULL;
	delivery_now = 0;
	registry = metrics_new();
	return 0;
}

static int
teardown(void **state)
{
	metrics_free(registry);
	return 0;
}

/* A chain of probes with |opts|, which must outlive it. */
static struct chain *
build(const struct probe_options *opts, size_t n)
{
	struct config_filter entries[8];
	struct config_filters cf = { entries, n };

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		entries[i] = (struct config_filter){ .ops = &probe_filter,
			.options = (void *)&opts[i],
			.line = (int)i + 1 };
	return chain_new(&cf, &orders_sub,
	    &(struct filter_services){ .metrics = registry }, &events);
}

static struct chain *
build_ok(const struct probe_options *opts, size_t n)
{
	struct chain *c = build(opts, n);

	assert_non_null(c);
	trace[0] = '\0';
	return c;
}

static void
hooks_run_in_order(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' }, { .tag = 'B' },
		{ .tag = 'C' } };
	struct delivery d = { .id = 1 };
	struct chain *c = build(opts, 3);
	struct filter_verdict v;

	assert_non_null(c);
	assert_trace("A:init B:init C:init");
	assert_int_equal(chain_length(c), 3);
	assert_string_equal(chain_filter_name(c, 2), "probe");
	/* Each filter was handed its host. */
	for (size_t i = 0; i < 3; i++) {
		assert_ptr_equal(probes[i]->base.ops, &probe_filter);
		assert_string_equal(
		    probes[i]->base.host->subscription, "orders");
		assert_ptr_equal(probes[i]->base.host->metrics, registry);
	}

	v = chain_deliver(c, &d, 100);
	assert_int_equal(v.action, FILTER_DELIVER);
	assert_int_equal(d.chain_pos, 3);
	assert_int_equal(d.state, DELIVERY_CHAIN);
	assert_int_equal(d.verdict.action, FILTER_DELIVER);
	assert_trace("A:d1 B:d1 C:d1");
	assert_true(delivery_now == 100);

	d.state = DELIVERY_AT_APP;
	v = chain_result(c, &d, verdict(FILTER_ACK), 200);
	assert_int_equal(v.action, FILTER_ACK);
	assert_int_equal(d.state, DELIVERY_OUTCOME);
	assert_int_equal(d.chain_pos, 3);
	assert_trace("A:r1A B:r1A C:r1A");

	chain_turn(c, 300);
	assert_trace("A:t B:t C:t");
	assert_int_equal(chain_publish(c, NULL, 400).action, FILTER_DELIVER);
	assert_trace("A:p B:p C:p");
	chain_done(c, &d);
	assert_trace("A:x1 B:x1 C:x1");
	chain_free(c);
	assert_trace("C:free B:free A:free");
	assert_int_equal(inbound_calls + outcome_calls, 0);
}

static void
first_refusal_ends_inbound(void **state)
{
	const struct probe_options ack[] = { { .tag = 'A' },
		{ .tag = 'B', .inbound = FILTER_ACK }, { .tag = 'C' } };
	const struct probe_options dead[] = { { .tag = 'A' },
		{ .tag = 'B', .inbound = FILTER_DEAD_LETTER }, { .tag = 'C' } };
	struct delivery d1 = { .id = 1 }, d2 = { .id = 2 };
	struct chain *c = build_ok(ack, 3);
	struct filter_verdict v;

	v = chain_deliver(c, &d1, 1);
	assert_int_equal(v.action, FILTER_ACK);
	assert_int_equal(d1.chain_pos, 1);
	assert_int_equal(d1.verdict.action, FILTER_ACK);
	assert_trace("A:d1 B:d1");
	/* on_done still reaches the filters after the one that refused. */
	chain_done(c, &d1);
	assert_trace("A:x1 B:x1 C:x1");
	chain_free(c);

	c = build_ok(dead, 3);
	v = chain_deliver(c, &d2, 1);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_UNDECODABLE);
	assert_string_equal(v.text, "probe refused it");
	assert_string_equal(d2.verdict.text, "probe refused it");
	assert_trace("A:d2 B:d2");
	chain_free(c);
	assert_int_equal(inbound_calls + outcome_calls, 0);
}

static void
result_rewritten_at_attempt(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' },
		{ .tag = 'B', .dead_letter_at = 3 }, { .tag = 'C' } };
	struct delivery d1 = { .id = 1, .meta.num_delivered = 2 };
	struct delivery d2 = { .id = 2, .meta.num_delivered = 3 };
	struct filter_verdict retry = { .action = FILTER_RETRY,
		.delay_ns = 5000000000 };
	struct chain *c = build_ok(opts, 3);
	struct filter_verdict v;

	v = chain_result(c, &d1, retry, 1);
	assert_int_equal(v.action, FILTER_RETRY);
	assert_true(v.delay_ns == 5000000000);
	assert_trace("A:r1R B:r1R C:r1R");

	/* C sees what B made of it. */
	v = chain_result(c, &d2, retry, 1);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_int_equal(v.reason, FILTER_REASON_MAX_ATTEMPTS);
	assert_string_equal(v.text, "retries exhausted");
	assert_int_equal(d2.verdict.action, FILTER_DEAD_LETTER);
	assert_trace("A:r2R B:r2R C:r2L");
	chain_free(c);
}

static void
inbound_hold_resumes_after_holder(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' },
		{ .tag = 'H',
		    .inbound = FILTER_HOLD,
		    .release_in = { .action = FILTER_DELIVER } },
		{ .tag = 'C' } };
	struct delivery d = { .id = 1 };
	struct chain *c = build_ok(opts, 3);
	struct filter_verdict v;

	v = chain_deliver(c, &d, 100);
	assert_int_equal(v.action, FILTER_HOLD);
	assert_int_equal(d.chain_pos, 1);
	assert_int_equal(d.verdict.action, FILTER_HOLD);
	assert_trace("A:d1 H:d1");
	assert_int_equal(inbound_calls, 0);

	/* A is not run again; C runs with the turn's time. */
	chain_turn(c, 200);
	assert_trace("A:t H:t C:d1 E:in1D C:t");
	assert_true(delivery_now == 200);
	assert_int_equal(d.chain_pos, 3);
	assert_int_equal(d.verdict.action, FILTER_DELIVER);
	chain_turn(c, 300);
	assert_trace("A:t H:t C:t");
	assert_int_equal(inbound_calls, 1);
	assert_int_equal(outcome_calls, 0);
	chain_free(c);
}

static void
inbound_release_with_verdict_ends_there(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' },
		{ .tag = 'H',
		    .inbound = FILTER_HOLD,
		    .release_in = { .action = FILTER_ACK,
			.text = "duplicate" } },
		{ .tag = 'C' } };
	struct delivery d = { .id = 1 };
	struct chain *c = build_ok(opts, 3);

	assert_int_equal(chain_deliver(c, &d, 1).action, FILTER_HOLD);
	chain_turn(c, 2);
	assert_trace("A:d1 H:d1 A:t H:t E:in1A C:t");
	assert_int_equal(d.chain_pos, 1);
	assert_int_equal(d.verdict.action, FILTER_ACK);
	assert_string_equal(d.verdict.text, "duplicate");
	assert_int_equal(inbound_calls, 1);
	chain_free(c);
}

static void
held_again_by_a_later_filter(void **state)
{
	const struct probe_options opts[] = {
		{ .tag = 'G',
		    .inbound = FILTER_HOLD,
		    .release_in = { .action = FILTER_DELIVER } },
		{ .tag = 'H',
		    .inbound = FILTER_HOLD,
		    .release_in = { .action = FILTER_DELIVER } },
		{ .tag = 'C' },
	};
	struct delivery d = { .id = 1 };
	struct chain *c = build_ok(opts, 3);

	assert_int_equal(chain_deliver(c, &d, 1).action, FILTER_HOLD);
	assert_int_equal(d.chain_pos, 0);
	/* G's release parks it at H, whose on_turn comes next. */
	chain_turn(c, 2);
	assert_trace("G:d1 G:t H:d1 H:t C:d1 E:in1D C:t");
	assert_int_equal(inbound_calls, 1);
	chain_turn(c, 3);
	assert_int_equal(inbound_calls, 1);
	chain_free(c);
}

static void
outcome_hold_resumes_with_released_verdict(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' },
		{ .tag = 'H',
		    .hold_result = true,
		    .release_out = { .action = FILTER_DEAD_LETTER,
			.reason = FILTER_REASON_REJECTED } },
		{ .tag = 'C' } };
	struct delivery d = { .id = 1, .state = DELIVERY_AT_APP };
	struct chain *c = build_ok(opts, 3);
	struct filter_verdict v;

	v = chain_result(c, &d, verdict(FILTER_RETRY), 1);
	assert_int_equal(v.action, FILTER_HOLD);
	assert_int_equal(d.state, DELIVERY_OUTCOME);
	assert_int_equal(d.chain_pos, 1);
	assert_trace("A:r1R H:r1R");
	assert_int_equal(outcome_calls, 0);

	chain_turn(c, 2);
	assert_trace("A:t H:t C:r1L E:out1L C:t");
	assert_int_equal(d.verdict.action, FILTER_DEAD_LETTER);
	assert_int_equal(d.verdict.reason, FILTER_REASON_REJECTED);
	assert_int_equal(outcome_calls, 1);
	assert_int_equal(inbound_calls, 0);
	chain_free(c);
}

static void
phases_told_apart(void **state)
{
	const struct probe_options opts[] = {
		{ .tag = 'H',
		    .inbound = FILTER_HOLD,
		    .release_in = { .action = FILTER_DELIVER },
		    .hold_result = true,
		    .release_out = { .action = FILTER_ACK } },
		{ .tag = 'C' },
	};
	struct delivery d = { .id = 1 };
	struct chain *c = build_ok(opts, 2);

	assert_int_equal(chain_deliver(c, &d, 1).action, FILTER_HOLD);
	chain_turn(c, 2);
	assert_int_equal(inbound_calls, 1);
	assert_int_equal(outcome_calls, 0);
	assert_int_equal(
	    chain_result(c, &d, verdict(FILTER_RETRY), 3).action, FILTER_HOLD);
	chain_turn(c, 4);
	assert_int_equal(inbound_calls, 1);
	assert_int_equal(outcome_calls, 1);
	assert_trace("H:d1 H:t C:d1 E:in1D C:t H:r1R H:t C:r1A E:out1A C:t");
	chain_free(c);
}

/* Inside inbound_done: d1 leaves, and a new delivery enters the chain. */
static struct chain *reenter_chain;
static struct delivery reenter_d3 = { .id = 3 };
static struct filter_verdict reenter_v3;

static void
reenter_done_and_deliver(struct delivery *d)
{
	if (d->id != 1)
		return;
	chain_done(reenter_chain, d);
	reenter_v3 = chain_deliver(reenter_chain, &reenter_d3, 10);
}

static void
release_during_turn_reenters(void **state)
{
	const struct probe_options opts[] = {
		{ .tag = 'H',
		    .inbound = FILTER_HOLD,
		    .release_in = { .action = FILTER_DELIVER } },
		{ .tag = 'C' },
	};
	struct delivery d1 = { .id = 1 }, d2 = { .id = 2 };

	reenter_chain = build_ok(opts, 2);
	assert_int_equal(
	    chain_deliver(reenter_chain, &d1, 1).action, FILTER_HOLD);
	assert_int_equal(
	    chain_deliver(reenter_chain, &d2, 1).action, FILTER_HOLD);
	reenter = reenter_done_and_deliver;
	trace[0] = '\0';

	chain_turn(reenter_chain, 10);
	assert_trace("H:t C:d1 E:in1D H:x1 C:x1 H:d3 C:d2 E:in2D C:t");
	assert_int_equal(reenter_v3.action, FILTER_HOLD);
	assert_int_equal(inbound_calls, 2);
	chain_turn(reenter_chain, 11);
	assert_trace("H:t C:d3 E:in3D C:t");
	assert_int_equal(inbound_calls, 3);
	assert_int_equal(d2.chain_pos, 2);
	assert_int_equal(reenter_d3.chain_pos, 2);
	chain_free(reenter_chain);
}

static void
release_from_another_result(void **state)
{
	const struct probe_options opts[] = { { .tag = 'D', .dedup = true },
		{ .tag = 'C' } };
	struct delivery d1 = { .id = 1 }, d2 = { .id = 2 };
	struct chain *c = build_ok(opts, 2);
	struct filter_verdict v;

	assert_int_equal(chain_deliver(c, &d1, 1).action, FILTER_DELIVER);
	assert_int_equal(chain_deliver(c, &d2, 1).action, FILTER_HOLD);
	/* d1's outcome settles the duplicate before C sees d1's result. */
	v = chain_result(c, &d1, verdict(FILTER_ACK), 2);
	assert_int_equal(v.action, FILTER_ACK);
	assert_trace("D:d1 C:d1 D:d2 D:r1A E:in2A C:r1A");
	assert_int_equal(d2.verdict.action, FILTER_ACK);
	assert_int_equal(d1.chain_pos, 2);
	assert_int_equal(inbound_calls, 1);
	assert_int_equal(outcome_calls, 0);
	chain_free(c);
}

static void
done_forgets_held_delivery(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' },
		{ .tag = 'H', .inbound = FILTER_HOLD }, { .tag = 'C' } };
	struct delivery d = { .id = 1 };
	struct chain *c = build_ok(opts, 3);

	assert_int_equal(chain_deliver(c, &d, 1).action, FILTER_HOLD);
	chain_done(c, &d);
	chain_turn(c, 2);
	assert_trace("A:d1 H:d1 A:x1 H:x1 C:x1 A:t H:t C:t");
	assert_int_equal(inbound_calls, 0);
	chain_free(c);
}

static void
init_failure_frees_built_filters(void **state)
{
	const struct probe_options opts[] = { { .tag = 'A' }, { .tag = 'B' },
		{ .tag = 'F', .fail_init = true }, { .tag = 'C' } };

	assert_null(build(opts, 4));
	assert_trace("A:init B:init F:init B:free A:free");
	assert_null(probes[0]);
	assert_null(probes[1]);
}

static void
publish_first_refusal_wins(void **state)
{
	const struct probe_options pass[] = { { .tag = 'A' }, { .tag = 'B' } };
	const struct probe_options refuse[] = { { .tag = 'A' },
		{ .tag = 'B', .publish = FILTER_DEAD_LETTER },
		{ .tag = 'C', .publish = FILTER_ACK } };
	struct chain *c = build_ok(pass, 2);
	struct filter_verdict v;

	assert_int_equal(chain_publish(c, NULL, 1).action, FILTER_DELIVER);
	assert_trace("A:p B:p");
	chain_free(c);

	c = build_ok(refuse, 3);
	v = chain_publish(c, NULL, 1);
	assert_int_equal(v.action, FILTER_DEAD_LETTER);
	assert_string_equal(v.text, "subject not allowed");
	assert_trace("A:p B:p");
	chain_free(c);
}

static void
registry_passthrough_builds(void **state)
{
	const struct filter_ops *ops = filter_lookup("passthrough");
	struct config_filter entries[2];
	struct config_filters cf = { entries, 2 };
	struct filter_verdict retry = { .action = FILTER_RETRY,
		.delay_ns = 42 };
	struct delivery d = { .id = 1 };
	struct filter_verdict v;
	struct chain *c;

	assert_non_null(ops);
	entries[0] = entries[1] = (struct config_filter){ .ops = ops };
	assert_non_null(
	    c = chain_new(&cf, &orders_sub,
		&(struct filter_services){ .metrics = registry }, &events));
	assert_int_equal(chain_length(c), 2);
	assert_string_equal(chain_filter_name(c, 0), "passthrough");
	assert_string_equal(chain_filter_name(c, 1), "passthrough");

	assert_int_equal(chain_deliver(c, &d, 1).action, FILTER_DELIVER);
	assert_int_equal(d.chain_pos, 2);
	v = chain_result(c, &d, retry, 2);
	assert_int_equal(v.action, FILTER_RETRY);
	assert_true(v.delay_ns == 42);
	chain_turn(c, 3);
	chain_done(c, &d);
	assert_int_equal(chain_publish(c, NULL, 4).action, FILTER_DELIVER);
	chain_free(c);
}

static void
empty_chain_passes(void **state)
{
	struct config_filters cf = { NULL, 0 };
	struct delivery d = { .id = 1 };
	struct chain *c = chain_new(&cf, &orders_sub,
	    &(struct filter_services){ .metrics = registry }, &events);

	assert_non_null(c);
	assert_int_equal(chain_length(c), 0);
	assert_int_equal(chain_deliver(c, &d, 1).action, FILTER_DELIVER);
	assert_int_equal(
	    chain_result(c, &d, verdict(FILTER_ACK), 2).action, FILTER_ACK);
	chain_free(c);
	chain_free(NULL);
}

/* A filter that answers a result with DELIVER: a programming error. */
static void
deliverer_result(
    struct filter *f, struct delivery *d, struct filter_verdict *v, int64_t now)
{
	v->action = FILTER_DELIVER;
}

static const struct filter_ops deliverer_filter = {
	.name = "deliverer",
	.init = probe_init,
	.free = probe_free,
	.on_result = deliverer_result,
};

/* Each misuse the runner refuses, run in a child. */
static const struct misuse {
	const char *what;
	const char *needle;
} misuses[] = {
	{ "release of a delivery never held",
	    "filter probe released delivery 1, which it does not hold" },
	{ "release by another filter than the holder",
	    "released delivery 1, which it does not hold" },
	{ "second release", "released delivery 1, which it does not hold" },
	{ "release with HOLD", "released delivery 1 with HOLD" },
	{ "outcome released as DELIVER", "released delivery 1 with DELIVER" },
	{ "held delivery delivered again",
	    "deliver of delivery 1 while filter 0 holds it" },
	{ "held delivery given a result",
	    "result of delivery 1 while filter 0 holds it" },
	{ "result that is no outcome",
	    "result of delivery 1 is not an outcome" },
	{ "result turned into DELIVER",
	    "filter deliverer turned the result of delivery 1 into DELIVER" },
};

static void
misuse_run(void *arg)
{
	const struct probe_options opts[] = {
		{ .tag = 'H', .inbound = FILTER_HOLD, .hold_result = true },
		{ .tag = 'C' },
	};
	struct config_filter entry = { .ops = &deliverer_filter,
		.options = (void *)&opts[1] };
	struct config_filters cf = { &entry, 1 };
	struct delivery d = { .id = 1 };
	size_t i = *(const size_t *)arg;
	struct chain *c = build(opts, 2);
	const struct filter_host *h = probes[0]->base.host;
	const struct filter_host *other = probes[1]->base.host;

	switch (i) {
	case 0:
		h->release(h->arg, &d, verdict(FILTER_DELIVER));
		break;
	case 1:
		chain_deliver(c, &d, 1);
		other->release(other->arg, &d, verdict(FILTER_DELIVER));
		break;
	case 2:
		chain_deliver(c, &d, 1);
		h->release(h->arg, &d, verdict(FILTER_ACK));
		h->release(h->arg, &d, verdict(FILTER_ACK));
		break;
	case 3:
		chain_deliver(c, &d, 1);
		h->release(h->arg, &d, verdict(FILTER_HOLD));
		break;
	case 4:
		chain_result(c, &d, verdict(FILTER_ACK), 1);
		h->release(h->arg, &d, verdict(FILTER_DELIVER));
		break;
	case 5:
		chain_deliver(c, &d, 1);
		chain_deliver(c, &d, 1);
		break;
	case 6:
		chain_deliver(c, &d, 1);
		chain_result(c, &d, verdict(FILTER_ACK), 1);
		break;
	case 7:
		chain_result(c, &d, verdict(FILTER_DELIVER), 1);
		break;
	case 8:
		chain_free(c);
		c = chain_new(&cf, &orders_sub,
		    &(struct filter_services){ .metrics = registry }, &events);
		chain_result(c, &d, verdict(FILTER_ACK), 1);
		break;
	}
	chain_free(c);
}

static void
programming_errors(void **state)
{
	size_t n = sizeof misuses / sizeof misuses[0];

	for (size_t i = 0; i < n; i++) {
		if (fatal_expect(misuse_run, &i, misuses[i].needle) != 0)
			fail_msg("%s was not refused", misuses[i].what);
	}
}

#define chain_test(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		chain_test(hooks_run_in_order),
		chain_test(first_refusal_ends_inbound),
		chain_test(result_rewritten_at_attempt),
		chain_test(inbound_hold_resumes_after_holder),
		chain_test(inbound_release_with_verdict_ends_there),
		chain_test(held_again_by_a_later_filter),
		chain_test(outcome_hold_resumes_with_released_verdict),
		chain_test(phases_told_apart),
		chain_test(release_during_turn_reenters),
		chain_test(release_from_another_result),
		chain_test(done_forgets_held_delivery),
		chain_test(init_failure_frees_built_filters),
		chain_test(publish_first_refusal_wins),
		chain_test(registry_passthrough_builds),
		chain_test(empty_chain_passes),
		chain_test(programming_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
