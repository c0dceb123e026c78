/*
 * The metrics registry: counters, gauges and histograms with labels,
 * written out in the Prometheus text exposition format 0.0.4. It belongs
 * to the loop thread and takes no locks.
 *
 * A family (struct metric) is registered once with its label names; a
 * series (struct metric_series) is one combination of label values.
 * Callers look a series up once, at setup, and keep the pointer: updating
 * it (metric_inc() and friends) does no lookup and no allocation.
 *
 * Misuse is a programming error and ends the process through fatalx():
 * an invalid metric or label name, a counter whose name lacks "_total",
 * the same name registered with another type, other labels or other
 * buckets, label values that do not match the label names in number, and
 * an update that does not fit the type (a counter set or decreased, a
 * histogram incremented, a counter or gauge observed).
 */
#ifndef SIDECAR_METRICS_H
#define SIDECAR_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct metrics;
struct metric;
struct metric_series;

struct metrics *metrics_new(void);
/* Frees the registry with every family and series in it. */
void metrics_free(struct metrics *);

/*
 * Registers a family, or returns the one already registered under |name|
 * with the same type and label names (|help| of the first registration is
 * kept). |name| matches [a-zA-Z_:][a-zA-Z0-9_:]* and, for a counter, ends
 * in "_total"; |label_names| is NULL-terminated, or NULL for none, each
 * matching [a-zA-Z_][a-zA-Z0-9_]* without a leading "__". The strings are
 * copied. A family without labels has its one series from the start.
 */
struct metric *metrics_counter(struct metrics *, const char *name,
    const char *help, const char *const *label_names);
struct metric *metrics_gauge(struct metrics *, const char *name,
    const char *help, const char *const *label_names);
/*
 * As above, with |nbounds| finite, strictly increasing bucket upper bounds
 * (the +Inf bucket is implicit); "le" is not a valid label name here. A
 * re-registration must repeat the same bounds.
 */
struct metric *metrics_histogram(struct metrics *, const char *name,
    const char *help, const char *const *label_names, const double *bounds,
    size_t nbounds);

/*
 * Returns the series for |label_values| (NULL-terminated, as many as the
 * family has label names; NULL for a family without labels), creating it
 * on first use. Valid until metrics_free(); written out in creation order.
 */
struct metric_series *metric_series(
    struct metric *, const char *const *label_values);

/* Counters and gauges: adds 1, or |v| (v >= 0 for a counter). */
void metric_inc(struct metric_series *);
void metric_add(struct metric_series *, double v);
/* Gauges only. */
void metric_set(struct metric_series *, double v);
/* Histograms only: counts |v| in the first bucket whose bound is >= v. */
void metric_observe(struct metric_series *, double v);

/* The value of a counter or gauge; for a histogram, its sum. */
double metric_value(const struct metric_series *);
/* Histograms only: the number of observations, and their sum. */
uint64_t metric_count(const struct metric_series *);
double metric_sum(const struct metric_series *);

/* Appends every family with at least one series to |b|, in registration
 * order, in the text exposition format 0.0.4. */
void metrics_write(const struct metrics *, struct buf *b);

#endif
