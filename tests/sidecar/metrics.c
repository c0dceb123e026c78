/*
 * The metrics registry: exact exposition text for small registries, and
 * the strict reader of the text format 0.0.4 (tests/harness/promcheck.c)
 * run over a larger one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cmocka.h"
#include "harness/fatal.h"
#include "harness/promcheck.h"
#include "sidecar/buf.h"
#include "sidecar/metrics.h"

/* The registry's text, NUL-terminated; the caller frees it. */
static char *
render(const struct metrics *ms)
{
	struct buf b = BUF_INIT;
	char *s;

	metrics_write(ms, &b);
	s = calloc(1, buf_used(&b) + 1);
	assert_non_null(s);
	if (buf_used(&b) > 0)
		memcpy(s, buf_head(&b), buf_used(&b));
	buf_free(&b);
	return s;
}

static void
assert_text(const struct metrics *ms, const char *want)
{
	char *got = render(ms);

	assert_string_equal(got, want);
	free(got);
}

static void
small_registry(void **state)
{
	const char *const msg_labels[] = { "subscription", "result", NULL };
	const char *const sub_labels[] = { "subscription", NULL };
	const double bounds[] = { 0.1, 0.25, 1, 2.5 };
	struct metrics *ms = metrics_new();
	struct metric *msgs, *inflight, *app;
	struct metric_series *ack, *retry, *orders;

	msgs = metrics_counter(
	    ms, "sidecar_messages_total", "Messages handled.", msg_labels);
	inflight = metrics_gauge(
	    ms, "sidecar_in_flight", "Deliveries at the app.", NULL);
	app = metrics_histogram(ms, "sidecar_app_seconds", "Time at the app.",
	    sub_labels, bounds, 4);

	ack =
	    metric_series(msgs, (const char *const[]){ "orders", "ack", NULL });
	retry = metric_series(
	    msgs, (const char *const[]){ "orders", "retry", NULL });
	metric_inc(ack);
	metric_inc(ack);
	metric_inc(ack);
	metric_add(retry, 2);
	metric_set(metric_series(inflight, NULL), 7);
	orders = metric_series(app, (const char *const[]){ "orders", NULL });
	/* 0.25 and 1 sit on bucket bounds; 3 is above them all. */
	metric_observe(orders, 0.125);
	metric_observe(orders, 0.25);
	metric_observe(orders, 0.5);
	metric_observe(orders, 1);
	metric_observe(orders, 3);

	assert_text(ms,
	    "# HELP sidecar_messages_total Messages handled.\n"
	    "# TYPE sidecar_messages_total counter\n"
	    "sidecar_messages_total{subscription=\"orders\",result=\"ack\"} 3\n"
	    "sidecar_messages_total{subscription=\"orders\",result=\"retry\"} "
	    "2\n"
	    "# HELP sidecar_in_flight Deliveries at the app.\n"
	    "# TYPE sidecar_in_flight gauge\n"
	    "sidecar_in_flight 7\n"
	    "# HELP sidecar_app_seconds Time at the app.\n"
	    "# TYPE sidecar_app_seconds histogram\n"
	    "sidecar_app_seconds_bucket{subscription=\"orders\",le=\"0.1\"} 0\n"
	    "sidecar_app_seconds_bucket{subscription=\"orders\",le=\"0.25\"} "
	    "2\n"
	    "sidecar_app_seconds_bucket{subscription=\"orders\",le=\"1\"} 4\n"
	    "sidecar_app_seconds_bucket{subscription=\"orders\",le=\"2.5\"} 4\n"
	    "sidecar_app_seconds_bucket{subscription=\"orders\",le=\"+Inf\"} "
	    "5\n"
	    "sidecar_app_seconds_sum{subscription=\"orders\"} 4.875\n"
	    "sidecar_app_seconds_count{subscription=\"orders\"} 5\n");

	assert_true(metric_value(ack) == 3);
	assert_true(metric_value(retry) == 2);
	assert_int_equal(metric_count(orders), 5);
	assert_true(metric_sum(orders) == 4.875);
	assert_true(metric_value(orders) == 4.875);
	metrics_free(ms);
}

