/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): checking a
 * traceparent header and starting new ones. Pure apart from the one seed
 * trace_gen_new() takes from OpenSSL.
 */
#ifndef SIDECAR_TRACE_H
#define SIDECAR_TRACE_H

#include <stdbool.h>
#include <stddef.h>

/* A version 00 traceparent: "00-" 32 hex "-" 16 hex "-" 2 hex. */
#define TRACE_PARENT_LEN 55
/* The trace id, 32 lowercase hex digits. */
#define TRACE_ID_LEN 32

struct trace_gen;

/*
 * Whether |tp| is a valid traceparent: version 00 exactly 55 characters
 * long, or a later version (not ff) whose first 55 characters parse as 00
 * and are followed by nothing or '-'; lowercase hex only; trace id and
 * parent id not all zeros. NULL is not valid.
 */
bool trace_parent_valid(const char *tp);

/*
 * Returns a generator seeded once from RAND_bytes(), or NULL (logged) when
 * OpenSSL has no randomness to give. |sampled| is the flag it sets.
 */
struct trace_gen *trace_gen_new(bool sampled);
void trace_gen_free(struct trace_gen *);

/* Writes a new version 00 traceparent with a random, non-zero trace id
 * and parent id into |out| (at least TRACE_PARENT_LEN + 1 bytes). */
void trace_gen_parent(struct trace_gen *, char *out);

#endif
