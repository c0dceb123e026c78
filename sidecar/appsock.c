/*
 * The Unix-socket transport of the app channel: accepts connections, reads
 * and decodes frames, runs the handshake, heartbeats and dead-app
 * detection, and writes queued frames when the channel flushes.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "appsock.h"
#include "apptransport.h"
#include "buf.h"
#include "config.h"
#include "frame.h"
#include "log.h"
#include "xmalloc.h"

/* Bytes asked for per read, and reads per readiness event, so that one
 * busy app cannot starve the others. */
#define APPSOCK_READ_SIZE (64 * 1024)
#define APPSOCK_READS_PER_EVENT 4
#define APPSOCK_ACCEPTS_PER_EVENT 16
/* Limits on Hello.max_frame_size other than 0. */
#define APPSOCK_FRAME_MIN 1024
#define APPSOCK_FRAME_MAX (64 * 1024 * 1024)
/* Text we put in frames is cut to this, so it always fits. */
#define APPSOCK_TEXT_MAX 512
/* How long a connection told to go may take to read its last frame. */
#define APPSOCK_LINGER 1.0
/* Pause after accept() fails for lack of descriptors or memory. */
#define APPSOCK_ACCEPT_RETRY 1.0

typedef NatsSidecar__Channel__V1__Frame__BodyCase BodyCase;

struct appsock {
	struct appchan *chan;
	struct ev_loop *loop;
	const struct config_app *cfg;
	const char *instance_id;
	int fd;
	dev_t dev; /* of the socket file, to remove only our own */
	ino_t ino;
	ev_io accept_io;
	ev_timer accept_retry;
	size_t nconns;
};

enum sockapp_state {
	SOCKAPP_HELLO, /* waiting for Hello */
	SOCKAPP_READY, /* handshake done */
	SOCKAPP_CLOSING, /* told to go: writing its last frames */
};

struct sockapp {
	struct app app; /* first: the channel's view */
	struct appsock *sock;
	int fd;
	enum sockapp_state state;
	size_t max_frame; /* largest frame the app accepts */
	struct buf in, out;
	ev_io rio, wio;
	ev_timer timer; /* heartbeat, dead app, linger */
	ev_tstamp last_rx, last_tx;
};

static const struct app_ops sockapp_ops;

/* The app's id and name for log lines. */
#define SOCKAPP_FMT "app %llu (%s)"
#define SOCKAPP_ARGS(c)                                                        \
	(unsigned long long)(c)->app.id,                                       \
	    (c)->app.name != NULL ? (c)->app.name : "before hello"

/* Copies |s| into |tmp| cut to APPSOCK_TEXT_MAX bytes on a UTF-8
 * character boundary; returns |s| itself when it is short enough. */
static const char *
text_cut(const char *s, char tmp[APPSOCK_TEXT_MAX + 1])
{
	size_t n = strlen(s);

	if (n <= APPSOCK_TEXT_MAX)
		return s;
	n = APPSOCK_TEXT_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return tmp;
}

/* Queues |f|; returns 0, or -1 if it exceeds the app's frame limit. */
static int
sockapp_queue(struct sockapp *c, const Frame *f)
{
	if (frame_encode(f, c->max_frame, &c->out) == 0)
		return -1;
	c->last_tx = ev_now(c->sock->loop);
	return 0;
}

/* Frees everything the connection holds, raising nothing. */
static void
sockapp_destroy(struct sockapp *c)
{
	struct ev_loop *loop = c->sock->loop;

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	c->sock->nconns--;
	free(c);
}

/* Closes the connection for the reason |why|; raises app_gone if the app
 * was ready. */
static void
sockapp_close(struct sockapp *c, const char *why)
{
	if (c->app.ready)
		log_info("app.gone", SOCKAPP_FMT " %s", SOCKAPP_ARGS(c), why);
	else
		log_debug("app.gone", SOCKAPP_FMT " %s", SOCKAPP_ARGS(c), why);
	c->state = SOCKAPP_CLOSING;
	appchan_detach(&c->app);
	sockapp_destroy(c);
}