static void
histogram_without_labels(void **state)
{
	const double bounds[] = { 1 };
	struct metrics *ms = metrics_new();
	struct metric *h =
	    metrics_histogram(ms, "batch_size", NULL, NULL, bounds, 1);
	struct metric *none =
	    metrics_histogram(ms, "no_buckets", "", NULL, NULL, 0);

	metric_observe(metric_series(h, NULL), 1);
	metric_observe(metric_series(none, NULL), -2);
	/* Without help there is no HELP line. */
	assert_text(ms,
	    "# TYPE batch_size histogram\n"
	    "batch_size_bucket{le=\"1\"} 1\n"
	    "batch_size_bucket{le=\"+Inf\"} 1\n"
	    "batch_size_sum 1\n"
	    "batch_size_count 1\n"
	    "# TYPE no_buckets histogram\n"
	    "no_buckets_bucket{le=\"+Inf\"} 1\n"
	    "no_buckets_sum -2\n"
	    "no_buckets_count 1\n");
	metrics_free(ms);
}

static void
numbers(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "0" },
		{ -3, "-3" },
		{ 1e15, "1000000000000000" },
		{ 9007199254740993.0, "9007199254740992" },
		{ 123456789012345678.0, "123456789012345680" },
		{ 1e21, "1e+21" },
		{ 0.1, "0.1" },
		{ -2.5, "-2.5" },
		{ 1.0 / 3, "0.33333333333333331" },
		{ 1e-7, "1e-07" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	struct metrics *ms = metrics_new();
	struct metric_series *s =
	    metric_series(metrics_gauge(ms, "g", NULL, NULL), NULL);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char want[64];

		metric_set(s, cases[i].v);
		snprintf(
		    want, sizeof want, "# TYPE g gauge\ng %s\n", cases[i].text);
		assert_text(ms, want);
	}
	metrics_free(ms);
}

static void
escaping(void **state)
{
	const char *const labels[] = { "path", NULL };
	struct metrics *ms = metrics_new();
	struct metric *m = metrics_counter(
	    ms, "escapes_total", "Line one\nback\\slash \"quoted\"", labels);

	metric_inc(
	    metric_series(m, (const char *const[]){ "a\"b\\c\nd", NULL }));
	metric_inc(metric_series(m, (const char *const[]){ "", NULL }));
	/* HELP escapes backslash and newline only; label values also the
	 * double quote. */
	assert_text(ms,
	    "# HELP escapes_total Line one\\nback\\\\slash \"quoted\"\n"
	    "# TYPE escapes_total counter\n"
	    "escapes_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"
	    "escapes_total{path=\"\"} 1\n");
	metrics_free(ms);
}

static void
ordering(void **state)
{
	const char *const labels[] = { "k", NULL };
	struct metrics *ms = metrics_new();
	struct metric *b = metrics_gauge(ms, "b", NULL, labels);
	struct metric *empty = metrics_gauge(ms, "empty", NULL, labels);
	struct metric *a = metrics_counter(ms, "a_total", NULL, NULL);

	assert_non_null(empty);
	metric_set(metric_series(b, (const char *const[]){ "z", NULL }), 1);
	metric_set(metric_series(b, (const char *const[]){ "a", NULL }), 2);
	metric_inc(metric_series(a, NULL));
	metric_set(metric_series(b, (const char *const[]){ "m", NULL }), 3);
	/* Registration order, then series creation order; a family with
	 * labels and no series yet is left out. */
	assert_text(ms,
	    "# TYPE b gauge\n"
	    "b{k=\"z\"} 1\n"
	    "b{k=\"a\"} 2\n"
	    "b{k=\"m\"} 3\n"
	    "# TYPE a_total counter\n"
	    "a_total 1\n");
	metrics_free(ms);
}

