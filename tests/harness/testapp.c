/*
 * testapp: a scriptable app for integration tests, built on the client
 * library. It connects to the sidecar, answers deliveries as its options
 * and stdin commands say, and logs every event.
 *
 *   testapp --socket PATH [--capacity N] [--name NAME] [--log FILE]
 *           [--mode ack|retry|reject|hang] [--retry-delay-ms N]
 *           [--sleep-ms N [--in-progress-ms M]] [--fail-first N]
 *           [--reject-if-payload-contains STR] [--crash-after N]
 *           [--exit-after N]
 *
 * Each delivery is answered after --sleep-ms (while others wait and are
 * answered concurrently, up to the capacity), with IN_PROGRESS every
 * --in-progress-ms meanwhile. The answer is decided when the delivery
 * arrives: REJECT if the payload contains --reject-if-payload-contains;
 * else RETRY while its attempt is at most --fail-first; else the mode
 * (hang: never answered). --crash-after N: SIGKILL itself right after the
 * Nth delivery, answering nothing more. --exit-after N: close cleanly
 * once N ACKs are written.
 *
 * Commands on stdin, one per line; "mode" and "sleep" apply to deliveries
 * that arrive afterwards:
 *   mode ack|retry|reject|hang
 *   sleep MS
 *   crash                            SIGKILL itself
 *   quit                             close cleanly now
 *   publish SUBJECT MSGID PAYLOAD    MSGID "-" for none; PAYLOAD is the
 *                                    rest of the line
 *
 * The log (--log, default stdout) gets one line per event, appended and
 * flushed at once, with tab-separated fields. Text fields are escaped:
 * backslash, tab, newline and carriage return as \\ \t \n \r, and any
 * other byte below 0x20 or above 0x7e as \xHH.
 *   connected    0   HEARTBEAT_MS SIDECAR_VERSION INSTANCE_ID
 *   delivery     ID  SUBSCRIPTION SUBJECT ATTEMPT STREAM_SEQUENCE
 *                    MESSAGE_ID PAYLOAD HEADER_COUNT TRACEPARENT
 *   ack, retry, reject, in_progress: what was sent for a delivery, with
 *                    the same fields as its delivery line
 *   command      0   LINE (each line read from stdin, before it acts)
 *   publish      ID  SUBJECT MESSAGE_ID
 *   publish_ack  ID  STATUS STREAM SEQUENCE DUPLICATE(0/1) ERROR
 *                    (STATUS: OK, NO_STREAM, TIMEOUT, REJECTED,
 *                    NOT_CONNECTED, INVALID or the number)
 *   error        REF_ID CODE FATAL(0/1) MESSAGE
 *   drain        0   GRACE_MS
 *   closed       0   REASON
 *
 * Exit status: 0 after a drain (once it holds nothing more, or when the
 * sidecar closes), "quit" or --exit-after; 1 if the connection is lost
 * otherwise; 2 for a bad command line or a failed connection.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/client/nsc.h"
#include "sidecar/xmalloc.h"

#define LINE_MAX_STDIN 65536

enum answer {
	ANSWER_ACK,
	ANSWER_RETRY,
	ANSWER_REJECT,
	ANSWER_HANG,
};

static const char *const answer_names[] = { "ack", "retry", "reject", "hang" };

/* A delivery held until its answer is due. */
struct pending {
	uint64_t id;
	enum answer answer;
	int64_t due; /* ms; the answer is sent then */
	int64_t next_progress; /* ms; -1: no IN_PROGRESS */
	char *fields; /* its log fields after the kind */
};

