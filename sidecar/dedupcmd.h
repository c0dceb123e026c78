/*
 * `nats-sidecar -c FILE dedup ...`: look into and edit the dedup store of
 * dedup.path, safely beside a running daemon (see dedupcmd.c).
 */
#ifndef SIDECAR_DEDUPCMD_H
#define SIDECAR_DEDUPCMD_H

struct config;

/*
 * Runs the command in |argv| (argv[0] is "stats", "lookup", "forget" or
 * "purge"); |subscription| names the key's namespace for lookup and forget,
 * or NULL for the only subscription with a dedup filter. Returns the exit
 * status: 0; 1 on failure, or for lookup and forget, when the key is not
 * there; 2 for bad usage.
 */
int dedupcmd_run(
    const struct config *, const char *subscription, int argc, char **argv);

#endif