static void
reregistration(void **state)
{
	const char *const labels[] = { "subscription", NULL };
	const char *const labels_again[] = { "subscription", NULL };
	const double bounds[] = { 1, 2 };
	const double bounds_again[] = { 1, 2 };
	const char *const orders[] = { "orders", NULL };
	struct metrics *ms = metrics_new();
	struct metric *c1, *c2, *h1, *h2;
	struct metric_series *s1, *s2;

	c1 = metrics_counter(ms, "acks_total", "Acks.", labels);
	c2 = metrics_counter(ms, "acks_total", "Other help.", labels_again);
	assert_ptr_equal(c1, c2);
	h1 = metrics_histogram(ms, "lat", "Latency.", labels, bounds, 2);
	h2 = metrics_histogram(
	    ms, "lat", "Latency.", labels_again, bounds_again, 2);
	assert_ptr_equal(h1, h2);

	/* Both registrants share one series per label values. */
	s1 = metric_series(c1, orders);
	s2 = metric_series(c2, (const char *const[]){ "orders", NULL });
	assert_ptr_equal(s1, s2);
	metric_inc(s1);
	metric_inc(s2);
	assert_true(metric_value(s1) == 2);
	assert_ptr_not_equal(
	    metric_series(c1, (const char *const[]){ "payments", NULL }), s1);
	metric_observe(metric_series(h2, orders), 1.5);
	assert_int_equal(metric_count(metric_series(h1, orders)), 1);

	assert_text(ms,
	    "# HELP acks_total Acks.\n"
	    "# TYPE acks_total counter\n"
	    "acks_total{subscription=\"orders\"} 2\n"
	    "acks_total{subscription=\"payments\"} 0\n"
	    "# HELP lat Latency.\n"
	    "# TYPE lat histogram\n"
	    "lat_bucket{subscription=\"orders\",le=\"1\"} 0\n"
	    "lat_bucket{subscription=\"orders\",le=\"2\"} 1\n"
	    "lat_bucket{subscription=\"orders\",le=\"+Inf\"} 1\n"
	    "lat_sum{subscription=\"orders\"} 1.5\n"
	    "lat_count{subscription=\"orders\"} 1\n");
	metrics_free(ms);
}

/* Each misuse the registry refuses, run in a child. */
static const struct misuse {
	const char *what;
	const char *needle;
} misuses[] = {
	{ "counter without _total", "name does not end in _total" },
	{ "name starting with a digit", "invalid metric name \\\"9lives" },
	{ "name with a dash", "invalid metric name \\\"a-b" },
	{ "empty name", "invalid metric name \\\"\\\"" },
	{ "reserved label name", "invalid label name \\\"__name" },
	{ "label name with a colon", "invalid label name \\\"a:b" },
	{ "le in a histogram", "\\\"le\\\" is reserved" },
	{ "label twice", "label k appears twice" },
	{ "unsorted bounds", "strictly increasing" },
	{ "infinite bound", "strictly increasing" },
	{ "another type", "g_total registered again as a different counter" },
	{ "other labels", "g registered again as a different gauge" },
	{ "other bounds", "h registered again as a different histogram" },
	{ "too few label values", "g: 1 label values for 2 labels" },
	{ "label values without labels", "u: 1 label values for 0 labels" },
	{ "counter set", "c_total: set on a counter" },
	{ "counter decreased", "c_total: counter decreased by -1" },
	{ "counter added NaN", "c_total: counter decreased by nan" },
	{ "gauge observed", "gauge: observe on a gauge" },
	{ "histogram incremented", "hist: add on a histogram" },
	{ "count of a counter", "c_total: count on a counter" },
};

