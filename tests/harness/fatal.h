/*
 * Programming errors end the process through fatalx(); this checks that
 * one is caught, by running the offending code in a child process.
 */
#ifndef TESTS_HARNESS_FATAL_H
#define TESTS_HARNESS_FATAL_H

/*
 * Runs |fn|(|arg|) in a child process that logs into a pipe. Returns 0 if
 * the child exited with status 1 and logged a line containing |needle|;
 * otherwise prints what the child did on stderr and returns -1.
 */
int fatal_expect(void (*fn)(void *), void *arg, const char *needle);

#endif
