/*
 * The HTTP server of the metrics and probe endpoints.
 *
 * Why no library. What is served is four fixed resources to GET, with no
 * request body, no keep-alive and no header that changes the answer. What
 * Debian 12 packages fits that badly: libmicrohttpd keeps its own sockets,
 * timers and connection limits, and in external-select mode would have to
 * be re-registered with libev on every loop turn; http-parser
 * (libhttp-parser-dev) is no longer maintained upstream, and its successor
 * llhttp is not packaged as a C library. With any of them the connection
 * handling, limits and timeouts would still be written here. So the reader
 * below does only this: find the empty line that ends a head of at most
 * HTTPD_HEAD_MAX bytes (searching each byte once, however the head is split
 * into reads), then check the request line and header fields against
 * RFC 9112's grammar, refusing whatever does not match rather than
 * guessing. It looks at no byte past the head. tests/fuzz/http.c fuzzes
 * it, feeding each input whole, byte by byte and in random pieces.
 *
 * A connection is READING until its head is complete (request_timeout),
 * then WRITING its one response (response_timeout), then LINGERING: the
 * write side is shut and what the client still sends is read and dropped
 * for a moment, because closing a socket with unread input resets the
 * connection and can destroy the response before the client reads it.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ev.h>

#include "buf.h"
#include "config.h"
#include "httpd.h"
#include "log.h"
#include "xmalloc.h"

#define HTTPD_BACKLOG 64
#define HTTPD_ACCEPTS_PER_EVENT 16
/* Pause after accept() fails for lack of descriptors or memory. */
#define HTTPD_ACCEPT_RETRY 1.0
/* How long, and how many bytes, a client's input is dropped after its
 * response before the connection is closed. */
#define HTTPD_LINGER 2.0
#define HTTPD_LINGER_MAX (64 * 1024)

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

enum route {
	ROUTE_METRICS,
	ROUTE_HEALTHZ,
	ROUTE_STARTUPZ,
	ROUTE_READYZ,
	ROUTE_NONE,
};

static const char *const route_paths[] = { "/metrics", "/healthz", "/startupz",
	"/readyz" };

/* What the head of a request says, as far as it matters here. */
struct request {
	bool get, head; /* the method is GET, HEAD */
	enum route route;
	int minor; /* HTTP/1.minor */
	int hosts; /* Host fields */
	bool length; /* a Content-Length field */
	bool body; /* Content-Length above 0 */
	bool chunked; /* a Transfer-Encoding field, whatever it says */
};

enum conn_state {
	CONN_READING,
	CONN_WRITING,
	CONN_LINGERING,
};

struct conn {
	struct httpd *httpd;
	TAILQ_ENTRY(conn) entry;
	int fd;
	enum conn_state state;
	struct httpd_reader reader;
	struct buf in, out;
	size_t dropped; /* bytes read and dropped while lingering */
	ev_io io;
	ev_timer timer;
};

struct httpd {
	struct ev_loop *loop;
	const struct config_http *cfg;
	struct httpd_handlers handlers;
	int fd;
	int port;
	ev_io accept_io;
	ev_timer accept_retry;
	TAILQ_HEAD(, conn) conns;
	size_t nconns;
};

/* tchar of RFC 9110: what a method or a field name is made of. */
static bool
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
is_token(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!is_tchar((unsigned char)s[i]))
			return false;
	}
	return n > 0;
}

/* Whether |s| (|n| bytes) is |lit|, ignoring ASCII case. */
static bool
equal_ci(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default: /* 505, the one status left */
		return "HTTP Version Not Supported";
	}
}

