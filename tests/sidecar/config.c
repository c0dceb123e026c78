/*
 * The configuration loader: defaults, every value type, environment
 * overrides, one test per class of error with the exact FILE:LINE and key
 * path of the message, print -> load round trips, filter chains, and
 * garbled files that must never crash it.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/cmocka.h"
#include "filters/filter.h"
#include "sidecar/config.h"
#include "sidecar/log.h"
#include "sidecar/xmalloc.h"

#define MS INT64_C(1000000)
#define SEC (1000 * MS)

/* One subscription with only what is required. */
#define SUB                                                                    \
	"subscriptions:\n"                                                     \
	"  - name: orders\n"                                                   \
	"    stream: ORDERS\n"                                                 \
	"    durable: orders-app\n"

/* Every option set to something other than its default. */
static const char full_text[] =
    "instance_id: \"pod \\\"7\\\"\\tx\\u00e9\\u2028\\x01 \\\\ end\"\n"
    "shutdown_grace: 1500ms\n"
    "nats:\n"
    "  urls: [nats://a:4222, \"tls://b:4222\"]\n"
    "  name: billing\n"
    "  connect_timeout: 3s\n"
    "  reconnect_wait: 500ms\n"
    "  reconnect_wait_max: 1m\n"
    "  reconnect_jitter: 0\n"
    "  ping_interval: 1h\n"
    "  publish_timeout: 250000us\n"
    "  publish_max_pending: 10\n"
    "  tls:\n"
    "    ca_file: /etc/nats/ca.pem\n"
    "    cert_file: /etc/nats/tls.crt\n"
    "    key_file: /etc/nats/tls.key\n"
    "    server_name: nats.internal\n"
    "  auth:\n"
    "    user: alice\n"
    "    password: s3cret\n"
    "app:\n"
    "  socket: /tmp/app.sock\n"
    "  socket_mode: 0600\n"
    "  max_frame_size: 2MB\n"
    "  heartbeat_interval: 2s\n"
    "  dead_after: 1m\n"
    "log:\n"
    "  level: debug\n"
    "  payloads: true\n"
    "subscriptions:\n"
    "  - name: orders\n"
    "    stream: ORDERS\n"
    "    durable: orders-app\n"
    "    filter_subject: orders.*.v1\n"
    "    consumer_policy: verify\n"
    "    deliver_policy: new\n"
    "    ack_wait: 1d\n"
    "    max_attempts: 3\n"
    "    max_deliver: 5\n"
    "    max_in_flight: 10\n"
    "    max_in_flight_bytes: 64KiB\n"
    "    max_ack_pending: 100\n"
    "    pull_expires: 1m\n"
    "    pull_heartbeat: 10s\n"
    "    processing_timeout: 100ms\n"
    "    processing_timeout_max: 1h\n"
    "    retry_delay: 200000000ns\n"
    "    max_retry_delay: 2h\n"
    "    content_type: application/x-protobuf\n"
    "    serial_key: header:X-Order-Id\n"
    "    filters:\n"
    "      - passthrough\n"
    "      - passthrough: {}\n"
    "  - name: refunds_2\n"
    "    stream: REFUNDS\n"
    "    durable: refunds-app\n"
    "    deliver_policy: last\n"
    "    consumer_policy: update\n"
    "    max_in_flight: 3\n"
    "    max_in_flight_bytes: 1GiB\n"
    "    filters: []\n"
    "http:\n"
    "  listen: \"[::1]:9300\"\n"
    "  max_connections: 4\n"
    "  request_timeout: 2s\n"
    "  response_timeout: 30s\n"
    "  ready_requires_nats: true\n"
    "  ready_requires_app: true\n"
    "  ready_requires_store: false\n";

static const char *const env_vars[] = { "NATS_SIDECAR_NATS_URL",
	"NATS_SIDECAR_CREDS", "NATS_SIDECAR_NKEY_SEED", "NATS_SIDECAR_USER",
	"NATS_SIDECAR_PASSWORD", "NATS_SIDECAR_TOKEN", "NATS_SIDECAR_TLS_CA",
	"NATS_SIDECAR_TLS_CERT", "NATS_SIDECAR_TLS_KEY", "NATS_SIDECAR_SOCKET",
	"NATS_SIDECAR_LOG_LEVEL", "NATS_SIDECAR_INSTANCE_ID",
	"NATS_SIDECAR_HTTP_LISTEN", NULL };

static char dir[PATH_MAX];
static char path[PATH_MAX + 16];
static char *errs;
static size_t errs_len;

