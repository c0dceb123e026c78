/*
 * The dedup filter against a real nats-server and the real daemon: an
 * event published five times reaches the app once; a crash right after
 * the commit and before the JetStream ack (a failpoint) leaves the
 * redelivery acked without the app, a crash before the commit sends it
 * to the app again; keys expire after their ttl and the store stays flat
 * under a steady stream of new keys; with durability fsync the loop keeps
 * serving while a sync is slow; a full store stops pulling and fails
 * /readyz without losing anything; the operator commands work beside the
 * running daemon.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/fixture.h"
#include "harness/httpget.h"
#include "harness/natsserver.h"
#include "harness/proc.h"
#include "harness/testjs.h"

/* The store directory of the current test, removed by its end. */
static char store_dir[256];

static const char *
store_yaml(const char *more)
{
	static char yaml[512];

	if (store_dir[0] == '\0')
		assert_int_equal(
		    proc_tmpdir(store_dir, sizeof store_dir, "dedup-store"), 0);
	snprintf(yaml, sizeof yaml, "dedup:\n  path: %s/db%s%s", store_dir,
	    more != NULL ? "\n" : "", more != NULL ? more : "");
	return yaml;
}

static int
test_teardown(void **state)
{
	struct fixture *f = *state;

	unsetenv("NATS_SIDECAR_FAILPOINTS");
	daemon_free(f->d);
	f->d = NULL;
	if (store_dir[0] != '\0')
		proc_rmtree(store_dir);
	store_dir[0] = '\0';
	return 0;
}

/* Publishes an order event with |msg_id| whose payload's message_id is
 * |event_id|. */
static void
publish_event(struct fixture *f, const char *msg_id, const char *event_id)
{
	const char *hdrs[] = { "Nats-Msg-Id", msg_id, NULL };
	char payload[128];
	int n = snprintf(payload, sizeof payload,
	    "{\"message_id\":\"%s\",\"order_id\":\"o-%s\"}", event_id,
	    event_id);

	assert_int_equal(testjs_publish(f->js, "orders.created.v1", payload,
			     (size_t)n, hdrs, NULL, NULL),
	    0);
}

/* Runs `nats-sidecar -c CONFIG dedup ARGS`; returns its exit status and
 * its output in |out| (|cap| bytes). */
