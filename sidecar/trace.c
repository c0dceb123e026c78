#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "log.h"
#include "trace.h"
#include "xmalloc.h"

/* xoshiro256**: fast, and its output is never on the wire as a secret,
 * only as an identifier, so one seed from the CSPRNG is enough. */
struct trace_gen {
	uint64_t s[4];
	bool sampled;
};

static bool
trace_hex(const char *s, size_t n, bool *zero)
{
	*zero = true;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return false;
		if (s[i] != '0')
			*zero = false;
	}
	return true;
}

bool
trace_parent_valid(const char *tp)
{
	size_t len;
	bool zero;

	if (tp == NULL || (len = strlen(tp)) < TRACE_PARENT_LEN)
		return false;
	if (!trace_hex(tp, 2, &zero) || strncmp(tp, "ff", 2) == 0)
		return false;
	if (strncmp(tp, "00", 2) == 0
		? len != TRACE_PARENT_LEN
		: len > TRACE_PARENT_LEN && tp[TRACE_PARENT_LEN] != '-')
		return false;
	if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return false;
	if (!trace_hex(tp + 3, 32, &zero) || zero)
		return false;
	if (!trace_hex(tp + 36, 16, &zero) || zero)
		return false;
	return trace_hex(tp + 53, 2, &zero);
}

struct trace_gen *
trace_gen_new(bool sampled)
{
	struct trace_gen *g = xcalloc(1, sizeof *g);

	do {
		if (RAND_bytes((unsigned char *)g->s, sizeof g->s) != 1) {
			log_errorx("trace.no_random",
			    "cannot seed trace ids: OpenSSL RAND_bytes failed");
			free(g);
			return NULL;
		}
	} while ((g->s[0] | g->s[1] | g->s[2] | g->s[3]) == 0);
	g->sampled = sampled;
	return g;
}

void
trace_gen_free(struct trace_gen *g)
{
	free(g);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
trace_next(struct trace_gen *g)
{
	uint64_t *s = g->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* A random value that is not 0: the spec forbids all-zero ids. */
static uint64_t
trace_nonzero(struct trace_gen *g)
{
	uint64_t v;

	while ((v = trace_next(g)) == 0)
		;
	return v;
}

void
trace_gen_parent(struct trace_gen *g, char *out)
{
	/* The high half alone non-zero makes the trace id non-zero. */
	uint64_t hi = trace_nonzero(g), lo = trace_next(g);

	snprintf(out, TRACE_PARENT_LEN + 1, "00-%016llx%016llx-%016llx-%s",
	    (unsigned long long)hi, (unsigned long long)lo,
	    (unsigned long long)trace_nonzero(g), g->sampled ? "01" : "00");
}
