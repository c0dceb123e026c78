/*
 * Configuration: a YAML file plus environment overrides for what
 * Kubernetes injects, validated completely before the loop starts.
 *
 * Every option is described once, in a table of struct config_option
 * (name, type, offset, default as text, range, help, environment
 * variable), in the style of nginx's and redis's config tables. The same
 * tables fill the structs below, produce --check-config's output and are
 * what docs/configuration.md documents. Filters bring their own tables
 * (struct filter_ops.options), so a new filter adds options without
 * touching this module.
 */
#ifndef SIDECAR_CONFIG_H
#define SIDECAR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct filter_ops;

enum config_type {
	CONFIG_STRING, /* char *, owned; NULL when unset without default */
	CONFIG_BOOL, /* bool */
	CONFIG_INT, /* int64_t, checked against min/max */
	CONFIG_DURATION, /* int64_t ns; "250ms", "5s", "2m", "1h", "1d" or 0 */
	CONFIG_SIZE, /* int64_t bytes; "512", "64KiB", "16MiB", "1GiB" */
	CONFIG_ENUM, /* int, the index in choices */
	CONFIG_MODE, /* int, an octal file mode such as "0660" */
	CONFIG_STRINGS, /* struct config_strings */
	CONFIG_DURATIONS, /* struct config_durations */
	CONFIG_TABLE, /* a nested struct at offset, described by sub */
	CONFIG_TABLES, /* struct config_tables of sub_size elements */
	CONFIG_FILTERS, /* struct config_filters: [ {name: {options}} ] */
};

struct config_option {
	const char *name;
	enum config_type type;
	size_t offset;
	/* Default written as it would be in YAML; NULL: required (or, for
	 * strings and lists, empty when `optional` is set). */
	const char *def;
	bool optional;
	/* Inclusive range for INT, DURATION, SIZE and DURATIONS' entries;
	 * both 0: any integer, or any duration or size >= 0. */
	int64_t min, max;
	const char *const *choices; /* ENUM: NULL-terminated */
	const struct config_option *sub; /* TABLE, TABLES */
	size_t sub_size; /* TABLES: element size */
	const char *env; /* environment variable that overrides it, or NULL */
	bool secret; /* STRING: printed as "***" */
	const char *help;
};

struct config_strings {
	char **v;
	size_t n;
};

struct config_durations {
	int64_t *v;
	size_t n;
};

struct config_tables {
	void *v;
	size_t n;
};

/* One entry of a subscription's chain: the filter and its own options. */
struct config_filter {
	const struct filter_ops *ops;
	void *options; /* filled from ops->options, ops->options_size bytes */
	int line;
};

struct config_filters {
	struct config_filter *v;
	size_t n;
};

enum consumer_policy {
	CONSUMER_POLICY_CREATE, /* create if absent, bind as it is */
	CONSUMER_POLICY_VERIFY, /* refuse to start on any difference */
	CONSUMER_POLICY_UPDATE, /* update what the server allows */
};

enum deliver_policy {
	DELIVER_POLICY_ALL,
	DELIVER_POLICY_NEW,
	DELIVER_POLICY_LAST,
};

struct config_tls {
	char *ca_file;
	char *cert_file;
	char *key_file;
	char *server_name;
};

/* At most one of creds_file, nkey_seed_file, user (+password), token. */
struct config_auth {
	char *creds_file;
	char *nkey_seed_file;
	char *user;
	char *password;
	char *token;
};

struct config_nats {
	struct config_strings urls;
	char *name;
	int64_t connect_timeout;
	int64_t reconnect_wait; /* first reconnect delay */
	int64_t reconnect_wait_max; /* the delay doubles up to this */
	int64_t reconnect_jitter;
	int64_t ping_interval;
	int64_t publish_timeout; /* a publish without PubAck by then fails */
	int64_t publish_max_pending; /* publishes awaiting a PubAck */
	struct config_tls tls;
	struct config_auth auth;
};

struct config_app {
	char *socket;
	int socket_mode;
	int64_t max_frame_size;
	int64_t heartbeat_interval;
	int64_t dead_after; /* an app silent this long is disconnected */
};

