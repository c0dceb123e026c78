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

enum outcome {
	OUTCOME_DEAD_LETTERED,
	OUTCOME_GONE, /* the message was no longer in its stream */
	OUTCOME_FAILED, /* NAKed, to be tried again */
	OUTCOME_NOT_OURS, /* no subscription here watches it: NAKed */
	OUTCOME_INVALID, /* not an advisory we can read: terminated */
	OUTCOME_COUNT
};

static const char *const outcome_names[] = { "dead_lettered", "gone", "failed",
	"not_watched", "invalid" };

/* A subscription whose advisories are captured. */
struct watch {
	const struct config_subscription *sub;
	const struct deadletter_options *dlq;
	char subject[256];
	struct metric_series *dead_letters;
};

/* One advisory on its way from the capture stream to a dead letter. */
struct job {
	struct advisory *a;
	natsMsg *msg; /* the advisory: its reply subject acks it */
	size_t size;
	struct advisory_event ev;
	const struct watch *w;
	uint64_t request; /* the bus request under way, or 0 */
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
	/* The capture stream's consumer, described as a subscription so the
	 * consumer module and the pull engine serve it as any other. */
	struct config_subscription sub;
	struct consumer *consumer;
	struct pull *pull;
	struct job_list jobs;
	size_t held, held_bytes;
	uint64_t stream_request;
	char *stream_problem; /* logged once per distinct text */
	ev_timer stream_retry;
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
	struct advisory *a = j->a;

	if (j->request != 0)
		bus_request_cancel(a->bus, j->request);
	bus_publish(a->bus, natsMsg_GetReply(j->msg), NULL, body, strlen(body));
	metric_inc(a->outcomes[o]);
	TAILQ_REMOVE(&a->jobs, j, link);
	a->held--;
	a->held_bytes -= j->size;
	natsMsg_Destroy(j->msg);
	free(j);
}

/* Not handled now: the advisory comes back after retry_delay. */
static void
retry_later(struct job *j, enum outcome o)
{
	char body[64];

	snprintf(body, sizeof body, "-NAK {\"delay\":%" PRId64 "}",
	    j->a->opt->retry_delay);
	finish(j, body, o);
}

