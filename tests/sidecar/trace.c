/* traceparent checking against the W3C grammar, and generated ones. */
#include <string.h>

#include "harness/cmocka.h"
#include "trace.h"

static void
accepts_valid_parents(void **state)
{
	assert_true(trace_parent_valid(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	assert_true(trace_parent_valid(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
	/* A later version may append fields after a dash. */
	assert_true(trace_parent_valid(
	    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"));
	assert_true(trace_parent_valid(
	    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

static void
refuses_malformed_parents(void **state)
{
	static const char *const bad[] = {
		"",
		"00",
		/* upper case hex */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		/* all-zero trace id, all-zero parent id */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		/* version ff, and 00 with trailing data */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		/* a later version followed by something other than '-' */
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		/* wrong separators, short fields, bad flags */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
	};

	assert_false(trace_parent_valid(NULL));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (trace_parent_valid(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void
generates_valid_distinct_parents(void **state)
{
	struct trace_gen *on = trace_gen_new(true), *off = trace_gen_new(false);
	char a[TRACE_PARENT_LEN + 1], b[TRACE_PARENT_LEN + 1];

	assert_non_null(on);
	assert_non_null(off);
	for (int i = 0; i < 10000; i++) {
		trace_gen_parent(on, a);
		trace_gen_parent(on, b);
		assert_int_equal(strlen(a), TRACE_PARENT_LEN);
		assert_true(trace_parent_valid(a));
		assert_string_equal(a + 53, "01");
		assert_memory_not_equal(a + 3, b + 3, TRACE_ID_LEN);
		assert_memory_not_equal(a + 36, b + 36, 16);
	}
	trace_gen_parent(off, a);
	assert_true(trace_parent_valid(a));
	assert_string_equal(a + 53, "00");
	trace_gen_free(on);
	trace_gen_free(off);
	trace_gen_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_valid_parents),
		cmocka_unit_test(refuses_malformed_parents),
		cmocka_unit_test(generates_valid_distinct_parents),
	};

	return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
