/*
 * The HTTP server of /metrics, /healthz, /startupz and /readyz, served from
 * the loop: HTTP/1.1, GET and HEAD only, no request body, one request per
 * connection (every response says Connection: close). Everything a client
 * can make it hold is bounded: the request head (HTTPD_HEAD_MAX bytes), the
 * connections (max_connections; more wait in the kernel's listen queue),
 * the time to send the request head (request_timeout) and the time to take
 * the response (response_timeout).
 *
 * The protocol itself, bytes in to response out, is httpd_handle(), which
 * does no I/O; the server runs it on what each connection has sent so far,
 * and tests and the fuzz target call it directly.
 */
#ifndef SIDECAR_HTTPD_H
#define SIDECAR_HTTPD_H

#include <sys/socket.h>

#include <stddef.h>

struct buf;
struct config_http;
struct ev_loop;

/* The largest request head (request line and header fields) read. */
#define HTTPD_HEAD_MAX 8192

/*
 * What the endpoints answer, called on the loop thread while a request is
 * served. Every hook may be NULL: /metrics is then empty, and /startupz
 * and /readyz always succeed.
 */
struct httpd_handlers {
	/* Appends the /metrics body (text exposition format 0.0.4). */
	void (*metrics)(void *arg, struct buf *out);
	/* Returns 1 when started; otherwise appends why, as text. */
	int (*startup)(void *arg, struct buf *why);
	/* Returns 1 when ready; otherwise appends one line per failing
	 * check. */
	int (*ready)(void *arg, struct buf *why);
	void *arg;
};

/*
 * Listens on |cfg|->listen (which is not "off") and serves on |loop|.
 * Returns NULL after logging when the address cannot be used (malformed,
 * in use, not local). |cfg| and |h|->arg must outlive the server; |h| is
 * copied.
 */
struct httpd *httpd_new(struct ev_loop *, const struct config_http *cfg,
    const struct httpd_handlers *h);
/* Closes the listening socket and every connection. */
void httpd_free(struct httpd *);

/* The port listened on: the configured one, or the one the kernel chose
 * for port 0. */
int httpd_port(const struct httpd *);
/* Connections open now, and the bytes their buffers hold allocated. */
size_t httpd_connections(const struct httpd *);
size_t httpd_buffered(const struct httpd *);

/*
 * Parses "IPV4:PORT" or "[IPV6]:PORT" (numeric addresses, PORT 0 to 65535)
 * into |ss| and |len|. Returns 0, or -1 if |s| is not of that form; logs
 * nothing.
 */
int httpd_address_parse(
    const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Where the reader of one connection is; zeroed before its first byte. */
struct httpd_reader {
	size_t scanned; /* bytes searched for the end of the head */
	size_t line; /* start of the line being read */
};

/*
 * Reads the request in |in| (|len| bytes: everything the connection has
 * sent so far, the same bytes again plus new ones on each call). Returns 0
 * while the head is incomplete and shorter than HTTPD_HEAD_MAX; otherwise
 * appends the whole response to |out| and returns its status code. Bytes
 * after the head, and after the first HTTPD_HEAD_MAX, are never looked at.
 */
int httpd_handle(const struct httpd_handlers *, struct httpd_reader *,
    const void *in, size_t len, struct buf *out);

#endif