/* Writes |len| bytes of |text| to the test file. */
static void
write_file(const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Loads the test file, keeping what it reported in |errs|. */
static struct config *
load_file(const char *file)
{
	struct config *cfg;
	FILE *err;

	free(errs);
	errs = NULL;
	assert_non_null(err = open_memstream(&errs, &errs_len));
	cfg = config_load(file, err);
	assert_int_equal(fclose(err), 0);
	return cfg;
}

static struct config *
load_bytes(const char *text, size_t len)
{
	write_file(text, len);
	return load_file(path);
}

static struct config *
load(const char *text)
{
	return load_bytes(text, strlen(text));
}

/* Loads |text|, which must be valid. */
static struct config *
load_ok(const char *text)
{
	struct config *cfg = load(text);

	if (cfg == NULL)
		print_error("unexpected errors:\n%s", errs);
	assert_non_null(cfg);
	assert_int_equal(errs_len, 0);
	return cfg;
}

/* Loads |text|, which must fail. */
static void
load_fails(const char *text)
{
	struct config *cfg = load(text);

	if (cfg != NULL)
		print_error("loaded, but should not have:\n%s", text);
	assert_null(cfg);
	assert_true(errs_len > 0);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Fails unless a reported line starts with |want|. */
static void
expect_line(const char *want)
{
	const char *line = errs;
	bool found = false;

	while (line != NULL && *line != '\0' && !found) {
		found = strncmp(line, want, strlen(want)) == 0;
		if ((line = strchr(line, '\n')) != NULL)
			line++;
	}
	if (!found)
		print_error("no line starts with\n  %s\nin:\n%s", want, errs);
	assert_true(found);
}

/* Fails unless a reported line starts with "FILE:LINE: |rest|". */
static void
expect_error(int line, const char *rest)
{
	char *want = xasprintf("%s:%d: %s", path, line, rest);

	expect_line(want);
	free(want);
}

/* Loads |text|, expecting it to fail with exactly one problem. */
static void
expect_only(const char *text, int line, const char *rest)
{
	load_fails(text);
	expect_error(line, rest);
	if (count_lines(errs) != 1)
		print_error("more than one problem:\n%s", errs);
	assert_int_equal(count_lines(errs), 1);
}

/* The configuration as config_print writes it. */
static char *
print_text(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	config_print(cfg, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

static int
group_setup(void **state)
{
	snprintf(dir, sizeof dir, "%s/config-test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/sidecar.yaml", dir);
	return 0;
}

static int
group_teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	free(errs);
	return 0;
}

/* Each test starts from a known environment. */
static int
env_setup(void **state)
{
	for (size_t i = 0; env_vars[i] != NULL; i++)
		unsetenv(env_vars[i]);
	setenv("HOSTNAME", "test-pod", 1);
	return 0;
}

static void
defaults(void **state)
{
	struct config *cfg = load_ok(SUB);
	struct config_subscription *s;

	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->instance_id, "test-pod");
	assert_int_equal(cfg->shutdown_grace, 25 * SEC);

	assert_int_equal(cfg->nats.urls.n, 1);
	assert_string_equal(cfg->nats.urls.v[0], "nats://127.0.0.1:4222");
	assert_string_equal(cfg->nats.name, "nats-sidecar");
	assert_int_equal(cfg->nats.connect_timeout, 2 * SEC);
	assert_int_equal(cfg->nats.reconnect_wait, 250 * MS);
	assert_int_equal(cfg->nats.reconnect_wait_max, 10 * SEC);
	assert_int_equal(cfg->nats.reconnect_jitter, 100 * MS);
	assert_int_equal(cfg->nats.ping_interval, 20 * SEC);
	assert_int_equal(cfg->nats.publish_timeout, 5 * SEC);
	assert_int_equal(cfg->nats.publish_max_pending, 4096);
	assert_null(cfg->nats.tls.ca_file);
	assert_null(cfg->nats.tls.cert_file);
	assert_null(cfg->nats.tls.key_file);
	assert_null(cfg->nats.tls.server_name);
	assert_null(cfg->nats.auth.creds_file);
	assert_null(cfg->nats.auth.nkey_seed_file);
	assert_null(cfg->nats.auth.user);
	assert_null(cfg->nats.auth.password);
	assert_null(cfg->nats.auth.token);

	assert_string_equal(cfg->app.socket, "/run/nats-sidecar/app.sock");
	assert_int_equal(cfg->app.socket_mode, 0660);
	assert_int_equal(cfg->app.max_frame_size, 1024 * 1024);
	assert_int_equal(cfg->app.heartbeat_interval, 5 * SEC);
	assert_int_equal(cfg->app.dead_after, 20 * SEC);
	assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);
	assert_false(cfg->log.payloads);
	assert_string_equal(cfg->http.listen, "127.0.0.1:9188");
	assert_int_equal(cfg->http.max_connections, 16);
	assert_int_equal(cfg->http.request_timeout, 5 * SEC);
	assert_int_equal(cfg->http.response_timeout, 10 * SEC);
	assert_false(cfg->http.ready_requires_nats);
	assert_false(cfg->http.ready_requires_app);
	assert_true(cfg->http.ready_requires_store);

	assert_int_equal(cfg->subscriptions.n, 1);
	s = config_subscription(cfg, 0);
	assert_string_equal(s->name, "orders");
	assert_string_equal(s->stream, "ORDERS");
	assert_string_equal(s->durable, "orders-app");
	assert_null(s->filter_subject);
	assert_int_equal(s->consumer_policy, CONSUMER_POLICY_CREATE);
	assert_int_equal(s->deliver_policy, DELIVER_POLICY_ALL);
	assert_int_equal(s->ack_wait, 30 * SEC);
	assert_int_equal(s->max_attempts, 5);
	assert_int_equal(s->max_deliver, -1);
	assert_int_equal(s->max_in_flight, 1024);
	assert_int_equal(s->max_in_flight_bytes, 16 * 1024 * 1024);
	assert_int_equal(s->max_ack_pending, 4 * 1024);
	assert_int_equal(s->pull_expires, 30 * SEC);
	assert_int_equal(s->pull_heartbeat, 5 * SEC);
	assert_int_equal(s->processing_timeout, 30 * SEC);
	assert_int_equal(s->processing_timeout_max, 600 * SEC);
	assert_int_equal(s->retry_delay, 5 * SEC);
	assert_int_equal(s->max_retry_delay, 600 * SEC);
	assert_string_equal(s->content_type, "application/json");
	assert_null(s->serial_key);
	assert_int_equal(s->filters.n, 0);
	config_free(cfg);
}

/* Without HOSTNAME, the instance is named after the host. */
static void
instance_from_hostname(void **state)
{
	char host[256] = "";
	struct config *cfg;

	unsetenv("HOSTNAME");
	assert_int_equal(gethostname(host, sizeof host - 1), 0);
	cfg = load_ok(SUB);
	assert_string_equal(cfg->instance_id, host);
	config_free(cfg);

	cfg = load_ok("instance_id: pod-3\n" SUB);
	assert_string_equal(cfg->instance_id, "pod-3");
	config_free(cfg);
}

static void
every_type(void **state)
{
	struct config *cfg = load_ok(full_text);
	struct config_subscription *s, *r;

	assert_string_equal(
	    cfg->instance_id, "pod \"7\"\tx\xc3\xa9\xe2\x80\xa8\x01 \\ end");
	assert_int_equal(cfg->shutdown_grace, 1500 * MS);
	assert_int_equal(cfg->nats.urls.n, 2);
	assert_string_equal(cfg->nats.urls.v[0], "nats://a:4222");
	assert_string_equal(cfg->nats.urls.v[1], "tls://b:4222");
	assert_string_equal(cfg->nats.name, "billing");
	assert_int_equal(cfg->nats.connect_timeout, 3 * SEC);
	assert_int_equal(cfg->nats.reconnect_wait, 500 * MS);
	assert_int_equal(cfg->nats.reconnect_wait_max, 60 * SEC);
	assert_int_equal(cfg->nats.reconnect_jitter, 0);
	assert_int_equal(cfg->nats.ping_interval, 3600 * SEC);
	assert_int_equal(cfg->nats.publish_timeout, 250 * MS);
	assert_int_equal(cfg->nats.publish_max_pending, 10);
	assert_string_equal(cfg->nats.tls.ca_file, "/etc/nats/ca.pem");
	assert_string_equal(cfg->nats.tls.cert_file, "/etc/nats/tls.crt");
	assert_string_equal(cfg->nats.tls.key_file, "/etc/nats/tls.key");
	assert_string_equal(cfg->nats.tls.server_name, "nats.internal");
	assert_string_equal(cfg->nats.auth.user, "alice");
	assert_string_equal(cfg->nats.auth.password, "s3cret");
	assert_string_equal(cfg->app.socket, "/tmp/app.sock");
	assert_int_equal(cfg->app.socket_mode, 0600);
	assert_int_equal(cfg->app.max_frame_size, 2000000);
	assert_int_equal(cfg->app.heartbeat_interval, 2 * SEC);
	assert_int_equal(cfg->app.dead_after, 60 * SEC);
	assert_int_equal(cfg->log.level, LOG_LEVEL_DEBUG);
	assert_true(cfg->log.payloads);
	assert_string_equal(cfg->http.listen, "[::1]:9300");
	assert_int_equal(cfg->http.max_connections, 4);
	assert_int_equal(cfg->http.request_timeout, 2 * SEC);
	assert_int_equal(cfg->http.response_timeout, 30 * SEC);
	assert_true(cfg->http.ready_requires_nats);
	assert_true(cfg->http.ready_requires_app);
	assert_false(cfg->http.ready_requires_store);

	assert_int_equal(cfg->subscriptions.n, 2);
	s = config_subscription(cfg, 0);
	assert_string_equal(s->filter_subject, "orders.*.v1");
	assert_int_equal(s->consumer_policy, CONSUMER_POLICY_VERIFY);
	assert_int_equal(s->deliver_policy, DELIVER_POLICY_NEW);
	assert_int_equal(s->ack_wait, 86400 * SEC);
	assert_int_equal(s->max_attempts, 3);
	assert_int_equal(s->max_deliver, 5);
	assert_int_equal(s->max_in_flight, 10);
	assert_int_equal(s->max_in_flight_bytes, 64 * 1024);
	assert_int_equal(s->max_ack_pending, 100);
	assert_int_equal(s->pull_expires, 60 * SEC);
	assert_int_equal(s->pull_heartbeat, 10 * SEC);
	assert_int_equal(s->processing_timeout, 100 * MS);
	assert_int_equal(s->processing_timeout_max, 3600 * SEC);
	assert_int_equal(s->retry_delay, 200 * MS);
	assert_int_equal(s->max_retry_delay, 7200 * SEC);
	assert_string_equal(s->content_type, "application/x-protobuf");
	assert_string_equal(s->serial_key, "header:X-Order-Id");
	assert_int_equal(s->filters.n, 2);
	assert_ptr_equal(s->filters.v[0].ops, filter_lookup("passthrough"));
	assert_ptr_equal(s->filters.v[1].ops, filter_lookup("passthrough"));
	assert_int_equal(s->filters.v[0].line, 52);
	assert_int_equal(s->filters.v[1].line, 53);
	assert_null(s->filters.v[0].options);

	r = config_subscription(cfg, 1);
	assert_string_equal(r->name, "refunds_2");
	assert_int_equal(r->deliver_policy, DELIVER_POLICY_LAST);
	assert_int_equal(r->consumer_policy, CONSUMER_POLICY_UPDATE);
	assert_int_equal(r->max_in_flight_bytes, 1024 * 1024 * 1024);
	assert_int_equal(r->max_ack_pending, 12);
	assert_int_equal(r->filters.n, 0);
	config_free(cfg);
}

/* Loads one option's value; returns it, or -1 if it was refused. */
static int64_t
load_value(const char *section, const char *key, const char *value)
{
	char *text = xasprintf(SUB "%s:\n  %s: %s\n", section, key, value);
	struct config *cfg = load(text);
	int64_t v = -1;

	free(text);
	if (cfg == NULL)
		return -1;
	if (strcmp(key, "max_frame_size") == 0)
		v = cfg->app.max_frame_size;
	else if (strcmp(key, "heartbeat_interval") == 0)
		v = cfg->app.heartbeat_interval;
	else if (strcmp(key, "socket_mode") == 0)
		v = cfg->app.socket_mode;
	else if (strcmp(key, "payloads") == 0)
		v = cfg->log.payloads;
	else if (strcmp(key, "publish_max_pending") == 0)
		v = cfg->nats.publish_max_pending;
	config_free(cfg);
	return v;
}

static void
value_syntax(void **state)
{
	/* Durations: every unit, and a bare 0 only. */
	assert_int_equal(
	    load_value("app", "heartbeat_interval", "100000000ns"), 100 * MS);
	assert_int_equal(
	    load_value("app", "heartbeat_interval", "250000us"), 250 * MS);
	assert_int_equal(
	    load_value("app", "heartbeat_interval", "1500ms"), 1500 * MS);
	assert_int_equal(
	    load_value("app", "heartbeat_interval", "7s"), 7 * SEC);
	assert_int_equal(
	    load_value("app", "heartbeat_interval", "\"9s\""), 9 * SEC);
	assert_int_equal(load_value("nats", "publish_max_pending", "007"), 7);
	assert_int_equal(load_value("app", "heartbeat_interval", "7"), -1);
	assert_int_equal(load_value("app", "heartbeat_interval", "7 s"), -1);
	assert_int_equal(load_value("app", "heartbeat_interval", "1.5s"), -1);
	assert_int_equal(load_value("app", "heartbeat_interval", "7sec"), -1);
	assert_int_equal(load_value("app", "heartbeat_interval", "-1s"), -1);
	assert_int_equal(load_value("app", "heartbeat_interval", "1h"), -1);
	assert_int_equal(load_value("app", "heartbeat_interval", "0"), -1);

	/* Sizes: binary and decimal units, bytes with or without B. */
	assert_int_equal(load_value("app", "max_frame_size", "4096"), 4096);
	assert_int_equal(load_value("app", "max_frame_size", "5000B"), 5000);
	assert_int_equal(load_value("app", "max_frame_size", "8KiB"), 8192);
	assert_int_equal(load_value("app", "max_frame_size", "8KB"), 8000);
	assert_int_equal(
	    load_value("app", "max_frame_size", "3MiB"), 3 * 1024 * 1024);
	assert_int_equal(load_value("app", "max_frame_size", "3MB"), 3000000);
	assert_int_equal(
	    load_value("app", "max_frame_size", "64MiB"), 64 * 1024 * 1024);
	assert_int_equal(load_value("app", "max_frame_size", "4095"), -1);
	assert_int_equal(load_value("app", "max_frame_size", "1GiB"), -1);
	assert_int_equal(load_value("app", "max_frame_size", "1GB"), -1);
	assert_int_equal(load_value("app", "max_frame_size", "8kb"), -1);
	assert_int_equal(load_value("app", "max_frame_size", "KiB"), -1);

	/* Modes are octal; booleans are true or false only. */
	assert_int_equal(load_value("app", "socket_mode", "0640"), 0640);
	assert_int_equal(load_value("app", "socket_mode", "600"), 0600);
	assert_int_equal(load_value("app", "socket_mode", "0680"), -1);
	assert_int_equal(load_value("app", "socket_mode", "010000"), -1);
	assert_int_equal(load_value("log", "payloads", "false"), 0);
	assert_int_equal(load_value("log", "payloads", "true"), 1);
	assert_int_equal(load_value("log", "payloads", "yes"), -1);
	assert_int_equal(load_value("log", "payloads", "True"), -1);
}

/* Numbers past int64 are refused, never wrapped. */
static void
overflow(void **state)
{
	load_fails(SUB "    ack_wait: 99999999999999999999999999d\n");
	expect_error(5,
	    "subscriptions[0].ack_wait: expected a duration from 1s to 1d, "
	    "got \"99999999999999999999999999d\"");
	load_fails(SUB "    ack_wait: 9223372036854775807d\n");
	expect_error(5, "subscriptions[0].ack_wait: expected a duration");
	load_fails(SUB "    ack_wait: -9223372036854775808d\n");
	expect_error(5, "subscriptions[0].ack_wait: expected a duration");
	load_fails(SUB "    max_in_flight_bytes: 17179869184GiB\n");
	expect_error(5,
	    "subscriptions[0].max_in_flight_bytes: expected a size from 64KiB "
	    "to 1GiB, got \"17179869184GiB\"");
	load_fails(SUB "    max_deliver: 9223372036854775808\n");
	expect_error(5,
	    "subscriptions[0].max_deliver: expected an integer from -1 to "
	    "2147483647, got \"9223372036854775808\"");
	load_fails(SUB "    max_attempts: -99999999999999999999999\n");
	expect_error(5,
	    "subscriptions[0].max_attempts: expected an integer "
	    "from 1 to 1000");
	load_fails(SUB "    max_ack_pending: 9223372036854775807\n");
	expect_error(5,
	    "subscriptions[0].max_ack_pending: expected an "
	    "integer from 0 to 2147483647");
}

static void
env_overrides(void **state)
{
	struct config *cfg;

	setenv("NATS_SIDECAR_NATS_URL", "nats://a:1, nats://b:2,nats://c:3", 1);
	setenv("NATS_SIDECAR_CREDS", "/var/run/nats/user.creds", 1);
	setenv("NATS_SIDECAR_TLS_CA", "/ca.pem", 1);
	setenv("NATS_SIDECAR_TLS_CERT", "/tls.crt", 1);
	setenv("NATS_SIDECAR_TLS_KEY", "/tls.key", 1);
	setenv("NATS_SIDECAR_SOCKET", "/tmp/env.sock", 1);
	setenv("NATS_SIDECAR_LOG_LEVEL", "warn", 1);
	setenv("NATS_SIDECAR_INSTANCE_ID", "env-pod", 1);
	cfg = load_ok("instance_id: file-pod\n"
		      "app:\n"
		      "  socket: /tmp/file.sock\n"
		      "log:\n"
		      "  level: error\n" SUB);
	assert_int_equal(cfg->nats.urls.n, 3);
	assert_string_equal(cfg->nats.urls.v[0], "nats://a:1");
	assert_string_equal(cfg->nats.urls.v[1], "nats://b:2");
	assert_string_equal(cfg->nats.urls.v[2], "nats://c:3");
	assert_string_equal(
	    cfg->nats.auth.creds_file, "/var/run/nats/user.creds");
	assert_string_equal(cfg->nats.tls.ca_file, "/ca.pem");
	assert_string_equal(cfg->nats.tls.cert_file, "/tls.crt");
	assert_string_equal(cfg->nats.tls.key_file, "/tls.key");
	assert_string_equal(cfg->app.socket, "/tmp/env.sock");
	assert_int_equal(cfg->log.level, LOG_LEVEL_WARN);
	assert_string_equal(cfg->instance_id, "env-pod");
	config_free(cfg);

	/* Each other authentication method, one at a time. */
	unsetenv("NATS_SIDECAR_CREDS");
	setenv("NATS_SIDECAR_USER", "bob", 1);
	setenv("NATS_SIDECAR_PASSWORD", "hunter2", 1);
	cfg = load_ok(SUB);
	assert_string_equal(cfg->nats.auth.user, "bob");
	assert_string_equal(cfg->nats.auth.password, "hunter2");
	config_free(cfg);
	unsetenv("NATS_SIDECAR_USER");
	unsetenv("NATS_SIDECAR_PASSWORD");
	setenv("NATS_SIDECAR_TOKEN", "t0ken", 1);
	cfg = load_ok(SUB);
	assert_string_equal(cfg->nats.auth.token, "t0ken");
	config_free(cfg);
	unsetenv("NATS_SIDECAR_TOKEN");
	setenv("NATS_SIDECAR_NKEY_SEED", "/seed.nk", 1);
	cfg = load_ok(SUB);
	assert_string_equal(cfg->nats.auth.nkey_seed_file, "/seed.nk");
	config_free(cfg);

	/* Set but empty: the file's value stands. */
	setenv("NATS_SIDECAR_SOCKET", "", 1);
	cfg = load_ok("app:\n  socket: /tmp/file.sock\n" SUB);
	assert_string_equal(cfg->app.socket, "/tmp/file.sock");
	config_free(cfg);
}

static void
env_errors(void **state)
{
	setenv("NATS_SIDECAR_LOG_LEVEL", "loud", 1);
	load_fails(SUB);
	expect_line("env NATS_SIDECAR_LOG_LEVEL: log.level: expected one of "
		    "debug, info, warn, error, got \"loud\"");
	unsetenv("NATS_SIDECAR_LOG_LEVEL");

	setenv("NATS_SIDECAR_TOKEN", "\xff\xfe", 1);
	load_fails(SUB);
	expect_line("env NATS_SIDECAR_TOKEN: nats.auth.token: expected UTF-8 "
		    "text");
	unsetenv("NATS_SIDECAR_TOKEN");

	/* A combination the environment breaks names the variable. */
	setenv("NATS_SIDECAR_USER", "bob", 1);
	load_fails(SUB);
	expect_line("env NATS_SIDECAR_USER: nats.auth.user: set without "
		    "password");
	setenv("NATS_SIDECAR_TOKEN", "t0ken", 1);
	load_fails(SUB);
	expect_line("env NATS_SIDECAR_TOKEN: nats.auth: expected one "
		    "authentication method, got 2 (user, token)");
	unsetenv("NATS_SIDECAR_USER");
	unsetenv("NATS_SIDECAR_TOKEN");

	setenv("NATS_SIDECAR_NATS_URL", "nats://a:1,,nats://b:2", 1);
	load_fails(SUB);
	expect_line("env NATS_SIDECAR_NATS_URL: nats.urls[1]: expected a URL");
}

/* The listen address: numeric, with a port, or off; nothing that would
 * need a name lookup or guess a family. */
static void
http_listen(void **state)
{
	static const char *const good[] = { "127.0.0.1:9188", "0.0.0.0:9188",
		"\"[::]:9188\"", "\"[::1]:65535\"", "10.1.2.3:0", "off", NULL };
	static const char *const bad[] = { "9188", "\":9188\"",
		"localhost:9188", "127.0.0.1:65536", "\"127.0.0.1:\"",
		"\"::1:9188\"", "\"[::1]9188\"", "\"[::1]:\"", "\"[]:80\"",
		"\"[127.0.0.1]:80\"", "1.2.3.4:+80", "1.2.3.4:0x50",
		"1.2.3.4:000080", "01.2.3.4:80", "1.2.3:80", "\"\"", "OFF",
		NULL };
	struct config *cfg;
	char *text;

	for (size_t i = 0; good[i] != NULL; i++) {
		text = xasprintf("http:\n  listen: %s\n" SUB, good[i]);
		cfg = load_ok(text);
		free(text);
		config_free(cfg);
	}
	for (size_t i = 0; bad[i] != NULL; i++) {
		text = xasprintf("http:\n  listen: %s\n" SUB, bad[i]);
		load_fails(text);
		expect_error(2,
		    "http.listen: expected ADDRESS:PORT such as "
		    "127.0.0.1:9188, 0.0.0.0:9188 or [::]:9188, or off, got");
		free(text);
	}
	expect_only("http:\n  listen: localhost:9188\n" SUB, 2,
	    "http.listen: expected ADDRESS:PORT such as 127.0.0.1:9188, "
	    "0.0.0.0:9188 or [::]:9188, or off, got \"localhost:9188\"");

	/* Kubernetes sets it for scraping from other pods. */
	setenv("NATS_SIDECAR_HTTP_LISTEN", "0.0.0.0:9090", 1);
	cfg = load_ok("http:\n  listen: 127.0.0.1:1\n" SUB);
	assert_string_equal(cfg->http.listen, "0.0.0.0:9090");
	config_free(cfg);
	setenv("NATS_SIDECAR_HTTP_LISTEN", "*:9090", 1);
	load_fails(SUB);
	expect_line("env NATS_SIDECAR_HTTP_LISTEN: http.listen: expected "
		    "ADDRESS:PORT");
	unsetenv("NATS_SIDECAR_HTTP_LISTEN");

	expect_only("http:\n  max_connections: 0\n" SUB, 2,
	    "http.max_connections: expected an integer from 1 to 1024, got "
	    "\"0\"");
	expect_only("http:\n  request_timeout: 50ms\n" SUB, 2,
	    "http.request_timeout: expected a duration from 100ms to 1m, got "
	    "\"50ms\"");
}

/* The example of the documentation, to the letter. */
static void
error_out_of_range(void **state)
{
	expect_only(SUB "    filter_subject: orders.>\n"
			"    ack_wait: 30s\n"
			"    max_attempts: 5\n"
			"    max_deliver: -1\n"
			"    pull_expires: 30s\n"
			"    pull_heartbeat: 5s\n"
			"    retry_delay: 5s\n"
			"    max_in_flight: lots\n",
	    12,
	    "subscriptions[0].max_in_flight: expected an integer from 1 to "
	    "65536, got \"lots\"");
	expect_only(SUB "    max_in_flight: 65537\n", 5,
	    "subscriptions[0].max_in_flight: expected an integer from 1 to "
	    "65536, got \"65537\"");
	expect_only("shutdown_grace: 11m\n" SUB, 1,
	    "shutdown_grace: expected a duration from 0s to 10m, got \"11m\"");
	expect_only("app:\n  max_frame_size: 1KiB\n" SUB, 2,
	    "app.max_frame_size: expected a size from 4KiB to 64MiB, got "
	    "\"1KiB\"");
}

static void
error_syntax(void **state)
{
	expect_only("nats:\n  urls: [a, b\napp:\n  socket: x\n" SUB, 3,
	    "invalid YAML, column 4: did not find expected ',' or ']' (while "
	    "parsing a flow sequence at line 2)");
	expect_only("log:\n  level: info\n   payloads: true\n" SUB, 3,
	    "invalid YAML, column 12: mapping values are not allowed in this "
	    "context");
	expect_only("log: \"unterminated\n" SUB, 6,
	    "invalid YAML, column 1: found unexpected end of stream (while "
	    "scanning a quoted scalar at line 1)");
	/* Not UTF-8: the reader's problem, at its line. */
	expect_only(SUB "    content_type: caf\xff\n", 5,
	    "invalid YAML: invalid leading UTF-8 octet (0xff at byte offset");
	expect_only(SUB "    content_type: caf\xc3(\n", 5,
	    "invalid YAML: invalid trailing UTF-8 octet (0x28 at byte offset");
	expect_only(SUB "    content_type: \x01\n", 5,
	    "invalid YAML: control characters are not allowed (0x1 at byte "
	    "offset");
}

static void
error_unknown_key(void **state)
{
	expect_only("colour: red\n" SUB, 1, "colour: unknown key");
	expect_only(
	    "nats:\n  url: nats://x:4222\n" SUB, 2, "nats.url: unknown key");
	expect_only("nats:\n  tls:\n    ca: /ca.pem\n" SUB, 3,
	    "nats.tls.ca: unknown key");
	expect_only(SUB "    max_inflight: 3\n", 5,
	    "subscriptions[0].max_inflight: unknown key");
	/* Keys from the file are made printable and cut short. */
	expect_only("\"bad\\tkey\": 1\n" SUB, 1, "bad?key: unknown key");
	load_fails("? [a, b]\n: 1\n" SUB);
	expect_error(1, "expected a key, got a list");
}

static void
error_wrong_type(void **state)
{
	expect_only("nats: [a]\n" SUB, 1, "nats: expected a map, got a list");
	expect_only("nats: nats://x:4222\n" SUB, 1,
	    "nats: expected a map, got \"nats://x:4222\"");
	expect_only("shutdown_grace: {a: 1}\n" SUB, 1,
	    "shutdown_grace: expected a duration from 0s to 10m, got a map");
	expect_only("nats:\n  urls: [[a]]\n" SUB, 2,
	    "nats.urls[0]: expected a string, got a list");
	expect_only("nats:\n  urls: []\n" SUB, 2,
	    "nats.urls: expected at least one entry, got an empty list");
	expect_only("log:\n  level: [debug]\n" SUB, 2,
	    "log.level: expected one of debug, info, warn, error, got a list");
	expect_only("log:\n  level: verbose\n" SUB, 2,
	    "log.level: expected one of debug, info, warn, error, got "
	    "\"verbose\"");
	expect_only("subscriptions: {name: x}\n", 1,
	    "subscriptions: expected a list of maps, got a map");
	expect_only("subscriptions:\n  - orders\n", 2,
	    "subscriptions[0]: expected a map, got \"orders\"");
	expect_only(SUB "    name: orders\n", 5,
	    "subscriptions[0].name: duplicate key (first at line 2)");
	expect_only(SUB "    stream: ~\n", 5,
	    "subscriptions[0].stream: duplicate key (first at line 3)");
	expect_only(SUB "    filters: passthrough\n", 5,
	    "subscriptions[0].filters: expected a list of filters, got "
	    "\"passthrough\"");
	expect_only(SUB "    ack_wait: 30\n", 5,
	    "subscriptions[0].ack_wait: expected a duration from 1s to 1d, got "
	    "\"30\" (a whole number and a unit: ns, us, ms, s, m, h or d)");
	expect_only(SUB "    max_in_flight_bytes: lots\n", 5,
	    "subscriptions[0].max_in_flight_bytes: expected a size from 64KiB "
	    "to 1GiB, got \"lots\" (a whole number of bytes");
	expect_only(SUB "    content_type: \"a\\0b\"\n", 5,
	    "subscriptions[0].content_type: expected a string, got text with "
	    "a NUL byte");
	expect_only("log:\n  payloads: 1\n" SUB, 2,
	    "log.payloads: expected true or false, got \"1\"");
}

static void
error_missing(void **state)
{
	expect_only("subscriptions:\n"
		    "  - name: orders\n"
		    "    stream: ORDERS\n",
	    2, "subscriptions[0].durable: missing required key");
	expect_only("subscriptions:\n"
		    "  - name: orders\n"
		    "    stream: ~\n"
		    "    durable: orders-app\n",
	    3, "subscriptions[0].stream: expected a string, got null");
	expect_only(
	    "log:\n  level: info\n", 1, "subscriptions: missing required key");
	expect_only("subscriptions: []\n", 1,
	    "subscriptions: expected at least one entry, got an empty list");
	/* An empty file, or one of comments only, holds no subscription. */
	expect_only("", 1, "subscriptions: missing required key");
	expect_only("# nothing\n", 1, "subscriptions: missing required key");
	expect_only("---\n~\n", 2, "subscriptions: missing required key");
}

static void
error_names(void **state)
{
	expect_only("subscriptions:\n"
		    "  - name: \"or ders\"\n"
		    "    stream: ORDERS\n"
		    "    durable: orders-app\n",
	    2,
	    "subscriptions[0].name: expected letters, digits, '_' or '-', got "
	    "\"or ders\"");
	expect_only("subscriptions:\n"
		    "  - name: orders\n"
		    "    stream: ORDERS.v1\n"
		    "    durable: orders-app\n",
	    3,
	    "subscriptions[0].stream: expected a stream name without spaces, "
	    "'.', '*' or '>', got \"ORDERS.v1\"");
	expect_only("subscriptions:\n"
		    "  - name: orders\n"
		    "    stream: ORDERS\n"
		    "    durable: orders>\n",
	    4, "subscriptions[0].durable: expected a consumer name");
	expect_only(SUB "    filter_subject: orders.>.v1\n", 5,
	    "subscriptions[0].filter_subject: expected a subject such as "
	    "orders.> or orders.*.v1, got \"orders.>.v1\"");
	expect_only(SUB "    filter_subject: orders..v1\n", 5,
	    "subscriptions[0].filter_subject: expected a subject");
	expect_only(SUB "    filter_subject: orders.a*\n", 5,
	    "subscriptions[0].filter_subject: expected a subject");
	expect_only(SUB "    serial_key: X-Order-Id\n", 5,
	    "subscriptions[0].serial_key: expected \"header:NAME\", got "
	    "\"X-Order-Id\"");
	expect_only(SUB "    serial_key: \"header:\"\n", 5,
	    "subscriptions[0].serial_key: expected \"header:NAME\"");
	expect_only("app:\n  socket: \"\"\n" SUB, 2,
	    "app.socket: expected a path, got \"\"");
	expect_only(
	    "app:\n  socket: /tmp/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" SUB,
	    2,
	    "app.socket: expected a path of at most 107 bytes (the limit of a "
	    "Unix socket address), got 118");
}

static void
error_combinations(void **state)
{
	char *text;

	expect_only(SUB "    max_attempts: 5\n    max_deliver: 6\n", 6,
	    "subscriptions[0].max_deliver: expected -1 (unlimited) or at least "
	    "max_attempts + 2 = 7, got 6: the sidecar counts attempts and "
	    "dead-letters after max_attempts; the server's max_deliver is only "
	    "a safety net above that");
	expect_only(SUB "    max_deliver: 0\n", 5,
	    "subscriptions[0].max_deliver: expected -1 (unlimited) or at least "
	    "max_attempts + 2 = 7, got 0");
	expect_only(SUB "    pull_expires: 9s\n", 5,
	    "subscriptions[0].pull_expires: expected at least twice "
	    "pull_heartbeat (5s), got 9s");
	/* Neither set in the file: the subscription's line. */
	expect_only(SUB "    pull_heartbeat: 20s\n", 5,
	    "subscriptions[0].pull_expires: expected at least twice "
	    "pull_heartbeat (20s), got 30s");
	expect_only(SUB "    processing_timeout: 11m\n", 5,
	    "subscriptions[0].processing_timeout_max: expected at least "
	    "processing_timeout (11m), got 10m");
	expect_only(SUB "    max_retry_delay: 1s\n", 5,
	    "subscriptions[0].max_retry_delay: expected at least retry_delay "
	    "(5s), got 1s");
	expect_only(SUB "    max_ack_pending: 1023\n", 5,
	    "subscriptions[0].max_ack_pending: expected 0 (4 * max_in_flight) "
	    "or at least max_in_flight (1024), got 1023");
	expect_only(SUB "    filters:\n      - dedup: {}\n", 5,
	    "subscriptions[0].filters: the dedup filter needs a store: set "
	    "dedup.path");
	expect_only("dedup:\n  path: /d\n  map_size: 2GiB\n" SUB, 3,
	    "dedup.map_size_max: expected at least map_size");
	expect_only("dedup:\n  path: /d\n" SUB
		    "    filters:\n      - dedup: {key: \"body:x\"}\n",
	    8,
	    "subscriptions[0].filters[0].dedup: key: expected header:NAME or "
	    "field:PATH, got \"body:x\"");
	expect_only("advisories:\n  stream_prefix: a.b\n" SUB, 2,
	    "advisories.stream_prefix: expected a stream name without spaces, "
	    "'.', '*' or '>', got \"a.b\"");
	/* P + 199 digits, "_ORDERS_", 50 characters: more than 255. */
	text = xasprintf("advisories:\n"
			 "  stream_prefix: P%0199d\n"
			 "subscriptions:\n"
			 "  - name: orders\n"
			 "    stream: ORDERS\n"
			 "    durable: %s\n"
			 "    filters:\n"
			 "      - deadletter: {}\n",
	    0, "orders-app-orders-app-orders-app-orders-app-orders");
	expect_only(text, 7,
	    "subscriptions[0].filters: the advisory capture stream P000");
	free(text);
	expect_only("advisories:\n  durable: \"x y\"\n" SUB, 2,
	    "advisories.durable: expected a consumer name without spaces, '.', "
	    "'*' or '>', got \"x y\"");
	expect_only("app:\n  heartbeat_interval: 20s\n" SUB, 2,
	    "app.dead_after: expected more than heartbeat_interval (20s), got "
	    "20s");
	expect_only("nats:\n  reconnect_wait: 1m\n" SUB, 2,
	    "nats.reconnect_wait_max: expected at least reconnect_wait, got "
	    "less");
	expect_only("nats:\n  tls:\n    cert_file: /c.pem\n" SUB, 3,
	    "nats.tls.cert_file: set without key_file");
	expect_only("nats:\n  tls:\n    key_file: /k.pem\n" SUB, 3,
	    "nats.tls.key_file: set without cert_file");
	expect_only("nats:\n"
		    "  auth:\n"
		    "    creds_file: /u.creds\n"
		    "    token: abc\n" SUB,
	    4,
	    "nats.auth: expected one authentication method, got 2 (creds_file, "
	    "token)");
	expect_only("nats:\n  auth:\n    user: alice\n" SUB, 3,
	    "nats.auth.user: set without password");
	expect_only("nats:\n  auth:\n    password: pw\n" SUB, 3,
	    "nats.auth.password: set without user");
	expect_only(SUB "  - name: orders\n"
			"    stream: OTHER\n"
			"    durable: other\n",
	    5,
	    "subscriptions[1].name: duplicate subscription name \"orders\" "
	    "(first at line 2)");
	expect_only(SUB "  - name: orders2\n"
			"    stream: ORDERS\n"
			"    durable: orders-app\n",
	    7,
	    "subscriptions[1].durable: stream \"ORDERS\" already has a "
	    "subscription with this durable (line 4)");
}

/* One run lists every problem, not just the first. */
static void
error_all_reported(void **state)
{
	load_fails("colour: red\n"
		   "shutdown_grace: forever\n"
		   "log:\n"
		   "  level: loud\n"
		   "subscriptions:\n"
		   "  - name: orders\n"
		   "    stream: ORDERS\n"
		   "    max_in_flight: 0\n"
		   "  - name: orders\n"
		   "    stream: ORDERS\n"
		   "    durable: d\n"
		   "    max_deliver: 3\n");
	expect_error(1, "colour: unknown key");
	expect_error(2, "shutdown_grace: expected a duration");
	expect_error(4, "log.level: expected one of");
	expect_error(8, "subscriptions[0].max_in_flight: expected an integer");
	expect_error(6, "subscriptions[0].durable: missing required key");
	expect_error(12, "subscriptions[1].max_deliver: expected -1");
	expect_error(9, "subscriptions[1].name: duplicate subscription name");
	assert_int_equal(count_lines(errs), 7);
}

/* What libyaml's document API would take silently, or choke on. */
static void
error_yaml_shapes(void **state)
{
	char *deep, *p;

	expect_only("log:\n  level: &lvl info\nnats:\n  name: *lvl\n" SUB, 4,
	    "YAML aliases are not supported (*lvl): write the value out");
	expect_only("a: &x [*x]\n", 1, "YAML aliases are not supported (*x)");
	expect_only("- a\n- b\n", 1,
	    "expected a map of options at the top, got a list");
	expect_only("just text\n", 1,
	    "expected a map of options at the top, got \"just text\"");
	expect_only(SUB "---\n" SUB, 5, "expected one YAML document, got more");

	/* Deep nesting stops at a bound instead of the stack. */
	deep = xmalloc(200001);
	for (p = deep; p < deep + 100000; p++)
		*p = '[';
	for (; p < deep + 200000; p++)
		*p = ']';
	*p = '\0';
	expect_only(deep, 1, "nested more than 32 levels deep");
	free(deep);
}

static void
error_file(void **state)
{
	char *big;
	struct config *cfg;
	char *missing = xasprintf("%s/missing.yaml", dir);
	char *want =
	    xasprintf("%s: cannot open: %s", missing, strerror(ENOENT));

	assert_null(load_file(missing));
	expect_line(want);
	free(want);
	free(missing);

	want = xasprintf("%s: cannot read: %s", dir, strerror(EISDIR));
	assert_null(load_file(dir));
	expect_line(want);
	free(want);

	/* Exactly 1 MiB is read; a byte more is refused. */
	big = xmalloc(1024 * 1024 + 1);
	memset(big, ' ', 1024 * 1024 + 1);
	memcpy(big, SUB, strlen(SUB));
	cfg = load_bytes(big, 1024 * 1024);
	assert_non_null(cfg);
	config_free(cfg);
	assert_null(load_bytes(big, 1024 * 1024 + 1));
	want = xasprintf("%s: larger than 1048576 bytes (1 MiB)", path);
	expect_line(want);
	free(want);
	free(big);
}

static void
filters(void **state)
{
	struct config *cfg;
	struct config_subscription *s;

	cfg = load_ok(SUB "    filters:\n"
			  "      - passthrough\n"
			  "      - passthrough: ~\n");
	s = config_subscription(cfg, 0);
	assert_int_equal(s->filters.n, 2);
	assert_ptr_equal(s->filters.v[0].ops, filter_lookup("passthrough"));
	assert_ptr_equal(s->filters.v[1].ops, filter_lookup("passthrough"));
	assert_int_equal(s->filters.v[1].line, 7);
	config_free(cfg);

	expect_only(SUB "    filters:\n"
			"      - passthrough\n"
			"      - dedupe\n",
	    7,
	    "subscriptions[0].filters[1]: unknown filter \"dedupe\" (known: ");
	/* The known ones are listed by name. */
	assert_non_null(strstr(errs, "passthrough"));
	assert_non_null(strstr(errs, "serial"));
	expect_only(SUB "    filters:\n"
			"      - passthrough:\n"
			"          level: 3\n",
	    7, "subscriptions[0].filters[0].passthrough.level: unknown key");
	expect_only(SUB "    filters:\n"
			"      - passthrough: [1]\n",
	    6,
	    "subscriptions[0].filters[0].passthrough: expected a map of "
	    "options, got a list");
	expect_only(SUB "    filters:\n"
			"      - {passthrough: {}, other: {}}\n",
	    6,
	    "subscriptions[0].filters[0]: expected a filter name, or a map of "
	    "one filter name to its options, got a map");
}

/* config_print writes YAML that loads back to the same configuration. */
static void
print_round_trip(void **state)
{
	struct config *cfg = load_ok(full_text), *again;
	struct config_subscription *s, *t;
	char *text, *text2;

	text = print_text(cfg);
	/* Secrets are masked; file paths are not secrets. */
	assert_null(strstr(text, "s3cret"));
	assert_non_null(strstr(text, "    password: \"***\"\n"));
	assert_non_null(strstr(text, "    ca_file: \"/etc/nats/ca.pem\"\n"));
	assert_non_null(strstr(text, "    token: ~\n"));
	assert_non_null(strstr(text, "shutdown_grace: 1500ms\n"));
	assert_non_null(strstr(text, "  max_frame_size: 2MB\n"));
	assert_non_null(strstr(text, "  socket_mode: \"0600\"\n"));
	assert_non_null(strstr(text, "      - passthrough\n"));

	again = load_ok(text);
	text2 = print_text(again);
	assert_string_equal(text, text2);
	assert_string_equal(again->instance_id, cfg->instance_id);
	assert_string_equal(again->nats.auth.password, "***");
	assert_int_equal(again->app.max_frame_size, cfg->app.max_frame_size);
	assert_int_equal(again->subscriptions.n, cfg->subscriptions.n);
	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		s = config_subscription(cfg, i);
		t = config_subscription(again, i);
		assert_string_equal(s->name, t->name);
		assert_int_equal(s->max_ack_pending, t->max_ack_pending);
		assert_int_equal(s->retry_delay, t->retry_delay);
		assert_int_equal(s->filters.n, t->filters.n);
	}
	free(text);
	free(text2);
	config_free(again);
	config_free(cfg);

	/* Defaults too, and strings only the environment can give. */
	setenv("NATS_SIDECAR_INSTANCE_ID", "\xc2\x85x\xef\xbf\xbe\x7f", 1);
	cfg = load_ok(SUB);
	unsetenv("NATS_SIDECAR_INSTANCE_ID");
	text = print_text(cfg);
	again = load_ok(text);
	assert_string_equal(again->instance_id, "\xc2\x85x\xef\xbf\xbe\x7f");
	text2 = print_text(again);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	config_free(again);
	config_free(cfg);
}

