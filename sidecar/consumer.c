#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "bus.h"
#include "config.h"
#include "consumer.h"
#include "jsapi.h"
#include "log.h"
#include "xmalloc.h"

#define API_TIMEOUT_NS INT64_C(5000000000)
#define RETRY_MIN_S 0.5
#define RETRY_MAX_S 30.0

enum consumer_step { STEP_IDLE, STEP_INFO, STEP_CREATE, STEP_BOUND };

struct consumer {
	struct ev_loop *loop;
	struct bus *bus;
	const struct config_subscription *sub;
	struct consumer_events events;
	enum consumer_step step;
	uint64_t request;
	ev_timer retry;
	double retry_s;
	char *problem; /* why not bound; logged once per distinct text */
	int64_t ack_wait; /* the server's, once bound */
	bool created; /* we created it in this step */
	ev_timer poll; /* pending counts, when asked for */
	uint64_t poll_request;
};

static void consumer_info(struct consumer *);

/* Records why the consumer is not bound and tries again later. */
static void
consumer_retry(struct consumer *c, const char *event, const char *why)
{
	/* While NATS is unreachable the bus says so; no echo per retry. */
	bool quiet = bus_state(c->bus) != BUS_CONNECTED &&
	    strcmp(event, "consumer.unreachable") == 0;

	if (!quiet && (c->problem == NULL || strcmp(c->problem, why) != 0)) {
		log_errorx(event,
		    "subscription %s: consumer %s on stream %s: %s",
		    c->sub->name, c->sub->durable, c->sub->stream, why);
		free(c->problem);
		c->problem = xstrdup(why);
	}
	c->step = STEP_IDLE;
	ev_timer_set(&c->retry, c->retry_s, 0);
	ev_timer_start(c->loop, &c->retry);
	c->retry_s =
	    c->retry_s * 2 > RETRY_MAX_S ? RETRY_MAX_S : c->retry_s * 2;
}

static void
consumer_bound(struct consumer *c)
{
	if (c->problem != NULL || c->created)
		log_info("consumer.bound",
		    "subscription %s: consumer %s on stream %s %s",
		    c->sub->name, c->sub->durable, c->sub->stream,
		    c->created ? "created" : "ready");
	free(c->problem);
	c->problem = NULL;
	c->created = false;
	c->step = STEP_BOUND;
	c->retry_s = RETRY_MIN_S;
	c->events.bound(c->events.arg);
}

/* Reads an API reply; returns 1 for an error (in |e|), 0 for a body, -1
 * after arranging a retry. */
static int
read_reply(struct consumer *c, natsMsg *reply, struct jsapi_error *e)
{
	int r;

	c->request = 0;
	if (reply == NULL) {
		consumer_retry(c, "consumer.unreachable",
		    "no answer from the JetStream API");
		return -1;
	}
	if (bus_msg_status(reply) == 503) {
		consumer_retry(c, "consumer.unreachable",
		    "JetStream is not available (no responders)");
		return -1;
	}
	r = jsapi_error(
	    natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), e);
	if (r == -1)
		consumer_retry(c, "consumer.bad_reply",
		    "the JetStream API answered with something not JSON");
	return r;
}

static void
on_create_reply(void *arg, natsMsg *reply)
{
	struct consumer *c = arg;
	struct jsapi_error e;
	char *why;
	int r;

	if ((r = read_reply(c, reply, &e)) == 1) {
		why = xasprintf("cannot create or update it: %s (code %d)",
		    e.description, e.err_code);
		consumer_retry(c, "consumer.create_failed", why);
		free(why);
	} else if (r == 0) {
		c->ack_wait = jsapi_consumer_ack_wait(natsMsg_GetData(reply),
		    (size_t)natsMsg_GetDataLength(reply));
		c->created = true;
		consumer_bound(c);
	}
	bus_msg_free(reply);
}

static void
consumer_create(struct consumer *c)
{
	char subject[256], *body = jsapi_consumer_create(c->sub);

	snprintf(subject, sizeof subject,
	    "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s", c->sub->stream,
	    c->sub->durable);
	c->step = STEP_CREATE;
	c->request = bus_request(c->bus, subject, NULL, 0, body, strlen(body),
	    API_TIMEOUT_NS, on_create_reply, c);
	free(body);
	if (c->request == 0)
		consumer_retry(c, "consumer.unreachable",
		    "cannot send the create request (not connected)");
}

