#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bus.h"
#include "delivery.h"
#include "dlq.h"
#include "filters/deadletter.h"
#include "jsapi.h"
#include "log.h"
#include "xmalloc.h"

#define NS_PER_S INT64_C(1000000000)
/* Room kept for the headers' framing beside their names and values. */
#define HEADER_SLACK 1024
#define STREAM_TIMEOUT_NS (5 * NS_PER_S)

struct dlq_wait {
	dlq_done_fn done;
	void *arg;
	char subject[256];
};

/* RFC 3339 with nanoseconds, UTC. */
static void
rfc3339(int64_t ns, char *buf, size_t cap)
{
	time_t secs = (time_t)(ns / NS_PER_S);
	struct tm tm;
	char date[32];

	gmtime_r(&secs, &tm);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%09" PRId64 "Z", date, ns % NS_PER_S);
}

/* Header values cannot hold line breaks: they become spaces. */
static char *
one_line(const char *s)
{
	char *v = xstrdup(s != NULL ? s : "");

	for (char *p = v; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	}
	return v;
}

static void
on_pub_ack(void *arg, natsMsg *reply)
{
	struct dlq_wait *w = arg;
	struct jsapi_pub_ack ack;
	struct jsapi_error e;
	char why[640];
	int r;

	if (reply == NULL)
		snprintf(
		    why, sizeof why, "no PubAck for %s in time", w->subject);
	else if (bus_msg_status(reply) == 503)
		snprintf(why, sizeof why, "no stream captures %s", w->subject);
	else if ((r = jsapi_pub_ack(natsMsg_GetData(reply),
		      (size_t)natsMsg_GetDataLength(reply), &ack, &e)) == 1)
		snprintf(why, sizeof why, "%s refused it: %s", w->subject,
		    e.description);
	else if (r == -1)
		snprintf(
		    why, sizeof why, "unreadable PubAck for %s", w->subject);
	else
		why[0] = '\0';
	w->done(w->arg, why[0] == '\0' ? NULL : why);
	bus_msg_free(reply);
	free(w);
}

/* Every value of every header of |d|'s message, at most 8 a name; the
 * caller frees the array. */
static struct bus_header *
delivery_headers(const struct delivery *d, size_t *np)
{
	const char **keys = NULL;
	int nkeys = 0;
	struct bus_header *h;
	size_t n = 0;

	natsMsgHeader_Keys(d->msg, &keys, &nkeys);
	h = xcalloc((size_t)nkeys * 8 + 1, sizeof *h);
	for (int i = 0; i < nkeys; i++) {
		const char **vals = NULL;
		int nvals = 0;

		natsMsgHeader_Values(d->msg, keys[i], &vals, &nvals);
		for (int j = 0; j < nvals && j < 8; j++)
			h[n++] = (struct bus_header){ keys[i], vals[j] };
		free(vals);
	}
	/* The names stay valid with the message; only the array goes. */
	free(keys);
	*np = n;
	return h;
}

uint64_t
dlq_publish(struct bus *bus, const struct deadletter_options *o,
    const struct delivery *d, const char *subject, struct filter_verdict v,
    const char *instance_id, int64_t timeout_ns, dlq_done_fn done, void *arg)
{
	struct dlq_source src = {
		.subject = delivery_subject(d),
		.stream = d->meta.stream,
		.consumer = d->meta.consumer,
		.stream_seq = d->meta.stream_seq,
		.deliveries = d->meta.num_delivered,
		.published_ns = d->meta.timestamp_ns,
		/* The message's own when valid, or the one the sidecar
		 * started for it. */
		.traceparent =
		    d->traceparent[0] != '\0' ? d->traceparent : NULL,
		.tracestate = delivery_tracestate(d),
	};
	struct bus_header *h = delivery_headers(d, &src.nheaders);
	uint64_t id;

	src.headers = h;
	src.payload = delivery_payload(d, &src.len);
	id = dlq_publish_source(
	    bus, o, &src, subject, v, instance_id, timeout_ns, done, arg);
	free(h);
	return id;
}

