/*
 * The pipeline end to end, when things go wrong: an app killed with work
 * in flight, SIGTERM during work, nats-server restarted mid-stream, the
 * consumer deleted under the sidecar, a slow app over a large backlog,
 * messages larger than the byte budget, and garbage on the app socket. Nothing
 * may be lost, nothing acked that the app did not ACK.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"
#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/fixture.h"
#include "harness/httpget.h"
#include "harness/natsserver.h"
#include "harness/promcheck.h"
#include "harness/testjs.h"
#include "window.h"

/* Distinct "order-<i>" payloads among |kind| events, i in 1..n; also
 * stores the number of events in |*total|. */
static size_t
distinct_orders(struct testapp *app, const char *kind, size_t n, size_t *total)
{
	unsigned char *seen = calloc(n + 1, 1);
	size_t distinct = 0, count;

	assert_non_null(seen);
	testapp_poll(app);
	count = testapp_count(app, kind);
	for (size_t i = 0; i < count; i++) {
		const struct testapp_event *e = testapp_find(app, kind, i);
		unsigned long k =
		    strtoul(e->payload + strlen("order-"), NULL, 10);

		if (k >= 1 && k <= n && !seen[k]) {
			seen[k] = 1;
			distinct++;
		}
	}
	free(seen);
	if (total != NULL)
		*total = count;
	return distinct;
}

static void
wait_distinct_acks(struct testapp *app, size_t n, int timeout_ms)
{
	double until = fixture_now() + timeout_ms / 1000.0;
	size_t got;

	while ((got = distinct_orders(app, "ack", n, NULL)) < n &&
	    fixture_now() < until)
		fixture_sleep_ms(50);
	if (got < n)
		fail_msg("only %zu of %zu messages acked", got, n);
}

static void
killed_app_work_goes_to_another_app(void **state)
{
	struct fixture *f = *state;
	struct testapp *first, *second;
	size_t total;

	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	assert_non_null(first = testapp_start(daemon_socket(f->d), "--capacity",
			    "100", "--mode", "hang", NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "k", 1, 100), 0);
	assert_int_equal(testapp_wait_deliveries(first, 100, 20000), 0);
	assert_non_null(second = testapp_start(
			    daemon_socket(f->d), "--capacity", "100", NULL));
	assert_int_equal(testapp_kill(first), 0);

	wait_distinct_acks(second, 100, 30000);
	assert_int_equal(distinct_orders(second, "delivery", 100, &total), 100);
	assert_int_equal(total, 100);
	for (size_t i = 0; i < total; i++)
		assert_int_equal(
		    testapp_find(second, "delivery", i)->attempt, 2);
	fixture_assert_settles(f);
	testapp_free(first);
	testapp_free(second);
}

static void
sigterm_drains_and_restart_delivers_the_rest(void **state)
{
	struct fixture *f = *state;
	struct testapp *app, *after;
	double t0, took;

	assert_non_null(fixture_start_daemon(
	    f, "max_attempts: 2\nretry_delay: 200ms", "shutdown_grace: 2s"));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "10", "--mode", "retry", NULL));
	/* One message reaches its last allowed attempt, and stays there. */
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "t", 1, 1), 0);
	assert_int_equal(testapp_wait_for(app, "retry", 1, 20000), 0);
	assert_int_equal(testapp_command(app, "mode hang"), 0);
	assert_int_equal(testapp_wait_deliveries(app, 2, 20000), 0);
	assert_int_equal(testapp_find(app, "delivery", 1)->attempt, 2);
	/* More work: ten at the app, the rest prefetched by the sidecar. */
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "t", 2, 29), 0);
	assert_int_equal(testapp_wait_deliveries(app, 11, 20000), 0);

	t0 = fixture_now();
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 10000), 0);
	took = fixture_now() - t0;
	if (took > 2 + 3)
		fail_msg("drain took %.1f s with a 2 s grace", took);
	assert_int_equal(
	    daemon_log_count(f->d, "delivery.dead_letter_unset"), 0);
	assert_int_equal(distinct_orders(app, "ack", 30, NULL), 0);
	testapp_free(app);

	assert_int_equal(daemon_restart(f->d), 0);
	assert_non_null(after = testapp_start(
			    daemon_socket(f->d), "--capacity", "10", NULL));
	wait_distinct_acks(after, 30, 30000);
	fixture_assert_settles(f);
	testapp_free(after);
}

