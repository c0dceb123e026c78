/*
 * The flush thread against a real server: a kick sends what a connection
 * buffered and is counted, kicks in a burst fold into fewer flushes, and
 * the thread neither hangs nor crashes while the server is away or once
 * the connection is closed.
 */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "harness/cmocka.h"
#include "harness/natsserver.h"
#include "sidecar/flusher.h"

static atomic_int received;

static void
on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	atomic_fetch_add(&received, 1);
	natsMsg_Destroy(msg);
}

static natsConnection *
connect_to(const struct natsserver *srv)
{
	natsConnection *nc = NULL;
	natsOptions *o = NULL;

	assert_int_equal(natsOptions_Create(&o), NATS_OK);
	assert_int_equal(natsOptions_SetURL(o, natsserver_url(srv)), NATS_OK);
	assert_int_equal(natsOptions_SetMaxReconnect(o, -1), NATS_OK);
	assert_int_equal(natsOptions_SetReconnectWait(o, 50), NATS_OK);
	assert_int_equal(natsConnection_Connect(&nc, o), NATS_OK);
	natsOptions_Destroy(o);
	return nc;
}

/* Waits up to 10 s for |f| to have flushed |want| times. */
static void
await_count(struct flusher *f, unsigned long want)
{
	for (int i = 0; i < 10000 && flusher_count(f) < want; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_true(flusher_count(f) >= want);
}

static void
kicks_send_and_fold(void **state)
{
	struct natsserver *srv = natsserver_start(NULL);
	natsConnection *pub, *sub;
	natsSubscription *s = NULL;
	struct flusher *f;
	unsigned long before;

	(void)state;
	assert_non_null(srv);
	pub = connect_to(srv);
	sub = connect_to(srv);
	assert_int_equal(
	    natsConnection_Subscribe(&s, sub, "kick", on_msg, NULL), NATS_OK);
	assert_int_equal(natsConnection_Flush(sub), NATS_OK);
	assert_non_null(f = flusher_new(pub));
	assert_int_equal(flusher_count(f), 0);

	assert_int_equal(
	    natsConnection_PublishString(pub, "kick", "1"), NATS_OK);
	flusher_kick(f);
	await_count(f, 1);
	/* The flush's PONG came after the publish: the server has it. */
	for (int i = 0; i < 10000 && atomic_load(&received) < 1; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(atomic_load(&received), 1);
	assert_int_equal(natsConnection_Buffered(pub), 0);

	before = flusher_count(f);
	for (int i = 0; i < 1000; i++)
		flusher_kick(f);
	await_count(f, before + 1);
	nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	assert_true(flusher_count(f) - before < 1000);

	flusher_free(f);
	flusher_free(NULL);
	natsSubscription_Destroy(s);
	natsConnection_Destroy(sub);
	natsConnection_Destroy(pub);
	natsserver_free(srv);
}

static void
survives_a_lost_server_and_a_close(void **state)
{
	struct natsserver *srv = natsserver_start(NULL);
	natsConnection *nc;
	struct flusher *f;

	(void)state;
	assert_non_null(srv);
	nc = connect_to(srv);
	assert_non_null(f = flusher_new(nc));
	assert_int_equal(natsserver_stop(srv), 0);
	/* Disconnected: the flush fails or waits out its bound. */
	flusher_kick(f);
	await_count(f, 1);
	assert_int_equal(natsserver_restart(srv), 0);
	for (int i = 0; i < 10000 &&
	     natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED;
	     i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(natsConnection_Status(nc), NATS_CONN_STATUS_CONNECTED);
	flusher_kick(f);
	await_count(f, 2);
	/* A kick just before the close must not hold up the free. */
	flusher_kick(f);
	natsConnection_Close(nc);
	flusher_free(f);
	natsConnection_Destroy(nc);
	natsserver_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kicks_send_and_fold),
		cmocka_unit_test(survives_a_lost_server_and_a_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