static int
dedup_command(struct fixture *f, const char *args, char *out, size_t cap)
{
	char bin[512], cmd[2048];
	size_t n;
	FILE *p;
	int st;

	proc_tree_path(bin, sizeof bin, "top_builddir", "nats-sidecar");
	snprintf(cmd, sizeof cmd, "%s -c %s dedup %s 2>&1", bin,
	    daemon_config_path(f->d), args);
	assert_non_null(p = popen(cmd, "r"));
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A number after |label| in `dedup stats` output. */
static unsigned long long
stat_value(struct fixture *f, const char *label)
{
	char out[1024], *p;

	assert_int_equal(dedup_command(f, "stats", out, sizeof out), 0);
	if ((p = strstr(out, label)) == NULL)
		fail_msg("no \"%s\" in the stats: %s", label, out);
	return strtoull(p + strlen(label), NULL, 10);
}

static void
same_event_five_times_reaches_the_app_once(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	char out[512];

	assert_non_null(fixture_start_daemon(f,
	    "filters:\n  - dedup: {key: \"field:message_id\"}",
	    store_yaml(NULL)));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	for (int i = 0; i < 5; i++) {
		char id[32];

		snprintf(id, sizeof id, "publish-%d", i);
		publish_event(f, id, "evt-1");
	}
	publish_event(f, "publish-5", "evt-2");
	assert_int_equal(testapp_wait_deliveries(app, 2, 10000), 0);
	fixture_assert_settles(f);
	fixture_sleep_ms(500);
	assert_int_equal(testapp_count(app, "delivery"), 2);
	assert_string_equal(
	    testapp_find(app, "delivery", 0)->message_id, "publish-0");
	assert_string_equal(
	    testapp_find(app, "delivery", 1)->message_id, "publish-5");

	/* The operator's view, beside the running daemon. */
	assert_int_equal(stat_value(f, "entries"), 2);
	assert_int_equal(dedup_command(f, "lookup evt-1", out, sizeof out), 0);
	assert_non_null(strstr(out, "processed at"));
	assert_int_equal(dedup_command(f, "lookup evt-3", out, sizeof out), 1);
	assert_int_equal(dedup_command(f, "forget evt-1", out, sizeof out), 0);
	assert_int_equal(dedup_command(f, "forget evt-1", out, sizeof out), 1);
	/* Forgotten: the next copy reaches the app again. */
	publish_event(f, "publish-6", "evt-1");
	assert_int_equal(testapp_wait_deliveries(app, 3, 10000), 0);
	fixture_assert_settles(f);
	assert_int_equal(dedup_command(f, "purge", out, sizeof out), 0);
	assert_non_null(strstr(out, "purged 2 key(s)"));
	assert_int_equal(stat_value(f, "entries"), 0);
	testapp_free(app);
}

/*
 * Kills the daemon at failpoint |where| with one event at the app, then
 * restarts it; returns how many times a new app sees that event.
 */
static size_t
deliveries_after_crash_at(struct fixture *f, const char *where)
{
	char fp[64];
	struct testapp *app;
	size_t n;

	snprintf(fp, sizeof fp, "%s=kill", where);
	setenv("NATS_SIDECAR_FAILPOINTS", fp, 1);
	assert_non_null(fixture_start_daemon(f,
	    "ack_wait: 2s\nconsumer_policy: update\n"
	    "filters:\n  - dedup: {key: \"field:message_id\"}",
	    store_yaml(NULL)));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish_event(f, where, "evt-crash");
	assert_int_equal(testapp_wait_for(app, "ack", 1, 10000), 0);
	/* The failpoint kills it at the first commit. */
	assert_int_equal(daemon_wait(f->d, 10000), 128 + SIGKILL);
	testapp_free(app);
	unsetenv("NATS_SIDECAR_FAILPOINTS");

	assert_int_equal(daemon_restart(f->d), 0);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	/* The ack never went out: the server redelivers after AckWait. */
	fixture_sleep_ms(3000);
	fixture_assert_settles(f);
	n = testapp_count(app, "delivery");
	if (n == 1)
		assert_int_equal(testapp_find(app, "delivery", 0)->attempt, 2);
	testapp_free(app);
	return n;
}

static void
crash_after_commit_redelivery_is_acked_without_the_app(void **state)
{
	assert_int_equal(
	    deliveries_after_crash_at(*state, "dedup.after_commit"), 0);
}

static void
crash_before_commit_redelivery_reaches_the_app(void **state)
{
	assert_int_equal(
	    deliveries_after_crash_at(*state, "dedup.before_commit"), 1);
}

static void
keys_expire_after_their_ttl(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;

	assert_non_null(fixture_start_daemon(f,
	    "filters:\n  - dedup: {key: \"field:message_id\", ttl: 1s}",
	    store_yaml(NULL)));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	publish_event(f, "ttl-1", "evt-ttl");
	assert_int_equal(testapp_wait_deliveries(app, 1, 10000), 0);
	fixture_assert_settles(f);
	publish_event(f, "ttl-2", "evt-ttl");
	fixture_assert_settles(f);
	assert_int_equal(testapp_count(app, "delivery"), 1);
	fixture_sleep_ms(2000);
	publish_event(f, "ttl-3", "evt-ttl");
	assert_int_equal(testapp_wait_deliveries(app, 2, 10000), 0);
	assert_string_equal(
	    testapp_find(app, "delivery", 1)->message_id, "ttl-3");
	fixture_assert_settles(f);
	testapp_free(app);
}

static void
store_stays_flat_under_new_keys(void **state)
{
	struct fixture *f = *state;
	unsigned long long entries[2], pages[2];
	struct testapp *app;
	uint64_t next = 0;

	assert_non_null(
	    fixture_start_daemon(f, "filters:\n  - dedup: {ttl: 1s}",
		store_yaml("  sweep_batch: 500")));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	/* 400 new keys every 250 ms, about 1,600 per ttl, for 8 s. */
	for (int round = 0; round < 32; round++) {
		assert_int_equal(testjs_publish_orders(f->js,
				     "orders.created.v1", "flat", next, 400),
		    0);
		next += 400;
		fixture_sleep_ms(250);
		if (round == 15 || round == 31) {
			entries[round / 16] = stat_value(f, "entries");
			pages[round / 16] = stat_value(f, "pages used");
		}
	}
	fixture_assert_settles(f);
	assert_int_equal(testapp_count(app, "delivery"), next);
	/* Bounded by what one ttl (plus a sweep's lag) holds, not by the
	 * 12,800 keys seen. */
	if (entries[0] > 6000 || entries[1] > 6000)
		fail_msg("entries %llu then %llu: the sweep does not keep up",
		    entries[0], entries[1]);
	if (pages[1] > pages[0] * 2 + 16)
		fail_msg(
		    "pages in use grew from %llu to %llu", pages[0], pages[1]);
	testapp_free(app);
}

/* Two subscriptions on ORDERS: deduplicated created events and plain
 * paid events. */
static struct daemon *
start_two(struct fixture *f, const char *yaml)
{
	struct daemon_subscription subs[] = {
		{ .name = "created",
		    .stream = "ORDERS",
		    .filter_subject = "orders.synced.>",
		    .yaml =
			"filters:\n  - dedup: {key: \"field:message_id\"}" },
		{ .name = "paid",
		    .stream = "ORDERS",
		    .filter_subject = "orders.paid.>" },
	};
	struct daemon_config cfg = {
		.nats_url = natsserver_url(f->srv),
		.subscriptions = subs,
		.nsubscriptions = 2,
		.log_level = "info",
		.yaml = yaml,
	};

	return f->d = daemon_start(&cfg);
}

static uint64_t
ack_pending(struct fixture *f, const char *durable)
{
	uint64_t pending = 0, acks = 0;

	assert_int_equal(
	    testjs_consumer_pending(f->js, "ORDERS", durable, &pending, &acks),
	    0);
	return acks;
}

static void
fsync_waits_off_the_loop(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	double acked_at, sent_at;

	setenv("NATS_SIDECAR_FAILPOINTS", "dedup.sync_delay_ms=3000", 1);
	assert_non_null(start_two(f, store_yaml("  durability: fsync")));
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	assert_int_equal(
	    testjs_publish(f->js, "orders.synced.v1",
		"{\"message_id\":\"evt-sync\"}", 25, NULL, NULL, NULL),
	    0);
	assert_int_equal(testapp_wait_for(app, "ack", 1, 10000), 0);
	sent_at = fixture_now();
	/* While the first sync sleeps, the other subscription is served. */
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.paid.v1", "paid", 0, 20), 0);
	assert_int_equal(testapp_wait_for(app, "ack", 21, 2000), 0);
	for (int i = 0; i < 40 && ack_pending(f, "paid") != 0; i++)
		fixture_sleep_ms(25);
	assert_int_equal(ack_pending(f, "paid"), 0);
	/* The deduplicated one is acked to JetStream only after the sync. */
	assert_int_equal(ack_pending(f, "created"), 1);
	while (ack_pending(f, "created") != 0 && fixture_now() - sent_at < 10)
		fixture_sleep_ms(50);
	acked_at = fixture_now();
	assert_int_equal(ack_pending(f, "created"), 0);
	if (acked_at - sent_at < 2.0)
		fail_msg("acked %.2f s after the app's ACK, before the 3 s "
			 "sync ended",
		    acked_at - sent_at);
	testapp_free(app);
}

static int
port_of(struct daemon *d)
{
	int port = daemon_http_port(d);

	assert_true(port > 0);
	return port;
}

/* Deliveries of this test's events (the consumer also has what earlier
 * tests left on other subjects). */
static size_t
full_deliveries(struct testapp *app)
{
	size_t n = 0, all = testapp_poll(app);

	for (size_t i = 0; i < all; i++) {
		const struct testapp_event *e = testapp_event(app, i);

		n += strcmp(e->kind, "delivery") == 0 &&
		    strncmp(e->message_id, "full-", 5) == 0;
	}
	return n;
}

/* full_deliveries(), and in |*idle| how many calls in a row found no
 * new one (|*seen|: the count of the last call). */
static size_t
full_progress(struct testapp *app, size_t *seen, int *idle)
{
	size_t now = full_deliveries(app);

	*idle = now > *seen ? 0 : *idle + 1;
	*seen = now;
	return now;
}

static void
full_store_stops_pulling_and_loses_nothing(void **state)
{
	struct fixture *f = *state;
	struct testapp *app;
	char *body = NULL, out[256];
	int port, status = 0, idle = 0;
	size_t seen = 0;

	assert_non_null(fixture_start_daemon(f, "filters:\n  - dedup: {}",
	    store_yaml("  map_size: 1MiB\n  map_size_max: 1MiB")));
	port = port_of(f->d);
	assert_non_null(app = testapp_start(daemon_socket(f->d), NULL));
	assert_int_equal(
	    testjs_publish_orders(f->js, "orders.created.v1", "full", 0, 20000),
	    0);
	/* Fills the map; on a loaded machine slowly, so what fails is 10 s
	 * with neither a delivery nor the store reported full. */
	while (status != 503 && idle < 200) {
		free(body);
		status = httpget(port, "/readyz", &body);
		full_progress(app, &seen, &idle);
		fixture_sleep_ms(50);
	}
	assert_int_equal(status, 503);
	assert_non_null(strstr(body, "dedup store: full"));
	free(body);
	assert_true(full_deliveries(app) < 20000);
	/* Room again (as often as it fills): everything goes through,
	 * each event once. A loaded machine only makes it slower, so what
	 * fails is 10 s without a delivery. */
	for (idle = 0; full_progress(app, &seen, &idle) < 20000 && idle < 20;) {
		assert_int_equal(dedup_command(f, "purge", out, sizeof out), 0);
		fixture_sleep_ms(500);
	}
	/* Stopped short: what the sidecar logged goes with the failure. */
	if (full_deliveries(app) < 20000)
		proc_show("nats-sidecar output", daemon_log_path(f->d));
	fixture_assert_settles(f);
	assert_int_equal(full_deliveries(app), 20000);
	testapp_free(app);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    same_event_five_times_reaches_the_app_once, test_teardown),
		cmocka_unit_test_teardown(
		    crash_after_commit_redelivery_is_acked_without_the_app,
		    test_teardown),
		cmocka_unit_test_teardown(
		    crash_before_commit_redelivery_reaches_the_app,
		    test_teardown),
		cmocka_unit_test_teardown(
		    keys_expire_after_their_ttl, test_teardown),
		cmocka_unit_test_teardown(
		    store_stays_flat_under_new_keys, test_teardown),
		cmocka_unit_test_teardown(
		    fsync_waits_off_the_loop, test_teardown),
		cmocka_unit_test_teardown(
		    full_store_stops_pulling_and_loses_nothing, test_teardown),
	};

	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
