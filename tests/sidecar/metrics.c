/*
 * The metrics registry: exact exposition text for small registries, and a
 * strict parser of the text format 0.0.4 run over a larger one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cmocka.h"
#include "harness/fatal.h"
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

/*
 * A strict reader of the text format 0.0.4 as this registry writes it:
 * every line is a HELP, a TYPE or a sample, with the grammar, escaping,
 * family grouping and histogram structure checked. It stops at the first
 * line that breaks a rule.
 */
struct expo {
	jmp_buf fail;
	char err[256];
	int line;
	char family[128];
	char type[16]; /* "" until the family's TYPE line */
	char families[64][128];
	size_t nfamilies;
	char *series[512]; /* "name{labels}" seen, for duplicates */
	size_t nseries;
	size_t samples;
	/* The histogram series being read: its labels without le. */
	char hkey[512];
	int hstate; /* 0: none, 1: buckets, 2: after _sum, 3: after _count */
	double hle, hcum;
};

static void __attribute__((format(printf, 2, 3), noreturn))
expo_fail(struct expo *e, const char *fmt, ...)
{
	int n = snprintf(e->err, sizeof e->err, "line %d: ", e->line);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err + n, sizeof e->err - (size_t)n, fmt, ap);
	va_end(ap);
	longjmp(e->fail, 1);
}

static bool
expo_name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* Reads [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' for labels) into |out|. */
static const char *
expo_name(struct expo *e, const char *p, bool colon, char *out, size_t cap)
{
	size_t n = 0;

	if (!expo_name_char(*p, true, colon))
		expo_fail(e, "bad name at \"%s\"", p);
	while (expo_name_char(*p, false, colon)) {
		if (n + 1 >= cap)
			expo_fail(e, "name too long");
		out[n++] = *p++;
	}
	out[n] = '\0';
	return p;
}

/* Checks a value: a float in Go's syntax, or with |count| an integer. */
static double
expo_value(struct expo *e, const char *s, bool count)
{
	char *end;
	double v;

	if (count && (*s == '\0' || strspn(s, "0123456789") != strlen(s)))
		expo_fail(e, "count \"%s\" is not an integer", s);
	if (strcmp(s, "+Inf") == 0)
		return INFINITY;
	if (strcmp(s, "-Inf") == 0)
		return -INFINITY;
	if (strcmp(s, "NaN") == 0)
		return NAN;
	/* strtod also reads hex, "inf" and "nan", which are not spelled so
	 * here. */
	if (*s == '\0' || strpbrk(s, "xXpPiInN \t") != NULL)
		expo_fail(e, "bad value \"%s\"", s);
	v = strtod(s, &end);
	if (*end != '\0')
		expo_fail(e, "bad value \"%s\"", s);
	if (fabs(v) < 1e15 && v == (double)(long long)v &&
	    strpbrk(s, ".eE") != NULL)
		expo_fail(
		    e, "integral value \"%s\" not printed as an integer", s);
	return v;
}

/* Ends the histogram series being read, which must be complete. */
static void
expo_end_series(struct expo *e)
{
	if (e->hstate != 0 && e->hstate != 3)
		expo_fail(e, "histogram series {%s} ends incomplete", e->hkey);
	e->hstate = 0;
}

/* Starts family |name| at its HELP or TYPE line. */
static void
expo_family(struct expo *e, const char *name)
{
	expo_end_series(e);
	for (size_t i = 0; i < e->nfamilies; i++) {
		if (strcmp(e->families[i], name) == 0)
			expo_fail(e, "family %s appears twice", name);
	}
	if (e->nfamilies == 64)
		expo_fail(e, "too many families");
	snprintf(
	    e->families[e->nfamilies++], sizeof e->families[0], "%s", name);
	snprintf(e->family, sizeof e->family, "%s", name);
	e->type[0] = '\0';
}

static void
expo_help(struct expo *e, const char *p)
{
	char name[128];

	p = expo_name(e, p, true, name, sizeof name);
	if (*p++ != ' ')
		expo_fail(e, "no space after the HELP name");
	expo_family(e, name);
	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
			expo_fail(e, "bad escape in HELP");
		if (*p == '\\')
			p++;
	}
}

