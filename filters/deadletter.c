/*
 * The dead-letter filter. It turns a failure of the app on a delivery
 * whose JetStream delivery count reached the subscription's max_attempts
 * into a dead letter, keeping the reason the app gave for its last RETRY.
 * A delivery that comes back for any other cause (shutdown, a lost app, a
 * failed dead-letter publish) is tried again, never dead-lettered for it,
 * because only a failure reported by the app reaches on_result as RETRY.
 *
 *   filters:
 *     - backoff: {schedule: [1s, 5s, 30s]}
 *     - deadletter:
 *         subject: dlq.{subject}
 *         stream: DLQ                # created if missing
 *
 * Its options also tell the core where dead letters go (sidecar/dlq.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "deadletter.h"
#include "delivery.h"
#include "filter.h"
#include "xmalloc.h"

#define S INT64_C(1000000000)

struct deadletter {
	struct filter base;
};

static const struct config_option deadletter_options_table[] = {
	{ .name = "subject",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct deadletter_options, subject),
	    .def = "dlq.{subject}",
	    .help = "where dead letters go: {subject} {stream} {consumer} "
		    "{subscription} are replaced" },
	{ .name = "stream",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct deadletter_options, stream),
	    .optional = true,
	    .help = "a stream to create for the dead letters if missing" },
	{ .name = "max_age",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct deadletter_options, max_age),
	    .def = "30d",
	    .min = S,
	    .max = 3650 * 24 * 3600 * S,
	    .help = "how long the created stream keeps a dead letter" },
	{ .name = "duplicate_window",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct deadletter_options, duplicate_window),
	    .def = "10m",
	    .min = S,
	    .max = 7 * 24 * 3600 * S,
	    .help = "the created stream's window for catching a second copy "
		    "of the same dead letter" },
	{ .name = "header_prefix",
	    .type = CONFIG_STRING,
	    .offset = offsetof(struct deadletter_options, header_prefix),
	    .def = "Nats-Sidecar-Original-",
	    .help = "the original headers are copied under this prefix" },
	{ .name = "delete_original",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct deadletter_options, delete_original),
	    .def = "false",
	    .help = "after a MAX_DELIVERIES advisory, delete the original "
		    "from its stream once copied (for work-queue streams, "
		    "where it would stay)" },
	{ .name = NULL },
};

static int
deadletter_validate(const void *options, char **err)
{
	const struct deadletter_options *o = options;

	if (o->subject[0] == '\0' || strchr(o->subject, ' ') != NULL ||
	    strchr(o->subject, '*') != NULL ||
	    strchr(o->subject, '>') != NULL) {
		*err = xasprintf("subject: expected a subject template such as "
				 "dlq.{subject}, got \"%s\"",
		    o->subject);
		return -1;
	}
	if (strpbrk(o->header_prefix, " :\r\n") != NULL) {
		*err = xasprintf("header_prefix: not a header name prefix: "
				 "\"%s\"",
		    o->header_prefix);
		return -1;
	}
	return 0;
}

int
deadletter_subject(const struct deadletter_options *o, const struct delivery *d,
    const char *subscription, char *buf, size_t cap)
{
	return deadletter_subject_for(o, delivery_subject(d), d->meta.stream,
	    d->meta.consumer, subscription, buf, cap);
}

int
deadletter_subject_for(const struct deadletter_options *o, const char *subject,
    const char *stream, const char *consumer, const char *subscription,
    char *buf, size_t cap)
{
	static const char *const names[] = { "{subject}", "{stream}",
		"{consumer}", "{subscription}" };
	const char *values[] = { subject, stream, consumer, subscription };
	const char *t = o->subject;
	size_t n = 0;

	while (*t != '\0') {
		const char *v = NULL;
		size_t skip = 1, len;

		for (size_t i = 0; i < 4 && v == NULL; i++) {
			if (strncmp(t, names[i], strlen(names[i])) == 0) {
				v = values[i];
				skip = strlen(names[i]);
			}
		}
		len = v != NULL ? strlen(v) : 1;
		if (n + len >= cap)
			return -1;
		memcpy(buf + n, v != NULL ? v : t, len);
		n += len;
		t += skip;
	}
	buf[n] = '\0';
	/* No empty tokens: the subject must be publishable. */
	if (n == 0 || buf[0] == '.' || buf[n - 1] == '.' ||
	    strstr(buf, "..") != NULL)
		return -1;
	return 0;
}

void
deadletter_stream_subjects(
    const struct deadletter_options *o, char *buf, size_t cap)
{
	const char *brace = strchr(o->subject, '{');
	size_t len =
	    brace != NULL ? (size_t)(brace - o->subject) : strlen(o->subject);

	/* "dlq.{subject}" -> "dlq.>"; a template without a variable is a
	 * subject of its own. */
	if (brace != NULL && len > 0 && o->subject[len - 1] == '.')
		snprintf(buf, cap, "%.*s>", (int)len, o->subject);
	else if (brace != NULL)
		snprintf(buf, cap, ">");
	else
		snprintf(buf, cap, "%s", o->subject);
}

static struct filter *
deadletter_init(const void *options, const struct filter_host *host)
{
	struct deadletter *f = xcalloc(1, sizeof *f);

	return &f->base;
}

static void
deadletter_free(struct filter *f)
{
	free(f);
}

static void
deadletter_on_result(
    struct filter *f, struct delivery *d, struct filter_verdict *v, int64_t now)
{
	if (v->action != FILTER_RETRY ||
	    (int64_t)d->meta.num_delivered < f->host->config->max_attempts)
		return;
	v->action = FILTER_DEAD_LETTER;
	v->reason = FILTER_REASON_MAX_ATTEMPTS;
	v->delay_ns = 0;
}

const struct filter_ops deadletter_filter = {
	.name = "deadletter",
	.options = deadletter_options_table,
	.options_size = sizeof(struct deadletter_options),
	.validate = deadletter_validate,
	.init = deadletter_init,
	.free = deadletter_free,
	.on_result = deadletter_on_result,
};
