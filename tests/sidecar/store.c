/*
 * The dedup store on a real LMDB environment in a temporary directory:
 * commits and lookups, expiry and the bounded sweep, every LMDB call of a
 * flush failing in turn, a full map growing to its ceiling and then
 * refusing, the lock file, corrupt and foreign stores, fsync off the
 * loop, the map written in place (allocated on disk, written through
 * write(2) where it cannot be, never shrunk by an operator's open), the
 * sweep's walk in key order, and a store of format 1 migrated.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <lmdb.h>
#include <openssl/evp.h>

#include "harness/cmocka.h"
#include "harness/fatal.h"
#include "harness/proc.h"
#include "sidecar/log.h"
#include "sidecar/store.h"

#define S INT64_C(1000000000)
#define MIB (1024 * 1024)

static char dir[256];

static int
setup(void **state)
{
	return proc_tmpdir(dir, sizeof dir, "store-test");
}

static int
teardown(void **state)
{
	proc_rmtree(dir);
	return 0;
}

static struct store *
open_at(const char *sub, int64_t map, int64_t map_max, int64_t sweep,
    enum store_mode mode, char **err)
{
	char path[512];
	struct store_options o = { path, false, map, map_max, sweep };

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	*err = NULL;
	return store_open(NULL, &o, mode, err);
}

static struct store *
open_default(const char *sub)
{
	char *err;
	struct store *s = open_at(sub, MIB, 4 * MIB, 1000, STORE_DAEMON, &err);

	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static void
key_of(int i, uint8_t k[STORE_KEY_SIZE])
{
	char text[32];

	snprintf(text, sizeof text, "key-%d", i);
	store_key("orders", text, strlen(text), k);
}

/* The size and the bytes allocated of |sub|'s data file. */
static void
data_file(const char *sub, off_t *size, off_t *allocated)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s/data.mdb", dir, sub);
	if (stat(path, &st) == -1)
		fail_msg("stat %s: %s", path, strerror(errno));
	*size = st.st_size;
	*allocated = (off_t)st.st_blocks * 512;
}

/* Commits batches of new keys (from |*next|) until the map is |size|
 * bytes; returns the last flush's result. */
static int
fill_until(struct store *s, uint64_t size, int *next, int64_t now)
{
	struct store_stats st;
	uint8_t k[STORE_KEY_SIZE];
	int rc = 0;

	do {
		for (int j = 0; j < 500; j++) {
			key_of((*next)++, k);
			store_stage(s, k, "orders", 1, 1000 * S, now);
		}
		rc = store_flush(s, now);
		assert_int_equal(store_stats(s, &st), 0);
	} while (rc == 0 && st.map_size < size);
	return rc;
}

/* Commits batches of new keys (from |*next|) at 1 s until a flush fails,
 * the even ones expiring at |even|, the others at 1000 s. */
static void
fill_full(struct store *s, int *next, int64_t even)
{
	uint8_t k[STORE_KEY_SIZE];
	int rc = 0;

	for (int i = 0; i < 200 && rc == 0; i++) {
		for (int j = 0; j < 500; j++, (*next)++) {
			key_of(*next, k);
			store_stage(s, k, "orders", 1,
			    *next % 2 == 0 ? even : 1000 * S, S);
		}
		rc = store_flush(s, S);
	}
	assert_int_equal(rc, -1);
}

static int log_write_end = -1;

/* Sends log lines into a pipe; returns its read end. */
static int
log_capture(void)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	log_set_fd(fds[1]);
	log_write_end = fds[1];
	return fds[0];
}

/* Back to stderr; the captured lines into |buf|. */
static void
log_take(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);

	log_set_fd(STDERR_FILENO);
	close(log_write_end);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
}

/* Back to stderr; whether a captured line contains |needle|. */
static bool
log_captured(int fd, const char *needle)
{
	char buf[8192];

	log_take(fd, buf, sizeof buf);
	return strstr(buf, needle) != NULL;
}

