#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metric_series {
	struct metric *family;
	char **values; /* one per label name */
	double value; /* counter or gauge value; histogram sum */
	uint64_t count; /* histogram observations */
	uint64_t *buckets; /* histogram: per bucket, not cumulative */
};

struct metric {
	enum metric_type type;
	char *name;
	char *help;
	char **labels;
	size_t nlabels;
	double *bounds;
	size_t nbounds;
	struct metric_series **series; /* in creation order */
	size_t nseries;
};

struct metrics {
	struct metric **families; /* in registration order */
	size_t nfamilies;
};

/* Longest number metrics_format() writes: %.0f of a value below 1e21, or
 * %.17g, with sign and NUL. */
#define METRICS_NUMBER_MAX 32

static const char *const metric_type_names[] = {
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
	[METRIC_HISTOGRAM] = "histogram",
};

struct metrics *
metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

static void
metric_series_free(struct metric_series *s, size_t nlabels)
{
	for (size_t i = 0; i < nlabels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->buckets);
	free(s);
}

static void
metric_free(struct metric *m)
{
	for (size_t i = 0; i < m->nseries; i++)
		metric_series_free(m->series[i], m->nlabels);
	free(m->series);
	for (size_t i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	free(m->labels);
	free(m->bounds);
	free(m->name);
	free(m->help);
	free(m);
}

void
metrics_free(struct metrics *ms)
{
	if (ms == NULL)
		return;
	for (size_t i = 0; i < ms->nfamilies; i++)
		metric_free(ms->families[i]);
	free(ms->families);
	free(ms);
}

/* Checks [a-zA-Z_:][a-zA-Z0-9_:]*, or without ':' for label names. */
static bool
metrics_valid_name(const char *s, bool colon)
{
	if (*s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || *s == '_' ||
			(colon && *s == ':')))
			return false;
	}
	return true;
}

/* Counts a NULL-terminated list; NULL counts as empty. */
static size_t
metrics_count_list(const char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

/* Ends the process if |name|, |labels| or |bounds| cannot make a family. */
static void
metrics_check(enum metric_type type, const char *name,
    const char *const *labels, size_t nlabels, const double *bounds,
    size_t nbounds)
{
	size_t len = strlen(name);

	if (!metrics_valid_name(name, true))
		fatalx("metrics: invalid metric name \"%s\"", name);
	if (type == METRIC_COUNTER &&
	    (len < 6 || strcmp(name + len - 6, "_total") != 0))
		fatalx(
		    "metrics: counter %s: name does not end in _total", name);
	for (size_t i = 0; i < nlabels; i++) {
		if (!metrics_valid_name(labels[i], false) ||
		    strncmp(labels[i], "__", 2) == 0)
			fatalx("metrics: %s: invalid label name \"%s\"", name,
			    labels[i]);
		if (type == METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)
			fatalx("metrics: %s: \"le\" is reserved in histograms",
			    name);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(labels[i], labels[j]) == 0)
				fatalx("metrics: %s: label %s appears twice",
				    name, labels[i]);
		}
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) ||
		    (i > 0 && bounds[i] <= bounds[i - 1]))
			fatalx("metrics: %s: bucket bounds must be finite and "
			       "strictly increasing",
			    name);
	}
}

/* Whether an existing family has exactly this shape. */
static bool
metric_same(const struct metric *m, enum metric_type type,
    const char *const *labels, size_t nlabels, const double *bounds,
    size_t nbounds)
{
	if (m->type != type || m->nlabels != nlabels || m->nbounds != nbounds)
		return false;
	for (size_t i = 0; i < nlabels; i++) {
		if (strcmp(m->labels[i], labels[i]) != 0)
			return false;
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (m->bounds[i] != bounds[i])
			return false;
	}
	return true;
}

static struct metric_series *
metric_series_new(struct metric *m, const char *const *values)
{
	struct metric_series *s = xcalloc(1, sizeof *s);

	s->family = m;
	s->values = xcalloc(m->nlabels, sizeof *s->values);
	for (size_t i = 0; i < m->nlabels; i++)
		s->values[i] = xstrdup(values[i]);
	if (m->type == METRIC_HISTOGRAM)
		s->buckets = xcalloc(m->nbounds, sizeof *s->buckets);
	m->series = xreallocarray(m->series, m->nseries + 1, sizeof *m->series);
	m->series[m->nseries++] = s;
	return s;
}

