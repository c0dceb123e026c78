/*
 * The client library for apps: the framed protocol of docs/protocol.md
 * over a blocking Unix socket, with poll() as the only wait.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"
#include "nsc.h"
#include "xmalloc.h"

#define NSC_HANDSHAKE_TIMEOUT_MS 5000
/* The sidecar counts as gone after this many heartbeat intervals of
 * silence (docs/protocol.md); the same bounds a flush that makes no
 * progress. */
#define NSC_SILENT_INTERVALS 3
/* A flush's bound when the sidecar asked for no heartbeats. */
#define NSC_STALL_MS 30000
#define NSC_CLOSE_FLUSH_MS 1000
#define NSC_READ_SIZE (64 * 1024)

typedef NatsSidecar__Channel__V1__Frame__BodyCase BodyCase;

struct nsc {
	int fd;
	struct buf in, out;
	size_t max_in; /* largest frame we accept */
	size_t max_out; /* largest frame the sidecar accepts */
	uint32_t heartbeat_ms;
	char *sidecar_version;
	char *instance_id;
	int64_t last_rx, last_tx; /* monotonic ms */
	bool eof; /* the sidecar closed its side */
	bool unwritable; /* ...and we found out by writing */
	bool closed; /* the connection is over */
	char *fatal; /* the message of a fatal Error frame */
	char error[256];
};

/* The result of waiting on the socket. */
enum pump {
	PUMP_OK,
	PUMP_LOST,
	PUMP_INTERRUPTED,
};

static enum pump nsc_pump(struct nsc *, int64_t until);

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records why a call failed; returns -1. */
static int __attribute__((format(printf, 2, 3)))
nsc_fail(struct nsc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	return -1;
}

/* Ends the connection for the reason given, once; returns -1. */
static int __attribute__((format(printf, 2, 3)))
nsc_lost(struct nsc *c, const char *fmt, ...)
{
	va_list ap;

	if (c->closed)
		return -1;
	c->closed = true;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	return -1;
}

/* Queues |f|; returns 0, or -1 if it exceeds the sidecar's limit. */
static int
nsc_queue(struct nsc *c, const Frame *f)
{
	if (frame_encode(f, c->max_out, &c->out) == 0)
		return nsc_fail(c,
		    "a frame of %zu bytes exceeds the sidecar's max_frame_size "
		    "%zu",
		    nats_sidecar__channel__v1__frame__get_packed_size(f),
		    c->max_out);
	c->last_tx = now_ms();
	return 0;
}

/* Says why the sidecar's side is closed; returns -1. */
static int
nsc_lost_eof(struct nsc *c)
{
	if (c->fatal != NULL)
		return nsc_lost(
		    c, "the sidecar closed the connection: %s", c->fatal);
	return nsc_lost(c, "the sidecar closed the connection");
}

/* Writes what the socket takes now; returns 0, or -1 once lost. */
static int
nsc_write(struct nsc *c)
{
	ssize_t n;

	while (buf_used(&c->out) > 0 && !c->unwritable) {
		n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET)) {
			/* What the sidecar sent before it closed is still
			 * to be read, up to the end it now shows. */
			c->unwritable = true;
			break;
		}
		return nsc_lost(
		    c, "cannot write to the sidecar: %s", strerror(errno));
	}
	if (c->unwritable)
		buf_clear(&c->out);
	return 0;
}

/* Writes everything queued, giving up after |stall| ms without
 * progress; returns 0 or -1. */
static int
nsc_write_all(struct nsc *c, int64_t stall)
{
	int64_t until = now_ms() + stall;
	size_t before;

	for (;;) {
		before = buf_used(&c->out);
		if (nsc_write(c) == -1)
			return -1;
		if (c->unwritable)
			return nsc_lost_eof(c);
		if (buf_used(&c->out) == 0)
			return 0;
		if (buf_used(&c->out) < before)
			until = now_ms() + stall;
		else if (now_ms() >= until)
			return nsc_lost(c,
			    "the sidecar read nothing for %lld ms",
			    (long long)stall);
		if (nsc_pump(c, until) == PUMP_LOST)
			return -1;
	}
}