static struct log_ctx
job_ctx(const struct job *j)
{
	struct log_ctx ctx = {
		.subscription = j->w != NULL ? j->w->sub->name : NULL,
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
	    j->a->opt->retry_delay / (NS_PER_S / 1000));
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
	else if (r == 1 && strstr(e.description, "not found") != NULL)
		dead_lettered(j); /* someone deleted it first */
	else if (r == 1) {
		/* The dead letter is stored; next time its copy is a
		 * duplicate and the delete is tried again. */
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
	natsMsg_Destroy(reply);
}

static void
delete_original(struct job *j)
{
	char api[256], body[64];
	size_t len =
	    jsapi_msg_request(body, sizeof body, j->ev.stream_seq, true);

	snprintf(api, sizeof api, "$JS.API.STREAM.MSG.DELETE.%s", j->ev.stream);
	j->request = bus_request(
	    j->a->bus, api, NULL, 0, body, len, API_TIMEOUT_NS, on_deleted, j);
	if (j->request == 0) {
		job_warn(j, "advisory.delete_failed",
		    "dead-lettered, but NATS is not reachable to delete the "
		    "original");
		retry_later(j, OUTCOME_FAILED);
	}
}

/* The dead letter is stored, or could not be. */
static void
on_dead_letter(void *arg, const char *error)
{
	struct job *j = arg;

	j->request = 0;
	if (error != NULL) {
		job_warn(j, "advisory.dead_letter_failed",
		    "cannot dead-letter: %s", error);
		retry_later(j, OUTCOME_FAILED);
	} else if (j->w->dlq->delete_original)
		delete_original(j);
	else
		dead_lettered(j);
}

/* The original, read by its sequence: publish its dead letter. */
static void
publish_dead_letter(struct job *j, const struct jsapi_stream_msg *m)
{
	struct advisory *a = j->a;
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
	if (j->request == 0) {
		job_warn(j, "advisory.dead_letter_failed",
		    "cannot dead-letter: NATS is not reachable");
		retry_later(j, OUTCOME_FAILED);
	}
}

static void
on_msg_get(void *arg, natsMsg *reply)
{
	struct job *j = arg;
	struct jsapi_stream_msg m;
	struct jsapi_error e;
	struct log_ctx ctx;
	int r;

	j->request = 0;
	if (reply == NULL) {
		job_warn(
		    j, "advisory.read_failed", "no answer reading the message");
		retry_later(j, OUTCOME_FAILED);
		return;
	}
	r = jsapi_stream_msg(natsMsg_GetData(reply),
	    (size_t)natsMsg_GetDataLength(reply), &m, &e);
	natsMsg_Destroy(reply);
	if (r == 1 && e.err_code == JSAPI_ERR_NO_MESSAGE_FOUND) {
		/* Acked meanwhile, deleted or aged out: nothing to keep. */
		ctx = job_ctx(j);
		log_emit(LOG_LEVEL_INFO, &ctx, "advisory.gone",
		    "the server gave up on message %" PRIu64 " of stream %s, "
		    "which is no longer there: nothing to dead-letter",
		    j->ev.stream_seq, j->ev.stream);
		finish(j, "+ACK", OUTCOME_GONE);
	} else if (r == 1) {
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

static const struct watch *
find_watch(const struct advisory *a, const struct advisory_event *ev)
{
	for (size_t i = 0; i < a->nwatches; i++) {
		if (strcmp(a->watches[i].sub->stream, ev->stream) == 0 &&
		    strcmp(a->watches[i].sub->durable, ev->consumer) == 0)
			return &a->watches[i];
	}
	return NULL;
}

static void
on_pull_message(void *arg, natsMsg *msg)
{
	struct advisory *a = arg;
	struct job *j = xcalloc(1, sizeof *j);
	char why[256], api[256], body[64];
	size_t len;

	j->a = a;
	j->msg = msg;
	j->size = bus_msg_size(msg);
	TAILQ_INSERT_TAIL(&a->jobs, j, link);
	a->held++;
	a->held_bytes += j->size;
	if (advisory_parse(natsMsg_GetData(msg),
		(size_t)natsMsg_GetDataLength(msg), &j->ev, why,
		sizeof why) == -1) {
		/* An advisory, not a user message: nothing is lost by ending
		 * one that cannot be read, and it would never get better. */
		log_warnx("advisory.invalid",
		    "unreadable advisory on %s, terminated: %s",
		    natsMsg_GetSubject(msg), why);
		finish(j, "+TERM", OUTCOME_INVALID);
		return;
	}
	if ((j->w = find_watch(a, &j->ev)) == NULL) {
		/* Captured for a pod of another configuration that shares
		 * the stream: it comes back, and reaches one in the end. */
		log_debug("advisory.not_watched",
		    "advisory for consumer %s of stream %s, which no "
		    "subscription here watches: returned",
		    j->ev.consumer, j->ev.stream);
		retry_later(j, OUTCOME_NOT_OURS);
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

static void
on_pull_lost(void *arg, const char *why)
{
	struct advisory *a = arg;

	consumer_lost(a->consumer, why);
}

static void
on_consumer_bound(void *arg)
{
	struct advisory *a = arg;

	if (pull_start(a->pull) == 0)
		pull_refill(a->pull, a->held, a->held_bytes);
}

static void
on_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct advisory *a = w->data;

	pull_refill(a->pull, a->held, a->held_bytes);
}

static void stream_info(struct advisory *);

/* The stream is not ready: say why (once per reason), ask again later. */
static void
stream_failed(struct advisory *a, const char *why, double after_s)
{
	if (why != NULL &&
	    (a->stream_problem == NULL ||
		strcmp(a->stream_problem, why) != 0)) {
		log_warnx("advisory.stream",
		    "advisory stream %s: %s; trying again", a->opt->stream,
		    why);
		free(a->stream_problem);
		a->stream_problem = xstrdup(why);
	}
	ev_timer_set(&a->stream_retry, after_s, 0);
	ev_timer_start(a->loop, &a->stream_retry);
}

static void
stream_ok(struct advisory *a, const char *how)
{
	if (how != NULL || a->stream_problem != NULL)
		log_info("advisory.stream",
		    "advisory stream %s %s, capturing %zu subject(s)",
		    a->opt->stream, how != NULL ? how : "is there",
		    a->nwatches);
	free(a->stream_problem);
	a->stream_problem = NULL;
	if (!consumer_is_bound(a->consumer))
		consumer_bind(a->consumer);
}

/* Reads a stream API reply: 0 with |*root|, 1 for an error in |e|, -1 when
 * there is nothing usable (the retry is arranged). */
static int
stream_reply(
    struct advisory *a, natsMsg *reply, json_t **root, struct jsapi_error *e)
{
	a->stream_request = 0;
	*root = NULL;
	if (reply == NULL) {
		stream_failed(
		    a, "no answer from the JetStream API", STREAM_RETRY_S);
		return -1;
	}
	if (bus_msg_status(reply) == 503) {
		stream_failed(a, "JetStream is not available (no responders)",
		    STREAM_RETRY_S);
		return -1;
	}
	*root = json_loadb(natsMsg_GetData(reply),
	    (size_t)natsMsg_GetDataLength(reply), 0, NULL);
	if (*root == NULL) {
		stream_failed(a,
		    "the JetStream API answered with something "
		    "not JSON",
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
on_stream_changed(void *arg, natsMsg *reply)
{
	struct advisory *a = arg;
	struct jsapi_error e;
	json_t *root;
	char *why;
	int r = stream_reply(a, reply, &root, &e);

	if (r == 0)
		stream_ok(a, "created or extended");
	else if (r == 1 && e.err_code == JSAPI_ERR_STREAM_NAME_IN_USE)
		stream_failed(a, NULL, STREAM_RACE_S); /* created meanwhile */
	else if (r == 1) {
		why = xasprintf("cannot create or extend it: %s (code %d)",
		    e.description, e.err_code);
		stream_failed(a, why, STREAM_RETRY_S);
		free(why);
	}
	json_decref(root);
	natsMsg_Destroy(reply);
}

/* Sends |config| to STREAM.|verb| (CREATE or UPDATE). */
static void
stream_send(struct advisory *a, const char *verb, json_t *config)
{
	char api[256], *body = json_dumps(config, JSON_COMPACT);

	if (body == NULL)
		fatalx("out of memory encoding a stream configuration");
	snprintf(api, sizeof api, "$JS.API.STREAM.%s.%s", verb, a->opt->stream);
	a->stream_request = bus_request(a->bus, api, NULL, 0, body,
	    strlen(body), API_TIMEOUT_NS, on_stream_changed, a);
	free(body);
	if (a->stream_request == 0)
		stream_failed(a, "not connected", STREAM_RETRY_S);
}

static void
stream_create(struct advisory *a)
{
	json_t *subjects = json_array(), *config;

	for (size_t i = 0; i < a->nwatches; i++)
		json_array_append_new(
		    subjects, json_string(a->watches[i].subject));
	/* Small and short-lived: advisories are a few hundred bytes. */
	config =
	    json_pack("{s:s, s:o, s:s, s:s, s:s, s:I}", "name", a->opt->stream,
		"subjects", subjects, "retention", "limits", "storage", "file",
		"discard", "old", "max_age", (json_int_t)a->opt->max_age);
	if (config == NULL)
		fatalx("out of memory encoding a stream configuration");
	stream_send(a, "CREATE", config);
	json_decref(config);
}

/* The stream exists: add the subjects it lacks, keeping the rest of its
 * configuration (pods of other configurations share it). */
static void
stream_extend(struct advisory *a, json_t *config)
{
	json_t *subjects = json_object_get(config, "subjects"), *s;
	size_t added = 0, k;
	bool have;

	if (!json_is_array(subjects)) {
		subjects = json_array();
		json_object_set_new(config, "subjects", subjects);
	}
	for (size_t i = 0; i < a->nwatches; i++) {
		have = false;
		json_array_foreach(subjects, k, s)
		{
			const char *v = json_string_value(s);

			have = have ||
			    (v != NULL &&
				strcmp(v, a->watches[i].subject) == 0);
		}
		if (!have) {
			json_array_append_new(
			    subjects, json_string(a->watches[i].subject));
			added++;
		}
	}
	if (added == 0)
		stream_ok(a, NULL);
	else
		stream_send(a, "UPDATE", config);
}

static void
on_stream_info(void *arg, natsMsg *reply)
{
	struct advisory *a = arg;
	struct jsapi_error e;
	json_t *root, *config;
	char *why;
	int r = stream_reply(a, reply, &root, &e);

	if (r == 1 && e.err_code == JSAPI_ERR_STREAM_NOT_FOUND)
		stream_create(a);
	else if (r == 1) {
		why = xasprintf("%s (code %d)", e.description, e.err_code);
		stream_failed(a, why, STREAM_RETRY_S);
		free(why);
	} else if (r == 0 &&
	    !json_is_object(config = json_object_get(root, "config")))
		stream_failed(a, "the stream info holds no configuration",
		    STREAM_RETRY_S);
	else if (r == 0)
		stream_extend(a, config);
	json_decref(root);
	natsMsg_Destroy(reply);
}

static void
stream_info(struct advisory *a)
{
	char api[256];

	if (a->stream_request != 0)
		return;
	ev_timer_stop(a->loop, &a->stream_retry);
	snprintf(api, sizeof api, "$JS.API.STREAM.INFO.%s", a->opt->stream);
	a->stream_request = bus_request(
	    a->bus, api, NULL, 0, "", 0, API_TIMEOUT_NS, on_stream_info, a);
	if (a->stream_request == 0)
		stream_failed(a, "not connected", STREAM_RETRY_S);
}

static void
on_stream_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	stream_info(w->data);
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

struct advisory *
advisory_new(struct ev_loop *loop, struct bus *bus, const struct config *cfg,
    struct metrics *metrics)
{
	struct advisory *a;
	struct consumer_events cev;
	struct pull_events pev;
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
	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		const struct config_subscription *s =
		    config_subscription(cfg, i);
		struct watch *w = &a->watches[a->nwatches];

		if ((w->dlq = deadletter_of(s)) == NULL)
			continue;
		w->sub = s;
		snprintf(w->subject, sizeof w->subject, "%s%s.%s",
		    SUBJECT_PREFIX, s->stream, s->durable);
		a->nwatches++;
	}
	TAILQ_INIT(&a->jobs);
	register_metrics(a, metrics);

	/* Explicit acks, never given up on by the server, few at a time:
	 * each one is a read and a publish. */
	a->sub.name = "(advisories)";
	a->sub.stream = a->opt->stream;
	a->sub.durable = a->opt->durable;
	a->sub.consumer_policy = CONSUMER_POLICY_UPDATE;
	a->sub.deliver_policy = DELIVER_POLICY_ALL;
	a->sub.ack_wait = 30 * NS_PER_S;
	a->sub.max_deliver = -1;
	a->sub.max_in_flight = 16;
	a->sub.max_in_flight_bytes = 1024 * 1024;
	a->sub.pull_expires = 30 * NS_PER_S;
	a->sub.pull_heartbeat = 5 * NS_PER_S;
	cev = (struct consumer_events){ .bound = on_consumer_bound, .arg = a };
	pev = (struct pull_events){
		.message = on_pull_message, .lost = on_pull_lost, .arg = a
	};
	a->consumer = consumer_new(loop, bus, &a->sub, &cev);
	a->pull = pull_new(loop, bus, &a->sub, &pev);
	ev_timer_init(&a->stream_retry, on_stream_retry, 0, 0);
	a->stream_retry.data = a;
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
	ev_timer_stop(a->loop, &a->stream_retry);
	bus_request_cancel(a->bus, a->stream_request);
	/* Unfinished: straight back, for another pod. */
	while ((j = TAILQ_FIRST(&a->jobs)) != NULL)
		finish(j, "-NAK", OUTCOME_FAILED);
	pull_free(a->pull);
	consumer_free(a->consumer);
	free(a->stream_problem);
	free(a->watches);
	free(a);
}

void
advisory_connected(struct advisory *a)
{
	if (a == NULL)
		return;
	/* The stream may have been deleted while away: look again. */
	if (consumer_is_bound(a->consumer))
		pull_reset(a->pull);
	stream_info(a);
}
