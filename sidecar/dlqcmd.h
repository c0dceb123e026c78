/*
 * `nats-sidecar -c FILE dlq ...`: list, show, replay and purge the dead
 * letters of a stream (see dlqcmd.c for the commands and the replay's
 * Nats-Msg-Id policy).
 */
#ifndef SIDECAR_DLQCMD_H
#define SIDECAR_DLQCMD_H

struct config;

/*
 * Runs the command in |argv| (argv[0] is "list", "show", "replay" or
 * "purge") against |stream|, or the dead-letter filter's stream when
 * NULL. Returns the exit status: 0, 1 on failure, 2 for bad usage.
 */
int dlqcmd_run(
    const struct config *, const char *stream, int argc, char **argv);

#endif
