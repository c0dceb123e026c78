/*
 * The daemon's HTTP side against a real scenario: /metrics after known
 * outcomes (exact counter values, and a strict exposition-format check),
 * /healthz, /startupz before any app, and /readyz following NATS and the
 * apps as configured; trace context started for deliveries without one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/fixture.h"
#include "harness/httpget.h"
#include "harness/natsserver.h"
#include "harness/promcheck.h"
#include "harness/testjs.h"
#include "trace.h"

static const char *const order_subjects[] = { "orders.>", NULL };

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int
http_port(struct daemon *d)
{
	int port = daemon_http_port(d);

	assert_true(port > 0);
	return port;
}

/* Waits until |path| answers |status|; returns the last body. */
static char *
wait_status(int port, const char *path, int status)
{
	char *body = NULL;
	int got = -1;

	for (int i = 0; i < 200; i++) {
		free(body);
		if ((got = httpget(port, path, &body)) == status)
			return body;
		sleep_ms(50);
	}
	fail_msg("%s answered %d, want %d: %s", path, got, status,
	    body != NULL ? body : "");
	return NULL;
}

static void
metrics_count_known_outcomes(void **state)
{
	struct daemon_subscription sub = { .name = "orders",
		.stream = "ORDERS",
		.yaml = "filters:\n  - deadletter: {stream: DLQ}" };
	struct daemon_config cfg = {
		.subscriptions = &sub, .nsubscriptions = 1, .log_level = "info"
	};
	struct natsserver *srv = natsserver_start(NULL);
	struct testapp *app;
	struct testjs *js;
	struct daemon *d;
	char err[256], *body;
	double v = -1;
	int port;

	assert_non_null(srv);
	cfg.nats_url = natsserver_url(srv);
	assert_non_null(js = testjs_connect(natsserver_url(srv)));
	assert_int_equal(testjs_add_stream(js, "ORDERS", order_subjects), 0);
	assert_non_null(d = daemon_start(&cfg));
	port = http_port(d);
	assert_non_null(app = testapp_start(daemon_socket(d),
			    "--reject-if-payload-contains", "order-7", NULL));
	assert_int_equal(
	    testjs_publish_orders(js, "orders.created.v1", "m", 1, 10), 0);
	assert_int_equal(testapp_wait_for(app, "ack", 9, 20000), 0);
	assert_int_equal(testapp_wait_for(app, "reject", 1, 20000), 0);

	body = wait_status(port, "/healthz", 200);
	free(body);
	/* The counters settle once the dead letter's PubAck is in. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(httpget(port, "/metrics", &body), 200);
		if (promcheck_value(body,
			"nats_sidecar_deliveries_total{subscription=\"orders\","
			"outcome=\"rejected\"}",
			&v) == 0 &&
		    v == 1)
			break;
		free(body);
		body = NULL;
		sleep_ms(50);
	}
	assert_non_null(body);
	if (promcheck(body, NULL, NULL, err, sizeof err) == -1)
		fail_msg("/metrics is not valid exposition: %s", err);
	assert_int_equal(promcheck_value(body,
			     "nats_sidecar_deliveries_total{subscription=\""
			     "orders\",outcome=\"acked\"}",
			     &v),
	    0);
	assert_true(v == 9);
	assert_int_equal(promcheck_value(body,
			     "nats_sidecar_dead_letters_total{subscription=\""
			     "orders\",reason=\"rejected\"}",
			     &v),
	    0);
	assert_true(v == 1);
	assert_int_equal(
	    promcheck_value(body, "nats_sidecar_app_connections", &v), 0);
	assert_true(v == 1);
	assert_int_equal(
	    promcheck_value(
		body, "nats_sidecar_in_flight{subscription=\"orders\"}", &v),
	    0);
	assert_true(v == 0);
	free(body);
	testapp_free(app);
	daemon_free(d);
	testjs_free(js);
	natsserver_free(srv);
}

static void
probes_follow_nats_and_apps(void **state)
{
	struct daemon_subscription sub = { .name = "orders",
		.stream = "ORDERS" };
	struct daemon_config cfg = { .subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info",
		.http_yaml = "ready_requires_nats: true\n"
			     "ready_requires_app: true" };
	struct natsserver *srv = natsserver_start(NULL);
	struct testapp *app;
	struct testjs *js;
	struct daemon *d;
	char *body;
	int port;

	assert_non_null(srv);
	cfg.nats_url = natsserver_url(srv);
	assert_non_null(js = testjs_connect(natsserver_url(srv)));
	assert_int_equal(testjs_add_stream(js, "ORDERS", order_subjects), 0);
	testjs_free(js);
	assert_non_null(d = daemon_start(&cfg));
	port = http_port(d);

	/* Started, and not ready until an app is there. */
	free(wait_status(port, "/startupz", 200));
	body = wait_status(port, "/readyz", 503);
	assert_non_null(strstr(body, "app: none connected"));
	free(body);
	assert_non_null(app = testapp_start(daemon_socket(d), NULL));
	free(wait_status(port, "/readyz", 200));

	/* NATS goes away and comes back. */
	assert_int_equal(natsserver_stop(srv), 0);
	body = wait_status(port, "/readyz", 503);
	assert_non_null(strstr(body, "nats: "));
	free(body);
	free(wait_status(port, "/healthz", 200));
	assert_int_equal(natsserver_restart(srv), 0);
	free(wait_status(port, "/readyz", 200));

	/* The app leaves. */
	assert_int_equal(testapp_kill(app), 0);
	body = wait_status(port, "/readyz", 503);
	assert_non_null(strstr(body, "app: none connected"));
	free(body);
	testapp_free(app);
	daemon_free(d);
	natsserver_free(srv);
}

