/*
 * The harness itself: a real server exchanges messages, keeps its port and
 * store across restarts, and never outlives a test that fails or dies.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness/cmocka.h"
#include "harness/natsserver.h"
#include "harness/testjs.h"

static const char *const order_subjects[] = { "orders.>", NULL };

static void
publish_and_read_back(void **state)
{
	struct natsserver *srv = natsserver_start(NULL);
	const char *hdrs[] = { "Nats-Msg-Id", "order-1", "X-Tenant", "acme",
		NULL };
	const char *v = NULL;
	struct testjs *js;
	natsMsg *m = NULL;
	uint64_t seq = 0;
	int dup = -1;

	assert_non_null(srv);
	assert_true(natsserver_port(srv) > 0);
	assert_non_null(js = testjs_connect(natsserver_url(srv)));
	assert_int_equal(testjs_add_stream(js, "ORDERS", order_subjects), 0);
	assert_int_equal(testjs_publish(js, "orders.created.v1",
			     "{\"order_id\":\"o-1\"}", 18, hdrs, &seq, &dup),
	    0);
	assert_int_equal(seq, 1);
	assert_int_equal(dup, 0);
	/* The same Nats-Msg-Id again is caught by the stream. */
	assert_int_equal(
	    testjs_publish(js, "orders.created.v1", "x", 1, hdrs, &seq, &dup),
	    0);
	assert_int_equal(dup, 1);

	assert_int_equal(testjs_get(js, "ORDERS", 1, &m), 0);
	assert_string_equal(natsMsg_GetSubject(m), "orders.created.v1");
	assert_int_equal(natsMsg_GetDataLength(m), 18);
	assert_memory_equal(natsMsg_GetData(m), "{\"order_id\":\"o-1\"}", 18);
	assert_int_equal(natsMsgHeader_Get(m, "X-Tenant", &v), NATS_OK);
	assert_string_equal(v, "acme");
	assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &v), NATS_OK);
	assert_string_equal(v, "order-1");
	natsMsg_Destroy(m);
	testjs_free(js);
	natsserver_free(srv);
}

/* Stop, kill and restart keep the port and the stored messages. */
static void
restart_keeps_port_and_store(void **state)
{
	struct natsserver *srv = natsserver_start(NULL);
	struct testjs *js;
	uint64_t n = 0;
	int port;

	assert_non_null(srv);
	port = natsserver_port(srv);
	assert_non_null(js = testjs_connect(natsserver_url(srv)));
	assert_int_equal(testjs_add_stream(js, "ORDERS", order_subjects), 0);
	assert_int_equal(
	    testjs_publish(js, "orders.created.v1", "a", 1, NULL, NULL, NULL),
	    0);
	testjs_free(js);

	assert_int_equal(natsserver_stop(srv), 0);
	assert_int_equal(natsserver_pid(srv), -1);
	assert_int_equal(natsserver_restart(srv), 0);
	assert_int_equal(natsserver_port(srv), port);
	assert_non_null(js = testjs_connect(natsserver_url(srv)));
	assert_int_equal(
	    testjs_publish(js, "orders.created.v1", "b", 1, NULL, NULL, NULL),
	    0);
	testjs_free(js);

	assert_int_equal(natsserver_kill(srv), 0);
	assert_int_equal(natsserver_restart(srv), 0);
	assert_int_equal(natsserver_port(srv), port);
	assert_non_null(js = testjs_connect(natsserver_url(srv)));
	assert_int_equal(testjs_stream_msgs(js, "ORDERS", &n), 0);
	assert_int_equal(n, 2);
	testjs_free(js);
	natsserver_free(srv);
}

/* Servers started side by side get distinct ports and stores. */
static void
servers_run_side_by_side(void **state)
{
	struct natsserver *a = natsserver_start(NULL);
	struct natsserver *b = natsserver_start(NULL);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(natsserver_port(a), natsserver_port(b));
	assert_string_not_equal(
	    natsserver_store_dir(a), natsserver_store_dir(b));
	natsserver_free(a);
	natsserver_free(b);
}

enum child_end { END_ASSERTION, END_ABORT, END_KILLED };

static struct natsserver *child_server;
static int child_pipe = -1;

static void
child_fails_assertion(void **state)
{
	pid_t pid = natsserver_pid(child_server);

	if (write(child_pipe, &pid, sizeof pid) != sizeof pid)
		_exit(3);
	assert_int_equal(1, 2); /* the failure under test */
}

static int
child_teardown(void **state)
{
	natsserver_free(child_server);
	return 0;
}

/* Runs in a child: starts a server, reports its pid, then ends as told. */
static void
child_main(enum child_end end, int fd)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(child_fails_assertion),
	};
	pid_t pid;

	if ((child_server = natsserver_start(NULL)) == NULL)
		_exit(2);
	child_pipe = fd;
	switch (end) {
	case END_ASSERTION:
		/* cmocka runs the group teardown after the failed test. */
		_exit(cmocka_run_group_tests_name(
			  "child", t, NULL, child_teardown) == 0
			? 0
			: 1);
	case END_ABORT:
		pid = natsserver_pid(child_server);
		if (write(fd, &pid, sizeof pid) != sizeof pid)
			_exit(3);
		abort();
	case END_KILLED:
		pid = natsserver_pid(child_server);
		if (write(fd, &pid, sizeof pid) != sizeof pid)
			_exit(3);
		for (;;)
			pause();
	}
	_exit(4);
}

/* Waits up to 10 s for |pid| (reparented to us) to exit. */
static int
reaped(pid_t pid)
{
	for (int i = 0; i < 1000; i++) {
		struct timespec ts = { 0, 10000000 };
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid ||
		    (r == -1 && errno == ECHILD && kill(pid, 0) == -1))
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void
server_gone_after(enum child_end end)
{
	pid_t child, server = -1;
	int fds[2], status;

	/* Orphans come to us, so the server's exit can be observed. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(fds), 0);
	if ((child = fork()) == 0) {
		close(fds[0]);
		setenv("CMOCKA_MESSAGE_OUTPUT", "TAP", 1);
		/* Keep the child's TAP lines out of ours. */
		freopen("/dev/null", "w", stdout);
		child_main(end, fds[1]);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &server, sizeof server), sizeof server);
	close(fds[0]);
	assert_true(server > 0);
	if (end == END_KILLED)
		kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	if (end == END_ASSERTION)
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	else
		assert_true(WIFSIGNALED(status));
	assert_true(reaped(server));
}

static void
server_stopped_when_test_fails(void **state)
{
	server_gone_after(END_ASSERTION);
}

static void
server_stopped_when_test_aborts(void **state)
{
	server_gone_after(END_ABORT);
}

static void
server_stopped_when_test_is_killed(void **state)
{
	server_gone_after(END_KILLED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(publish_and_read_back),
		cmocka_unit_test(restart_keeps_port_and_store),
		cmocka_unit_test(servers_run_side_by_side),
		cmocka_unit_test(server_stopped_when_test_fails),
		cmocka_unit_test(server_stopped_when_test_aborts),
		cmocka_unit_test(server_stopped_when_test_is_killed),
	};

	return cmocka_run_group_tests_name("natsserver", tests, NULL, NULL);
}
