/*
 * The real nats-sidecar binary ($top_builddir/nats-sidecar) for one test:
 * a configuration file generated from what the test gives, the app
 * socket and the daemon's output in a temporary directory, and a child
 * that never outlives the test.
 */
#ifndef TESTS_HARNESS_DAEMON_H
#define TESTS_HARNESS_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

struct daemon;

/*
 * YAML "lines" below are plain YAML written as if at the top level of a
 * file, several separated by '\n' (nested blocks allowed); the helper
 * indents them into place. They must not repeat what the helper writes:
 * instance_id, log.level, nats.urls, app.socket and the subscriptions'
 * name, stream, durable and filter_subject. The daemon inherits the
 * environment, so NATS_SIDECAR_* variables set by a test override the
 * file.
 */
struct daemon_subscription {
	const char *name;
	const char *stream;
	const char *durable; /* NULL: the name */
	const char *filter_subject; /* NULL: the whole stream */
	/* More options of this subscription, e.g.
	 * "max_attempts: 3\nretry_delay: 200ms"; NULL: none. */
	const char *yaml;
};

struct daemon_config {
	const char *nats_url;
	const struct daemon_subscription *subscriptions;
	size_t nsubscriptions;
	const char *log_level; /* NULL: "debug" */
	/* More options of the nats:, app: and http: blocks (http.listen
	 * is 127.0.0.1:0, a port of the daemon's own, logged in its
	 * http.listening line), and top-level ones (e.g.
	 * "shutdown_grace: 2s"); NULL: none. */
	const char *nats_yaml;
	const char *app_yaml;
	const char *http_yaml;
	const char *yaml;
};

/*
 * Writes the configuration, starts the daemon and waits until its app
 * socket accepts connections. Returns NULL, with the daemon's output on
 * stderr, if it exits or is not listening within 10 seconds.
 */
struct daemon *daemon_start(const struct daemon_config *);
/* Stops the daemon if it runs (SIGTERM, then SIGKILL after 5 s) and
 * removes its directory. */
void daemon_free(struct daemon *);

/* The app socket, the configuration file, the daemon's output (JSON
 * lines) and its directory; valid until daemon_free(). */
const char *daemon_socket(const struct daemon *);
const char *daemon_config_path(const struct daemon *);
const char *daemon_log_path(const struct daemon *);
const char *daemon_dir(const struct daemon *);
/* The daemon's pid, or -1 while it is not running. */
pid_t daemon_pid(const struct daemon *);

/* Sends |sig|; returns 0, or -1 if the daemon is not running. */
int daemon_signal(struct daemon *, int sig);
/* Waits up to |timeout_ms| for the daemon to exit. Returns its status
 * (the exit code, or 128 + the signal), or -1 if it still runs. */
int daemon_wait(struct daemon *, int timeout_ms);
/* SIGKILL, as a crash would; returns 0, or -1 if it was not running. */
int daemon_kill(struct daemon *);
/* Starts the daemon again with the same configuration, after it exited,
 * and waits as daemon_start() does; output goes on in the same log.
 * Returns 0 or -1. */
int daemon_restart(struct daemon *);

/* The port the daemon's HTTP server got at its latest start, from its
 * http.listening line (waiting up to 10 s); -1 if there is none. */
int daemon_http_port(const struct daemon *);
/* Lines of the log whose "event" is |event|, over every run so far. */
size_t daemon_log_count(const struct daemon *, const char *event);
/* The |n|th such line (from 0) without its newline, for the caller to
 * free(); NULL if there is none. */
char *daemon_log_line(const struct daemon *, const char *event, size_t n);
/* Waits until there are at least |n| such lines. Returns 0, or -1 after
 * |timeout_ms|, printing the log on stderr. */
int daemon_log_wait(
    const struct daemon *, const char *event, size_t n, int timeout_ms);

#endif