/* How many of the lines in |text| are of |event|. */
static int
log_events(const char *text, const char *event)
{
	char needle[96];
	int n = 0;

	snprintf(needle, sizeof needle, "\"event\":\"%s\"", event);
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Opens |sub| as the daemon (a map of |map| bytes up to |map_max|); says
 * whether it logged |event|. */
static struct store *
open_logged(const char *sub, int64_t map, int64_t map_max, const char *event,
    bool *logged)
{
	int logs = log_capture();
	char *err;
	struct store *s = open_at(sub, map, map_max, 1000, STORE_DAEMON, &err);

	*logged = log_captured(logs, event);
	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static void
commits_are_found_until_they_expire(void **state)
{
	struct store *s = open_default("basic");
	uint8_t k[STORE_KEY_SIZE], other[STORE_KEY_SIZE];
	struct store_entry e;
	uint64_t t;

	key_of(1, k);
	store_key("payments", "key-1", 5, other);
	assert_memory_not_equal(k, other, STORE_KEY_SIZE);
	assert_int_equal(store_lookup(s, k, 100, NULL), 0);
	t = store_stage(s, k, "orders", 42, 10 * S, 100);
	/* Queued is not committed. */
	assert_true(store_durable(s) < t);
	assert_int_equal(store_lookup(s, k, 100, NULL), 0);
	assert_int_equal(store_flush(s, 200), 0);
	assert_true(store_durable(s) >= t);
	assert_int_equal(store_lookup(s, k, 300, &e), 1);
	assert_int_equal(e.stream_seq, 42);
	assert_int_equal(e.committed, 100);
	assert_int_equal(e.expires, 10 * S);
	assert_string_equal(e.ns, "orders");
	assert_int_equal(store_lookup(s, other, 300, NULL), 0);
	assert_int_equal(store_lookup(s, k, 10 * S, NULL), 0);
	assert_int_equal(store_forget(s, k), 1);
	assert_int_equal(store_forget(s, k), 0);
	assert_int_equal(store_lookup(s, k, 300, NULL), 0);
	store_close(s);
	store_close(NULL);
}

static void
sweep_is_bounded_and_keeps_recommitted_keys(void **state)
{
	char *err;
	struct store *s = open_at("sweep", MIB, MIB, 10, STORE_DAEMON, &err);
	struct store_stats st;
	uint8_t k[STORE_KEY_SIZE];

	assert_non_null(s);
	for (int i = 0; i < 50; i++) {
		key_of(i, k);
		store_stage(s, k, "orders", (uint64_t)i, 100, 1);
	}
	assert_int_equal(store_flush(s, 2), 0);
	/* Key 0 is committed again with a later expiry. */
	key_of(0, k);
	store_stage(s, k, "orders", 99, 100 * S, 3);
	assert_int_equal(store_flush(s, 50), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.entries, 50);
	/* Past the expiry: at most 10 index entries per flush. */
	key_of(100, k);
	store_stage(s, k, "orders", 100, 100 * S, 200);
	assert_int_equal(store_flush(s, 200), 0);
	assert_int_equal(store_stats(s, &st), 0);
	/* Ten looked at; key 0's old index entry removes no entry. */
	assert_true(st.expired == 9 || st.expired == 10);
	assert_int_equal(st.entries, 51 - st.expired);
	/* Idle flushes sweep too, once a second. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(store_flush(s, 200 + (i + 1) * 2 * S), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.expired, 49);
	assert_int_equal(st.entries, 2);
	key_of(0, k);
	assert_int_equal(store_lookup(s, k, 300, NULL), 1);
	store_close(s);
}

static void
every_failing_call_keeps_the_queue(void **state)
{
	struct store *s = open_default("failing");
	uint8_t k[STORE_KEY_SIZE];
	int64_t now = S;
	int failed = 0, rc;

	for (unsigned nth = 1; nth < 40; nth++) {
		uint64_t t;

		key_of((int)nth, k);
		t = store_stage(s, k, "orders", nth, 1000 * S, now);
		store_fail_nth(s, nth, EIO);
		now += 2 * S;
		rc = store_flush(s, now);
		store_fail_nth(s, 0, 0);
		if (rc == -1) {
			failed++;
			assert_non_null(store_problem(s));
			assert_true(store_durable(s) < t);
			assert_int_equal(store_lookup(s, k, now, NULL), 0);
			/* Retried a second later, without failing. */
			now += 2 * S;
			assert_int_equal(store_flush(s, now), 0);
		}
		assert_null(store_problem(s));
		assert_true(store_durable(s) >= t);
		assert_int_equal(store_lookup(s, k, now, NULL), 1);
	}
	/* The flush makes a handful of calls: each of them failed once. */
	assert_true(failed >= 4);
	store_close(s);
}

static void
full_map_grows_then_refuses(void **state)
{
	char *err;
	struct store *s =
	    open_at("full", MIB, 2 * MIB, 1000, STORE_DAEMON, &err);
	struct store_stats st;
	uint8_t k[STORE_KEY_SIZE];
	int next = 0;

	assert_non_null(s);
	fill_full(s, &next, 1000 * S);
	key_of(next - 1, k);
	assert_non_null(strstr(store_problem(s), "full"));
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.map_size, 2 * MIB);
	assert_true(st.entries > 2000);
	/* Retries wait a second; room made by an operator is used. */
	assert_int_equal(store_flush(s, S + 1), -1);
	assert_true(store_purge(s) > 2000);
	assert_int_equal(store_flush(s, 3 * S), 0);
	assert_null(store_problem(s));
	assert_int_equal(store_lookup(s, k, 3 * S, NULL), 1);
	store_close(s);
}

static void
one_daemon_per_store(void **state)
{
	struct store *a = open_default("locked"), *b, *c;
	char *err;

	b = open_at("locked", MIB, MIB, 10, STORE_DAEMON, &err);
	assert_null(b);
	assert_non_null(strstr(err, "in use by another nats-sidecar (pid "));
	assert_non_null(strstr(err, dir));
	free(err);
	/* Operators beside it are fine. */
	c = open_at("locked", MIB, MIB, 10, STORE_SHARED, &err);
	assert_non_null(c);
	store_close(c);
	c = open_at("locked", MIB, MIB, 10, STORE_READONLY, &err);
	assert_non_null(c);
	store_close(c);
	store_close(a);
	a = open_default("locked");
	store_close(a);
}

