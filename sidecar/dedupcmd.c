/*
 * nats-sidecar dedup: operator commands on the dedup store. They open the
 * store as a second process beside the daemon (LMDB allows many readers
 * and serialises writers across processes), so they are safe while it
 * runs; a forgotten key is seen by the daemon from its next loop turn.
 *
 *   dedup stats          entries, pages and map use
 *   dedup lookup KEY     whether KEY was processed, when, until when
 *   dedup forget KEY     remove KEY: its next delivery reaches the app
 *   dedup purge          remove every key
 *
 * KEY is the key's text as the filter reads it (the header's value or the
 * payload field's), in the namespace of --subscription.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dedupcmd.h"
#include "filters/filter.h"
#include "store.h"

#define NS_PER_S INT64_C(1000000000)

static int64_t
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* RFC 3339 UTC, to the second. */
static const char *
time_text(int64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / NS_PER_S);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* The subscription whose namespace a key is in; NULL after saying why. */
static const char *
namespace_of(const struct config *cfg, const char *wanted)
{
	const char *found = NULL;
	size_t n = 0;

	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		const struct config_subscription *s =
		    config_subscription(cfg, i);

		for (size_t j = 0; j < s->filters.n; j++) {
			if (strcmp(s->filters.v[j].ops->name, "dedup") != 0)
				continue;
			if (wanted != NULL && strcmp(wanted, s->name) == 0)
				return s->name;
			found = s->name;
			n++;
			break;
		}
	}
	if (wanted == NULL && n == 1)
		return found;
	if (wanted != NULL)
		fprintf(stderr,
		    "nats-sidecar dedup: no subscription %s with a dedup "
		    "filter\n",
		    wanted);
	else
		fprintf(stderr,
		    "nats-sidecar dedup: %zu subscriptions have a dedup "
		    "filter: name one with --subscription\n",
		    n);
	return NULL;
}

static int
cmd_stats(struct store *st)
{
	struct store_stats s;

	if (store_stats(st, &s) == -1)
		return 1;
	printf("entries      %" PRIu64 "\n"
	       "pages used   %" PRIu64 " (%" PRIu64 " bytes each)\n"
	       "bytes used   %" PRIu64 "\n"
	       "map size     %" PRIu64 "\n"
	       "map used     %" PRIu64 " (%.1f%%)\n"
	       "readers      %" PRIu64 "\n",
	    s.entries, s.pages_used, s.page_size, s.pages_used * s.page_size,
	    s.map_size, s.map_used,
	    100.0 * (double)s.map_used / (double)s.map_size, s.readers);
	return 0;
}

static int
cmd_key(struct store *st, const char *ns, const char *verb, const char *key)
{
	uint8_t digest[STORE_KEY_SIZE];
	struct store_entry e;
	char a[32], b[32];
	int r;

	store_key(ns, key, strlen(key), digest);
	if (strcmp(verb, "forget") == 0) {
		if ((r = store_forget(st, digest)) == -1)
			return 1;
		printf(
		    "%s: %s\n", key, r == 1 ? "forgotten" : "not in the store");
		return r == 1 ? 0 : 1;
	}
	if ((r = store_lookup(st, digest, wall_now(), &e)) == -1)
		return 1;
	if (r == 0) {
		printf("%s: not processed (or expired)\n", key);
		return 1;
	}
	printf("%s: processed at %s (stream sequence %" PRIu64
	       "), remembered until %s\n",
	    key, time_text(e.committed, a, sizeof a), e.stream_seq,
	    time_text(e.expires, b, sizeof b));
	return 0;
}

int
dedupcmd_run(
    const struct config *cfg, const char *subscription, int argc, char **argv)
{
	const struct config_dedup *d = &cfg->dedup;
	struct store_options o = { d->path, false, d->map_size, d->map_size_max,
		d->sweep_batch };
	bool keyed = argc == 2 &&
	    (strcmp(argv[0], "lookup") == 0 || strcmp(argv[0], "forget") == 0);
	bool plain = argc == 1 &&
	    (strcmp(argv[0], "stats") == 0 || strcmp(argv[0], "purge") == 0);
	bool writes =
	    strcmp(argv[0], "forget") == 0 || strcmp(argv[0], "purge") == 0;
	const char *ns = NULL;
	struct store *st;
	char *err = NULL;
	int64_t n;
	int status;

	if (!keyed && !plain) {
		fprintf(stderr,
		    "usage: nats-sidecar -c FILE dedup [--subscription NAME] "
		    "stats|lookup KEY|forget KEY|purge\n");
		return 2;
	}
	if (d->path == NULL) {
		fprintf(stderr, "nats-sidecar dedup: %s sets no dedup.path\n",
		    cfg->path);
		return 2;
	}
	if (keyed && (ns = namespace_of(cfg, subscription)) == NULL)
		return 2;
	if ((st = store_open(NULL, &o, writes ? STORE_SHARED : STORE_READONLY,
		 &err)) == NULL) {
		fprintf(stderr, "nats-sidecar dedup: %s\n", err);
		free(err);
		return 1;
	}
	if (keyed)
		status = cmd_key(st, ns, argv[0], argv[1]);
	else if (strcmp(argv[0], "stats") == 0)
		status = cmd_stats(st);
	else if ((n = store_purge(st)) >= 0) {
		printf("purged %" PRId64 " key(s)\n", n);
		status = 0;
	} else
		status = 1;
	store_close(st);
	return status;
}