static void
server_restart_mid_stream_loses_nothing(void **state)
{
	struct fixture *f = *state;
	enum { N = 3000 };
	struct testapp *app;
	size_t total;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "r", 1, N), 0);
	/* Acks in flight when the server stops may be lost with it: a
	 * short AckWait brings those back quickly. */
	assert_non_null(
	    fixture_start_daemon(f, "max_in_flight: 64\nack_wait: 2s", NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "8", "--sleep-ms", "2", NULL));
	assert_int_equal(testapp_wait_for(app, "ack", 300, 30000), 0);
	assert_int_equal(natsserver_stop(f->srv), 0);
	fixture_sleep_ms(500);
	assert_int_equal(natsserver_restart(f->srv), 0);

	wait_distinct_acks(app, N, 90000);
	assert_int_equal(daemon_log_wait(f->d, "nats.reconnected", 1, 5000), 0);
	fixture_assert_settles(f);
	distinct_orders(app, "delivery", N, &total);
	printf("# server restart: %zu deliveries for %d messages, %zu "
	       "duplicates\n",
	    total, N, total - N);
	testapp_free(app);
}

/* Publishes |n| orders from |first| on, retrying while the test's own
 * connection is still reconnecting after a server restart. */
static void
publish_after_restart(struct fixture *f, uint64_t first, uint64_t n)
{
	for (int i = 0; i < 100; i++) {
		if (testjs_publish_orders(
			f->js, "orders.created.v1", "j", first, n) == 0)
			return;
		fixture_sleep_ms(200);
	}
	fail_msg("could not publish after the restart");
}

/* The server comes back without JetStream: the pull requests meet no
 * responders, which is said once while the sidecar keeps asking (paced),
 * and delivery resumes when JetStream is back. */
static void
jetstream_gone_and_back(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	char *line;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "j", 1, 10), 0);
	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	wait_distinct_acks(app, 10, 30000);

	assert_int_equal(natsserver_stop(f->srv), 0);
	natsserver_set_jetstream(f->srv, false);
	assert_int_equal(natsserver_restart(f->srv), 0);
	assert_int_equal(daemon_log_wait(f->d, "pull.refused", 1, 20000), 0);
	line = daemon_log_line(f->d, "pull.refused", 0);
	assert_non_null(strstr(line, "no responders"));
	free(line);
	/* A refused pull is asked again after a pause, without a new line. */
	fixture_sleep_ms(2500);
	assert_int_equal(daemon_log_count(f->d, "pull.refused"), 1);
	assert_int_equal(daemon_pid(f->d) > 0, 1);

	assert_int_equal(natsserver_stop(f->srv), 0);
	natsserver_set_jetstream(f->srv, true);
	assert_int_equal(natsserver_restart(f->srv), 0);
	publish_after_restart(f, 11, 10);
	wait_distinct_acks(app, 20, 60000);
	fixture_assert_settles(f);
	testapp_free(app);
}

static void
deleted_consumer_is_recreated(void **state)
{
	struct fixture *f = *state;
	enum { N = 2000 };
	struct testapp *app;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "c", 1, N), 0);
	assert_non_null(fixture_start_daemon(f,
	    "max_in_flight: 64\n"
	    "pull_heartbeat: 500ms\n"
	    "pull_expires: 2s",
	    NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "8", "--sleep-ms", "2", NULL));
	assert_int_equal(testapp_wait_for(app, "ack", 200, 30000), 0);
	assert_int_equal(
	    testjs_delete_consumer(f->js, "ORDERS", "orders-app"), 0);
	assert_int_equal(daemon_log_wait(f->d, "consumer.lost", 1, 20000), 0);
	assert_int_equal(daemon_log_wait(f->d, "consumer.bound", 2, 20000), 0);
	/* The new consumer starts over: everything comes again at least
	 * once after the deletion. */
	wait_distinct_acks(app, N, 90000);
	fixture_assert_settles(f);
	testapp_free(app);
}

/* The most the server counted unacked over |samples| tenths of a
 * second, checking that the backlog of |backlog| stays in the stream. */
static uint64_t
most_ack_pending(struct fixture *f, uint64_t backlog, int samples)
{
	uint64_t pending, ack_pending, most = 0;

	for (int i = 0; i < samples; i++) {
		assert_int_equal(testjs_consumer_pending(f->js, "ORDERS",
				     "orders-app", &pending, &ack_pending),
		    0);
		if (ack_pending > most)
			most = ack_pending;
		assert_true(pending > backlog);
		fixture_sleep_ms(100);
	}
	return most;
}

