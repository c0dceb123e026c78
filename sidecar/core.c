#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "advisory.h"
#include "appchan.h"
#include "buf.h"
#include "bus.h"
#include "config.h"
#include "consumer.h"
#include "core.h"
#include "delivery.h"
#include "dlq.h"
#include "filters/chain.h"
#include "filters/deadletter.h"
#include "filters/dedup.h"
#include "filters/serial.h"
#include "filters/translate.h"
#include "frame.h"
#include "httpd.h"
#include "idmap.h"
#include "jsapi.h"
#include "log.h"
#include "metrics.h"
#include "pull.h"
#include "window.h"
#include "trace.h"
#include "schema.h"
#include "store.h"
#include "view.h"
#include "xmalloc.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
/* How often keep-alives and processing timeouts are checked. */
#define TICK_S 0.25
/* Results for deliveries given up on are recognised this long. */
#define LATE_RESULT_WINDOW_NS (10 * 60 * NS_PER_S)

typedef NatsSidecar__Channel__V1__Delivery DeliveryFrame;
typedef NatsSidecar__Channel__V1__Result ResultFrame;
typedef NatsSidecar__Channel__V1__Publish PublishFrame;
typedef NatsSidecar__Channel__V1__PublishAck PublishAckFrame;
typedef NatsSidecar__Channel__V1__Header HeaderFrame;

enum outcome {
	OUTCOME_ACKED,
	OUTCOME_RETRIED,
	OUTCOME_REJECTED,
	OUTCOME_DEAD_LETTERED,
	OUTCOME_DUPLICATE,
	OUTCOME_TIMED_OUT,
	OUTCOME_LATE,
	OUTCOME_NAKED, /* returned unprocessed: app lost, drain */
	OUTCOME_DEAD_LETTER_FAILED, /* kept: the dead letter was not stored */
	OUTCOME_COUNT
};

/* Retries are counted by attempt up to this; later ones share a label. */
#define RETRY_ATTEMPT_LABELS 10

static const char *const outcome_names[] = {
	"acked",
	"retried",
	"rejected",
	"dead_lettered",
	"duplicate",
	"timed_out",
	"late_result",
	"returned",
	"dead_letter_failed",
};

struct subscription {
	struct core *core;
	const struct config_subscription *cfg;
	struct consumer *consumer;
	struct pull *pull;
	struct chain *chain;
	/* The configured filters, behind the serial filter if serial_key is
	 * set. */
	struct config_filters filters;
	struct serial_options serial;
	/* Where dead letters go: the dead-letter filter's options, or NULL
	 * (then a message to dead-letter is kept and retried late). */
	const struct deadletter_options *dlq;
	/* The declared message type's decoding, when there is one. */
	struct view_spec view_spec;
	bool typed;
	bool dedup; /* its chain has a dedup filter */
	bool translate; /* ... a translate filter, which decodes */
	size_t held, held_bytes; /* deliveries the sidecar holds, any state */
	uint64_t finished; /* deliveries released so far */
	size_t parked; /* held by a filter before the app (serial, say) */
	struct window window; /* how many it may hold now */
	struct delivery_list queue; /* waiting for app capacity */
	struct delivery_list all;
	struct metric_series *outcomes[OUTCOME_COUNT];
	struct metric_series *in_flight, *in_flight_peak, *pulls;
	struct metric_series *processing;
	struct metric_series *retries[RETRY_ATTEMPT_LABELS + 1];
	struct metric_series *dead_letters[FILTER_REASON_MAX_DELIVERIES + 1];
	struct metric_series *dead_letter_failures;
	uint64_t pulls_seen;
	struct metric_series *end_to_end, *batch_sizes;
	struct metric_series *pending, *ack_pending; /* NULL: not polled */
	struct metric_series *in_flight_limit, *in_flight_window;
};

/* The core's view of one connected app. */
struct app_state {
	struct app *app;
	uint64_t id;
	uint32_t busy; /* deliveries sent and not answered */
	struct delivery_list sent;
	TAILQ_ENTRY(app_state) link;
};

TAILQ_HEAD(app_list, app_state);

/* Deliveries given up on, oldest first, so late results are recognised
 * for a while and then forgotten. */
struct late_ring {
	struct late_entry {
		uint64_t id;
		int64_t until;
	} * v;
	size_t head, n, cap;
};

/* A publish waiting for its PubAcks: one per copy sent; the app gets
 * one answer, the first failure's or else the first PubAck's. */
struct publish_wait {
	struct core *core;
	uint64_t app_id;
	uint64_t publish_id;
	size_t pending; /* copies without a PubAck */
	bool answered; /* answer holds a result */
	PublishAckFrame answer;
	char *stream, *error; /* behind answer's strings */
};

struct core {
	struct ev_loop *loop;
	const struct config *cfg;
	struct bus *bus;
	struct appchan *appchan;
	struct httpd *httpd; /* metrics and probes, or NULL when off */
	struct advisory *advisory; /* what the server gives up on, or NULL */
	struct metrics *metrics;
	struct subscription *subs;
	size_t nsubs;
	struct idmap *at_app; /* delivery id -> delivery at an app */
	struct idmap *apps; /* app id -> struct app_state */
	struct app_list app_list; /* round robin: the last served goes last */
	struct idmap *late; /* delivery id -> its entry in late_ring */
	struct late_ring late_ring;
	uint64_t next_delivery;

	ev_prepare turn;
	ev_timer tick;
	ev_signal sigterm, sigint;
	ev_timer grace;
	bool draining;

	struct metric_series *app_connections, *publishes_ok, *publishes_failed;
	struct metric_series *reconnects, *late_results;
	size_t publishes_pending; /* app publishes waiting for a PubAck */

