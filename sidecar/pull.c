#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "bus.h"
#include "config.h"
#include "jsapi.h"
#include "log.h"
#include "pull.h"
#include "xmalloc.h"

/* Requests tracked at once: enough to keep the pipe full, far below the
 * consumer's max_waiting shared by every pod. A request that filled its
 * batch ends without a word, so when the table is full the oldest one is
 * taken as finished. */
#define PULL_MAX_LIVE 8
/* After the server refused a request, wait this long before the next. */
#define PULL_PAUSE_S 1.0

struct request {
	uint64_t id;
	int64_t batch;
	int64_t max_bytes; /* 0: unlimited */
	ev_tstamp deadline;
};

struct pull {
	struct ev_loop *loop;
	struct bus *bus;
	const struct config_subscription *sub;
	struct pull_events events;
	char subject[256]; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */

	uint64_t inbox;
	uint64_t drained_inbox; /* stopped, still delivering its last ones */
	const char *prefix;
	bool running;
	struct request live[PULL_MAX_LIVE];
	size_t nlive;
	uint64_t next_id;
	int64_t outstanding;
	int64_t outstanding_bytes;
	/* A request was refused because the next message needs more than
	 * this many bytes: none is sent again until more are free. At the
	 * whole byte budget, it comes alone once nothing is held. */
	int64_t needs_more_than;
	ev_tstamp paused_until;
	ev_tstamp last_activity;
	ev_timer watchdog;
	size_t held, held_bytes;
	char *problem; /* last refusal logged, to log each kind once */
	struct pull_stats stats;
};

static void
pull_problem(struct pull *p, const char *why)
{
	if (p->problem != NULL && strcmp(p->problem, why) == 0)
		return;
	log_warnx("pull.refused", "subscription %s: %s", p->sub->name, why);
	free(p->problem);
	p->problem = xstrdup(why);
}

static void
forget_requests(struct pull *p)
{
	p->nlive = 0;
	p->outstanding = 0;
	p->outstanding_bytes = 0;
}

/* Removes live request |i|, keeping the table in sending order. */
static void
end_request(struct pull *p, size_t i, int64_t unfilled, int64_t unfilled_bytes)
{
	p->outstanding -= unfilled;
	p->outstanding_bytes -= unfilled_bytes;
	if (p->outstanding < 0)
		p->outstanding = 0;
	if (p->outstanding_bytes < 0)
		p->outstanding_bytes = 0;
	memmove(&p->live[i], &p->live[i + 1],
	    (p->nlive - i - 1) * sizeof p->live[0]);
	p->nlive--;
	/* With no request left, nothing more can come. */
	if (p->nlive == 0)
		forget_requests(p);
}

static void pull_on_msg(void *arg, natsMsg *msg);

/* A new inbox replaces the old one, which is closed only once the new
 * one is open (its prefix string goes with it). */
static int
reopen_inbox(struct pull *p)
{
	const char *prefix;
	uint64_t id = bus_inbox_open(p->bus, pull_on_msg, p, &prefix);

	if (id == 0)
		return -1;
	bus_inbox_close(p->bus, p->inbox);
	p->inbox = id;
	p->prefix = prefix;
	return 0;
}

static void
send_request(struct pull *p, int64_t batch, int64_t max_bytes)
{
	const struct config_subscription *s = p->sub;
	char reply[128], body[256];
	struct request *r;
	size_t len;

	len = jsapi_pull_request(body, sizeof body, batch, s->pull_expires,
	    s->pull_heartbeat, max_bytes);
	snprintf(reply, sizeof reply, "%s.%" PRIu64, p->prefix, ++p->next_id);
	if (bus_publish(p->bus, p->subject, reply, body, len) == -1)
		return; /* not connected: the reconnect resets and refills */
	if (p->nlive == 0)
		p->last_activity = ev_now(p->loop);
	if (p->nlive == PULL_MAX_LIVE)
		end_request(p, 0, 0, 0);
	r = &p->live[p->nlive++];
	r->id = p->next_id;
	r->batch = batch;
	r->max_bytes = max_bytes;
	r->deadline = ev_now(p->loop) +
	    (double)(s->pull_expires + s->pull_heartbeat) / 1e9;
	p->outstanding += batch;
	p->outstanding_bytes += max_bytes;
	p->stats.requests++;
	if (p->events.requested != NULL)
		p->events.requested(p->events.arg, batch);
	log_debug("pull.request",
	    "subscription %s: request %" PRIu64 " for %" PRId64
	    " messages, %" PRId64 " bytes (held %zu, live %zu)",
	    s->name, r->id, batch, max_bytes, p->held, p->nlive);
}

