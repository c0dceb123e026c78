/* The id map against a plain array model, through growth and deletion. */
#include <stdlib.h>

#include "harness/cmocka.h"
#include "idmap.h"

#define N 5000

static void
sum_values(void *arg, uint64_t id, void *value)
{
	*(uint64_t *)arg += (uint64_t)(uintptr_t)value;
}

static void
matches_model_through_growth_and_deletion(void **state)
{
	static uintptr_t model[N + 1];
	struct idmap *m = idmap_new();
	uint64_t sum = 0, want = 0;
	size_t count = 0;

	srandom(7);
	for (int round = 0; round < 20 * N; round++) {
		uint64_t id = (uint64_t)(random() % N) + 1;

		if (random() % 3 == 0) {
			assert_ptr_equal(idmap_del(m, id), (void *)model[id]);
			count -= model[id] != 0;
			model[id] = 0;
		} else {
			uintptr_t v = (uintptr_t)round + 1;

			count += model[id] == 0;
			idmap_put(m, id, (void *)v);
			model[id] = v;
		}
	}
	assert_int_equal(idmap_count(m), count);
	for (uint64_t id = 1; id <= N; id++) {
		assert_ptr_equal(idmap_get(m, id), (void *)model[id]);
		want += model[id];
	}
	idmap_foreach(m, sum_values, &sum);
	assert_int_equal(sum, want);
	idmap_free(m);
}

static void
zero_and_absent_ids(void **state)
{
	struct idmap *m = idmap_new();

	assert_null(idmap_get(m, 0));
	assert_null(idmap_del(m, 0));
	assert_null(idmap_get(m, 42));
	assert_null(idmap_del(m, 42));
	idmap_put(m, 42, m);
	idmap_put(m, 42, &m);
	assert_int_equal(idmap_count(m), 1);
	assert_ptr_equal(idmap_get(m, 42), &m);
	idmap_free(m);
	idmap_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_model_through_growth_and_deletion),
		cmocka_unit_test(zero_and_absent_ids),
	};

	return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
