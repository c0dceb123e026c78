/* JetStream ack subjects: the metadata every delivery is built from. */
#include <string.h>

#include "delivery.h"
#include "harness/cmocka.h"

static void
parses_the_2_9_form(void **state)
{
	struct delivery_meta m;

	assert_int_equal(
	    delivery_parse_reply("$JS.ACK.ORDERS.orders-app.3.1042."
				 "17.1700000000123456789.250",
		&m),
	    0);
	assert_string_equal(m.stream, "ORDERS");
	assert_string_equal(m.consumer, "orders-app");
	assert_int_equal(m.num_delivered, 3);
	assert_int_equal(m.stream_seq, 1042);
	assert_int_equal(m.consumer_seq, 17);
	assert_int_equal(m.timestamp_ns, 1700000000123456789LL);
	assert_int_equal(m.num_pending, 250);
}

static void
parses_the_domain_forms(void **state)
{
	struct delivery_meta m;

	assert_int_equal(
	    delivery_parse_reply("$JS.ACK.hub.ACCHASH.S.c.1.2.3.4.5", &m), 0);
	assert_string_equal(m.stream, "S");
	assert_int_equal(m.stream_seq, 2);
	assert_int_equal(
	    delivery_parse_reply("$JS.ACK.hub.ACCHASH.S.c.1.2.3.4.5.xyz", &m),
	    0);
	assert_int_equal(m.num_pending, 5);
}

static void
parses_the_largest_sequence(void **state)
{
	struct delivery_meta m;

	assert_int_equal(delivery_parse_reply("$JS.ACK.S.c.1."
					      "18446744073709551615.3.4.5",
			     &m),
	    0);
	assert_true(m.stream_seq == UINT64_MAX);
}

static void
rejects_what_is_not_an_ack_subject(void **state)
{
	static const char *const bad[] = {
		"",
		"_INBOX.abc",
		"$JS.ACK.S.c.1.2.3.4", /* 8 tokens */
		"$JS.ACK.S.c.1.2.3.4.5.6", /* 10 tokens */
		"$JS.ACK.S.c.x.2.3.4.5", /* not a number */
		"$JS.ACK.S.c.1.2.3.-4.5",
		"$JS.ACK.S.c.1.2.3.99999999999999999999.5",
		"$JS.ACK.S.c.1.18446744073709551616.3.4.5", /* 2^64 */
		"$JS.ACK.S.c.1.2x.3.4.5",
		"$JS.ACK.S.c.1.+2.3.4.5",
		"$JS.ACK.S.c.1..3.4.5", /* empty number */
		"$JS.NAK.S.c.1.2.3.4.5",
		"$JS.ACK.S.c.1.2.3.4.5.a.b.c.d.e",
	};
	struct delivery_meta m;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (delivery_parse_reply(bad[i], &m) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(delivery_parse_reply(NULL, &m), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_the_2_9_form),
		cmocka_unit_test(parses_the_domain_forms),
		cmocka_unit_test(parses_the_largest_sequence),
		cmocka_unit_test(rejects_what_is_not_an_ack_subject),
	};

	return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
