/*
 * Loading the configuration. libyaml's document API turns the file into a
 * tree; the option tables drive everything else: defaults, filling the
 * structs, environment overrides, printing and freeing. A problem is
 * reported where it is found and loading goes on, so that one run lists
 * every problem of a file.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "filters/filter.h"
#include "httpd.h"
#include "log.h"
#include "xmalloc.h"

/* Bounds on what a file may make us do. */
#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_DEPTH_MAX 32
#define CONFIG_LIST_MAX 1024

#define QUOTE_MAX 200

#define NSEC INT64_C(1)
#define USEC (1000 * NSEC)
#define MSEC (1000 * USEC)
#define SEC (1000 * MSEC)
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define KIB INT64_C(1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

struct unit {
	const char *name;
	int64_t scale;
};

/* Largest first: formatting picks the first unit that divides exactly. */
static const struct unit duration_units[] = {
	{ "d", DAY },
	{ "h", HOUR },
	{ "m", MINUTE },
	{ "s", SEC },
	{ "ms", MSEC },
	{ "us", USEC },
	{ "ns", NSEC },
	{ NULL, 0 },
};

static const struct unit size_units[] = {
	{ "GiB", GIB },
	{ "MiB", MIB },
	{ "KiB", KIB },
	{ "GB", INT64_C(1000000000) },
	{ "MB", INT64_C(1000000) },
	{ "KB", INT64_C(1000) },
	{ NULL, 0 },
};

static const char *const log_levels[] = { "debug", "info", "warn", "error",
	NULL };
_Static_assert(LOG_LEVEL_DEBUG == 0 && LOG_LEVEL_ERROR == 3,
    "log.level's choices follow enum log_level");

static const char *const consumer_policies[] = { "create", "verify", "update",
	NULL };
static const char *const deliver_policies[] = { "all", "new", "last", NULL };

static const struct config_option tls_options[] = {
	{ .name = "ca_file",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_tls, ca_file),
	    .optional = true,
	    .env = "NATS_SIDECAR_TLS_CA",
	    .help = "CA certificates (PEM) that verify the server" },
	{ .name = "cert_file",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_tls, cert_file),
	    .optional = true,
	    .env = "NATS_SIDECAR_TLS_CERT",
	    .help = "client certificate (PEM); needs key_file" },
	{ .name = "key_file",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_tls, key_file),
	    .optional = true,
	    .env = "NATS_SIDECAR_TLS_KEY",
	    .help = "private key of cert_file (PEM)" },
	{ .name = "server_name",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_tls, server_name),
	    .optional = true,
	    .help = "name expected in the server's certificate" },
	{ .name = NULL },
};

static const struct config_option auth_options[] = {
	{ .name = "creds_file",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_auth, creds_file),
	    .optional = true,
	    .env = "NATS_SIDECAR_CREDS",
	    .help = "user credentials file (JWT and NKey seed)" },
	{ .name = "nkey_seed_file",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_auth, nkey_seed_file),
	    .optional = true,
	    .env = "NATS_SIDECAR_NKEY_SEED",
	    .help = "file holding an NKey seed" },
	{ .name = "user",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_auth, user),
	    .optional = true,
	    .env = "NATS_SIDECAR_USER",
	    .help = "user name; needs password" },
	{ .name = "password",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_auth, password),
	    .optional = true,
	    .env = "NATS_SIDECAR_PASSWORD",
	    .secret = true,
	    .help = "password of user" },
	{ .name = "token",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_auth, token),
	    .optional = true,
	    .env = "NATS_SIDECAR_TOKEN",
	    .secret = true,
	    .help = "authentication token" },
	{ .name = NULL },
};

static const struct config_option nats_options[] = {
	{ .name = "urls",
	    .type = CONFIG_STRINGS,
	    .offset = offsetof(struct config_nats, urls),
	    .def = "nats://127.0.0.1:4222",
	    .env = "NATS_SIDECAR_NATS_URL",
	    .help = "servers to connect to (the environment variable takes "
		    "a comma-separated list)" },
	{ .name = "name",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_nats, name),
	    .def = "nats-sidecar",
	    .help = "connection name shown by the server" },
	{ .name = "connect_timeout",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_nats, connect_timeout),
	    .def = "2s",
	    .min = MSEC,
	    .max = 10 * MINUTE,
	    .help = "time allowed for a connection attempt" },
	{ .name = "reconnect_wait",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_nats, reconnect_wait),
	    .def = "250ms",
	    .min = MSEC,
	    .max = 10 * MINUTE,
	    .help = "first delay between reconnect attempts" },
	{ .name = "reconnect_wait_max",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_nats, reconnect_wait_max),
	    .def = "10s",
	    .min = MSEC,
	    .max = HOUR,
	    .help = "the reconnect delay doubles up to this" },
	{ .name = "reconnect_jitter",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_nats, reconnect_jitter),
	    .def = "100ms",
	    .min = 0,
	    .max = MINUTE,
	    .help = "random time added to each reconnect delay" },
	{ .name = "ping_interval",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_nats, ping_interval),
	    .def = "20s",
	    .min = SEC,
	    .max = HOUR,
	    .help = "how often the connection is checked" },
	{ .name = "publish_timeout",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_nats, publish_timeout),
	    .def = "5s",
	    .min = 10 * MSEC,
	    .max = 10 * MINUTE,
	    .help = "a publish without a PubAck by then fails" },
	{ .name = "publish_max_pending",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_nats, publish_max_pending),
	    .def = "4096",
	    .min = 1,
	    .max = 1048576,
	    .help = "publishes awaiting a PubAck at once" },
	{ .name = "tls",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config_nats, tls),
	    .sub = tls_options,
	    .help = "TLS towards the server" },
	{ .name = "auth",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config_nats, auth),
	    .sub = auth_options,
	    .help = "authentication: at most one method" },
	{ .name = NULL },
};

static const struct config_option app_options[] = {
	{ .name = "socket",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_app, socket),
	    .def = "/run/nats-sidecar/app.sock",
	    .env = "NATS_SIDECAR_SOCKET",
	    .help = "Unix socket the app connects to" },
	{ .name = "socket_mode",
	    .type = CONFIG_MODE,
	    .offset = offsetof(struct config_app, socket_mode),
	    .def = "0660",
	    .help = "file mode of the socket" },
	{ .name = "max_frame_size",
	    .type = CONFIG_SIZE,
	    .offset = offsetof(struct config_app, max_frame_size),
	    .def = "1MiB",
	    .min = 4 * KIB,
	    .max = 64 * MIB,
	    .help = "largest frame in either direction" },
	{ .name = "heartbeat_interval",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_app, heartbeat_interval),
	    .def = "5s",
	    .min = 100 * MSEC,
	    .max = 10 * MINUTE,
	    .help = "how often each side shows it is alive" },
	{ .name = "dead_after",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_app, dead_after),
	    .def = "20s",
	    .min = 100 * MSEC,
	    .max = HOUR,
	    .help = "an app silent this long is disconnected; more than "
		    "heartbeat_interval" },
	{ .name = NULL },
};

static const struct config_option log_options[] = {
	{ .name = "level",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct config_log, level),
	    .def = "info",
	    .choices = log_levels,
	    .env = "NATS_SIDECAR_LOG_LEVEL",
	    .help = "least severe level written" },
	{ .name = "payloads",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_log, payloads),
	    .def = "false",
	    .help = "include payloads in debug lines (they may hold personal "
		    "data)" },
	{ .name = NULL },
};

static const struct config_option http_options[] = {
	{ .name = "listen",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_http, listen),
	    .def = "127.0.0.1:9188",
	    .env = "NATS_SIDECAR_HTTP_LISTEN",
	    .help = "ADDRESS:PORT of /metrics and the probes ([::]:PORT for "
		    "IPv6), or off" },
	{ .name = "max_connections",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_http, max_connections),
	    .def = "16",
	    .min = 1,
	    .max = 1024,
	    .help = "connections served at once; more wait to be accepted" },
	{ .name = "request_timeout",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_http, request_timeout),
	    .def = "5s",
	    .min = 100 * MSEC,
	    .max = MINUTE,
	    .help = "a connection without a complete request by then is "
		    "closed" },
	{ .name = "response_timeout",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_http, response_timeout),
	    .def = "10s",
	    .min = 100 * MSEC,
	    .max = 10 * MINUTE,
	    .help = "a response the client has not taken by then is dropped" },
	{ .name = "ready_requires_nats",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_http, ready_requires_nats),
	    .def = "false",
	    .help = "/readyz fails while NATS is disconnected or a "
		    "subscription is not bound" },
	{ .name = "ready_requires_app",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_http, ready_requires_app),
	    .def = "false",
	    .help = "/readyz fails while no app is connected" },
	{ .name = "ready_requires_store",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_http, ready_requires_store),
	    .def = "true",
	    .help = "/readyz fails while the dedup store cannot be written" },
	{ .name = NULL },
};

static const char *const durabilities[] = { "os", "fsync", NULL };