/* Appends a complete response; a response to HEAD has no body. */
static int
respond(struct buf *out, int status, const char *type, const void *body,
    size_t len, bool head)
{
	char hdr[320];
	int n;

	n = snprintf(hdr, sizeof hdr,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "%s"
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n"
	    "\r\n",
	    status, reason(status), type, len,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	buf_append(out, hdr, (size_t)n);
	if (!head && len > 0)
		buf_append(out, body, len);
	return status;
}

static int
respond_text(struct buf *out, int status, const char *text, bool head)
{
	return respond(out, status, TEXT_TYPE, text, strlen(text), head);
}

/* Parses "METHOD SP request-target SP HTTP/1.x"; 0, or an error status. */
static int
request_line(struct request *req, const char *s, size_t n)
{
	const char *end = s + n, *sp1, *sp2, *t, *path, *q;
	size_t tlen, vlen;

	if ((sp1 = memchr(s, ' ', n)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL)
		return 400;
	t = sp1 + 1;
	tlen = (size_t)(sp2 - t);
	vlen = (size_t)(end - sp2 - 1);
	if (!is_token(s, (size_t)(sp1 - s)) || tlen == 0)
		return 400;
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c < 0x21 || c > 0x7e)
			return 400;
	}
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[6] < '0' ||
	    sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
		return 400;
	if (sp2[6] != '1')
		return 505;
	req->minor = sp2[8] - '0';
	req->get = sp1 - s == 3 && memcmp(s, "GET", 3) == 0;
	req->head = sp1 - s == 4 && memcmp(s, "HEAD", 4) == 0;

	/* origin-form "/path?query", or absolute-form
	 * "http://authority/path?query". */
	if (t[0] == '/')
		path = t;
	else if (tlen > 7 && strncasecmp(t, "http://", 7) == 0)
		path = t + 7;
	else if (tlen > 8 && strncasecmp(t, "https://", 8) == 0)
		path = t + 8;
	else
		return 400;
	if (path != t) {
		if (*path == '/' || *path == '?')
			return 400; /* no authority */
		while (path < sp2 && *path != '/' && *path != '?')
			path++;
	}
	if ((q = memchr(path, '?', (size_t)(sp2 - path))) == NULL)
		q = sp2;
	/* Exact paths: no decoding, no trailing slash. */
	req->route = ROUTE_NONE;
	for (int r = 0; r < ROUTE_NONE; r++) {
		if (strlen(route_paths[r]) == (size_t)(q - path) &&
		    memcmp(route_paths[r], path, (size_t)(q - path)) == 0)
			req->route = (enum route)r;
	}
	return 0;
}

/* Parses "name: value"; 0, or an error status. */
static int
header_field(struct request *req, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n), *v, *end = s + n;
	size_t nlen;

	/* No space before the colon, and no line folding: a field that
	 * starts with a space is not a token. */
	if (colon == NULL || !is_token(s, (size_t)(colon - s)))
		return 400;
	nlen = (size_t)(colon - s);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (const char *p = v; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 400;
	}
	if (equal_ci(s, nlen, "host"))
		req->hosts++;
	else if (equal_ci(s, nlen, "transfer-encoding"))
		req->chunked = true;
	else if (equal_ci(s, nlen, "content-length")) {
		if (req->length || v == end)
			return 400;
		req->length = true;
		for (const char *p = v; p < end; p++) {
			if (*p < '0' || *p > '9')
				return 400;
			req->body |= *p != '0';
		}
	}
	return 0;
}

/* Answers an endpoint that may be unavailable. */
static int
respond_check(struct buf *out, int (*check)(void *, struct buf *), void *arg,
    const char *failing, bool head)
{
	struct buf why = BUF_INIT;
	int status = 200;

	if (check == NULL || check(arg, &why) == 1)
		respond_text(out, 200, "ok\n", head);
	else {
		if (buf_used(&why) == 0)
			buf_append(&why, failing, strlen(failing));
		if (buf_head(&why)[buf_used(&why) - 1] != '\n')
			buf_append(&why, "\n", 1);
		status = respond(
		    out, 503, TEXT_TYPE, buf_head(&why), buf_used(&why), head);
	}
	buf_free(&why);
	return status;
}

