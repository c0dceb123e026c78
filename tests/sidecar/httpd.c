/*
 * The HTTP server: the request reader on its own over a table of requests
 * (every one also fed a byte at a time), then the server on a real libev
 * loop with real loopback sockets, clients in the same thread while the
 * loop runs in small steps: each endpoint, HEAD, the error statuses, split
 * and pipelined input, slowloris, the connection limit, a client that
 * never reads, and 10,000 requests that leave nothing behind.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "harness/cmocka.h"
#include "harness/promcheck.h"
#include "sidecar/buf.h"
#include "sidecar/config.h"
#include "sidecar/httpd.h"
#include "sidecar/log.h"
#include "sidecar/metrics.h"
#include "sidecar/xmalloc.h"

#define MS INT64_C(1000000) /* config durations are in ns */
#define WAIT_SECONDS 3.0

struct fixture {
	struct ev_loop *loop;
	ev_timer tick; /* so that one loop turn never blocks for long */
	ev_check peek; /* after each turn, notes what the server holds */
	size_t peak_buffered;
	struct config_http cfg;
	struct httpd_handlers handlers;
	struct httpd *httpd;
	struct metrics *metrics;
	size_t big; /* > 0: /metrics answers this many bytes instead */
	int started, ready;
	const char *why;
	int metrics_calls;
};

/* A response as a client reads it. */
struct response {
	char *text; /* all of it, NUL-terminated */
	size_t len;
	int status;
	const char *body;
	size_t body_len;
	bool reset; /* ended by a reset rather than a clean close */
};

static void
on_metrics(void *arg, struct buf *out)
{
	struct fixture *fx = arg;
	uint8_t *p;

	fx->metrics_calls++;
	if (fx->big == 0) {
		metrics_write(fx->metrics, out);
		return;
	}
	/* One line, larger than any socket buffers between the two ends. */
	p = buf_reserve(out, fx->big);
	memset(p, 'x', fx->big - 1);
	p[fx->big - 1] = '\n';
	buf_commit(out, fx->big);
}

static int
on_startup(void *arg, struct buf *why)
{
	struct fixture *fx = arg;

	if (fx->started)
		return 1;
	buf_append(why, "configuration not applied", 25);
	return 0;
}

static int
on_ready(void *arg, struct buf *why)
{
	struct fixture *fx = arg;

	if (fx->ready)
		return 1;
	if (fx->why != NULL)
		buf_append(why, fx->why, strlen(fx->why));
	return 0;
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

static void
peek_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct fixture *fx = w->data;

	if (fx->httpd != NULL && httpd_buffered(fx->httpd) > fx->peak_buffered)
		fx->peak_buffered = httpd_buffered(fx->httpd);
}

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof *fx);
	struct metric *m;

	fx->cfg.listen = "127.0.0.1:0";
	fx->cfg.max_connections = 16;
	fx->cfg.request_timeout = 1000 * MS;
	fx->cfg.response_timeout = 1000 * MS;
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	ev_timer_init(&fx->tick, tick_cb, 0.002, 0.002);
	ev_timer_start(fx->loop, &fx->tick);
	ev_check_init(&fx->peek, peek_cb);
	fx->peek.data = fx;
	ev_check_start(fx->loop, &fx->peek);
	fx->handlers =
	    (struct httpd_handlers){ on_metrics, on_startup, on_ready, fx };
	fx->metrics = metrics_new();
	m = metrics_counter(fx->metrics, "nats_sidecar_deliveries_total",
	    "Deliveries by how they ended.",
	    (const char *const[]){ "subscription", "outcome", NULL });
	metric_add(
	    metric_series(m, (const char *const[]){ "orders", "acked", NULL }),
	    42);
	metric_set(metric_series(metrics_gauge(fx->metrics,
				     "nats_sidecar_app_connections",
				     "Apps connected now.", NULL),
		       NULL),
	    1);
	fx->started = fx->ready = 1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	httpd_free(fx->httpd);
	ev_timer_stop(fx->loop, &fx->tick);
	ev_check_stop(fx->loop, &fx->peek);
	ev_loop_destroy(fx->loop);
	metrics_free(fx->metrics);
	free(fx);
	return 0;
}