static void
expo_type(struct expo *e, const char *p)
{
	char name[128];
	size_t len;

	p = expo_name(e, p, true, name, sizeof name);
	len = strlen(name);
	if (*p++ != ' ')
		expo_fail(e, "no space after the TYPE name");
	/* After a HELP line, TYPE names the same family. */
	if (strcmp(name, e->family) != 0 || e->type[0] != '\0')
		expo_family(e, name);
	if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 &&
	    strcmp(p, "histogram") != 0)
		expo_fail(e, "unexpected type \"%s\"", p);
	if (strcmp(p, "counter") == 0 &&
	    (len < 6 || strcmp(name + len - 6, "_total") != 0))
		expo_fail(e, "counter %s without _total", name);
	snprintf(e->type, sizeof e->type, "%s", p);
}

/* Reads {name="value",...} into |key| (all but le, as written) and |le|. */
static const char *
expo_labels(struct expo *e, const char *p, char *key, size_t cap, char *le,
    size_t lecap)
{
	char names[16][64];
	size_t nnames = 0, klen = 0;

	key[0] = le[0] = '\0';
	if (*p != '{')
		return p;
	for (p++; *p != '}';) {
		char lname[64], val[256];
		size_t n = 0;

		p = expo_name(e, p, false, lname, sizeof lname);
		for (size_t i = 0; i < nnames; i++) {
			if (strcmp(names[i], lname) == 0)
				expo_fail(e, "label %s twice", lname);
		}
		if (nnames == 16)
			expo_fail(e, "too many labels");
		snprintf(names[nnames++], sizeof names[0], "%s", lname);
		if (p[0] != '=' || p[1] != '"')
			expo_fail(e, "label %s without =\"", lname);
		for (p += 2; *p != '"'; p++) {
			if (*p == '\0')
				expo_fail(e, "unterminated label value");
			if (*p == '\\' && p[1] != '\\' && p[1] != '"' &&
			    p[1] != 'n')
				expo_fail(e, "bad escape in label value");
			if (n + 2 >= sizeof val)
				expo_fail(e, "label value too long");
			if (*p == '\\')
				val[n++] = *p++;
			val[n++] = *p;
		}
		val[n] = '\0';
		p++;
		if (strcmp(lname, "le") == 0)
			snprintf(le, lecap, "%s", val);
		else if ((klen += (size_t)snprintf(key + klen, cap - klen,
			      "%s%s=\"%s\"", klen > 0 ? "," : "", lname,
			      val)) >= cap)
			expo_fail(e, "labels too long");
		if (*p == ',' && p[1] != '}')
			p++;
		else if (*p != '}')
			expo_fail(e, "expected , or } after label %s", lname);
	}
	return p + 1;
}

/* Follows a histogram series: buckets in increasing le with cumulative
 * counts up to +Inf, then _sum, then _count equal to the +Inf bucket. */
static void
expo_histogram(struct expo *e, const char *suffix, const char *key,
    const char *le, const char *value)
{
	if (strcmp(suffix, "_bucket") == 0) {
		double bound, cum = expo_value(e, value, true);

		if (e->hstate == 0 || strcmp(key, e->hkey) != 0) {
			expo_end_series(e);
			snprintf(e->hkey, sizeof e->hkey, "%s", key);
			e->hstate = 1;
			e->hle = -INFINITY;
			e->hcum = 0;
		} else if (e->hstate != 1 || isinf(e->hle))
			expo_fail(e, "bucket after +Inf");
		if (le[0] == '\0')
			expo_fail(e, "bucket without le");
		bound = expo_value(e, le, false);
		if (!(bound > e->hle))
			expo_fail(e, "le=\"%s\" does not increase", le);
		if (cum < e->hcum)
			expo_fail(e, "bucket counts are not cumulative");
		e->hle = bound;
		e->hcum = cum;
		return;
	}
	if (le[0] != '\0')
		expo_fail(e, "le on %s", suffix);
	if (e->hstate == 0 || strcmp(key, e->hkey) != 0)
		expo_fail(e, "%s without buckets", suffix);
	if (strcmp(suffix, "_sum") == 0) {
		if (e->hstate != 1 || !isinf(e->hle))
			expo_fail(e, "_sum before the +Inf bucket");
		expo_value(e, value, false);
		e->hstate = 2;
		return;
	}
	if (e->hstate != 2)
		expo_fail(e, "_count before _sum");
	if (expo_value(e, value, true) != e->hcum)
		expo_fail(e, "_count differs from the +Inf bucket");
	e->hstate = 3;
}

