/*
 * Credentials through nats.c, given the way Kubernetes gives them (the
 * environment overrides): user and password, a token, an nkey seed file,
 * and TLS with a CA of the test's own. Wrong credentials leave the sidecar
 * retrying and saying why, once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/app.h"
#include "harness/cmocka.h"
#include "harness/daemon.h"
#include "harness/natsserver.h"
#include "harness/testjs.h"

/* The user pair published in the NKeys documentation. */
#define NKEY_SEED "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
#define NKEY_PUBLIC "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"

static const char *const order_subjects[] = { "orders.>", NULL };

/* Creates the stream through |js|, starts the daemon on |url| (credentials
 * come from the environment) and checks that messages flow. */
static void
delivers_over(struct testjs *js, const char *url)
{
	struct daemon_subscription sub = { .name = "orders",
		.stream = "ORDERS" };
	struct daemon_config cfg = {
		.nats_url = url,
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info",
	};
	struct daemon *d;
	struct testapp *app;

	assert_non_null(js);
	assert_int_equal(testjs_add_stream(js, "ORDERS", order_subjects), 0);
	assert_int_equal(
	    testjs_publish_orders(js, "orders.created.v1", "a", 1, 5), 0);
	assert_non_null(d = daemon_start(&cfg));
	assert_non_null(app = testapp_start(daemon_socket(d), NULL));
	assert_int_equal(testapp_wait_for(app, "ack", 5, 20000), 0);
	testapp_free(app);
	daemon_free(d);
	testjs_free(js);
}

static void
delivers_with(struct natsserver *srv, const char *admin_url)
{
	delivers_over(testjs_connect(admin_url), natsserver_url(srv));
}

static char *
url_with(const struct natsserver *srv, const char *userinfo)
{
	char *url = malloc(128);

	assert_non_null(url);
	snprintf(
	    url, 128, "nats://%s@127.0.0.1:%d", userinfo, natsserver_port(srv));
	return url;
}

static void
user_and_password(void **state)
{
	struct natsserver *srv =
	    natsserver_start("--user", "orders", "--pass", "s3cret", NULL);
	char *admin;

	assert_non_null(srv);
	admin = url_with(srv, "orders:s3cret");
	setenv("NATS_SIDECAR_USER", "orders", 1);
	setenv("NATS_SIDECAR_PASSWORD", "s3cret", 1);
	delivers_with(srv, admin);
	unsetenv("NATS_SIDECAR_USER");
	unsetenv("NATS_SIDECAR_PASSWORD");
	free(admin);
	natsserver_free(srv);
}

static void
token(void **state)
{
	struct natsserver *srv = natsserver_start("--auth", "t0ken", NULL);
	char *admin;

	assert_non_null(srv);
	admin = url_with(srv, "t0ken");
	setenv("NATS_SIDECAR_TOKEN", "t0ken", 1);
	delivers_with(srv, admin);
	unsetenv("NATS_SIDECAR_TOKEN");
	free(admin);
	natsserver_free(srv);
}

static void
nkey_seed_file(void **state)
{
	char dir[] = "/tmp/auth-test.XXXXXX", conf[64], seed[64];
	struct natsserver *srv;
	char *admin;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof conf, "%s/server.conf", dir);
	snprintf(seed, sizeof seed, "%s/user.nk", dir);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f,
	    "authorization { users = [\n"
	    "  { user: admin, password: pw }\n"
	    "  { nkey: " NKEY_PUBLIC " }\n"
	    "] }\n");
	fclose(f);
	assert_non_null(f = fopen(seed, "w"));
	fprintf(f, "%s\n", NKEY_SEED);
	fclose(f);
	assert_non_null(srv = natsserver_start("-c", conf, NULL));
	admin = url_with(srv, "admin:pw");
	setenv("NATS_SIDECAR_NKEY_SEED", seed, 1);
	delivers_with(srv, admin);
	unsetenv("NATS_SIDECAR_NKEY_SEED");
	free(admin);
	natsserver_free(srv);
	unlink(conf);
	unlink(seed);
	rmdir(dir);
}

/* A CA and a server certificate for 127.0.0.1, made with openssl(1). */
static void
make_certs(const char *dir)
{
	char cmd[2048];

	snprintf(cmd, sizeof cmd,
	    "cd %s && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
	    "/CN=test-ca "
	    "-keyout ca.key -out ca.pem 2>/dev/null && "
	    "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
	    "-keyout server.key -out server.csr 2>/dev/null && "
	    "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
	    "-CAcreateserial -days 1 -extfile san.ext -out server.pem "
	    "2>/dev/null",
	    dir);
	assert_int_equal(system(cmd), 0);
}

static void
tls_with_own_ca(void **state)
{
	char dir[] = "/tmp/tls-test.XXXXXX", cert[64], key[64], ca[64];
	char url[64], cmd[128];
	struct natsserver *srv;

	assert_non_null(mkdtemp(dir));
	make_certs(dir);
	snprintf(cert, sizeof cert, "%s/server.pem", dir);
	snprintf(key, sizeof key, "%s/server.key", dir);
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	assert_non_null(srv = natsserver_start(
			    "--tls", "--tlscert", cert, "--tlskey", key, NULL));
	snprintf(url, sizeof url, "tls://127.0.0.1:%d", natsserver_port(srv));
	setenv("NATS_SIDECAR_TLS_CA", ca, 1);
	delivers_over(testjs_connect_tls(url, ca), url);
	unsetenv("NATS_SIDECAR_TLS_CA");
	natsserver_free(srv);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
wrong_password_is_reported_once(void **state)
{
	struct natsserver *srv =
	    natsserver_start("--user", "orders", "--pass", "s3cret", NULL);
	struct daemon_subscription sub = { .name = "orders",
		.stream = "ORDERS" };
	struct daemon_config cfg = {
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info",
		/* Several fresh attempts within the test's time. */
		.nats_yaml = "reconnect_wait: 100ms\nreconnect_wait_max: 500ms",
	};
	struct daemon *d;
	char *line;

	assert_non_null(srv);
	cfg.nats_url = natsserver_url(srv);
	setenv("NATS_SIDECAR_USER", "orders", 1);
	setenv("NATS_SIDECAR_PASSWORD", "wrong", 1);
	/* The app socket is up even while NATS refuses us. */
	assert_non_null(d = daemon_start(&cfg));
	unsetenv("NATS_SIDECAR_USER");
	unsetenv("NATS_SIDECAR_PASSWORD");
	assert_int_equal(daemon_log_wait(d, "nats.unreachable", 1, 10000), 0);
	sleep(5);
	assert_int_equal(daemon_log_count(d, "nats.unreachable"), 1);
	assert_int_equal(daemon_log_count(d, "nats.connected"), 0);
	line = daemon_log_line(d, "nats.unreachable", 0);
	assert_non_null(strstr(line, "refused"));
	assert_null(strstr(line, "wrong"));
	free(line);
	daemon_free(d);
	natsserver_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(user_and_password),
		cmocka_unit_test(token),
		cmocka_unit_test(nkey_seed_file),
		cmocka_unit_test(tls_with_own_ca),
		cmocka_unit_test(wrong_password_is_reported_once),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