static void
corrupt_and_foreign_stores_are_named(void **state)
{
	char path[512], *err;
	struct store *s;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;
	MDB_val k = { 6, "format" }, v = { 5, "other" };
	int fd;

	snprintf(path, sizeof path, "%s/corrupt", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/corrupt/data.mdb", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, "not an LMDB file at all!", 24), 24);
	close(fd);
	assert_null(open_at("corrupt", MIB, MIB, 10, STORE_DAEMON, &err));
	assert_non_null(strstr(err, "corrupt"));
	assert_non_null(strstr(err, "move the directory aside"));
	free(err);

	snprintf(path, sizeof path, "%s/foreign", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_null(s = open_at("foreign", MIB, MIB, 10, STORE_DAEMON, &err));
	assert_non_null(strstr(err, "another format (\"other\""));
	free(err);

	assert_null(open_at("missing", MIB, MIB, 10, STORE_READONLY, &err));
	assert_non_null(err);
	free(err);
}

static void
network_filesystems_are_refused(void **state)
{
	assert_true(store_fs_is_network(0x6969));
	assert_true(store_fs_is_network((long)0xff534d42));
	assert_false(store_fs_is_network(0xef53)); /* ext4 */
	assert_false(store_fs_is_network(0x01021994)); /* tmpfs */
	assert_false(store_fs_is_network(0x58465342)); /* xfs */
}

static void
fsync_is_reported_through_the_loop(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char path[512], *err = NULL;
	struct store_options o = { path, true, MIB, MIB, 100 };
	struct store *s;
	uint8_t k[STORE_KEY_SIZE];
	uint64_t t;

	snprintf(path, sizeof path, "%s/fsync", dir);
	assert_non_null(s = store_open(loop, &o, STORE_DAEMON, &err));
	key_of(7, k);
	t = store_stage(s, k, "orders", 7, 1000 * S, S);
	assert_int_equal(store_flush(s, S), 0);
	/* Committed, but not durable before the worker says so. */
	assert_int_equal(store_lookup(s, k, S, NULL), 1);
	for (int i = 0; i < 500 && store_durable(s) < t; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		proc_sleep_ms(2);
	}
	assert_true(store_durable(s) >= t);
	store_close(s);
	ev_loop_destroy(loop);
}

static void
map_in_place_is_allocated_on_disk(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char path[512], *err;
	struct store_options o = { path, true, MIB, MIB, 100 };
	struct store *s = open_default("alloc"), *op;
	uint8_t k[STORE_KEY_SIZE];
	off_t size, allocated;
	int next = 0, status;
	pid_t pid;

	data_file("alloc", &size, &allocated);
	assert_true(allocated >= MIB);
	assert_int_equal(fill_until(s, 2 * MIB, &next, S), 0);
	data_file("alloc", &size, &allocated);
	assert_true(size >= 2 * MIB);
	assert_true(allocated >= 2 * MIB);
	/* An operator (a process of its own: LMDB wants one environment
	 * per file and process) with a smaller map leaves the daemon's file
	 * as it is. */
	key_of(0, k);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		op = open_at("alloc", MIB, MIB, 10, STORE_SHARED, &err);
		_exit(op != NULL && store_forget(op, k) == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	data_file("alloc", &size, &allocated);
	assert_true(size >= 2 * MIB);
	/* The daemon goes on writing in the whole of its map. */
	assert_int_equal(fill_until(s, 4 * MIB, &next, S), 0);
	key_of(next - 1, k);
	assert_int_equal(store_lookup(s, k, S, NULL), 1);
	key_of(0, k);
	assert_int_equal(store_lookup(s, k, S, NULL), 0);
	store_close(s);

	/* durability: fsync writes through write(2): nothing allocated
	 * ahead. */
	snprintf(path, sizeof path, "%s/alloc-fsync", dir);
	assert_non_null(s = store_open(loop, &o, STORE_DAEMON, &err));
	store_close(s);
	data_file("alloc-fsync", &size, &allocated);
	assert_true(size < MIB);
	ev_loop_destroy(loop);
}

static void
map_without_room_on_disk_is_written_through(void **state)
{
	struct rlimit saved, small;
	void (*xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
	struct store *s;
	uint8_t k[STORE_KEY_SIZE];
	off_t size, allocated;
	uint64_t t;
	char *err;
	bool logged;
	int next = 0;

	/* Files may not reach the map's size: the store opens written
	 * through, says so once, and works. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	small = saved;
	small.rlim_cur = MIB / 2;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	s = open_logged(
	    "through", MIB, 4 * MIB, "dedup.store_written_through", &logged);
	assert_true(logged);
	key_of(1, k);
	t = store_stage(s, k, "orders", 1, 1000 * S, S);
	assert_int_equal(store_flush(s, S), 0);
	assert_true(store_durable(s) >= t);
	assert_int_equal(store_lookup(s, k, S, NULL), 1);
	store_close(s);
	data_file("through", &size, &allocated);
	assert_true(size < MIB / 2);

	/* Files may reach the map but not its double: full, the map
	 * cannot grow, the queue waits, and goes in once there is room. */
	small.rlim_cur = MIB + MIB / 2;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	s = open_at("nogrow", MIB, 4 * MIB, 1000, STORE_DAEMON, &err);
	assert_non_null(s);
	assert_int_equal(fill_until(s, 2 * MIB, &next, S), -1);
	assert_non_null(strstr(store_problem(s), "cannot grow to 2 MiB"));
	t = store_stage(s, k, "orders", 1, 1000 * S, S);
	assert_int_equal(store_flush(s, S + 1), -1);
	assert_true(store_durable(s) < t);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	assert_int_equal(store_flush(s, 3 * S), 0);
	assert_null(store_problem(s));
	assert_true(store_durable(s) >= t);
	key_of(next - 1, k);
	assert_int_equal(store_lookup(s, k, 3 * S, NULL), 1);
	store_close(s);
	signal(SIGXFSZ, xfsz);
}

/* A transaction on the store at |path| with LMDB alone: a read one with
 * MDB_RDONLY, else a write one in a new directory. */
static MDB_txn *
raw_begin(const char *path, unsigned flags, MDB_env **env)
{
	MDB_txn *txn;

	if (!(flags & MDB_RDONLY))
		assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mdb_env_create(env), 0);
	assert_int_equal(mdb_env_set_maxdbs(*env, 4), 0);
	assert_int_equal(mdb_env_open(*env, path, flags, 0600), 0);
	assert_int_equal(mdb_txn_begin(*env, NULL, flags, &txn), 0);
	return txn;
}

/* Commits or aborts |txn| and closes |env|. */
static void
raw_end(MDB_env *env, MDB_txn *txn, bool commit)
{
	if (commit)
		assert_int_equal(mdb_txn_commit(txn), 0);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* Whether the store at |path| has format 1's index. */
static bool
has_index_1(const char *path)
{
	MDB_env *env;
	MDB_txn *txn = raw_begin(path, MDB_RDONLY, &env);
	MDB_dbi expiry;
	int rc = mdb_dbi_open(txn, "expiry", 0, &expiry);

	raw_end(env, txn, false);
	assert_true(rc == 0 || rc == MDB_NOTFOUND);
	return rc == 0;
}

/* The format record of the store at |path|. */
static void
format_of(const char *path, char *out, size_t cap)
{
	MDB_env *env;
	MDB_txn *txn = raw_begin(path, MDB_RDONLY, &env);
	MDB_dbi meta;
	MDB_val k = { 6, "format" }, v;

	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	assert_int_equal(mdb_get(txn, meta, &k, &v), 0);
	snprintf(out, cap, "%.*s", (int)v.mv_size, (char *)v.mv_data);
	raw_end(env, txn, false);
}

/* Flushes at |now|; the keys swept since open and the entries must be
 * |expired| and |entries|. */
static void
flush_expect(struct store *s, int64_t now, uint64_t expired, uint64_t entries)
{
	struct store_stats st;

	assert_int_equal(store_flush(s, now), 0);
	assert_int_equal(store_stats(s, &st), 0);
	if (st.expired != expired || st.entries != entries)
		fail_msg("flush at %" PRId64 " ns: %" PRIu64 " swept, %" PRIu64
			 " entries; expected %" PRIu64 ", %" PRIu64,
		    now, st.expired, st.entries, expired, entries);
}

/* Stages key |i| of namespace "orders" expiring at |expires|. */
static void
stage_key(struct store *s, int i, int64_t expires, int64_t now)
{
	uint8_t k[STORE_KEY_SIZE];

	key_of(i, k);
	store_stage(s, k, "orders", (uint64_t)i, expires, now);
}

static void
sweep_walks_the_keys_and_waits_for_the_earliest_expiry(void **state)
{
	struct store *s = open_default("walk");
	uint8_t k[STORE_KEY_SIZE];

	/* Keys of two ttls; the first walk goes round them all and finds
	 * nothing expired. */
	for (int i = 0; i < 200; i++)
		stage_key(s, i, i % 2 == 0 ? 100 * S : 1000 * S, S);
	flush_expect(s, S, 0, 200);
	/* A shorter ttl since: its key is swept at its expiry, before the
	 * earliest of the whole round. */
	stage_key(s, 200, 60 * S, 50 * S);
	flush_expect(s, 50 * S, 0, 201);
	flush_expect(s, 59 * S, 0, 201);
	flush_expect(s, 61 * S, 1, 200);
	key_of(0, k);
	assert_int_equal(store_lookup(s, k, 99 * S, NULL), 1);
	flush_expect(s, 99 * S, 1, 200);
	assert_int_equal(store_lookup(s, k, 100 * S, NULL), 0);
	flush_expect(s, 101 * S, 101, 100);
	key_of(1, k);
	assert_int_equal(store_lookup(s, k, 101 * S, NULL), 1);
	flush_expect(s, 1001 * S, 201, 0);
	store_close(s);
}

static void
failed_flush_forgets_what_its_walk_saw(void **state)
{
	unsigned nth;
	int rc = -1;

	/* Each LMDB call of a flush whose walk removes expired keys fails
	 * in turn, the commit last: the next flush sweeps them all the
	 * same, though that walk had gone round and found the earliest
	 * expiry of the keys left far ahead. */
	for (nth = 1; rc == -1; nth++) {
		char sub[32];
		struct store *s;

		snprintf(sub, sizeof sub, "forget-%u", nth);
		s = open_default(sub);
		for (int i = 0; i < 100; i++)
			stage_key(s, i, i < 50 ? 100 * S : 1000 * S, S);
		flush_expect(s, S, 0, 100);
		store_fail_nth(s, nth, EIO);
		rc = store_flush(s, 150 * S);
		store_fail_nth(s, 0, 0);
		flush_expect(s, 152 * S, 50, 50);
		store_close(s);
		assert_true(nth < 1000);
	}
	/* The walk's calls, one per key and the end, failed once each. */
	assert_true(nth > 100);
}

static void
full_map_with_expired_entries_takes_writes_again(void **state)
{
	char *err;
	struct store *s =
	    open_at("full-expired", MIB, MIB, 1000, STORE_DAEMON, &err);
	struct store_stats st;
	uint8_t k[STORE_KEY_SIZE];
	int next = 0;

	/* Every other key expires at 10 s: each leaf page keeps entries,
	 * so one transaction sweeping them all would copy every page of a
	 * map that has no room left. */
	assert_non_null(s);
	fill_full(s, &next, 10 * S);
	assert_non_null(strstr(store_problem(s), "full at the map ceiling"));
	/* Past the expiry the sweep frees the space in steps, and the
	 * queue goes in. */
	key_of(next, k);
	store_stage(s, k, "orders", 1, 1000 * S, 20 * S);
	assert_int_equal(store_flush(s, 20 * S), 0);
	assert_null(store_problem(s));
	assert_int_equal(store_lookup(s, k, 20 * S, NULL), 1);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.map_size, MIB);
	/* Half of the first seven batches at least. */
	assert_true(st.expired >= 1750);
	key_of(1, k);
	assert_int_equal(store_lookup(s, k, 20 * S, NULL), 1);
	store_close(s);
}

static void
sweep_keeps_pace_with_large_flushes(void **state)
{
	char *err;
	struct store *s =
	    open_at("pace", 16 * MIB, 64 * MIB, 10, STORE_DAEMON, &err);
	struct store_stats st;
	int64_t now = S;
	int next = 0;

	/* 500 keys a second for 40 s, each kept 5 s: some 2500 live at a
	 * time, though sweep_batch is 10; the map never fills, so only the
	 * flushes' own sweeps remove them. */
	assert_non_null(s);
	for (int i = 0; i < 40; i++, now += S) {
		for (int j = 0; j < 500; j++)
			stage_key(s, next++, now + 5 * S, now);
		assert_int_equal(store_flush(s, now), 0);
	}
	assert_int_equal(store_stats(s, &st), 0);
	if (st.entries > 7500)
		fail_msg("%" PRIu64 " entries after %d keys of which some "
			 "2500 live; %" PRIu64 " swept",
		    st.entries, next, st.expired);
	store_close(s);
}

static void
reopened_store_keeps_its_map(void **state)
{
	struct store *s = open_default("regrown");
	struct store_stats st;
	off_t size, allocated;
	char *err;
	int next = 0;

	/* Grown to 2 MiB with a little more than 1 MiB used. */
	assert_int_equal(fill_until(s, 2 * MIB, &next, S), 0);
	store_close(s);
	s = open_default("regrown");
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.map_size, 2 * MIB);
	data_file("regrown", &size, &allocated);
	assert_int_equal(size, 2 * MIB);
	assert_true(allocated >= 2 * MIB);
	store_close(s);
	/* An operator's map is the store's too. */
	s = open_at("regrown", MIB, MIB, 10, STORE_READONLY, &err);
	assert_non_null(s);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.map_size, 2 * MIB);
	store_close(s);
}

/* In a process of its own, an operator with a map of |map| bytes commits
 * |n| new keys in batches; returns whether all went in. */
static bool
operator_commits(const char *sub, int64_t map, int n)
{
	int status;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		char *err;
		struct store *op =
		    open_at(sub, map, 2 * map, 1000, STORE_SHARED, &err);
		uint8_t k[STORE_KEY_SIZE];
		int rc = op == NULL;

		for (int i = 0; i < n && rc == 0; i++) {
			key_of(100000 + i, k);
			store_stage(op, k, "orders", 1, 1000 * S, S);
			if (i % 500 == 499 || i == n - 1)
				rc = store_flush(op, S);
		}
		store_close(op);
		_exit(rc == 0 ? 0 : 1);
	}
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0;
}

