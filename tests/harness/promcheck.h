/*
 * A strict reader of the Prometheus text exposition format 0.0.4 as the
 * metrics registry writes it: every line is a HELP, a TYPE or a sample
 * (no timestamps, no blank or other comment lines), with the grammar,
 * escaping, family grouping, counter names and histogram structure
 * checked. For the registry's own tests and for what tests scrape from
 * /metrics.
 */
#ifndef TESTS_HARNESS_PROMCHECK_H
#define TESTS_HARNESS_PROMCHECK_H

#include <stddef.h>

/*
 * Checks all of |text|. Returns 0 and the number of families and samples
 * (either pointer may be NULL), or -1 with the first problem, as "line N:
 * what", in |err| (|errlen| bytes).
 */
int promcheck(const char *text, size_t *families, size_t *samples, char *err,
    size_t errlen);

/*
 * Finds the sample |series|, written exactly as in the text ("name" or
 * "name{label=\"value\",...}"), in |text|. Returns 0 with its value in
 * |*v|, or -1 if there is no such sample.
 */
int promcheck_value(const char *text, const char *series, double *v);

#endif