struct state {
	struct nsc *c;
	FILE *log;
	/* Behaviour. */
	enum answer mode;
	uint32_t retry_delay_ms;
	int sleep_ms;
	int in_progress_ms;
	uint32_t fail_first;
	const char *reject_str;
	unsigned long crash_after;
	unsigned long exit_after;
	/* State. */
	struct pending *pending;
	size_t npending, cpending;
	unsigned long ndeliveries, nacks;
	uint64_t last_publish;
	bool drained;
	char line[LINE_MAX_STDIN];
	size_t linelen;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends |len| bytes of |s| to |f|, escaped for one log field. */
static void
put_escaped(FILE *f, const void *s, size_t len)
{
	const unsigned char *p = s;

	for (size_t i = 0; i < len; i++) {
		switch (p[i]) {
		case '\\':
			fputs("\\\\", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (p[i] < 0x20 || p[i] > 0x7e)
				fprintf(f, "\\x%02x", p[i]);
			else
				fputc(p[i], f);
		}
	}
}

/* Writes one log line: |kind|, |id|, then the text of |fmt|. */
static void __attribute__((format(printf, 4, 5)))
log_line(struct state *t, const char *kind, uint64_t id, const char *fmt, ...)
{
	va_list ap;

	fprintf(t->log, "%s\t%" PRIu64 "\t", kind, id);
	va_start(ap, fmt);
	vfprintf(t->log, fmt, ap);
	va_end(ap);
	fputc('\n', t->log);
	fflush(t->log);
}

/* The escaped form of a string, for log_line(); the caller frees it. */
static char *
esc(const void *s, size_t len)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	if (f == NULL)
		abort();
	put_escaped(f, s, len);
	fclose(f);
	return out;
}

static char *
esc_str(const char *s)
{
	return esc(s, strlen(s));
}

/* Logs the end of the connection and exits. */
static void __attribute__((noreturn))
finish(struct state *t, const char *why, int status)
{
	char *e = esc_str(why);

	if (t->c != NULL)
		(void)nsc_flush(t->c);
	log_line(t, "closed", 0, "%s", e);
	free(e);
	nsc_close(t->c);
	exit(status);
}

/* Sends |kind| (an answer or IN_PROGRESS) for |p| and logs it. */
static void
send_answer(struct state *t, const struct pending *p, const char *kind)
{
	int rc;

	if (strcmp(kind, "ack") == 0)
		rc = nsc_ack(t->c, p->id);
	else if (strcmp(kind, "retry") == 0)
		rc = nsc_retry(t->c, p->id, t->retry_delay_ms, "testapp retry");
	else if (strcmp(kind, "reject") == 0)
		rc = nsc_reject(t->c, p->id, "testapp reject");
	else
		rc = nsc_in_progress(t->c, p->id);
	if (rc == -1)
		finish(t, nsc_last_error(t->c), t->drained ? 0 : 1);
	log_line(t, kind, p->id, "%s", p->fields);
}

/* Sends what is due by |now|; returns the next time something is due,
 * or -1. */
static int64_t
answer_due(struct state *t, int64_t now)
{
	int64_t next = -1;
	size_t i = 0;

	while (i < t->npending) {
		struct pending *p = &t->pending[i];

		if (p->answer != ANSWER_HANG && p->due <= now) {
			send_answer(t, p, answer_names[p->answer]);
			if (p->answer == ANSWER_ACK)
				t->nacks++;
			free(p->fields);
			*p = t->pending[--t->npending];
			continue;
		}
		if (p->next_progress >= 0 && p->next_progress <= now) {
			send_answer(t, p, "in_progress");
			p->next_progress = now + t->in_progress_ms;
		}
		if (p->answer != ANSWER_HANG && (next == -1 || p->due < next))
			next = p->due;
		if (p->next_progress >= 0 &&
		    (next == -1 || p->next_progress < next))
			next = p->next_progress;
		i++;
	}
	return next;
}

static void
on_delivery(struct state *t, const struct nsc_delivery *d)
{
	char *sub = esc_str(d->subscription), *subject = esc_str(d->subject),
	     *msgid = esc_str(d->message_id),
	     *payload = esc(d->payload, d->payload_len),
	     *trace = esc_str(d->traceparent);
	struct pending *p;
	int64_t now = now_ms();

	if (t->npending == t->cpending) {
		t->cpending = t->cpending == 0 ? 16 : t->cpending * 2;
		t->pending =
		    xreallocarray(t->pending, t->cpending, sizeof *t->pending);
	}
	p = &t->pending[t->npending++];
	p->id = d->id;
	p->fields = xasprintf(
	    "%s\t%s\t%" PRIu32 "\t%" PRIu64 "\t%s\t%s\t%zu\t%s", sub, subject,
	    d->attempt, d->stream_sequence, msgid, payload, d->nheaders, trace);
	free(sub);
	free(subject);
	free(msgid);
	free(payload);
	free(trace);
	log_line(t, "delivery", d->id, "%s", p->fields);

	if (t->crash_after > 0 && ++t->ndeliveries >= t->crash_after)
		kill(getpid(), SIGKILL);
	if (t->reject_str != NULL &&
	    memmem(d->payload, d->payload_len, t->reject_str,
		strlen(t->reject_str)) != NULL)
		p->answer = ANSWER_REJECT;
	else if (d->attempt <= t->fail_first)
		p->answer = ANSWER_RETRY;
	else
		p->answer = t->mode;
	p->due = now + t->sleep_ms;
	p->next_progress = t->in_progress_ms > 0 && t->sleep_ms > 0
	    ? now + t->in_progress_ms
	    : -1;
}

static const char *
status_name(enum nsc_publish_status s, char *buf, size_t len)
{
	static const char *const names[] = { NULL, "OK", "NO_STREAM", "TIMEOUT",
		"REJECTED", "NOT_CONNECTED", "INVALID" };

	if ((unsigned)s < sizeof names / sizeof names[0] && names[s] != NULL)
		return names[s];
	snprintf(buf, len, "%d", (int)s);
	return buf;
}

static void
on_event(struct state *t, const struct nsc_event *ev)
{
	char *a, *b, num[16];

	switch (ev->kind) {
	case NSC_EVENT_DELIVERY:
		on_delivery(t, &ev->delivery);
		break;
	case NSC_EVENT_PUBLISH_ACK:
		a = esc_str(ev->publish_ack.stream);
		b = esc_str(ev->publish_ack.error);
		log_line(t, "publish_ack", ev->publish_ack.id,
		    "%s\t%s\t%" PRIu64 "\t%d\t%s",
		    status_name(ev->publish_ack.status, num, sizeof num), a,
		    ev->publish_ack.sequence, ev->publish_ack.duplicate, b);
		free(a);
		free(b);
		break;
	case NSC_EVENT_ERROR:
		a = esc_str(ev->error.message);
		log_line(t, "error", ev->error.ref_id, "%d\t%d\t%s",
		    (int)ev->error.code, ev->error.fatal, a);
		free(a);
		break;
	case NSC_EVENT_DRAIN:
		t->drained = true;
		log_line(t, "drain", 0, "%" PRIu32, ev->drain.grace_ms);
		break;
	case NSC_EVENT_NONE:
		break;
	}
}

static int
parse_mode(const char *s, enum answer *out)
{
	for (int i = 0; i <= ANSWER_HANG; i++) {
		if (strcmp(s, answer_names[i]) == 0) {
			*out = (enum answer)i;
			return 0;
		}
	}
	return -1;
}

/* Parses a count or a duration in ms: a decimal in [0, INT32_MAX]. */
static int
parse_num(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' ||
	    *out > INT32_MAX)
		return -1;
	return 0;
}