static void
misuse_run(void *arg)
{
	const char *const kl[] = { "k", "l", NULL };
	const char *const k[] = { "k", NULL };
	const double bounds[] = { 1, 2 };
	struct metrics *ms = metrics_new();
	struct metric_series *c =
	    metric_series(metrics_counter(ms, "c_total", NULL, NULL), NULL);
	struct metric_series *g =
	    metric_series(metrics_gauge(ms, "gauge", NULL, NULL), NULL);
	struct metric_series *h = metric_series(
	    metrics_histogram(ms, "hist", NULL, NULL, bounds, 2), NULL);

	/* The cases follow misuses[]. */
	switch (*(const size_t *)arg) {
	case 0:
		metrics_counter(ms, "acks", NULL, NULL);
		break;
	case 1:
		metrics_gauge(ms, "9lives", NULL, NULL);
		break;
	case 2:
		metrics_gauge(ms, "a-b", NULL, NULL);
		break;
	case 3:
		metrics_gauge(ms, "", NULL, NULL);
		break;
	case 4:
		metrics_gauge(
		    ms, "g", NULL, (const char *const[]){ "__name", NULL });
		break;
	case 5:
		metrics_gauge(
		    ms, "g", NULL, (const char *const[]){ "a:b", NULL });
		break;
	case 6:
		metrics_histogram(ms, "h", NULL,
		    (const char *const[]){ "le", NULL }, bounds, 2);
		break;
	case 7:
		metrics_gauge(
		    ms, "g", NULL, (const char *const[]){ "k", "k", NULL });
		break;
	case 8:
		metrics_histogram(
		    ms, "h", NULL, NULL, (const double[]){ 2, 1 }, 2);
		break;
	case 9:
		metrics_histogram(
		    ms, "h", NULL, NULL, (const double[]){ 1, INFINITY }, 2);
		break;
	case 10:
		metrics_gauge(ms, "g_total", NULL, NULL);
		metrics_counter(ms, "g_total", NULL, NULL);
		break;
	case 11:
		metrics_gauge(ms, "g", NULL, kl);
		metrics_gauge(ms, "g", NULL, k);
		break;
	case 12:
		metrics_histogram(ms, "h", NULL, NULL, bounds, 2);
		metrics_histogram(ms, "h", NULL, NULL, bounds, 1);
		break;
	case 13:
		metric_series(metrics_gauge(ms, "g", NULL, kl),
		    (const char *const[]){ "x", NULL });
		break;
	case 14:
		metric_series(metrics_gauge(ms, "u", NULL, NULL),
		    (const char *const[]){ "x", NULL });
		break;
	case 15:
		metric_set(c, 1);
		break;
	case 16:
		metric_add(c, -1);
		break;
	case 17:
		metric_add(c, NAN);
		break;
	case 18:
		metric_observe(g, 1);
		break;
	case 19:
		metric_inc(h);
		break;
	case 20:
		metric_count(c);
		break;
	}
	metrics_free(ms);
}

static void
programming_errors(void **state)
{
	size_t n = sizeof misuses / sizeof misuses[0];

	for (size_t i = 0; i < n; i++) {
		if (fatal_expect(misuse_run, &i, misuses[i].needle) != 0)
			fail_msg("%s was not refused", misuses[i].what);
	}
}

