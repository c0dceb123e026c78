/*
 * The app channel's transport-independent half: the list of apps, the
 * core's events, and the checks every transport shares.
 */
#include <stdlib.h>
#include <string.h>

#include "appchan.h"
#include "appsock.h"
#include "apptransport.h"
#include "log.h"
#include "xmalloc.h"

/* Longer subjects risk the NATS server's control line limit (4 KiB by
 * default), which would cost the whole connection. */
#define APPCHAN_SUBJECT_MAX 1024

struct appchan {
	struct appchan_events events;
	struct appsock *sock;
	TAILQ_HEAD(, app) apps;
	uint64_t last_id;
	size_t nready;
	uint64_t ndetached; /* lets appchan_flush() notice app_gone */
	bool draining;
	uint32_t grace_ms;
};

struct appchan *
appchan_new(struct ev_loop *loop, const struct config_app *cfg,
    const char *instance_id, const struct appchan_events *events)
{
	struct appchan *chan = xcalloc(1, sizeof *chan);

	chan->events = *events;
	TAILQ_INIT(&chan->apps);
	if ((chan->sock = appsock_new(chan, loop, cfg, instance_id)) == NULL) {
		free(chan);
		return NULL;
	}
	return chan;
}

/* Frees what the channel keeps about |app|. */
static void
app_release(struct app *app)
{
	for (size_t i = 0; i < app->nsubscriptions; i++)
		free(app->subscriptions[i]);
	free(app->subscriptions);
	free(app->name);
	app->subscriptions = NULL;
	app->nsubscriptions = 0;
	app->name = NULL;
}

void
appchan_free(struct appchan *chan)
{
	struct app *app;

	if (chan == NULL)
		return;
	while ((app = TAILQ_FIRST(&chan->apps)) != NULL) {
		TAILQ_REMOVE(&chan->apps, app, entry);
		app_release(app);
		app->ops->free(app);
	}
	appsock_free(chan->sock);
	free(chan);
}

int
appchan_send_delivery(
    struct app *app, const NatsSidecar__Channel__V1__Delivery *d)
{
	return app->ops->delivery(app, d);
}

void
appchan_send_publish_ack(
    struct app *app, const NatsSidecar__Channel__V1__PublishAck *ack)
{
	app->ops->publish_ack(app, ack);
}

void
appchan_send_error(struct app *app, NatsSidecar__Channel__V1__Error__Code code,
    const char *message, uint64_t ref_id, bool fatal)
{
	app->ops->error(app, code, message, ref_id, fatal);
}

void
appchan_drain(struct appchan *chan, uint32_t grace_ms)
{
	struct app *app;

	chan->draining = true;
	chan->grace_ms = grace_ms;
	appsock_stop(chan->sock);
	for (app = TAILQ_FIRST(&chan->apps); app != NULL;
	     app = TAILQ_NEXT(app, entry)) {
		if (app->ready)
			app->ops->drain(app, grace_ms);
	}
}

void
appchan_flush(struct appchan *chan)
{
	struct app *app, *next;
	uint64_t before;

	/* An app_gone handler may send to apps already flushed in this
	 * pass; go round again so nothing waits for the next wake-up. */
	do {
		before = chan->ndetached;
		for (app = TAILQ_FIRST(&chan->apps); app != NULL; app = next) {
			next = TAILQ_NEXT(app, entry);
			app->ops->flush(app);
		}
	} while (chan->ndetached != before);
}

size_t
appchan_ready_count(const struct appchan *chan)
{
	return chan->nready;
}

uint32_t
app_capacity(const struct app *app)
{
	return app->capacity;
}

const char *
app_name(const struct app *app)
{
	return app->name != NULL ? app->name : "";
}

uint64_t
app_id(const struct app *app)
{
	return app->id;
}

bool
app_serves(const struct app *app, const char *subscription)
{
	if (app->nsubscriptions == 0)
		return true;
	for (size_t i = 0; i < app->nsubscriptions; i++) {
		if (strcmp(app->subscriptions[i], subscription) == 0)
			return true;
	}
	return false;
}

void
app_set_data(struct app *app, void *data)
{
	app->data = data;
}

void *
app_data(const struct app *app)
{
	return app->data;
}

void
appchan_attach(struct appchan *chan, struct app *app, const struct app_ops *ops)
{
	app->ops = ops;
	app->chan = chan;
	app->id = ++chan->last_id;
	TAILQ_INSERT_TAIL(&chan->apps, app, entry);
}