/* Stops the daemon and returns the peak in flight its registry logged. */
static double
stop_for_peak_in_flight(struct fixture *f)
{
	char *line;
	double peak;

	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 30000), 0);
	assert_non_null(line = daemon_log_line(f->d, "subscription.stats", 0));
	assert_non_null(strstr(line, "peak in flight "));
	peak = strtod(strstr(line, "peak in flight ") + 15, NULL);
	free(line);
	return peak;
}

static void
slow_app_leaves_the_backlog_in_jetstream(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	uint64_t most;
	double peak;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "s", 1, 100000),
	    0);
	assert_non_null(fixture_start_daemon(f, "max_in_flight: 50", NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "10", "--sleep-ms", "5", NULL));
	assert_int_equal(testapp_wait_for(app, "ack", 100, 30000), 0);
	/* What the server counts as handed out and not acked is what the
	 * sidecar holds: never above its limit. The server's count also
	 * holds acks still on their way, so it may exceed the limit by
	 * those; the backlog itself stays there. */
	most = most_ack_pending(f, 90000 - 3000, 30);
	assert_true(most > 0);
	if (most > 2 * 50)
		fail_msg("the server counts %llu unacked for a limit of 50",
		    (unsigned long long)most);
	/* And the daemon's own registry agrees. */
	peak = stop_for_peak_in_flight(f);
	if (peak < 10 || peak > 50)
		fail_msg("peak in flight %.0f, limit 50", peak);
	printf("# slow app: server ack-pending peak %llu, registry peak %.0f, "
	       "limit 50\n",
	    (unsigned long long)most, peak);
	testapp_free(app);
}

/*
 * With the default max_in_flight (1,024), an app of capacity 4 that
 * takes 20 ms a message (200 a second) holds its capacity plus a tenth of
 * a second of work, the window's floor of 32: the rest of the backlog
 * stays in the stream for other pods.
 */
static void
slow_app_holds_its_pace_not_max_in_flight(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	uint64_t most;
	double peak;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "w", 1, 5000), 0);
	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "4", "--sleep-ms", "20", NULL));
	assert_int_equal(testapp_wait_for(app, "ack", 50, 30000), 0);
	most = most_ack_pending(f, 5000 - 1000, 20);
	peak = stop_for_peak_in_flight(f);
	printf("# slow app, default limits: server ack-pending peak %llu, "
	       "registry peak %.0f, window floor %d\n",
	    (unsigned long long)most, peak, WINDOW_FLOOR);
	if (peak < 4 || peak > WINDOW_FLOOR)
		fail_msg("peak in flight %.0f: expected the app's capacity "
			 "up to the window's floor %d",
		    peak, WINDOW_FLOOR);
	if (most > 2 * WINDOW_FLOOR)
		fail_msg(
		    "the server counts %llu unacked", (unsigned long long)most);
	testapp_free(app);
}

/* With the default limits and no app yet, the sidecar takes the window's
 * floor from the backlog and no more: a pod starting before its app does
 * not hold a thousand messages that other pods could take. */
static void
no_app_takes_the_window_floor(void **state)
{
	struct fixture *f = *state;
	uint64_t pending = 0, ack_pending = 0, most;
	double peak;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "n", 1, 2000), 0);
	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	for (int i = 0; i < 100 && ack_pending < WINDOW_FLOOR; i++) {
		fixture_sleep_ms(100);
		if (testjs_consumer_pending(f->js, "ORDERS", "orders-app",
			&pending, &ack_pending) != 0)
			ack_pending = 0;
	}
	most = most_ack_pending(f, 2000 - 2 * WINDOW_FLOOR, 10);
	peak = stop_for_peak_in_flight(f);
	printf("# no app, default limits: server ack-pending peak %llu, "
	       "registry peak %.0f, window floor %d\n",
	    (unsigned long long)most, peak, WINDOW_FLOOR);
	assert_int_equal(most, WINDOW_FLOOR);
	assert_int_equal((int)peak, WINDOW_FLOOR);
}

/* A fast app of capacity 8 opens the window well past its capacity: the
 * backlog comes in windows of up to max_in_flight. */