static void
parser_accepts_larger_registry(void **state)
{
	const char *const sub[] = { "subscription", NULL };
	const char *const sub_reason[] = { "subscription", "reason", NULL };
	const char *const subs[] = { "orders", "pay\"ments", "back\\slash",
		"new\nline", NULL };
	const char *const reasons[] = { "rejected", "max_attempts",
		"undecodable", NULL };
	const double seconds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
		2.5, 5, 10 };
	const double sizes[] = { 64, 1024, 65536, 1048576 };
	struct metrics *ms = metrics_new();
	struct metric *deliveries, *dead, *inflight, *up, *latency, *size;
	struct metric *odd;
	size_t families = 0, samples = 0;
	char *text, err[256];

	deliveries = metrics_counter(ms, "nats_sidecar_deliveries_total",
	    "Deliveries pulled from JetStream.", sub);
	dead = metrics_counter(ms, "nats_sidecar_dead_letters_total",
	    "Dead letters, by reason.\nSee docs\\metrics.", sub_reason);
	inflight = metrics_gauge(
	    ms, "nats_sidecar_in_flight", "Deliveries at the app.", sub);
	up = metrics_gauge(ms, "nats_sidecar_up", "1 when connected.", NULL);
	latency = metrics_histogram(ms, "nats_sidecar_app_seconds",
	    "Time from delivery to result.", sub, seconds, 11);
	size = metrics_histogram(
	    ms, "nats_sidecar_payload_bytes", "Payload sizes.", NULL, sizes, 4);
	odd = metrics_gauge(ms, "odd:values", "", sub);

	metric_set(metric_series(up, NULL), 1);
	for (size_t i = 0; subs[i] != NULL; i++) {
		const char *const v[] = { subs[i], NULL };
		struct metric_series *l = metric_series(latency, v);

		metric_add(metric_series(deliveries, v), 1000 * (double)i);
		metric_set(metric_series(inflight, v), (double)i - 1.5);
		for (size_t r = 0; reasons[r] != NULL; r++) {
			const char *const vr[] = { subs[i], reasons[r], NULL };

			metric_add(metric_series(dead, vr), (double)(r * i));
		}
		for (int k = 0; k < 40; k++)
			metric_observe(l, 0.001 * k * k * (double)(i + 1));
	}
	for (int k = 0; k < 100; k++)
		metric_observe(metric_series(size, NULL), 1 << (k % 24));
	metric_set(
	    metric_series(odd, (const char *const[]){ "nan", NULL }), NAN);
	metric_set(
	    metric_series(odd, (const char *const[]){ "inf", NULL }), INFINITY);
	metric_set(metric_series(odd, (const char *const[]){ "-inf", NULL }),
	    -INFINITY);
	metric_set(
	    metric_series(odd, (const char *const[]){ "tiny", NULL }), 1e-300);

	text = render(ms);
	if (promcheck(text, &families, &samples, err, sizeof err) != 0)
		fail_msg("%s\nin:\n%s", err, text);
	assert_int_equal(families, 7);
	/* 4 + 4 * 3 + 4 + 1 + 4 * (11 + 3) + (4 + 3) + 4 */
	assert_int_equal(samples, 88);
	free(text);
	metrics_free(ms);
}

/* What a test asserts on a scrape: single samples by their exact series. */
static void
parser_finds_values(void **state)
{
	const char *const sub[] = { "subscription", NULL };
	const double bounds[] = { 1, 2 };
	struct metrics *ms = metrics_new();
	struct metric *d = metrics_counter(
	    ms, "nats_sidecar_deliveries_total", "Deliveries.", sub);
	struct metric *h =
	    metrics_histogram(ms, "lat_seconds", "Latency.", sub, bounds, 2);
	char *text;
	double v = -1;

	metric_add(
	    metric_series(d, (const char *const[]){ "orders", NULL }), 17);
	metric_add(
	    metric_series(d, (const char *const[]){ "ord\"ers", NULL }), 3);
	metric_observe(
	    metric_series(h, (const char *const[]){ "orders", NULL }), 1.5);
	text = render(ms);
	assert_int_equal(promcheck_value(text,
			     "nats_sidecar_deliveries_total{subscription="
			     "\"orders\"}",
			     &v),
	    0);
	assert_true(v == 17);
	assert_int_equal(promcheck_value(text,
			     "nats_sidecar_deliveries_total{subscription="
			     "\"ord\\\"ers\"}",
			     &v),
	    0);
	assert_true(v == 3);
	assert_int_equal(promcheck_value(text,
			     "lat_seconds_bucket{subscription=\"orders\","
			     "le=\"1\"}",
			     &v),
	    0);
	assert_true(v == 0);
	assert_int_equal(promcheck_value(text,
			     "lat_seconds_count{subscription=\"orders\"}", &v),
	    0);
	assert_true(v == 1);
	/* A prefix of a series, or a HELP line's name, is no match. */
	assert_int_equal(
	    promcheck_value(text, "nats_sidecar_deliveries_total", &v), -1);
	assert_int_equal(promcheck_value(text,
			     "nats_sidecar_deliveries_total{subscription="
			     "\"ord\"}",
			     &v),
	    -1);
	free(text);
	metrics_free(ms);
}