static void
start(struct fixture *fx)
{
	fx->httpd = httpd_new(fx->loop, &fx->cfg, &fx->handlers);
	assert_non_null(fx->httpd);
	assert_true(httpd_port(fx->httpd) > 0);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the loop for |secs|. */
static void
pump(struct fixture *fx, double secs)
{
	double until = now_s() + secs;

	while (now_s() < until)
		ev_run(fx->loop, EVRUN_ONCE);
}

/* Runs the loop until no connection is left, or fails. */
static void
pump_until_idle(struct fixture *fx)
{
	double until = now_s() + WAIT_SECONDS;

	while (httpd_connections(fx->httpd) > 0) {
		if (now_s() > until)
			fail_msg("%zu connections still open",
			    httpd_connections(fx->httpd));
		ev_run(fx->loop, EVRUN_ONCE);
	}
}

/* A client connected to the server; the kernel completes the handshake
 * whether or not the server has accepted yet. */
static int
client(struct fixture *fx, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd != -1);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				     sizeof rcvbuf),
		    0);
	sin.sin_port = htons((uint16_t)httpd_port(fx->httpd));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

static void
client_send(int fd, const void *p, size_t len)
{
	assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Splits what was read into status and body, checking the framing: the
 * status line, Connection: close and, unless |head|, a Content-Length
 * that matches the body. */
static void
response_parse(struct response *r, bool head)
{
	const char *end = strstr(r->text, "\r\n\r\n"), *cl;

	if (end == NULL || strncmp(r->text, "HTTP/1.1 ", 9) != 0)
		fail_msg("not a response:\n%s", r->text);
	r->status = atoi(r->text + 9);
	r->body = end + 4;
	r->body_len = r->len - (size_t)(r->body - r->text);
	assert_non_null(strstr(r->text, "\r\nConnection: close\r\n"));
	assert_non_null(cl = strstr(r->text, "\r\nContent-Length: "));
	if (!head && strtoul(cl + 18, NULL, 10) != r->body_len)
		fail_msg("Content-Length %lu, body of %zu bytes:\n%s",
		    strtoul(cl + 18, NULL, 10), r->body_len, r->text);
}

/* Reads until the server closes, running the loop meanwhile. */
static struct response
client_read(struct fixture *fx, int fd, bool head)
{
	struct response r = { 0 };
	struct buf b = BUF_INIT;
	double until = now_s() + WAIT_SECONDS;
	ssize_t n;

	for (;;) {
		n = recv(fd, buf_reserve(&b, 4096), 4096, MSG_DONTWAIT);
		if (n > 0) {
			buf_commit(&b, (size_t)n);
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r.reset = true;
			break;
		}
		if (now_s() > until)
			fail_msg(
			    "no complete response within %.0f s", WAIT_SECONDS);
		ev_run(fx->loop, EVRUN_ONCE);
	}
	r.len = buf_used(&b);
	r.text = xmalloc(r.len + 1);
	if (r.len > 0)
		memcpy(r.text, buf_head(&b), r.len);
	r.text[r.len] = '\0';
	buf_free(&b);
	if (r.len > 0)
		response_parse(&r, head);
	return r;
}

/* Sends |request| on a new connection and reads the response. */
static struct response
exchange(struct fixture *fx, const char *request)
{
	int fd = client(fx, 0);
	struct response r;

	client_send(fd, request, strlen(request));
	r = client_read(fx, fd, strncmp(request, "HEAD ", 5) == 0);
	close(fd);
	if (r.reset)
		fail_msg("reset after:\n%s", r.text);
	return r;
}

static struct response
get(struct fixture *fx, const char *path)
{
	char *request =
	    xasprintf("GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
	struct response r = exchange(fx, request);

	free(request);
	return r;
}

static void
expect_body(const struct response *r, int status, const char *body)
{
	if (r->status != status || strcmp(r->body, body) != 0)
		fail_msg(
		    "expected %d with \"%s\", got:\n%s", status, body, r->text);
}

/* The reader alone: one request and the status it must get (0: the head
 * is incomplete). */
#define R(text, status)                                                        \
	{                                                                      \
		text, sizeof text - 1, status                                  \
	}

static const struct {
	const char *text;
	size_t len;
	int status;
} requests[] = {
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 200),
	R("GET /healthz HTTP/1.0\r\n\r\n", 200),
	R("GET /healthz HTTP/1.1\nHost: a\n\n", 200),
	R("GET /healthz HTTP/1.1\r\nHost: a\n\r\n", 200),
	R("GET /healthz?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n", 200),
	R("GET http://a:9188/healthz HTTP/1.1\r\nHost: a\r\n\r\n", 200),
	R("GET HTTPS://a/healthz?q HTTP/1.1\r\nHost: a\r\n\r\n", 200),
	R("GET /healthz HTTP/1.1\r\nhOsT:a\r\n\r\n", 200),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n",
	    200),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", 200),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9 \t\r\n\r\n", 200),
	R("GET /healthz HTTP/1.9\r\nHost: a\r\n\r\n", 200),
	R("HEAD /readyz HTTP/1.1\r\nHost: a\r\n\r\n", 200),
	R("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\ntrailing bytes", 200),
	R("GET /startupz HTTP/1.1\r\nHost: a\r\n\r\n\x00\xff", 200),
	R("", 0),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n", 0),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n\r", 0),
	R("\r\n\r\n", 400),
	R("\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET /healthz\r\n\r\n", 400),
	R("GET  /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
	R("GET /healthz http/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET /healthz HTTP/1.10\r\nHost: a\r\n\r\n", 400),
	R("GET /healthz HTTP/1\r\nHost: a\r\n\r\n", 400),
	R("GET /heal\x01thz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET /heal\xc3\xa9thz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("G\x00T /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GE(T /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET http:///healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
	R("GET /healthz HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n: no name\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nX: a\rz\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	    400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
	    400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
	  "Content-Length: 0\r\n\r\n",
	    400),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n",
	    400),
	R("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
	  "hello",
	    413),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "\r\n0\r\n\r\n",
	    413),
	R("GET /healthz HTTP/1.1\r\nHost: a\r\n"
	  "Content-Length: 99999999999999999999999999999\r\n\r\n",
	    413),
	R("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET /metrics/ HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET /Metrics HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET /%6detrics HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET /metrics#x HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("GET http://a?x HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("DELETE /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404),
	R("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	    405),
	R("get /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 405),
	R("OPTIONS /readyz HTTP/1.1\r\nHost: a\r\n\r\n", 405),
	R("GET /healthz HTTP/2.0\r\n\r\n", 505),
	R("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
	R("GET /healthz HTTP/0.9\r\n\r\n", 505),
};

/* Feeds |len| bytes at once; returns the status and the response. */
static int
handle_all(struct fixture *fx, const char *in, size_t len, struct buf *out)
{
	struct httpd_reader r = { 0 };

	return httpd_handle(&fx->handlers, &r, in, len, out);
}

/* Feeds the same bytes a byte at a time: every prefix but the one that
 * completes the head gets 0, and the response is the same. */
static void
check_bytewise(struct fixture *fx, const char *in, size_t len, int status,
    const struct buf *want)
{
	struct httpd_reader r = { 0 };
	struct buf out = BUF_INIT;
	int got = 0;
	size_t n;

	for (n = 1; n <= len && got == 0; n++)
		got = httpd_handle(&fx->handlers, &r, in, n, &out);
	assert_int_equal(got, status);
	assert_int_equal(buf_used(&out), buf_used(want));
	if (buf_used(want) > 0)
		assert_memory_equal(
		    buf_head(&out), buf_head(want), buf_used(want));
	buf_free(&out);
}

static void
reader_statuses(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
		const char *in = requests[i].text;
		size_t len = requests[i].len, k;
		struct buf out = BUF_INIT;
		int status = handle_all(fx, in, len, &out);
		char first[64];

		/* The status line, for the message. */
		for (k = 0; k < buf_used(&out) && k < sizeof first - 1 &&
		     buf_head(&out)[k] != '\r';
		     k++)
			first[k] = (char)buf_head(&out)[k];
		first[k] = '\0';
		if (status != requests[i].status)
			fail_msg("request %zu got %d (%s), not %d:\n%.*s", i,
			    status, first, requests[i].status, (int)len, in);
		if (status == 0)
			assert_int_equal(buf_used(&out), 0);
		else {
			char want[16];

			snprintf(want, sizeof want, "HTTP/1.1 %d ", status);
			assert_memory_equal(buf_head(&out), want, strlen(want));
		}
		check_bytewise(fx, in, len, status, &out);
		buf_free(&out);
	}
}

/* A head of exactly HTTPD_HEAD_MAX bytes is read; one byte more is not,
 * whether the excess is in the request line or a header field. */
static void
reader_head_limit(void **state)
{
	struct fixture *fx = *state;
	const char *start = "GET /healthz HTTP/1.1\r\nHost: a\r\nX: ";
	size_t len = HTTPD_HEAD_MAX + 100;
	char *in = xmalloc(len);
	struct buf out = BUF_INIT;
	size_t fill;

	memset(in, 'z', len);
	fill = HTTPD_HEAD_MAX - strlen(start) - 4;
	memcpy(in, start, strlen(start));
	memset(in + strlen(start), 'a', fill);
	memcpy(in + strlen(start) + fill, "\r\n\r\n", 4);
	assert_int_equal(handle_all(fx, in, HTTPD_HEAD_MAX, &out), 200);
	buf_clear(&out);
	/* Bytes past the limit are not looked at. */
	assert_int_equal(handle_all(fx, in, len, &out), 200);
	buf_clear(&out);

	memset(in + strlen(start), 'a', fill + 1);
	memcpy(in + strlen(start) + fill + 1, "\r\n\r\n", 4);
	assert_int_equal(handle_all(fx, in, HTTPD_HEAD_MAX - 1, &out), 0);
	assert_int_equal(handle_all(fx, in, HTTPD_HEAD_MAX, &out), 431);
	buf_append(&out, "", 1);
	assert_non_null(strstr((const char *)buf_head(&out),
	    "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	buf_clear(&out);
	assert_int_equal(handle_all(fx, in, len, &out), 431);
	check_bytewise(fx, in, len, 431, &out);

	memcpy(in, "GET /", 5);
	memset(in + 5, 'a', len - 5);
	buf_clear(&out);
	assert_int_equal(handle_all(fx, in, len, &out), 414);
	buf_free(&out);
	free(in);
}

static void
endpoints(void **state)
{
	struct fixture *fx = *state;
	struct response r;
	size_t families = 0, samples = 0;
	char err[256];
	double v = 0;

	start(fx);
	r = get(fx, "/healthz");
	expect_body(&r, 200, "ok\n");
	assert_non_null(
	    strstr(r.text, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	free(r.text);

	r = get(fx, "/metrics");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.text,
	    "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	if (promcheck(r.body, &families, &samples, err, sizeof err) != 0)
		fail_msg("%s in:\n%s", err, r.body);
	assert_int_equal(families, 2);
	assert_int_equal(samples, 2);
	assert_int_equal(promcheck_value(r.body,
			     "nats_sidecar_deliveries_total{subscription="
			     "\"orders\",outcome=\"acked\"}",
			     &v),
	    0);
	assert_true(v == 42);
	free(r.text);

	r = get(fx, "/startupz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
	fx->started = 0;
	r = get(fx, "/startupz");
	expect_body(&r, 503, "configuration not applied\n");
	free(r.text);

	r = get(fx, "/readyz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
	/* One line per failing check, as the handler gives them. */
	fx->ready = 0;
	fx->why = "nats: disconnected\nsubscription orders: not bound";
	r = get(fx, "/readyz?verbose");
	expect_body(
	    &r, 503, "nats: disconnected\nsubscription orders: not bound\n");
	assert_non_null(strstr(r.text, "HTTP/1.1 503 Service Unavailable\r\n"));
	free(r.text);
	fx->why = NULL;
	r = get(fx, "/readyz");
	expect_body(&r, 503, "not ready\n");
	free(r.text);

	r = get(fx, "http://localhost:9188/healthz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
}

/* Without handlers, /metrics is empty and the probes succeed. */
static void
no_handlers(void **state)
{
	struct fixture *fx = *state;
	struct response r;

	fx->handlers = (struct httpd_handlers){ NULL, NULL, NULL, NULL };
	start(fx);
	r = get(fx, "/metrics");
	expect_body(&r, 200, "");
	free(r.text);
	r = get(fx, "/startupz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
	r = get(fx, "/readyz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
}

static void
head_requests(void **state)
{
	struct fixture *fx = *state;
	struct response g, h;
	const char *cl;

	start(fx);
	g = get(fx, "/metrics");
	h = exchange(fx, "HEAD /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(h.status, 200);
	assert_int_equal(h.body_len, 0);
	/* The same head as GET's, Content-Length included. */
	assert_int_equal(h.len, g.len - g.body_len);
	assert_memory_equal(h.text, g.text, h.len);
	assert_non_null(cl = strstr(h.text, "\r\nContent-Length: "));
	assert_true(strtoul(cl + 18, NULL, 10) == g.body_len);
	assert_true(g.body_len > 0);
	free(g.text);
	free(h.text);

	fx->ready = 0;
	fx->why = "app: none connected\n";
	h = exchange(fx, "HEAD /readyz HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(h.status, 503);
	assert_int_equal(h.body_len, 0);
	assert_non_null(strstr(h.text, "\r\nContent-Length: 20\r\n"));
	free(h.text);
	h = exchange(fx, "HEAD /nope HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(h.status, 404);
	assert_int_equal(h.body_len, 0);
	free(h.text);
}

/* The error statuses over a real connection, each with its body. */
static void
errors(void **state)
{
	struct fixture *fx = *state;
	struct response r;
	char *big;

	start(fx);
	r = get(fx, "/nope");
	expect_body(&r, 404,
	    "not found: try /metrics, /healthz, /startupz or /readyz\n");
	free(r.text);

	r = exchange(fx, "DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
	expect_body(&r, 405, "only GET and HEAD\n");
	assert_non_null(strstr(r.text, "\r\nAllow: GET, HEAD\r\n"));
	free(r.text);

	r = exchange(fx, "GET /healthz HTTP/1.1\r\n\r\n");
	expect_body(&r, 400, "malformed request\n");
	assert_null(strstr(r.text, "Allow:"));
	free(r.text);

	r = exchange(fx,
	    "POST /metrics HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 11\r\n\r\nhello world");
	expect_body(&r, 413, "a request body is not accepted\n");
	free(r.text);

	r = exchange(fx, "GET /healthz HTTP/2.0\r\n\r\n");
	expect_body(&r, 505, "only HTTP/1.0 and HTTP/1.1\n");
	free(r.text);

	big = xmalloc(HTTPD_HEAD_MAX + 64);
	snprintf(big, HTTPD_HEAD_MAX + 64, "GET /healthz HTTP/1.1\r\nX: %0*d",
	    HTTPD_HEAD_MAX, 0);
	r = exchange(fx, big);
	expect_body(&r, 431, "request head too large\n");
	free(r.text);
	snprintf(big, HTTPD_HEAD_MAX + 64, "GET /%0*d", HTTPD_HEAD_MAX, 0);
	r = exchange(fx, big);
	expect_body(&r, 414, "request line too long\n");
	free(r.text);
	free(big);
	/* None of this touched the handlers. */
	assert_int_equal(fx->metrics_calls, 0);
}

/* A request that arrives a byte at a time is answered once complete. */
static void
split_request(void **state)
{
	struct fixture *fx = *state;
	const char *request = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
	int fd;
	struct response r;

	start(fx);
	fd = client(fx, 0);
	for (size_t i = 0; i < strlen(request); i++) {
		char tmp[16];

		client_send(fd, request + i, 1);
		pump(fx, 0.002);
		/* Nothing comes back before the head is complete. */
		if (i + 1 < strlen(request))
			assert_int_equal(
			    recv(fd, tmp, sizeof tmp, MSG_DONTWAIT), -1);
	}
	r = client_read(fx, fd, false);
	close(fd);
	assert_false(r.reset);
	expect_body(&r, 200, "ok\n");
	free(r.text);
}

/* What follows a request in the same write is neither parsed nor
 * answered, and does not cost the client its response. */
static void
pipelined_garbage(void **state)
{
	struct fixture *fx = *state;
	const char *request = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
	const char *two = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
			  "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
	size_t glen = 16 * 1024;
	char *in = xmalloc(strlen(request) + glen);
	struct response r;
	int fd;

	memcpy(in, request, strlen(request));
	for (size_t i = 0; i < glen; i++)
		in[strlen(request) + i] = (char)(i * 7 + 3);
	start(fx);
	fd = client(fx, 0);
	client_send(fd, in, strlen(request) + glen);
	r = client_read(fx, fd, false);
	close(fd);
	assert_false(r.reset);
	expect_body(&r, 200, "ok\n");
	free(r.text);

	/* Two requests at once: one response, then the connection ends. */
	fd = client(fx, 0);
	client_send(fd, two, strlen(two));
	r = client_read(fx, fd, false);
	close(fd);
	expect_body(&r, 200, "ok\n");
	assert_null(strstr(r.body, "HTTP/1.1"));
	assert_int_equal(fx->metrics_calls, 0);
	free(r.text);
	free(in);
	pump_until_idle(fx);
	assert_int_equal(httpd_buffered(fx->httpd), 0);
}

/* A client that sends a byte every 100 ms never completes its head: it is
 * closed at request_timeout, and others are served promptly meanwhile. */
static void
slowloris(void **state)
{
	struct fixture *fx = *state;
	const char *head = "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ";
	double t0, next, closed_at = 0, served_in = -1;
	size_t sent = 0;
	int fd;

	start(fx);
	fd = client(fx, 0);
	t0 = next = now_s();
	while (closed_at == 0 && now_s() < t0 + WAIT_SECONDS) {
		char c = sent < strlen(head) ? head[sent] : 'a', tmp[64];
		ssize_t n;

		if (now_s() >= next) {
			if (send(fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
				sent++;
			next += 0.1;
		}
		n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
		if (n > 0)
			fail_msg("the slow client got an answer");
		if (n == 0 || (n == -1 && errno != EAGAIN))
			closed_at = now_s();
		if (served_in < 0 && now_s() > t0 + 0.3) {
			double t = now_s();
			struct response r = get(fx, "/healthz");

			served_in = now_s() - t;
			expect_body(&r, 200, "ok\n");
			free(r.text);
		}
		ev_run(fx->loop, EVRUN_ONCE);
	}
	close(fd);
	if (closed_at == 0 || closed_at - t0 < 0.9 || closed_at - t0 > 2.0)
		fail_msg("closed after %.3f s, not after request_timeout (1 s)",
		    closed_at - t0);
	/* It kept sending all along. */
	assert_true(sent >= 8);
	assert_true(served_in >= 0 && served_in < 0.5);
	pump_until_idle(fx);
}

/* At max_connections the server accepts no more; the next connection
 * waits in the listen queue and is served as soon as one closes. */
static void
max_connections(void **state)
{
	struct fixture *fx = *state;
	const char *request = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
	int a, b, c;
	char tmp[16];
	struct response r;
	double t;

	fx->cfg.max_connections = 2;
	fx->cfg.request_timeout = 10000 * MS;
	start(fx);
	a = client(fx, 0);
	b = client(fx, 0);
	pump(fx, 0.05);
	assert_int_equal(httpd_connections(fx->httpd), 2);
	c = client(fx, 0);
	client_send(c, request, strlen(request));
	pump(fx, 0.2);
	assert_int_equal(httpd_connections(fx->httpd), 2);
	assert_int_equal(recv(c, tmp, sizeof tmp, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);

	close(a);
	t = now_s();
	r = client_read(fx, c, false);
	assert_true(now_s() - t < 0.5);
	expect_body(&r, 200, "ok\n");
	free(r.text);
	close(c);
	close(b);
	pump_until_idle(fx);

	/* And it accepts again up to the limit. */
	r = get(fx, "/healthz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
}

/* A response the client does not read is dropped at response_timeout;
 * the loop serves others meanwhile. */
static void
client_not_reading(void **state)
{
	struct fixture *fx = *state;
	const char *request = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
	double t0, dropped_at = 0;
	struct response r;
	int fd;

	fx->big = 16 * 1024 * 1024;
	fx->cfg.response_timeout = 500 * MS;
	start(fx);
	fd = client(fx, 4096);
	client_send(fd, request, strlen(request));
	/* The clock starts once the response is being written. */
	while (httpd_buffered(fx->httpd) == 0)
		ev_run(fx->loop, EVRUN_ONCE);
	t0 = now_s();
	pump(fx, 0.1);
	assert_int_equal(httpd_connections(fx->httpd), 1);
	/* What the socket did not take is still held. */
	assert_true(httpd_buffered(fx->httpd) > 1024 * 1024);
	r = get(fx, "/healthz");
	expect_body(&r, 200, "ok\n");
	free(r.text);
	while (httpd_connections(fx->httpd) > 0 && now_s() < t0 + WAIT_SECONDS)
		ev_run(fx->loop, EVRUN_ONCE);
	dropped_at = now_s() - t0;
	if (httpd_connections(fx->httpd) > 0 || dropped_at < 0.4 ||
	    dropped_at > 1.5)
		fail_msg("dropped after %.3f s, not after response_timeout "
			 "(0.5 s)",
		    dropped_at);
	assert_int_equal(httpd_buffered(fx->httpd), 0);
	close(fd);
}

/* 10,000 requests, sequential, with errors among them: nothing stays
 * behind, and at most the connection being served holds anything. */
static void
many_requests(void **state)
{
	struct fixture *fx = *state;
	static const char *const paths[] = { "/healthz", "/metrics", "/readyz",
		"/nope" };
	static const int statuses[] = { 200, 200, 503, 404 };

	fx->ready = 0;
	fx->why = "store: full\n";
	start(fx);
	for (int i = 0; i < 10000; i++) {
		char *request = xasprintf(
		    "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", paths[i % 4]);
		int fd = client(fx, 0);
		struct response r;

		/* Every other request in two parts, a loop turn apart, so
		 * that the server holds a partial head between turns. */
		if (i % 2 == 1) {
			client_send(fd, request, 10);
			ev_run(fx->loop, EVRUN_ONCE);
			ev_run(fx->loop, EVRUN_ONCE);
			client_send(fd, request + 10, strlen(request) - 10);
		} else
			client_send(fd, request, strlen(request));
		r = client_read(fx, fd, false);
		close(fd);
		free(request);

		if (r.status != statuses[i % 4])
			fail_msg("request %d: %s", i, r.text);
		free(r.text);
		assert_true(httpd_connections(fx->httpd) <= 2);
		if (i % 1000 == 999) {
			pump_until_idle(fx);
			assert_int_equal(httpd_buffered(fx->httpd), 0);
		}
	}
	/* A head buffer and a response at most, for two connections (one
	 * being served, one lingering after its response). */
	if (fx->peak_buffered == 0 || fx->peak_buffered > 3 * HTTPD_HEAD_MAX)
		fail_msg(
		    "the server held %zu bytes at its peak", fx->peak_buffered);
	assert_int_equal(fx->metrics_calls, 2500);
}

/* Freeing the server with connections in every state leaves nothing
 * behind (the sanitizers check). */
static void
free_busy(void **state)
{
	struct fixture *fx = *state;
	const char *request = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
	int idle, writing, lingering;
	struct response r;

	fx->big = 16 * 1024 * 1024;
	start(fx);
	idle = client(fx, 0);
	client_send(idle, "GET /hea", 8);
	writing = client(fx, 4096);
	client_send(writing, request, strlen(request));
	lingering = client(fx, 0);
	client_send(lingering, "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 35);
	pump(fx, 0.1);
	assert_int_equal(httpd_connections(fx->httpd), 3);
	httpd_free(fx->httpd);
	fx->httpd = NULL;
	/* The lingering client has its response; all see the end. */
	r = client_read(fx, lingering, true);
	assert_int_equal(r.status, 200);
	free(r.text);
	r = client_read(fx, idle, false);
	assert_int_equal(r.len, 0);
	free(r.text);
	close(idle);
	close(writing);
	close(lingering);
	httpd_free(NULL);
}

/* Addresses that cannot be listened on fail at setup, saying why. */
static void
bad_addresses(void **state)
{
	struct fixture *fx = *state;
	struct config_http other = fx->cfg;
	char addr[32];

	start(fx);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", httpd_port(fx->httpd));
	other.listen = addr;
	assert_null(httpd_new(fx->loop, &other, &fx->handlers));
	other.listen = "localhost:9188";
	assert_null(httpd_new(fx->loop, &other, &fx->handlers));
	/* TEST-NET-1 is on no interface here. */
	other.listen = "192.0.2.1:9188";
	assert_null(httpd_new(fx->loop, &other, &fx->handlers));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    reader_statuses, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    reader_head_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(no_handlers, setup, teardown),
		cmocka_unit_test_setup_teardown(head_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(errors, setup, teardown),
		cmocka_unit_test_setup_teardown(split_request, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    pipelined_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(slowloris, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    max_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    client_not_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(many_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(free_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_addresses, setup, teardown),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