/* Reads what the socket holds now; returns 0, or -1 once lost. */
static int
nsc_read(struct nsc *c)
{
	ssize_t n;

	while (!c->eof) {
		n = recv(c->fd, buf_reserve(&c->in, NSC_READ_SIZE),
		    NSC_READ_SIZE, MSG_DONTWAIT);
		if (n > 0) {
			buf_commit(&c->in, (size_t)n);
			c->last_rx = now_ms();
			if (n < NSC_READ_SIZE)
				return 0;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			/* Frames already read still count. */
			c->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return nsc_lost(
		    c, "cannot read from the sidecar: %s", strerror(errno));
	}
	return 0;
}

/* Waits until the socket can be read (and reads it) or |until| (ms, -1:
 * never) comes, writing queued output meanwhile. */
static enum pump
nsc_pump(struct nsc *c, int64_t until)
{
	struct pollfd pfd = { .fd = c->fd };
	int64_t now = now_ms();
	int wait = -1;

	if (nsc_write(c) == -1)
		return PUMP_LOST;
	if (!c->eof)
		pfd.events |= POLLIN;
	if (buf_used(&c->out) > 0)
		pfd.events |= POLLOUT;
	if (until >= 0)
		wait = until <= now	    ? 0
		    : until - now > INT_MAX ? INT_MAX
					    : (int)(until - now);
	if (poll(&pfd, 1, wait) == -1) {
		if (errno == EINTR)
			return PUMP_INTERRUPTED;
		nsc_lost(c, "poll: %s", strerror(errno));
		return PUMP_LOST;
	}
	if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && nsc_read(c) == -1)
		return PUMP_LOST;
	if ((pfd.revents & POLLOUT) && nsc_write(c) == -1)
		return PUMP_LOST;
	return PUMP_OK;
}

/* The name of a frame kind, as in the .proto file. */
static const char *
body_name(BodyCase kind)
{
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field(
		&nats_sidecar__channel__v1__frame__descriptor, (unsigned)kind);

	return fd != NULL ? fd->name : "unknown";
}

/* Takes the next whole frame off the input; returns 1 with |*out| set, 0
 * if there is none yet, -1 once lost. */
