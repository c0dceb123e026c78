/*
 * Fuzz target for the dedup filter's key reading: the first byte picks a
 * key (a header, or a JSON field path with nesting and indexes), the rest
 * is the payload (and the header's value). Each input goes through a real
 * chain and store: looked up, ACKed, committed on the turn, released; a
 * second copy must then be acked as a duplicate whenever the first had a
 * key of its own.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filters/chain.h"
#include "filters/dedup.h"
#include "sidecar/bus.h"
#include "sidecar/config.h"
#include "sidecar/delivery.h"
#include "sidecar/metrics.h"
#include "sidecar/store.h"

#define S INT64_C(1000000000)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const keys[] = { "header:Nats-Msg-Id", "field:message_id",
	"field:order.items[1].sku", "field:a[0][1]" };

struct target {
	struct store *store;
	struct metrics *metrics;
	struct dedup_options opt[4];
	struct chain *chain[4];
	int64_t now;
	uint64_t next_id;
};

static char dir[] = "/tmp/dedup-fuzz.XXXXXX";

static void
ignore(void *arg, struct delivery *d, struct filter_verdict v)
{
}

/* At exit: the store's files (open still, freed with the process). */
static void
remove_store(void)
{
	static const char *const files[] = { "data.mdb", "lock.mdb",
		"nats-sidecar.lock" };
	char path[96];

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/db/%s", dir, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/db", dir);
	rmdir(path);
	rmdir(dir);
}

static struct target *
target(void)
{
	static const struct config_subscription sub = { .name = "fuzz" };
	static struct target t;
	char path[64], *err = NULL;
	/* A small map: the daemon's store allocates it on disk at once. */
	struct store_options so = { path, false, 1 << 20, 1 << 30, 1000 };
	struct chain_events ev = { ignore, ignore, NULL };

	if (t.store != NULL)
		return &t;
	nats_Open(-1);
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(remove_store);
	snprintf(path, sizeof path, "%s/db", dir);
	if ((t.store = store_open(NULL, &so, STORE_DAEMON, &err)) == NULL)
		abort();
	t.metrics = metrics_new();
	for (size_t i = 0; i < 4; i++) {
		struct config_filter entry = { .ops = &dedup_filter,
			.options = &t.opt[i] };
		struct config_filters cf = { &entry, 1 };
		struct filter_services fs = { t.metrics, t.store, 0, NULL };

		t.opt[i].key = (char *)keys[i];
		t.opt[i].ttl =
		    S; /* swept as the clock moves: the store stays small */
		t.opt[i].missing_key = (int)(i & 1);
		if ((t.chain[i] = chain_new(&cf, &sub, &fs, &ev)) == NULL)
			abort();
	}
	return &t;
}

/* One delivery of |data| through |c|; returns the inbound verdict. */
static enum filter_action
run(struct target *t, struct chain *c, const uint8_t *data, size_t size,
    uint64_t seq)
{
	char reply[96], header[256];
	struct filter_verdict ack = { .action = FILTER_ACK };
	enum filter_action a;
	natsMsg *m = NULL;
	struct delivery *d;

	snprintf(reply, sizeof reply,
	    "$JS.ACK.FUZZ.fuzz.1.%llu.%llu.1700000000000000000.0",
	    (unsigned long long)seq, (unsigned long long)seq);
	if (natsMsg_Create(
		&m, "fuzz.v1", reply, (const char *)data, (int)size) != NATS_OK)
		abort();
	/* Header values are text without line breaks. */
	snprintf(header, sizeof header, "%.*s", (int)(size < 200 ? size : 200),
	    (const char *)data);
	header[strcspn(header, "\r\n")] = '\0';
	natsMsgHeader_Set(m, "Nats-Msg-Id", header);
	if ((d = delivery_new(m, NULL, bus_msg_size(m))) == NULL)
		abort();
	d->id = ++t->next_id;
	a = chain_deliver(c, d, t->now).action;
	if (a == FILTER_DELIVER &&
	    chain_result(c, d, ack, t->now).action == FILTER_HOLD)
		chain_turn(c, t->now);
	chain_done(c, d);
	delivery_free(d);
	return a;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct target *t = target();
	struct chain *c;
	enum filter_action first;

	if (size == 0)
		return 0;
	c = t->chain[data[0] % 4];
	t->now += 10 * 1000 * 1000;
	first = run(t, c, data + 1, size - 1, t->next_id + 1);
	/* A delivered key is now committed: a second copy (another stream
	 * sequence, so a fallback key differs) is a duplicate unless the
	 * key came from the sequence. */
	if (run(t, c, data + 1, size - 1, t->next_id + 1) == FILTER_DELIVER &&
	    first == FILTER_DELIVER && data[0] % 4 == 0 && size > 1 &&
	    isalnum(data[1]))
		abort();
	return 0;
}