/* Sets the timer to the earliest of what it watches. */
static void
sockapp_arm(struct sockapp *c)
{
	const struct config_app *cfg = c->sock->cfg;
	struct ev_loop *loop = c->sock->loop;
	ev_tstamp at, now = ev_now(loop);

	ev_timer_stop(loop, &c->timer);
	if (c->state == SOCKAPP_CLOSING)
		at = now + APPSOCK_LINGER;
	else {
		if (cfg->dead_after <= 0 &&
		    (c->state != SOCKAPP_READY || cfg->heartbeat_interval <= 0))
			return;
		at = cfg->dead_after > 0 ? c->last_rx + cfg->dead_after / 1e9
					 : now + 3600;
		if (c->state == SOCKAPP_READY && cfg->heartbeat_interval > 0 &&
		    c->last_tx + cfg->heartbeat_interval / 1e9 < at)
			at = c->last_tx + cfg->heartbeat_interval / 1e9;
	}
	ev_timer_set(&c->timer, at > now ? at - now : 0., 0.);
	ev_timer_start(loop, &c->timer);
}

/* Tells the app what went wrong; a fatal error closes it once the frame
 * is written. */
static void
sockapp_error(struct sockapp *c, NatsSidecar__Channel__V1__Error__Code code,
    const char *message, uint64_t ref_id, bool fatal)
{
	NatsSidecar__Channel__V1__Error e =
	    NATS_SIDECAR__CHANNEL__V1__ERROR__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	char tmp[APPSOCK_TEXT_MAX + 1];

	if (c->state == SOCKAPP_CLOSING)
		return;
	e.code = code;
	e.message = (char *)text_cut(message, tmp);
	e.ref_id = ref_id;
	e.fatal = fatal;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR;
	f.error = &e;
	(void)sockapp_queue(c, &f);
	if (!fatal)
		return;
	/* Read nothing more; what was queued before still goes out. */
	c->state = SOCKAPP_CLOSING;
	ev_io_stop(c->sock->loop, &c->rio);
	buf_free(&c->in);
	sockapp_arm(c);
}

