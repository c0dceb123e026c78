/*
 * store: what the dedup store costs per key. The digest (SHA-256 of the
 * namespace and key), a lookup, and group commits of batches as the
 * filter makes them, one per loop turn, with durability os and fsync
 * (the sync on the store's worker, waited for here as the filter would
 * wait for its release).
 *
 *   bench/store [-n KEYS] [-b BATCH] [-d DIR] [-t TTL_MS]
 *
 * Keys per second include the lookup each delivery makes first. Keys
 * expire an hour after the run starts; with -t, TTL_MS after their
 * commit, so that a long run reaches the steady state where the sweep
 * removes as many keys as are committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "sidecar/store.h"

#define S INT64_C(1000000000)

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

static void
key_of(long i, uint8_t k[STORE_KEY_SIZE])
{
	char text[48];
	int n = snprintf(text, sizeof text, "ord-%012ld-retry", i);

	store_key("orders", text, (size_t)n, k);
}

/* Looks up, stages and commits |n| new keys in batches, each expiring
 * |ttl| ns after its commit (0: an hour after the start); keys per
 * second. */
static double
commits(struct ev_loop *loop, const char *path, bool fsync, long n, long batch,
    int64_t ttl)
{
	struct store_options o = { path, fsync, 64 << 20, 1LL << 30, 1000 };
	struct store *s;
	uint8_t k[STORE_KEY_SIZE];
	char *err = NULL;
	int64_t t0;

	if ((s = store_open(loop, &o, STORE_DAEMON, &err)) == NULL) {
		fprintf(stderr, "store: %s\n", err);
		exit(1);
	}
	t0 = now_ns();
	for (long i = 0; i < n; i += batch) {
		uint64_t t = 0;

		int64_t now = ttl > 0 ? now_ns() : t0;

		for (long j = i; j < i + batch && j < n; j++) {
			key_of(j, k);
			if (store_lookup(s, k, now, NULL) != 0)
				exit(1);
			t = store_stage(s, k, "orders", (uint64_t)j,
			    ttl > 0 ? now + ttl : t0 + 3600 * S, now);
		}
		if (store_flush(s, now_ns()) != 0)
			exit(1);
		while (store_durable(s) < t)
			ev_run(loop, EVRUN_ONCE);
	}
	t0 = now_ns() - t0;
	store_close(s);
	return (double)n * 1e9 / (double)t0;
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/bench-store.XXXXXX", path[64], cmd[96], ttl[64] = "";
	long n = 200000, batch = 256, ttl_ms = 0;
	struct ev_loop *loop = EV_DEFAULT;
	uint8_t k[STORE_KEY_SIZE];
	const char *base = NULL;
	int64_t t0;
	int ch;

	while ((ch = getopt(argc, argv, "n:b:d:t:")) != -1) {
		switch (ch) {
		case 'n':
			n = atol(optarg);
			break;
		case 'b':
			batch = atol(optarg);
			break;
		case 'd':
			base = optarg;
			break;
		case 't':
			ttl_ms = atol(optarg);
			break;
		default:
			fprintf(stderr,
			    "usage: bench/store [-n KEYS] [-b BATCH] "
			    "[-d DIR] [-t TTL_MS]\n");
			return 2;
		}
	}
	if (n <= 0 || batch <= 0 || ttl_ms < 0 ||
	    (base == NULL && mkdtemp(dir) == NULL))
		return 2;
	base = base != NULL ? base : dir;
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		key_of(i, k);
	printf("digest (SHA-256, 23-byte key)  %8.3f us/key\n",
	    (double)(now_ns() - t0) / 1e3 / (double)n);
	if (ttl_ms > 0)
		snprintf(ttl, sizeof ttl, " (keys expire %ld ms after commit)",
		    ttl_ms);
	snprintf(path, sizeof path, "%s/os", base);
	printf("durability os, batch %-5ld     %8.0f keys/s%s\n", batch,
	    commits(loop, path, false, n, batch, ttl_ms * 1000000), ttl);
	snprintf(path, sizeof path, "%s/fsync", base);
	printf("durability fsync, batch %-5ld  %8.0f keys/s%s\n", batch,
	    commits(loop, path, true, n, batch, ttl_ms * 1000000), ttl);
	snprintf(cmd, sizeof cmd, "rm -rf %s/os %s/fsync", base, base);
	if (system(cmd) != 0 || (base == dir && rmdir(dir) == -1))
		return 1;
	return 0;
}