static void
map_grown_by_another_process_is_taken(void **state)
{
	struct store *s = open_default("resized");
	struct store_stats st;
	uint8_t k[STORE_KEY_SIZE];
	off_t size, allocated;

	/* Its commits reach past the daemon's map of 1 MiB: the daemon
	 * maps the file's size and reads and writes on. */
	assert_true(operator_commits("resized", 4 * MIB, 15000));
	key_of(100000, k);
	assert_int_equal(store_lookup(s, k, 2 * S, NULL), 1);
	key_of(1, k);
	store_stage(s, k, "orders", 1, 1000 * S, 2 * S);
	assert_int_equal(store_flush(s, 2 * S), 0);
	assert_null(store_problem(s));
	assert_int_equal(store_lookup(s, k, 2 * S, NULL), 1);
	assert_int_equal(store_stats(s, &st), 0);
	assert_true(st.map_size >= 4 * MIB);
	assert_int_equal(st.entries, 15001);
	/* Written in place, the map is allocated on disk. */
	data_file("resized", &size, &allocated);
	assert_true(allocated >= (off_t)st.map_size);
	store_close(s);
}

static void
failed_allocation_gives_its_blocks_back(void **state)
{
	struct store *s = open_default("giveback");
	struct statvfs vfs;
	off_t size, allocated;
	int64_t huge;
	bool logged;
	int next = 0;

	/* Growing to 2 MiB allocates half of it and fails: the file is cut
	 * back to the map of 1 MiB, its blocks given back. */
	store_fail_allocation(s, ENOSPC);
	assert_int_equal(fill_until(s, 2 * MIB, &next, S), -1);
	assert_non_null(strstr(store_problem(s),
	    "cannot grow to 2 MiB on disk: No space left on device"));
	data_file("giveback", &size, &allocated);
	if (size != MIB || allocated > MIB + MIB / 8)
		fail_msg("data file of %jd bytes, %jd allocated, after a "
			 "failed allocation",
		    (intmax_t)size, (intmax_t)allocated);
	/* Once the disk has room, the map grows. */
	assert_int_equal(store_flush(s, 3 * S), 0);
	assert_null(store_problem(s));
	data_file("giveback", &size, &allocated);
	assert_true(allocated >= 2 * MIB);
	store_close(s);

	/* A map larger than the volume's free space is not tried: nothing
	 * is allocated, and the store is written through. */
	assert_int_equal(statvfs(dir, &vfs), 0);
	huge = ((int64_t)(vfs.f_bavail * vfs.f_frsize) * 2 + 1024 * MIB) &
	    ~(int64_t)(MIB - 1);
	s = open_logged("huge", huge, huge, "No space left on device", &logged);
	assert_true(logged);
	data_file("huge", &size, &allocated);
	assert_true(size < MIB && allocated < MIB);
	store_close(s);
}

