#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <ev.h>
#include <jansson.h>

#include "advisory.h"
#include "bus.h"
#include "config.h"
#include "consumer.h"
#include "dlq.h"
#include "filters/deadletter.h"
#include "jsapi.h"
#include "log.h"
#include "metrics.h"
#include "pull.h"
#include "trace.h"
#include "xmalloc.h"

#define NS_PER_S INT64_C(1000000000)
#define API_TIMEOUT_NS (5 * NS_PER_S)
#define ADVISORY_TYPE "io.nats.jetstream.advisory.v1.max_deliver"
#define SUBJECT_PREFIX "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
/* Another pod may be creating the stream at the same moment. */
#define STREAM_RACE_S 0.5
#define STREAM_RETRY_S 5.0
#define STREAM_RECHECK_S 60.0

enum outcome {
	OUTCOME_DEAD_LETTERED,
	OUTCOME_GONE, /* the message was no longer in its stream */
	OUTCOME_FAILED, /* NAKed, to be tried again */
	OUTCOME_INVALID, /* not an advisory we can act on: terminated */
	OUTCOME_COUNT
};

static const char *const outcome_names[] = { "dead_lettered", "gone", "failed",
	"invalid" };

struct advisory;

/*
 * A subscription whose advisories are captured: a stream of its own
 * (PREFIX_STREAM_DURABLE, one subject, created and never changed, so pods
 * of different configurations never rewrite each other's streams) and a
 * durable consumer on it, so one subscription's stuck advisories never
 * hold up another's.
 */
struct watch {
	struct advisory *a;
	const struct config_subscription *sub;
	const struct deadletter_options *dlq;
	char subject[512];
	char stream[ADVISORY_STREAM_NAME_MAX + 1];
	/* The capture consumer, described as a subscription so the consumer
	 * module and the pull engine serve it as any other. */
	struct config_subscription capture;
	struct consumer *consumer;
	struct pull *pull;
	size_t held, held_bytes;
	uint64_t stream_request;
	char *stream_problem; /* logged once per distinct text */
	/* Retries a stream that is not right, and looks again now and then
	 * at one that is (it may be deleted under us). */
	ev_timer stream_timer;
	struct metric_series *dead_letters;
};

/* One advisory on its way from the capture stream to a dead letter. */
struct job {
	struct watch *w;
	natsMsg *msg; /* the advisory: its reply subject acks it */
	size_t size;
	struct advisory_event ev;
	uint64_t request; /* the bus request under way, or 0 */
	bool publishing; /* that request is the dead letter's publish */
	TAILQ_ENTRY(job) link;
};

TAILQ_HEAD(job_list, job);

struct advisory {
	struct ev_loop *loop;
	struct bus *bus;
	const struct config *cfg;
	const struct config_advisories *opt;
	struct watch *watches;
	size_t nwatches;
	struct job_list jobs;
	bool draining;
	ev_prepare turn;
	struct metric_series *outcomes[OUTCOME_COUNT];
};

/* A JetStream name as the advisory subject and API subjects need it. */
static bool
name_ok(const char *s)
{
	return s[0] != '\0' && strpbrk(s, " \t\r\n\f.*>") == NULL;
}

