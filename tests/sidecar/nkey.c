/* The public key derived from a user seed, checked against the pair
 * published in the NKeys documentation, and the errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/cmocka.h"
#include "nkey.h"

static char *
write_file(const char *text)
{
	char *path = strdup("/tmp/nkey-test.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
derives_the_documented_public_key(void **state)
{
	char *path = write_file(
	    "# a comment line\n"
	    "  SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\n");
	char *pub = nkey_public_from_seed_file(path);

	assert_non_null(pub);
	assert_string_equal(
	    pub, "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4");
	free(pub);
	unlink(path);
	free(path);
}

static void
refuses_bad_seeds(void **state)
{
	static const char *const bad[] = {
		"",
		"no seed here\n",
		/* One character changed: the CRC no longer matches. */
		"SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYZCU3VY\n",
		/* An account seed, not a user seed. */
		"SAACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\n",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *path = write_file(bad[i]);

		assert_null(nkey_public_from_seed_file(path));
		unlink(path);
		free(path);
	}
	assert_null(nkey_public_from_seed_file("/nonexistent/seed"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(derives_the_documented_public_key),
		cmocka_unit_test(refuses_bad_seeds),
	};

	return cmocka_run_group_tests_name("nkey", tests, NULL, NULL);
}