	struct store *store; /* the dedup store, or NULL */
	struct metric_series *store_entries, *store_bytes, *store_usage;
	struct metric_series *store_expired;
	uint64_t store_expired_seen;
	struct trace_gen *trace; /* starts trace context, or NULL */
	struct metric_series *nats_state[BUS_CLOSED + 1];
	struct metric_series *app_capacity;
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static struct log_ctx
delivery_log_ctx(const struct delivery *d)
{
	struct log_ctx ctx = {
		.subscription = d->sub->cfg->name,
		.subject = delivery_subject(d),
		.stream_seq = d->meta.stream_seq,
		.msg_id = delivery_msg_id(d),
		.trace_id = d->trace_id[0] != '\0' ? d->trace_id : NULL,
	};

	return ctx;
}

/* Removes |d| from the sidecar: every filter forgets it, credits free. */
static void
release(struct delivery *d, enum outcome o)
{
	struct subscription *s = d->sub;

	if (d->pending_request != 0)
		dlq_cancel(s->core->bus, d->pending_request);
	chain_done(s->chain, d);
	metric_inc(s->outcomes[o]);
	if (d->parked)
		s->parked--;
	TAILQ_REMOVE(&s->all, d, all);
	s->held--;
	s->held_bytes -= d->size;
	s->finished++;
	metric_set(s->in_flight, (double)s->held);
	delivery_free(d);
}

static void give_back(struct core *, struct delivery *, int64_t);

static void
send_ack(struct delivery *d, const char *body)
{
	/* A lost ack only means a redelivery, which the chain expects. */
	bus_publish(
	    d->sub->core->bus, delivery_reply(d), NULL, body, strlen(body));
}

static void
send_nak(struct delivery *d, int64_t delay_ns)
{
	char body[64];

	if (delay_ns > 0)
		snprintf(body, sizeof body, "-NAK {\"delay\":%" PRId64 "}",
		    delay_ns);
	else
		snprintf(body, sizeof body, "-NAK");
	send_ack(d, body);
}

/* The dead letter is stored, or could not be: end the original. */
static void
on_dead_lettered(void *arg, const char *error)
{
	struct delivery *d = arg;
	struct subscription *s = d->sub;
	struct log_ctx ctx = delivery_log_ctx(d);

	d->pending_request = 0;
	if (error == NULL) {
		/* Only now may the original go. */
		send_ack(d, "+TERM");
		metric_inc(s->dead_letters[d->verdict.reason]);
		log_emit(LOG_LEVEL_INFO, &ctx, "delivery.dead_lettered",
		    "dead-lettered (%s): %s",
		    filter_reason_name(d->verdict.reason),
		    d->verdict.text != NULL ? d->verdict.text : "no reason");
		release(d,
		    d->verdict.reason == FILTER_REASON_REJECTED
			? OUTCOME_REJECTED
			: OUTCOME_DEAD_LETTERED);
		return;
	}
	/* Never lost: it comes back after a while and is tried again. */
	metric_inc(s->dead_letter_failures);
	log_emit(LOG_LEVEL_WARN, &ctx, "delivery.dead_letter_failed",
	    "cannot dead-letter (%s), kept and retried in %" PRId64 " ms",
	    error, s->cfg->retry_delay / NS_PER_MS);
	send_nak(d, s->cfg->retry_delay);
	release(d, OUTCOME_DEAD_LETTER_FAILED);
}

/* Publishes the dead letter; the original waits for its PubAck. */
static void
dead_letter(struct delivery *d, struct filter_verdict v)
{
	struct subscription *s = d->sub;
	struct core *c = s->core;
	char subject[256];

	d->verdict = v;
	if (deadletter_subject(
		s->dlq, d, s->cfg->name, subject, sizeof subject) == -1) {
		on_dead_lettered(d,
		    "the dead-letter subject template gives no "
		    "valid subject for it");
		return;
	}
	d->state = DELIVERY_DEAD_LETTERING;
	d->pending_request =
	    dlq_publish(c->bus, s->dlq, d, subject, v, c->cfg->instance_id,
		c->cfg->nats.publish_timeout, on_dead_lettered, d);
	if (d->pending_request == 0)
		on_dead_lettered(d, "NATS is not reachable");
}

/* Carries a final verdict out and lets the delivery go. */
static void
settle(struct delivery *d, struct filter_verdict v, enum outcome o)
{
	struct subscription *s = d->sub;
	struct log_ctx ctx = delivery_log_ctx(d);
	uint64_t attempt = d->meta.num_delivered;
	int64_t delay;

	d->state = DELIVERY_SETTLED;
	switch (v.action) {
	case FILTER_ACK:
		send_ack(d, "+ACK");
		break;
	case FILTER_RETRY:
		/* A failure is never NAKed without a delay: plain NAKs burn
		 * through the attempts in milliseconds. */
		delay = v.delay_ns > 0 ? v.delay_ns : s->cfg->retry_delay;
		if (delay > s->cfg->max_retry_delay)
			delay = s->cfg->max_retry_delay;
		send_nak(d, delay);
		metric_inc(s->retries[attempt < RETRY_ATTEMPT_LABELS
			? attempt
			: RETRY_ATTEMPT_LABELS]);
		log_emit(LOG_LEVEL_DEBUG, &ctx, "delivery.retry",
		    "attempt %" PRIu64 " failed (%s), retry in %" PRId64 " ms",
		    attempt, v.text != NULL ? v.text : "no reason",
		    delay / NS_PER_MS);
		break;
	case FILTER_DEAD_LETTER:
		if (s->dlq != NULL) {
			dead_letter(d, v);
			return;
		}
		/* No dead-letter stage configured: keep the message, as late
		 * as the configuration allows, rather than lose it. */
		send_nak(d, s->cfg->max_retry_delay);
		log_emit(LOG_LEVEL_WARN, &ctx, "delivery.dead_letter_unset",
		    "%s (%s): no dead-letter filter configured, kept and "
		    "retried in %" PRId64 " s",
		    filter_reason_name(v.reason),
		    v.text != NULL ? v.text : "no reason",
		    s->cfg->max_retry_delay / NS_PER_S);
		break;
	case FILTER_DELIVER:
	case FILTER_HOLD:
		fatalx("settle: verdict %d is not final", (int)v.action);
	}
	release(d, o);
}

static enum outcome
outcome_of(struct filter_verdict v, enum outcome if_ack)
{
	switch (v.action) {
	case FILTER_ACK:
		return if_ack;
	case FILTER_RETRY:
		return OUTCOME_RETRIED;
	case FILTER_DEAD_LETTER:
		return v.reason == FILTER_REASON_REJECTED
		    ? OUTCOME_REJECTED
		    : OUTCOME_DEAD_LETTERED;
	default:
		return OUTCOME_NAKED;
	}
}

/* Inbound verdict: queue for an app, or settle at once. */
static void
inbound(struct delivery *d, struct filter_verdict v)
{
	struct subscription *s = d->sub;

	if (d->parked) {
		d->parked = false;
		s->parked--;
	}
	if (v.action == FILTER_HOLD) {
		d->parked = true;
		s->parked++;
		return;
	}
	if (v.action != FILTER_DELIVER) {
		settle(d, v, outcome_of(v, OUTCOME_DUPLICATE));
		return;
	}
	if (s->core->draining) {
		/* Prefetched and not delivered: straight back, no delay. */
		give_back(s->core, d, 0);
		return;
	}
	d->state = DELIVERY_QUEUED;
	TAILQ_INSERT_TAIL(&s->queue, d, entry);
}

static void
on_inbound_done(void *arg, struct delivery *d, struct filter_verdict v)
{
	inbound(d, v);
}

static void
outcome(struct delivery *d, struct filter_verdict v, enum outcome o)
{
	v = chain_result(d->sub->chain, d, v, now_ns());
	if (v.action != FILTER_HOLD)
		settle(d, v, outcome_of(v, o));
}

static void
on_outcome_done(void *arg, struct delivery *d, struct filter_verdict v)
{
	settle(d, v, outcome_of(v, OUTCOME_ACKED));
}

static void
on_pull_message(void *arg, natsMsg *msg, size_t size)
{
	struct subscription *s = arg;
	struct delivery *d;

	if ((d = delivery_new(msg, s, size)) == NULL) {
		log_warnx("pull.bad_message",
		    "subscription %s: a message without a JetStream ack "
		    "subject, dropped",
		    s->cfg->name);
		return;
	}
	d->id = ++s->core->next_delivery;
	if (delivery_trace(d, s->core->trace) == 1) {
		struct log_ctx ctx = delivery_log_ctx(d);

		log_emit(LOG_LEVEL_DEBUG, &ctx, "delivery.bad_traceparent",
		    "traceparent is not valid W3C trace context, not passed "
		    "on");
	}
	d->keepalive_at = now_ns() + consumer_ack_wait(s->consumer) / 2;
	TAILQ_INSERT_TAIL(&s->all, d, all);
	s->held++;
	s->held_bytes += d->size;
	metric_set(s->in_flight, (double)s->held);
	if ((double)s->held > metric_value(s->in_flight_peak))
		metric_set(s->in_flight_peak, (double)s->held);
	d->chain_pos = 0;
	if (s->typed) {
		/* Decoded once here; filters read the same view. */
		const struct view *v;

		d->view_spec = &s->view_spec;
		v = view_get(d, d->view_spec);
		if (view_error(v) != NULL) {
			struct filter_verdict bad = {
				.action = FILTER_DEAD_LETTER,
				.reason = FILTER_REASON_UNDECODABLE,
				.text = delivery_set_text(d, view_error(v)),
			};

			settle(d, bad, OUTCOME_DEAD_LETTERED);
			return;
		}
	}
	inbound(d, chain_deliver(s->chain, d, now_ns()));
}

static void
on_pull_lost(void *arg, const char *why)
{
	struct subscription *s = arg;

	consumer_lost(s->consumer, why);
}

/* Tops up |s|'s credits to its window: the capacity of the apps serving
 * it, plus what they finished lately, plus what waits in a filter (on
 * its key, say) and so could not reach them. */
static void
refill(struct core *c, struct subscription *s)
{
	struct app_state *a;
	uint64_t capacity = 0;
	int64_t window;

	TAILQ_FOREACH(a, &c->app_list, link)
	{
		if (app_serves(a->app, s->cfg->name))
			capacity += app_capacity(a->app);
	}
	window = window_size(
	    &s->window, ev_now(c->loop), s->finished, capacity + s->parked);
	metric_set(s->in_flight_window, (double)window);
	pull_refill(s->pull, s->held, s->held_bytes, window);
}

static void
on_consumer_bound(void *arg)
{
	struct subscription *s = arg;

	if (s->core->draining || pull_start(s->pull) == -1)
		return;
	refill(s->core, s);
}

/* The version is the subject's last token when it looks like "v2". */
static const char *
schema_version(const char *subject)
{
	const char *last = strrchr(subject, '.');

	last = last != NULL ? last + 1 : subject;
	if (last[0] == 'v' && last[1] >= '0' && last[1] <= '9' &&
	    strspn(last + 1, "0123456789") == strlen(last + 1))
		return last;
	return "";
}

/* Sends |d| to |a|; returns 0, or -1 when it cannot fit the app's frame
 * limit (nothing was sent). */
static int
send_delivery(struct app_state *a, struct delivery *d)
{
	DeliveryFrame f = NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;
	const struct config_subscription *c = d->sub->cfg;
	HeaderFrame *hv = NULL, **hp = NULL;
	const char **keys = NULL;
	int nkeys = 0, r;
	size_t nh = 0, len;
	const char *v;

	if (natsMsgHeader_Keys(d->msg, &keys, &nkeys) == NATS_OK && nkeys > 0) {
		size_t cap = 0;

		for (int i = 0; i < nkeys; i++) {
			const char **vals = NULL;
			int nvals = 0;

			natsMsgHeader_Values(d->msg, keys[i], &vals, &nvals);
			if (nh + (size_t)nvals > cap) {
				cap = (nh + (size_t)nvals) * 2;
				hv = xreallocarray(hv, cap, sizeof *hv);
			}
			for (int j = 0; j < nvals; j++) {
				nats_sidecar__channel__v1__header__init(
				    &hv[nh]);
				hv[nh].name = (char *)keys[i];
				hv[nh].value = (char *)vals[j];
				nh++;
			}
			free(vals);
		}
		hp = xcalloc(nh + 1, sizeof *hp);
		for (size_t i = 0; i < nh; i++)
			hp[i] = &hv[i];
	}
	f.id = d->id;
	f.subscription = c->name;
	f.subject = (char *)delivery_subject(d);
	f.n_headers = nh;
	f.headers = hp;
	f.payload.data = (uint8_t *)delivery_payload(d, &len);
	f.payload.len = len;
	v = delivery_header(d, "Content-Type");
	f.content_type = (char *)(v != NULL ? v : c->content_type);
	f.schema_version = (char *)schema_version(f.subject);
	if (d->app_payload != NULL) {
		/* Translated: the payload in the version the app declared. */
		f.payload.data = d->app_payload;
		f.payload.len = d->app_payload_len;
		f.content_type = (char *)d->app_content_type;
		f.schema_version = (char *)d->app_version;
	}
	f.attempt = (uint32_t)d->meta.num_delivered;
	f.stream_sequence = d->meta.stream_seq;
	f.stream = d->meta.stream;
	f.published_at_ns = d->meta.timestamp_ns;
	f.processing_timeout_ms = (uint32_t)(c->processing_timeout / NS_PER_MS);
	v = delivery_msg_id(d);
	f.message_id = (char *)(v != NULL ? v : "");
	f.traceparent = d->traceparent;
	v = delivery_tracestate(d);
	f.tracestate = (char *)(v != NULL ? v : "");
	r = appchan_send_delivery(a->app, &f);
	free(hp);
	free(hv);
	free(keys);
	return r;
}

/* Picks the next app, round robin, with free capacity serving |s|. */
static struct app_state *
free_app(struct core *c, struct subscription *s)
{
	struct app_state *a;

	TAILQ_FOREACH(a, &c->app_list, link)
	{
		if (a->busy < app_capacity(a->app) &&
		    app_serves(a->app, s->cfg->name)) {
			TAILQ_REMOVE(&c->app_list, a, link);
			TAILQ_INSERT_TAIL(&c->app_list, a, link);
			return a;
		}
	}
	return NULL;
}

static void
dispatch(struct core *c, struct subscription *s, int64_t now)
{
	struct delivery *d;
	struct app_state *a;

	while ((d = TAILQ_FIRST(&s->queue)) != NULL &&
	    (a = free_app(c, s)) != NULL) {
		TAILQ_REMOVE(&s->queue, d, entry);
		if (send_delivery(a, d) == -1) {
			struct filter_verdict v = { .action =
							FILTER_DEAD_LETTER,
				.reason = FILTER_REASON_TOO_LARGE,
				.text = "larger than the app's frame limit" };

			d->state = DELIVERY_OUTCOME;
			outcome(d, v, OUTCOME_DEAD_LETTERED);
			continue;
		}
		d->state = DELIVERY_AT_APP;
		d->app = a;
		d->sent_at = now;
		d->deadline = now + s->cfg->processing_timeout;
		a->busy++;
		TAILQ_INSERT_TAIL(&a->sent, d, entry);
		idmap_put(c->at_app, d->id, d);
	}
}

/* Takes |d| back from its app (answered, timed out or app gone). */
static void
take_back(struct core *c, struct delivery *d)
{
	struct app_state *a = d->app;

	TAILQ_REMOVE(&a->sent, d, entry);
	a->busy--;
	d->app = NULL;
	idmap_del(c->at_app, d->id);
}

static void
remember_late(struct core *c, uint64_t id)
{
	struct late_ring *r = &c->late_ring;
	int64_t now = now_ns();

	/* Forget the expired ones first, from the oldest. */
	while (r->n > 0 && r->v[r->head].until <= now) {
		idmap_del(c->late, r->v[r->head].id);
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap == 0 ? 64 : r->cap * 2;
		struct late_entry *v = xcalloc(cap, sizeof *v);

		for (size_t i = 0; i < r->n; i++)
			v[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = v;
		r->cap = cap;
		r->head = 0;
	}
	r->v[(r->head + r->n) % r->cap] =
	    (struct late_entry){ id, now + LATE_RESULT_WINDOW_NS };
	r->n++;
	idmap_put(c->late, id, c);
}

/*
 * Returns |d| to JetStream unprocessed, wherever it is, with a NAK after
 * |delay_ns|. Releasing it may release others (a filter ending a hold), so
 * callers walking a list restart from its head rather than keep a next
 * pointer.
 */
static void
give_back(struct core *c, struct delivery *d, int64_t delay_ns)
{
	if (d->state == DELIVERY_AT_APP) {
		take_back(c, d);
		remember_late(c, d->id);
	} else if (d->state == DELIVERY_QUEUED)
		TAILQ_REMOVE(&d->sub->queue, d, entry);
	send_nak(d, delay_ns);
	release(d, OUTCOME_NAKED);
}

/* Stored by JetStream to acked by the app, by the wall clock. */
static void
observe_end_to_end(const struct delivery *d)
{
	struct timespec ts;
	int64_t wall;

	clock_gettime(CLOCK_REALTIME, &ts);
	wall = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
	/* Clocks of server and pod may disagree a little. */
	metric_observe(d->sub->end_to_end,
	    wall > d->meta.timestamp_ns
		? (double)(wall - d->meta.timestamp_ns) / 1e9
		: 0);
}

static void
on_result(void *arg, struct app *app, const ResultFrame *r)
{
	struct core *c = arg;
	struct delivery *d = idmap_get(c->at_app, r->id);
	struct filter_verdict v = { .action = FILTER_ACK };
	int64_t now = now_ns(), cap;

	if (d == NULL || ((struct app_state *)d->app)->app != app) {
		if (idmap_get(c->late, r->id) != NULL) {
			metric_inc(c->late_results);
			return;
		}
		appchan_send_error(app,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNKNOWN_ID,
		    "no delivery with this id is at this connection", r->id,
		    false);
		return;
	}
	switch (r->outcome) {
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS:
		cap = d->sent_at + d->sub->cfg->processing_timeout_max;
		d->deadline = now + d->sub->cfg->processing_timeout;
		if (d->deadline > cap)
			d->deadline = cap;
		return;
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY:
		v.action = FILTER_RETRY;
		v.delay_ns = (int64_t)r->retry_delay_ms * NS_PER_MS;
		v.text = delivery_set_text(d, r->reason);
		break;
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT:
		v.action = FILTER_DEAD_LETTER;
		v.reason = FILTER_REASON_REJECTED;
		v.text = delivery_set_text(d, r->reason);
		break;
	default:
		break;
	}
	metric_observe(d->sub->processing, (double)(now - d->sent_at) / 1e9);
	if (v.action == FILTER_ACK)
		observe_end_to_end(d);
	take_back(c, d);
	d->state = DELIVERY_OUTCOME;
	outcome(d, v, OUTCOME_ACKED);
}

/* The app gauges: how many are connected and what they take at once. */
static void
count_apps(struct core *c)
{
	struct app_state *a;
	double capacity = 0;

	TAILQ_FOREACH(a, &c->app_list, link)
	capacity += app_capacity(a->app);
	metric_set(c->app_connections, (double)idmap_count(c->apps));
	metric_set(c->app_capacity, capacity);
}

static void
on_app_ready(void *arg, struct app *app)
{
	struct core *c = arg;
	struct app_state *a = xcalloc(1, sizeof *a);

	a->app = app;
	a->id = app_id(app);
	TAILQ_INIT(&a->sent);
	app_set_data(app, a);
	idmap_put(c->apps, a->id, a);
	TAILQ_INSERT_TAIL(&c->app_list, a, link);
	count_apps(c);
	log_info("app.connected", "app %" PRIu64 " (%s) connected, capacity %u",
	    a->id, app_name(app), app_capacity(app));
}

/* Its deliveries go back to JetStream at once, for another app. */
static void
on_app_gone(void *arg, struct app *app)
{
	struct core *c = arg;
	struct app_state *a = app_data(app);
	struct delivery *d;
	unsigned n = 0;

	if (a == NULL)
		return;
	while ((d = TAILQ_FIRST(&a->sent)) != NULL) {
		/* Not a failure of the message; but one that was already
		 * redelivered may be what kills apps: no tight loop then. */
		give_back(c, d,
		    d->meta.num_delivered > 1 ? d->sub->cfg->retry_delay : 0);
		n++;
	}
	idmap_del(c->apps, a->id);
	TAILQ_REMOVE(&c->app_list, a, link);
	count_apps(c);
	log_info("app.disconnected",
	    "app %" PRIu64 " (%s) gone, %u deliveries returned", a->id,
	    app_name(app), n);
	free(a);
}

static void
publish_answer(struct core *c, uint64_t app_id, uint64_t publish_id,
    const PublishAckFrame *tmpl)
{
	PublishAckFrame pa = *tmpl;
	struct app_state *a = idmap_get(c->apps, app_id);

	pa.id = publish_id;
	if (pa.status == NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK)
		metric_inc(c->publishes_ok);
	else
		metric_inc(c->publishes_failed);
	if (a != NULL)
		appchan_send_publish_ack(a->app, &pa);
}

/* Folds one copy's PubAck into |w|; answers the app after the last. */
static void
publish_done(struct publish_wait *w, const PublishAckFrame *pa)
{
	const int ok = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK;

	if (!w->answered || (w->answer.status == ok && pa->status != ok)) {
		free(w->stream);
		free(w->error);
		w->answer = *pa;
		w->answer.stream = w->stream = xstrdup(pa->stream);
		w->answer.error = w->error = xstrdup(pa->error);
		w->answered = true;
	}
	if (--w->pending > 0)
		return;
	publish_answer(w->core, w->app_id, w->publish_id, &w->answer);
	free(w->stream);
	free(w->error);
	free(w);
}

static void
on_pub_ack(void *arg, natsMsg *reply)
{
	struct publish_wait *w = arg;
	PublishAckFrame pa = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	struct jsapi_pub_ack ack;
	struct jsapi_error e;
	int r;

	if (reply == NULL) {
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__TIMEOUT;
		pa.error =
		    "no PubAck in time; the message may have been stored";
	} else if (bus_msg_status(reply) == 503) {
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__NO_STREAM;
		pa.error = "no stream captures this subject";
	} else if ((r = jsapi_pub_ack(natsMsg_GetData(reply),
			(size_t)natsMsg_GetDataLength(reply), &ack, &e)) == 0) {
		pa.status = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__OK;
		pa.stream = ack.stream;
		pa.sequence = ack.seq;
		pa.duplicate = ack.duplicate;
	} else {
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__REJECTED;
		pa.error = r == 1 ? e.description : "unreadable PubAck";
	}
	w->core->publishes_pending--;
	publish_done(w, &pa);
	bus_msg_free(reply);
}

/* The filters of the subscriptions |app| serves see |pub|: the first
 * that refuses it or makes copies decides. */
static struct filter_verdict
publish_filters(struct core *c, struct app *app, struct publication *pub)
{
	struct filter_verdict v = { .action = FILTER_DELIVER };

	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];

		if (!app_serves(app, s->cfg->name))
			continue;
		v = chain_publish(s->chain, pub, now_ns());
		if (v.action != FILTER_DELIVER || pub->n_copies > 0)
			break;
	}
	return v;
}