static int
string_field(json_t *root, const char *key, char *buf, size_t cap, char *why,
    size_t wcap)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_string(v)) {
		snprintf(why, wcap, "%s: missing or not a string", key);
		return -1;
	}
	if (json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v) ||
	    !name_ok(json_string_value(v))) {
		snprintf(why, wcap, "%s: not a JetStream name", key);
		return -1;
	}
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int
count_field(json_t *root, const char *key, uint64_t min, uint64_t *out,
    char *why, size_t wcap)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min) {
		snprintf(why, wcap,
		    "%s: missing, or not an integer >= %" PRIu64, key, min);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int
advisory_parse(const char *json, size_t len, struct advisory_event *ev,
    char *why, size_t cap)
{
	json_error_t err;
	json_t *root = json_loadb(json, len, 0, &err);
	const char *type;
	int r = -1;

	memset(ev, 0, sizeof *ev);
	if (root == NULL) {
		snprintf(why, cap, "not JSON: %s", err.text);
		return -1;
	}
	type = json_string_value(json_object_get(root, "type"));
	if (!json_is_object(root))
		snprintf(why, cap, "not a JSON object");
	else if (type == NULL || strcmp(type, ADVISORY_TYPE) != 0)
		snprintf(why, cap, "type: expected %s", ADVISORY_TYPE);
	else if (string_field(root, "stream", ev->stream, sizeof ev->stream,
		     why, cap) == 0 &&
	    string_field(root, "consumer", ev->consumer, sizeof ev->consumer,
		why, cap) == 0 &&
	    count_field(root, "stream_seq", 1, &ev->stream_seq, why, cap) ==
		0 &&
	    count_field(root, "deliveries", 0, &ev->deliveries, why, cap) == 0)
		r = 0;
	json_decref(root);
	return r;
}

/* Ends |j|: answers the advisory with |body| and lets it go. */
static void
finish(struct job *j, const char *body, enum outcome o)
{
	struct watch *w = j->w;
	struct advisory *a = w->a;

	if (j->publishing)
		dlq_cancel(a->bus, j->request);
	else
		bus_request_cancel(a->bus, j->request);
	if (bus_publish(a->bus, natsMsg_GetReply(j->msg), NULL, body,
		strlen(body)) == -1)
		log_warnx("advisory.answer_failed",
		    "cannot send %s for the advisory of message %" PRIu64
		    " of stream %s (not connected): it comes back after the "
		    "ack wait",
		    body, j->ev.stream_seq, w->sub->stream);
	metric_inc(a->outcomes[o]);
	TAILQ_REMOVE(&a->jobs, j, link);
	w->held--;
	w->held_bytes -= j->size;
	bus_msg_free(j->msg);
	free(j);
}

/* Not handled now: the advisory comes back after retry_delay. */
static void
retry_later(struct job *j, enum outcome o)
{
	char body[64];

	snprintf(body, sizeof body, "-NAK {\"delay\":%" PRId64 "}",
	    j->w->a->opt->retry_delay);
	finish(j, body, o);
}

static struct log_ctx
job_ctx(const struct job *j)
{
	struct log_ctx ctx = {
		.subscription = j->w->sub->name,
		.stream_seq = j->ev.stream_seq,
	};

	return ctx;
}

static void job_warn(const struct job *j, const char *event, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* Logs a failure of |j| with its context and the retry delay. */
static void
job_warn(const struct job *j, const char *event, const char *fmt, ...)
{
	struct log_ctx ctx = job_ctx(j);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_emit(LOG_LEVEL_WARN, &ctx, event,
	    "advisory for message %" PRIu64 " of stream %s: %s; tried again "
	    "in %" PRId64 " ms",
	    j->ev.stream_seq, j->ev.stream, msg,
	    j->w->a->opt->retry_delay / (NS_PER_S / 1000));
}

static void
dead_lettered(struct job *j)
{
	struct log_ctx ctx = job_ctx(j);

	metric_inc(j->w->dead_letters);
	log_emit(LOG_LEVEL_INFO, &ctx, "advisory.dead_lettered",
	    "dead-lettered (%s): the server gave up on message %" PRIu64
	    " of stream %s after %" PRIu64 " deliveries",
	    filter_reason_name(FILTER_REASON_MAX_DELIVERIES), j->ev.stream_seq,
	    j->ev.stream, j->ev.deliveries);
	finish(j, "+ACK", OUTCOME_DEAD_LETTERED);
}

static void
on_deleted(void *arg, natsMsg *reply)
{
	struct job *j = arg;
	struct jsapi_error e;
	int r = -1;

	j->request = 0;
	if (reply != NULL)
		r = jsapi_error(natsMsg_GetData(reply),
		    (size_t)natsMsg_GetDataLength(reply), &e);
	if (r == 0)
		dead_lettered(j);
	else if (r == 1 &&
	    (e.err_code == JSAPI_ERR_SEQUENCE_NOT_FOUND ||
		(e.err_code == JSAPI_ERR_MSG_DELETE_FAILED &&
		    strstr(e.description, "not found") != NULL)))
		dead_lettered(j); /* someone deleted it first */
	else if (r == 1) {
		/* The dead letter is stored; next time its copy is a
		 * duplicate (within the dead-letter stream's window) and the
		 * delete is tried again. */
		job_warn(j, "advisory.delete_failed",
		    "dead-lettered, but the original cannot be deleted: %s "
		    "(code %d)",
		    e.description, e.err_code);
		retry_later(j, OUTCOME_FAILED);
	} else {
		job_warn(j, "advisory.delete_failed",
		    "dead-lettered, but no answer deleting the original");
		retry_later(j, OUTCOME_FAILED);
	}
	bus_msg_free(reply);
}

static void
delete_original(struct job *j)
{
	char api[512], body[64];
	size_t len =
	    jsapi_msg_request(body, sizeof body, j->ev.stream_seq, true);

	snprintf(api, sizeof api, "$JS.API.STREAM.MSG.DELETE.%s", j->ev.stream);
	j->request = bus_request(j->w->a->bus, api, NULL, 0, body, len,
	    API_TIMEOUT_NS, on_deleted, j);
	if (j->request == 0) {
		job_warn(j, "advisory.delete_failed",
		    "dead-lettered, but NATS is not reachable to delete the "
		    "original");
		retry_later(j, OUTCOME_FAILED);
	}
}

/*
 * Whether the advisory may be trusted with deleting the original: the
 * server sends it once the delivery count reached the consumer's
 * max_deliver, so one claiming fewer is stale or forged (anyone allowed
 * to publish on $JS.EVENT.> can write one). A copy in the dead-letter
 * stream harms nothing; a deletion loses the message for good.
 */
static bool
may_delete(const struct job *j)
{
	int64_t max = j->w->sub->max_deliver;
	struct log_ctx ctx;

	if (max > 0 && j->ev.deliveries >= (uint64_t)max)
		return true;
	ctx = job_ctx(j);
	log_emit(LOG_LEVEL_WARN, &ctx, "advisory.delete_refused",
	    "dead-lettered, but message %" PRIu64 " of stream %s is kept: "
	    "the advisory says %" PRIu64 " deliveries and the consumer's "
	    "max_deliver is %" PRId64,
	    j->ev.stream_seq, j->ev.stream, j->ev.deliveries, max);
	return false;
}

/* The dead letter is stored, or could not be. */
static void
on_dead_letter(void *arg, const char *error)
{
	struct job *j = arg;

	j->request = 0;
	j->publishing = false;
	if (error != NULL) {
		job_warn(j, "advisory.dead_letter_failed",
		    "cannot dead-letter: %s", error);
		retry_later(j, OUTCOME_FAILED);
	} else if (j->w->dlq->delete_original && may_delete(j))
		delete_original(j);
	else
		dead_lettered(j);
}

/* The original, read by its sequence: publish its dead letter. */
static void
publish_dead_letter(struct job *j, const struct jsapi_stream_msg *m)
{
	struct advisory *a = j->w->a;
	struct dlq_source src = {
		.subject = m->subject,
		.stream = j->ev.stream,
		.consumer = j->ev.consumer,
		.stream_seq = m->seq,
		.deliveries = j->ev.deliveries,
		.published_ns = m->time_ns,
		.headers = m->headers,
		.nheaders = m->nheaders,
		.payload = m->data,
		.len = m->len,
	};
	struct filter_verdict v = {
		.action = FILTER_DEAD_LETTER,
		.reason = FILTER_REASON_MAX_DELIVERIES,
	};
	char subject[256], text[160];

	for (size_t i = 0; i < m->nheaders; i++) {
		const struct bus_header *h = &m->headers[i];

		if (strcasecmp(h->name, "traceparent") == 0 &&
		    trace_parent_valid(h->value))
			src.traceparent = h->value;
		else if (strcasecmp(h->name, "tracestate") == 0)
			src.tracestate = h->value;
	}
	if (src.traceparent == NULL)
		src.tracestate = NULL; /* meaningless without its parent */
	if (deadletter_subject_for(j->w->dlq, m->subject, j->ev.stream,
		j->ev.consumer, j->w->sub->name, subject,
		sizeof subject) == -1) {
		job_warn(j, "advisory.dead_letter_failed",
		    "the dead-letter subject template gives no valid subject "
		    "for it");
		retry_later(j, OUTCOME_FAILED);
		return;
	}
	snprintf(text, sizeof text,
	    "the server gave up after %" PRIu64 " deliveries (the "
	    "consumer's max_deliver)",
	    j->ev.deliveries);
	v.text = text;
	j->request = dlq_publish_source(a->bus, j->w->dlq, &src, subject, v,
	    a->cfg->instance_id, a->cfg->nats.publish_timeout, on_dead_letter,
	    j);
	j->publishing = j->request != 0;
	if (j->request == 0) {
		job_warn(j, "advisory.dead_letter_failed",
		    "cannot dead-letter: NATS is not reachable");
		retry_later(j, OUTCOME_FAILED);
	}
}

static void
gone(struct job *j)
{
	struct log_ctx ctx = job_ctx(j);

	/* Acked meanwhile, deleted, aged out, or its stream deleted. */
	log_emit(LOG_LEVEL_INFO, &ctx, "advisory.gone",
	    "the server gave up on message %" PRIu64 " of stream %s, "
	    "which is no longer there: nothing to dead-letter",
	    j->ev.stream_seq, j->ev.stream);
	finish(j, "+ACK", OUTCOME_GONE);
}

static void
on_msg_get(void *arg, natsMsg *reply)
{
	struct job *j = arg;
	struct jsapi_stream_msg m;
	struct jsapi_error e;
	int r;

	j->request = 0;
	if (reply == NULL || bus_msg_status(reply) == 503) {
		job_warn(j, "advisory.read_failed",
		    reply == NULL ? "no answer reading the message"
				  : "JetStream is not available (no "
				    "responders)");
		bus_msg_free(reply);
		retry_later(j, OUTCOME_FAILED);
		return;
	}
	r = jsapi_stream_msg(natsMsg_GetData(reply),
	    (size_t)natsMsg_GetDataLength(reply), &m, &e);
	bus_msg_free(reply);
	if (r == 1 &&
	    (e.err_code == JSAPI_ERR_NO_MESSAGE_FOUND ||
		e.err_code == JSAPI_ERR_STREAM_NOT_FOUND))
		gone(j);
	else if (r == 1) {
		job_warn(j, "advisory.read_failed",
		    "cannot read the message: %s (code %d)", e.description,
		    e.err_code);
		retry_later(j, OUTCOME_FAILED);
	} else if (r == -1) {
		job_warn(j, "advisory.read_failed",
		    "unreadable answer reading the message");
		retry_later(j, OUTCOME_FAILED);
	} else {
		publish_dead_letter(j, &m);
		jsapi_stream_msg_free(&m);
	}
}

/* An advisory, not a user message: nothing is lost by ending one that
 * cannot be acted on, and it would never get better. */
static void
invalid(struct job *j, const char *why)
{
	log_warnx("advisory.invalid", "advisory on %s terminated: %s",
	    natsMsg_GetSubject(j->msg), why);
	finish(j, "+TERM", OUTCOME_INVALID);
}

static void
on_pull_message(void *arg, natsMsg *msg, size_t size)
{
	struct watch *w = arg;
	struct advisory *a = w->a;
	struct job *j = xcalloc(1, sizeof *j);
	char why[1024], api[512], body[64];
	size_t len;

	j->w = w;
	j->msg = msg;
	j->size = size;
	TAILQ_INSERT_TAIL(&a->jobs, j, link);
	w->held++;
	w->held_bytes += j->size;
	if (advisory_parse(natsMsg_GetData(msg),
		(size_t)natsMsg_GetDataLength(msg), &j->ev, why,
		sizeof why) == -1) {
		invalid(j, why);
		return;
	}
	if (strcmp(j->ev.stream, w->sub->stream) != 0 ||
	    strcmp(j->ev.consumer, w->sub->durable) != 0) {
		snprintf(why, sizeof why,
		    "it names consumer %s of stream %s, not the one %s "
		    "captures",
		    j->ev.consumer, j->ev.stream, w->stream);
		invalid(j, why);
		return;
	}
	len = jsapi_msg_request(body, sizeof body, j->ev.stream_seq, false);
	snprintf(api, sizeof api, "$JS.API.STREAM.MSG.GET.%s", j->ev.stream);
	j->request = bus_request(
	    a->bus, api, NULL, 0, body, len, API_TIMEOUT_NS, on_msg_get, j);
	if (j->request == 0) {
		job_warn(j, "advisory.read_failed", "NATS is not reachable");
		retry_later(j, OUTCOME_FAILED);
	}
}

static void stream_ensure(struct watch *);

static void
on_pull_lost(void *arg, const char *why)
{
	struct watch *w = arg;

	consumer_lost(w->consumer, why);
	/* Perhaps the stream went with it: look now, not at the recheck. */
	stream_ensure(w);
}

static void
on_consumer_bound(void *arg)
{
	struct watch *w = arg;

	if (w->a->draining || pull_start(w->pull) == -1)
		return;
	log_info("advisory.watching",
	    "subscription %s: taking the server's MAX_DELIVERIES advisories "
	    "for consumer %s of stream %s from stream %s",
	    w->sub->name, w->sub->durable, w->sub->stream, w->stream);
	pull_refill(w->pull, w->held, w->held_bytes, w->capture.max_in_flight);
}

static void
on_turn(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct advisory *a = p->data;

	if (a->draining)
		return;
	for (size_t i = 0; i < a->nwatches; i++)
		pull_refill(a->watches[i].pull, a->watches[i].held,
		    a->watches[i].held_bytes,
		    a->watches[i].capture.max_in_flight);
}

/* The stream is not right: say why (once per reason), look again later. */
static void
stream_failed(struct watch *w, const char *why, double after_s)
{
	if (why != NULL &&
	    (w->stream_problem == NULL ||
		strcmp(w->stream_problem, why) != 0)) {
		log_warnx("advisory.stream",
		    "advisory stream %s of subscription %s: %s; trying again",
		    w->stream, w->sub->name, why);
		free(w->stream_problem);
		w->stream_problem = xstrdup(why);
	}
	ev_timer_stop(w->a->loop, &w->stream_timer);
	ev_timer_set(&w->stream_timer, after_s, 0);
	ev_timer_start(w->a->loop, &w->stream_timer);
}

static void
stream_ok(struct watch *w, const char *how)
{
	if (how != NULL || w->stream_problem != NULL)
		log_info("advisory.stream",
		    "advisory stream %s %s, capturing %s", w->stream,
		    how != NULL ? how : "is there", w->subject);
	free(w->stream_problem);
	w->stream_problem = NULL;
	if (!consumer_is_bound(w->consumer))
		consumer_bind(w->consumer);
	ev_timer_stop(w->a->loop, &w->stream_timer);
	ev_timer_set(&w->stream_timer, STREAM_RECHECK_S, 0);
	ev_timer_start(w->a->loop, &w->stream_timer);
}

/* Reads a stream API reply: 0 with |*root|, 1 for an error in |e|, -1 when
 * there is nothing usable (the retry is arranged). */
static int
stream_reply(
    struct watch *w, natsMsg *reply, json_t **root, struct jsapi_error *e)
{
	w->stream_request = 0;
	*root = NULL;
	if (reply == NULL) {
		stream_failed(
		    w, "no answer from the JetStream API", STREAM_RETRY_S);
		return -1;
	}
	if (bus_msg_status(reply) == 503) {
		stream_failed(w, "JetStream is not available (no responders)",
		    STREAM_RETRY_S);
		return -1;
	}
	*root = json_loadb(natsMsg_GetData(reply),
	    (size_t)natsMsg_GetDataLength(reply), 0, NULL);
	if (*root == NULL) {
		stream_failed(w,
		    "the JetStream API answered with something not JSON",
		    STREAM_RETRY_S);
		return -1;
	}
	if (jsapi_error(natsMsg_GetData(reply),
		(size_t)natsMsg_GetDataLength(reply), e) == 1) {
		json_decref(*root);
		*root = NULL;
		return 1;
	}
	return 0;
}

static void
on_stream_created(void *arg, natsMsg *reply)
{
	struct watch *w = arg;
	struct jsapi_error e;
	json_t *root;
	char *why;
	int r = stream_reply(w, reply, &root, &e);

	if (r == 0)
		stream_ok(w, "created");
	else if (r == 1 && e.err_code == JSAPI_ERR_STREAM_NAME_IN_USE)
		stream_failed(w, NULL, STREAM_RACE_S); /* created meanwhile */
	else if (r == 1) {
		why = xasprintf("cannot create it: %s (code %d)", e.description,
		    e.err_code);
		stream_failed(w, why, STREAM_RETRY_S);
		free(why);
	}
	json_decref(root);
	bus_msg_free(reply);
}

static void
stream_create(struct watch *w)
{
	const struct config_advisories *o = w->a->opt;
	char api[512], *body;
	json_t *config;

	/* Small: advisories are a few hundred bytes, one per given-up
	 * message. */
	config = json_pack("{s:s, s:[s], s:s, s:s, s:s, s:I, s:I}", "name",
	    w->stream, "subjects", w->subject, "retention", "limits", "storage",
	    "file", "discard", "old", "max_age", (json_int_t)o->max_age,
	    "num_replicas", (json_int_t)o->replicas);
	if (config == NULL || (body = json_dumps(config, JSON_COMPACT)) == NULL)
		fatalx("out of memory encoding a stream configuration");
	json_decref(config);
	snprintf(api, sizeof api, "$JS.API.STREAM.CREATE.%s", w->stream);
	w->stream_request = bus_request(w->a->bus, api, NULL, 0, body,
	    strlen(body), API_TIMEOUT_NS, on_stream_created, w);
	free(body);
	if (w->stream_request == 0)
		stream_failed(w, "not connected", STREAM_RETRY_S);
}

/* Whether subject filter |filter| takes every subject |s| matches (|s| has
 * no wildcards here). */
static bool
subject_covers(const char *filter, const char *s)
{
	for (;;) {
		size_t fl = strcspn(filter, "."), sl = strcspn(s, ".");

		if (fl == 1 && filter[0] == '>')
			return true;
		if (!(fl == 1 && filter[0] == '*') &&
		    (fl != sl || memcmp(filter, s, fl) != 0))
			return false;
		filter += fl;
		s += sl;
		if (*filter == '\0' || *s == '\0')
			return *filter == '\0' && *s == '\0';
		filter++;
		s++;
	}
}

/* The stream exists: it must capture the subject. It is not changed if
 * it does not (someone made it so; rewriting it would undo their work). */
static void
stream_check(struct watch *w, json_t *config)
{
	json_t *subjects = json_object_get(config, "subjects"), *v;
	size_t k;
	char *why;

	json_array_foreach(subjects, k, v)
	{
		if (json_is_string(v) &&
		    subject_covers(json_string_value(v), w->subject)) {
			stream_ok(w, NULL);
			return;
		}
	}
	why = xasprintf("exists, but does not capture %s: add it to its "
			"subjects, or delete the stream to have it created",
	    w->subject);
	stream_failed(w, why, STREAM_RECHECK_S);
	free(why);
}

static void
on_stream_info(void *arg, natsMsg *reply)
{
	struct watch *w = arg;
	struct jsapi_error e;
	json_t *root, *config;
	char *why;
	int r = stream_reply(w, reply, &root, &e);

	if (r == 1 && e.err_code == JSAPI_ERR_STREAM_NOT_FOUND)
		stream_create(w);
	else if (r == 1) {
		why = xasprintf("%s (code %d)", e.description, e.err_code);
		stream_failed(w, why, STREAM_RETRY_S);
		free(why);
	} else if (r == 0 &&
	    !json_is_object(config = json_object_get(root, "config")))
		stream_failed(w, "the stream info holds no configuration",
		    STREAM_RETRY_S);
	else if (r == 0)
		stream_check(w, config);
	json_decref(root);
	bus_msg_free(reply);
}

static void
stream_ensure(struct watch *w)
{
	char api[512];

	if (w->stream_request != 0)
		return;
	ev_timer_stop(w->a->loop, &w->stream_timer);
	snprintf(api, sizeof api, "$JS.API.STREAM.INFO.%s", w->stream);
	w->stream_request = bus_request(
	    w->a->bus, api, NULL, 0, "", 0, API_TIMEOUT_NS, on_stream_info, w);
	if (w->stream_request == 0)
		stream_failed(w, "not connected", STREAM_RETRY_S);
}

static void
on_stream_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	stream_ensure(t->data);
}

static void
register_metrics(struct advisory *a, struct metrics *m)
{
	static const char *const reason_labels[] = { "subscription", "reason",
		NULL };
	static const char *const outcome_label[] = { "outcome", NULL };
	struct metric *f;

	/* The same family the core counts every other dead letter in. */
	f = metrics_counter(m, "nats_sidecar_dead_letters_total",
	    "Messages stored in the dead-letter stream, by reason.",
	    reason_labels);
	for (size_t i = 0; i < a->nwatches; i++) {
		const char *v[] = { a->watches[i].sub->name,
			filter_reason_name(FILTER_REASON_MAX_DELIVERIES),
			NULL };

		a->watches[i].dead_letters = metric_series(f, v);
	}
	f = metrics_counter(m, "nats_sidecar_advisories_total",
	    "MAX_DELIVERIES advisories handled, by outcome.", outcome_label);
	for (int o = 0; o < OUTCOME_COUNT; o++) {
		const char *v[] = { outcome_names[o], NULL };

		a->outcomes[o] = metric_series(f, v);
	}
}

/* The dead-letter filter's options of |s|, or NULL. */
static const struct deadletter_options *
deadletter_of(const struct config_subscription *s)
{
	for (size_t i = 0; i < s->filters.n; i++) {
		if (s->filters.v[i].ops == &deadletter_filter)
			return s->filters.v[i].options;
	}
	return NULL;
}

static void
watch_init(struct advisory *a, struct watch *w,
    const struct config_subscription *s, const struct deadletter_options *dlq)
{
	struct config_subscription *c = &w->capture;

	w->a = a;
	w->sub = s;
	w->dlq = dlq;
	snprintf(w->subject, sizeof w->subject, "%s%s.%s", SUBJECT_PREFIX,
	    s->stream, s->durable);
	/* The configuration checked that it fits. */
	snprintf(w->stream, sizeof w->stream, "%s_%s_%s", a->opt->stream_prefix,
	    s->stream, s->durable);
	/* Explicit acks, never given up on by the server, few at a time
	 * (each is a read and a publish), and an ack wait longer than the
	 * slowest job, so no other pod takes one over while it runs. */
	c->name = s->name;
	c->stream = w->stream;
	c->durable = a->opt->durable;
	c->consumer_policy = CONSUMER_POLICY_UPDATE;
	c->deliver_policy = DELIVER_POLICY_ALL;
	c->ack_wait =
	    2 * API_TIMEOUT_NS + a->cfg->nats.publish_timeout + 30 * NS_PER_S;
	c->max_deliver = -1;
	c->max_in_flight = 16;
	c->max_in_flight_bytes = 1024 * 1024;
	c->max_ack_pending = 1024;
	c->pull_expires = 30 * NS_PER_S;
	c->pull_heartbeat = 5 * NS_PER_S;
	w->consumer = consumer_new(a->loop, a->bus, c,
	    &(struct consumer_events){ .bound = on_consumer_bound, .arg = w });
	w->pull = pull_new(a->loop, a->bus, c,
	    &(struct pull_events){
		.message = on_pull_message, .lost = on_pull_lost, .arg = w });
	ev_timer_init(&w->stream_timer, on_stream_timer, 0, 0);
	w->stream_timer.data = w;
}

struct advisory *
advisory_new(struct ev_loop *loop, struct bus *bus, const struct config *cfg,
    struct metrics *metrics)
{
	const struct deadletter_options *dlq;
	struct advisory *a;
	size_t n = 0;

	if (!cfg->advisories.enabled)
		return NULL;
	for (size_t i = 0; i < cfg->subscriptions.n; i++)
		n += deadletter_of(config_subscription(cfg, i)) != NULL;
	if (n == 0)
		return NULL;
	a = xcalloc(1, sizeof *a);
	a->loop = loop;
	a->bus = bus;
	a->cfg = cfg;
	a->opt = &cfg->advisories;
	a->watches = xcalloc(n, sizeof *a->watches);
	TAILQ_INIT(&a->jobs);
	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		const struct config_subscription *s =
		    config_subscription(cfg, i);

		if ((dlq = deadletter_of(s)) != NULL)
			watch_init(a, &a->watches[a->nwatches++], s, dlq);
	}
	register_metrics(a, metrics);
	ev_prepare_init(&a->turn, on_turn);
	a->turn.data = a;
	ev_prepare_start(loop, &a->turn);
	return a;
}