static void
expo_sample(struct expo *e, const char *p)
{
	char name[128], key[512], le[256], full[1024];
	size_t flen = strlen(e->family);
	const char *suffix;

	if (e->type[0] == '\0')
		expo_fail(e, "sample before its family's TYPE");
	p = expo_name(e, p, true, name, sizeof name);
	p = expo_labels(e, p, key, sizeof key, le, sizeof le);
	if (*p++ != ' ')
		expo_fail(e, "expected a space before the value");
	e->samples++;

	if (strncmp(name, e->family, flen) != 0)
		expo_fail(e, "sample %s outside family %s", name, e->family);
	suffix = name + flen;
	snprintf(full, sizeof full, "%s{%s%sle=%s}", name, key,
	    key[0] != '\0' ? "," : "", le);
	for (size_t i = 0; i < e->nseries; i++) {
		if (strcmp(e->series[i], full) == 0)
			expo_fail(e, "series %s twice", full);
	}
	if (e->nseries == 512)
		expo_fail(e, "too many series");
	e->series[e->nseries++] = strdup(full);

	if (strcmp(e->type, "histogram") == 0) {
		if (strcmp(suffix, "_bucket") != 0 &&
		    strcmp(suffix, "_sum") != 0 &&
		    strcmp(suffix, "_count") != 0)
			expo_fail(e, "histogram sample %s", name);
		expo_histogram(e, suffix, key, le, p);
		return;
	}
	if (*suffix != '\0' || le[0] != '\0')
		expo_fail(e, "sample %s in %s %s", name, e->type, e->family);
	if (!(expo_value(e, p, false) >= 0) && strcmp(e->type, "counter") == 0)
		expo_fail(e, "counter value %s", p);
}

/* Reads every line of |text|; leaves through expo_fail() on a problem. */
static void
expo_read(struct expo *e, const char *p)
{
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		char line[1024];

		e->line++;
		if (nl == NULL)
			expo_fail(e, "last line without a newline");
		if ((size_t)(nl - p) >= sizeof line)
			expo_fail(e, "line too long");
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		p = nl + 1;
		if (strncmp(line, "# HELP ", 7) == 0)
			expo_help(e, line + 7);
		else if (strncmp(line, "# TYPE ", 7) == 0)
			expo_type(e, line + 7);
		else if (line[0] == '#' || line[0] == '\0')
			expo_fail(e, "unexpected line \"%s\"", line);
		else
			expo_sample(e, line);
	}
	expo_end_series(e);
}

/*
 * Checks all of |text|. Returns 0 and the number of families and samples,
 * or -1 with the first problem in |err|.
 */
static int
expo_check(const char *text, size_t *families, size_t *samples, char *err,
    size_t errlen)
{
	struct expo *e = calloc(1, sizeof *e);
	int rc;

	assert_non_null(e);
	if (setjmp(e->fail) == 0) {
		expo_read(e, text);
		*families = e->nfamilies;
		*samples = e->samples;
	}
	snprintf(err, errlen, "%s", e->err);
	rc = e->err[0] == '\0' ? 0 : -1;
	for (size_t i = 0; i < e->nseries; i++)
		free(e->series[i]);
	free(e);
	return rc;
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
	if (expo_check(text, &families, &samples, err, sizeof err) != 0)
		fail_msg("%s\nin:\n%s", err, text);
	assert_int_equal(families, 7);
	/* 4 + 4 * 3 + 4 + 1 + 4 * (11 + 3) + (4 + 3) + 4 */
	assert_int_equal(samples, 88);
	free(text);
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

		if (expo_check(
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
		cmocka_unit_test(parser_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