/* Waits until /metrics has |series| at |want|; returns the body. */
static char *
wait_metric(int port, const char *series, double want)
{
	char *body = NULL;
	double v = -1;

	for (int i = 0; i < 200; i++) {
		free(body);
		assert_int_equal(httpget(port, "/metrics", &body), 200);
		if (promcheck_value(body, series, &v) == 0 && v == want)
			return body;
		sleep_ms(50);
	}
	fail_msg("%s is %g, want %g", series, v, want);
	return NULL;
}

static double
metric_of(const char *body, const char *series)
{
	double v = -1;

	if (promcheck_value(body, series, &v) != 0)
		fail_msg("/metrics has no %s", series);
	return v;
}

static void
assert_valid_exposition(const char *body)
{
	char err[256];

	if (promcheck(body, NULL, NULL, err, sizeof err) == -1)
		fail_msg("/metrics is not valid exposition: %s", err);
}

/*
 * Seven orders and no app: the sidecar holds max_in_flight (3), the
 * server keeps the rest pending, and the polled gauges say so; once an
 * app has acked everything they fall to 0.
 */
static void
consumer_pending_is_polled(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	char *body, series[128];
	int port;

	assert_non_null(fixture_start_daemon(f, "max_in_flight: 3",
	    "metrics:\n  consumer_poll_interval: 200ms"));
	port = http_port(f->d);
	body = wait_metric(
	    port, "nats_sidecar_nats_connection_state{state=\"connected\"}", 1);
	assert_true(metric_of(body,
			"nats_sidecar_nats_connection_state{state="
			"\"disconnected\"}") == 0);
	snprintf(series, sizeof series,
	    "nats_sidecar_build_info{version=\"%s\"}", PACKAGE_VERSION);
	assert_true(metric_of(body, series) == 1);
	free(body);

	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "p", 1, 7), 0);
	free(wait_metric(port,
	    "nats_sidecar_consumer_ack_pending{subscription=\"orders\"}", 3));
	body = wait_metric(
	    port, "nats_sidecar_consumer_pending{subscription=\"orders\"}", 4);
	assert_valid_exposition(body);
	assert_true(
	    metric_of(
		body, "nats_sidecar_in_flight{subscription=\"orders\"}") == 3);
	assert_true(metric_of(body,
			"nats_sidecar_in_flight_limit{subscription="
			"\"orders\"}") == 3);
	assert_true(metric_of(body, "nats_sidecar_app_capacity") == 0);
	assert_true(metric_of(body,
			"nats_sidecar_end_to_end_seconds_count{subscription="
			"\"orders\"}") == 0);
	free(body);

	assert_non_null(
	    app = testapp_start(daemon_socket(f->d), "--capacity", "5", NULL));
	assert_int_equal(testapp_wait_for(app, "ack", 7, 20000), 0);
	fixture_assert_settles(f);
	free(wait_metric(port,
	    "nats_sidecar_consumer_ack_pending{subscription=\"orders\"}", 0));
	body = wait_metric(
	    port, "nats_sidecar_consumer_pending{subscription=\"orders\"}", 0);
	assert_valid_exposition(body);
	assert_true(metric_of(body, "nats_sidecar_app_capacity") == 5);
	/* Every ack observed once from its JetStream timestamp. */
	assert_true(metric_of(body,
			"nats_sidecar_end_to_end_seconds_count{subscription="
			"\"orders\"}") == 7);
	/* One batch size per pull request, none larger than the room. */
	assert_true(metric_of(body,
			"nats_sidecar_pull_batch_size_count{subscription="
			"\"orders\"}") ==
	    metric_of(body,
		"nats_sidecar_pull_requests_total{subscription=\"orders\"}"));
	assert_true(metric_of(body,
			"nats_sidecar_pull_batch_size_bucket{subscription="
			"\"orders\",le=\"4\"}") ==
	    metric_of(body,
		"nats_sidecar_pull_batch_size_count{subscription=\"orders\"}"));
	free(body);
	testapp_free(app);
}