static int
nsc_frame(struct nsc *c, Frame **out)
{
	const uint8_t *p = buf_head(&c->in);
	size_t used;

	switch (frame_decode(p, buf_used(&c->in), c->max_in, out, &used)) {
	case FRAME_OK:
		buf_consume(&c->in, used);
		return 1;
	case FRAME_NEED_MORE:
		return 0;
	case FRAME_TOO_LARGE:
		return nsc_lost(c,
		    "the sidecar sent a frame of %lu bytes, above "
		    "max_frame_size %zu",
		    (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
			(unsigned long)p[2] << 8 | (unsigned long)p[3],
		    c->max_in);
	case FRAME_MALFORMED:
		break;
	}
	return nsc_lost(
	    c, "the sidecar sent a frame that is not a valid Frame");
}

/* Fills |ev| from a Delivery frame. */
static void
event_delivery(
    struct nsc_event *ev, const NatsSidecar__Channel__V1__Delivery *d)
{
	struct nsc_delivery *e = &ev->delivery;

	ev->kind = NSC_EVENT_DELIVERY;
	e->id = d->id;
	e->subscription = d->subscription;
	e->subject = d->subject;
	if (d->n_headers > 0) {
		ev->priv_headers =
		    xreallocarray(NULL, d->n_headers, sizeof *ev->priv_headers);
		for (size_t i = 0; i < d->n_headers; i++) {
			ev->priv_headers[i].name = d->headers[i]->name;
			ev->priv_headers[i].value = d->headers[i]->value;
		}
	}
	e->headers = ev->priv_headers;
	e->nheaders = d->n_headers;
	/* Never NULL, so that an empty payload can be copied as is. */
	e->payload = d->payload.len > 0 ? (const void *)d->payload.data : "";
	e->payload_len = d->payload.len;
	e->content_type = d->content_type;
	e->schema_version = d->schema_version;
	e->attempt = d->attempt;
	e->stream_sequence = d->stream_sequence;
	e->message_id = d->message_id;
	e->traceparent = d->traceparent;
	e->tracestate = d->tracestate;
	e->published_at_ns = d->published_at_ns;
	e->stream = d->stream;
	e->processing_timeout_ms = d->processing_timeout_ms;
}

/* Turns |f| into |ev| (which takes it over); returns 1 if it is an
 * event, 0 if it was consumed quietly, -1 once lost. */
static int
nsc_event_from(struct nsc *c, Frame *f, struct nsc_event *ev)
{
	switch (f->body_case) {
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY:
		event_delivery(ev, f->delivery);
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK:
		ev->kind = NSC_EVENT_PUBLISH_ACK;
		ev->publish_ack.id = f->publish_ack->id;
		ev->publish_ack.status =
		    (enum nsc_publish_status)f->publish_ack->status;
		ev->publish_ack.stream = f->publish_ack->stream;
		ev->publish_ack.sequence = f->publish_ack->sequence;
		ev->publish_ack.duplicate = f->publish_ack->duplicate;
		ev->publish_ack.error = f->publish_ack->error;
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR:
		ev->kind = NSC_EVENT_ERROR;
		ev->error.code = (enum nsc_error_code)f->error->code;
		ev->error.message = f->error->message;
		ev->error.ref_id = f->error->ref_id;
		ev->error.fatal = f->error->fatal;
		/* Kept to say why the connection ends. */
		if (f->error->fatal && c->fatal == NULL)
			c->fatal = xstrdup(f->error->message);
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DRAIN:
		ev->kind = NSC_EVENT_DRAIN;
		ev->drain.grace_ms = f->drain->grace_ms;
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT:
		frame_free(f);
		return 0;
	default:
		nsc_lost(c, "the sidecar sent an unexpected %s frame",
		    body_name(f->body_case));
		frame_free(f);
		return -1;
	}
	ev->priv_frame = f;
	return 1;
}

/* Sends Hello and waits up to |timeout| ms for the Welcome; returns 0 or
 * -1. */
static int
nsc_handshake(struct nsc *c, const struct nsc_options *opts, int timeout)
{
	NatsSidecar__Channel__V1__Hello h =
	    NATS_SIDECAR__CHANNEL__V1__HELLO__INIT;
	Frame hf = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT, *f = NULL;
	const NatsSidecar__Channel__V1__Welcome *w;
	int64_t until = now_ms() + timeout;
	size_t nsubs = 0;
	int rc = -1;

	h.protocol_version = FRAME_PROTOCOL_VERSION;
	h.capacity = opts->capacity > 0 ? opts->capacity : 1;
	h.max_frame_size = opts->max_frame_size;
	h.app_name = (char *)(opts->app_name != NULL ? opts->app_name : "");
	if (opts->subscriptions != NULL)
		while (opts->subscriptions[nsubs] != NULL)
			nsubs++;
	h.subscriptions = (char **)opts->subscriptions;
	h.n_subscriptions = nsubs;
	hf.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HELLO;
	hf.hello = &h;
	if (nsc_queue(c, &hf) == -1)
		return -1;

	for (;;) {
		int got = nsc_frame(c, &f);

		if (got == -1)
			return -1;
		if (got == 1)
			break;
		if (c->eof)
			return nsc_lost_eof(c);
		if (now_ms() >= until)
			return nsc_lost(c,
			    "the sidecar did not answer hello within %d ms",
			    timeout);
		if (nsc_pump(c, until) == PUMP_LOST)
			return -1;
	}
	switch (f->body_case) {
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME:
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR:
		nsc_lost(c, "the sidecar refused the connection: %s",
		    f->error->message);
		goto out;
	default:
		nsc_lost(c, "the sidecar answered hello with a %s frame",
		    body_name(f->body_case));
		goto out;
	}
	w = f->welcome;
	if (w->protocol_version != FRAME_PROTOCOL_VERSION) {
		nsc_lost(c, "the sidecar speaks protocol version %u, not %d",
		    w->protocol_version, FRAME_PROTOCOL_VERSION);
		goto out;
	}
	c->max_out =
	    w->max_frame_size != 0 ? w->max_frame_size : FRAME_DEFAULT_MAX;
	c->heartbeat_ms = w->heartbeat_interval_ms;
	c->sidecar_version = xstrdup(w->sidecar_version);
	c->instance_id = xstrdup(w->instance_id);
	rc = 0;
out:
	frame_free(f);
	return rc;
}

/* Opens a socket connected to |path|; returns it, or -1 with the reason
 * in |c|. */
static int
nsc_dial(struct nsc *c, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd;

	if (len == 0 || len >= sizeof sun.sun_path)
		return nsc_fail(c,
		    "socket path \"%s\" must have 1 to %zu bytes", path,
		    sizeof sun.sun_path - 1);
	memcpy(sun.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return nsc_fail(c, "socket: %s", strerror(errno));
	/* A Unix socket connects at once or not at all. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		nsc_fail(c, "cannot connect to %s: %s", path,
		    errno == EAGAIN ? "the sidecar accepts no more connections"
				    : strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct nsc *
nsc_connect(const char *path, const struct nsc_options *opts, char **err)
{
	static const struct nsc_options defaults;
	struct nsc *c = xcalloc(1, sizeof *c);
	int timeout;

	if (opts == NULL)
		opts = &defaults;
	timeout = opts->handshake_timeout_ms > 0 ? opts->handshake_timeout_ms
						 : NSC_HANDSHAKE_TIMEOUT_MS;
	c->max_in = opts->max_frame_size != 0 ? opts->max_frame_size
					      : FRAME_DEFAULT_MAX;
	c->max_out = FRAME_DEFAULT_MAX;
	c->last_rx = c->last_tx = now_ms();
	if ((c->fd = nsc_dial(c, path)) == -1)
		goto fail;
	if (nsc_handshake(c, opts, timeout) == -1)
		goto fail;
	return c;

fail:
	if (err != NULL)
		*err = xstrdup(c->error);
	c->closed = true;
	nsc_close(c);
	return NULL;
}

void
nsc_close(struct nsc *c)
{
	if (c == NULL)
		return;
	if (!c->closed)
		(void)nsc_write_all(c, NSC_CLOSE_FLUSH_MS);
	if (c->fd != -1)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->sidecar_version);
	free(c->instance_id);
	free(c->fatal);
	free(c);
}

int
nsc_fd(const struct nsc *c)
{
	return c->fd;
}

uint32_t
nsc_heartbeat_ms(const struct nsc *c)
{
	return c->heartbeat_ms;
}

const char *
nsc_sidecar_version(const struct nsc *c)
{
	return c->sidecar_version;
}

const char *
nsc_instance_id(const struct nsc *c)
{
	return c->instance_id;
}

const char *
nsc_last_error(const struct nsc *c)
{
	return c->error;
}

void
nsc_event_clear(struct nsc_event *ev)
{
	frame_free(ev->priv_frame);
	free(ev->priv_headers);
	memset(ev, 0, sizeof *ev);
}

/* Queues a heartbeat if nothing was sent for an interval. */
static void
nsc_heartbeat(struct nsc *c, int64_t now)
{
	NatsSidecar__Channel__V1__Heartbeat hb =
	    NATS_SIDECAR__CHANNEL__V1__HEARTBEAT__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	if (c->heartbeat_ms == 0 || now - c->last_tx < c->heartbeat_ms)
		return;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT;
	f.heartbeat = &hb;
	/* An empty frame always fits. */
	(void)nsc_queue(c, &f);
}

/* The earlier of two deadlines, -1 standing for none. */
static int64_t
earliest(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int
nsc_next(struct nsc *c, int timeout_ms, struct nsc_event *ev)
{
	int64_t now, until, wake, silent;
	Frame *f;
	int got;

	nsc_event_clear(ev);
	if (c->closed)
		return NSC_NEXT_CLOSED;
	until = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	silent = (int64_t)NSC_SILENT_INTERVALS * c->heartbeat_ms;
	for (bool first = true;; first = false) {
		while ((got = nsc_frame(c, &f)) == 1) {
			got = nsc_event_from(c, f, ev);
			if (got == 1)
				return NSC_NEXT_EVENT;
			if (got == -1)
				return NSC_NEXT_CLOSED;
		}
		if (got == -1)
			return NSC_NEXT_CLOSED;
		if (c->eof) {
			nsc_lost_eof(c);
			return NSC_NEXT_CLOSED;
		}
		now = now_ms();
		/* Silence counts only once the socket was read in this call:
		 * what waited there while the app was busy is not silence. */
		if (!first && silent > 0 && now - c->last_rx >= silent) {
			nsc_lost(c, "the sidecar sent nothing for %lld ms",
			    (long long)(now - c->last_rx));
			return NSC_NEXT_CLOSED;
		}
		nsc_heartbeat(c, now);
		/* The socket is read at least once, even with no timeout. */
		if (!first && until >= 0 && now >= until)
			return nsc_write(c) == -1 ? NSC_NEXT_CLOSED
						  : NSC_NEXT_TIMEOUT;
		wake = until;
		if (c->heartbeat_ms > 0)
			wake = earliest(wake,
			    earliest(c->last_tx + c->heartbeat_ms,
				c->last_rx + silent));
		switch (nsc_pump(c, wake)) {
		case PUMP_OK:
			break;
		case PUMP_LOST:
			return NSC_NEXT_CLOSED;
		case PUMP_INTERRUPTED:
			return NSC_NEXT_TIMEOUT;
		}
	}
}

/* Queues a Result. */
static int
nsc_result(struct nsc *c, uint64_t id,
    NatsSidecar__Channel__V1__Result__Outcome outcome, uint32_t delay_ms,
    const char *reason)
{
	NatsSidecar__Channel__V1__Result r =
	    NATS_SIDECAR__CHANNEL__V1__RESULT__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	/* After the end, the reason for it stays the error. */
	if (c->closed)
		return -1;
	r.id = id;
	r.outcome = outcome;
	r.retry_delay_ms = delay_ms;
	r.reason = (char *)(reason != NULL ? reason : "");
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_RESULT;
	f.result = &r;
	return nsc_queue(c, &f);
}

int
nsc_ack(struct nsc *c, uint64_t id)
{
	return nsc_result(
	    c, id, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK, 0, NULL);
}

int
nsc_retry(struct nsc *c, uint64_t id, uint32_t delay_ms, const char *reason)
{
	return nsc_result(c, id,
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__RETRY, delay_ms,
	    reason);
}

int
nsc_reject(struct nsc *c, uint64_t id, const char *reason)
{
	return nsc_result(c, id,
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT, 0, reason);
}

int
nsc_in_progress(struct nsc *c, uint64_t id)
{
	return nsc_result(c, id,
	    NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__IN_PROGRESS, 0, NULL);
}

int
nsc_publish(struct nsc *c, uint64_t id, const char *subject,
    const struct nsc_header *headers, size_t nheaders, const void *payload,
    size_t len, const char *msg_id, const char *traceparent)
{
	NatsSidecar__Channel__V1__Publish p =
	    NATS_SIDECAR__CHANNEL__V1__PUBLISH__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	NatsSidecar__Channel__V1__Header *hv = NULL, **hp = NULL;
	int rc;

	/* After the end, the reason for it stays the error. */
	if (c->closed)
		return -1;
	if (subject == NULL || (nheaders > 0 && headers == NULL) ||
	    (len > 0 && payload == NULL))
		return nsc_fail(c,
		    "publish %llu: subject, headers or payload "
		    "missing",
		    (unsigned long long)id);
	/* Nothing larger than the frame limit is worth allocating for. */
	if (nheaders > c->max_out / 4)
		return nsc_fail(c,
		    "publish %llu: %zu headers cannot fit a frame",
		    (unsigned long long)id, nheaders);
	if (nheaders > 0) {
		hv = xreallocarray(NULL, nheaders, sizeof *hv);
		hp = xreallocarray(NULL, nheaders, sizeof *hp);
	}
	for (size_t i = 0; i < nheaders; i++) {
		nats_sidecar__channel__v1__header__init(&hv[i]);
		hv[i].name = (char *)headers[i].name;
		hv[i].value = (char *)headers[i].value;
		hp[i] = &hv[i];
	}
	p.id = id;
	p.subject = (char *)subject;
	p.headers = hp;
	p.n_headers = nheaders;
	p.payload.data = (uint8_t *)payload;
	p.payload.len = len;
	p.message_id = (char *)(msg_id != NULL ? msg_id : "");
	p.traceparent = (char *)(traceparent != NULL ? traceparent : "");
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH;
	f.publish = &p;
	rc = nsc_queue(c, &f);
	free(hv);
	free(hp);
	return rc;
}

int
nsc_flush(struct nsc *c)
{
	if (c->closed)
		return -1;
	return nsc_write_all(c,
	    c->heartbeat_ms > 0
		? (int64_t)NSC_SILENT_INTERVALS * c->heartbeat_ms
		: NSC_STALL_MS);
}