/* Sends |p|, or the copies the filters made of it, with the app's
 * headers (|h| has room for them and four more); |w| collects the
 * PubAcks. */
static void
publish_copies(struct core *c, struct app *app, const PublishFrame *p,
    struct publish_wait *w, struct bus_header *h)
{
	const struct config_nats *nc = &c->cfg->nats;
	PublishAckFrame pa = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	struct publication pub = { .subject = p->subject,
		.message_id = p->message_id,
		.payload = p->payload.data,
		.len = p->payload.len };
	struct publication_copy own = { .subject = p->subject,
		.message_id = p->message_id,
		.payload = p->payload.data,
		.len = p->payload.len };
	struct publication_copy *copies = &own;
	struct filter_verdict v;
	size_t n = 1, nh = 0;
	uint64_t rc;

	for (size_t i = 0; i < p->n_headers; i++) {
		h[nh++] = (struct bus_header){ p->headers[i]->name,
			p->headers[i]->value };
		if (strcasecmp(p->headers[i]->name, "Content-Type") == 0)
			pub.content_type = p->headers[i]->value;
	}
	v = publish_filters(c, app, &pub);
	if (v.action != FILTER_DELIVER) {
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__REJECTED;
		pa.error = (char *)(v.text != NULL ? v.text : "refused");
		w->pending = 1;
		publish_done(w, &pa);
		goto done;
	}
	if (pub.n_copies > 0) {
		copies = pub.copies;
		n = pub.n_copies;
	}
	if (p->traceparent[0] != '\0')
		h[nh++] = (struct bus_header){ "traceparent", p->traceparent };
	if (p->tracestate[0] != '\0')
		h[nh++] = (struct bus_header){ "tracestate", p->tracestate };
	w->pending = n;
	for (size_t i = 0; i < n; i++) {
		const struct publication_copy *cp = &copies[i];
		size_t k = nh, at = 0;
		struct bus_header app_header = { NULL, NULL };

		if (cp->header != NULL) {
			/* The copy's own value, in place of the app's. */
			while (at < nh && strcasecmp(h[at].name, cp->header))
				at++;
			if (at == nh)
				k++;
			app_header = h[at];
			h[at] =
			    (struct bus_header){ cp->header, cp->header_value };
		}
		if (cp->message_id[0] != '\0')
			h[k++] = (struct bus_header){ "Nats-Msg-Id",
				cp->message_id };
		rc = bus_request(c->bus, cp->subject, h, k, cp->payload,
		    cp->len, nc->publish_timeout, on_pub_ack, w);
		if (cp->header != NULL)
			h[at] = app_header;
		if (rc == 0) {
			pa.status =
			    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__INVALID;
			pa.error = "the message could not be sent (invalid "
				   "subject or headers, or the connection "
				   "buffer is full)";
			publish_done(w, &pa);
		} else
			c->publishes_pending++;
	}
done:
	for (size_t i = 0; i < pub.n_copies; i++) {
		free(pub.copies[i].subject);
		free(pub.copies[i].message_id);
		free(pub.copies[i].payload);
	}
	free(pub.copies);
	free(pub.text);
}

