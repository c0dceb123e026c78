#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static volatile int log_level = LOG_LEVEL_INFO;
static volatile int log_fd = STDERR_FILENO;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s, enum log_level *level)
{
	for (size_t i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return log_names[level];
}

void
log_set_fd(int fd)
{
	log_fd = fd;
}

/* Appends |s| as a JSON string body, escaped, truncating at the buffer end. */
static size_t
log_escape(char *buf, size_t off, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s != '\0' && off + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[off++] = '\\';
			buf[off++] = (char)c;
		} else if (c == '\n') {
			buf[off++] = '\\';
			buf[off++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(buf + off, "\\u00", 4);
			buf[off + 4] = hex[c >> 4];
			buf[off + 5] = hex[c & 0xf];
			off += 6;
		} else
			buf[off++] = (char)c;
	}
	return off;
}

static size_t
log_field(char *buf, size_t off, size_t cap, const char *key, const char *val)
{
	if (val == NULL || off + 16 + strlen(key) >= cap)
		return off;
	off += (size_t)snprintf(buf + off, cap - off, ",\"%s\":\"", key);
	off = log_escape(buf, off, cap, val);
	if (off < cap - 1)
		buf[off++] = '"';
	return off;
}

static void log_vemit(enum log_level, const struct log_ctx *, const char *, int,
    const char *, va_list) __attribute__((format(printf, 5, 0)));

static void
log_vemit(enum log_level level, const struct log_ctx *ctx, const char *event,
    int errnum, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX / 2], when[40];
	struct timespec ts;
	struct tm tm;
	size_t off;
	int n;

	if ((int)level < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n >= 0 && errnum != 0 && (size_t)n < sizeof msg)
		snprintf(
		    msg + n, sizeof msg - (size_t)n, ": %s", strerror(errnum));

	off = (size_t)snprintf(line, sizeof line,
	    "{\"time\":\"%s.%06ldZ\",\"level\":\"%s\"", when, ts.tv_nsec / 1000,
	    log_names[level]);
	off = log_field(line, off, sizeof line, "event", event);
	if (ctx != NULL) {
		off = log_field(
		    line, off, sizeof line, "subscription", ctx->subscription);
		off =
		    log_field(line, off, sizeof line, "subject", ctx->subject);
		if (ctx->stream_seq != 0 && off + 40 < sizeof line)
			off += (size_t)snprintf(line + off, sizeof line - off,
			    ",\"stream_seq\":%llu",
			    (unsigned long long)ctx->stream_seq);
		off = log_field(line, off, sizeof line, "msg_id", ctx->msg_id);
		off = log_field(
		    line, off, sizeof line, "trace_id", ctx->trace_id);
	}
	off = log_field(line, off, sizeof line, "msg", msg);
	if (off > sizeof line - 3)
		off = sizeof line - 3;
	line[off++] = '}';
	line[off++] = '\n';
	/* A lost log line is not worth failing over. */
	if (write(log_fd, line, off) < 0)
		return;
}

void
log_emit(enum log_level level, const struct log_ctx *ctx, const char *event,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, ctx, event, 0, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *event, const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, NULL, event, errnum, fmt, ap);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, NULL, "fatal", 0, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, NULL, "fatal", errnum, fmt, ap);
	va_end(ap);
	exit(1);
}