static const struct config_option dedup_options[] = {
	{ .name = "path",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_dedup, path),
	    .optional = true,
	    .env = "NATS_SIDECAR_DEDUP_PATH",
	    .help = "directory of the dedup store (a local volume, one "
		    "sidecar each); required by the dedup filter" },
	{ .name = "durability",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct config_dedup, durability),
	    .def = "os",
	    .choices = durabilities,
	    .help = "os: a commit survives a killed sidecar; fsync: acks "
		    "also wait for an fsync, so it survives a lost machine" },
	{ .name = "map_size",
	    .type = CONFIG_SIZE,
	    .offset = offsetof(struct config_dedup, map_size),
	    .def = "64MiB",
	    .min = MIB,
	    .max = 1024 * GIB,
	    .help = "the store's initial size" },
	{ .name = "map_size_max",
	    .type = CONFIG_SIZE,
	    .offset = offsetof(struct config_dedup, map_size_max),
	    .def = "1GiB",
	    .min = MIB,
	    .max = 1024 * GIB,
	    .help = "what the store may grow to when full; past it pulling "
		    "stops until entries expire" },
	{ .name = "sweep_batch",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_dedup, sweep_batch),
	    .def = "1000",
	    .min = 1,
	    .max = 1000000,
	    .help = "entries the sweep looks at per loop turn at most, "
		    "removing the expired ones" },
	{ .name = NULL },
};

static const struct config_option trace_options[] = {
	{ .name = "start",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_trace, start),
	    .def = "false",
	    .help = "give a delivery without a valid traceparent a new one" },
	{ .name = "sampled",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_trace, sampled),
	    .def = "true",
	    .help = "set the sampled flag in the traceparents started" },
	{ .name = NULL },
};

static const struct config_option metrics_options[] = {
	{ .name = "consumer_poll_interval",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_metrics, consumer_poll_interval),
	    .def = "5s",
	    .min = 0,
	    .max = 10 * MINUTE,
	    .help = "how often CONSUMER.INFO is asked for pending counts; 0: "
		    "never" },
	{ .name = NULL },
};

static const struct config_option subscription_options[] = {
	{ .name = "name",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, name),
	    .help = "unique name: letters, digits, '_' and '-'" },
	{ .name = "stream",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, stream),
	    .help = "JetStream stream to consume" },
	{ .name = "durable",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, durable),
	    .help = "durable consumer name, shared by all pods" },
	{ .name = "filter_subject",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, filter_subject),
	    .optional = true,
	    .help = "consume only this subject (wildcards allowed)" },
	{ .name = "consumer_policy",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct config_subscription, consumer_policy),
	    .def = "create",
	    .choices = consumer_policies,
	    .help = "create the consumer if absent, verify it matches, or "
		    "update it" },
	{ .name = "deliver_policy",
	    .type = CONFIG_ENUM,
	    .offset = offsetof(struct config_subscription, deliver_policy),
	    .def = "all",
	    .choices = deliver_policies,
	    .help = "where a newly created consumer starts" },
	{ .name = "ack_wait",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_subscription, ack_wait),
	    .def = "30s",
	    .min = SEC,
	    .max = DAY,
	    .help = "the server redelivers what is not acked by then" },
	{ .name = "max_attempts",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_subscription, max_attempts),
	    .def = "5",
	    .min = 1,
	    .max = 1000,
	    .help = "deliveries to the app before dead-lettering" },
	{ .name = "max_deliver",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_subscription, max_deliver),
	    .def = "-1",
	    .min = -1,
	    .max = INT32_MAX,
	    .help = "the consumer's own limit: -1 (unlimited) or at least "
		    "max_attempts + 2" },
	{ .name = "max_in_flight",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_subscription, max_in_flight),
	    .def = "1024",
	    .min = 1,
	    .max = 65536,
	    .help = "the most messages at the app or waiting for it; below "
		    "it the window follows the app's pace" },
	{ .name = "max_in_flight_bytes",
	    .type = CONFIG_SIZE,
	    .offset = offsetof(struct config_subscription, max_in_flight_bytes),
	    .def = "16MiB",
	    .min = 64 * KIB,
	    .max = GIB,
	    .help = "payload bytes at the app or waiting for it" },
	{ .name = "max_ack_pending",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_subscription, max_ack_pending),
	    .def = "0",
	    .min = 0,
	    .max = INT32_MAX,
	    .help = "the consumer's max_ack_pending: 0 (4 * max_in_flight) or "
		    "at least max_in_flight" },
	{ .name = "pull_expires",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_subscription, pull_expires),
	    .def = "30s",
	    .min = SEC,
	    .max = HOUR,
	    .help = "lifetime of a pull request; at least 2 * pull_heartbeat" },
	{ .name = "pull_heartbeat",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_subscription, pull_heartbeat),
	    .def = "5s",
	    .min = 500 * MSEC,
	    .max = 30 * MINUTE,
	    .help = "idle heartbeat the server sends during a pull" },
	{ .name = "processing_timeout",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_subscription, processing_timeout),
	    .def = "30s",
	    .min = 100 * MSEC,
	    .max = DAY,
	    .help = "an app silent this long about a message means RETRY" },
	{ .name = "processing_timeout_max",
	    .type = CONFIG_DURATION,
	    .offset =
		offsetof(struct config_subscription, processing_timeout_max),
	    .def = "10m",
	    .min = 100 * MSEC,
	    .max = 7 * DAY,
	    .help = "IN_PROGRESS extends the timeout up to this in total" },
	{ .name = "retry_delay",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_subscription, retry_delay),
	    .def = "5s",
	    .min = 100 * MSEC,
	    .max = DAY,
	    .help = "redelivery delay of a RETRY that names none" },
	{ .name = "max_retry_delay",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_subscription, max_retry_delay),
	    .def = "10m",
	    .min = 100 * MSEC,
	    .max = 7 * DAY,
	    .help = "cap on any redelivery delay" },
	{ .name = "content_type",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, content_type),
	    .def = "application/json",
	    .help = "content type given to the app when a message has none" },
	{ .name = "message_type",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, message_type),
	    .optional = true,
	    .help = "the payload's protobuf message type (full name, from "
		    "the loaded schemas); payloads that do not decode are "
		    "dead-lettered" },
	{ .name = "serial_key",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_subscription, serial_key),
	    .optional = true,
	    .help = "\"header:NAME\": one message per value of that header "
		    "at the app at a time" },
	{ .name = "filters",
	    .type = CONFIG_FILTERS,
	    .offset = offsetof(struct config_subscription, filters),
	    .optional = true,
	    .help = "the filter chain, in order; empty: pass everything" },
	{ .name = NULL },
};

static const struct config_option advisories_options[] = {
	{ .name = "enabled",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct config_advisories, enabled),
	    .def = "true",
	    .help = "dead-letter messages the server gave up on, from its "
		    "MAX_DELIVERIES advisories" },
	{ .name = "stream_prefix",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_advisories, stream_prefix),
	    .def = "NATS_SIDECAR_ADVISORIES",
	    .help = "each watched consumer's advisories are captured by the "
		    "stream PREFIX_STREAM_DURABLE, created if missing" },
	{ .name = "replicas",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct config_advisories, replicas),
	    .def = "1",
	    .min = 1,
	    .max = 5,
	    .help = "replicas of a created capture stream (the server "
		    "sends each advisory once: use 3 in a cluster)" },
	{ .name = "durable",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config_advisories, durable),
	    .def = "nats-sidecar",
	    .help = "the capture streams' durable consumer, shared by "
		    "every pod" },
	{ .name = "max_age",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_advisories, max_age),
	    .def = "7d",
	    .min = MINUTE,
	    .max = 365 * DAY,
	    .help = "how long the created stream keeps an advisory" },
	{ .name = "retry_delay",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config_advisories, retry_delay),
	    .def = "10s",
	    .min = 100 * MSEC,
	    .max = DAY,
	    .help = "an advisory that could not be handled comes back after "
		    "this" },
	{ .name = NULL },
};

static const struct config_option config_options[] = {
	{ .name = "instance_id",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct config, instance_id),
	    .def = "",
	    .env = "NATS_SIDECAR_INSTANCE_ID",
	    .help = "this pod in logs, metrics and dead letters; empty: "
		    "$HOSTNAME, else the host name" },
	{ .name = "shutdown_grace",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct config, shutdown_grace),
	    .def = "25s",
	    .min = 0,
	    .max = 10 * MINUTE,
	    .help = "time in-flight messages get to finish after SIGTERM" },
	{ .name = "schemas",
	    .type = CONFIG_STRINGS,
	    .offset = offsetof(struct config, schemas),
	    .optional = true,
	    .help = "FileDescriptorSet files (protoc --include_imports "
		    "--descriptor_set_out) with the event types" },
	{ .name = "nats",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, nats),
	    .sub = nats_options,
	    .help = "the NATS connection" },
	{ .name = "app",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, app),
	    .sub = app_options,
	    .help = "the channel to the app" },
	{ .name = "log",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, log),
	    .sub = log_options,
	    .help = "logging" },
	{ .name = "http",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, http),
	    .sub = http_options,
	    .help = "metrics and health endpoints" },
	{ .name = "subscriptions",
	    .type = CONFIG_TABLES,
	    .offset = offsetof(struct config, subscriptions),
	    .sub = subscription_options,
	    .sub_size = sizeof(struct config_subscription),
	    .help = "what to consume; at least one" },
	{ .name = "dedup",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, dedup),
	    .sub = dedup_options,
	    .help = "the store of processed keys, for the dedup filter" },
	{ .name = "trace",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, trace),
	    .sub = trace_options,
	    .help = "trace context for deliveries without one" },
	{ .name = "metrics",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, metrics),
	    .sub = metrics_options,
	    .help = "metrics polled from JetStream" },
	{ .name = "advisories",
	    .type = CONFIG_TABLE,
	    .offset = offsetof(struct config, advisories),
	    .sub = advisories_options,
	    .help = "messages the server gives up on" },
	{ .name = NULL },
};