uint64_t
dlq_publish_source(struct bus *bus, const struct deadletter_options *o,
    const struct dlq_source *src, const char *subject, struct filter_verdict v,
    const char *instance_id, int64_t timeout_ns, dlq_done_fn done, void *arg)
{
	struct bus_header *h;
	char **owned, stream_seq[32], deliveries[32], published[48], failed[48],
	    msg_id[128], truncated[32];
	size_t nh = 0, nowned = 0, len = src->len, room, header_bytes = 0;
	struct dlq_wait *w;
	struct timespec now;
	uint64_t id;

	/* Each original value, under the prefix, plus trace context and ours.
	 */
	h = xcalloc(src->nheaders * 2 + 16, sizeof *h);
	owned = xcalloc(src->nheaders + 2, sizeof *owned);
	for (size_t i = 0; i < src->nheaders; i++) {
		const struct bus_header *oh = &src->headers[i];

		owned[nowned] = xasprintf("%s%s", o->header_prefix, oh->name);
		h[nh++] = (struct bus_header){ owned[nowned++], oh->value };
	}
	if (src->traceparent != NULL)
		h[nh++] =
		    (struct bus_header){ "traceparent", src->traceparent };
	if (src->tracestate != NULL)
		h[nh++] = (struct bus_header){ "tracestate", src->tracestate };
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(stream_seq, sizeof stream_seq, "%" PRIu64, src->stream_seq);
	snprintf(deliveries, sizeof deliveries, "%" PRIu64, src->deliveries);
	rfc3339(src->published_ns, published, sizeof published);
	rfc3339((int64_t)now.tv_sec * NS_PER_S + now.tv_nsec, failed,
	    sizeof failed);
	snprintf(msg_id, sizeof msg_id, "dlq:%s:%" PRIu64, src->stream,
	    src->stream_seq);
	owned[nowned] = one_line(v.text);
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Reason",
		filter_reason_name(v.reason) };
	h[nh++] =
	    (struct bus_header){ "Nats-Sidecar-Reason-Text", owned[nowned++] };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Subject", src->subject };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Stream", src->stream };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Sequence", stream_seq };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Consumer", src->consumer };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Deliveries", deliveries };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Published", published };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Failed", failed };
	h[nh++] = (struct bus_header){ "Nats-Sidecar-Instance", instance_id };
	h[nh++] = (struct bus_header){ "Nats-Msg-Id", msg_id };

	/* Too large to carry with its headers: cut it, and say so. */
	for (size_t i = 0; i < nh; i++)
		header_bytes += strlen(h[i].name) + strlen(h[i].value) + 4;
	room = (size_t)bus_max_payload(bus);
	room = room > header_bytes + HEADER_SLACK
	    ? room - header_bytes - HEADER_SLACK
	    : 0;
	if (len > room) {
		snprintf(truncated, sizeof truncated, "%zu", len);
		h[nh++] =
		    (struct bus_header){ "Nats-Sidecar-Truncated", truncated };
		len = room;
	}

	w = xcalloc(1, sizeof *w);
	w->done = done;
	w->arg = arg;
	snprintf(w->subject, sizeof w->subject, "%s", subject);
	id = bus_request(
	    bus, subject, h, nh, src->payload, len, timeout_ns, on_pub_ack, w);
	if (id == 0)
		free(w);
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(h);
	return id;
}

void
dlq_cancel(struct bus *bus, uint64_t id)
{
	free(bus_request_cancel(bus, id));
}

static void
on_stream_created(void *arg, natsMsg *reply)
{
	char *name = arg;
	struct jsapi_error e;
	int r = -1;

	if (reply != NULL)
		r = jsapi_error(natsMsg_GetData(reply),
		    (size_t)natsMsg_GetDataLength(reply), &e);
	if (r == 0)
		log_info("dlq.stream", "dead-letter stream %s is there", name);
	else if (r == 1)
		log_warnx("dlq.stream",
		    "cannot create dead-letter stream %s: %s (code %d)", name,
		    e.description, e.err_code);
	else
		log_warnx("dlq.stream",
		    "no answer creating dead-letter stream %s", name);
	bus_msg_free(reply);
	free(name);
}

void
dlq_create_stream(struct bus *bus, const struct deadletter_options *o)
{
	char subjects[256], api[256], *body, *name;
	json_t *req;

	if (o->stream == NULL)
		return;
	deadletter_stream_subjects(o, subjects, sizeof subjects);
	req = json_pack("{s:s, s:[s], s:s, s:I, s:I}", "name", o->stream,
	    "subjects", subjects, "storage", "file", "max_age",
	    (json_int_t)o->max_age, "duplicate_window",
	    (json_int_t)o->duplicate_window);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		fatalx("out of memory encoding a stream configuration");
	snprintf(api, sizeof api, "$JS.API.STREAM.CREATE.%s", o->stream);
	/* An existing stream of the same configuration answers as created;
	 * one that differs is reported and used as it is. */
	name = xstrdup(o->stream);
	if (bus_request(bus, api, NULL, 0, body, strlen(body),
		STREAM_TIMEOUT_NS, on_stream_created, name) == 0) {
		log_warnx("dlq.stream",
		    "cannot ask for dead-letter stream %s (not connected)",
		    o->stream);
		free(name);
	}
	free(body);
}
