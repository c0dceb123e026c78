/*
 * The filter interface. A filter is a stage of a subscription's chain
 * (dedup, translate, backoff, dead-letter, ...): a const ops table whose
 * hooks are all optional, plus a per-subscription instance that embeds
 * struct filter first.
 *
 * Filters do no I/O and read no clock: they get `now` (CLOCK_MONOTONIC,
 * ns) and return verdicts; the chain runner (chain.h) and the core carry
 * the verdicts out as acks, delayed NAKs, dead letters and app deliveries.
 * That keeps every filter testable alone.
 */
#ifndef FILTERS_FILTER_H
#define FILTERS_FILTER_H

#include <stddef.h>
#include <stdint.h>

struct config_option;
struct config_subscription;
struct delivery;
struct metrics;
struct publication;
struct schema;
struct store;

enum filter_action {
	FILTER_DELIVER, /* go on: next filter, then the app */
	FILTER_ACK, /* ack to JetStream without (re)delivering */
	FILTER_HOLD, /* park it; the filter releases it later */
	FILTER_RETRY, /* NAK with delay_ns */
	FILTER_DEAD_LETTER, /* dead-letter with reason and text */
};

/* Why a message is dead-lettered: a fixed set, used as a metric label. */
enum filter_reason {
	FILTER_REASON_NONE,
	FILTER_REASON_REJECTED, /* the app said REJECT */
	FILTER_REASON_MAX_ATTEMPTS, /* retries exhausted */
	FILTER_REASON_UNDECODABLE, /* payload does not decode */
	FILTER_REASON_UNTRANSLATABLE, /* no mapping to the wanted version */
	FILTER_REASON_TOO_LARGE, /* cannot fit the app's frame limit */
	FILTER_REASON_NO_KEY, /* no dedup key, and so configured */
	FILTER_REASON_MAX_DELIVERIES, /* the server gave up (advisory) */
};

struct filter_verdict {
	enum filter_action action;
	int64_t delay_ns; /* FILTER_RETRY */
	enum filter_reason reason; /* FILTER_DEAD_LETTER; retry reason */
	/* Human text for logs and dead letters; static, or owned by the
	 * delivery (delivery_set_text()). */
	const char *text;
};

/* One message to publish: a copy a filter made of the app's publish. */
struct publication_copy {
	char *subject;
	char *message_id; /* "" for none */
	void *payload;
	size_t len;
	/* A header of the app's that this copy carries with another value
	 * (its schema version), or NULL; not freed. */
	const char *header;
	const char *header_value;
};

/* A publish from an app on its way to NATS, as on_publish sees it. */
struct publication {
	const char *subject;
	const char *message_id; /* "" when none */
	const char *content_type; /* its Content-Type header, or NULL */
	const void *payload;
	size_t len;
	/* Set by a filter: send these instead of the app's message, with
	 * the app's headers; the core frees them, and |text|. */
	struct publication_copy *copies;
	size_t n_copies;
	char *text; /* behind a refusal's verdict.text */
};

/* What a filter instance may call back into; valid for its lifetime. */
struct filter_host {
	/*
	 * Ends a hold: the chain goes on from the filter after the one that
	 * held, with |verdict| (FILTER_DELIVER to continue). Call it from a
	 * hook (typically on_turn), never from another thread.
	 */
	void (*release)(
	    void *arg, struct delivery *, struct filter_verdict verdict);
	void *arg;
	struct metrics *metrics;
	const char *subscription;
	/* The whole subscription, for settings such as max_attempts. */
	const struct config_subscription *config;
	/* The dedup store (sidecar/store.h), or NULL when none is open. */
	struct store *store;
	/* Added to `now` gives wall-clock ns, for what outlives the process
	 * (a dedup entry's expiry). */
	int64_t wall_offset;
	/* The loaded event schemas, or NULL when none are configured. */
	const struct schema *schemas;
};

/* What the core lends every filter of a chain; see struct filter_host. */
struct filter_services {
	struct metrics *metrics;
	struct store *store;
	int64_t wall_offset;
	const struct schema *schemas;
};

struct filter {
	const struct filter_ops *ops;
	const struct filter_host *host;
};

struct filter_ops {
	const char *name;
	/* Options this filter takes, NULL-terminated by name; the config
	 * module fills an options struct of options_size bytes. */
	const struct config_option *options;
	size_t options_size;

	/*
	 * Checks combinations the table cannot express. Returns 0, or -1
	 * with an allocated message in |*err|, which the caller frees.
	 */
	int (*validate)(const void *options, char **err);
	/* Builds the instance for one subscription; NULL on failure (after
	 * logging why). */
	struct filter *(*init)(const void *options, const struct filter_host *);
	void (*free)(struct filter *);

	/* Inbound, before the app: DELIVER, ACK, HOLD, RETRY or DEAD_LETTER. */
	struct filter_verdict (*on_delivery)(
	    struct filter *, struct delivery *, int64_t now);
	/*
	 * After the app answered (or did not in time): |v| holds the outcome
	 * so far (ACK, RETRY or DEAD_LETTER); the filter may change it or
	 * answer HOLD. Filters see results in chain order.
	 */
	void (*on_result)(struct filter *, struct delivery *,
	    struct filter_verdict *v, int64_t now);
	/* A publish from the app on its way to NATS: DELIVER (send it), or
	 * DEAD_LETTER to refuse it with text. */
	struct filter_verdict (*on_publish)(
	    struct filter *, struct publication *, int64_t now);
	/* Once per loop turn: batched work such as a group commit. */
	void (*on_turn)(struct filter *, int64_t now);
	/* The delivery leaves the sidecar (acked, NAKed or dropped at
	 * shutdown): forget anything kept about it. */
	void (*on_done)(struct filter *, struct delivery *);
};

/* Finds a filter by name in the registry; NULL if there is none. */
const struct filter_ops *filter_lookup(const char *name);
/* The registry, NULL-terminated. */
extern const struct filter_ops *const filter_registry[];

/* Names of filter_reason values, for headers and metric labels. */
const char *filter_reason_name(enum filter_reason);

#endif
