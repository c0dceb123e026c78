/*
 * The common ground of the integration tests: a real nats-server with the
 * ORDERS stream (orders.>), the daemon with one subscription "orders" on
 * it (durable orders-app), and the checks and waits they all use.
 */
#ifndef TESTS_HARNESS_FIXTURE_H
#define TESTS_HARNESS_FIXTURE_H

#include <stdint.h>

#include <nats/nats.h>

struct fixture {
	struct natsserver *srv;
	struct testjs *js;
	struct daemon *d;
};

/* cmocka group setup and teardown: the server and the stream; the
 * teardown also stops the daemon if one was started. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/*
 * Starts the daemon (kept in f->d) with more options of the subscription
 * and of the top level (YAML lines, or NULL). NULL if it did not start.
 */
struct daemon *fixture_start_daemon(
    struct fixture *f, const char *sub_yaml, const char *yaml);

/* Fails the test unless orders-app has nothing pending and nothing
 * unacknowledged within 10 s (the server applies acks asynchronously). */
void fixture_assert_settles(struct fixture *f);

/* Messages in |stream| now; 0 if it cannot be asked. */
uint64_t fixture_stream_msgs(struct fixture *f, const char *stream);
/* Fails the test unless |stream| holds exactly |n| messages within 20 s. */
void fixture_wait_stream_msgs(
    struct fixture *f, const char *stream, uint64_t n);
/* Fails the test unless |m| has header |name|, equal to |want| unless
 * that is NULL. */
void fixture_assert_header(natsMsg *m, const char *name, const char *want);

/*
 * Fails the test unless |m| is the dead letter of message 1 of ORDERS
 * (orders.created.v1, consumed by orders-app) after |deliveries|
 * deliveries, for |reason|, with every context header the sidecar sets
 * and the original |msg_id| under the prefix.
 */
void fixture_assert_dead_letter(
    natsMsg *m, const char *reason, const char *deliveries, const char *msg_id);

void fixture_sleep_ms(int ms);
/* CLOCK_MONOTONIC in seconds. */
double fixture_now(void);

#endif