static void
copy_on_write_filesystems_are_written_through(void **state)
{
	assert_true(store_fs_is_copy_on_write((long)0x9123683e)); /* Btrfs */
	assert_true(store_fs_is_copy_on_write(0x2fc12fc1)); /* ZFS */
	assert_true(store_fs_is_copy_on_write((long)0xca451a4e));
	assert_true(store_fs_is_copy_on_write(0x3434)); /* NILFS2 */
	/* f_type is signed on some ABIs. */
	assert_true(store_fs_is_copy_on_write((long)(int32_t)0x9123683e));
	assert_false(store_fs_is_copy_on_write(0xef53)); /* ext4 */
	assert_false(store_fs_is_copy_on_write(0x58465342)); /* xfs */
	assert_false(store_fs_is_copy_on_write(0x01021994)); /* tmpfs */
	assert_false(store_fs_is_copy_on_write(0x6969)); /* NFS */
}

/* Zeroes pages |from| to |to| (excluded; -1: the end) of |sub|'s data
 * file. */
static void
pages_zeroed(const char *sub, off_t from, off_t to)
{
	long page = sysconf(_SC_PAGESIZE);
	char path[512], *zero = calloc(1, (size_t)page);
	off_t size, allocated;
	int fd;

	data_file(sub, &size, &allocated);
	snprintf(path, sizeof path, "%s/%s/data.mdb", dir, sub);
	assert_true((fd = open(path, O_WRONLY)) >= 0);
	for (off_t p = from; p < (to < 0 ? size / page : to); p++)
		assert_int_equal(
		    pwrite(fd, zero, (size_t)page, p * page), page);
	close(fd);
	free(zero);
}