static void
fast_app_opens_the_window(void **state)
{
	struct fixture *f = *state;
	enum { N = 20000 };
	struct testapp *app;
	double peak;

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "o", 1, N), 0);
	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	assert_non_null(
	    app = testapp_start(daemon_socket(f->d), "--capacity", "8", NULL));
	wait_distinct_acks(app, N, 60000);
	peak = stop_for_peak_in_flight(f);
	printf("# fast app, default limits: registry peak %.0f\n", peak);
	if (peak <= 8 + WINDOW_FLOOR || peak > 1024)
		fail_msg("peak in flight %.0f: expected the window to open "
			 "past the app's capacity and floor, up to 1024",
		    peak);
	testapp_free(app);
}

/* Publishes order |i| to orders.created.v1 with a payload of |size|
 * bytes: "order-<i>" padded with spaces. */
static void
publish_large_order(struct fixture *f, unsigned long i, size_t size)
{
	char *payload = malloc(size);
	int n;

	assert_non_null(payload);
	memset(payload, ' ', size);
	n = snprintf(payload, size, "order-%lu", i);
	payload[n] = ' ';
	assert_int_equal(testjs_publish(f->js, "orders.created.v1", payload,
			     size, NULL, NULL, NULL),
	    0);
	free(payload);
}

/*
 * max_in_flight_bytes bounds what the sidecar takes when messages are
 * large, below the message window: with no app, 64 KiB of 8 KiB messages
 * is at most 8 of them. A message larger than the whole budget still
 * comes, alone, and nothing is lost either way.
 */
static void
byte_budget_bounds_large_messages(void **state)
{
	struct fixture *f = *state;
	enum { SMALLER = 60, LARGER = 3, BUDGET = 64 * 1024, SIZE = 8192 };
	uint64_t pending = 0, ack_pending = 0, most;
	struct testapp *app;

	for (unsigned long i = 1; i <= SMALLER; i++)
		publish_large_order(f, i, SIZE);
	for (unsigned long i = SMALLER + 1; i <= SMALLER + LARGER; i++)
		publish_large_order(f, i, 100 * 1024);
	assert_non_null(
	    fixture_start_daemon(f, "max_in_flight_bytes: 64KiB", NULL));
	for (int i = 0; i < 100 && ack_pending == 0; i++) {
		fixture_sleep_ms(100);
		if (testjs_consumer_pending(f->js, "ORDERS", "orders-app",
			&pending, &ack_pending) != 0)
			ack_pending = 0;
	}
	most = most_ack_pending(f, SMALLER - BUDGET / SIZE, 10);
	printf("# no app, 64 KiB budget, 8 KiB messages: server ack-pending "
	       "peak %llu\n",
	    (unsigned long long)most);
	if (most < 1 || most > BUDGET / SIZE)
		fail_msg("%llu messages of 8 KiB held for a budget of 64 KiB",
		    (unsigned long long)most);

	assert_non_null(
	    app = testapp_start(daemon_socket(f->d), "--capacity", "4", NULL));
	/* Well within pull_expires (30 s): no large message waits for a
	 * request to expire. */
	wait_distinct_acks(app, SMALLER + LARGER, 10000);
	fixture_assert_settles(f);
	testapp_free(app);
}

/*
 * Messages of 40 KiB in a budget of 64 KiB, one at a time at a slow app:
 * while it holds one, the 24 KiB left cannot take the next, and the
 * server refuses a request for them. The sidecar asks again only once
 * the app lets bytes go, not at once (which made thousands of refused
 * requests a second).
 */
static void
refused_request_waits_for_free_bytes(void **state)
{
	struct fixture *f = *state;
	enum { N = 12, SIZE = 40 * 1024 };
	const char *series =
	    "nats_sidecar_pull_requests_total{subscription=\"orders\"}";
	struct testapp *app;
	char *body = NULL;
	double requests = -1;

	for (unsigned long i = 1; i <= N; i++)
		publish_large_order(f, i, SIZE);
	assert_non_null(
	    fixture_start_daemon(f, "max_in_flight_bytes: 64KiB", NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "1", "--sleep-ms", "100", NULL));
	wait_distinct_acks(app, N, 20000);
	assert_int_equal(
	    httpget(daemon_http_port(f->d), "/metrics", &body), 200);
	assert_int_equal(promcheck_value(body, series, &requests), 0);
	free(body);
	printf("# %d messages of 40 KiB, a 64 KiB budget, an app taking "
	       "100 ms each: %.0f pull requests\n",
	    N, requests);
	/* About one refused and one filled for each message. */
	if (requests > 3 * N)
		fail_msg("%.0f pull requests for %d messages", requests, N);
	fixture_assert_settles(f);
	testapp_free(app);
}