/* Answers the complete head |p| (|n| bytes, ending in an empty line). */
static int
handle_head(
    const struct httpd_handlers *h, const char *p, size_t n, struct buf *out)
{
	struct request req = { 0 };
	struct buf body = BUF_INIT;
	const char *line = p, *nl;
	size_t len;
	int status;

	for (bool first = true;; first = false) {
		nl = memchr(line, '\n', (size_t)(p + n - line));
		len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0 && !first)
			break;
		status = first ? request_line(&req, line, len)
			       : header_field(&req, line, len);
		if (status != 0)
			return respond_text(out, status,
			    status == 505 ? "only HTTP/1.0 and HTTP/1.1\n"
					  : "malformed request\n",
			    req.head);
		line = nl + 1;
	}
	if (req.hosts > 1 || (req.minor > 0 && req.hosts == 0) ||
	    (req.chunked && req.length))
		return respond_text(out, 400, "malformed request\n", req.head);
	if (req.chunked || req.body)
		return respond_text(
		    out, 413, "a request body is not accepted\n", req.head);
	if (req.route == ROUTE_NONE)
		return respond_text(out, 404,
		    "not found: try /metrics, /healthz, /startupz or "
		    "/readyz\n",
		    req.head);
	if (!req.get && !req.head)
		return respond_text(out, 405, "only GET and HEAD\n", req.head);

	switch (req.route) {
	case ROUTE_METRICS:
		if (h->metrics != NULL)
			h->metrics(h->arg, &body);
		status = respond(out, 200, METRICS_TYPE, buf_head(&body),
		    buf_used(&body), req.head);
		buf_free(&body);
		return status;
	case ROUTE_STARTUPZ:
		return respond_check(
		    out, h->startup, h->arg, "not started\n", req.head);
	case ROUTE_READYZ:
		return respond_check(
		    out, h->ready, h->arg, "not ready\n", req.head);
	default:
		/* Answering at all shows the loop is alive. */
		return respond_text(out, 200, "ok\n", req.head);
	}
}

int
httpd_handle(const struct httpd_handlers *h, struct httpd_reader *r,
    const void *in, size_t len, struct buf *out)
{
	const char *p = in;
	size_t limit = len < HTTPD_HEAD_MAX ? len : HTTPD_HEAD_MAX, i;

	/* Only the bytes not searched before: a head sent a byte at a time
	 * costs no more than one sent at once. */
	while (r->scanned < limit) {
		i = r->scanned++;
		if (p[i] != '\n')
			continue;
		if (i == r->line || (i == r->line + 1 && p[r->line] == '\r'))
			return handle_head(h, p, i + 1, out);
		r->line = i + 1;
	}
	if (limit < HTTPD_HEAD_MAX)
		return 0;
	if (r->line == 0)
		return respond_text(out, 414, "request line too long\n", false);
	return respond_text(out, 431, "request head too large\n", false);
}

int
httpd_address_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN];
	const char *start = s, *end, *port;
	unsigned long n = 0;
	bool v6 = s[0] == '[';

	if (v6) {
		start = s + 1;
		if ((end = strchr(start, ']')) == NULL || end[1] != ':')
			return -1;
		port = end + 2;
	} else {
		if ((end = strrchr(s, ':')) == NULL)
			return -1;
		port = end + 1;
	}
	if (end == start || (size_t)(end - start) >= sizeof host ||
	    port[0] == '\0' || strlen(port) > 5 ||
	    strspn(port, "0123456789") != strlen(port))
		return -1;
	for (const char *d = port; *d != '\0'; d++)
		n = n * 10 + (unsigned long)(*d - '0');
	if (n > 65535)
		return -1;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	memset(ss, 0, sizeof *ss);
	if (v6) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)n);
		*len = sizeof *sin6;
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)n);
		*len = sizeof *sin;
	}
	return 0;
}

