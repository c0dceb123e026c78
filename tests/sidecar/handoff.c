/* Items pushed from several threads all reach the loop, in order per
 * thread, none lost or repeated. */
#include <pthread.h>
#include <stdlib.h>

#include <ev.h>

#include "handoff.h"
#include "harness/cmocka.h"

#define THREADS 4
#define PER_THREAD 20000

struct seen {
	uint64_t next[THREADS];
	size_t total;
	int out_of_order;
};

static struct handoff *queue;

static void
take(void *arg, const struct handoff_item *items, size_t n)
{
	struct seen *s = arg;

	for (size_t i = 0; i < n; i++) {
		int t = items[i].kind;

		if (items[i].tag != s->next[t])
			s->out_of_order++;
		s->next[t] = items[i].tag + 1;
		s->total++;
	}
}

static void *
producer(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (uint64_t i = 0; i < PER_THREAD; i++)
		handoff_push(queue, t, i, NULL);
	return NULL;
}

static void
stop_when_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct seen *s = w->data;

	if (s->total == THREADS * PER_THREAD)
		ev_break(loop, EVBREAK_ALL);
}

static void
give_up(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
every_item_arrives_once_in_order(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	pthread_t th[THREADS];
	struct seen s = { { 0 }, 0, 0 };
	ev_timer check, limit;

	queue = handoff_new(loop, take, &s);
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, producer, (void *)(intptr_t)t);
	ev_timer_init(&check, stop_when_done, 0.01, 0.01);
	check.data = &s;
	ev_timer_start(loop, &check);
	ev_timer_init(&limit, give_up, 30, 0);
	ev_timer_start(loop, &limit);
	ev_run(loop, 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	/* What is left when freed still comes through. */
	handoff_free(queue);
	assert_int_equal(s.total, THREADS * PER_THREAD);
	assert_int_equal(s.out_of_order, 0);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(s.next[t], PER_THREAD);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_item_arrives_once_in_order),
	};

	return cmocka_run_group_tests_name("handoff", tests, NULL, NULL);
}
