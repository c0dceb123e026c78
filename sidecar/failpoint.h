/*
 * Failpoints: named places where a test can make the daemon fail on
 * purpose, to prove what survives a crash at exactly that point. They are
 * read once from NATS_SIDECAR_FAILPOINTS, a comma-separated list of
 * NAME=VALUE ("dedup.after_commit=kill,dedup.sync_delay_ms=2000"), and
 * cost one comparison when unset. Not for production use.
 */
#ifndef SIDECAR_FAILPOINT_H
#define SIDECAR_FAILPOINT_H

/* The value of failpoint |name| as a number, or |def| if it is unset. */
long failpoint_value(const char *name, long def);

/* Ends the process with SIGKILL if failpoint |name| is set to "kill". */
void failpoint_kill(const char *name);

#endif