void
advisory_free(struct advisory *a)
{
	struct job *j;

	if (a == NULL)
		return;
	ev_prepare_stop(a->loop, &a->turn);
	/* The pulls first: what is returned below must not come back to
	 * this pod's inbox. */
	for (size_t i = 0; i < a->nwatches; i++) {
		struct watch *w = &a->watches[i];

		ev_timer_stop(a->loop, &w->stream_timer);
		bus_request_cancel(a->bus, w->stream_request);
		pull_free(w->pull);
		consumer_free(w->consumer);
		free(w->stream_problem);
	}
	/* Unfinished: straight back, for another pod. */
	while ((j = TAILQ_FIRST(&a->jobs)) != NULL)
		finish(j, "-NAK", OUTCOME_FAILED);
	free(a->watches);
	free(a);
}

void
advisory_connected(struct advisory *a)
{
	if (a == NULL || a->draining)
		return;
	for (size_t i = 0; i < a->nwatches; i++) {
		struct watch *w = &a->watches[i];

		/* The stream may have been deleted while away: look again. */
		if (consumer_is_bound(w->consumer))
			pull_reset(w->pull);
		stream_ensure(w);
	}
}

void
advisory_drain(struct advisory *a)
{
	if (a == NULL)
		return;
	a->draining = true;
	for (size_t i = 0; i < a->nwatches; i++)
		pull_stop(a->watches[i].pull);
}

bool
advisory_drained(const struct advisory *a)
{
	if (a == NULL)
		return true;
	for (size_t i = 0; i < a->nwatches; i++) {
		if (!pull_drained(a->watches[i].pull))
			return false;
	}
	return TAILQ_EMPTY(&a->jobs);
}