static void
on_publish(void *arg, struct app *app, const PublishFrame *p)
{
	struct core *c = arg;
	const struct config_nats *nc = &c->cfg->nats;
	PublishAckFrame pa = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	struct bus_header *h = xcalloc(p->n_headers + 4, sizeof *h);
	struct publish_wait *w;

	if (p->subject[0] == '$' || strncmp(p->subject, "_SC.", 4) == 0) {
		/* $JS.API, $JS.ACK, $KV, $SYS and the sidecar's own inboxes
		 * would act with the sidecar's credentials. */
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__INVALID;
		pa.error = "reserved subject: apps may not publish to $... or "
			   "_SC.... subjects";
	} else if (bus_state(c->bus) != BUS_CONNECTED) {
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__NOT_CONNECTED;
		pa.error = "NATS is not reachable now; nothing was sent";
	} else if ((int64_t)c->publishes_pending >= nc->publish_max_pending) {
		pa.status =
		    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__REJECTED;
		pa.error = "too many publishes wait for a PubAck; try again";
	}
	if (pa.status != 0) {
		publish_answer(c, app_id(app), p->id, &pa);
		free(h);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->core = c;
	w->app_id = app_id(app);
	w->publish_id = p->id;
	publish_copies(c, app, p, w, h);
	free(h);
}

static void
on_bus_state(void *arg, enum bus_state state)
{
	struct core *c = arg;

	for (int i = 0; i <= BUS_CLOSED; i++)
		metric_set(c->nats_state[i], i == (int)state);
	if (state != BUS_CONNECTED)
		return;
	metric_inc(c->reconnects);
	for (size_t i = 0; i < c->nsubs; i++) {
		if (c->subs[i].dlq != NULL)
			dlq_create_stream(c->bus, c->subs[i].dlq);
	}
	/* Pull requests of the old connection are gone with it. */
	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];

		if (consumer_is_bound(s->consumer))
			pull_reset(s->pull);
		else
			consumer_bind(s->consumer);
	}
	advisory_connected(c->advisory);
}

