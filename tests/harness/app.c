#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/app.h"
#include "harness/proc.h"
#include "sidecar/xmalloc.h"

#define ARGS_MAX 32
#define START_TIMEOUT_MS 10000
#define COMMAND_TIMEOUT_MS 5000
#define READ_CHUNK 65536

/* An event and the memory behind it. */
struct record {
	struct testapp_event ev;
	char **fields;
	size_t *lens;
};

struct testapp {
	pid_t pid;
	int in; /* our end of the app's stdin */
	char dir[256];
	char log[300]; /* the event log */
	char stderr[300]; /* what the app printed */
	long off; /* bytes of the log consumed */
	char *partial; /* a line not yet ended */
	size_t npartial;
	struct record **recs;
	size_t nrecs, crecs;
};

/* Unescapes |s| in place (the log's \\ \t \n \r \xHH); returns the length. */
static size_t
unescape(char *s)
{
	char *start = s, *out = s, hex[3] = { 0 };

	for (; *s != '\0'; s++) {
		if (*s != '\\' || s[1] == '\0') {
			*out++ = *s;
			continue;
		}
		switch (*++s) {
		case 't':
			*out++ = '\t';
			break;
		case 'n':
			*out++ = '\n';
			break;
		case 'r':
			*out++ = '\r';
			break;
		case 'x':
			if (s[1] != '\0' && s[2] != '\0') {
				hex[0] = s[1];
				hex[1] = s[2];
				*out++ = (char)strtoul(hex, NULL, 16);
				s += 2;
			}
			break;
		default:
			*out++ = *s;
		}
	}
	*out = '\0';
	return (size_t)(out - start);
}

/* Field |i| of |r|, or "" past the end. */
static const char *
field(const struct record *r, size_t i)
{
	return i < r->ev.nfields ? r->fields[i + 2] : "";
}

/* Parses one log line into a record. */
static struct record *
parse_line(const char *line)
{
	struct record *r = xcalloc(1, sizeof *r);
	struct testapp_event *ev = &r->ev;
	size_t n = 1;
	const char *p;
	char *copy;

	for (p = line; *p != '\0'; p++)
		n += *p == '\t';
	r->fields = xcalloc(n < 2 ? 2 : n, sizeof *r->fields);
	r->lens = xcalloc(n < 2 ? 2 : n, sizeof *r->lens);
	copy = xstrdup(line);
	n = 0;
	for (char *tok = copy, *next; tok != NULL; tok = next) {
		if ((next = strchr(tok, '\t')) != NULL)
			*next++ = '\0';
		r->fields[n] = xstrdup(tok);
		r->lens[n] = unescape(r->fields[n]);
		n++;
	}
	free(copy);
	if (n < 2)
		r->fields[n++] = xstrdup("0");
	ev->kind = r->fields[0];
	ev->id = strtoull(r->fields[1], NULL, 10);
	ev->fields = (const char *const *)r->fields + 2;
	ev->nfields = n - 2;

	if (strcmp(ev->kind, "publish_ack") == 0) {
		ev->status = field(r, 0);
		ev->stream = field(r, 1);
		ev->sequence = strtoull(field(r, 2), NULL, 10);
		ev->duplicate = strcmp(field(r, 3), "1") == 0;
		ev->error = field(r, 4);
	} else {
		ev->status = ev->stream = ev->error = "";
	}
	if (strcmp(ev->kind, "delivery") == 0 || strcmp(ev->kind, "ack") == 0 ||
	    strcmp(ev->kind, "retry") == 0 || strcmp(ev->kind, "reject") == 0 ||
	    strcmp(ev->kind, "in_progress") == 0) {
		ev->subscription = field(r, 0);
		ev->subject = field(r, 1);
		ev->attempt = (uint32_t)strtoul(field(r, 2), NULL, 10);
		ev->stream_sequence = strtoull(field(r, 3), NULL, 10);
		ev->message_id = field(r, 4);
		ev->payload = field(r, 5);
		ev->payload_len = ev->nfields > 5 ? r->lens[7] : 0;
		ev->nheaders = (unsigned)strtoul(field(r, 6), NULL, 10);
		ev->traceparent = field(r, 7);
	} else {
		ev->subscription = ev->subject = ev->message_id = ev->payload =
		    ev->traceparent = "";
	}
	return r;
}

static void
record_free(struct record *r)
{
	for (size_t i = 0; i < r->ev.nfields + 2; i++)
		free(r->fields[i]);
	free(r->fields);
	free(r->lens);
	free(r);
}

