/*
 * The core: one libev loop that owns everything. It wires the NATS side
 * (bus, consumers, pull engines) to the filter chains and the app channel,
 * carries verdicts out as acks, delayed NAKs and app deliveries, keeps
 * deliveries alive with +WPI while apps work on them, and drains on
 * SIGTERM/SIGINT.
 *
 * Order of effects for an ACKed message: app ACK, then the outcome chain
 * (which may hold it, e.g. for a dedup commit), then the JetStream ack.
 * Nothing is acked that the app did not ACK or a filter did not settle.
 */
#ifndef SIDECAR_CORE_H
#define SIDECAR_CORE_H

struct config;
struct ev_loop;

struct schema;

/* Builds every module for |cfg| on |loop|, with the message types of
 * |schemas| (may be NULL); NULL after logging why. */
struct core *core_new(
    struct ev_loop *, const struct config *cfg, const struct schema *schemas);
/* Runs until drained after a signal; returns 0, the exit status of a
 * clean drain (a second signal exits at once, from inside). */
int core_run(struct core *);
void core_free(struct core *);

#endif
