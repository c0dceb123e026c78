#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natsserver.h"

#define EXTRA_ARGS_MAX 16
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000

struct natsserver {
	pid_t pid;
	int port;
	char dir[256]; /* temporary directory holding all below */
	char store[300]; /* JetStream store */
	char log[300]; /* server output, shown when it fails to start */
	char url[64];
	bool no_jetstream;
	const char *extra[EXTRA_ARGS_MAX + 1];
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void
show_log(const struct natsserver *s)
{
	char buf[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(s->log, "r")) == NULL)
		return;
	fprintf(stderr, "# nats-server output (%s):\n", s->log);
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

/* Reads the port from the ports file nats-server writes once it listens. */
static int
read_ports_file(const struct natsserver *s)
{
	char path[600], buf[1024], *p;
	int port = -1;
	size_t n;
	FILE *f;

	snprintf(
	    path, sizeof path, "%s/nats-server_%d.ports", s->dir, (int)s->pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	/* {"nats":["nats://127.0.0.1:PORT"],...}, tls:// with TLS on */
	if ((p = strstr(buf, "://127.0.0.1:")) != NULL)
		port = atoi(p + strlen("://127.0.0.1:"));
	return port > 0 ? port : -1;
}

/* Returns 1 once a client gets the server's INFO line. */
static int
accepts_clients(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { 1, 0 };
	char buf[5];
	int fd, ok;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	    recv(fd, buf, 4, MSG_WAITALL) == 4 && memcmp(buf, "INFO", 4) == 0;
	close(fd);
	return ok;
}

static int
wait_exit(struct natsserver *s, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int status;

	while (now_ms() < deadline) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);

		if (r == s->pid || (r == -1 && errno == ECHILD)) {
			s->pid = -1;
			return 0;
		}
		sleep_ms(10);
	}
	return -1;
}

static int
spawn(struct natsserver *s)
{
	const char *argv[32];
	char port[16];
	long long deadline;
	pid_t parent = getpid();
	int argc = 0;

	snprintf(port, sizeof port, "%d", s->port);
	argv[argc++] = NATS_SERVER;
	argv[argc++] = "-a";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "-p";
	argv[argc++] = port;
	if (!s->no_jetstream) {
		argv[argc++] = "-js";
		argv[argc++] = "-sd";
		argv[argc++] = s->store;
	}
	argv[argc++] = "--ports_file_dir";
	argv[argc++] = s->dir;
	for (int i = 0; s->extra[i] != NULL; i++)
		argv[argc++] = s->extra[i];
	argv[argc] = NULL;

	if ((s->pid = fork()) == -1) {
		fprintf(stderr, "# natsserver: fork: %s\n", strerror(errno));
		return -1;
	}
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		/* The server must not outlive the test, however it ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd != -1) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execv(argv[0], (char **)argv);
		_exit(127);
	}

	deadline = now_ms() + START_TIMEOUT_MS;
	while (now_ms() < deadline) {
		int status;

		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "# natsserver: %s exited at start\n",
			    NATS_SERVER);
			s->pid = -1;
			show_log(s);
			return -1;
		}
		if (s->port <= 0)
			s->port = read_ports_file(s);
		if (s->port > 0 && accepts_clients(s->port)) {
			snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d",
			    s->port);
			return 0;
		}
		sleep_ms(20);
	}
	fprintf(
	    stderr, "# natsserver: not ready within %d ms\n", START_TIMEOUT_MS);
	show_log(s);
	natsserver_kill(s);
	return -1;
}

struct natsserver *
natsserver_start(const char *extra_arg, ...)
{
	struct natsserver *s = calloc(1, sizeof *s);
	const char *tmp = getenv("TMPDIR");
	va_list ap;
	int n = 0;

	if (s == NULL)
		return NULL;
	s->pid = -1;
	s->port = -1;
	va_start(ap, extra_arg);
	for (const char *a = extra_arg; a != NULL && n < EXTRA_ARGS_MAX;
	     a = va_arg(ap, const char *))
		s->extra[n++] = a;
	va_end(ap);

	snprintf(s->dir, sizeof s->dir, "%s/natsserver.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(s->dir) == NULL) {
		fprintf(stderr, "# natsserver: mkdtemp %s: %s\n", s->dir,
		    strerror(errno));
		free(s);
		return NULL;
	}
	snprintf(s->store, sizeof s->store, "%s/store", s->dir);
	snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
	if (spawn(s) == -1) {
		natsserver_free(s);
		return NULL;
	}
	return s;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

void
natsserver_free(struct natsserver *s)
{
	if (s == NULL)
		return;
	if (s->pid > 0 && natsserver_stop(s) == -1)
		natsserver_kill(s);
	nftw(s->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(s);
}

const char *
natsserver_url(const struct natsserver *s)
{
	return s->url;
}

int
natsserver_port(const struct natsserver *s)
{
	return s->port;
}

pid_t
natsserver_pid(const struct natsserver *s)
{
	return s->pid;
}

const char *
natsserver_store_dir(const struct natsserver *s)
{
	return s->store;
}

static int
signal_and_wait(struct natsserver *s, int sig, int timeout_ms)
{
	char path[600];

	if (s->pid <= 0)
		return -1;
	snprintf(
	    path, sizeof path, "%s/nats-server_%d.ports", s->dir, (int)s->pid);
	kill(s->pid, sig);
	if (wait_exit(s, timeout_ms) == -1)
		return -1;
	unlink(path);
	return 0;
}

int
natsserver_stop(struct natsserver *s)
{
	return signal_and_wait(s, SIGTERM, STOP_TIMEOUT_MS);
}

int
natsserver_kill(struct natsserver *s)
{
	return signal_and_wait(s, SIGKILL, STOP_TIMEOUT_MS);
}

int
natsserver_restart(struct natsserver *s)
{
	if (s->pid > 0)
		return -1;
	/* The port was just released; another process may grab it briefly. */
	for (int tries = 0; tries < 20; tries++) {
		if (spawn(s) == 0)
			return 0;
		sleep_ms(100);
	}
	return -1;
}

void
natsserver_set_jetstream(struct natsserver *s, bool on)
{
	s->no_jetstream = !on;
}