void
pull_refill(struct pull *p, size_t held, size_t held_bytes, int64_t window)
{
	const struct config_subscription *s = p->sub;
	int64_t free_msgs, free_bytes, low_water;

	p->held = held;
	p->held_bytes = held_bytes;
	if (!p->running || ev_now(p->loop) < p->paused_until)
		return;
	if (window > s->max_in_flight)
		window = s->max_in_flight;
	free_msgs = window - (int64_t)held - p->outstanding;
	free_bytes =
	    s->max_in_flight_bytes - (int64_t)held_bytes - p->outstanding_bytes;
	/* Top up before the credits run dry, but not one message at a time. */
	low_water = window / 4 > 0 ? window / 4 : 1;
	if (free_msgs <= 0 || (p->nlive > 0 && free_msgs < low_water))
		return;
	/* The large one's request (the only one without max_bytes) stays
	 * alone until it has come: a request sent beside it would meet the
	 * next large one, while it, filled in silence, looked alive. */
	if (p->nlive > 0 && p->live[0].max_bytes == 0)
		return;
	if (p->needs_more_than >= s->max_in_flight_bytes) {
		/* Nothing held, nothing coming: take the large one alone. */
		if (held == 0 && p->nlive == 0) {
			send_request(p, 1, 0);
			if (p->nlive > 0)
				p->needs_more_than = 0;
		}
		return;
	}
	if (free_bytes < s->max_in_flight_bytes / 4 ||
	    free_bytes <= p->needs_more_than)
		return;
	p->needs_more_than = 0;
	send_request(p, free_msgs, free_bytes);
}

static int64_t
header_int(natsMsg *msg, const char *name)
{
	const char *v = bus_msg_header(msg, name);

	return v != NULL ? strtoll(v, NULL, 10) : -1;
}

static void
on_status(struct pull *p, natsMsg *msg, int status)
{
	const char *subj = natsMsg_GetSubject(msg), *desc;
	size_t plen = strlen(p->prefix), i;
	int64_t unfilled, unfilled_bytes;
	uint64_t id;
	char *why;

	if (status == 503) {
		/* No JetStream behind the API (the bus cannot say for which
		 * request): none will bring anything; do not ask at once. */
		pull_problem(p, "no responders: JetStream is not available");
		p->paused_until = ev_now(p->loop) + PULL_PAUSE_S;
		forget_requests(p);
		return;
	}
	if (strncmp(subj, p->prefix, plen) != 0 || subj[plen] != '.')
		return;
	id = strtoull(subj + plen + 1, NULL, 10);
	for (i = 0; i < p->nlive && p->live[i].id != id; i++)
		;
	if (i == p->nlive || status == 100)
		return; /* a heartbeat, or a request already given up on */

	desc = bus_msg_header(msg, "Description");
	if (desc == NULL)
		desc = "";
	log_debug("pull.status", "subscription %s: request %" PRIu64 ": %d %s",
	    p->sub->name, id, status, desc);
	unfilled = header_int(msg, "Nats-Pending-Messages");
	unfilled_bytes = header_int(msg, "Nats-Pending-Bytes");
	if (status == 409 && strstr(desc, "Consumer Deleted") != NULL) {
		forget_requests(p);
		p->events.lost(p->events.arg, "the consumer was deleted");
		return;
	}
	/* The next message does not fit what this request had left: asking
	 * again before more bytes are free would be refused the same way, a
	 * round trip after another while the app holds the rest. Refused
	 * the whole budget with nothing delivered, it is larger than the
	 * budget itself. */
	if (status == 409 && strstr(desc, "Exceeds MaxBytes") != NULL)
		p->needs_more_than =
		    unfilled_bytes >= 0 ? unfilled_bytes : p->live[i].max_bytes;
	if (status == 400 ||
	    (status == 409 && strstr(desc, "Exceeded") != NULL)) {
		/* The request was refused whole: nothing of it will come. */
		why = xasprintf("pull request refused: %d %s", status, desc);
		pull_problem(p, why);
		free(why);
		p->paused_until = ev_now(p->loop) + PULL_PAUSE_S;
		unfilled = p->live[i].batch;
		unfilled_bytes = p->live[i].max_bytes;
	}
	end_request(p, i, unfilled > 0 ? unfilled : 0,
	    unfilled_bytes > 0 ? unfilled_bytes : 0);
}