/* With the poll off, the gauges are not there at all. */
static void
consumer_pending_not_polled_when_off(void **state)
{
	struct fixture *f = *state;
	char *body;
	double v;
	int port;

	assert_non_null(fixture_start_daemon(
	    f, NULL, "metrics:\n  consumer_poll_interval: 0"));
	port = http_port(f->d);
	body = wait_metric(
	    port, "nats_sidecar_nats_connection_state{state=\"connected\"}", 1);
	assert_int_equal(promcheck_value(body,
			     "nats_sidecar_consumer_pending{subscription=\""
			     "orders\"}",
			     &v),
	    -1);
	assert_valid_exposition(body);
	free(body);
}

#define GOOD_PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/*
 * Four orders: one without trace context (rejected, so dead-lettered),
 * one with a valid traceparent, one with a malformed one, one plain.
 */
static struct testapp *
publish_traced(struct fixture *f, const char *yaml)
{
	const char *good[] = { "traceparent", GOOD_PARENT, "tracestate", "k=v",
		NULL };
	const char *bad[] = { "traceparent", "00-not-a-trace", "tracestate",
		"k=v", NULL };
	const char *payloads[] = { "untraced-reject", "traced", "malformed",
		"untraced" };
	const char *const *hdrs[] = { NULL, good, bad, NULL };
	struct testapp *app;

	assert_non_null(fixture_start_daemon(f,
	    "filters:\n"
	    "  - deadletter: {stream: DLQ}",
	    yaml));
	assert_non_null(app = testapp_start(daemon_socket(f->d),
			    "--reject-if-payload-contains", "reject", NULL));
	for (int i = 0; i < 4; i++)
		assert_int_equal(
		    testjs_publish(f->js, "orders.created.v1", payloads[i],
			strlen(payloads[i]), hdrs[i], NULL, NULL),
		    0);
	assert_int_equal(testapp_wait_deliveries(app, 4, 20000), 0);
	fixture_assert_settles(f);
	return app;
}