/* A real daemon's scrape is larger than any fixed table would allow. */
static void
parser_has_no_fixed_limits(void **state)
{
	const char *const labels[] = { "subscription", "n", NULL };
	struct metrics *ms = metrics_new();
	size_t families = 0, samples = 0, long_len = 5000;
	char *text, *long_value = malloc(long_len + 1), err[256];

	assert_non_null(long_value);
	memset(long_value, 'x', long_len);
	long_value[long_len] = '\0';
	for (int f = 0; f < 100; f++) {
		char name[32];
		struct metric *m;

		snprintf(name, sizeof name, "family_%d", f);
		m = metrics_gauge(ms, name, "One of many.", labels);
		for (int i = 0; i < 10; i++) {
			char n[16];

			snprintf(n, sizeof n, "%d", i);
			metric_set(
			    metric_series(m,
				(const char *const[]){
				    f == 0 ? long_value : "s", n, NULL }),
			    i);
		}
	}
	text = render(ms);
	if (promcheck(text, &families, &samples, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_int_equal(families, 100);
	assert_int_equal(samples, 1000);
	free(text);
	free(long_value);
	metrics_free(ms);
}

/* The reader refuses what breaks the format, so its approval means
 * something. */
static void
parser_rejects(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
		{ "g 1\n", "sample before its family's TYPE" },
		{ "# TYPE g gauge\ng 1", "without a newline" },
		{ "# TYPE g gauge\n\n", "unexpected line" },
		{ "# TYPE g gauge\ng{a=\"x\",a=\"y\"} 1\n", "label a twice" },
		{ "# TYPE g gauge\ng{a=\"\\t\"} 1\n", "bad escape" },
		{ "# TYPE g gauge\ng{a=\"x\"b=\"y\"} 1\n", "expected , or }" },
		{ "# TYPE g gauge\ng 1.0\n", "not printed as an integer" },
		{ "# TYPE g gauge\ng inf\n", "bad value" },
		{ "# TYPE g gauge\ng  1\n", "bad value" },
		{ "# TYPE c counter\nc 1\n", "without _total" },
		{ "# TYPE c_total counter\nc_total -1\n", "counter value" },
		{ "# TYPE g gauge\n# TYPE g gauge\n", "appears twice" },
		{ "# TYPE g gauge\nh 1\n", "outside family" },
		{ "# TYPE g gauge\ng_x 1\n", "sample g_x in gauge" },
		{ "# TYPE g gauge\ng{x=\"1\"} 1\ng{x=\"1\"} 2\n", "twice" },
		{ "# HELP g a\\tb\n", "bad escape in HELP" },
		{ "# TYPE g summary\n", "unexpected type" },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
		  "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		    "not cumulative" },
		{ "# TYPE h histogram\nh_bucket{le=\"2\"} 0\n"
		  "h_bucket{le=\"1\"} 0\n",
		    "does not increase" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
		  "h_count 2\n",
		    "differs from the +Inf bucket" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
		    "_count before _sum" },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\n",
		    "_sum before the +Inf bucket" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n",
		    "ends incomplete" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1.5\n",
		    "not an integer" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t families, samples;
		char err[256] = "";

		if (promcheck(
			bad[i].text, &families, &samples, err, sizeof err) == 0)
			fail_msg("accepted: %s", bad[i].text);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("refused %s\nas \"%s\", not \"%s\"",
			    bad[i].text, err, bad[i].why);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_registry),
		cmocka_unit_test(histogram_without_labels),
		cmocka_unit_test(numbers),
		cmocka_unit_test(escaping),
		cmocka_unit_test(ordering),
		cmocka_unit_test(reregistration),
		cmocka_unit_test(programming_errors),
		cmocka_unit_test(parser_accepts_larger_registry),
		cmocka_unit_test(parser_finds_values),
		cmocka_unit_test(parser_has_no_fixed_limits),
		cmocka_unit_test(parser_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