struct config_log {
	int level; /* enum log_level */
	bool payloads;
};

/* The HTTP server of /metrics and the probes; see docs/observability.md. */
struct config_http {
	char *listen; /* "ADDRESS:PORT", or "off": no server */
	int64_t max_connections;
	int64_t request_timeout; /* the request head must arrive by then */
	int64_t
	    response_timeout; /* the client must take the response by then */
	/* Which checks /readyz counts; it reports every failing one. */
	bool ready_requires_nats; /* connected, every subscription bound */
	bool ready_requires_app; /* at least one app connected */
	bool ready_requires_store; /* the dedup store writable */
};

/* Trace context for deliveries that arrive without any. */
struct config_trace {
	bool start; /* give such a delivery a new traceparent */
	bool sampled; /* the sampled flag of the ones started */
};

/* Metrics the sidecar has to ask JetStream for. */
struct config_metrics {
	int64_t consumer_poll_interval; /* CONSUMER.INFO; 0: never */
};

struct config_subscription {
	char *name;
	char *stream;
	char *durable;
	char *filter_subject;
	int consumer_policy; /* enum consumer_policy */
	int deliver_policy; /* enum deliver_policy */
	int64_t ack_wait;
	int64_t max_attempts;
	int64_t max_deliver; /* -1: unlimited; else >= max_attempts + 2 */
	int64_t max_in_flight;
	int64_t max_in_flight_bytes;
	int64_t pull_expires;
	int64_t pull_heartbeat;
	int64_t processing_timeout;
	int64_t processing_timeout_max;
	int64_t retry_delay; /* RETRY without a delay of its own */
	int64_t max_retry_delay; /* cap on any delay; REJECT's NAK delay */
	char *content_type;
	char *serial_key; /* "header:NAME" for per-key serial delivery */
	char *message_type; /* full protobuf name, or NULL */
	struct config_filters filters;
	/* The consumer's max_ack_pending, >= max_in_flight; 0 in the file
	 * (the default) is resolved at load to 4 * max_in_flight. */
	int64_t max_ack_pending;
};

/* The dedup store shared by every subscription's dedup filter. */
struct config_dedup {
	char *path; /* the store's directory, or NULL: no store */
	int durability; /* 0: os, 1: fsync */
	int64_t map_size;
	int64_t map_size_max;
	int64_t sweep_batch;
};

/* Catching what the server gives up on: MAX_DELIVERIES advisories of
 * every subscription with a dead-letter filter (sidecar/advisory.h). */
/* The longest capture stream name asked for (nats-server's limit). */
#define ADVISORY_STREAM_NAME_MAX 255

struct config_advisories {
	bool enabled;
	char *stream_prefix; /* capture streams: PREFIX_STREAM_DURABLE */
	int64_t replicas; /* of a created capture stream */
	char *durable; /* their consumer, shared by every pod */
	int64_t max_age; /* how long the stream keeps an advisory */
	int64_t retry_delay; /* an advisory that failed comes back after */
};

struct config {
	char *path; /* the file it was read from */
	char *instance_id;
	int64_t shutdown_grace;
	struct config_strings schemas; /* descriptor set files */
	struct config_nats nats;
	struct config_app app;
	struct config_log log;
	struct config_http http;
	struct config_tables subscriptions; /* struct config_subscription */
	struct config_dedup dedup;
	struct config_trace trace;
	struct config_metrics metrics;
	struct config_advisories advisories;
};

/*
 * Reads |path| (at most 1 MiB), applies the environment overrides and
 * validates everything. Returns the configuration, or NULL after writing
 * one line per problem to |err|, in line order, as "FILE:LINE: KEY.PATH:
 * what was expected" ("env VAR: KEY.PATH: ..." for an environment
 * variable). The caller frees the result with config_free().
 */
struct config *config_load(const char *path, FILE *err);
void config_free(struct config *);

/* Writes the effective configuration as YAML, with secrets masked. */
void config_print(const struct config *, FILE *);

/* The subscription at |i|; i < cfg->subscriptions.n. */
struct config_subscription *config_subscription(
    const struct config *, size_t i);

#endif