/* Accepts again if it was paused and there is room. */
static void
httpd_resume(struct httpd *h)
{
	if (!ev_is_active(&h->accept_io) && !ev_is_active(&h->accept_retry) &&
	    h->nconns < (size_t)h->cfg->max_connections)
		ev_io_start(h->loop, &h->accept_io);
}

/* Frees the connection without touching the listener. */
static void
conn_destroy(struct conn *c)
{
	struct httpd *h = c->httpd;

	ev_io_stop(h->loop, &c->io);
	ev_timer_stop(h->loop, &c->timer);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	TAILQ_REMOVE(&h->conns, c, entry);
	h->nconns--;
	free(c);
}

/* Frees the connection, making room for one waiting to be accepted. */
static void
conn_close(struct conn *c)
{
	struct httpd *h = c->httpd;

	conn_destroy(c);
	httpd_resume(h);
}

/* Waits for |events| on the connection, for at most |secs|. */
static void
conn_wait(struct conn *c, int events, double secs)
{
	struct ev_loop *loop = c->httpd->loop;

	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, secs, 0.);
	ev_timer_start(loop, &c->timer);
}

/* Writes what the socket takes; once all is out, lingers. */
static void
conn_write(struct conn *c)
{
	ssize_t n;

	while (buf_used(&c->out) > 0) {
		n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1) {
			log_debug("http.closed", "write: %s", strerror(errno));
			conn_close(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	buf_free(&c->out);
	if (shutdown(c->fd, SHUT_WR) == -1) {
		conn_close(c);
		return;
	}
	c->state = CONN_LINGERING;
	conn_wait(c, EV_READ, HTTPD_LINGER);
}

/* Reads more of the head; answers once it is complete or too large. */
static void
conn_read(struct conn *c)
{
	struct httpd *h = c->httpd;
	size_t room = HTTPD_HEAD_MAX - buf_used(&c->in);
	ssize_t n;
	int status;

	n = recv(c->fd, buf_reserve(&c->in, room), room, 0);
	if (n == -1 &&
	    (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* The client left before finishing its request. */
		conn_close(c);
		return;
	}
	buf_commit(&c->in, (size_t)n);
	status = httpd_handle(&h->handlers, &c->reader, buf_head(&c->in),
	    buf_used(&c->in), &c->out);
	if (status == 0)
		return;
	log_debug("http.request", "answered %d", status);
	buf_free(&c->in);
	c->state = CONN_WRITING;
	/* The client's time starts when the response is ready, however long
	 * a large /metrics took. */
	ev_now_update(h->loop);
	conn_wait(c, EV_WRITE, (double)h->cfg->response_timeout / 1e9);
	conn_write(c);
}

/* Drops what the client sends after its response, until it closes. */
static void
conn_drain(struct conn *c)
{
	char sink[4096];
	ssize_t n;

	n = recv(c->fd, sink, sizeof sink, 0);
	if (n == -1 &&
	    (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0 || (c->dropped += (size_t)n) > HTTPD_LINGER_MAX)
		conn_close(c);
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	switch (c->state) {
	case CONN_READING:
		conn_read(c);
		break;
	case CONN_WRITING:
		conn_write(c);
		break;
	case CONN_LINGERING:
		conn_drain(c);
		break;
	}
}

/* A phase took too long: the connection is closed, whatever it held. */
static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	if (c->state == CONN_READING)
		log_debug("http.timeout",
		    "closed a connection that sent no "
		    "complete request in time");
	else if (c->state == CONN_WRITING)
		log_debug("http.timeout",
		    "dropped a response the client did "
		    "not take in time");
	conn_close(c);
}

/* Takes an accepted connection in; its head must come within
 * request_timeout. */
static void
conn_new(struct httpd *h, int fd)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->httpd = h;
	c->fd = fd;
	c->state = CONN_READING;
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_init(&c->timer, conn_timer_cb);
	c->io.data = c->timer.data = c;
	TAILQ_INSERT_TAIL(&h->conns, c, entry);
	h->nconns++;
	conn_wait(c, EV_READ, (double)h->cfg->request_timeout / 1e9);
}

/* Accepts waiting connections, a bounded number per event, and pauses at
 * max_connections: the rest wait in the listen queue. */
static void
httpd_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct httpd *h = w->data;
	int fd;

	for (int i = 0; i < HTTPD_ACCEPTS_PER_EVENT; i++) {
		if (h->nconns >= (size_t)h->cfg->max_connections) {
			log_debug("http.busy",
			    "%zu connections: accepting "
			    "no more for now",
			    h->nconns);
			ev_io_stop(loop, &h->accept_io);
			return;
		}
		fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			log_warn("http.accept", "accept on %s", h->cfg->listen);
			/* Out of descriptors or memory: the waiting
			 * connection would wake us at once; wait instead. */
			ev_io_stop(loop, &h->accept_io);
			ev_timer_start(loop, &h->accept_retry);
			return;
		}
		conn_new(h, fd);
	}
}