static void
pull_on_msg(void *arg, natsMsg *msg)
{
	struct pull *p = arg;
	const char *reply = natsMsg_GetReply(msg);
	int64_t size;

	p->last_activity = ev_now(p->loop);
	if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0) {
		on_status(p, msg, bus_msg_status(msg));
		bus_msg_free(msg);
		return;
	}
	size = (int64_t)bus_msg_size(msg);
	p->outstanding = p->outstanding > 0 ? p->outstanding - 1 : 0;
	p->outstanding_bytes =
	    p->outstanding_bytes > size ? p->outstanding_bytes - size : 0;
	/* Every batch is filled: those requests ended without a word. */
	if (p->outstanding == 0)
		forget_requests(p);
	p->stats.messages++;
	p->events.message(p->events.arg, msg, (size_t)size);
}

/* Ends requests past their deadline; declares the pull dead after two
 * heartbeats of silence while requests are alive. */
static void
on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pull *p = w->data;
	ev_tstamp now = ev_now(loop);
	double hb = (double)p->sub->pull_heartbeat / 1e9;

	for (size_t i = 0; i < p->nlive;) {
		if (p->live[i].deadline <= now) {
			p->stats.expired++;
			end_request(p, i, 0, 0);
		} else
			i++;
	}
	/* Waiting requests get heartbeats; silence means they are gone. */
	if (p->outstanding > 0 && now - p->last_activity > 2 * hb) {
		p->stats.dead++;
		forget_requests(p);
		if (p->running)
			reopen_inbox(p);
		p->events.lost(p->events.arg,
		    "no heartbeat from the server for two intervals");
		return;
	}
	/* The refill follows in this loop turn, with what is held now. */
}

struct pull *
pull_new(struct ev_loop *loop, struct bus *bus,
    const struct config_subscription *sub, const struct pull_events *ev)
{
	struct pull *p = xcalloc(1, sizeof *p);
	double hb = (double)sub->pull_heartbeat / 1e9;

	p->loop = loop;
	p->bus = bus;
	p->sub = sub;
	p->events = *ev;
	snprintf(p->subject, sizeof p->subject,
	    "$JS.API.CONSUMER.MSG.NEXT.%s.%s", sub->stream, sub->durable);
	ev_timer_init(&p->watchdog, on_watchdog, hb, hb);
	p->watchdog.data = p;
	return p;
}

void
pull_free(struct pull *p)
{
	if (p == NULL)
		return;
	pull_stop(p);
	bus_inbox_close(p->bus, p->drained_inbox);
	free(p->problem);
	free(p);
}

int
pull_start(struct pull *p)
{
	if (p->running) {
		pull_reset(p);
		return p->running ? 0 : -1;
	}
	forget_requests(p);
	p->inbox = bus_inbox_open(p->bus, pull_on_msg, p, &p->prefix);
	if (p->inbox == 0)
		return -1;
	p->running = true;
	ev_timer_again(p->loop, &p->watchdog);
	return 0;
}

void
pull_stop(struct pull *p)
{
	if (!p->running)
		return;
	p->running = false;
	ev_timer_stop(p->loop, &p->watchdog);
	bus_inbox_drain(p->bus, p->inbox);
	p->drained_inbox = p->inbox;
	p->inbox = 0;
	forget_requests(p);
}

bool
pull_drained(const struct pull *p)
{
	return !p->running && bus_inbox_done(p->bus, p->drained_inbox);
}

void
pull_reset(struct pull *p)
{
	forget_requests(p);
	p->paused_until = 0;
	p->needs_more_than = 0;
	/* A new inbox: requests the server still queues for the old one find
	 * no interest and bring nothing beyond the credits. */
	if (p->running && reopen_inbox(p) == -1)
		pull_stop(p);
}

void
pull_stats(const struct pull *p, struct pull_stats *st)
{
	*st = p->stats;
	st->outstanding = p->outstanding;
	st->outstanding_bytes = p->outstanding_bytes;
	st->live = p->nlive;
}
