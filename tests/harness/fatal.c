#include <sys/wait.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/fatal.h"
#include "sidecar/log.h"

int
fatal_expect(void (*fn)(void *), void *arg, const char *needle)
{
	char out[4096], chunk[512];
	size_t len = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	/* The child must not flush the test's pending output a second time. */
	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) == -1 || (pid = fork()) == -1) {
		perror("fatal_expect");
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		log_set_fd(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	/* Keeps the first lines and drains the rest so the child never
	 * blocks on a full pipe. */
	while ((n = read(fds[0], chunk, sizeof chunk)) > 0) {
		size_t keep = (size_t)n < sizeof out - 1 - len
		    ? (size_t)n
		    : sizeof out - 1 - len;

		memcpy(out + len, chunk, keep);
		len += keep;
	}
	out[len] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) == -1) {
		perror("fatal_expect: waitpid");
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1 &&
	    strstr(out, needle) != NULL)
		return 0;
	fprintf(stderr,
	    "expected a fatal error mentioning \"%s\"; child %s %d, "
	    "logged: %s\n",
	    needle, WIFEXITED(status) ? "exited" : "killed by signal",
	    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
	    len > 0 ? out : "(nothing)\n");
	return -1;
}