static void
update_store_metrics(struct core *c)
{
	struct store_stats st;

	if (c->store == NULL || store_stats(c->store, &st) == -1)
		return;
	metric_set(c->store_entries, (double)st.entries);
	metric_set(c->store_bytes, (double)(st.pages_used * st.page_size));
	metric_set(c->store_usage, (double)st.map_used / (double)st.map_size);
	metric_add(
	    c->store_expired, (double)(st.expired - c->store_expired_seen));
	c->store_expired_seen = st.expired;
}

/* Keep-alives and processing timeouts. */
static void
on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct core *c = w->data;
	int64_t now = now_ns();
	uint64_t *expired = NULL;
	size_t n = 0, cap = 0;

	/* First look, then act: a timeout may release other deliveries. */
	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];
		struct delivery *d;

		TAILQ_FOREACH(d, &s->all, all)
		{
			if (d->state == DELIVERY_AT_APP && now >= d->deadline) {
				if (n == cap) {
					cap = cap == 0 ? 16 : cap * 2;
					expired = xreallocarray(
					    expired, cap, sizeof *expired);
				}
				expired[n++] = d->id;
			} else if (now >= d->keepalive_at) {
				send_ack(d, "+WPI");
				d->keepalive_at =
				    now + consumer_ack_wait(s->consumer) / 2;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct filter_verdict v = { .action = FILTER_RETRY,
			.text = "processing timeout" };
		struct delivery *d = idmap_get(c->at_app, expired[i]);

		if (d == NULL)
			continue;
		take_back(c, d);
		remember_late(c, d->id);
		d->state = DELIVERY_OUTCOME;
		outcome(d, v, OUTCOME_TIMED_OUT);
	}
	free(expired);
	update_store_metrics(c);
}