struct testapp *
testapp_start(const char *socket, const char *arg, ...)
{
	struct testapp *t = xcalloc(1, sizeof *t);
	char path[512];
	const char *argv[ARGS_MAX + 6];
	int sv[2], argc = 0, status;
	int64_t deadline;
	va_list ap;

	t->pid = -1;
	t->in = -1;
	if (proc_tmpdir(t->dir, sizeof t->dir, "testapp") == -1) {
		free(t);
		return NULL;
	}
	snprintf(t->log, sizeof t->log, "%s/events.log", t->dir);
	snprintf(t->stderr, sizeof t->stderr, "%s/stderr.log", t->dir);
	proc_tree_path(
	    path, sizeof path, "top_builddir", "tests/harness/testapp");
	argv[argc++] = path;
	argv[argc++] = "--socket";
	argv[argc++] = socket;
	argv[argc++] = "--log";
	argv[argc++] = t->log;
	va_start(ap, arg);
	for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
		if (argc == ARGS_MAX + 5) {
			fprintf(stderr, "# testapp: more than %d arguments\n",
			    ARGS_MAX);
			va_end(ap);
			goto fail;
		}
		argv[argc++] = a;
	}
	va_end(ap);
	argv[argc] = NULL;

	/* A socket, not a pipe, so that writing to an app that died gives
	 * an error instead of SIGPIPE. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		fprintf(stderr, "# testapp: socketpair: %s\n", strerror(errno));
		goto fail;
	}
	t->pid = proc_spawn((char *const *)argv, sv[1], t->stderr);
	close(sv[1]);
	t->in = sv[0];
	if (t->pid == -1)
		goto fail;

	deadline = proc_now_ms() + START_TIMEOUT_MS;
	while (testapp_count(t, "connected") == 0) {
		if (proc_exited(&t->pid, &status)) {
			fprintf(stderr,
			    "# testapp: exited with status %d "
			    "before connecting\n",
			    status);
			goto fail_show;
		}
		if (proc_now_ms() >= deadline) {
			fprintf(stderr,
			    "# testapp: not connected within %d ms\n",
			    START_TIMEOUT_MS);
			goto fail_show;
		}
		proc_sleep_ms(5);
	}
	return t;

fail_show:
	proc_show("testapp stderr", t->stderr);
fail:
	testapp_free(t);
	return NULL;
}

void
testapp_free(struct testapp *t)
{
	if (t == NULL)
		return;
	proc_kill(&t->pid);
	if (t->in != -1)
		close(t->in);
	for (size_t i = 0; i < t->nrecs; i++)
		record_free(t->recs[i]);
	free(t->recs);
	free(t->partial);
	proc_rmtree(t->dir);
	free(t);
}

pid_t
testapp_pid(const struct testapp *t)
{
	return t->pid;
}

const char *
testapp_log_path(const struct testapp *t)
{
	return t->log;
}

int
testapp_command(struct testapp *t, const char *line)
{
	char *s = xasprintf("%s\n", line);
	size_t len = strlen(s), off = 0, before = testapp_count(t, "command");
	ssize_t n;

	while (off < len) {
		n = send(t->in, s + off, len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "# testapp: command \"%s\": %s\n", line,
			    strerror(errno));
			free(s);
			return -1;
		}
		off += (size_t)n;
	}
	free(s);
	return testapp_wait_for(t, "command", before + 1, COMMAND_TIMEOUT_MS);
}

/* Adds the whole lines of |buf| to the records, keeping a partial one. */
static void
take_lines(struct testapp *t, const char *buf, size_t len)
{
	char *nl, *line;

	t->partial = xreallocarray(t->partial, t->npartial + len + 1, 1);
	memcpy(t->partial + t->npartial, buf, len);
	t->npartial += len;
	t->partial[t->npartial] = '\0';
	line = t->partial;
	while ((nl = memchr(line, '\n',
		    t->npartial - (size_t)(line - t->partial))) != NULL) {
		*nl = '\0';
		if (t->nrecs == t->crecs) {
			t->crecs = t->crecs == 0 ? 64 : t->crecs * 2;
			t->recs =
			    xreallocarray(t->recs, t->crecs, sizeof *t->recs);
		}
		t->recs[t->nrecs++] = parse_line(line);
		line = nl + 1;
	}
	t->npartial -= (size_t)(line - t->partial);
	memmove(t->partial, line, t->npartial + 1);
}

size_t
testapp_poll(struct testapp *t)
{
	char *buf = xmalloc(READ_CHUNK);
	size_t n;
	FILE *f;

	if ((f = fopen(t->log, "r")) != NULL) {
		if (fseek(f, t->off, SEEK_SET) == 0) {
			while ((n = fread(buf, 1, READ_CHUNK, f)) > 0) {
				t->off += (long)n;
				take_lines(t, buf, n);
			}
		}
		fclose(f);
	}
	free(buf);
	return t->nrecs;
}

const struct testapp_event *
testapp_event(const struct testapp *t, size_t i)
{
	return i < t->nrecs ? &t->recs[i]->ev : NULL;
}

const struct testapp_event *
testapp_find(struct testapp *t, const char *kind, size_t n)
{
	testapp_poll(t);
	for (size_t i = 0; i < t->nrecs; i++) {
		if (strcmp(t->recs[i]->ev.kind, kind) == 0 && n-- == 0)
			return &t->recs[i]->ev;
	}
	return NULL;
}

size_t
testapp_count(struct testapp *t, const char *kind)
{
	size_t n = 0;

	testapp_poll(t);
	for (size_t i = 0; i < t->nrecs; i++)
		n += strcmp(t->recs[i]->ev.kind, kind) == 0;
	return n;
}

int
testapp_wait_for(struct testapp *t, const char *kind, size_t n, int timeout_ms)
{
	int64_t deadline = proc_now_ms() + timeout_ms;
	size_t have;

	while ((have = testapp_count(t, kind)) < n) {
		if (proc_now_ms() >= deadline) {
			fprintf(stderr,
			    "# testapp: %zu \"%s\" events after %d "
			    "ms, wanted %zu\n",
			    have, kind, timeout_ms, n);
			proc_show("testapp events", t->log);
			proc_show("testapp stderr", t->stderr);
			return -1;
		}
		proc_sleep_ms(5);
	}
	return 0;
}

int
testapp_wait_deliveries(struct testapp *t, size_t n, int timeout_ms)
{
	return testapp_wait_for(t, "delivery", n, timeout_ms);
}

int
testapp_wait(struct testapp *t, int timeout_ms)
{
	return proc_wait(&t->pid, timeout_ms);
}

int
testapp_stop(struct testapp *t, int timeout_ms)
{
	if (testapp_command(t, "quit") == -1)
		return -1;
	return testapp_wait(t, timeout_ms);
}

int
testapp_kill(struct testapp *t)
{
	return proc_kill(&t->pid);
}