/* Opening |sub| in |mode| fails with an error naming its data file and
 * saying to move it aside. */
static void
open_names_damage(const char *sub, enum store_mode mode)
{
	char file[512], *err;

	snprintf(file, sizeof file, "%s/%s/data.mdb", dir, sub);
	assert_null(open_at(sub, MIB, 4 * MIB, 1000, mode, &err));
	if (strstr(err, file) == NULL || strstr(err, "damaged") == NULL ||
	    strstr(err, "move the directory aside") == NULL)
		fail_msg("opening %s: %s", sub, err);
	free(err);
}

static void
damaged_pages_are_named_at_open(void **state)
{
	struct store *s = open_default("damaged");

	for (int i = 0; i < 2000; i++)
		stage_key(s, i, 1000 * S, S);
	assert_int_equal(store_flush(s, S), 0);
	store_close(s);
	/* The meta pages (the first two) are sound; the trees they point
	 * to are not. */
	pages_zeroed("damaged", 2, -1);
	open_names_damage("damaged", STORE_DAEMON);
	open_names_damage("damaged", STORE_READONLY);
	/* A meta page itself. */
	pages_zeroed("damaged", 0, 1);
	open_names_damage("damaged", STORE_DAEMON);
}

/* Damage met while running (not at open) names the file and what to do,
 * as at open. */
static void
damaged_pages_are_named_while_running(void **state)
{
	struct store *s = open_default("damaged-run");
	const char *problem;
	char file[512];

	for (int i = 0; i < 2000; i++)
		stage_key(s, i, 1000 * S, S);
	assert_int_equal(store_flush(s, S), 0);
	pages_zeroed("damaged-run", 2, -1);
	for (int i = 2000; i < 2100; i++)
		stage_key(s, i, 1000 * S, 2 * S);
	assert_int_equal(store_flush(s, 2 * S), -1);
	snprintf(file, sizeof file, "%s/damaged-run/data.mdb", dir);
	assert_non_null(problem = store_problem(s));
	if (strstr(problem, file) == NULL ||
	    strstr(problem, "damaged") == NULL ||
	    strstr(problem, "move the directory aside") == NULL)
		fail_msg("the problem: %s", problem);
	store_close(s);
}

/* Every delivery's lookup meets damaged pages: logged once, naming the
 * file and what to do, not once per delivery. */
static void
damaged_reads_are_logged_once_saying_what_to_do(void **state)
{
	struct store *s = open_default("damaged-read");
	char file[512], text[32768];
	uint8_t k[STORE_KEY_SIZE];
	int logs, failed = 0;

	for (int i = 0; i < 2000; i++)
		stage_key(s, i, 1000 * S, S);
	assert_int_equal(store_flush(s, S), 0);
	pages_zeroed("damaged-read", 2, -1);
	logs = log_capture();
	for (int i = 0; i < 50; i++) {
		key_of(i, k);
		failed += store_lookup(s, k, 2 * S, NULL) == -1;
	}
	log_take(logs, text, sizeof text);
	assert_int_equal(failed, 50);
	assert_int_equal(log_events(text, "dedup.store_read"), 1);
	snprintf(file, sizeof file, "%s/damaged-read/data.mdb", dir);
	if (strstr(text, file) == NULL ||
	    strstr(text, "move the directory aside") == NULL)
		fail_msg("logged: %s", text);
	store_close(s);
}