/* Registers a family, or returns the existing one of the same shape. */
static struct metric *
metrics_register(struct metrics *ms, enum metric_type type, const char *name,
    const char *help, const char *const *labels, const double *bounds,
    size_t nbounds)
{
	size_t nlabels = metrics_count_list(labels);
	struct metric *m;

	metrics_check(type, name, labels, nlabels, bounds, nbounds);
	for (size_t i = 0; i < ms->nfamilies; i++) {
		m = ms->families[i];
		if (strcmp(m->name, name) != 0)
			continue;
		if (!metric_same(m, type, labels, nlabels, bounds, nbounds))
			fatalx("metrics: %s registered again as a different "
			       "%s",
			    name, metric_type_names[type]);
		return m;
	}

	m = xcalloc(1, sizeof *m);
	m->type = type;
	m->name = xstrdup(name);
	m->help = xstrdup(help != NULL ? help : "");
	m->labels = xcalloc(nlabels, sizeof *m->labels);
	for (size_t i = 0; i < nlabels; i++)
		m->labels[i] = xstrdup(labels[i]);
	m->nlabels = nlabels;
	if (nbounds > 0)
		m->bounds = xmemdup(bounds, nbounds * sizeof *bounds);
	m->nbounds = nbounds;
	ms->families = xreallocarray(
	    ms->families, ms->nfamilies + 1, sizeof *ms->families);
	ms->families[ms->nfamilies++] = m;
	if (nlabels == 0)
		metric_series_new(m, NULL);
	return m;
}

struct metric *
metrics_counter(struct metrics *ms, const char *name, const char *help,
    const char *const *label_names)
{
	return metrics_register(
	    ms, METRIC_COUNTER, name, help, label_names, NULL, 0);
}

struct metric *
metrics_gauge(struct metrics *ms, const char *name, const char *help,
    const char *const *label_names)
{
	return metrics_register(
	    ms, METRIC_GAUGE, name, help, label_names, NULL, 0);
}

struct metric *
metrics_histogram(struct metrics *ms, const char *name, const char *help,
    const char *const *label_names, const double *bounds, size_t nbounds)
{
	return metrics_register(
	    ms, METRIC_HISTOGRAM, name, help, label_names, bounds, nbounds);
}

struct metric_series *
metric_series(struct metric *m, const char *const *label_values)
{
	size_t n = metrics_count_list(label_values);

	if (n != m->nlabels)
		fatalx("metrics: %s: %zu label values for %zu labels", m->name,
		    n, m->nlabels);
	for (size_t i = 0; i < m->nseries; i++) {
		struct metric_series *s = m->series[i];
		size_t j;

		for (j = 0; j < n; j++) {
			if (strcmp(s->values[j], label_values[j]) != 0)
				break;
		}
		if (j == n)
			return s;
	}
	return metric_series_new(m, label_values);
}

/* Ends the process unless |s| is of type |type| (or, with |gauge|, a
 * gauge as well). */
static void
metric_expect(const struct metric_series *s, enum metric_type type, bool gauge,
    const char *what)
{
	enum metric_type t = s->family->type;

	if (t != type && !(gauge && t == METRIC_GAUGE))
		fatalx("metrics: %s: %s on a %s", s->family->name, what,
		    metric_type_names[t]);
}

void
metric_inc(struct metric_series *s)
{
	metric_add(s, 1);
}

void
metric_add(struct metric_series *s, double v)
{
	metric_expect(s, METRIC_COUNTER, true, "add");
	if (s->family->type == METRIC_COUNTER && !(v >= 0))
		fatalx(
		    "metrics: %s: counter decreased by %g", s->family->name, v);
	s->value += v;
}

void
metric_set(struct metric_series *s, double v)
{
	metric_expect(s, METRIC_GAUGE, false, "set");
	s->value = v;
}

void
metric_observe(struct metric_series *s, double v)
{
	const struct metric *m = s->family;

	metric_expect(s, METRIC_HISTOGRAM, false, "observe");
	/* Above every bound (or NaN), it counts only in the +Inf bucket. */
	for (size_t i = 0; i < m->nbounds; i++) {
		if (v <= m->bounds[i]) {
			s->buckets[i]++;
			break;
		}
	}
	s->count++;
	s->value += v;
}

double
metric_value(const struct metric_series *s)
{
	return s->value;
}

uint64_t
metric_count(const struct metric_series *s)
{
	metric_expect(s, METRIC_HISTOGRAM, false, "count");
	return s->count;
}

double
metric_sum(const struct metric_series *s)
{
	metric_expect(s, METRIC_HISTOGRAM, false, "sum");
	return s->value;
}

