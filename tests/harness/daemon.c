#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/daemon.h"
#include "harness/proc.h"
#include "sidecar/xmalloc.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000

struct daemon {
	pid_t pid;
	char dir[256];
	char socket[300];
	char config[300];
	char log[300];
	size_t starts; /* spawns so far: one http.listening line each */
};

/* Writes |yaml| line by line, each indented by |indent| spaces. */
static void
put_indented(FILE *f, const char *yaml, int indent)
{
	const char *p = yaml, *nl;

	if (yaml == NULL)
		return;
	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (nl > p)
			fprintf(f, "%*s%.*s\n", indent, "", (int)(nl - p), p);
		p = *nl == '\n' ? nl + 1 : nl;
	}
}

/* Writes the configuration file; returns 0 or -1. */
static int
write_config(const struct daemon *d, const struct daemon_config *cfg)
{
	FILE *f = fopen(d->config, "w");

	if (f == NULL) {
		fprintf(
		    stderr, "# daemon: %s: %s\n", d->config, strerror(errno));
		return -1;
	}
	fprintf(f, "instance_id: test-%d\n", (int)getpid());
	put_indented(f, cfg->yaml, 0);
	fprintf(f, "log:\n  level: %s\n",
	    cfg->log_level != NULL ? cfg->log_level : "debug");
	fprintf(f, "nats:\n  urls:\n    - \"%s\"\n", cfg->nats_url);
	put_indented(f, cfg->nats_yaml, 2);
	fprintf(f, "app:\n  socket: \"%s\"\n", d->socket);
	put_indented(f, cfg->app_yaml, 2);
	/* A port of its own, so that tests run side by side. */
	fprintf(f, "http:\n  listen: \"127.0.0.1:0\"\n");
	put_indented(f, cfg->http_yaml, 2);
	fprintf(f, "subscriptions:\n");
	for (size_t i = 0; i < cfg->nsubscriptions; i++) {
		const struct daemon_subscription *s = &cfg->subscriptions[i];

		fprintf(f, "  - name: \"%s\"\n", s->name);
		fprintf(f, "    stream: \"%s\"\n", s->stream);
		fprintf(f, "    durable: \"%s\"\n",
		    s->durable != NULL ? s->durable : s->name);
		if (s->filter_subject != NULL)
			fprintf(f, "    filter_subject: \"%s\"\n",
			    s->filter_subject);
		put_indented(f, s->yaml, 4);
	}
	if (fclose(f) == EOF) {
		fprintf(
		    stderr, "# daemon: %s: %s\n", d->config, strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether the app socket accepts a connection. */
static int
accepts(const struct daemon *d)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, ok;

	memcpy(sun.sun_path, d->socket, strlen(d->socket) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
	close(fd);
	return ok;
}

/* Starts the daemon and waits until it listens; returns 0 or -1. */
static int
spawn(struct daemon *d)
{
	char bin[512];
	char *argv[] = { bin, "-c", d->config, NULL };
	int64_t deadline;
	int status;

	proc_tree_path(bin, sizeof bin, "top_builddir", "nats-sidecar");
	if ((d->pid = proc_spawn(argv, -1, d->log)) == -1)
		return -1;
	d->starts++;
	deadline = proc_now_ms() + START_TIMEOUT_MS;
	for (;;) {
		if (proc_exited(&d->pid, &status)) {
			fprintf(stderr,
			    "# daemon: exited with status %d at "
			    "start\n",
			    status);
			break;
		}
		if (access(d->socket, F_OK) == 0 && accepts(d))
			return 0;
		if (proc_now_ms() >= deadline) {
			fprintf(stderr,
			    "# daemon: not listening within %d ms\n",
			    START_TIMEOUT_MS);
			proc_kill(&d->pid);
			break;
		}
		proc_sleep_ms(10);
	}
	proc_show("nats-sidecar configuration", d->config);
	proc_show("nats-sidecar output", d->log);
	return -1;
}

struct daemon *
daemon_start(const struct daemon_config *cfg)
{
	struct daemon *d = xcalloc(1, sizeof *d);

	d->pid = -1;
	if (proc_tmpdir(d->dir, sizeof d->dir, "daemon") == -1) {
		free(d);
		return NULL;
	}
	snprintf(d->socket, sizeof d->socket, "%s/app.sock", d->dir);
	snprintf(d->config, sizeof d->config, "%s/sidecar.yaml", d->dir);
	snprintf(d->log, sizeof d->log, "%s/sidecar.log", d->dir);
	if (strlen(d->socket) >= sizeof((struct sockaddr_un *)0)->sun_path) {
		fprintf(stderr, "# daemon: socket path %s is too long\n",
		    d->socket);
		goto fail;
	}
	if (write_config(d, cfg) == -1 || spawn(d) == -1)
		goto fail;
	return d;

fail:
	daemon_free(d);
	return NULL;
}

void
daemon_free(struct daemon *d)
{
	if (d == NULL)
		return;
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		if (proc_wait(&d->pid, STOP_TIMEOUT_MS) == -1)
			proc_kill(&d->pid);
	}
	proc_rmtree(d->dir);
	free(d);
}

const char *
daemon_socket(const struct daemon *d)
{
	return d->socket;
}

const char *
daemon_config_path(const struct daemon *d)
{
	return d->config;
}

const char *
daemon_log_path(const struct daemon *d)
{
	return d->log;
}

const char *
daemon_dir(const struct daemon *d)
{
	return d->dir;
}

pid_t
daemon_pid(const struct daemon *d)
{
	return d->pid;
}

int
daemon_signal(struct daemon *d, int sig)
{
	if (d->pid <= 0)
		return -1;
	return kill(d->pid, sig);
}

int
daemon_wait(struct daemon *d, int timeout_ms)
{
	return proc_wait(&d->pid, timeout_ms);
}

int
daemon_kill(struct daemon *d)
{
	return proc_kill(&d->pid);
}

int
daemon_restart(struct daemon *d)
{
	if (d->pid > 0)
		return -1;
	return spawn(d);
}

/* Calls |fn| on each line whose event is |event| until it returns
 * non-zero; returns the number of lines seen. */
static size_t
scan_log(const struct daemon *d, const char *event,
    int (*fn)(const char *line, size_t i, void *arg), void *arg)
{
	char *needle = xasprintf("\"event\":\"%s\"", event), *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	FILE *f;

	if ((f = fopen(d->log, "r")) != NULL) {
		while ((len = getline(&line, &cap, f)) > 0) {
			/* A line still being written counts once it ends. */
			if (line[len - 1] != '\n' ||
			    strstr(line, needle) == NULL)
				continue;
			line[len - 1] = '\0';
			if (fn != NULL && fn(line, n, arg))
				break;
			n++;
		}
		fclose(f);
	}
	free(line);
	free(needle);
	return n;
}

size_t
daemon_log_count(const struct daemon *d, const char *event)
{
	return scan_log(d, event, NULL, NULL);
}

struct line_search {
	size_t want;
	char *found;
};

static int
take_nth(const char *line, size_t i, void *arg)
{
	struct line_search *s = arg;

	if (i != s->want)
		return 0;
	s->found = xstrdup(line);
	return 1;
}

char *
daemon_log_line(const struct daemon *d, const char *event, size_t n)
{
	struct line_search s = { n, NULL };

	scan_log(d, event, take_nth, &s);
	return s.found;
}

int
daemon_log_wait(
    const struct daemon *d, const char *event, size_t n, int timeout_ms)
{
	int64_t deadline = proc_now_ms() + timeout_ms;
	size_t have;

	while ((have = daemon_log_count(d, event)) < n) {
		if (proc_now_ms() >= deadline) {
			fprintf(stderr,
			    "# daemon: %zu \"%s\" lines after %d ms, "
			    "wanted %zu\n",
			    have, event, timeout_ms, n);
			proc_show("nats-sidecar output", d->log);
			return -1;
		}
		proc_sleep_ms(10);
	}
	return 0;
}

int
daemon_http_port(const struct daemon *d)
{
	char *line, *p;
	int port = -1;

	/* The latest start's: each listens on a port of its own. */
	if (daemon_log_wait(d, "http.listening", d->starts, 10000) == -1 ||
	    (line = daemon_log_line(d, "http.listening", d->starts - 1)) ==
		NULL)
		return -1;
	if ((p = strstr(line, "127.0.0.1:")) != NULL)
		port = atoi(p + strlen("127.0.0.1:"));
	free(line);
	return port > 0 ? port : -1;
}
