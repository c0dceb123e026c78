/*
 * A real nats-server with JetStream for one test: started on a loopback
 * port the server picks itself (so parallel tests never race for a port),
 * with a temporary store directory, and always stopped: by
 * natsserver_free(), and by the kernel (PR_SET_PDEATHSIG) when the test
 * process dies, however it dies.
 */
#ifndef TESTS_HARNESS_NATSSERVER_H
#define TESTS_HARNESS_NATSSERVER_H

#include <sys/types.h>

#include <stdbool.h>

struct natsserver;

/*
 * Starts a server and waits until it accepts clients. Extra arguments for
 * nats-server may follow, NULL-terminated. Returns NULL (with a message on
 * stderr) if it did not come up within 10 seconds.
 */
struct natsserver *natsserver_start(const char *extra_arg, ...);
/* Stops the server (SIGTERM, then SIGKILL after 5 s), removes its store. */
void natsserver_free(struct natsserver *);

/* "nats://127.0.0.1:PORT"; valid until natsserver_free(). */
const char *natsserver_url(const struct natsserver *);
int natsserver_port(const struct natsserver *);
/* The server's pid, or -1 while it is not running. */
pid_t natsserver_pid(const struct natsserver *);
const char *natsserver_store_dir(const struct natsserver *);

/* Graceful stop (SIGTERM) keeping the store; returns 0 or -1. */
int natsserver_stop(struct natsserver *);
/* SIGKILL keeping the store, as a crash would; returns 0 or -1. */
int natsserver_kill(struct natsserver *);
/* Starts again on the same port with the same store; returns 0 or -1. */
int natsserver_restart(struct natsserver *);
/* Whether the next (re)start enables JetStream (on by default). */
void natsserver_set_jetstream(struct natsserver *, bool on);

#endif