/* Appends printf output to |b|. */
static void __attribute__((format(printf, 2, 3)))
metrics_printf(struct buf *b, const char *fmt, ...)
{
	size_t room = 128;
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf((char *)buf_reserve(b, room), room, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatalx("metrics: cannot format output");
		if ((size_t)n < room)
			break;
		room = (size_t)n + 1;
	}
	buf_commit(b, (size_t)n);
}

/* Appends |s| escaped: backslash and newline, and double quotes in label
 * values. */
static void
metrics_escape(struct buf *b, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_append(b, "\\\\", 2);
		else if (*s == '\n')
			buf_append(b, "\\n", 2);
		else if (quote && *s == '"')
			buf_append(b, "\\\"", 2);
		else
			buf_append(b, s, 1);
	}
}

/*
 * Formats |v| as Prometheus reads it: integral values as plain integers,
 * others in the shortest of %.15g and %.17g that reads back exactly.
 */
static void
metrics_format(char *out, double v)
{
	double mag = v < 0 ? -v : v;

	if (v == 0)
		v = 0; /* -0 too */
	if (isnan(v))
		snprintf(out, METRICS_NUMBER_MAX, "NaN");
	else if (isinf(v))
		snprintf(out, METRICS_NUMBER_MAX, v > 0 ? "+Inf" : "-Inf");
	else if (mag < 1e21 &&
	    (mag >= 9007199254740992.0 || v == (double)(int64_t)v))
		snprintf(out, METRICS_NUMBER_MAX, "%.0f", v);
	else {
		snprintf(out, METRICS_NUMBER_MAX, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, METRICS_NUMBER_MAX, "%.17g", v);
	}
}

/* Appends a series' labels, then le="|le|" if given, in braces. */
static void
metrics_write_labels(struct buf *b, const struct metric *m,
    const struct metric_series *s, const char *le)
{
	if (m->nlabels == 0 && le == NULL)
		return;
	buf_append(b, "{", 1);
	for (size_t i = 0; i < m->nlabels; i++) {
		metrics_printf(b, "%s%s=\"", i > 0 ? "," : "", m->labels[i]);
		metrics_escape(b, s->values[i], true);
		buf_append(b, "\"", 1);
	}
	if (le != NULL)
		metrics_printf(b, "%sle=\"%s\"", m->nlabels > 0 ? "," : "", le);
	buf_append(b, "}", 1);
}

/* Appends one sample line: name, suffix, labels and |value|. */
static void
metrics_write_sample(struct buf *b, const struct metric *m,
    const struct metric_series *s, const char *suffix, const char *le,
    const char *value)
{
	metrics_printf(b, "%s%s", m->name, suffix);
	metrics_write_labels(b, m, s, le);
	metrics_printf(b, " %s\n", value);
}

static void
metrics_write_histogram(
    struct buf *b, const struct metric *m, const struct metric_series *s)
{
	char le[METRICS_NUMBER_MAX], value[METRICS_NUMBER_MAX];
	uint64_t cumulative = 0;

	for (size_t i = 0; i < m->nbounds; i++) {
		cumulative += s->buckets[i];
		metrics_format(le, m->bounds[i]);
		snprintf(value, sizeof value, "%llu",
		    (unsigned long long)cumulative);
		metrics_write_sample(b, m, s, "_bucket", le, value);
	}
	snprintf(value, sizeof value, "%llu", (unsigned long long)s->count);
	metrics_write_sample(b, m, s, "_bucket", "+Inf", value);
	metrics_format(value, s->value);
	metrics_write_sample(b, m, s, "_sum", NULL, value);
	snprintf(value, sizeof value, "%llu", (unsigned long long)s->count);
	metrics_write_sample(b, m, s, "_count", NULL, value);
}

void
metrics_write(const struct metrics *ms, struct buf *b)
{
	char value[METRICS_NUMBER_MAX];

	for (size_t i = 0; i < ms->nfamilies; i++) {
		const struct metric *m = ms->families[i];

		if (m->nseries == 0)
			continue;
		if (m->help[0] != '\0') {
			metrics_printf(b, "# HELP %s ", m->name);
			metrics_escape(b, m->help, false);
			buf_append(b, "\n", 1);
		}
		metrics_printf(
		    b, "# TYPE %s %s\n", m->name, metric_type_names[m->type]);
		for (size_t j = 0; j < m->nseries; j++) {
			const struct metric_series *s = m->series[j];

			if (m->type == METRIC_HISTOGRAM) {
				metrics_write_histogram(b, m, s);
				continue;
			}
			metrics_format(value, s->value);
			metrics_write_sample(b, m, s, "", NULL, value);
		}
	}
}
