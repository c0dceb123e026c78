/*
 * The dedup store: which message keys the app has processed, in LMDB, so
 * that a redelivery or a second publish of an event is acked without
 * reaching the app again, across restarts and crashes.
 *
 * Keys are 32-byte digests (store_key()) of a namespace (the subscription)
 * and the key text, so every key has the same size whatever its length.
 * Each entry carries its expiry (wall-clock ns); the sweep walks the
 * entries a bounded number at a time and removes the expired ones.
 *
 * Writes are batched: store_stage() queues a key in memory and returns a
 * ticket; store_flush(), once per loop turn, commits everything queued in
 * one write transaction. store_durable() says up to which ticket commits
 * are as durable as configured: at once for `durability: os` (the
 * commit is in the kernel's page cache: a killed sidecar loses nothing),
 * after an fsync for `durability: fsync`, which runs on a worker thread
 * and reports back through a hand-off queue, so the loop never waits on
 * the disk.
 *
 * When the map is full the store sweeps expired entries harder, then
 * grows the map up to its ceiling (a store reopened keeps its map); past that
 * it keeps what is queued, reports the problem (store_problem()) and tries
 * again later. The daemon with `durability: os` writes the map in place, and
 * its data file takes the map's size on disk from the start (and each size it
 * grows to), so that a full disk is an error rather than a SIGBUS; on a
 * copy-on-write filesystem, where that reserves nothing, it writes through
 * write(2).
 *
 * One daemon per store: store_open() takes an exclusive lock file and
 * refuses network filesystems. Operator commands open the same store
 * without the lock (STORE_SHARED): LMDB serialises writers across
 * processes, and a map one of them grew is taken by the others.
 */
#ifndef SIDECAR_STORE_H
#define SIDECAR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define STORE_KEY_SIZE 32

struct store_options {
	const char *path; /* a directory, created if missing */
	bool fsync; /* durability: fsync */
	int64_t map_size; /* initial map size, bytes */
	int64_t map_size_max; /* the ceiling it may grow to */
	int64_t sweep_batch; /* entries looked at per flush (see below) */
};

enum store_mode {
	STORE_DAEMON, /* the lock file, the fsync worker */
	STORE_SHARED, /* beside a running daemon: no lock, no worker */
	STORE_READONLY, /* as STORE_SHARED, reads only */
};

/* One stored entry. */
struct store_entry {
	int64_t expires; /* wall-clock ns */
	int64_t committed; /* wall-clock ns */
	uint64_t stream_seq; /* of the delivery that committed it */
	char ns[64]; /* the namespace (subscription), NUL-terminated */
};

struct store_stats {
	uint64_t entries;
	uint64_t pages_used; /* by the data and the index, not free pages */
	uint64_t page_size;
	uint64_t map_size; /* bytes */
	uint64_t map_used; /* bytes up to the last page used in the file */
	uint64_t committed; /* keys committed since open */
	uint64_t expired; /* keys swept since open */
	uint64_t readers; /* reader slots in use, every process */
};

/*
 * Opens (creating if needed) the store at o->path. |loop| is needed for
 * STORE_DAEMON with o->fsync, else may be NULL. Returns NULL with an
 * allocated message in |*err| naming the path and the fix: another daemon
 * holds the lock, a network filesystem, a corrupt or incompatible store,
 * no permission.
 */
struct store *store_open(struct ev_loop *loop, const struct store_options *o,
    enum store_mode mode, char **err);
/* Commits what is queued (best effort), syncs, stops the worker. */
void store_close(struct store *);

/* The digest of |key| (|len| bytes) in namespace |ns|. */
void store_key(
    const char *ns, const void *key, size_t len, uint8_t out[STORE_KEY_SIZE]);

/*
 * Looks |key| up as of |now| (wall-clock ns). Returns 1 and fills |e| (may
 * be NULL) if it is committed and not expired, 0 if not, -1 on a read
 * failure (logged when its cause changes, and "dedup.store_read_ok" once
 * reads work again).
 */
int store_lookup(struct store *, const uint8_t key[STORE_KEY_SIZE], int64_t now,
    struct store_entry *e);

/* Queues |key| for the next flush; returns its ticket (> 0, increasing).
 * The namespace is kept for operators (truncated to 63 bytes). */
uint64_t store_stage(struct store *, const uint8_t key[STORE_KEY_SIZE],
    const char *ns, uint64_t stream_seq, int64_t expires, int64_t now);

/*
 * Commits what is queued in one write transaction, with a step of the
 * sweep: up to sweep_batch entries looked at, or 4 per key queued if that
 * is more, and the expired ones removed (also when nothing is queued, at
 * most once a second). Returns 0, or -1
 * when the commit failed (logged once per cause; the queue is kept for
 * the next flush).
 */
int store_flush(struct store *, int64_t now);

/* The highest ticket whose commit is durable as configured. */
uint64_t store_durable(const struct store *);

/* Why the store cannot take writes now (full, failing), or NULL. */
const char *store_problem(const struct store *);

/* Removes |key|; returns 1 if it was there, 0 if not, -1 on failure. */
int store_forget(struct store *, const uint8_t key[STORE_KEY_SIZE]);
/* Removes every entry; returns how many, or -1 on failure. */
int64_t store_purge(struct store *);
/* Returns 0 and fills |st|, or -1 on failure. */
int store_stats(struct store *, struct store_stats *st);

/* Tests: the |nth| LMDB call from now on (1: the next) fails with |rc|,
 * an MDB_* or errno code; 0 turns it off. */
void store_fail_nth(struct store *, unsigned nth, int rc);

/* Tests: the next allocation of the data file's blocks (durability os)
 * takes part of them, as a full disk does, and fails with |rc|; 0 turns
 * it off. */
void store_fail_allocation(struct store *, int rc);

/* Exposed for tests: whether statfs(2)'s f_type is a network filesystem,
 * on which LMDB's locking is not safe. */
bool store_fs_is_network(long f_type);

/* Exposed for tests: whether statfs(2)'s f_type is a copy-on-write
 * filesystem, where fallocate(2) reserves no blocks for later writes: the
 * map is not written in place there. */
bool store_fs_is_copy_on_write(long f_type);

#endif
