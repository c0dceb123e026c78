/* The pull window follows what the apps finish: their capacity plus a
 * tenth of a second of their work, between its floor and max_in_flight. */
#include <stdint.h>

#include "harness/cmocka.h"
#include "window.h"

/* Finishes |rate| deliveries a second for |secs| seconds in steps of
 * 1 ms from |*now|, |*done| counting them; returns the last window. */
static int64_t
run_at(struct window *w, double *now, uint64_t *done, double rate, double secs,
    uint64_t capacity)
{
	int64_t size = 0;
	double owed = 0;

	for (int i = 0; i < (int)(secs * 1000); i++) {
		*now += 0.001;
		owed += rate / 1000;
		*done += (uint64_t)owed;
		owed -= (double)(uint64_t)owed;
		size = window_size(w, *now, *done, capacity);
	}
	return size;
}

static void
slow_app_gets_its_capacity_and_a_tenth_of_a_second(void **state)
{
	struct window w;
	double now = 100;
	uint64_t done = 0;

	(void)state;
	window_init(&w, 1024);
	/* Nothing finished yet: the floor, or the capacity if larger. */
	assert_int_equal(window_size(&w, now, done, 4), WINDOW_FLOOR);
	assert_int_equal(window_size(&w, now, done, 100), 100);
	/* 50 a second with a capacity of 4: 4 + 5, so the floor. */
	assert_int_equal(run_at(&w, &now, &done, 50, 2, 4), WINDOW_FLOOR);
	/* 2,000 a second with a capacity of 10: 10 + about 200. */
	int64_t size = run_at(&w, &now, &done, 2000, 2, 10);
	assert_in_range(size, 200, 220);
}

static void
fast_app_gets_max_in_flight(void **state)
{
	struct window w;
	double now = 5;
	uint64_t done = 0;

	(void)state;
	window_init(&w, 1024);
	assert_int_equal(run_at(&w, &now, &done, 100000, 1, 256), 1024);
	/* A capacity beyond the limit is cut to it. */
	window_init(&w, 100);
	assert_int_equal(window_size(&w, now, done, 5000), 100);
	/* And a limit below the floor is the limit. */
	window_init(&w, 3);
	assert_int_equal(window_size(&w, now, done, 0), 3);
}

static void
burst_after_a_quiet_spell_opens_it_at_once(void **state)
{
	struct window w;
	double now = 1;
	uint64_t done = 0;

	(void)state;
	window_init(&w, 4096);
	assert_int_equal(window_size(&w, now, done, 64), 64);
	/* Within the same period: what was just finished counts. */
	now += 0.05;
	done += 500;
	assert_int_equal(window_size(&w, now, done, 64), 564);
	now += 0.03;
	done += 2000;
	assert_int_equal(window_size(&w, now, done, 64), 2564);
}

static void
pace_that_drops_narrows_it_within_two_periods(void **state)
{
	struct window w;
	double now = 1;
	uint64_t done = 0;

	(void)state;
	window_init(&w, 65536);
	int64_t fast = run_at(&w, &now, &done, 20000, 1, 8);
	assert_in_range(fast, 1900, 2100);
	int64_t slow = run_at(&w, &now, &done, 100, 0.25, 8);
	assert_int_equal(slow, WINDOW_FLOOR);
}

static void
idle_loop_counts_a_long_period_at_its_rate(void **state)
{
	struct window w;
	double now = 1;
	uint64_t done = 0;

	(void)state;
	window_init(&w, 65536);
	(void)window_size(&w, now, done, 0);
	/* 3,000 finished over 10 s with no turn between: 300 a second,
	 * 30 in a tenth; in the next period that is what counts. */
	now += 10;
	done += 3000;
	assert_int_equal(window_size(&w, now, done, 100), 130);
}

static void
clock_stepped_back_starts_a_new_period(void **state)
{
	struct window w;
	double now = 100;
	int64_t size = 0;

	(void)state;
	window_init(&w, 65536);
	(void)window_size(&w, now, 0, 0);
	now += 0.05;
	assert_int_equal(window_size(&w, now, 5000, 0), 5000);
	/* The wall clock goes back an hour, and the apps slow to 100 a
	 * second: the window follows within the periods after the step,
	 * not an hour later. */
	now -= 3600;
	for (int i = 0; i <= 3; i++)
		size = window_size(
		    &w, now + 0.101 * i, 5000 + 10 * (uint64_t)i, 0);
	assert_int_equal(size, WINDOW_FLOOR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    slow_app_gets_its_capacity_and_a_tenth_of_a_second),
		cmocka_unit_test(fast_app_gets_max_in_flight),
		cmocka_unit_test(burst_after_a_quiet_spell_opens_it_at_once),
		cmocka_unit_test(pace_that_drops_narrows_it_within_two_periods),
		cmocka_unit_test(idle_loop_counts_a_long_period_at_its_rate),
		cmocka_unit_test(clock_stepped_back_starts_a_new_period),
	};

	return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