/* Nothing held, nothing more on its way, every app publish answered. */
static bool
drained(const struct core *c)
{
	for (size_t i = 0; i < c->nsubs; i++) {
		if (c->subs[i].held > 0 || !pull_drained(c->subs[i].pull))
			return false;
	}
	return c->publishes_pending == 0 && advisory_drained(c->advisory);
}

/* Once per loop turn: batched filter work, dispatch, credits, output. */
static void
on_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct core *c = w->data;
	int64_t now = now_ns();

	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];
		struct pull_stats st;

		chain_turn(s->chain, now);
		dispatch(c, s, now);
		/* What cannot be committed is not pulled (it would wait, or
		 * reach the app with dedup skipped). */
		if (!s->dedup || store_problem(c->store) == NULL)
			refill(c, s);
		pull_stats(s->pull, &st);
		if (st.requests > s->pulls_seen) {
			metric_add(
			    s->pulls, (double)(st.requests - s->pulls_seen));
			s->pulls_seen = st.requests;
		}
	}
	appchan_flush(c->appchan);
	if (c->draining && drained(c))
		ev_break(loop, EVBREAK_ALL);
}

/* Grace over: what apps still hold goes back unacked. */
static void
on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct core *c = w->data;
	struct delivery *d;

	log_warnx("drain.grace_over",
	    "shutdown grace over, returning what apps still hold");
	for (size_t i = 0; i < c->nsubs; i++) {
		while ((d = TAILQ_FIRST(&c->subs[i].all)) != NULL)
			give_back(c, d, 0);
	}
	ev_break(loop, EVBREAK_ALL);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct core *c = w->data;

	if (c->draining) {
		/* A second signal: out now; nothing unanswered is acked. */
		log_warnx("drain.abort", "second signal, exiting at once");
		_exit(128 + w->signum);
	}
	c->draining = true;
	log_info("drain.start", "signal %d: draining within %" PRId64 " ms",
	    w->signum, c->cfg->shutdown_grace / NS_PER_MS);
	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];
		struct delivery *d;

		pull_stop(s->pull);
		while ((d = TAILQ_FIRST(&s->queue)) != NULL)
			give_back(c, d, 0);
	}
	advisory_drain(c->advisory);
	appchan_drain(
	    c->appchan, (uint32_t)(c->cfg->shutdown_grace / NS_PER_MS));
	ev_timer_set(&c->grace, (double)c->cfg->shutdown_grace / 1e9, 0);
	ev_timer_start(loop, &c->grace);
}

/* End-to-end latency, pull batches and the polled consumer counts. */
static void
register_more_metrics(struct core *c, struct subscription *s)
{
	static const char *const sub_label[] = { "subscription", NULL };
	static const double latency[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
		0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600 };
	static const double batches[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
		1024, 2048, 4096 };
	const char *name[] = { s->cfg->name, NULL };

	s->in_flight_limit = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_in_flight_limit",
		"The most deliveries held at once (max_in_flight).", sub_label),
	    name);
	metric_set(s->in_flight_limit, (double)s->cfg->max_in_flight);
	s->in_flight_window = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_in_flight_window",
		"The most deliveries the sidecar may hold now: the apps' "
		"capacity, plus what waits in a filter, plus a tenth of a "
		"second of their work, up to max_in_flight.",
		sub_label),
	    name);
	s->end_to_end = metric_series(
	    metrics_histogram(c->metrics, "nats_sidecar_end_to_end_seconds",
		"Time from the message's JetStream timestamp to the app's ack.",
		sub_label, latency, sizeof latency / sizeof latency[0]),
	    name);
	s->batch_sizes = metric_series(
	    metrics_histogram(c->metrics, "nats_sidecar_pull_batch_size",
		"Messages asked for per pull request.", sub_label, batches,
		sizeof batches / sizeof batches[0]),
	    name);
	if (c->cfg->metrics.consumer_poll_interval == 0)
		return;
	s->pending = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_consumer_pending",
		"Messages of the consumer not yet delivered (CONSUMER.INFO "
		"num_pending, polled).",
		sub_label),
	    name);
	s->ack_pending = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_consumer_ack_pending",
		"Deliveries of the consumer not yet acked (CONSUMER.INFO "
		"num_ack_pending, polled).",
		sub_label),
	    name);
}

static void
on_pull_requested(void *arg, int64_t batch)
{
	struct subscription *s = arg;

	metric_observe(s->batch_sizes, (double)batch);
}

static void
on_consumer_pending(void *arg, uint64_t pending, uint64_t ack_pending)
{
	struct subscription *s = arg;

	if (s->pending == NULL)
		return;
	metric_set(s->pending, (double)pending);
	metric_set(s->ack_pending, (double)ack_pending);
}

/* Build info and the connection state, one series per state. */
static void
register_core_metrics(struct core *c)
{
	static const char *const version_label[] = { "version", NULL };
	static const char *const state_label[] = { "state", NULL };
	const char *version[] = { PACKAGE_VERSION, NULL };
	struct metric *m;

	metric_set(metric_series(
		       metrics_gauge(c->metrics, "nats_sidecar_build_info",
			   "Always 1; the version in a label.", version_label),
		       version),
	    1);
	m = metrics_gauge(c->metrics, "nats_sidecar_nats_connection_state",
	    "1 for the state the NATS connection is in, 0 for the others.",
	    state_label);
	for (int i = 0; i <= BUS_CLOSED; i++) {
		const char *v[] = { bus_state_name((enum bus_state)i), NULL };

		c->nats_state[i] = metric_series(m, v);
	}
	metric_set(c->nats_state[BUS_CONNECTING], 1);
	c->app_capacity = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_app_capacity",
		"Deliveries the connected apps take at once (the sum of "
		"their capacities).",
		NULL),
	    NULL);
}