/* A protocol violation by the app: logged, answered, fatal. */
static void __attribute__((format(printf, 3, 4)))
sockapp_fail(struct sockapp *c, NatsSidecar__Channel__V1__Error__Code code,
    const char *fmt, ...)
{
	char msg[APPSOCK_TEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warnx(
	    "app.protocol_error", SOCKAPP_FMT ": %s", SOCKAPP_ARGS(c), msg);
	sockapp_error(c, code, msg, 0, true);
}

/* Checks Hello, answers with Welcome and makes the app ready. */
static void
sockapp_hello(struct sockapp *c, const NatsSidecar__Channel__V1__Hello *h)
{
	NatsSidecar__Channel__V1__Welcome w =
	    NATS_SIDECAR__CHANNEL__V1__WELCOME__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	const struct appsock *sock = c->sock;

	if (h->protocol_version < 1) {
		sockapp_fail(c,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__UNSUPPORTED_VERSION,
		    "protocol_version %u is not supported (versions start at "
		    "1)",
		    h->protocol_version);
		return;
	}
	if (h->capacity < 1) {
		sockapp_fail(c,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD,
		    "capacity must be at least 1");
		return;
	}
	if (h->max_frame_size != 0 &&
	    (h->max_frame_size < APPSOCK_FRAME_MIN ||
		h->max_frame_size > APPSOCK_FRAME_MAX)) {
		sockapp_fail(c,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD,
		    "max_frame_size %u is outside %d..%d (0: the default)",
		    h->max_frame_size, APPSOCK_FRAME_MIN, APPSOCK_FRAME_MAX);
		return;
	}
	c->max_frame =
	    h->max_frame_size != 0 ? h->max_frame_size : FRAME_DEFAULT_MAX;

	w.protocol_version = h->protocol_version < FRAME_PROTOCOL_VERSION
	    ? h->protocol_version
	    : FRAME_PROTOCOL_VERSION;
	w.max_frame_size = (uint32_t)sock->cfg->max_frame_size;
	w.heartbeat_interval_ms =
	    (uint32_t)(sock->cfg->heartbeat_interval / 1000000);
	w.sidecar_version = (char *)PACKAGE_VERSION;
	w.instance_id =
	    (char *)(sock->instance_id != NULL ? sock->instance_id : "");
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_WELCOME;
	f.welcome = &w;
	if (sockapp_queue(c, &f) == -1) {
		sockapp_fail(c,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__INVALID_FIELD,
		    "max_frame_size %u is too small for Welcome",
		    h->max_frame_size);
		return;
	}
	c->state = SOCKAPP_READY;
	sockapp_arm(c);
	appchan_ready(&c->app, h->app_name, h->capacity, h->subscriptions,
	    h->n_subscriptions);
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

/* Acts on one frame from the app. */
static void
sockapp_frame(struct sockapp *c, const Frame *f)
{
	if (c->state == SOCKAPP_HELLO &&
	    f->body_case != NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HELLO) {
		sockapp_fail(c,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL,
		    "the first frame must be hello, not %s",
		    body_name(f->body_case));
		return;
	}
	switch (f->body_case) {
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HELLO:
		if (c->state == SOCKAPP_HELLO)
			sockapp_hello(c, f->hello);
		else
			sockapp_fail(c,
			    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL,
			    "hello was already received");
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_RESULT:
		appchan_result(&c->app, f->result);
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH:
		appchan_publish(&c->app, f->publish);
		break;
	case NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT:
		break;
	default:
		sockapp_fail(c,
		    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL,
		    "%s frames go from the sidecar to the app",
		    body_name(f->body_case));
		break;
	}
}

/* Acts on every whole frame in the input buffer. */
static void
sockapp_frames(struct sockapp *c)
{
	size_t max = (size_t)c->sock->cfg->max_frame_size, used;
	const uint8_t *p;
	Frame *f;

	while (c->state != SOCKAPP_CLOSING) {
		switch (frame_decode(
		    buf_head(&c->in), buf_used(&c->in), max, &f, &used)) {
		case FRAME_OK:
			buf_consume(&c->in, used);
			sockapp_frame(c, f);
			frame_free(f);
			break;
		case FRAME_NEED_MORE:
			return;
		case FRAME_TOO_LARGE:
			p = buf_head(&c->in);
			sockapp_fail(c,
			    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__FRAME_TOO_LARGE,
			    "a frame of %lu bytes exceeds max_frame_size %zu",
			    (unsigned long)p[0] << 24 |
				(unsigned long)p[1] << 16 |
				(unsigned long)p[2] << 8 | (unsigned long)p[3],
			    max);
			return;
		case FRAME_MALFORMED:
			sockapp_fail(c,
			    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__MALFORMED_FRAME,
			    "a frame of %zu bytes is not a valid Frame",
			    used - FRAME_PREFIX_SIZE);
			return;
		}
	}
}

/* Reads what the app sent, a bounded amount per event. */
static void
sockapp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sockapp *c = w->data;
	ssize_t n;

	for (int i = 0; i < APPSOCK_READS_PER_EVENT; i++) {
		n = recv(c->fd, buf_reserve(&c->in, APPSOCK_READ_SIZE),
		    APPSOCK_READ_SIZE, 0);
		if (n == 0) {
			sockapp_close(c, "closed the connection");
			return;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			sockapp_close(c,
			    errno == ECONNRESET ? "reset the connection"
						: strerror(errno));
			return;
		}
		buf_commit(&c->in, (size_t)n);
		c->last_rx = ev_now(loop);
		sockapp_frames(c);
		/* A short read: the socket is empty for now. */
		if (c->state == SOCKAPP_CLOSING || n < APPSOCK_READ_SIZE)
			return;
	}
}

/* Writes queued output; returns 0, or -1 after closing the connection. */
static int
sockapp_write(struct sockapp *c)
{
	struct ev_loop *loop = c->sock->loop;
	ssize_t n;

	if (buf_used(&c->out) > 0) {
		do
			n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n == -1 && errno == EINTR);
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			sockapp_close(c,
			    errno == EPIPE || errno == ECONNRESET
				? "closed the connection"
				: strerror(errno));
			return -1;
		}
		if (n > 0)
			buf_consume(&c->out, (size_t)n);
	}
	if (buf_used(&c->out) > 0) {
		ev_io_start(loop, &c->wio);
		return 0;
	}
	ev_io_stop(loop, &c->wio);
	if (c->state == SOCKAPP_CLOSING) {
		sockapp_close(c, "was closed after a fatal error");
		return -1;
	}
	return 0;
}