/* Where a value was set, to point messages at it. */
struct origin {
	const void *addr;
	bool table; /* addr is a struct filled from a map, not a field */
	int line;
	const char *env;
	int errors; /* tables: problems found inside */
};

struct where {
	int line; /* 0: none */
	const char *env;
};

/* A problem, kept until the end to be written in line order. */
struct problem {
	int line; /* 0: the file as a whole; INT_MAX: the environment */
	int seq;
	char *text;
};

struct loader {
	const char *file;
	FILE *err;
	struct problem *problems;
	int errors; /* problems found */
	int cproblems;
	yaml_document_t doc;
	struct origin *origins;
	size_t norigins;
	size_t corigins;
	char path[256]; /* key path of what is being read */
	size_t pathlen;
};

static void loader_error(struct loader *, struct where, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static size_t path_push(struct loader *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void check_error(struct loader *, const void *, const char *,
    const void *, const void *, const char *, ...)
    __attribute__((format(printf, 6, 7)));
static void table_fill(struct loader *, const struct config_option *, void *,
    yaml_node_t *, struct where);
static void table_free(const struct config_option *, void *);
static void print_table(
    FILE *, const struct config_option *, const void *, int, bool);

/* Records one problem as "FILE:LINE: key.path: what". */
static void
loader_error(struct loader *ld, struct where w, const char *fmt, ...)
{
	struct problem *p;
	char place[64], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ld->errors == ld->cproblems) {
		ld->cproblems = ld->cproblems == 0 ? 16 : ld->cproblems * 2;
		ld->problems = xreallocarray(
		    ld->problems, (size_t)ld->cproblems, sizeof *ld->problems);
	}
	p = &ld->problems[ld->errors];
	p->seq = ld->errors++;
	if (w.env != NULL) {
		p->line = INT_MAX;
		p->text = xasprintf("env %s: %s%s%s", w.env, ld->path,
		    ld->pathlen > 0 ? ": " : "", msg);
		return;
	}
	p->line = w.line;
	place[0] = '\0';
	if (w.line > 0)
		snprintf(place, sizeof place, ":%d", w.line);
	p->text = xasprintf("%s%s: %s%s%s", ld->file, place, ld->path,
	    ld->pathlen > 0 ? ": " : "", msg);
}

static int
problem_cmp(const void *a, const void *b)
{
	const struct problem *p = a, *q = b;

	if (p->line != q->line)
		return p->line < q->line ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Writes the problems in line order, those of the environment last. */
static void
loader_flush(struct loader *ld)
{
	if (ld->errors > 0)
		qsort(ld->problems, (size_t)ld->errors, sizeof *ld->problems,
		    problem_cmp);
	for (int i = 0; i < ld->errors; i++) {
		fprintf(ld->err, "%s\n", ld->problems[i].text);
		free(ld->problems[i].text);
	}
	free(ld->problems);
}

/* Appends to the key path; returns the length to restore with path_pop. */
static size_t
path_push(struct loader *ld, const char *fmt, ...)
{
	size_t old = ld->pathlen, room = sizeof ld->path - old;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(ld->path + old, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		ld->pathlen += (size_t)n < room ? (size_t)n : room - 1;
	return old;
}

/* Appends a key, made printable and cut short: keys may come from input. */
static size_t
path_key(struct loader *ld, const char *key, size_t len)
{
	char clean[64 + 4];
	size_t n = 0;

	for (; n < len && n < 64; n++) {
		unsigned char c = (unsigned char)key[n];

		clean[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (len > n) {
		memcpy(clean + n, "...", 3);
		n += 3;
	}
	clean[n] = '\0';
	return path_push(ld, "%s%s", ld->pathlen > 0 ? "." : "", clean);
}

static void
path_pop(struct loader *ld, size_t len)
{
	ld->pathlen = len;
	ld->path[len] = '\0';
}

/* Records where the value at |addr| came from; returns its index. */
static size_t
origin_add(struct loader *ld, const void *addr, bool table, struct where w)
{
	struct origin *o;

	if (ld->norigins == ld->corigins) {
		ld->corigins = ld->corigins == 0 ? 64 : ld->corigins * 2;
		ld->origins = xreallocarray(
		    ld->origins, ld->corigins, sizeof *ld->origins);
	}
	o = &ld->origins[ld->norigins];
	*o = (struct origin){ addr, table, w.line, w.env, 0 };
	return ld->norigins++;
}

/* The latest origin of |addr|, or NULL if it was never set. */
static struct origin *
origin_find(struct loader *ld, const void *addr, bool table)
{
	for (size_t i = ld->norigins; i > 0; i--) {
		struct origin *o = &ld->origins[i - 1];

		if (o->addr == addr && o->table == table)
			return o;
	}
	return NULL;
}

/* Whether the struct at |base| was read without a problem. */
static bool
table_ok(struct loader *ld, const void *base)
{
	struct origin *o = origin_find(ld, base, true);

	return o != NULL && o->errors == 0;
}

/* Decodes the UTF-8 sequence at |s| (|n| bytes left); returns its length,
 * or 0 if it is malformed. */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static bool
utf8_valid(const char *s)
{
	size_t n = strlen(s), len;
	uint32_t cp;

	for (; n > 0; s += len, n -= len) {
		if ((len = utf8_decode((const unsigned char *)s, n, &cp)) == 0)
			return false;
	}
	return true;
}

/* Quotes |s| for a message, escaped and cut short if long. */
static const char *
quote(char *buf, const char *s, size_t len)
{
	size_t off = 0, i;

	buf[off++] = '"';
	for (i = 0; i < len && i < 48; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			off += (size_t)snprintf(buf + off, 3, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			off += (size_t)snprintf(buf + off, 5, "\\x%02x", c);
		else
			buf[off++] = (char)c;
	}
	buf[off++] = '"';
	if (i < len)
		off += (size_t)snprintf(buf + off, 4, "...");
	buf[off] = '\0';
	return buf;
}

static bool
node_is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)n->data.scalar.value;
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int
node_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static yaml_node_t *
node_get(struct loader *ld, int id)
{
	return yaml_document_get_node(&ld->doc, id);
}

/* What a node is, for "got ..." in messages. */
static const char *
node_describe(const yaml_node_t *n, char *buf)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a map";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (node_is_null(n))
		return "null";
	return quote(
	    buf, (const char *)n->data.scalar.value, n->data.scalar.length);
}

static size_t
table_len(const struct config_option *table)
{
	size_t n = 0;

	while (table != NULL && table[n].name != NULL)
		n++;
	return n;
}

/* A list option's entry type. */
static enum config_type
entry_type(const struct config_option *opt)
{
	return opt->type == CONFIG_DURATIONS ? CONFIG_DURATION : CONFIG_STRING;
}

static int64_t
scale(int64_t v, int64_t unit)
{
	int64_t r;

	if (__builtin_mul_overflow(v, unit, &r))
		return v < 0 ? INT64_MIN : INT64_MAX;
	return r;
}

/* Parses an optionally negative decimal integer, saturating at the int64
 * limits; returns what follows it, or NULL if there are no digits. */
static const char *
number_parse(const char *s, int64_t *v)
{
	bool neg = *s == '-', over = false;
	int64_t n = 0;

	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return NULL;
	/* Accumulate negatively: INT64_MIN has no positive counterpart. */
	for (; *s >= '0' && *s <= '9'; s++) {
		if (!over &&
		    (__builtin_mul_overflow(n, 10, &n) ||
			__builtin_sub_overflow(n, *s - '0', &n)))
			over = true;
	}
	if (over)
		*v = neg ? INT64_MIN : INT64_MAX;
	else if (neg)
		*v = n;
	else
		*v = n == INT64_MIN ? INT64_MAX : -n;
	return s;
}

/* A number and one of |units|; a bare number if |bare| allows it. */
static int
unit_parse(const char *s, const struct unit *units, bool bare, int64_t *v)
{
	int64_t n;

	if ((s = number_parse(s, &n)) == NULL)
		return -1;
	if (*s == '\0' && bare) {
		*v = n;
		return 0;
	}
	for (; units->name != NULL; units++) {
		if (strcmp(s, units->name) == 0) {
			*v = scale(n, units->scale);
			return 0;
		}
	}
	return -1;
}

static int
duration_parse(const char *s, int64_t *v)
{
	if (strcmp(s, "0") == 0 || strcmp(s, "-0") == 0) {
		*v = 0;
		return 0;
	}
	return unit_parse(s, duration_units, false, v);
}

static int
size_parse(const char *s, int64_t *v)
{
	size_t len = strlen(s);
	char *bytes;
	int rc;

	if (len < 2 || s[len - 1] != 'B' || s[len - 2] < '0' ||
	    s[len - 2] > '9')
		return unit_parse(s, size_units, true, v);
	/* "512B": the unit is spelt out. */
	bytes = xstrndup(s, len - 1);
	rc = unit_parse(bytes, size_units, true, v);
	free(bytes);
	return rc;
}

/* Parses the text of an INT, DURATION or SIZE. */
static int
int64_parse(enum config_type type, const char *s, int64_t *v)
{
	const char *end;

	if (type == CONFIG_DURATION)
		return duration_parse(s, v);
	if (type == CONFIG_SIZE)
		return size_parse(s, v);
	end = number_parse(s, v);
	return end != NULL && *end == '\0' ? 0 : -1;
}

static int
mode_parse(const char *s, int *mode)
{
	int m = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '7' || (m = m * 8 + (*s - '0')) > 07777)
			return -1;
	}
	*mode = m;
	return 0;
}

/* Writes |v| in the largest unit that divides it exactly. */
static const char *
unit_format(char *buf, size_t cap, int64_t v, const struct unit *units,
    const char *zero)
{
	if (v == 0) {
		snprintf(buf, cap, "%s", zero);
		return buf;
	}
	for (; units->name != NULL; units++) {
		if (v % units->scale == 0) {
			snprintf(buf, cap, "%" PRId64 "%s", v / units->scale,
			    units->name);
			return buf;
		}
	}
	snprintf(buf, cap, "%" PRId64, v);
	return buf;
}

static const char *
value_format(char *buf, size_t cap, enum config_type type, int64_t v)
{
	if (type == CONFIG_DURATION)
		return unit_format(buf, cap, v, duration_units, "0s");
	if (type == CONFIG_SIZE)
		return unit_format(buf, cap, v, size_units, "0");
	snprintf(buf, cap, "%" PRId64, v);
	return buf;
}

/* The range of an INT, DURATION or SIZE; false if there is none. */
static bool
option_range(const struct config_option *opt, enum config_type type,
    int64_t *lo, int64_t *hi)
{
	if (opt->min != 0 || opt->max != 0) {
		*lo = opt->min;
		*hi = opt->max;
		return true;
	}
	if (type == CONFIG_INT)
		return false;
	*lo = 0;
	*hi = INT64_MAX;
	return true;
}

static bool
in_range(const struct config_option *opt, enum config_type type, int64_t v)
{
	int64_t lo, hi;

	return !option_range(opt, type, &lo, &hi) || (v >= lo && v <= hi);
}

/* Describes what |opt| (or its entries, for |type|) accepts. */
static const char *
expect_text(char *buf, size_t cap, const struct config_option *opt,
    enum config_type type)
{
	static const char *const nouns[] = {
		[CONFIG_STRING] = "a string",
		[CONFIG_BOOL] = "true or false",
		[CONFIG_INT] = "an integer",
		[CONFIG_DURATION] = "a duration",
		[CONFIG_SIZE] = "a size",
		[CONFIG_ENUM] = "one of",
		[CONFIG_MODE] = "an octal file mode such as 0660",
		[CONFIG_STRINGS] = "a list of strings",
		[CONFIG_DURATIONS] = "a list of durations",
		[CONFIG_TABLE] = "a map",
		[CONFIG_TABLES] = "a list of maps",
		[CONFIG_FILTERS] = "a list of filters",
	};
	size_t off = (size_t)snprintf(buf, cap, "%s", nouns[type]);
	char lo_text[32], hi_text[32];
	int64_t lo, hi;

	if (type == CONFIG_ENUM) {
		for (size_t i = 0; opt->choices[i] != NULL && off < cap; i++)
			off += (size_t)snprintf(buf + off, cap - off, "%s %s",
			    i > 0 ? "," : "", opt->choices[i]);
		return buf;
	}
	if (type == CONFIG_DURATIONS)
		type = CONFIG_DURATION;
	if ((type != CONFIG_INT && type != CONFIG_DURATION &&
		type != CONFIG_SIZE) ||
	    !option_range(opt, type, &lo, &hi))
		return buf;
	value_format(lo_text, sizeof lo_text, type, lo);
	value_format(hi_text, sizeof hi_text, type, hi);
	if (hi == INT64_MAX)
		snprintf(buf + off, cap - off, " of at least %s", lo_text);
	else
		snprintf(
		    buf + off, cap - off, " from %s to %s", lo_text, hi_text);
	return buf;
}

/* Parses one scalar of |type| from |s| into |dst|; 0, or -1 after
 * reporting. */
static int
scalar_parse(struct loader *ld, const struct config_option *opt,
    enum config_type type, const char *s, void *dst, struct where w)
{
	char want[256], got[QUOTE_MAX];
	const char *hint = "";
	int64_t v;

	switch (type) {
	case CONFIG_STRING:
		free(*(char **)dst);
		*(char **)dst = xstrdup(s);
		return 0;
	case CONFIG_BOOL:
		if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
			break;
		*(bool *)dst = s[0] == 't';
		return 0;
	case CONFIG_INT:
	case CONFIG_DURATION:
	case CONFIG_SIZE:
		if (int64_parse(type, s, &v) == -1) {
			if (type == CONFIG_DURATION)
				hint = " (a whole number and a unit: ns, us, "
				       "ms, s, m, h or d)";
			else if (type == CONFIG_SIZE)
				hint = " (a whole number of bytes, or of KiB, "
				       "MiB, GiB, KB, MB or GB)";
			break;
		}
		if (!in_range(opt, type, v))
			break;
		*(int64_t *)dst = v;
		return 0;
	case CONFIG_ENUM:
		for (int i = 0; opt->choices[i] != NULL; i++) {
			if (strcmp(s, opt->choices[i]) == 0) {
				*(int *)dst = i;
				return 0;
			}
		}
		break;
	case CONFIG_MODE:
		if (mode_parse(s, (int *)dst) == 0)
			return 0;
		break;
	default:
		break;
	}
	loader_error(ld, w, "expected %s, got %s%s",
	    expect_text(want, sizeof want, opt, type), quote(got, s, strlen(s)),
	    hint);
	return -1;
}

/* Empties a list option and makes room for |n| zeroed entries. */
static void *
list_reset(const struct config_option *opt, void *field, size_t n)
{
	if (opt->type == CONFIG_STRINGS) {
		struct config_strings *l = field;

		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		l->v = n > 0 ? xcalloc(n, sizeof *l->v) : NULL;
		l->n = n;
		return l->v;
	} else {
		struct config_durations *l = field;

		free(l->v);
		l->v = n > 0 ? xcalloc(n, sizeof *l->v) : NULL;
		l->n = n;
		return l->v;
	}
}

static void *
list_entry(const struct config_option *opt, void *v, size_t i)
{
	if (opt->type == CONFIG_STRINGS)
		return (char **)v + i;
	return (int64_t *)v + i;
}

/* Sets the option at |field| from text: a default, an environment variable
 * or a YAML scalar. Lists take comma-separated entries. */
static void
text_parse(struct loader *ld, const struct config_option *opt, const char *s,
    void *field, struct where w)
{
	char want[256], got[QUOTE_MAX];
	size_t n = 1, i, old;
	const char *p, *end;
	void *v;

	switch (opt->type) {
	case CONFIG_STRINGS:
	case CONFIG_DURATIONS:
		for (p = s; *p != '\0'; p++)
			n += *p == ',';
		if (n > CONFIG_LIST_MAX) {
			loader_error(ld, w,
			    "expected at most %d entries, got %zu",
			    CONFIG_LIST_MAX, n);
			return;
		}
		v = list_reset(opt, field, n);
		for (i = 0, p = s; i < n; i++, p = end + 1) {
			char *entry;

			if ((end = strchr(p, ',')) == NULL)
				end = p + strlen(p);
			while (p < end && *p == ' ')
				p++;
			entry = xstrndup(p, (size_t)(end - p));
			for (size_t len = strlen(entry);
			     len > 0 && entry[len - 1] == ' ';)
				entry[--len] = '\0';
			old = path_push(ld, "[%zu]", i);
			scalar_parse(ld, opt, entry_type(opt), entry,
			    list_entry(opt, v, i), w);
			path_pop(ld, old);
			free(entry);
		}
		return;
	case CONFIG_TABLE:
	case CONFIG_TABLES:
	case CONFIG_FILTERS:
		loader_error(ld, w, "expected %s, got %s",
		    expect_text(want, sizeof want, opt, opt->type),
		    quote(got, s, strlen(s)));
		return;
	default:
		scalar_parse(ld, opt, opt->type, s, field, w);
		return;
	}
}

/* The text of a scalar node, or NULL after reporting why there is none. */
static const char *
node_text(struct loader *ld, const struct config_option *opt,
    enum config_type type, const yaml_node_t *n, struct where w)
{
	char want[256], got[QUOTE_MAX];

	if (n->type != YAML_SCALAR_NODE || node_is_null(n)) {
		loader_error(ld, w, "expected %s, got %s",
		    expect_text(want, sizeof want, opt, type),
		    node_describe(n, got));
		return NULL;
	}
	if (strlen((const char *)n->data.scalar.value) !=
	    n->data.scalar.length) {
		loader_error(ld, w, "expected %s, got text with a NUL byte",
		    expect_text(want, sizeof want, opt, type));
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

/* The number of entries of a list; -1 after reporting too many or none
 * where one is required. */
static ssize_t
seq_count(struct loader *ld, const struct config_option *opt,
    const yaml_node_t *seq, struct where w)
{
	size_t n = (size_t)(seq->data.sequence.items.top -
	    seq->data.sequence.items.start);

	if (n > CONFIG_LIST_MAX) {
		loader_error(ld, w, "expected at most %d entries, got %zu",
		    CONFIG_LIST_MAX, n);
		return -1;
	}
	if (n == 0 && !opt->optional) {
		loader_error(
		    ld, w, "expected at least one entry, got an empty list");
		return -1;
	}
	return (ssize_t)n;
}

/* Fills a list of strings or durations from a YAML sequence. */
static void
list_fill(struct loader *ld, const struct config_option *opt, void *field,
    yaml_node_t *seq, struct where w)
{
	ssize_t n = seq_count(ld, opt, seq, w);
	const char *s;
	size_t old;
	void *v;

	if (n == -1)
		return;
	v = list_reset(opt, field, (size_t)n);
	for (ssize_t i = 0; i < n; i++) {
		yaml_node_t *item =
		    node_get(ld, seq->data.sequence.items.start[i]);
		struct where iw = { node_line(item), NULL };

		old = path_push(ld, "[%zd]", i);
		if ((s = node_text(ld, opt, entry_type(opt), item, iw)) != NULL)
			scalar_parse(ld, opt, entry_type(opt), s,
			    list_entry(opt, v, (size_t)i), iw);
		path_pop(ld, old);
	}
}

/* Fills a list of structs from a YAML sequence of maps. */
static void
tables_fill(struct loader *ld, const struct config_option *opt,
    struct config_tables *t, yaml_node_t *seq, struct where w)
{
	ssize_t n = seq_count(ld, opt, seq, w);
	char got[QUOTE_MAX];
	size_t old;

	if (n <= 0)
		return;
	t->v = xcalloc((size_t)n, opt->sub_size);
	t->n = (size_t)n;
	for (ssize_t i = 0; i < n; i++) {
		yaml_node_t *item =
		    node_get(ld, seq->data.sequence.items.start[i]);
		struct where iw = { node_line(item), NULL };

		old = path_push(ld, "[%zd]", i);
		if (item->type == YAML_MAPPING_NODE)
			table_fill(ld, opt->sub,
			    (char *)t->v + i * opt->sub_size, item, iw);
		else
			loader_error(ld, iw, "expected a map, got %s",
			    node_describe(item, got));
		path_pop(ld, old);
	}
}

/* Fills one entry of a chain: "name", or "name: {options}". */
static void
filter_fill(struct loader *ld, struct config_filter *cf, yaml_node_t *item)
{
	struct where w = { node_line(item), NULL };
	yaml_node_t *name = item, *options = NULL;
	const struct filter_ops *ops;
	char got[QUOTE_MAX], known[256];
	const char *s;
	size_t off = 0, old;
	int before;

	if (item->type == YAML_MAPPING_NODE &&
	    item->data.mapping.pairs.top - item->data.mapping.pairs.start ==
		1) {
		name = node_get(ld, item->data.mapping.pairs.start->key);
		options = node_get(ld, item->data.mapping.pairs.start->value);
	}
	if (name->type != YAML_SCALAR_NODE || node_is_null(name)) {
		loader_error(ld, w,
		    "expected a filter name, or a map of one filter name to "
		    "its options, got %s",
		    node_describe(item, got));
		return;
	}
	s = (const char *)name->data.scalar.value;
	if (strlen(s) != name->data.scalar.length ||
	    (ops = filter_lookup(s)) == NULL) {
		known[0] = '\0';
		for (size_t i = 0;
		     filter_registry[i] != NULL && off < sizeof known; i++)
			off += (size_t)snprintf(known + off, sizeof known - off,
			    "%s%s", i > 0 ? ", " : "",
			    filter_registry[i]->name);
		loader_error(ld, w, "unknown filter %s (known: %s)",
		    node_describe(name, got), known);
		return;
	}
	cf->ops = ops;
	cf->line = w.line;
	if (ops->options_size > 0)
		cf->options = xcalloc(1, ops->options_size);
	old = path_key(ld, ops->name, strlen(ops->name));
	before = ld->errors;
	if (options != NULL && !node_is_null(options) &&
	    options->type != YAML_MAPPING_NODE)
		loader_error(ld, w, "expected a map of options, got %s",
		    node_describe(options, got));
	else
		table_fill(ld, ops->options, cf->options, options, w);
	if (ld->errors == before && ops->validate != NULL) {
		char *msg = NULL;

		if (ops->validate(cf->options, &msg) == -1)
			loader_error(
			    ld, w, "%s", msg != NULL ? msg : "invalid options");
		free(msg);
	}
	path_pop(ld, old);
}

static void
filters_fill(struct loader *ld, const struct config_option *opt,
    struct config_filters *fl, yaml_node_t *seq, struct where w)
{
	ssize_t n = seq_count(ld, opt, seq, w);
	size_t old;

	if (n <= 0)
		return;
	fl->v = xcalloc((size_t)n, sizeof *fl->v);
	fl->n = (size_t)n;
	for (ssize_t i = 0; i < n; i++) {
		old = path_push(ld, "[%zd]", i);
		filter_fill(ld, &fl->v[i],
		    node_get(ld, seq->data.sequence.items.start[i]));
		path_pop(ld, old);
	}
}

/* Sets an option the file leaves out: its default, or reports it missing. */
static void
option_default(struct loader *ld, const struct config_option *opt, void *field,
    struct where w)
{
	if (opt->type == CONFIG_TABLE)
		table_fill(ld, opt->sub, field, NULL, w);
	else if (opt->def != NULL)
		text_parse(ld, opt, opt->def, field, w);
	else if (!opt->optional)
		loader_error(ld, w, "missing required key");
}

/* Sets the option at |field| from YAML node |n|; null means left out. */
static void
option_fill(struct loader *ld, const struct config_option *opt, void *field,
    yaml_node_t *n, struct where w)
{
	char want[256], got[QUOTE_MAX];
	const char *s;

	if (opt->type != CONFIG_TABLE)
		origin_add(ld, field, false, w);
	if (node_is_null(n) &&
	    (opt->type == CONFIG_TABLE || opt->def != NULL || opt->optional)) {
		option_default(ld, opt, field, w);
		return;
	}
	switch (opt->type) {
	case CONFIG_TABLE:
		if (n->type != YAML_MAPPING_NODE)
			break;
		table_fill(ld, opt->sub, field, n, w);
		return;
	case CONFIG_TABLES:
		if (n->type != YAML_SEQUENCE_NODE)
			break;
		tables_fill(ld, opt, field, n, w);
		return;
	case CONFIG_FILTERS:
		if (n->type != YAML_SEQUENCE_NODE)
			break;
		filters_fill(ld, opt, field, n, w);
		return;
	case CONFIG_STRINGS:
	case CONFIG_DURATIONS:
		if (n->type == YAML_SEQUENCE_NODE) {
			list_fill(ld, opt, field, n, w);
			return;
		}
		/* FALLTHROUGH */
	default:
		if ((s = node_text(ld, opt, opt->type, n, w)) != NULL)
			text_parse(ld, opt, s, field, w);
		return;
	}
	loader_error(ld, w, "expected %s, got %s",
	    expect_text(want, sizeof want, opt, opt->type),
	    node_describe(n, got));
}

/* Fills one key of a map into the struct at |base|. */
static void
pair_fill(struct loader *ld, const struct config_option *table, void *base,
    int *seen, const yaml_node_pair_t *pair)
{
	yaml_node_t *k = node_get(ld, pair->key);
	struct where w = { node_line(k), NULL };
	const struct config_option *opt = NULL;
	char got[QUOTE_MAX];
	const char *key;
	size_t len, i, old;

	if (k->type != YAML_SCALAR_NODE) {
		loader_error(
		    ld, w, "expected a key, got %s", node_describe(k, got));
		return;
	}
	key = (const char *)k->data.scalar.value;
	len = k->data.scalar.length;
	for (i = 0; table != NULL && table[i].name != NULL; i++) {
		if (strlen(table[i].name) == len &&
		    memcmp(table[i].name, key, len) == 0) {
			opt = &table[i];
			break;
		}
	}
	old = path_key(ld, key, len);
	if (opt == NULL)
		loader_error(ld, w, "unknown key");
	else if (seen[i] != 0)
		loader_error(
		    ld, w, "duplicate key (first at line %d)", seen[i]);
	else {
		seen[i] = w.line;
		option_fill(ld, opt, (char *)base + opt->offset,
		    node_get(ld, pair->value), w);
	}
	path_pop(ld, old);
}

/* Fills the struct at |base| from |map| (a mapping node, or NULL for
 * none), and defaults for what it leaves out. */
static void
table_fill(struct loader *ld, const struct config_option *table, void *base,
    yaml_node_t *map, struct where w)
{
	size_t n = table_len(table), at = origin_add(ld, base, true, w), old;
	int *seen = xcalloc(n + 1, sizeof *seen), before = ld->errors;

	if (map != NULL && map->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
		     p < map->data.mapping.pairs.top; p++)
			pair_fill(ld, table, base, seen, p);
	}
	for (size_t i = 0; i < n; i++) {
		if (seen[i] != 0)
			continue;
		old = path_key(ld, table[i].name, strlen(table[i].name));
		option_default(
		    ld, &table[i], (char *)base + table[i].offset, w);
		path_pop(ld, old);
	}
	free(seen);
	ld->origins[at].errors += ld->errors - before;
}

/* Applies the environment variables of |table| over the file's values. */
static void
table_env(struct loader *ld, const struct config_option *table, void *base)
{
	for (const struct config_option *opt = table; opt->name != NULL;
	     opt++) {
		void *field = (char *)base + opt->offset;
		struct where w = { 0, opt->env };
		const char *v = NULL;
		struct origin *o;
		size_t old;
		int before = ld->errors;

		if (opt->type != CONFIG_TABLE &&
		    (opt->env == NULL || (v = getenv(opt->env)) == NULL ||
			*v == '\0'))
			continue;
		old = path_key(ld, opt->name, strlen(opt->name));
		if (opt->type == CONFIG_TABLE)
			table_env(ld, opt->sub, field);
		else if (!utf8_valid(v))
			loader_error(ld, w, "expected UTF-8 text");
		else {
			text_parse(ld, opt, v, field, w);
			origin_add(ld, field, false, w);
		}
		path_pop(ld, old);
		if (ld->errors > before &&
		    (o = origin_find(ld, base, true)) != NULL)
			o->errors += ld->errors - before;
	}
}

/* Reports a problem with |key| of the struct at |base|, where |field| (or
 * else |alt|, or else the struct) was set; |key| NULL: the struct itself. */
static void
check_error(struct loader *ld, const void *base, const char *key,
    const void *field, const void *alt, const char *fmt, ...)
{
	struct origin *o = NULL;
	struct where w = { 1, NULL };
	char msg[1024];
	size_t old = ld->pathlen;
	va_list ap;

	if (field != NULL)
		o = origin_find(ld, field, false);
	if (o == NULL && alt != NULL)
		o = origin_find(ld, alt, false);
	if (o == NULL)
		o = origin_find(ld, base, true);
	if (o != NULL && (o->line > 0 || o->env != NULL))
		w = (struct where){ o->line, o->env };
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (key != NULL)
		path_push(ld, "%s%s", ld->pathlen > 0 ? "." : "", key);
	loader_error(ld, w, "%s", msg);
	path_pop(ld, old);
}

/* A JetStream stream or consumer name: no whitespace, '.', '*' or '>'. */
static bool
js_name_valid(const char *s)
{
	return s[0] != '\0' && strpbrk(s, " \t\r\n\f.*>") == NULL;
}

/* A subject to filter on: dot-separated non-empty tokens, '*' a whole
 * token, '>' a whole last token. */
static bool
subject_valid(const char *s)
{
	const char *tok = s, *end;
	size_t len;

	if (s[0] == '\0' || strpbrk(s, " \t\r\n\f") != NULL)
		return false;
	for (;; tok = end + 1) {
		end = strchr(tok, '.');
		len = end != NULL ? (size_t)(end - tok) : strlen(tok);
		if (len == 0)
			return false;
		if (memchr(tok, '*', len) != NULL && len != 1)
			return false;
		if (memchr(tok, '>', len) != NULL && (len != 1 || end != NULL))
			return false;
		if (end == NULL)
			return true;
	}
}

/* "header:NAME" with NAME a header field name. */
static bool
serial_key_valid(const char *s)
{
	const char *name = s + strlen("header:");

	if (strncmp(s, "header:", strlen("header:")) != 0 || *name == '\0')
		return false;
	for (; *name != '\0'; name++) {
		if (*name <= ' ' || *name >= 0x7f || *name == ':')
			return false;
	}
	return true;
}

static void
check_nats(struct loader *ld, struct config_nats *n)
{
	struct config_tls *tls = &n->tls;
	struct config_auth *a = &n->auth;
	const char *methods[4];
	const void *last = NULL;
	char key[32], got[QUOTE_MAX];
	size_t old = path_push(ld, "nats"), nmethods = 0;

	for (size_t i = 0; i < n->urls.n; i++) {
		const char *u = n->urls.v[i];

		if (u == NULL ||
		    (u[0] != '\0' && strpbrk(u, " \t\r\n") == NULL))
			continue;
		snprintf(key, sizeof key, "urls[%zu]", i);
		check_error(ld, n, key, &n->urls, NULL,
		    "expected a URL such as nats://host:4222, got %s",
		    quote(got, u, strlen(u)));
	}
	if (table_ok(ld, n) && n->reconnect_wait_max < n->reconnect_wait)
		check_error(ld, n, "reconnect_wait_max", &n->reconnect_wait_max,
		    &n->reconnect_wait,
		    "expected at least reconnect_wait, got less");
	if (table_ok(ld, tls) && tls->cert_file != NULL &&
	    tls->key_file == NULL)
		check_error(ld, tls, "tls.cert_file", &tls->cert_file, NULL,
		    "set without key_file: a client certificate needs its key");
	if (table_ok(ld, tls) && tls->key_file != NULL &&
	    tls->cert_file == NULL)
		check_error(ld, tls, "tls.key_file", &tls->key_file, NULL,
		    "set without cert_file: a key needs its certificate");
	if (!table_ok(ld, a)) {
		path_pop(ld, old);
		return;
	}
	if (a->creds_file != NULL) {
		methods[nmethods++] = "creds_file";
		last = &a->creds_file;
	}
	if (a->nkey_seed_file != NULL) {
		methods[nmethods++] = "nkey_seed_file";
		last = &a->nkey_seed_file;
	}
	if (a->user != NULL || a->password != NULL) {
		methods[nmethods++] = "user";
		last =
		    a->user != NULL ? (void *)&a->user : (void *)&a->password;
	}
	if (a->token != NULL) {
		methods[nmethods++] = "token";
		last = &a->token;
	}
	if (nmethods > 1)
		check_error(ld, a, "auth", last, NULL,
		    "expected one authentication method, got %zu (%s, %s%s)",
		    nmethods, methods[0], methods[1],
		    nmethods > 2 ? ", ..." : "");
	else if (a->user != NULL && a->password == NULL)
		check_error(
		    ld, a, "auth.user", &a->user, NULL, "set without password");
	else if (a->user == NULL && a->password != NULL)
		check_error(ld, a, "auth.password", &a->password, NULL,
		    "set without user");
	path_pop(ld, old);
}

static void
check_app(struct loader *ld, struct config_app *app)
{
	struct sockaddr_un sun;
	char a[32], b[32];
	size_t old = path_push(ld, "app");

	if (app->socket != NULL && app->socket[0] == '\0')
		check_error(ld, app, "socket", &app->socket, NULL,
		    "expected a path, got \"\"");
	else if (app->socket != NULL &&
	    strlen(app->socket) >= sizeof sun.sun_path)
		check_error(ld, app, "socket", &app->socket, NULL,
		    "expected a path of at most %zu bytes (the limit of a Unix "
		    "socket address), got %zu",
		    sizeof sun.sun_path - 1, strlen(app->socket));
	if (table_ok(ld, app) && app->dead_after <= app->heartbeat_interval)
		check_error(ld, app, "dead_after", &app->dead_after,
		    &app->heartbeat_interval,
		    "expected more than heartbeat_interval (%s), got %s",
		    value_format(
			a, sizeof a, CONFIG_DURATION, app->heartbeat_interval),
		    value_format(
			b, sizeof b, CONFIG_DURATION, app->dead_after));
	path_pop(ld, old);
}

static void
check_http(struct loader *ld, struct config_http *http)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char got[QUOTE_MAX];
	size_t old = path_push(ld, "http");

	if (http->listen != NULL && strcmp(http->listen, "off") != 0 &&
	    httpd_address_parse(http->listen, &ss, &len) == -1)
		check_error(ld, http, "listen", &http->listen, NULL,
		    "expected ADDRESS:PORT such as 127.0.0.1:9188, "
		    "0.0.0.0:9188 or [::]:9188, or off, got %s",
		    quote(got, http->listen, strlen(http->listen)));
	path_pop(ld, old);
}

static void
check_advisories(struct loader *ld, struct config_advisories *a)
{
	char got[QUOTE_MAX];
	size_t old = path_push(ld, "advisories");

	if (a->stream_prefix != NULL && !js_name_valid(a->stream_prefix))
		check_error(ld, a, "stream_prefix", &a->stream_prefix, NULL,
		    "expected a stream name without spaces, '.', '*' or '>', "
		    "got %s",
		    quote(got, a->stream_prefix, strlen(a->stream_prefix)));
	if (a->durable != NULL && !js_name_valid(a->durable))
		check_error(ld, a, "durable", &a->durable, NULL,
		    "expected a consumer name without spaces, '.', '*' or '>', "
		    "got %s",
		    quote(got, a->durable, strlen(a->durable)));
	path_pop(ld, old);
}

/* The checks of one subscription that need its other values. */
static void
check_combinations(struct loader *ld, struct config_subscription *s)
{
	char a[32], b[32];

	if (s->max_deliver != -1 && s->max_deliver < s->max_attempts + 2)
		check_error(ld, s, "max_deliver", &s->max_deliver,
		    &s->max_attempts,
		    "expected -1 (unlimited) or at least max_attempts + 2 = "
		    "%" PRId64 ", got %" PRId64 ": the sidecar counts attempts "
		    "and dead-letters after max_attempts; the server's "
		    "max_deliver is only a safety net above that, or the "
		    "server "
		    "would give up on messages the sidecar still retries",
		    s->max_attempts + 2, s->max_deliver);
	if (s->pull_expires / 2 < s->pull_heartbeat)
		check_error(ld, s, "pull_expires", &s->pull_expires,
		    &s->pull_heartbeat,
		    "expected at least twice pull_heartbeat (%s), got %s",
		    value_format(
			a, sizeof a, CONFIG_DURATION, s->pull_heartbeat),
		    value_format(
			b, sizeof b, CONFIG_DURATION, s->pull_expires));
	if (s->processing_timeout_max < s->processing_timeout)
		check_error(ld, s, "processing_timeout_max",
		    &s->processing_timeout_max, &s->processing_timeout,
		    "expected at least processing_timeout (%s), got %s",
		    value_format(
			a, sizeof a, CONFIG_DURATION, s->processing_timeout),
		    value_format(b, sizeof b, CONFIG_DURATION,
			s->processing_timeout_max));
	if (s->max_retry_delay < s->retry_delay)
		check_error(ld, s, "max_retry_delay", &s->max_retry_delay,
		    &s->retry_delay,
		    "expected at least retry_delay (%s), got %s",
		    value_format(a, sizeof a, CONFIG_DURATION, s->retry_delay),
		    value_format(
			b, sizeof b, CONFIG_DURATION, s->max_retry_delay));
	if (s->max_ack_pending == 0)
		s->max_ack_pending = 4 * s->max_in_flight;
	else if (s->max_ack_pending < s->max_in_flight)
		check_error(ld, s, "max_ack_pending", &s->max_ack_pending,
		    &s->max_in_flight,
		    "expected 0 (4 * max_in_flight) or at least max_in_flight "
		    "(%" PRId64 "), got %" PRId64,
		    s->max_in_flight, s->max_ack_pending);
}

static bool
has_filter(const struct config_subscription *s, const char *name)
{
	for (size_t i = 0; i < s->filters.n; i++) {
		if (s->filters.v[i].ops != NULL &&
		    strcmp(s->filters.v[i].ops->name, name) == 0)
			return true;
	}
	return false;
}

/* A dedup filter needs the store; a dead-letter filter's advisory
 * capture stream needs a name the server takes. */
static void
check_filter_needs(
    struct loader *ld, struct config *cfg, struct config_subscription *s)
{
	const struct config_advisories *a = &cfg->advisories;

	if (cfg->dedup.path == NULL && has_filter(s, "dedup"))
		check_error(ld, s, "filters", &s->filters, NULL,
		    "the dedup filter needs a store: set dedup.path "
		    "(a local directory, e.g. a volume)");
	if (a->enabled && a->stream_prefix != NULL && s->stream != NULL &&
	    s->durable != NULL && has_filter(s, "deadletter") &&
	    strlen(a->stream_prefix) + strlen(s->stream) + strlen(s->durable) +
		    2 >
		ADVISORY_STREAM_NAME_MAX)
		check_error(ld, s, "filters", &s->filters, NULL,
		    "the advisory capture stream %s_%s_%s would be longer "
		    "than %d characters: shorten advisories.stream_prefix, "
		    "or set advisories.enabled: false",
		    a->stream_prefix, s->stream, s->durable,
		    ADVISORY_STREAM_NAME_MAX);
}

static void
check_subscription(struct loader *ld, struct config_subscription *s)
{
	char got[QUOTE_MAX];
	const char *p;

	if (s->name != NULL) {
		for (p = s->name; *p != '\0'; p++) {
			if (!(*p >= 'a' && *p <= 'z') &&
			    !(*p >= 'A' && *p <= 'Z') &&
			    !(*p >= '0' && *p <= '9') && *p != '_' && *p != '-')
				break;
		}
		if (s->name[0] == '\0' || *p != '\0')
			check_error(ld, s, "name", &s->name, NULL,
			    "expected letters, digits, '_' or '-', got %s",
			    quote(got, s->name, strlen(s->name)));
	}
	if (s->stream != NULL && !js_name_valid(s->stream))
		check_error(ld, s, "stream", &s->stream, NULL,
		    "expected a stream name without spaces, '.', '*' or '>', "
		    "got %s",
		    quote(got, s->stream, strlen(s->stream)));
	if (s->durable != NULL && !js_name_valid(s->durable))
		check_error(ld, s, "durable", &s->durable, NULL,
		    "expected a consumer name without spaces, '.', '*' or '>', "
		    "got %s",
		    quote(got, s->durable, strlen(s->durable)));
	if (s->filter_subject != NULL && !subject_valid(s->filter_subject))
		check_error(ld, s, "filter_subject", &s->filter_subject, NULL,
		    "expected a subject such as orders.> or orders.*.v1, got "
		    "%s",
		    quote(got, s->filter_subject, strlen(s->filter_subject)));
	if (s->serial_key != NULL && !serial_key_valid(s->serial_key))
		check_error(ld, s, "serial_key", &s->serial_key, NULL,
		    "expected \"header:NAME\", got %s",
		    quote(got, s->serial_key, strlen(s->serial_key)));
	if (table_ok(ld, s))
		check_combinations(ld, s);
}

/* Names and stream/durable pairs are unique across subscriptions. */
static void
check_unique(struct loader *ld, struct config *cfg, size_t i)
{
	struct config_subscription *s = config_subscription(cfg, i), *t;
	struct origin *o;
	char got[QUOTE_MAX];

	for (size_t j = 0; j < i; j++) {
		t = config_subscription(cfg, j);
		if (s->name != NULL && t->name != NULL &&
		    strcmp(s->name, t->name) == 0) {
			o = origin_find(ld, &t->name, false);
			check_error(ld, s, "name", &s->name, NULL,
			    "duplicate subscription name %s (first at line %d)",
			    quote(got, s->name, strlen(s->name)),
			    o != NULL ? o->line : 0);
		}
		if (s->stream != NULL && t->stream != NULL &&
		    s->durable != NULL && t->durable != NULL &&
		    strcmp(s->stream, t->stream) == 0 &&
		    strcmp(s->durable, t->durable) == 0) {
			o = origin_find(ld, &t->durable, false);
			check_error(ld, s, "durable", &s->durable, NULL,
			    "stream %s already has a subscription with this "
			    "durable (line %d); each needs its own",
			    quote(got, s->stream, strlen(s->stream)),
			    o != NULL ? o->line : 0);
		}
	}
}

/* Checks what single values cannot show, and resolves derived values. */
static void
config_check(struct loader *ld, struct config *cfg)
{
	const char *host;
	char name[256];

	if (cfg->instance_id != NULL && cfg->instance_id[0] == '\0') {
		host = getenv("HOSTNAME");
		if (host == NULL || host[0] == '\0' || !utf8_valid(host)) {
			if (gethostname(name, sizeof name) == 0) {
				name[sizeof name - 1] = '\0';
				host = name;
			} else
				host = NULL;
		}
		if (host != NULL && utf8_valid(host)) {
			free(cfg->instance_id);
			cfg->instance_id = xstrdup(host);
		} else
			check_error(ld, cfg, "instance_id", &cfg->instance_id,
			    NULL, "empty, and no host name to use instead");
	}
	check_nats(ld, &cfg->nats);
	check_app(ld, &cfg->app);
	check_http(ld, &cfg->http);
	check_advisories(ld, &cfg->advisories);
	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		size_t old = path_push(ld, "subscriptions[%zu]", i);

		/* An entry that was not a map has no origin: skip it. */
		if (origin_find(ld, config_subscription(cfg, i), true) !=
		    NULL) {
			check_subscription(ld, config_subscription(cfg, i));
			check_unique(ld, cfg, i);
			check_filter_needs(
			    ld, cfg, config_subscription(cfg, i));
		}
		path_pop(ld, old);
	}
	if (cfg->dedup.map_size_max < cfg->dedup.map_size) {
		size_t old = path_push(ld, "dedup");

		check_error(ld, &cfg->dedup, "map_size_max",
		    &cfg->dedup.map_size_max, &cfg->dedup.map_size,
		    "expected at least map_size");
		path_pop(ld, old);
	}
}

/* Reports a libyaml error with its position. */
static void
yaml_error(
    struct loader *ld, const yaml_parser_t *p, const char *text, size_t len)
{
	struct where w = { (int)p->problem_mark.line + 1, NULL };
	size_t off = p->problem_offset < len ? p->problem_offset : len;

	if (p->error == YAML_MEMORY_ERROR)
		fatalx("config: out of memory");
	if (p->error == YAML_READER_ERROR) {
		/* The reader gives a byte offset only. */
		w.line = 1;
		for (size_t i = 0; i < off; i++)
			w.line += text[i] == '\n';
		if (p->problem_value != -1)
			loader_error(ld, w,
			    "invalid YAML: %s (0x%x at byte offset %zu)",
			    p->problem, (unsigned)p->problem_value, off);
		else
			loader_error(ld, w,
			    "invalid YAML: %s (at byte offset %zu)", p->problem,
			    off);
	} else if (p->context != NULL)
		loader_error(ld, w,
		    "invalid YAML, column %zu: %s (%s at line %zu)",
		    p->problem_mark.column + 1,
		    p->problem != NULL ? p->problem : "syntax error",
		    p->context, p->context_mark.line + 1);
	else
		loader_error(ld, w, "invalid YAML, column %zu: %s",
		    p->problem_mark.column + 1,
		    p->problem != NULL ? p->problem : "syntax error");
}

/* A first pass over the events: syntax errors, and what the document API
 * would take silently (aliases, deep nesting, several documents). */
static int
yaml_scan(struct loader *ld, const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, docs = 0, before = ld->errors;
	bool done = false;

	if (!yaml_parser_initialize(&p))
		fatalx("config: out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done) {
		struct where w;

		if (!yaml_parser_parse(&p, &ev)) {
			yaml_error(ld, &p, text, len);
			break;
		}
		w = (struct where){ (int)ev.start_mark.line + 1, NULL };
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				loader_error(ld, w,
				    "expected one YAML document, got more");
				done = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			loader_error(ld, w,
			    "YAML aliases are not supported (*%s): write the "
			    "value out",
			    (const char *)ev.data.alias.anchor);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > CONFIG_DEPTH_MAX) {
				loader_error(ld, w,
				    "nested more than %d levels deep",
				    CONFIG_DEPTH_MAX);
				done = true;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return ld->errors > before ? -1 : 0;
}

static int
yaml_load(struct loader *ld, const char *text, size_t len)
{
	yaml_parser_t p;
	int rc = 0;

	if (!yaml_parser_initialize(&p))
		fatalx("config: out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &ld->doc)) {
		yaml_error(ld, &p, text, len);
		rc = -1;
	}
	yaml_parser_delete(&p);
	return rc;
}

/* Reads at most CONFIG_FILE_MAX bytes of |path|, NUL-terminated. */
static char *
file_read(struct loader *ld, const char *path, size_t *lenp)
{
	struct where none = { 0, NULL };
	size_t len = 0, cap = 4096;
	char *text = NULL;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		loader_error(ld, none, "cannot open: %s", strerror(errno));
		return NULL;
	}
	text = xmalloc(cap);
	for (;;) {
		if (len == cap - 1) {
			if (cap > CONFIG_FILE_MAX) {
				loader_error(ld, none,
				    "larger than %d bytes (1 MiB)",
				    CONFIG_FILE_MAX);
				goto fail;
			}
			cap *= 2;
			text = xreallocarray(text, cap, 1);
		}
		n = read(fd, text + len, cap - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			loader_error(
			    ld, none, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONFIG_FILE_MAX) {
		loader_error(
		    ld, none, "larger than %d bytes (1 MiB)", CONFIG_FILE_MAX);
		goto fail;
	}
	close(fd);
	text[len] = '\0';
	*lenp = len;
	return text;
fail:
	close(fd);
	free(text);
	return NULL;
}

struct config *
config_load(const char *path, FILE *err)
{
	struct loader ld = { .file = path, .err = err };
	struct config *cfg = xcalloc(1, sizeof *cfg);
	struct where top = { 1, NULL };
	yaml_node_t *root = NULL;
	bool loaded = false;
	char got[QUOTE_MAX];
	char *text;
	size_t len;

	cfg->path = xstrdup(path);
	if ((text = file_read(&ld, path, &len)) == NULL ||
	    yaml_scan(&ld, text, len) == -1)
		goto done;
	if (yaml_load(&ld, text, len) == -1)
		goto done;
	loaded = true;
	if ((root = yaml_document_get_root_node(&ld.doc)) != NULL) {
		top.line = node_line(root);
		if (node_is_null(root))
			root = NULL;
		else if (root->type != YAML_MAPPING_NODE) {
			loader_error(&ld, top,
			    "expected a map of options at the top, got %s",
			    node_describe(root, got));
			goto done;
		}
	}
	table_fill(&ld, config_options, cfg, root, top);
	table_env(&ld, config_options, cfg);
	config_check(&ld, cfg);
done:
	if (loaded)
		yaml_document_delete(&ld.doc);
	free(ld.origins);
	free(text);
	loader_flush(&ld);
	if (ld.errors > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Frees what the options of |table| own in the struct at |base|. */
static void
table_free(const struct config_option *table, void *base)
{
	for (size_t i = 0; table != NULL && table[i].name != NULL; i++) {
		const struct config_option *opt = &table[i];
		void *field = (char *)base + opt->offset;
		struct config_tables *t = field;
		struct config_filters *fl = field;

		switch (opt->type) {
		case CONFIG_STRING:
			free(*(char **)field);
			break;
		case CONFIG_STRINGS:
		case CONFIG_DURATIONS:
			list_reset(opt, field, 0);
			break;
		case CONFIG_TABLE:
			table_free(opt->sub, field);
			break;
		case CONFIG_TABLES:
			for (size_t j = 0; j < t->n; j++)
				table_free(
				    opt->sub, (char *)t->v + j * opt->sub_size);
			free(t->v);
			break;
		case CONFIG_FILTERS:
			for (size_t j = 0; j < fl->n; j++) {
				if (fl->v[j].ops != NULL)
					table_free(fl->v[j].ops->options,
					    fl->v[j].options);
				free(fl->v[j].options);
			}
			free(fl->v);
			break;
		default:
			break;
		}
	}
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	table_free(config_options, cfg);
	free(cfg->path);
	free(cfg);
}

struct config_subscription *
config_subscription(const struct config *cfg, size_t i)
{
	return (struct config_subscription *)cfg->subscriptions.v + i;
}

/* Whether code point |cp| must be escaped in a double-quoted scalar:
 * what libyaml does not read as printable, or reads as a line break. */
static bool
yaml_escaped(uint32_t cp)
{
	return cp < 0x20 || cp == '"' || cp == '\\' ||
	    (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
	    cp == 0xfeff || cp == 0xfffe || cp == 0xffff;
}

/* Writes |s| as a double-quoted YAML scalar that reads back the same. */
static void
print_string(FILE *f, const char *s)
{
	size_t n = strlen(s), len;
	uint32_t cp;

	fputc('"', f);
	for (; n > 0; s += len, n -= len) {
		if ((len = utf8_decode((const unsigned char *)s, n, &cp)) ==
		    0) {
			cp = (unsigned char)*s;
			len = 1;
		}
		if (!yaml_escaped(cp))
			fwrite(s, 1, len, f);
		else if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (char)cp);
		else if (cp == '\n')
			fputs("\\n", f);
		else if (cp == '\t')
			fputs("\\t", f);
		else if (cp <= 0xff)
			fprintf(f, "\\x%02x", (unsigned)cp);
		else
			fprintf(f, "\\u%04x", (unsigned)cp);
	}
	fputc('"', f);
}

static void
print_scalar(FILE *f, const struct config_option *opt, enum config_type type,
    const void *field)
{
	char buf[32];

	switch (type) {
	case CONFIG_STRING:
		if (*(char *const *)field == NULL)
			fputs("~", f);
		else if (opt->secret)
			fputs("\"***\"", f);
		else
			print_string(f, *(char *const *)field);
		break;
	case CONFIG_BOOL:
		fputs(*(const bool *)field ? "true" : "false", f);
		break;
	case CONFIG_INT:
	case CONFIG_DURATION:
	case CONFIG_SIZE:
		fputs(value_format(
			  buf, sizeof buf, type, *(const int64_t *)field),
		    f);
		break;
	case CONFIG_ENUM:
		fputs(opt->choices[*(const int *)field], f);
		break;
	case CONFIG_MODE:
		fprintf(f, "\"%04o\"", (unsigned)*(const int *)field);
		break;
	default:
		break;
	}
}

/* Writes the value of one option after its "key:". */
static void
print_value(
    FILE *f, const struct config_option *opt, const void *field, int indent)
{
	const struct config_strings *sl = field;
	const struct config_durations *dl = field;
	const struct config_tables *t = field;
	const struct config_filters *fl = field;
	size_t n;

	switch (opt->type) {
	case CONFIG_TABLE:
		if (table_len(opt->sub) == 0) {
			fputs(" {}\n", f);
			return;
		}
		fputs("\n", f);
		print_table(f, opt->sub, field, indent + 2, false);
		return;
	case CONFIG_TABLES:
		fputs(t->n == 0 ? " []\n" : "\n", f);
		for (size_t i = 0; i < t->n; i++)
			print_table(f, opt->sub,
			    (const char *)t->v + i * opt->sub_size, indent + 4,
			    true);
		return;
	case CONFIG_FILTERS:
		fputs(fl->n == 0 ? " []\n" : "\n", f);
		for (size_t i = 0; i < fl->n; i++) {
			const struct filter_ops *ops = fl->v[i].ops;

			if (table_len(ops->options) == 0) {
				fprintf(
				    f, "%*s- %s\n", indent + 2, "", ops->name);
				continue;
			}
			fprintf(f, "%*s- %s:\n", indent + 2, "", ops->name);
			print_table(f, ops->options, fl->v[i].options,
			    indent + 6, false);
		}
		return;
	case CONFIG_STRINGS:
	case CONFIG_DURATIONS:
		n = opt->type == CONFIG_STRINGS ? sl->n : dl->n;
		fputs(" [", f);
		for (size_t i = 0; i < n; i++) {
			fputs(i > 0 ? ", " : "", f);
			print_scalar(f, opt, entry_type(opt),
			    opt->type == CONFIG_STRINGS
				? (const void *)&sl->v[i]
				: (const void *)&dl->v[i]);
		}
		fputs("]\n", f);
		return;
	default:
		fputc(' ', f);
		print_scalar(f, opt, opt->type, field);
		fputc('\n', f);
		return;
	}
}

/* Writes the struct at |base| as a block map; |item|: as a list entry. */
static void
print_table(FILE *f, const struct config_option *table, const void *base,
    int indent, bool item)
{
	for (size_t i = 0; table[i].name != NULL; i++) {
		if (item && i == 0)
			fprintf(f, "%*s- %s:", indent - 2, "", table[i].name);
		else
			fprintf(f, "%*s%s:", indent, "", table[i].name);
		print_value(
		    f, &table[i], (const char *)base + table[i].offset, indent);
	}
}

void
config_print(const struct config *cfg, FILE *f)
{
	print_table(f, config_options, cfg, 0, false);
}