static uint32_t
rnd(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

/*
 * A loaded configuration prints and reloads to the same text; a refused
 * one reported at least one problem, each as FILE: or env VAR:.
 */
static void
check_outcome(struct config *cfg)
{
	char *prefix = xasprintf("%s:", path), *text, *text2;
	const char *line;
	struct config *again;

	if (cfg == NULL) {
		assert_true(errs_len > 0);
		for (line = errs; *line != '\0';
		     line = strchr(line, '\n') + 1) {
			if (strncmp(line, prefix, strlen(prefix)) != 0 &&
			    strncmp(line, "env ", 4) != 0)
				print_error("malformed line in:\n%s", errs);
			assert_true(
			    strncmp(line, prefix, strlen(prefix)) == 0 ||
			    strncmp(line, "env ", 4) == 0);
		}
		free(prefix);
		return;
	}
	free(prefix);
	text = print_text(cfg);
	config_free(cfg);
	again = load(text);
	if (again == NULL)
		print_error("printed text does not load:\n%s\n%s", text, errs);
	assert_non_null(again);
	text2 = print_text(again);
	assert_string_equal(text, text2);
	config_free(again);
	free(text);
	free(text2);
}

/* Truncated and garbled variants of a valid file never crash the loader. */
static void
garbled(void **state)
{
	static const char junk[] = "[]{}:-,&*!|>'\"#%@`? \t\n\x01\x7f\xc3\xff"
				   "0a";
	size_t len = strlen(full_text);
	char *text = xmalloc(len + 64);
	uint32_t seed = 0x9e3779b9;
	size_t loaded = 0;

	for (size_t n = 0; n <= len; n += 3)
		check_outcome(load_bytes(full_text, n));
	for (int round = 0; round < 3000; round++) {
		size_t n = len, edits = 1 + rnd(&seed) % 4;

		memcpy(text, full_text, len);
		for (size_t e = 0; e < edits && n > 0 && n < len + 60; e++) {
			size_t at = rnd(&seed) % n;
			char c = junk[rnd(&seed) % (sizeof junk - 1)];

			switch (rnd(&seed) % 3) {
			case 0: /* replace */
				text[at] = c;
				break;
			case 1: /* insert */
				memmove(text + at + 1, text + at, n - at);
				text[at] = c;
				n++;
				break;
			default: /* delete a run */
				memmove(text + at, text + at + 1, n - at - 1);
				n--;
				break;
			}
		}
		struct config *cfg = load_bytes(text, n);

		loaded += cfg != NULL;
		check_outcome(cfg);
	}
	/* Some variants stay valid: the round trip was exercised. */
	assert_true(loaded > 0);
	free(text);
}

/* Every option config_print writes is in docs/configuration.md. */
static void
docs_cover_options(void **state)
{
	const char *srcdir =
	    getenv("top_srcdir") != NULL ? getenv("top_srcdir") : ".";
	char *docs_path = xasprintf("%s/docs/configuration.md", srcdir);
	FILE *f = fopen(docs_path, "r");
	struct config *cfg = load_ok(full_text);
	char *docs = NULL, *text = print_text(cfg), *line, *key, *example, *end;
	size_t cap = 0;

	assert_non_null(f);
	assert_true(getdelim(&docs, &cap, '\0', f) > 0);
	fclose(f);
	for (line = strtok(text, "\n"); line != NULL;
	     line = strtok(NULL, "\n")) {
		char *colon = strchr(line, ':'), *want;

		key = line + strspn(line, " -");
		if (colon == NULL || colon < key)
			continue;
		*colon = '\0';
		want = xasprintf("`%s`", key);
		if (strstr(docs, want) == NULL)
			print_error(
			    "%s does not document %s\n", docs_path, want);
		assert_non_null(strstr(docs, want));
		free(want);
	}
	free(text);
	config_free(cfg);

	/* The complete example of the page loads as it is. */
	assert_non_null(example = strstr(docs, "## Example"));
	assert_non_null(example = strstr(example, "```yaml\n"));
	example += strlen("```yaml\n");
	assert_non_null(end = strstr(example, "```"));
	*end = '\0';
	cfg = load_ok(example);
	assert_string_equal(
	    cfg->nats.auth.creds_file, "/etc/nats/creds/user.creds");
	config_free(cfg);
	free(docs);
	free(docs_path);
}

/* The example shipped for the demo loads as it is. */
static void
example_loads(void **state)
{
	const char *srcdir =
	    getenv("top_srcdir") != NULL ? getenv("top_srcdir") : ".";
	char *file = xasprintf("%s/examples/sidecar.yaml", srcdir);
	struct config *cfg = load_file(file);
	struct config_subscription *s;

	if (cfg == NULL)
		print_error("%s", errs);
	assert_non_null(cfg);
	assert_int_equal(cfg->subscriptions.n, 1);
	s = config_subscription(cfg, 0);
	assert_string_equal(s->name, "orders");
	assert_string_equal(s->stream, "ORDERS");
	assert_string_equal(s->durable, "orders-app");
	assert_string_equal(s->filter_subject, "orders.>");
	assert_string_equal(cfg->app.socket, "/tmp/nats-sidecar-demo/app.sock");
	config_free(cfg);
	free(file);
}

static void
free_null(void **state)
{
	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(defaults, env_setup),
		cmocka_unit_test_setup(instance_from_hostname, env_setup),
		cmocka_unit_test_setup(every_type, env_setup),
		cmocka_unit_test_setup(value_syntax, env_setup),
		cmocka_unit_test_setup(overflow, env_setup),
		cmocka_unit_test_setup(env_overrides, env_setup),
		cmocka_unit_test_setup(env_errors, env_setup),
		cmocka_unit_test_setup(http_listen, env_setup),
		cmocka_unit_test_setup(error_out_of_range, env_setup),
		cmocka_unit_test_setup(error_syntax, env_setup),
		cmocka_unit_test_setup(error_unknown_key, env_setup),
		cmocka_unit_test_setup(error_wrong_type, env_setup),
		cmocka_unit_test_setup(error_missing, env_setup),
		cmocka_unit_test_setup(error_names, env_setup),
		cmocka_unit_test_setup(error_combinations, env_setup),
		cmocka_unit_test_setup(error_all_reported, env_setup),
		cmocka_unit_test_setup(error_yaml_shapes, env_setup),
		cmocka_unit_test_setup(error_file, env_setup),
		cmocka_unit_test_setup(filters, env_setup),
		cmocka_unit_test_setup(print_round_trip, env_setup),
		cmocka_unit_test_setup(garbled, env_setup),
		cmocka_unit_test_setup(docs_cover_options, env_setup),
		cmocka_unit_test_setup(example_loads, env_setup),
		cmocka_unit_test(free_null),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