static void
cmd_publish(struct state *t, char *args)
{
	char *subject = strtok(args, " "), *msgid = strtok(NULL, " ");
	char *payload = strtok(NULL, ""), *e1, *e2;

	if (subject == NULL || msgid == NULL) {
		fprintf(
		    stderr, "testapp: usage: publish SUBJECT MSGID PAYLOAD\n");
		return;
	}
	if (payload == NULL)
		payload = "";
	if (strcmp(msgid, "-") == 0)
		msgid = "";
	if (nsc_publish(t->c, ++t->last_publish, subject, NULL, 0, payload,
		strlen(payload), msgid, NULL) == -1) {
		fprintf(stderr, "testapp: publish: %s\n", nsc_last_error(t->c));
		return;
	}
	e1 = esc_str(subject);
	e2 = esc_str(msgid);
	log_line(t, "publish", t->last_publish, "%s\t%s", e1, e2);
	free(e1);
	free(e2);
}

/* Carries out one line from stdin, logged first so that a test knows
 * when it took effect. */
static void
command(struct state *t, char *line)
{
	char *arg = strchr(line, ' '), *e = esc_str(line);
	unsigned long n;

	log_line(t, "command", 0, "%s", e);
	free(e);
	if (arg != NULL)
		*arg++ = '\0';
	if (strcmp(line, "mode") == 0 && arg != NULL &&
	    parse_mode(arg, &t->mode) == 0)
		return;
	if (strcmp(line, "sleep") == 0 && arg != NULL &&
	    parse_num(arg, &n) == 0) {
		t->sleep_ms = (int)n;
		return;
	}
	if (strcmp(line, "crash") == 0)
		kill(getpid(), SIGKILL);
	if (strcmp(line, "quit") == 0)
		finish(t, "quit", 0);
	if (strcmp(line, "publish") == 0 && arg != NULL) {
		cmd_publish(t, arg);
		return;
	}
	fprintf(stderr, "testapp: unknown command: %s%s%s\n", line,
	    arg != NULL ? " " : "", arg != NULL ? arg : "");
}

/* Reads stdin and carries out whole lines; returns -1 at its end. */
static int
read_commands(struct state *t)
{
	ssize_t n;
	char *nl;

	/* poll() said it is readable: this read does not block. */
	n = read(STDIN_FILENO, t->line + t->linelen,
	    sizeof t->line - 1 - t->linelen);
	if (n <= 0)
		return n == -1 && errno == EINTR ? 0 : -1;
	t->linelen += (size_t)n;
	t->line[t->linelen] = '\0';
	while ((nl = strchr(t->line, '\n')) != NULL) {
		*nl = '\0';
		command(t, t->line);
		t->linelen -= (size_t)(nl + 1 - t->line);
		memmove(t->line, nl + 1, t->linelen + 1);
	}
	/* A line longer than the buffer is dropped. */
	if (t->linelen == sizeof t->line - 1)
		t->linelen = 0;
	return 0;
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
	    "usage: testapp --socket PATH [--capacity N] [--name NAME] "
	    "[--log FILE]\n"
	    "               [--mode ack|retry|reject|hang] "
	    "[--retry-delay-ms N]\n"
	    "               [--sleep-ms N [--in-progress-ms M]] "
	    "[--fail-first N]\n"
	    "               [--reject-if-payload-contains STR] "
	    "[--crash-after N]\n"
	    "               [--exit-after N]\n");
	exit(2);
}