static void
register_metrics(struct core *c, struct subscription *s)
{
	static const char *const sub_label[] = { "subscription", NULL };
	static const char *const outcome_labels[] = { "subscription", "outcome",
		NULL };
	static const char *const retry_labels[] = { "subscription", "attempt",
		NULL };
	static const char *const reason_labels[] = { "subscription", "reason",
		NULL };
	static const double seconds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1,
		5, 10, 30, 60 };
	const char *name[] = { s->cfg->name, NULL };
	struct metric *m;

	m = metrics_counter(c->metrics, "nats_sidecar_deliveries_total",
	    "Deliveries by how they ended.", outcome_labels);
	for (int o = 0; o < OUTCOME_COUNT; o++) {
		const char *v[] = { s->cfg->name, outcome_names[o], NULL };

		s->outcomes[o] = metric_series(m, v);
	}
	s->in_flight =
	    metric_series(metrics_gauge(c->metrics, "nats_sidecar_in_flight",
			      "Deliveries the sidecar holds now.", sub_label),
		name);
	s->in_flight_peak = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_in_flight_peak",
		"The most deliveries held at once since start.", sub_label),
	    name);
	s->pulls = metric_series(
	    metrics_counter(c->metrics, "nats_sidecar_pull_requests_total",
		"Pull requests sent.", sub_label),
	    name);
	m = metrics_counter(c->metrics, "nats_sidecar_retries_total",
	    "Failed attempts sent back for a retry, by attempt (10 counts "
	    "the tenth and later).",
	    retry_labels);
	for (int i = 1; i <= RETRY_ATTEMPT_LABELS; i++) {
		char n[8];
		const char *v[] = { s->cfg->name, n, NULL };

		snprintf(n, sizeof n, "%d", i);
		s->retries[i] = metric_series(m, v);
	}
	s->retries[0] = s->retries[1];
	m = metrics_counter(c->metrics, "nats_sidecar_dead_letters_total",
	    "Messages stored in the dead-letter stream, by reason.",
	    reason_labels);
	for (int r = 1; r <= FILTER_REASON_MAX_DELIVERIES; r++) {
		const char *v[] = { s->cfg->name,
			filter_reason_name((enum filter_reason)r), NULL };

		s->dead_letters[r] = metric_series(m, v);
	}
	s->dead_letter_failures = metric_series(
	    metrics_counter(c->metrics,
		"nats_sidecar_dead_letter_failures_total",
		"Dead-letter publishes that failed (the message was kept).",
		sub_label),
	    name);
	s->processing = metric_series(
	    metrics_histogram(c->metrics, "nats_sidecar_app_processing_seconds",
		"Time from delivery to the app's result.", sub_label, seconds,
		sizeof seconds / sizeof seconds[0]),
	    name);
	register_more_metrics(c, s);
}

/* The chain: the configured filters, behind the serial filter when the
 * subscription asks for per-key serial delivery. */
static void
build_filters(struct subscription *s)
{
	const struct config_filters *cf = &s->cfg->filters;

	s->filters.n = cf->n + (s->cfg->serial_key != NULL);
	s->filters.v = xcalloc(s->filters.n + 1, sizeof *s->filters.v);
	if (s->cfg->serial_key != NULL) {
		s->serial.key = s->cfg->serial_key;
		s->filters.v[0].ops = &serial_filter;
		s->filters.v[0].options = &s->serial;
	}
	for (size_t i = 0, k = s->filters.n - cf->n; i < cf->n; i++) {
		/* Translation first: every other filter reads the message in
		 * the version the app wants. */
		if (cf->v[i].ops == &translate_filter) {
			memmove(&s->filters.v[s->filters.n - cf->n + 1],
			    &s->filters.v[s->filters.n - cf->n],
			    (k - (s->filters.n - cf->n)) *
				sizeof *s->filters.v);
			s->filters.v[s->filters.n - cf->n] = cf->v[i];
			s->translate = true;
		} else
			s->filters.v[k] = cf->v[i];
		k++;
		if (cf->v[i].ops == &deadletter_filter)
			s->dlq = cf->v[i].options;
		s->dedup |= cf->v[i].ops == &dedup_filter;
	}
}

/* The one series of a counter without labels. */
static struct metric_series *
counter(struct core *c, const char *name, const char *help)
{
	return metric_series(
	    metrics_counter(c->metrics, name, help, NULL), NULL);
}

static void
http_metrics(void *arg, struct buf *out)
{
	struct core *c = arg;

	metrics_write(c->metrics, out);
}

/* /readyz: one line for each failing check that counts. */
static int
http_ready(void *arg, struct buf *why)
{
	struct core *c = arg;
	const struct config_http *h = &c->cfg->http;
	size_t before = buf_used(why);
	char line[512];
	int n;

	if (c->draining)
		buf_append(why, "draining\n", 9);
	if (h->ready_requires_nats && bus_state(c->bus) != BUS_CONNECTED) {
		n = snprintf(line, sizeof line, "nats: %s\n",
		    bus_state_name(bus_state(c->bus)));
		buf_append(why, line, (size_t)n);
	}
	for (size_t i = 0; h->ready_requires_nats && i < c->nsubs; i++) {
		const char *problem = consumer_problem(c->subs[i].consumer);

		if (problem == NULL)
			continue;
		n = snprintf(line, sizeof line, "subscription %s: %s\n",
		    c->subs[i].cfg->name, problem);
		buf_append(why, line,
		    (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	}
	if (h->ready_requires_app && appchan_ready_count(c->appchan) == 0)
		buf_append(why, "app: none connected\n", 20);
	if (h->ready_requires_store && c->store != NULL &&
	    store_problem(c->store) != NULL) {
		n = snprintf(line, sizeof line, "dedup store: %s\n",
		    store_problem(c->store));
		buf_append(why, line,
		    (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	}
	return buf_used(why) == before;
}

/* Wall-clock minus monotonic time, for filters' `now`. */
static int64_t
wall_offset(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec - now_ns();
}

static int
open_store(struct core *c)
{
	const struct config_dedup *d = &c->cfg->dedup;
	struct store_options o = { d->path, d->durability == 1, d->map_size,
		d->map_size_max, d->sweep_batch };
	char *err = NULL;

	if ((c->store = store_open(c->loop, &o, STORE_DAEMON, &err)) == NULL) {
		log_errorx("dedup.store_open", "%s", err);
		free(err);
		return -1;
	}
	c->store_entries = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_dedup_store_entries",
		"Keys in the dedup store.", NULL),
	    NULL);
	c->store_bytes = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_dedup_store_bytes",
		"Bytes of the dedup store's pages in use (not free pages).",
		NULL),
	    NULL);
	c->store_usage = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_dedup_map_usage_ratio",
		"Share of the dedup store's map up to its last used page.",
		NULL),
	    NULL);
	c->store_expired = counter(c, "nats_sidecar_dedup_expired_total",
	    "Keys removed from the dedup store after their ttl.");
	log_info("dedup.store_opened", "dedup store %s (durability %s)",
	    d->path, d->durability == 1 ? "fsync" : "os");
	update_store_metrics(c);
	return 0;
}