static int
connect_raw(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		fail_msg("connect %s: %s", path, strerror(errno));
	return fd;
}

/* Sends |len| bytes and returns the Error code the sidecar answers with,
 * checking that it closes the connection afterwards. */
static int
error_for(const char *path, const void *bytes, size_t len)
{
	struct buf b = BUF_INIT;
	int fd = connect_raw(path), code = -1;
	Frame *f = NULL;
	size_t used;

	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 10000) != 1)
			fail_msg("no answer from the sidecar");
		n = read(fd, buf_reserve(&b, 4096), 4096);
		if (n <= 0)
			break;
		buf_commit(&b, (size_t)n);
	}
	if (frame_decode(buf_head(&b), buf_used(&b), FRAME_DEFAULT_MAX, &f,
		&used) == FRAME_OK &&
	    f->body_case == NATS_SIDECAR__CHANNEL__V1__FRAME__BODY_ERROR) {
		code = (int)f->error->code;
		assert_true(f->error->fatal);
	}
	frame_free(f);
	buf_free(&b);
	close(fd);
	return code;
}

static void
bad_frames_get_errors_and_others_go_on(void **state)
{
	static const unsigned char garbage[] = { 0, 0, 0, 4, 0xff, 0xff, 0xff,
		0xff };
	static const unsigned char huge[] = { 0x7f, 0xff, 0xff, 0xff };
	struct fixture *f = *state;
	struct testapp *app;

	assert_non_null(fixture_start_daemon(f, NULL, NULL));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "b", 1, 50), 0);
	assert_int_equal(
	    error_for(daemon_socket(f->d), garbage, sizeof garbage),
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__MALFORMED_FRAME);
	assert_int_equal(error_for(daemon_socket(f->d), huge, sizeof huge),
	    NATS_SIDECAR__CHANNEL__V1__ERROR__CODE__FRAME_TOO_LARGE);
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "b", 51, 50), 0);
	wait_distinct_acks(app, 100, 30000);
	fixture_assert_settles(f);
	testapp_free(app);
}

/* Messages held by the serial filter at shutdown go back with the rest,
 * and the sidecar exits cleanly. */
static void
serial_holds_at_shutdown_go_back(void **state)
{
	struct fixture *f = *state;
	struct testapp *app, *after;

	assert_non_null(fixture_start_daemon(
	    f, "serial_key: header:Order-Id", "shutdown_grace: 1s"));
	assert_non_null(app = testapp_start(daemon_socket(f->d), "--capacity",
			    "10", "--mode", "hang", NULL));
	for (int i = 0; i < 6; i++) {
		const char *hdrs[] = { "Order-Id", i % 2 ? "A" : "B", NULL };
		char body[16];

		snprintf(body, sizeof body, "order-%d", i + 1);
		assert_int_equal(testjs_publish(f->js, "orders.created.v1",
				     body, strlen(body), hdrs, NULL, NULL),
		    0);
	}
	/* One per key at the app; the other four held. */
	assert_int_equal(testapp_wait_deliveries(app, 2, 20000), 0);
	fixture_sleep_ms(300);
	assert_int_equal(testapp_count(app, "delivery"), 2);
	assert_int_equal(daemon_signal(f->d, SIGTERM), 0);
	assert_int_equal(daemon_wait(f->d, 20000), 0);
	testapp_free(app);

	assert_int_equal(daemon_restart(f->d), 0);
	assert_non_null(after = testapp_start(
			    daemon_socket(f->d), "--capacity", "10", NULL));
	wait_distinct_acks(after, 6, 30000);
	fixture_assert_settles(f);
	testapp_free(after);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    killed_app_work_goes_to_another_app, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    sigterm_drains_and_restart_delivers_the_rest, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    server_restart_mid_stream_loses_nothing, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    jetstream_gone_and_back, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(deleted_consumer_is_recreated,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    slow_app_leaves_the_backlog_in_jetstream, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    slow_app_holds_its_pace_not_max_in_flight, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(no_app_takes_the_window_floor,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    fast_app_opens_the_window, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    byte_budget_bounds_large_messages, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    refused_request_waits_for_free_bytes, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    bad_frames_get_errors_and_others_go_on, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    serial_holds_at_shutdown_go_back, fixture_setup,
		    fixture_teardown),
	};

	return cmocka_run_group_tests_name("failure", tests, NULL, NULL);
}
