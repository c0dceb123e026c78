/*
 * The sample apps (examples/c/order_app.c and examples/python/
 * order_app.py) against the daemon's own app channel, run in this process
 * (tests/harness/appserver.h): each connects, stays alive through
 * heartbeats, answers deliveries and exits on drain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/appserver.h"
#include "harness/cmocka.h"
#include "harness/proc.h"

#define WAIT_MS 10000
#define HEARTBEAT_MS 200
#define DEAD_AFTER_MS 700

typedef NatsSidecar__Channel__V1__Result Result;

struct fixture {
	struct appserver *srv;
	char dir[256];
	char out[300]; /* the app's stdout and stderr */
	pid_t pid;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL || proc_tmpdir(fx->dir, sizeof fx->dir, "example") == -1)
		return -1;
	snprintf(fx->out, sizeof fx->out, "%s/out.log", fx->dir);
	fx->pid = -1;
	fx->srv = appserver_start(HEARTBEAT_MS, DEAD_AFTER_MS);
	*state = fx;
	return fx->srv != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	proc_kill(&fx->pid);
	appserver_free(fx->srv);
	proc_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* A Python 3 that has python3-protobuf: $PYTHON, else Debian's own (the
 * first python3 on PATH may be another installation). */
static const char *
python(void)
{
	static const char *const candidates[] = { "/usr/bin/python3",
		"/usr/local/bin/python3", NULL };
	const char *env = getenv("PYTHON");
	char cmd[512];

	if (env != NULL && *env != '\0')
		return env;
	for (int i = 0; candidates[i] != NULL; i++) {
		snprintf(cmd, sizeof cmd,
		    "%s -c 'import google.protobuf' 2>/dev/null",
		    candidates[i]);
		if (system(cmd) == 0)
			return candidates[i];
	}
	fail_msg("no python3 with google.protobuf: install python3-protobuf "
		 "or set PYTHON");
	return NULL;
}

static void
deliver(struct fixture *fx, uint64_t id, const char *payload)
{
	NatsSidecar__Channel__V1__Delivery d =
	    NATS_SIDECAR__CHANNEL__V1__DELIVERY__INIT;

	d.id = id;
	d.subscription = "orders";
	d.subject = "orders.created.v1";
	d.payload.data = (uint8_t *)payload;
	d.payload.len = strlen(payload);
	d.attempt = 2;
	d.stream_sequence = 7;
	d.message_id = "order-7";
	assert_int_equal(appserver_deliver(fx->srv, 0, &d), 0);
}

/* Whether the app's output has a line containing |text|. */
static void
expect_output(struct fixture *fx, const char *text)
{
	char line[1024];
	FILE *f = fopen(fx->out, "r");

	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strstr(line, text) != NULL) {
			fclose(f);
			return;
		}
	}
	fclose(f);
	proc_show("app output", fx->out);
	fail_msg("no line with \"%s\" in the app's output", text);
}

/* Runs |argv| as the app until it is ready, past a few heartbeat
 * intervals. */
static void
start_app(struct fixture *fx, char *const argv[])
{
	fx->pid = proc_spawn(argv, -1, fx->out);
	assert_true(fx->pid > 0);
	if (appserver_wait(fx->srv, APPSERVER_READY, 1, WAIT_MS) == -1) {
		proc_show("app output", fx->out);
		fail();
	}
	/* Idle for longer than dead_after: only heartbeats keep it. */
	proc_sleep_ms(3 * DEAD_AFTER_MS / 2);
	assert_int_equal(appserver_count(fx->srv, APPSERVER_GONE), 0);
}

static void
expect_result(struct fixture *fx, size_t i, uint64_t id, int outcome)
{
	const Result *r;

	assert_int_equal(
	    appserver_wait(fx->srv, APPSERVER_RESULTS, i + 1, WAIT_MS), 0);
	r = appserver_result(fx->srv, i);
	assert_int_equal(r->id, id);
	assert_int_equal(r->outcome, outcome);
}

/* Drain makes the app exit with status 0. */
static void
drain_and_exit(struct fixture *fx)
{
	appserver_drain(fx->srv, 5000);
	assert_int_equal(proc_wait(&fx->pid, WAIT_MS), 0);
	expect_output(fx, "draining");
}

static void
c_example(void **state)
{
	struct fixture *fx = *state;
	char bin[512];
	char *argv[] = { bin, (char *)appserver_socket(fx->srv), NULL };

	proc_tree_path(bin, sizeof bin, "top_builddir", "examples/c/order_app");
	start_app(fx, argv);
	deliver(fx, 1, "{\"order_id\":\"o-7\"}");
	expect_result(
	    fx, 0, 1, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	expect_output(
	    fx, "orders.created.v1 seq=7 attempt=2 id=order-7: 18 bytes");
	drain_and_exit(fx);
}

static void
python_example(void **state)
{
	struct fixture *fx = *state;
	char script[512], proto[512];
	char *argv[] = { (char *)python(), script, "--socket",
		(char *)appserver_socket(fx->srv), "--proto", proto, NULL };
	const Result *r;

	proc_tree_path(script, sizeof script, "top_srcdir",
	    "examples/python/order_app.py");
	proc_tree_path(
	    proto, sizeof proto, "top_srcdir", "proto/channel.proto");
	start_app(fx, argv);
	deliver(fx, 1, "{\"total\": 12.5, \"order_id\": \"o-7\"}");
	expect_result(
	    fx, 0, 1, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__ACK);
	expect_output(fx,
	    "orders.created.v1 seq=7 attempt=2 id=order-7: "
	    "{\"order_id\": \"o-7\", \"total\": 12.5}");

	deliver(fx, 2, "not json");
	expect_result(
	    fx, 1, 2, NATS_SIDECAR__CHANNEL__V1__RESULT__OUTCOME__REJECT);
	r = appserver_result(fx->srv, 1);
	assert_string_equal(r->reason, "payload is not JSON");
	drain_and_exit(fx);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(c_example),
		T(python_example),
	};
#undef T

	return cmocka_run_group_tests_name("order_app", tests, NULL, NULL);
}