/* The socket takes more output again. */
static void
sockapp_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)sockapp_write(w->data);
}

/* Heartbeat due, app silent too long, or linger over. */
static void
sockapp_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	static const NatsSidecar__Channel__V1__Heartbeat hb =
	    NATS_SIDECAR__CHANNEL__V1__HEARTBEAT__INIT;
	struct sockapp *c = w->data;
	const struct config_app *cfg = c->sock->cfg;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	ev_tstamp now = ev_now(loop);
	char why[64];

	if (c->state == SOCKAPP_CLOSING) {
		sockapp_close(c, "did not read its last frames in time");
		return;
	}
	if (cfg->dead_after > 0 && now - c->last_rx >= cfg->dead_after / 1e9) {
		snprintf(why, sizeof why, "sent nothing for %.3f s",
		    now - c->last_rx);
		sockapp_close(c, why);
		return;
	}
	if (c->state == SOCKAPP_READY && cfg->heartbeat_interval > 0 &&
	    now - c->last_tx >= cfg->heartbeat_interval / 1e9) {
		f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_HEARTBEAT;
		f.heartbeat = (NatsSidecar__Channel__V1__Heartbeat *)&hb;
		(void)sockapp_queue(c, &f);
	}
	sockapp_arm(c);
}

/* Output an app may owe before it counts as having stopped reading: its
 * capacity in deliveries, plus four more frames of anything else. */
static size_t
sockapp_out_limit(const struct sockapp *c)
{
	uint64_t frames = (uint64_t)c->app.capacity + 4;

	if (frames > SIZE_MAX / c->max_frame)
		return SIZE_MAX;
	return (size_t)frames * c->max_frame;
}

static int
sockapp_delivery(struct app *a, const NatsSidecar__Channel__V1__Delivery *d)
{
	struct sockapp *c = (struct sockapp *)a;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	if (c->state != SOCKAPP_READY)
		return 0;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DELIVERY;
	f.delivery = (NatsSidecar__Channel__V1__Delivery *)d;
	return sockapp_queue(c, &f);
}

static void
sockapp_publish_ack(
    struct app *a, const NatsSidecar__Channel__V1__PublishAck *ack)
{
	struct sockapp *c = (struct sockapp *)a;
	NatsSidecar__Channel__V1__PublishAck copy = *ack;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	char tmp[APPSOCK_TEXT_MAX + 1];

	if (c->state != SOCKAPP_READY)
		return;
	copy.error = (char *)text_cut(ack->error, tmp);
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_PUBLISH_ACK;
	f.publish_ack = &copy;
	(void)sockapp_queue(c, &f);
}

static void
sockapp_error_op(struct app *a, NatsSidecar__Channel__V1__Error__Code code,
    const char *message, uint64_t ref_id, bool fatal)
{
	struct sockapp *c = (struct sockapp *)a;

	if (fatal)
		log_warnx(
		    "app.error", SOCKAPP_FMT ": %s", SOCKAPP_ARGS(c), message);
	sockapp_error(c, code, message, ref_id, fatal);
}

static void
sockapp_drain(struct app *a, uint32_t grace_ms)
{
	struct sockapp *c = (struct sockapp *)a;
	NatsSidecar__Channel__V1__Drain d =
	    NATS_SIDECAR__CHANNEL__V1__DRAIN__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;

	if (c->state != SOCKAPP_READY)
		return;
	d.grace_ms = grace_ms;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_DRAIN;
	f.drain = &d;
	(void)sockapp_queue(c, &f);
}