/* One damaged page among sound ones: the lookups that reach it fail and
 * the others work, between stats scrapes that read other pages. Logged
 * once still, and never as reading again. */
static void
one_damaged_page_is_logged_once(void **state)
{
	struct store *s = open_default("damaged-leaf");
	struct store_stats st;
	char text[32768];
	uint8_t k[STORE_KEY_SIZE];
	int logs, failed = 0;

	for (int i = 0; i < 2000; i++)
		stage_key(s, i, 1000 * S, S);
	assert_int_equal(store_flush(s, S), 0);
	pages_zeroed("damaged-leaf", 10, 11);
	logs = log_capture();
	for (int i = 0; i < 2000; i++) {
		key_of(i, k);
		failed += store_lookup(s, k, 2 * S, NULL) == -1;
		if (i % 200 == 0)
			store_stats(s, &st);
	}
	log_take(logs, text, sizeof text);
	printf("# one damaged page: %d of 2000 lookups failed\n", failed);
	if (failed == 0 || failed > 200)
		fail_msg(
		    "%d lookups failed: expected those of one page", failed);
	assert_int_equal(log_events(text, "dedup.store_read"), 1);
	assert_int_equal(log_events(text, "dedup.store_read_ok"), 0);
	if (strstr(text, "move the directory aside") == NULL)
		fail_msg("logged: %s", text);
	store_close(s);
}

/* A failure of reads is logged when it starts and when it ends. */
static void
a_read_failure_is_logged_when_it_starts_and_ends(void **state)
{
	struct store *s = open_default("read-fails");
	char text[32768];
	uint8_t k[STORE_KEY_SIZE];
	int logs;

	key_of(1, k);
	assert_int_equal(store_lookup(s, k, S, NULL), 0);
	logs = log_capture();
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 20; i++) {
			store_fail_nth(s, 1, EIO);
			assert_int_equal(store_lookup(s, k, S, NULL), -1);
		}
		assert_int_equal(store_lookup(s, k, S, NULL), 0);
	}
	log_take(logs, text, sizeof text);
	assert_int_equal(log_events(text, "dedup.store_read"), 2);
	assert_int_equal(log_events(text, "dedup.store_read_ok"), 2);
	if (strstr(text, strerror(EIO)) == NULL)
		fail_msg("logged: %s", text);
	store_close(s);
}

/* In a child: the map of a store grows with no address space left for
 * the larger one. */
