/*
 * The backoff filter: how long a failed delivery waits before JetStream
 * brings it back. The delay is indexed by JetStream's own delivery count,
 * so the schedule survives sidecar restarts and moves between pods; the
 * sidecar sends it as a NAK with that delay (never the consumer's own
 * BackOff as well: on nats-server 2.9 the two add up).
 *
 *   filters:
 *     - backoff:
 *         schedule: [1s, 5s, 30s]     # attempt 1, 2, 3 and after
 *     - backoff:
 *         exponential: true           # initial * multiplier^(n-1) <= max
 *         initial: 500ms
 *         multiplier: 3
 *         max: 2m
 *         jitter: 20                  # +-20 %, the same for a message
 *
 * A RETRY from the app with a delay of its own keeps it, up to
 * max_app_delay.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "backoff.h"
#include "config.h"
#include "delivery.h"
#include "filter.h"
#include "xmalloc.h"

#define MS INT64_C(1000000)
#define S (1000 * MS)

struct backoff {
	struct filter base;
	const struct backoff_options *o;
};

static const struct config_option backoff_options_table[] = {
	{ .name = "schedule",
	    .type = CONFIG_DURATIONS,
	    .offset = offsetof(struct backoff_options, schedule),
	    .def = "1s, 5s, 30s",
	    .min = MS,
	    .max = 24 * 3600 * S,
	    .help = "delay after each failed attempt; the last repeats" },
	{ .name = "exponential",
	    .type = CONFIG_BOOL,
	    .offset = offsetof(struct backoff_options, exponential),
	    .def = "false",
	    .help = "use initial * multiplier^(attempt-1) instead" },
	{ .name = "initial",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct backoff_options, initial),
	    .def = "1s",
	    .min = MS,
	    .max = 24 * 3600 * S,
	    .help = "exponential: the first delay" },
	{ .name = "multiplier",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct backoff_options, multiplier),
	    .def = "2",
	    .min = 1,
	    .max = 100,
	    .help = "exponential: growth per attempt" },
	{ .name = "max",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct backoff_options, max),
	    .def = "5m",
	    .min = MS,
	    .max = 24 * 3600 * S,
	    .help = "exponential: the longest delay" },
	{ .name = "jitter",
	    .type = CONFIG_INT,
	    .offset = offsetof(struct backoff_options, jitter),
	    .def = "0",
	    .min = 0,
	    .max = 100,
	    .help = "percent by which a delay may vary, so retries of many "
		    "messages do not arrive together" },
	{ .name = "max_app_delay",
	    .type = CONFIG_DURATION,
	    .offset = offsetof(struct backoff_options, max_app_delay),
	    .def = "10m",
	    .min = MS,
	    .max = 7 * 24 * 3600 * S,
	    .help = "cap on the delay an app asks for in its RETRY" },
	{ .name = NULL },
};

static int
backoff_validate(const void *options, char **err)
{
	const struct backoff_options *o = options;

	if (o->exponential && o->initial > o->max) {
		*err = xstrdup("initial is longer than max");
		return -1;
	}
	if (!o->exponential && o->schedule.n == 0) {
		*err = xstrdup("schedule is empty");
		return -1;
	}
	return 0;
}

/* A stable pseudo-random number for a message's attempt: the same after
 * a restart, different between messages (splitmix64). */
static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int64_t
backoff_delay(
    const struct backoff_options *o, uint64_t attempt, uint64_t stream_seq)
{
	int64_t d;

	if (attempt < 1)
		attempt = 1;
	if (!o->exponential) {
		size_t i = attempt - 1 < o->schedule.n ? attempt - 1
						       : o->schedule.n - 1;

		d = o->schedule.v[i];
	} else {
		d = o->initial;
		for (uint64_t i = 1; i < attempt && d < o->max; i++)
			d = d > o->max / o->multiplier ? o->max
						       : d * o->multiplier;
		if (d > o->max)
			d = o->max;
	}
	if (o->jitter > 0) {
		/* Uniform in [-jitter %, +jitter %] of d. */
		int64_t span = d / 100 * o->jitter;
		uint64_t r = mix(stream_seq * 1000003 + attempt);

		if (span > 0)
			d += (int64_t)(r % (uint64_t)(2 * span + 1)) - span;
	}
	return d > MS ? d : MS;
}

static struct filter *
backoff_init(const void *options, const struct filter_host *host)
{
	struct backoff *b = xcalloc(1, sizeof *b);

	b->o = options;
	return &b->base;
}

static void
backoff_free(struct filter *f)
{
	free(f);
}

static void
backoff_on_result(
    struct filter *f, struct delivery *d, struct filter_verdict *v, int64_t now)
{
	const struct backoff_options *o = ((struct backoff *)f)->o;

	if (v->action != FILTER_RETRY)
		return;
	if (v->delay_ns > 0)
		v->delay_ns = v->delay_ns < o->max_app_delay ? v->delay_ns
							     : o->max_app_delay;
	else
		v->delay_ns =
		    backoff_delay(o, d->meta.num_delivered, d->meta.stream_seq);
}

const struct filter_ops backoff_filter = {
	.name = "backoff",
	.options = backoff_options_table,
	.options_size = sizeof(struct backoff_options),
	.validate = backoff_validate,
	.init = backoff_init,
	.free = backoff_free,
	.on_result = backoff_on_result,
};