static void
sockapp_flush(struct app *a)
{
	struct sockapp *c = (struct sockapp *)a;
	size_t limit = sockapp_out_limit(c);
	char why[96];

	/* A connection waiting for EV_WRITE is written from there. */
	if (!ev_is_active(&c->wio) && sockapp_write(c) == -1)
		return;
	if (buf_used(&c->out) > limit) {
		snprintf(why, sizeof why,
		    "is too slow: %zu bytes unread, limit %zu",
		    buf_used(&c->out), limit);
		sockapp_close(c, why);
	}
}

static void
sockapp_free(struct app *a)
{
	sockapp_destroy((struct sockapp *)a);
}

static const struct app_ops sockapp_ops = {
	.delivery = sockapp_delivery,
	.publish_ack = sockapp_publish_ack,
	.error = sockapp_error_op,
	.drain = sockapp_drain,
	.flush = sockapp_flush,
	.free = sockapp_free,
};

/* Takes a new connection |fd| in. */
static void
sockapp_new(struct appsock *sock, int fd)
{
	struct sockapp *c = xcalloc(1, sizeof *c);

	c->sock = sock;
	c->fd = fd;
	c->state = SOCKAPP_HELLO;
	c->max_frame = FRAME_DEFAULT_MAX;
	c->last_rx = c->last_tx = ev_now(sock->loop);
	ev_io_init(&c->rio, sockapp_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, sockapp_write_cb, fd, EV_WRITE);
	ev_init(&c->timer, sockapp_timer_cb);
	c->rio.data = c->wio.data = c->timer.data = c;
	sock->nconns++;
	appchan_attach(sock->chan, &c->app, &sockapp_ops);
	log_debug("app.connected", SOCKAPP_FMT " connected", SOCKAPP_ARGS(c));
	ev_io_start(sock->loop, &c->rio);
	sockapp_arm(c);
}

/* Tells a connection over the limit why, and closes it. */
static void
appsock_refuse(int fd)
{
	NatsSidecar__Channel__V1__Error e =
	    NATS_SIDECAR__CHANNEL__V1__ERROR__INIT;
	Frame f = NATS_SIDECAR__CHANNEL__V1__FRAME__INIT;
	struct buf b = BUF_INIT;
	char msg[80];

	snprintf(msg, sizeof msg, "too many connections (at most %d)",
	    APPCHAN_MAX_CONNS);
	log_warnx("app.refused", "refused a connection: %s", msg);
	e.code = NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__PROTOCOL;
	e.message = msg;
	e.fatal = true;
	f.body_case = NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR;
	f.error = &e;
	frame_encode(&f, FRAME_DEFAULT_MAX, &b);
	/* A fresh socket's buffer takes a frame this small; if it does not,
	 * closing says enough. */
	(void)send(fd, buf_head(&b), buf_used(&b), MSG_NOSIGNAL | MSG_DONTWAIT);
	buf_free(&b);
	close(fd);
}

/* Accepts waiting connections, a bounded number per event. */
static void
appsock_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct appsock *sock = w->data;
	int fd;

	for (int i = 0; i < APPSOCK_ACCEPTS_PER_EVENT; i++) {
		fd =
		    accept4(sock->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			log_warn("appchan.accept", "accept on %s",
			    sock->cfg->socket);
			/* Out of descriptors or memory: the waiting
			 * connection would wake us at once; wait instead. */
			ev_io_stop(loop, &sock->accept_io);
			ev_timer_start(loop, &sock->accept_retry);
			return;
		}
		if (sock->nconns >= APPCHAN_MAX_CONNS)
			appsock_refuse(fd);
		else
			sockapp_new(sock, fd);
	}
}

/* Accepts again after a pause. */
static void
appsock_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct appsock *sock = w->data;

	if (sock->fd != -1)
		ev_io_start(loop, &sock->accept_io);
}