/* The consumer exists: what the policy says about any difference. */
static void
consumer_compare(struct consumer *c, natsMsg *reply)
{
	bool immutable;
	char *diff, *why;
	int r;

	c->ack_wait = jsapi_consumer_ack_wait(
	    natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
	r = jsapi_consumer_diff(c->sub, natsMsg_GetData(reply),
	    (size_t)natsMsg_GetDataLength(reply), &diff, &immutable);
	if (r == 0)
		consumer_bound(c);
	else if (r == -1)
		consumer_retry(c, "consumer.bad_reply", diff);
	else if (c->sub->consumer_policy == CONSUMER_POLICY_UPDATE &&
	    !immutable) {
		log_info("consumer.update",
		    "subscription %s: updating consumer %s: %s", c->sub->name,
		    c->sub->durable, diff);
		consumer_create(c);
	} else if (c->sub->consumer_policy == CONSUMER_POLICY_CREATE &&
	    !immutable) {
		log_warnx("consumer.differs",
		    "subscription %s: consumer %s differs from the "
		    "configuration, used as it is (consumer_policy: create): "
		    "%s",
		    c->sub->name, c->sub->durable, diff);
		consumer_bound(c);
	} else {
		why = xasprintf("differs from the configuration%s: %s",
		    immutable ? " in fields that cannot be updated (delete it "
				"or use another durable name)"
			      : " (consumer_policy: verify)",
		    diff);
		consumer_retry(c, "consumer.mismatch", why);
		free(why);
	}
	free(diff);
}

static void
on_info_reply(void *arg, natsMsg *reply)
{
	struct consumer *c = arg;
	struct jsapi_error e;
	char *why;
	int r;

	if ((r = read_reply(c, reply, &e)) == 0)
		consumer_compare(c, reply);
	else if (r == 1 && e.err_code == JSAPI_ERR_CONSUMER_NOT_FOUND)
		consumer_create(c);
	else if (r == 1) {
		why = e.err_code == JSAPI_ERR_STREAM_NOT_FOUND
		    ? xasprintf("stream %s does not exist", c->sub->stream)
		    : xasprintf("%s (code %d)", e.description, e.err_code);
		consumer_retry(c, "consumer.unavailable", why);
		free(why);
	}
	bus_msg_free(reply);
}

static void
consumer_info(struct consumer *c)
{
	char subject[256];

	snprintf(subject, sizeof subject, "$JS.API.CONSUMER.INFO.%s.%s",
	    c->sub->stream, c->sub->durable);
	c->step = STEP_INFO;
	c->request = bus_request(
	    c->bus, subject, NULL, 0, "", 0, API_TIMEOUT_NS, on_info_reply, c);
	if (c->request == 0)
		consumer_retry(c, "consumer.unreachable",
		    "cannot send the info request (not connected)");
}

static void
on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	consumer_info(w->data);
}

/* A failed poll is only a missed sample: the next one comes soon. */
static void
on_poll_reply(void *arg, natsMsg *reply)
{
	struct consumer *c = arg;
	uint64_t pending, ack_pending;

	c->poll_request = 0;
	if (reply == NULL)
		return;
	if (jsapi_consumer_pending(natsMsg_GetData(reply),
		(size_t)natsMsg_GetDataLength(reply), &pending,
		&ack_pending) == 0 &&
	    c->events.pending != NULL)
		c->events.pending(c->events.arg, pending, ack_pending);
	bus_msg_free(reply);
}

static void
on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct consumer *c = w->data;
	char subject[256];

	if (c->step != STEP_BOUND || c->poll_request != 0)
		return;
	snprintf(subject, sizeof subject, "$JS.API.CONSUMER.INFO.%s.%s",
	    c->sub->stream, c->sub->durable);
	c->poll_request = bus_request(
	    c->bus, subject, NULL, 0, "", 0, API_TIMEOUT_NS, on_poll_reply, c);
}

void
consumer_poll_pending(struct consumer *c, int64_t interval_ns)
{
	ev_timer_stop(c->loop, &c->poll);
	if (interval_ns <= 0)
		return;
	ev_timer_set(
	    &c->poll, (double)interval_ns / 1e9, (double)interval_ns / 1e9);
	ev_timer_start(c->loop, &c->poll);
}

struct consumer *
consumer_new(struct ev_loop *loop, struct bus *bus,
    const struct config_subscription *sub, const struct consumer_events *ev)
{
	struct consumer *c = xcalloc(1, sizeof *c);

	c->loop = loop;
	c->bus = bus;
	c->sub = sub;
	c->events = *ev;
	c->retry_s = RETRY_MIN_S;
	ev_timer_init(&c->retry, on_retry, 0, 0);
	c->retry.data = c;
	ev_timer_init(&c->poll, on_poll, 0, 0);
	c->poll.data = c;
	return c;
}

void
consumer_free(struct consumer *c)
{
	if (c == NULL)
		return;
	ev_timer_stop(c->loop, &c->retry);
	ev_timer_stop(c->loop, &c->poll);
	bus_request_cancel(c->bus, c->request);
	bus_request_cancel(c->bus, c->poll_request);
	free(c->problem);
	free(c);
}

void
consumer_bind(struct consumer *c)
{
	if (c->step != STEP_IDLE)
		return;
	ev_timer_stop(c->loop, &c->retry);
	consumer_info(c);
}

void
consumer_lost(struct consumer *c, const char *why)
{
	if (c->step != STEP_BOUND)
		return;
	log_warnx("consumer.lost", "subscription %s: consumer %s: %s",
	    c->sub->name, c->sub->durable, why);
	free(c->problem);
	c->problem = xstrdup(why);
	c->step = STEP_IDLE;
	consumer_bind(c);
}

int64_t
consumer_ack_wait(const struct consumer *c)
{
	return c->ack_wait > 0 ? c->ack_wait : c->sub->ack_wait;
}

bool
consumer_is_bound(const struct consumer *c)
{
	return c->step == STEP_BOUND;
}

const char *
consumer_problem(const struct consumer *c)
{
	if (c->step == STEP_BOUND)
		return NULL;
	return c->problem != NULL ? c->problem : "not bound yet";
}
