/*
 * Child processes and scratch directories for the test helpers: children
 * are started so that they never outlive the test (PR_SET_PDEATHSIG),
 * and every wait is bounded.
 */
#ifndef TESTS_HARNESS_PROC_H
#define TESTS_HARNESS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int64_t proc_now_ms(void);
void proc_sleep_ms(int ms);

/* Makes a fresh directory $TMPDIR/PREFIX.XXXXXX (TMPDIR defaults to
 * /tmp) into |buf|; returns 0, or -1 with a message on stderr. */
int proc_tmpdir(char *buf, size_t len, const char *prefix);
/* Removes |dir| and everything below it. */
void proc_rmtree(const char *dir);
/* "$TOP/REL" into |buf|, where TOP names a variable that `make check`
 * exports ("top_builddir" or "top_srcdir"); "./REL" without it. */
void proc_tree_path(char *buf, size_t len, const char *top, const char *rel);

/*
 * Starts |argv| (argv[0] a path) with |in| as stdin (-1: /dev/null) and
 * stdout and stderr appended to |log|. The child is killed when the test
 * process dies. Returns its pid, or -1 with a message on stderr.
 */
pid_t proc_spawn(char *const argv[], int in, const char *log);
/*
 * Waits up to |timeout_ms| for |*pid| to end. Returns its status as a
 * shell gives it (the exit code, or 128 + the signal) and sets |*pid| to
 * -1; returns -1 if it is still running or |*pid| is not running.
 */
int proc_wait(pid_t *pid, int timeout_ms);
/* Whether |*pid| has ended, without waiting; reaps it if so. */
int proc_exited(pid_t *pid, int *status);
/* SIGKILL and reap; returns 0, or -1 if |*pid| was not running. */
int proc_kill(pid_t *pid);
/* Copies the file at |path| to stderr as TAP comments, under |title|. */
void proc_show(const char *title, const char *path);

#endif
