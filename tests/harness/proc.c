#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness/proc.h"

int64_t
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
proc_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int
proc_tmpdir(char *buf, size_t len, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, len, "%s/%s.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp", prefix);
	if (mkdtemp(buf) == NULL) {
		fprintf(stderr, "# mkdtemp %s: %s\n", buf, strerror(errno));
		return -1;
	}
	return 0;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

void
proc_rmtree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void
proc_tree_path(char *buf, size_t len, const char *top, const char *rel)
{
	const char *dir = getenv(top);

	snprintf(
	    buf, len, "%s/%s", dir != NULL && *dir != '\0' ? dir : ".", rel);
}

pid_t
proc_spawn(char *const argv[], int in, const char *log)
{
	pid_t parent = getpid(), pid;

	/* The child must not write the test's pending output again. */
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "# fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		/* Never outlive the test, however it ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (in == -1)
			in = open("/dev/null", O_RDONLY);
		if (in == -1 || fd == -1 || dup2(in, STDIN_FILENO) == -1 ||
		    dup2(fd, STDOUT_FILENO) == -1 ||
		    dup2(fd, STDERR_FILENO) == -1)
			_exit(127);
		execv(argv[0], argv);
		dprintf(
		    STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* The shell's view of a wait status. */
static int
shell_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int
proc_exited(pid_t *pid, int *status)
{
	int st;

	if (*pid <= 0 || waitpid(*pid, &st, WNOHANG) != *pid)
		return 0;
	*pid = -1;
	*status = shell_status(st);
	return 1;
}

int
proc_wait(pid_t *pid, int timeout_ms)
{
	int64_t deadline = proc_now_ms() + timeout_ms;
	int status;

	if (*pid <= 0)
		return -1;
	for (;;) {
		if (proc_exited(pid, &status))
			return status;
		if (proc_now_ms() >= deadline)
			return -1;
		proc_sleep_ms(5);
	}
}

int
proc_kill(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGKILL);
	if (waitpid(*pid, &status, 0) == -1)
		return -1;
	*pid = -1;
	return 0;
}

void
proc_show(const char *title, const char *path)
{
	char line[4096];
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return;
	fprintf(stderr, "# %s (%s):\n", title, path);
	while (fgets(line, sizeof line, f) != NULL)
		fprintf(stderr, "#   %s%s", line,
		    strchr(line, '\n') != NULL ? "" : "\n");
	fclose(f);
}
