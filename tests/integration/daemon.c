/*
 * The daemon driver (tests/harness/daemon.h) with the real nats-sidecar,
 * a real nats-server and the test app: messages published to JetStream
 * reach the app and are acked; the daemon drains on SIGTERM, survives
 * SIGKILL and restarts on the same socket; its log can be searched.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/natsserver.h"
#include "harness/proc.h"
#include "harness/testjs.h"

#define WAIT_MS 15000

static const char *const order_subjects[] = { "orders.>", NULL };

struct fixture {
	struct natsserver *srv;
	struct testjs *js;
	struct daemon *d;
	struct testapp *app;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL || (fx->srv = natsserver_start(NULL)) == NULL ||
	    (fx->js = testjs_connect(natsserver_url(fx->srv))) == NULL ||
	    testjs_add_stream(fx->js, "ORDERS", order_subjects) == -1)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	testapp_free(fx->app);
	daemon_free(fx->d);
	testjs_free(fx->js);
	natsserver_free(fx->srv);
	free(fx);
	return 0;
}

static void
start_daemon(struct fixture *fx)
{
	struct daemon_subscription sub = {
		.name = "orders",
		.stream = "ORDERS",
		.filter_subject = "orders.created.v1",
		.yaml = "max_attempts: 3\nretry_delay: 200ms",
	};
	struct daemon_config cfg = {
		.nats_url = natsserver_url(fx->srv),
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.app_yaml = "heartbeat_interval: 200ms\ndead_after: 2s",
		.yaml = "shutdown_grace: 3s",
	};

	fx->d = daemon_start(&cfg);
	assert_non_null(fx->d);
	assert_true(daemon_pid(fx->d) > 0);
	assert_int_equal(access(daemon_socket(fx->d), F_OK), 0);
}

/* Published orders reach the app with their ids, the app's ACKs empty
 * the consumer, and SIGTERM drains both daemon and app to status 0. */
static void
delivers_and_drains(void **state)
{
	struct fixture *fx = *state;
	const struct testapp_event *ev;
	uint64_t pending = 1, ack_pending = 1;
	char *line;

	start_daemon(fx);
	fx->app = testapp_start(daemon_socket(fx->d), "--capacity", "4",
	    "--name", "orders-app", NULL);
	assert_non_null(fx->app);
	assert_int_equal(
	    testjs_publish_orders(fx->js, "orders.created.v1", "o", 1, 3), 0);
	assert_int_equal(testapp_wait_deliveries(fx->app, 3, WAIT_MS), 0);
	for (size_t i = 0; i < 3; i++) {
		ev = testapp_find(fx->app, "delivery", i);
		assert_string_equal(ev->subscription, "orders");
		assert_string_equal(ev->subject, "orders.created.v1");
		assert_int_equal(ev->attempt, 1);
		assert_in_range(ev->stream_sequence, 1, 3);
		assert_non_null(strstr(ev->message_id, "o-"));
		assert_non_null(strstr(ev->payload, "order-"));
	}
	assert_int_equal(testapp_wait_for(fx->app, "ack", 3, WAIT_MS), 0);
	for (int i = 0; i < 100 && (pending != 0 || ack_pending != 0); i++) {
		assert_int_equal(testjs_consumer_pending(fx->js, "ORDERS",
				     "orders", &pending, &ack_pending),
		    0);
		usleep(50000);
	}
	assert_int_equal(pending, 0);
	assert_int_equal(ack_pending, 0);

	assert_true(daemon_log_count(fx->d, "sidecar.started") == 1);
	line = daemon_log_line(fx->d, "sidecar.started", 0);
	assert_non_null(line);
	assert_non_null(strstr(line, daemon_socket(fx->d)));
	free(line);
	assert_null(daemon_log_line(fx->d, "sidecar.started", 1));

	assert_int_equal(daemon_signal(fx->d, SIGTERM), 0);
	if (daemon_wait(fx->d, WAIT_MS) != 0 ||
	    testapp_wait(fx->app, WAIT_MS) != 0) {
		proc_show("app events", testapp_log_path(fx->app));
		proc_show("nats-sidecar output", daemon_log_path(fx->d));
		fail_msg("daemon or app did not exit with status 0");
	}
	assert_int_equal(daemon_pid(fx->d), -1);
	assert_int_equal(daemon_signal(fx->d, SIGTERM), -1);
	assert_int_equal(testapp_count(fx->app, "drain"), 1);
	assert_int_equal(daemon_log_wait(fx->d, "drain.done", 1, WAIT_MS), 0);
}

/* A killed daemon restarts on the same socket and config, and a message
 * published while it was down reaches the app that reconnects. */
static void
kill_and_restart(void **state)
{
	struct fixture *fx = *state;
	size_t listening;

	start_daemon(fx);
	assert_int_equal(daemon_kill(fx->d), 0);
	assert_int_equal(daemon_pid(fx->d), -1);
	assert_int_equal(daemon_kill(fx->d), -1);
	assert_int_equal(daemon_wait(fx->d, 100), -1);
	assert_int_equal(
	    testjs_publish_orders(fx->js, "orders.created.v1", "k", 1, 1), 0);

	/* The first run may have been killed before its log lines were
	 * written: count from what it left. */
	listening = daemon_log_count(fx->d, "appchan.listening");
	assert_int_equal(daemon_restart(fx->d), 0);
	assert_int_equal(daemon_restart(fx->d), -1);
	assert_int_equal(
	    daemon_log_wait(fx->d, "appchan.listening", listening + 1, WAIT_MS),
	    0);
	fx->app = testapp_start(daemon_socket(fx->d), NULL);
	assert_non_null(fx->app);
	assert_int_equal(testapp_wait_deliveries(fx->app, 1, WAIT_MS), 0);
	assert_string_equal(
	    testapp_find(fx->app, "delivery", 0)->message_id, "k-1");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(delivers_and_drains),
		T(kill_and_restart),
	};
#undef T

	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
