/*
 * The scriptable test app (tests/harness/testapp.c) as a child process of
 * a test: started with the flags the test gives, driven through its
 * stdin, observed through its event log, and never outliving the test.
 * Functions are prefixed testapp_ because app_ belongs to the daemon's
 * app channel.
 */
#ifndef TESTS_HARNESS_APP_H
#define TESTS_HARNESS_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct testapp;

/*
 * One line of the test app's event log (its format is described at the
 * top of testapp.c), unescaped. Strings are never NULL.
 */
struct testapp_event {
	const char *kind; /* "delivery", "ack", "publish_ack", "drain", ... */
	uint64_t id; /* delivery or publish id; error: ref_id; else 0 */
	/* Every field after the id, in order. */
	const char *const *fields;
	size_t nfields;

	/* "delivery" and its answers "ack", "retry", "reject",
	 * "in_progress"; empty or 0 for other kinds. */
	const char *subscription;
	const char *subject;
	uint32_t attempt;
	uint64_t stream_sequence;
	const char *message_id;
	const char *payload; /* NUL-terminated; may hold other NULs */
	size_t payload_len;
	unsigned nheaders;
	const char *traceparent;

	/* "publish_ack"; empty or 0 for other kinds. */
	const char *status; /* "OK", "NO_STREAM", ... */
	const char *stream;
	uint64_t sequence;
	bool duplicate;
	const char *error;
};

/*
 * Starts the test app on |socket| with more command-line arguments,
 * NULL-terminated (the app's --socket and --log are given here), and
 * waits until it has connected. Returns NULL, with what the app wrote on
 * stderr, if it exits or does not connect within 10 seconds.
 */
struct testapp *testapp_start(const char *socket, const char *arg, ...);
/* Kills the app if it still runs and removes its files. */
void testapp_free(struct testapp *);

pid_t testapp_pid(const struct testapp *);
const char *testapp_log_path(const struct testapp *);

/* Sends one command line (without its newline) to the app's stdin and
 * waits until the app has read it (its "command" line is logged; it acts
 * on it right after). Returns 0, or -1 if the app does not read it
 * within 5 seconds. */
int testapp_command(struct testapp *, const char *line);

/* Reads lines logged since the last call; returns the number of events
 * so far. */
size_t testapp_poll(struct testapp *);
/* The |i|th event (i < testapp_poll()); valid until testapp_free(). */
const struct testapp_event *testapp_event(const struct testapp *, size_t i);
/* The |n|th event of |kind|, counting from 0, or NULL. */
const struct testapp_event *testapp_find(
    struct testapp *, const char *kind, size_t n);
size_t testapp_count(struct testapp *, const char *kind);
/* Waits until the log has at least |n| events of |kind|. Returns 0, or
 * -1 after |timeout_ms|, printing the log on stderr. */
int testapp_wait_for(
    struct testapp *, const char *kind, size_t n, int timeout_ms);
/* testapp_wait_for(app, "delivery", n, timeout_ms). */
int testapp_wait_deliveries(struct testapp *, size_t n, int timeout_ms);

/* Waits up to |timeout_ms| for the app to exit; returns its status (the
 * exit code, or 128 + the signal), or -1 if it still runs. */
int testapp_wait(struct testapp *, int timeout_ms);
/* Sends "quit" and waits as testapp_wait() does. */
int testapp_stop(struct testapp *, int timeout_ms);
/* SIGKILL, as a crash would; returns 0, or -1 if it was not running. */
int testapp_kill(struct testapp *);

#endif
