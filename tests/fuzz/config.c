/*
 * Fuzz target for the configuration loader: any bytes as a config file.
 * A file that loads must print to a configuration that loads again and
 * prints the same (what --check-config shows is what the daemon runs).
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sidecar/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The bytes as a file config_load() can open, without touching a disk. */
static int
as_file(const void *data, size_t len, char *path, size_t cap)
{
	int fd = memfd_create("config", MFD_CLOEXEC);

	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		abort();
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

static char *
printed(const struct config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (f == NULL)
		abort();
	config_print(cfg, f);
	fclose(f);
	return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	FILE *quiet = fopen("/dev/null", "w");
	char path[64], path2[64], *once, *twice;
	struct config *cfg, *again;
	size_t n1, n2;
	int fd, fd2;

	fd = as_file(data, len, path, sizeof path);
	cfg = config_load(path, quiet);
	if (cfg != NULL) {
		once = printed(cfg, &n1);
		fd2 = as_file(once, n1, path2, sizeof path2);
		if ((again = config_load(path2, quiet)) == NULL)
			abort();
		twice = printed(again, &n2);
		if (n1 != n2 || memcmp(once, twice, n1) != 0)
			abort();
		free(once);
		free(twice);
		config_free(again);
		config_free(cfg);
		close(fd2);
	}
	close(fd);
	fclose(quiet);
	return 0;
}