static void
httpd_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	httpd_resume(w->data);
}

struct httpd *
httpd_new(struct ev_loop *loop, const struct config_http *cfg,
    const struct httpd_handlers *handlers)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct httpd *h;
	char host[INET6_ADDRSTRLEN] = "?";
	int one = 1, zero = 0;

	if (httpd_address_parse(cfg->listen, &ss, &len) == -1) {
		log_warnx("http.listen",
		    "cannot listen on \"%s\": expected ADDRESS:PORT",
		    cfg->listen);
		return NULL;
	}
	h = xcalloc(1, sizeof *h);
	h->loop = loop;
	h->cfg = cfg;
	h->handlers = *handlers;
	TAILQ_INIT(&h->conns);
	h->fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd == -1) {
		log_warn("http.listen", "socket for %s", cfg->listen);
		goto fail;
	}
	/* [::] takes IPv4 too, whatever the system default. */
	if (setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ==
		-1 ||
	    (ss.ss_family == AF_INET6 &&
		setsockopt(h->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof zero) == -1)) {
		log_warn("http.listen", "socket options for %s", cfg->listen);
		goto fail;
	}
	if (bind(h->fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(h->fd, HTTPD_BACKLOG) == -1) {
		log_warn("http.listen", "cannot listen on %s", cfg->listen);
		goto fail;
	}
	len = sizeof ss;
	if (getsockname(h->fd, (struct sockaddr *)&ss, &len) == -1) {
		log_warn("http.listen", "getsockname for %s", cfg->listen);
		goto fail;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		h->port = ntohs(sin6->sin6_port);
		log_info("http.listening",
		    "serving /metrics and probes on "
		    "[%s]:%d",
		    host, h->port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		h->port = ntohs(sin->sin_port);
		log_info("http.listening",
		    "serving /metrics and probes on "
		    "%s:%d",
		    host, h->port);
	}
	ev_io_init(&h->accept_io, httpd_accept_cb, h->fd, EV_READ);
	ev_timer_init(&h->accept_retry, httpd_retry_cb, HTTPD_ACCEPT_RETRY, 0.);
	h->accept_io.data = h->accept_retry.data = h;
	ev_io_start(loop, &h->accept_io);
	return h;
fail:
	if (h->fd != -1)
		close(h->fd);
	free(h);
	return NULL;
}

void
httpd_free(struct httpd *h)
{
	struct conn *c;

	if (h == NULL)
		return;
	while ((c = TAILQ_FIRST(&h->conns)) != NULL)
		conn_destroy(c);
	ev_io_stop(h->loop, &h->accept_io);
	ev_timer_stop(h->loop, &h->accept_retry);
	close(h->fd);
	free(h);
}

int
httpd_port(const struct httpd *h)
{
	return h->port;
}

size_t
httpd_connections(const struct httpd *h)
{
	return h->nconns;
}

size_t
httpd_buffered(const struct httpd *h)
{
	const struct conn *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &h->conns, entry)
	n += c->in.cap + c->out.cap;
	return n;
}