/* Checks that |path| may be listened on, removing a stale socket file. */
static int
appsock_check_path(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *copy = xstrdup(path), *dir;
	struct stat st;
	int fd, rc = -1;

	dir = dirname(copy);
	if (stat(dir, &st) == -1) {
		log_warn(
		    "appchan.socket", "directory %s of socket %s", dir, path);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx("appchan.socket",
		    "%s, the directory of socket %s, "
		    "is not a directory",
		    dir, path);
		goto out;
	}
	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			rc = 0;
		else
			log_warn("appchan.socket", "socket %s", path);
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx(
		    "appchan.socket", "%s exists and is not a socket", path);
		goto out;
	}
	/* Connecting tells a live listener from a stale file. */
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("appchan.socket", "socket");
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ||
	    errno == EAGAIN)
		log_warnx("appchan.socket",
		    "socket %s is in use by another process", path);
	else if (errno != ECONNREFUSED)
		log_warn("appchan.socket", "cannot probe socket %s", path);
	else if (unlink(path) == -1)
		log_warn(
		    "appchan.socket", "cannot remove stale socket %s", path);
	else {
		log_info("appchan.socket", "removed stale socket %s", path);
		rc = 0;
	}
	close(fd);
out:
	free(copy);
	return rc;
}

struct appsock *
appsock_new(struct appchan *chan, struct ev_loop *loop,
    const struct config_app *cfg, const char *instance_id)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct appsock *sock;
	struct stat st;
	size_t len = strlen(cfg->socket);

	if (len == 0 || len >= sizeof sun.sun_path) {
		log_warnx("appchan.socket",
		    "socket path \"%s\" must have 1 to %zu bytes", cfg->socket,
		    sizeof sun.sun_path - 1);
		return NULL;
	}
	if (appsock_check_path(cfg->socket) == -1)
		return NULL;
	memcpy(sun.sun_path, cfg->socket, len + 1);

	sock = xcalloc(1, sizeof *sock);
	sock->chan = chan;
	sock->loop = loop;
	sock->cfg = cfg;
	sock->instance_id = instance_id;
	sock->fd =
	    socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock->fd == -1) {
		log_warn("appchan.socket", "socket");
		goto fail;
	}
	if (bind(sock->fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		log_warn(
		    "appchan.socket", "cannot bind socket %s", cfg->socket);
		goto fail_fd;
	}
	/* Nobody can connect before listen(), so the mode is in place
	 * before the first client. */
	if (chmod(cfg->socket, (mode_t)cfg->socket_mode) == -1 ||
	    lstat(cfg->socket, &st) == -1) {
		log_warn("appchan.socket", "cannot set the mode of socket %s",
		    cfg->socket);
		goto fail_file;
	}
	sock->dev = st.st_dev;
	sock->ino = st.st_ino;
	if (listen(sock->fd, SOMAXCONN) == -1) {
		log_warn("appchan.socket", "cannot listen on socket %s",
		    cfg->socket);
		goto fail_file;
	}
	ev_io_init(&sock->accept_io, appsock_accept_cb, sock->fd, EV_READ);
	sock->accept_io.data = sock;
	ev_timer_init(
	    &sock->accept_retry, appsock_retry_cb, APPSOCK_ACCEPT_RETRY, 0.);
	sock->accept_retry.data = sock;
	ev_io_start(loop, &sock->accept_io);
	log_info("appchan.listening", "listening on %s, mode %04o", cfg->socket,
	    (unsigned)cfg->socket_mode);
	return sock;

fail_file:
	unlink(cfg->socket);
fail_fd:
	close(sock->fd);
fail:
	free(sock);
	return NULL;
}

void
appsock_stop(struct appsock *sock)
{
	struct stat st;

	if (sock->fd == -1)
		return;
	ev_io_stop(sock->loop, &sock->accept_io);
	ev_timer_stop(sock->loop, &sock->accept_retry);
	close(sock->fd);
	sock->fd = -1;
	/* Only our own file: another process may have taken the path. */
	if (lstat(sock->cfg->socket, &st) == 0 && st.st_dev == sock->dev &&
	    st.st_ino == sock->ino)
		unlink(sock->cfg->socket);
}

void
appsock_free(struct appsock *sock)
{
	if (sock == NULL)
		return;
	appsock_stop(sock);
	free(sock);
}