void
appchan_ready(struct app *app, const char *name, uint32_t capacity,
    char *const *subscriptions, size_t nsubscriptions)
{
	struct appchan *chan = app->chan;

	app->name = xstrdup(name != NULL ? name : "");
	app->capacity = capacity;
	if (nsubscriptions > 0) {
		app->subscriptions = xreallocarray(
		    NULL, nsubscriptions, sizeof *app->subscriptions);
		for (size_t i = 0; i < nsubscriptions; i++)
			app->subscriptions[i] = xstrdup(subscriptions[i]);
		app->nsubscriptions = nsubscriptions;
	}
	app->ready = true;
	chan->nready++;
	log_debug("app.ready", "app %llu (%s) is ready, capacity %u",
	    (unsigned long long)app->id, app->name, capacity);
	if (chan->draining)
		app->ops->drain(app, chan->grace_ms);
	chan->events.app_ready(chan->events.arg, app);
}

void
appchan_result(struct app *app, const NatsSidecar__Channel__V1__Result *r)
{
	struct appchan *chan = app->chan;

	switch (r->outcome) {
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK:
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY:
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT:
	case NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS:
		chan->events.result(chan->events.arg, app, r);
		return;
	default:
		break;
	}
	log_warnx("app.invalid_result",
	    "app %llu (%s): result %llu has outcome %d",
	    (unsigned long long)app->id, app_name(app),
	    (unsigned long long)r->id, (int)r->outcome);
	app->ops->error(app,
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD,
	    "outcome must be ACK, RETRY, REJECT or IN_PROGRESS", r->id, false);
}

/* Returns why |s| cannot be published to, or NULL. */
static const char *
subject_problem(const char *s)
{
	size_t len = strlen(s), tok = 0;

	if (len == 0)
		return "subject is empty";
	if (len > APPCHAN_SUBJECT_MAX)
		return "subject is longer than 1024 bytes";
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' || c == '\0') {
			if (i == tok)
				return "subject has an empty token";
			if (i - tok == 1 && (s[tok] == '*' || s[tok] == '>'))
				return "subject has a wildcard token (* or >)";
			tok = i + 1;
		} else if (c <= ' ' || c == 0x7f)
			return "subject contains a space or control character";
	}
	return NULL;
}

/* Whether |s| may be a header value: no CR or LF, which would end it. */
static bool
header_value_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* Whether |s| may be a header name: printable ASCII other than ':'. */
static bool
header_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s <= ' ' || *s >= 0x7f || *s == ':')
			return false;
	}
	return true;
}

/* Returns why |p| cannot be published, or NULL. */
static const char *
publish_problem(const NatsSidecar__Channel__V1__Publish *p)
{
	const char *why;

	if ((why = subject_problem(p->subject)) != NULL)
		return why;
	for (size_t i = 0; i < p->n_headers; i++) {
		if (!header_name_ok(p->headers[i]->name))
			return "header name is empty or has a space, control "
			       "character, colon or non-ASCII byte";
		if (!header_value_ok(p->headers[i]->value))
			return "header value contains CR or LF";
	}
	if (!header_value_ok(p->message_id) ||
	    !header_value_ok(p->traceparent) || !header_value_ok(p->tracestate))
		return "message_id, traceparent or tracestate contains CR or "
		       "LF";
	return NULL;
}

void
appchan_publish(struct app *app, const NatsSidecar__Channel__V1__Publish *p)
{
	NatsSidecar__Channel__V1__PublishAck ack =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__INIT;
	struct appchan *chan = app->chan;
	const char *why;

	if ((why = publish_problem(p)) == NULL) {
		chan->events.publish(chan->events.arg, app, p);
		return;
	}
	log_warnx("app.invalid_publish", "app %llu (%s): publish %llu: %s",
	    (unsigned long long)app->id, app_name(app),
	    (unsigned long long)p->id, why);
	ack.id = p->id;
	ack.status = NATS_SIDECAR__CHANNEL__V1__PUBLISH_ACK__STATUS__INVALID;
	ack.error = (char *)why;
	app->ops->publish_ack(app, &ack);
}

void
appchan_detach(struct app *app)
{
	struct appchan *chan = app->chan;

	TAILQ_REMOVE(&chan->apps, app, entry);
	chan->ndetached++;
	if (app->ready) {
		app->ready = false;
		chan->nready--;
		chan->events.app_gone(chan->events.arg, app);
	}
	app_release(app);
}
