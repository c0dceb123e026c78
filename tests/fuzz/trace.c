/*
 * Fuzz target for the traceparent check: whatever it accepts has the
 * shape of a version 00 traceparent in its first 55 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	if (trace_parent_valid(s) &&
	    (strlen(s) < TRACE_PARENT_LEN || s[2] != '-' || s[35] != '-' ||
		s[52] != '-'))
		abort();
	free(s);
	return 0;
}