/* The delivery of the order whose payload is |payload|. */
static const struct testapp_event *
delivery_of(struct testapp *app, const char *payload)
{
	for (size_t i = 0; i < testapp_count(app, "delivery"); i++) {
		const struct testapp_event *e =
		    testapp_find(app, "delivery", i);

		if (strcmp(e->payload, payload) == 0)
			return e;
	}
	fail_msg("no delivery of \"%s\"", payload);
	return NULL;
}

/* The dead letter's traceparent, or NULL when it has none. */
static char *
dead_letter_parent(struct fixture *f)
{
	const char *v = NULL;
	natsMsg *m = NULL;
	uint64_t n = 0;
	char *r;

	for (int i = 0; i < 200 && n < 1; i++) {
		testjs_stream_msgs(f->js, "DLQ", &n);
		fixture_sleep_ms(50);
	}
	assert_int_equal(n, 1);
	assert_int_equal(testjs_get(f->js, "DLQ", 1, &m), 0);
	r = natsMsgHeader_Get(m, "traceparent", &v) == NATS_OK ? strdup(v)
							       : NULL;
	natsMsg_Destroy(m);
	return r;
}

static void
trace_started_when_configured(void **state)
{
	struct fixture *f = *state;
	struct testapp *app =
	    publish_traced(f, "trace:\n  start: true\n  sampled: false");
	const char *rej = delivery_of(app, "untraced-reject")->traceparent;
	const char *plain = delivery_of(app, "untraced")->traceparent;
	const char *bad = delivery_of(app, "malformed")->traceparent;
	char *dl, *line, want[64];

	/* Well-formed, unsampled as configured, and one trace each. */
	if (!trace_parent_valid(rej) || !trace_parent_valid(plain) ||
	    !trace_parent_valid(bad))
		fail_msg("started traceparents \"%s\", \"%s\", \"%s\"", rej,
		    plain, bad);
	assert_string_equal(rej + 53, "00");
	assert_memory_not_equal(rej + 3, plain + 3, TRACE_ID_LEN);
	assert_memory_not_equal(bad + 3, plain + 3, TRACE_ID_LEN);
	/* A valid one is passed on as it came. */
	assert_string_equal(
	    delivery_of(app, "traced")->traceparent, GOOD_PARENT);

	/* The dead letter carries the trace the app saw; so does its log
	 * line. */
	dl = dead_letter_parent(f);
	assert_non_null(dl);
	assert_string_equal(dl, rej);
	free(dl);
	assert_non_null(
	    line = daemon_log_line(f->d, "delivery.dead_lettered", 0));
	snprintf(want, sizeof want, "\"trace_id\":\"%.32s\"", rej + 3);
	if (strstr(line, want) == NULL)
		fail_msg("log line %s lacks %s", line, want);
	free(line);
	testapp_free(app);
}

static void
no_trace_started_by_default(void **state)
{
	struct fixture *f = *state;
	struct testapp *app = publish_traced(f, NULL);
	char *dl;

	assert_string_equal(
	    delivery_of(app, "untraced-reject")->traceparent, "");
	assert_string_equal(delivery_of(app, "untraced")->traceparent, "");
	/* A malformed traceparent is not passed on as if valid. */
	assert_string_equal(delivery_of(app, "malformed")->traceparent, "");
	assert_string_equal(
	    delivery_of(app, "traced")->traceparent, GOOD_PARENT);
	dl = dead_letter_parent(f);
	assert_null(dl);
	testapp_free(app);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metrics_count_known_outcomes),
		cmocka_unit_test(probes_follow_nats_and_apps),
		cmocka_unit_test_setup_teardown(consumer_pending_is_polled,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    consumer_pending_not_polled_when_off, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(trace_started_when_configured,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(no_trace_started_by_default,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests_name("observability", tests, NULL, NULL);
}