struct core *
core_new(struct ev_loop *loop, const struct config *cfg,
    const struct schema *schemas)
{
	struct core *c = xcalloc(1, sizeof *c);
	struct bus_events bev = { on_bus_state, c };
	struct appchan_events aev = { on_app_ready, on_result, on_publish,
		on_app_gone, c };
	struct chain_events cev = { on_inbound_done, on_outcome_done, c };
	struct filter_services fs;

	c->loop = loop;
	c->cfg = cfg;
	c->metrics = metrics_new();
	c->at_app = idmap_new();
	c->apps = idmap_new();
	c->late = idmap_new();
	TAILQ_INIT(&c->app_list);
	c->app_connections = metric_series(
	    metrics_gauge(c->metrics, "nats_sidecar_app_connections",
		"Apps connected now.", NULL),
	    NULL);
	c->publishes_ok = counter(c, "nats_sidecar_publishes_ok_total",
	    "Publishes from apps stored by JetStream.");
	c->publishes_failed = counter(c, "nats_sidecar_publishes_failed_total",
	    "Publishes from apps that failed.");
	c->reconnects = counter(c, "nats_sidecar_nats_connects_total",
	    "Connections and reconnections to NATS.");
	c->late_results = counter(c, "nats_sidecar_late_results_total",
	    "Results for deliveries already given up on.");
	register_core_metrics(c);
	if (cfg->trace.start &&
	    (c->trace = trace_gen_new(cfg->trace.sampled)) == NULL)
		goto fail;

	if ((c->bus = bus_new(loop, &cfg->nats, &bev)) == NULL)
		goto fail;
	if ((c->appchan = appchan_new(
		 loop, &cfg->app, cfg->instance_id, &aev)) == NULL)
		goto fail;
	/* After the app socket: /startupz must not pass before it exists. */
	if (strcmp(cfg->http.listen, "off") != 0) {
		struct httpd_handlers hh = {
			.metrics = http_metrics, .ready = http_ready, .arg = c
		};

		if ((c->httpd = httpd_new(loop, &cfg->http, &hh)) == NULL)
			goto fail;
	}
	if (cfg->dedup.path != NULL && open_store(c) == -1)
		goto fail;
	fs = (struct filter_services){ c->metrics, c->store, wall_offset(),
		schemas };
	c->nsubs = cfg->subscriptions.n;
	c->subs = xcalloc(c->nsubs, sizeof *c->subs);
	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];
		struct consumer_events coev = { on_consumer_bound, s,
			on_consumer_pending };
		struct pull_events pev = { on_pull_message, on_pull_lost, s,
			on_pull_requested };

		s->core = c;
		s->cfg = config_subscription(cfg, i);
		TAILQ_INIT(&s->queue);
		TAILQ_INIT(&s->all);
		window_init(&s->window, s->cfg->max_in_flight);
		register_metrics(c, s);
		if (s->cfg->message_type != NULL) {
			s->typed = true;
			s->view_spec.type_of = view_type_fixed;
			s->view_spec.arg = (void *)schema_lookup(
			    schemas, s->cfg->message_type);
			s->view_spec.default_content_type =
			    s->cfg->content_type;
			s->view_spec.limits = schema_limits_default;
		}
		build_filters(s);
		if (s->translate)
			s->typed = false; /* the translate filter decodes */
		s->chain = chain_new(&s->filters, s->cfg, &fs, &cev);
		if (s->chain == NULL)
			goto fail;
		s->consumer = consumer_new(loop, c->bus, s->cfg, &coev);
		s->pull = pull_new(loop, c->bus, s->cfg, &pev);
		consumer_poll_pending(
		    s->consumer, cfg->metrics.consumer_poll_interval);
	}
	c->advisory = advisory_new(loop, c->bus, cfg, c->metrics);

	ev_prepare_init(&c->turn, on_turn);
	c->turn.data = c;
	ev_prepare_start(loop, &c->turn);
	ev_timer_init(&c->tick, on_tick, TICK_S, TICK_S);
	c->tick.data = c;
	ev_timer_start(loop, &c->tick);
	ev_timer_init(&c->grace, on_grace, 0, 0);
	c->grace.data = c;
	ev_signal_init(&c->sigterm, on_signal, SIGTERM);
	c->sigterm.data = c;
	ev_signal_start(loop, &c->sigterm);
	ev_signal_init(&c->sigint, on_signal, SIGINT);
	c->sigint.data = c;
	ev_signal_start(loop, &c->sigint);
	return c;

fail:
	core_free(c);
	return NULL;
}

int
core_run(struct core *c)
{
	for (size_t i = 0; i < c->nsubs; i++)
		consumer_bind(c->subs[i].consumer);
	log_info("sidecar.started",
	    "nats-sidecar %s serving %zu "
	    "subscription(s) on %s",
	    PACKAGE_VERSION, c->nsubs, c->cfg->app.socket);
	ev_run(c->loop, 0);
	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];

		log_info("subscription.stats",
		    "subscription %s: acked %.0f, retried %.0f, timed out "
		    "%.0f, returned %.0f; peak in flight %.0f of %" PRId64,
		    s->cfg->name, metric_value(s->outcomes[OUTCOME_ACKED]),
		    metric_value(s->outcomes[OUTCOME_RETRIED]),
		    metric_value(s->outcomes[OUTCOME_TIMED_OUT]),
		    metric_value(s->outcomes[OUTCOME_NAKED]),
		    metric_value(s->in_flight_peak), s->cfg->max_in_flight);
	}
	log_info("drain.done", "drained, exiting (%.0f late results absorbed)",
	    metric_value(c->late_results));
	return 0;
}

static void
free_app_state(void *arg, uint64_t id, void *value)
{
	free(value);
}

void
core_free(struct core *c)
{
	if (c == NULL)
		return;
	ev_prepare_stop(c->loop, &c->turn);
	ev_timer_stop(c->loop, &c->tick);
	ev_timer_stop(c->loop, &c->grace);
	ev_signal_stop(c->loop, &c->sigterm);
	ev_signal_stop(c->loop, &c->sigint);
	for (size_t i = 0; i < c->nsubs; i++) {
		struct subscription *s = &c->subs[i];
		struct delivery *d;

		/* Whatever is left goes back unacked. */
		while ((d = TAILQ_FIRST(&s->all)) != NULL)
			give_back(c, d, 0);
		pull_free(s->pull);
		consumer_free(s->consumer);
		chain_free(s->chain);
		free(s->filters.v);
	}
	advisory_free(c->advisory);
	c->advisory = NULL; /* bus_free may still report a state */
	/* After the chains: it commits what they queued last. */
	store_close(c->store);
	/* PubAcks still to come must find no app to answer. */
	idmap_foreach(c->apps, free_app_state, NULL);
	idmap_free(c->apps);
	c->apps = idmap_new();
	httpd_free(c->httpd);
	appchan_free(c->appchan);
	/* Flushes every ack and NAK still buffered. */
	bus_free(c->bus);
	free(c->subs);
	idmap_free(c->apps);
	idmap_free(c->at_app);
	idmap_free(c->late);
	free(c->late_ring.v);
	metrics_free(c->metrics);
	trace_gen_free(c->trace);
	free(c);
}