/* Runs until the connection ends or the app is told to go. */
static void __attribute__((noreturn)) run(struct state *t)
{
	struct nsc_event ev = NSC_EVENT_INIT;
	struct pollfd pfd[2];
	int64_t now, next;
	int rc, wait, cap = (int)nsc_heartbeat_ms(t->c) / 2;

	pfd[0].fd = nsc_fd(t->c);
	pfd[0].events = POLLIN;
	pfd[1].fd = STDIN_FILENO;
	pfd[1].events = POLLIN;
	for (;;) {
		now = now_ms();
		next = answer_due(t, now);
		if (t->exit_after > 0 && t->nacks >= t->exit_after)
			finish(t, "exit-after", 0);
		if (t->drained && t->npending == 0)
			finish(t, "drained", 0);
		if (nsc_flush(t->c) == -1)
			finish(t, nsc_last_error(t->c), t->drained ? 0 : 1);
		/* nsc_next() must run at least every heartbeat interval. */
		wait = next == -1 ? -1 : (int)(next - now);
		if (cap > 0 && (wait == -1 || wait > cap))
			wait = cap;
		if (poll(pfd, 2, wait) == -1 && errno != EINTR) {
			perror("testapp: poll");
			exit(1);
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP)) &&
		    read_commands(t) == -1)
			pfd[1].fd = -1;
		while ((rc = nsc_next(t->c, 0, &ev)) == NSC_NEXT_EVENT)
			on_event(t, &ev);
		nsc_event_clear(&ev);
		if (rc == NSC_NEXT_CLOSED)
			finish(t, nsc_last_error(t->c), t->drained ? 0 : 1);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "log", required_argument, NULL, 'l' },
		{ "mode", required_argument, NULL, 'm' },
		{ "retry-delay-ms", required_argument, NULL, 'r' },
		{ "sleep-ms", required_argument, NULL, 'S' },
		{ "in-progress-ms", required_argument, NULL, 'p' },
		{ "fail-first", required_argument, NULL, 'f' },
		{ "reject-if-payload-contains", required_argument, NULL, 'R' },
		{ "crash-after", required_argument, NULL, 'C' },
		{ "exit-after", required_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};
	struct state t = { .mode = ANSWER_ACK, .log = stdout };
	struct nsc_options opts = { .capacity = 1, .app_name = "testapp" };
	const char *socket = NULL, *logpath = NULL;
	unsigned long n;
	char *err = NULL, *e1, *e2;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 's') {
			socket = optarg;
			continue;
		}
		if (ch == 'n') {
			opts.app_name = optarg;
			continue;
		}
		if (ch == 'l') {
			logpath = optarg;
			continue;
		}
		if (ch == 'R') {
			t.reject_str = optarg;
			continue;
		}
		if (ch == 'm') {
			if (parse_mode(optarg, &t.mode) == -1)
				usage();
			continue;
		}
		if (ch == '?' || parse_num(optarg, &n) == -1)
			usage();
		switch (ch) {
		case 'c':
			opts.capacity = (uint32_t)n;
			break;
		case 'r':
			t.retry_delay_ms = (uint32_t)n;
			break;
		case 'S':
			t.sleep_ms = (int)n;
			break;
		case 'p':
			t.in_progress_ms = (int)n;
			break;
		case 'f':
			t.fail_first = (uint32_t)n;
			break;
		case 'C':
			t.crash_after = n;
			break;
		case 'x':
			t.exit_after = n;
			break;
		}
	}
	if (socket == NULL || optind != argc || opts.capacity == 0)
		usage();
	if (logpath != NULL && (t.log = fopen(logpath, "a")) == NULL) {
		fprintf(stderr, "testapp: %s: %s\n", logpath, strerror(errno));
		return 2;
	}
	if ((t.c = nsc_connect(socket, &opts, &err)) == NULL) {
		fprintf(stderr, "testapp: %s\n", err);
		free(err);
		return 2;
	}
	e1 = esc_str(nsc_sidecar_version(t.c));
	e2 = esc_str(nsc_instance_id(t.c));
	log_line(&t, "connected", 0, "%" PRIu32 "\t%s\t%s",
	    nsc_heartbeat_ms(t.c), e1, e2);
	free(e1);
	free(e2);
	run(&t);
}