static void
remap_without_memory(void *arg)
{
	char *err;
	struct store *s =
	    open_at("remap", 4 * MIB, 16 * MIB, 1000, STORE_DAEMON, &err);
	FILE *f = fopen("/proc/self/statm", "r");
	uint8_t k[STORE_KEY_SIZE];
	struct rlimit as;
	long pages;
	int rc = 0;

	if (s == NULL || f == NULL || fscanf(f, "%ld", &pages) != 1)
		_exit(2);
	fclose(f);
	/* Room for what a flush allocates, not for a map twice as large. */
	as.rlim_cur = as.rlim_max =
	    (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + 2 * MIB;
	if (setrlimit(RLIMIT_AS, &as) == -1)
		_exit(2);
	for (int i = 0; i < 1000 && rc == 0; i++) {
		for (int j = 0; j < 500; j++) {
			key_of(i * 500 + j, k);
			store_stage(s, k, "orders", 1, 1000 * S, S);
		}
		rc = store_flush(s, S);
	}
	_exit(3);
}

static void
failed_remap_ends_the_process_saying_why(void **state)
{
	assert_int_equal(
	    fatal_expect(remap_without_memory, NULL, "cannot be mapped again"),
	    0);
}

/* SHA-256 of the namespace, its NUL and the key: the digest of every
 * format, computed here without store_key(). */
static void
digest_of(const char *ns, const char *key, uint8_t out[STORE_KEY_SIZE])
{
	uint8_t buf[128];
	size_t n = strlen(ns) + 1;

	memcpy(buf, ns, n);
	memcpy(buf + n, key, strlen(key));
	n += strlen(key);
	assert_int_equal(EVP_Digest(buf, n, out, NULL, EVP_sha256(), NULL), 1);
}

/*
 * Writes a store as format 1 did, with LMDB alone: keys "old-0" to
 * "old-9" committed at 1 s, the first five expiring at 10 s, the others
 * at 1000 s, each with its index entry (big-endian expiry + digest ->
 * nothing).
 */
static void
format_1_write(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, entries, expiry;
	MDB_val k = { 6, "format" }, v = { 20, "nats-sidecar dedup 1" };

	txn = raw_begin(path, 0, &env);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	assert_int_equal(mdb_dbi_open(txn, "entries", MDB_CREATE, &entries), 0);
	assert_int_equal(mdb_dbi_open(txn, "expiry", MDB_CREATE, &expiry), 0);
	assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
	for (int i = 0; i < 10; i++) {
		int64_t value[3] = { i < 5 ? 10 * S : 1000 * S, S, 100 + i };
		uint8_t entry[24 + 6], index[8 + STORE_KEY_SIZE];
		char key[16];
		MDB_val ek = { STORE_KEY_SIZE, index + 8 },
			ev = { sizeof entry, entry };
		MDB_val ik = { sizeof index, index }, none = { 0, "" };

		snprintf(key, sizeof key, "old-%d", i);
		digest_of("orders", key, index + 8);
		for (int b = 0; b < 8; b++)
			index[b] =
			    (uint8_t)((uint64_t)value[0] >> (56 - 8 * b));
		memcpy(entry, value, 24);
		memcpy(entry + 24, "orders", 6);
		assert_int_equal(mdb_put(txn, entries, &ek, &ev, 0), 0);
		assert_int_equal(mdb_put(txn, expiry, &ik, &none, 0), 0);
	}
	raw_end(env, txn, true);
}

static void
format_1_store_is_migrated_and_keeps_its_keys(void **state)
{
	char path[512], format[64], *err;
	struct store *s;
	struct store_entry e;
	struct store_stats st;
	uint8_t k[STORE_KEY_SIZE];
	bool logged;

	snprintf(path, sizeof path, "%s/format1", dir);
	format_1_write(path);
	/* Operators read and write it as it is: a daemon of format 1 may
	 * run beside them. */
	assert_non_null(
	    s = open_at("format1", MIB, MIB, 1000, STORE_READONLY, &err));
	store_key("orders", "old-7", 5, k);
	assert_int_equal(store_lookup(s, k, 2 * S, &e), 1);
	assert_int_equal(e.expires, 1000 * S);
	assert_int_equal(e.committed, S);
	assert_int_equal(e.stream_seq, 107);
	assert_string_equal(e.ns, "orders");
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.entries, 10);
	store_close(s);
	assert_non_null(
	    s = open_at("format1", MIB, MIB, 1000, STORE_SHARED, &err));
	store_key("orders", "old-9", 5, k);
	assert_int_equal(store_forget(s, k), 1);
	store_close(s);
	format_of(path, format, sizeof format);
	assert_string_equal(format, "nats-sidecar dedup 1");
	assert_true(has_index_1(path));

	/* The daemon migrates it, once, and says so: the index goes, the
	 * entries stay. */
	s = open_logged("format1", MIB, MIB, "dedup.store_migrated", &logged);
	assert_true(logged);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.entries, 9);
	for (int i = 0; i < 10; i++) {
		char key[16];

		snprintf(key, sizeof key, "old-%d", i);
		store_key("orders", key, strlen(key), k);
		assert_int_equal(store_lookup(s, k, 2 * S, NULL), i < 9);
	}
	/* New keys beside the old; the walk sweeps the old ones as they
	 * expire, the later ones kept. */
	key_of(1, k);
	store_stage(s, k, "orders", 1, 2000 * S, 2 * S);
	flush_expect(s, 20 * S, 5, 5);
	store_key("orders", "old-5", 5, k);
	assert_int_equal(store_lookup(s, k, 20 * S, NULL), 1);
	store_close(s);
	format_of(path, format, sizeof format);
	assert_string_equal(format, "nats-sidecar dedup 2");
	assert_false(has_index_1(path));
	s = open_logged("format1", MIB, MIB, "dedup.store_migrated", &logged);
	assert_false(logged);
	flush_expect(s, 1500 * S, 4, 1);
	key_of(1, k);
	assert_int_equal(store_lookup(s, k, 1500 * S, NULL), 1);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(commits_are_found_until_they_expire),
		cmocka_unit_test(sweep_is_bounded_and_keeps_recommitted_keys),
		cmocka_unit_test(every_failing_call_keeps_the_queue),
		cmocka_unit_test(full_map_grows_then_refuses),
		cmocka_unit_test(one_daemon_per_store),
		cmocka_unit_test(corrupt_and_foreign_stores_are_named),
		cmocka_unit_test(network_filesystems_are_refused),
		cmocka_unit_test(fsync_is_reported_through_the_loop),
		cmocka_unit_test(map_in_place_is_allocated_on_disk),
		cmocka_unit_test(map_without_room_on_disk_is_written_through),
		cmocka_unit_test(
		    sweep_walks_the_keys_and_waits_for_the_earliest_expiry),
		cmocka_unit_test(failed_flush_forgets_what_its_walk_saw),
		cmocka_unit_test(format_1_store_is_migrated_and_keeps_its_keys),
		cmocka_unit_test(
		    full_map_with_expired_entries_takes_writes_again),
		cmocka_unit_test(sweep_keeps_pace_with_large_flushes),
		cmocka_unit_test(reopened_store_keeps_its_map),
		cmocka_unit_test(map_grown_by_another_process_is_taken),
		cmocka_unit_test(failed_allocation_gives_its_blocks_back),
		cmocka_unit_test(copy_on_write_filesystems_are_written_through),
		cmocka_unit_test(damaged_pages_are_named_at_open),
		cmocka_unit_test(failed_remap_ends_the_process_saying_why),
		cmocka_unit_test(damaged_pages_are_named_while_running),
		cmocka_unit_test(
		    damaged_reads_are_logged_once_saying_what_to_do),
		cmocka_unit_test(
		    a_read_failure_is_logged_when_it_starts_and_ends),
		cmocka_unit_test(one_damaged_page_is_logged_once),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
