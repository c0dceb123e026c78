/*
 * The dedup store over LMDB: two databases in one environment, "entries"
 * (digest -> entry) and "meta" (the format version).
 *
 * The sweep walks the entries in key order, a few per key committed, and
 * removes the expired ones it passes: neighbours share leaf pages, so a
 * page is copied once for all the expired entries on it, where removing
 * them in expiry order copied a page for each. An expired entry stays
 * until the walk comes round (lookups count it as gone from its expiry
 * on); with SWEEP_PER_KEY entries looked at per key committed, a round
 * takes about a seventh of a ttl under a steady load. After a whole round
 * the store knows its earliest expiry and does not walk before it.
 *
 * Format 1 also had "expiry", an index of big-endian expiry + digest ->
 * nothing, which cost a second insert per key and a random delete per
 * expired key. The daemon migrates a store of format 1 by dropping that
 * index and rewriting the format record, in one transaction; the entries
 * stay. Operator commands leave the format as it is: a daemon of format 1
 * beside them may still run, and its sweep takes index entries whose
 * entry an operator removed.
 *
 * The environment is opened with MDB_NOSYNC: a commit is a write into the
 * page cache, which survives a killed process, and `durability: fsync`
 * adds an mdb_env_sync() on the worker thread. MDB_NOTLS lets the loop
 * keep one read transaction for lookups (renewed after each commit) while
 * it also writes.
 *
 * The daemon with `durability: os` also opens it with MDB_WRITEMAP: a
 * commit then writes its pages in the shared map, which is the page cache
 * itself, instead of copying each one through pwrite(2) (random keys
 * dirty about one page each, so that was a system call per key). The
 * file's blocks are allocated up front (fallocate(2), at open and when
 * the map grows): a page of the map in a hole of a full disk would kill
 * the process with SIGBUS where pwrite(2) fails with ENOSPC. On a
 * copy-on-write filesystem (Btrfs, ZFS, bcachefs, NILFS2) every write
 * takes new blocks, so allocating the file reserves nothing and the map
 * is never written in place there. Nothing is tried past the volume's
 * free space (fstatvfs(2)), and the blocks a failed fallocate(2) took
 * are given back by cutting the file to its size before. Where that
 * allocation fails the store is opened without MDB_WRITEMAP. `fsync`
 * keeps pwrite(2): every sync would write-protect the map's pages again,
 * and the next commit would fault on each of them. Operator commands never
 * use it: their smaller map would truncate the file under the daemon's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "failpoint.h"
#include "handoff.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define FORMAT "nats-sidecar dedup 2"
#define FORMAT_1 "nats-sidecar dedup 1"
#define LOCK_FILE "nats-sidecar.lock"
#define NS_PER_S INT64_C(1000000000)
/* Idle sweeps and retries after a failure, at most this often. */
#define RETRY_NS NS_PER_S
/* An entry's value: expires, committed, stream_seq, then the namespace. */
#define VALUE_FIXED 24
/* Entries the sweep looks at per key committed (up to sweep_batch), and
 * at least per flush. */
#define SWEEP_PER_KEY 8
#define SWEEP_MIN 64
/* Entries looked at per key committed past sweep_batch: with a flush
 * larger than sweep_batch / SWEEP_PACE a round still takes at most a
 * third of a ttl, and the store holds at most a third more than its live
 * keys, however fast they come. */
#define SWEEP_PACE 4

/* A read failure's kind when the data file is damaged (not an LMDB or
 * errno code), and what failed reads stop. */
#define READ_DAMAGED (-1)
#define LOOKUPS_FAIL "lookups fail, deliveries go back to be retried"
#define STATS_FAIL "its stats cannot be read"

struct staged {
	uint8_t key[STORE_KEY_SIZE];
	uint8_t value[VALUE_FIXED + sizeof((struct store_entry *)0)->ns];
	size_t value_len;
	int64_t expires;
};

struct store {
	char *path;
	struct store_options opt;
	enum store_mode mode;
	MDB_env *env;
	MDB_dbi entries;
	MDB_dbi index_1; /* format 1's "expiry", for operators' stats */
	bool has_index_1;
	MDB_txn *rtxn; /* lookups; reset before each write */
	bool rtxn_live;
	bool writemap; /* MDB_WRITEMAP, the file allocated up to map_size */
	int lock_fd;
	int64_t map_size;

	struct staged *staged;
	size_t nstaged, cap;
	uint64_t next_ticket, committed_ticket, durable_ticket;
	int64_t retry_at; /* no idle sweep or retry before */
	char *problem; /* why writes fail now, or NULL */
	int read_failing; /* why reads fail: 0, an errno or MDB_* code, or
			   * READ_DAMAGED */
	uint64_t committed, expired;

	/* The sweep's walk: where it goes on (after |sweep_at|), the
	 * earliest expiry it met in this round and since (valid unless a
	 * write failed), and the earliest of the last whole round. */
	uint8_t sweep_at[STORE_KEY_SIZE];
	bool sweep_resume;
	int64_t round_min;
	bool round_ok;
	int64_t next_expiry; /* nothing expires before; INT64_MIN: unknown */
	uint64_t rounds; /* walks that reached the last key */

	/* durability: fsync. The worker syncs up to |sync_want|. */
	struct handoff *handoff;
	pthread_t worker;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	uint64_t sync_want; /* under lock; 0: nothing to do */
	bool stopping; /* under lock */
	bool syncing; /* loop: a sync was requested and not reported */
	bool sync_failed; /* the last sync failed; acks wait */
	long sync_delay_ms; /* failpoint dedup.sync_delay_ms */

	unsigned fail_nth; /* tests: the call that fails, counting down */
	int fail_rc;
	int alloc_fail; /* tests: the next allocation fails with */
};

static int write_txn(struct store *, int64_t, bool, uint64_t);

/* Every LMDB call goes through this, so tests can fail the Nth one. */
#define LMDB(s, call) (store_injected(s) ? (s)->fail_rc : (call))

static bool
store_injected(struct store *s)
{
	return s->fail_nth > 0 && --s->fail_nth == 0;
}

/* mdb_txn_commit(), which frees |txn| whatever happens, even when a test
 * makes it fail. */
static int
txn_commit(struct store *s, MDB_txn *txn)
{
	if (store_injected(s)) {
		mdb_txn_abort(txn);
		return s->fail_rc;
	}
	return mdb_txn_commit(txn);
}

void
store_fail_nth(struct store *s, unsigned nth, int rc)
{
	s->fail_nth = nth;
	s->fail_rc = rc;
}

void
store_fail_allocation(struct store *s, int rc)
{
	s->alloc_fail = rc;
}

/* Whether the statfs(2) type |f_type| is one of |types|: compared on 32
 * bits, as f_type is signed on some ABIs. */
static bool
fs_type_in(long f_type, const long *types, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((f_type & 0xffffffffL) == types[i])
			return true;
	}
	return false;
}

bool
store_fs_is_network(long f_type)
{
	static const long network[] = {
		0x6969, /* NFS */
		0x517b, /* SMB */
		0xff534d42, /* CIFS */
		0xfe534d42, /* SMB2 */
		0x00c36400, /* Ceph */
		0x01021997, /* 9P */
		0x5346414f, /* AFS */
		0x73757245, /* Coda */
		0x0bd00bd0, /* Lustre */
		0x01161970, /* GFS2 */
		0x7461636f, /* OCFS2 */
		0x65735546, /* FUSE: s3fs, gcsfuse, sshfs */
	};

	return fs_type_in(f_type, network, sizeof network / sizeof network[0]);
}

bool
store_fs_is_copy_on_write(long f_type)
{
	static const long cow[] = {
		0x9123683e, /* Btrfs */
		0x2fc12fc1, /* ZFS */
		0xca451a4e, /* bcachefs */
		0x3434, /* NILFS2 */
	};

	return fs_type_in(f_type, cow, sizeof cow / sizeof cow[0]);
}

void
store_key(
    const char *ns, const void *key, size_t len, uint8_t out[STORE_KEY_SIZE])
{
	/* Fetched once: OpenSSL 3 looks the algorithm up on every one-shot
	 * call, which costs more than hashing a short key. Loop thread. */
	static EVP_MD *sha256;
	static EVP_MD_CTX *ctx;

	if (ctx == NULL &&
	    ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
		(ctx = EVP_MD_CTX_new()) == NULL))
		fatalx("store: SHA-256 is not available");
	if (EVP_DigestInit_ex(ctx, sha256, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, ns, strlen(ns) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, key, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		fatalx("store: SHA-256 failed");
}

static void
entry_decode(const MDB_val *v, struct store_entry *e)
{
	size_t n = v->mv_size - VALUE_FIXED;

	memcpy(&e->expires, v->mv_data, 8);
	memcpy(&e->committed, (char *)v->mv_data + 8, 8);
	memcpy(&e->stream_seq, (char *)v->mv_data + 16, 8);
	if (n >= sizeof e->ns)
		n = sizeof e->ns - 1;
	memcpy(e->ns, (char *)v->mv_data + VALUE_FIXED, n);
	e->ns[n] = '\0';
}

/* Takes |text| as the problem, logging it when it changes. */
static void
set_problem(struct store *s, char *text)
{
	if (s->problem == NULL || strcmp(s->problem, text) != 0)
		log_errorx(
		    "dedup.store_problem", "dedup store %s: %s", s->path, text);
	free(s->problem);
	s->problem = text;
}

static void
clear_problem(struct store *s)
{
	if (s->problem == NULL)
		return;
	log_info(
	    "dedup.store_ok", "dedup store %s takes writes again", s->path);
	free(s->problem);
	s->problem = NULL;
}

/* The worker: one mdb_env_sync() at a time, reported through the queue. */
static void *
sync_worker(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		uint64_t want;
		int rc;

		while (s->sync_want == 0 && !s->stopping)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->stopping)
			break;
		want = s->sync_want;
		s->sync_want = 0;
		pthread_mutex_unlock(&s->lock);
		if (s->sync_delay_ms > 0)
			usleep((useconds_t)s->sync_delay_ms * 1000);
		rc = mdb_env_sync(s->env, 1);
		handoff_push(s->handoff, rc, want, NULL);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void
sync_start(struct store *s)
{
	if (s->syncing || s->durable_ticket == s->committed_ticket)
		return;
	s->syncing = true;
	pthread_mutex_lock(&s->lock);
	s->sync_want = s->committed_ticket;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

/* On the loop: a sync ended. */
static void
on_synced(void *arg, const struct handoff_item *items, size_t n)
{
	struct store *s = arg;

	for (size_t i = 0; i < n; i++) {
		s->syncing = false;
		if (items[i].kind != 0) {
			/* Not durable: the acks wait and the sync is tried
			 * again with the next flush. */
			if (!s->sync_failed)
				log_errorx("dedup.sync_failed",
				    "dedup store %s: fsync failed: %s", s->path,
				    mdb_strerror(items[i].kind));
			s->sync_failed = true;
			continue;
		}
		s->sync_failed = false;
		if (items[i].tag > s->durable_ticket)
			s->durable_ticket = items[i].tag;
	}
	if (s->durable_ticket < s->committed_ticket)
		sync_start(s);
}

/* Takes the lock file; returns 0, or -1 with |*err|. */
static int
lock_take(struct store *s, char **err)
{
	char *file = xasprintf("%s/%s", s->path, LOCK_FILE);
	char pid[32] = "";
	ssize_t n;

	s->lock_fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd == -1) {
		*err = xasprintf("cannot open %s: %s", file, strerror(errno));
		free(file);
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if ((n = pread(s->lock_fd, pid, sizeof pid - 1, 0)) > 0)
			pid[strcspn(pid, "\n")] = '\0';
		*err = xasprintf("dedup store %s is in use by another "
				 "nats-sidecar (pid %s): one daemon per store; "
				 "give each sidecar its own directory",
		    s->path, pid[0] != '\0' ? pid : "unknown");
		free(file);
		return -1;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) == -1 ||
	    pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
		log_warn("dedup.lock_file", "cannot write the pid to %s", file);
	free(file);
	return 0;
}

/*
 * Allocates the data file's blocks up to |size| bytes; returns 0 or an
 * errno (ENOSPC, EDQUOT, EFBIG, EOPNOTSUPP where the filesystem cannot).
 * Nothing is tried beyond the volume's free space. A fallocate(2) that
 * fails may have allocated part of the range: the file is cut back to
 * |keep| bytes (-1: the size it had), which gives those blocks back.
 */
static int
map_reserve(struct store *s, int64_t size, int64_t keep)
{
	struct statvfs vfs;
	struct stat st;
	int64_t need;
	int fd, rc;

	if (mdb_env_get_fd(s->env, &fd) != 0)
		return EBADF;
	if (fstat(fd, &st) == -1 || fstatvfs(fd, &vfs) == -1)
		return errno;
	if (keep < 0 || keep > (int64_t)st.st_size)
		keep = (int64_t)st.st_size;
	need = size - (int64_t)st.st_blocks * 512;
	if (need > 0 && (uint64_t)need / vfs.f_frsize > vfs.f_bavail)
		rc = ENOSPC;
	else if (s->alloc_fail != 0) {
		/* As a full disk does: part of the range taken. */
		rc = s->alloc_fail;
		s->alloc_fail = 0;
		(void)fallocate(fd, 0, 0, (off_t)(keep + (size - keep) / 2));
	} else {
		rc = LMDB(s, fallocate(fd, 0, 0, (off_t)size) == 0 ? 0 : errno);
		if (rc == 0)
			return 0;
	}
	if (ftruncate(fd, (off_t)keep) == -1)
		log_warn("dedup.store_truncate",
		    "dedup store %s: cannot give back the blocks of a map "
		    "that failed to allocate",
		    s->path);
	return rc;
}

/*
 * Sets the map's size (0: the size in the file). LMDB lets go of the old
 * map first, and where the new one cannot be made the environment has
 * none: the process cannot go on with it, and ends saying why.
 */
static void
map_set(struct store *s, size_t size)
{
	char at[32] = "the size in its file";
	int rc;

	if ((rc = LMDB(s, mdb_env_set_mapsize(s->env, size))) == 0)
		return;
	if (size > 0)
		snprintf(at, sizeof at, "%zu MiB", size >> 20);
	fatalx("dedup store %s: its map cannot be mapped again at %s (%s), "
	       "and LMDB has let go of the old one: the store is intact on "
	       "disk, and a restart opens it",
	    s->path, at, mdb_strerror(rc));
}

/*
 * Another process's commits reach past the map (MDB_MAP_RESIZED): maps
 * the size in the file, allocated on disk if written in place (where that
 * fails, the pages in use only: the map is full, and make_room() says
 * why). No transaction may be open. Returns 0 or an MDB_* or errno code.
 */
static int
map_follow(struct store *s)
{
	size_t had = (size_t)s->map_size;
	MDB_envinfo info;
	int rc;

	map_set(s, 0);
	if ((rc = mdb_env_info(s->env, &info)) != 0)
		return rc;
	if (s->writemap &&
	    (rc = map_reserve(s, (int64_t)info.me_mapsize, -1)) != 0) {
		log_warnx("dedup.map_taken",
		    "dedup store %s: another process grew the map to %zu "
		    "MiB, which cannot be allocated on disk (%s): the map "
		    "keeps the pages in use",
		    s->path, info.me_mapsize >> 20, strerror(rc));
		map_set(s, had);
		if ((rc = mdb_env_info(s->env, &info)) != 0)
			return rc;
	} else
		log_info("dedup.map_taken",
		    "dedup store %s: map of %zu MiB taken from the file, "
		    "where another process grew it",
		    s->path, info.me_mapsize >> 20);
	s->map_size = (int64_t)info.me_mapsize;
	return 0;
}

/* mdb_txn_begin(), taking the map another process grew. */
static int
txn_begin(struct store *s, unsigned flags, MDB_txn **txn)
{
	int rc = LMDB(s, mdb_txn_begin(s->env, NULL, flags, txn));

	if (rc == MDB_MAP_RESIZED && (rc = map_follow(s)) == 0)
		rc = LMDB(s, mdb_txn_begin(s->env, NULL, flags, txn));
	return rc;
}

/* Creates and opens the environment, in place if s->writemap; returns 0
 * or an MDB_* or errno code, with s->env NULL then. */
static int
env_open(struct store *s, unsigned flags)
{
	char *file = xasprintf("%s/data.mdb", s->path);
	int64_t before = 0, used;
	MDB_envinfo info;
	MDB_stat ms;
	struct stat st;
	int rc;

	/* The file's size before LMDB sets it to the map's. */
	if (stat(file, &st) == 0)
		before = (int64_t)st.st_size;
	free(file);
	if (s->writemap)
		flags |= MDB_WRITEMAP;
	if ((rc = mdb_env_create(&s->env)) != 0)
		return rc;
	/* The map's size is the file's (the largest it had: a store grown
	 * past map_size keeps its map), or map_size if that is more. */
	if ((rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, 0)) != 0 ||
	    (rc = LMDB(s, mdb_env_open(s->env, s->path, flags, 0600))) != 0 ||
	    (rc = mdb_env_info(s->env, &info)) != 0)
		goto fail;
	if ((int64_t)info.me_mapsize < s->opt.map_size &&
	    (rc = mdb_env_set_mapsize(s->env, (size_t)s->opt.map_size)) != 0)
		goto fail;
	s->map_size = (int64_t)info.me_mapsize > s->opt.map_size
	    ? (int64_t)info.me_mapsize
	    : s->opt.map_size;
	if (!s->writemap)
		return 0;
	/* What does not allocate goes back to what the file held, and at
	 * least the pages in use. */
	if ((rc = mdb_env_stat(s->env, &ms)) != 0)
		goto fail;
	used = (int64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	if ((rc = map_reserve(s, s->map_size, before > used ? before : used)) !=
	    0)
		goto fail;
	return 0;

fail:
	mdb_env_close(s->env);
	s->env = NULL;
	return rc;
}

/* Whether |rc| says that LMDB cannot read the data file. A transaction
 * that cannot read a page while it sets up loses the cause (mdb_put() and
 * mdb_get() drop their cursor's error) and says MDB_BAD_TXN; the store
 * only ever uses fresh transactions, so that is a damaged file too. */
static bool
damaged(int rc)
{
	return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
	    rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_PANIC ||
	    rc == MDB_BAD_TXN;
}

/* What to say of a damaged data file, met at open or while running. */
static char *
damaged_text(struct store *s, const char *why)
{
	return xasprintf("its data file %s/data.mdb is damaged: corrupt, or "
			 "written by an incompatible LMDB (%s); with the "
			 "sidecar stopped, move the directory aside (or "
			 "delete it) and start again, with an empty store: "
			 "keys seen within the dedup window may then reach "
			 "the app once more",
	    s->path, why);
}

/* The error of an open that met a damaged data file. */
static char *
damaged_error(struct store *s, int rc)
{
	char *text = damaged_text(s, mdb_strerror(rc));
	char *err = xasprintf("dedup store %s: %s", s->path, text);

	free(text);
	return err;
}

static bool
format_is(const MDB_val *v, const char *format)
{
	return v->mv_size == strlen(format) &&
	    memcmp(v->mv_data, format, v->mv_size) == 0;
}

/* Opens format 1's index if it is there. */
static int
index_1_open(struct store *s, MDB_txn *txn)
{
	int rc = LMDB(s, mdb_dbi_open(txn, "expiry", 0, &s->index_1));

	s->has_index_1 = rc == 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Format 1 to 2 in |txn|: its index dropped (|*dropped| entries), the
 * format record rewritten. */
static int
migrate_1(struct store *s, MDB_txn *txn, MDB_dbi meta, size_t *dropped)
{
	MDB_val k = { 6, "format" }, v = { strlen(FORMAT), FORMAT };
	MDB_stat st;
	int rc;

	*dropped = 0;
	if ((rc = index_1_open(s, txn)) != 0)
		return rc;
	if (s->has_index_1) {
		if ((rc = LMDB(s, mdb_stat(txn, s->index_1, &st))) != 0 ||
		    (rc = LMDB(s, mdb_drop(txn, s->index_1, 1))) != 0)
			return rc;
		s->has_index_1 = false;
		*dropped = st.ms_entries;
	}
	return LMDB(s, mdb_put(txn, meta, &k, &v, 0));
}

/* Opens the databases and checks, migrates or writes the format. */
static int
open_dbs(struct store *s, char **err)
{
	bool ro = s->mode == STORE_READONLY, migrated = false;
	unsigned flags = ro ? 0 : MDB_CREATE;
	MDB_txn *txn;
	MDB_dbi meta;
	MDB_val k = { 6, "format" }, v;
	MDB_stat st;
	size_t dropped = 0;
	int rc;

	if ((rc = txn_begin(s, ro ? MDB_RDONLY : 0, &txn)) != 0)
		goto fail;
	if ((rc = LMDB(s, mdb_dbi_open(txn, "meta", flags, &meta))) != 0 ||
	    (rc = LMDB(s, mdb_dbi_open(txn, "entries", flags, &s->entries))) !=
		0)
		goto abort;
	rc = LMDB(s, mdb_get(txn, meta, &k, &v));
	if (rc == MDB_NOTFOUND && !ro) {
		v = (MDB_val){ strlen(FORMAT), FORMAT };
		rc = LMDB(s, mdb_put(txn, meta, &k, &v, 0));
	} else if (rc == 0 && format_is(&v, FORMAT_1)) {
		/* Beside operators a daemon of format 1 may still run. */
		migrated = s->mode == STORE_DAEMON;
		if (!migrated)
			rc = index_1_open(s, txn);
		else if ((rc = LMDB(s, mdb_stat(txn, s->entries, &st))) == 0)
			rc = migrate_1(s, txn, meta, &dropped);
	} else if (rc == 0 && !format_is(&v, FORMAT)) {
		*err =
		    xasprintf("%s holds a store of another format (\"%.*s\", "
			      "expected \"%s\"): move it aside, or delete "
			      "it to start with an empty store",
			s->path, (int)(v.mv_size < 64 ? v.mv_size : 64),
			(char *)v.mv_data, FORMAT);
		mdb_txn_abort(txn);
		return -1;
	}
	if (rc != 0)
		goto abort;
	if ((rc = txn_commit(s, txn)) != 0)
		goto fail;
	if (migrated)
		log_info("dedup.store_migrated",
		    "dedup store %s: format 1 migrated to 2: its %zu entries "
		    "kept, its expiry index (%zu entries) dropped, expired "
		    "entries are found by the sweep's walk",
		    s->path, st.ms_entries, dropped);
	return 0;

abort:
	mdb_txn_abort(txn);
fail:
	if (rc == MDB_NOTFOUND)
		*err = xasprintf("%s is not a nats-sidecar dedup store (no "
				 "format record): check the path",
		    s->path);
	else if (damaged(rc))
		*err = damaged_error(s, rc);
	else
		*err = xasprintf("cannot open the dedup store %s: %s", s->path,
		    mdb_strerror(rc));
	return -1;
}

struct store *
store_open(struct ev_loop *loop, const struct store_options *o,
    enum store_mode mode, char **err)
{
	struct store *s = xcalloc(1, sizeof *s);
	unsigned flags = MDB_NOSYNC | MDB_NOTLS;
	struct statfs fs;
	int rc, dead;

	s->path = xstrdup(o->path);
	s->opt = *o;
	s->opt.path = s->path;
	s->mode = mode;
	s->lock_fd = -1;
	s->map_size = o->map_size;
	s->next_expiry = INT64_MIN;
	s->round_min = INT64_MAX;
	s->round_ok = true;
	if (mode != STORE_READONLY && mkdir(s->path, 0700) == -1 &&
	    errno != EEXIST) {
		*err = xasprintf("cannot create the dedup store directory "
				 "%s: %s",
		    s->path, strerror(errno));
		goto fail;
	}
	if (statfs(s->path, &fs) == -1) {
		*err =
		    xasprintf("dedup store %s: %s", s->path, strerror(errno));
		goto fail;
	}
	if (store_fs_is_network((long)fs.f_type)) {
		*err = xasprintf("dedup store %s is on a network filesystem "
				 "(type 0x%lx), where LMDB's locking is not "
				 "safe: use a local volume (emptyDir or a "
				 "local persistent volume)",
		    s->path, (unsigned long)fs.f_type);
		goto fail;
	}
	if (mode == STORE_DAEMON && lock_take(s, err) == -1)
		goto fail;
	if (mode == STORE_READONLY)
		flags |= MDB_RDONLY;
	s->writemap = mode == STORE_DAEMON && !o->fsync;
	if (s->writemap && store_fs_is_copy_on_write((long)fs.f_type)) {
		log_info("dedup.store_written_through",
		    "dedup store %s is on a copy-on-write filesystem (type "
		    "0x%lx), where allocating its file reserves no blocks: "
		    "commits go through write(2), which costs more per key",
		    s->path, (unsigned long)fs.f_type);
		s->writemap = false;
	}
	rc = env_open(s, flags);
	if (s->writemap &&
	    (rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EOPNOTSUPP)) {
		log_warnx("dedup.store_written_through",
		    "dedup store %s: cannot allocate its map of %" PRId64
		    " MiB on disk (%s): commits go through write(2), which "
		    "costs more per key",
		    s->path, s->map_size >> 20, mdb_strerror(rc));
		s->writemap = false;
		rc = env_open(s, flags);
	}
	if (rc != 0) {
		if (damaged(rc))
			*err = damaged_error(s, rc);
		else
			*err = xasprintf("cannot open the dedup store %s: %s",
			    s->path, mdb_strerror(rc));
		goto fail;
	}
	/* Readers of a killed process would pin old pages forever. */
	if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
		log_info("dedup.stale_readers",
		    "dedup store %s: cleared %d reader slot(s) of processes "
		    "gone",
		    s->path, dead);
	if (open_dbs(s, err) == -1)
		goto fail;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn)) != 0) {
		*err =
		    xasprintf("dedup store %s: %s", s->path, mdb_strerror(rc));
		goto fail;
	}
	mdb_txn_reset(s->rtxn);
	if (mode == STORE_DAEMON && o->fsync) {
		if (loop == NULL)
			fatalx("store_open: durability fsync needs a loop");
		s->sync_delay_ms = failpoint_value("dedup.sync_delay_ms", 0);
		s->handoff = handoff_new(loop, on_synced, s);
		pthread_mutex_init(&s->lock, NULL);
		pthread_cond_init(&s->wake, NULL);
		if ((rc = pthread_create(&s->worker, NULL, sync_worker, s)) !=
		    0)
			fatalx("store: cannot start the sync thread: %s",
			    strerror(rc));
	}
	return s;

fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->handoff != NULL) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->worker, NULL);
		handoff_free(s->handoff);
		pthread_cond_destroy(&s->wake);
		pthread_mutex_destroy(&s->lock);
	}
	if (s->rtxn != NULL)
		mdb_txn_abort(s->rtxn);
	/* Keys the app ACKed whose acks never went out: committed, their
	 * redelivery is acked without reaching the app again. */
	if (s->env != NULL && s->nstaged > 0 && s->mode != STORE_READONLY &&
	    write_txn(s, 0, true, 0) != 0)
		log_warnx("dedup.close",
		    "dedup store %s: %zu key(s) not "
		    "committed at close",
		    s->path, s->nstaged);
	if (s->env != NULL) {
		if (s->mode != STORE_READONLY)
			mdb_env_sync(s->env, 1);
		mdb_env_close(s->env);
	}
	if (s->lock_fd != -1)
		close(s->lock_fd);
	free(s->staged);
	free(s->problem);
	free(s->path);
	free(s);
}

/*
 * A read failed with |rc| (READ_DAMAGED: an entry shorter than any format
 * writes); |what| says what that stops. Every delivery meets it while it
 * lasts: it is logged when the kind of failure changes. A damaged file is
 * one kind whatever LMDB calls it (the codes vary with the page read), is
 * logged once with what to do, and stays reported: a file does not heal,
 * and its sound pages answering between damaged ones would make the log
 * flap. Returns -1.
 */
static int
read_failed(struct store *s, int rc, const char *what)
{
	int kind = rc == READ_DAMAGED || damaged(rc) ? READ_DAMAGED : rc;
	char *text;

	if (kind == s->read_failing || s->read_failing == READ_DAMAGED)
		return -1;
	s->read_failing = kind;
	if (rc == READ_DAMAGED)
		text = damaged_text(s, "an entry is too short");
	else if (kind == READ_DAMAGED)
		text = damaged_text(s, mdb_strerror(rc));
	else
		text = xstrdup(mdb_strerror(rc));
	log_errorx(
	    "dedup.store_read", "dedup store %s: %s: %s", s->path, what, text);
	free(text);
	return -1;
}

/* A lookup worked: the end of a failure read_failed() reported, unless
 * the file is damaged. (Not the stats: they read a few pages that a
 * damaged file may still have.) */
static void
read_worked(struct store *s)
{
	if (s->read_failing == 0 || s->read_failing == READ_DAMAGED)
		return;
	s->read_failing = 0;
	log_info("dedup.store_read_ok", "dedup store %s reads again", s->path);
}

/* The read transaction, renewed if a write reset it; NULL (logged as
 * stopping |what|) if it cannot be. */
static MDB_txn *
reader(struct store *s, const char *what)
{
	int rc;

	if (!s->rtxn_live) {
		rc = LMDB(s, mdb_txn_renew(s->rtxn));
		if (rc == MDB_MAP_RESIZED && (rc = map_follow(s)) == 0)
			rc = LMDB(s, mdb_txn_renew(s->rtxn));
		if (rc != 0) {
			read_failed(s, rc, what);
			return NULL;
		}
		s->rtxn_live = true;
	}
	return s->rtxn;
}

static void
reader_reset(struct store *s)
{
	if (s->rtxn_live)
		mdb_txn_reset(s->rtxn);
	s->rtxn_live = false;
}

int
store_lookup(struct store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now,
    struct store_entry *e)
{
	MDB_txn *txn = reader(s, LOOKUPS_FAIL);
	MDB_val k = { STORE_KEY_SIZE, (void *)key }, v;
	struct store_entry got;
	int rc;

	if (txn == NULL)
		return -1;
	rc = LMDB(s, mdb_get(txn, s->entries, &k, &v));
	if (rc == MDB_NOTFOUND) {
		read_worked(s);
		return 0;
	}
	if (rc != 0 || v.mv_size < VALUE_FIXED) {
		/* LMDB leaves a transaction that met an error unusable: the
		 * next lookup starts a fresh one. */
		reader_reset(s);
		return read_failed(
		    s, rc != 0 ? rc : READ_DAMAGED, LOOKUPS_FAIL);
	}
	read_worked(s);
	entry_decode(&v, &got);
	if (got.expires <= now)
		return 0;
	if (e != NULL)
		*e = got;
	return 1;
}

/* The sweep met an entry expiring at |expires| that stays. */
static void
round_note(struct store *s, int64_t expires)
{
	if (expires < s->round_min)
		s->round_min = expires;
}

/* The walk reached the end: from a whole round, the earliest expiry. */
static void
round_end(struct store *s)
{
	if (s->round_ok)
		s->next_expiry = s->round_min;
	s->round_min = INT64_MAX;
	s->round_ok = true;
	s->sweep_resume = false;
	s->rounds++;
}

uint64_t
store_stage(struct store *s, const uint8_t key[STORE_KEY_SIZE], const char *ns,
    uint64_t stream_seq, int64_t expires, int64_t now)
{
	struct staged *p;
	size_t nslen = strnlen(ns, sizeof((struct store_entry *)0)->ns - 1);

	if (s->nstaged == s->cap) {
		s->cap = s->cap == 0 ? 256 : s->cap * 2;
		s->staged = xreallocarray(s->staged, s->cap, sizeof *s->staged);
	}
	p = &s->staged[s->nstaged++];
	memcpy(p->key, key, STORE_KEY_SIZE);
	p->expires = expires;
	memcpy(p->value, &expires, 8);
	memcpy(p->value + 8, &now, 8);
	memcpy(p->value + 16, &stream_seq, 8);
	memcpy(p->value + VALUE_FIXED, ns, nslen);
	p->value_len = VALUE_FIXED + nslen;
	if (expires < s->next_expiry)
		s->next_expiry = expires;
	round_note(s, expires);
	return ++s->next_ticket;
}

/*
 * Walks up to |limit| entries on from where the last walk stopped, round
 * to the start once, and removes those expired by |now|. Nothing is
 * looked at while no entry can have expired.
 */
static int
sweep(struct store *s, MDB_txn *txn, int64_t now, uint64_t limit,
    uint64_t *removed)
{
	uint8_t start[STORE_KEY_SIZE];
	bool resumed = s->sweep_resume, wrapped = false;
	MDB_cursor_op op = resumed ? MDB_SET_RANGE : MDB_FIRST, was;
	MDB_val k = { STORE_KEY_SIZE, start }, v;
	MDB_cursor *cur;
	uint64_t seen = 0;
	int64_t expires;
	int rc;

	*removed = 0;
	if (s->next_expiry != INT64_MIN && now < s->next_expiry)
		return 0;
	memcpy(start, s->sweep_at, STORE_KEY_SIZE);
	if ((rc = LMDB(s, mdb_cursor_open(txn, s->entries, &cur))) != 0)
		return rc;
	while (seen < limit) {
		was = op;
		op = MDB_NEXT;
		if ((rc = LMDB(s, mdb_cursor_get(cur, &k, &v, was))) ==
		    MDB_NOTFOUND) {
			/* The end of the keys: a round is whole. */
			round_end(s);
			if (!resumed || wrapped)
				break;
			wrapped = true;
			op = MDB_FIRST;
			continue;
		}
		if (rc != 0)
			break;
		if (k.mv_size != STORE_KEY_SIZE)
			continue;
		/* Looked at last time; or a whole round in this walk. */
		if (was == MDB_SET_RANGE &&
		    memcmp(k.mv_data, start, STORE_KEY_SIZE) == 0)
			continue;
		if (wrapped && memcmp(k.mv_data, start, STORE_KEY_SIZE) >= 0)
			break;
		seen++;
		memcpy(s->sweep_at, k.mv_data, STORE_KEY_SIZE);
		s->sweep_resume = true;
		if (v.mv_size < VALUE_FIXED)
			continue;
		memcpy(&expires, v.mv_data, 8);
		if (expires > now)
			round_note(s, expires);
		else if ((rc = LMDB(s, mdb_cursor_del(cur, 0))) != 0)
			break;
		else
			(*removed)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One write transaction: the queue (if |with_queue|) and a sweep. */
static int
write_txn(struct store *s, int64_t now, bool with_queue, uint64_t limit)
{
	MDB_txn *txn;
	uint64_t removed = 0;
	int rc;

	if ((rc = txn_begin(s, 0, &txn)) != 0)
		return rc;
	for (size_t i = 0; with_queue && i < s->nstaged; i++) {
		struct staged *p = &s->staged[i];
		MDB_val k = { STORE_KEY_SIZE, p->key };
		MDB_val v = { p->value_len, p->value };

		if ((rc = LMDB(s, mdb_put(txn, s->entries, &k, &v, 0))) != 0)
			goto abort;
	}
	if ((rc = sweep(s, txn, now, limit, &removed)) != 0)
		goto abort;
	if (with_queue && s->nstaged > 0)
		failpoint_kill("dedup.before_commit");
	if ((rc = txn_commit(s, txn)) != 0)
		goto failed;
	s->expired += removed;
	return 0;

abort:
	mdb_txn_abort(txn);
failed:
	/* What the walk saw and removed is gone with the transaction: it
	 * starts again from the first key. */
	s->next_expiry = INT64_MIN;
	s->round_ok = false;
	s->sweep_resume = false;
	return rc;
}

/*
 * A whole round of the walk from the first key, in transactions of
 * sweep_batch entries looked at, each committed: the map is full, and one
 * transaction removing every expired entry would need a copy of each page
 * it touches, where a step's copies come from the pages the steps before
 * it freed. A step that finds the map full is tried again with half as
 * many. Returns 0 or the error of a step of one entry.
 */
static int
sweep_all(struct store *s, int64_t now)
{
	uint64_t step = (uint64_t)s->opt.sweep_batch, rounds = s->rounds;
	int rc;

	if (s->next_expiry != INT64_MIN && now < s->next_expiry)
		return 0;
	s->sweep_resume = false;
	while (s->rounds == rounds) {
		rc = write_txn(s, now, false, step);
		if (rc == MDB_MAP_FULL && step > 1)
			step /= 2;
		else if (rc != 0)
			return rc;
	}
	return 0;
}

/* The map is full: sweep everything expired, then grow. Returns 0 when
 * there may be room now, MDB_MAP_FULL at the ceiling, or the errno of a
 * map that cannot be allocated on disk. */
static int
make_room(struct store *s, int64_t now, bool *swept)
{
	int64_t size;
	int rc;

	if (!*swept) {
		*swept = true;
		if (sweep_all(s, now) == 0)
			return 0;
	}
	if (s->map_size >= s->opt.map_size_max)
		return MDB_MAP_FULL;
	size = s->map_size * 2 < s->opt.map_size_max ? s->map_size * 2
						     : s->opt.map_size_max;
	if (s->writemap && (rc = map_reserve(s, size, -1)) != 0) {
		set_problem(s,
		    xasprintf("full, and the map cannot grow to %" PRId64
			      " MiB on disk: %s; pulling stops until entries "
			      "expire or the volume has room",
			size >> 20, strerror(rc)));
		return rc;
	}
	map_set(s, (size_t)size);
	log_info("dedup.map_grown",
	    "dedup store %s: map grown from %" PRId64 " to %" PRId64 " MiB",
	    s->path, s->map_size >> 20, size >> 20);
	s->map_size = size;
	return 0;
}

int
store_flush(struct store *s, int64_t now)
{
	bool swept = false;
	uint64_t limit;
	int rc, grown = 0;

	/* Once a turn: lookups then see this turn's commits (and operators'
	 * changes), and no old snapshot pins pages. */
	reader_reset(s);
	if (s->nstaged == 0 && now < s->retry_at)
		return 0;
	if (s->problem != NULL && now < s->retry_at)
		return -1;
	s->retry_at = now + RETRY_NS;
	/* The walk keeps pace with the commits, or takes a whole batch
	 * when idle. */
	limit = s->nstaged > SWEEP_MIN / SWEEP_PER_KEY
	    ? SWEEP_PER_KEY * s->nstaged
	    : SWEEP_MIN;
	if (s->nstaged == 0)
		limit = (uint64_t)s->opt.sweep_batch;
	else if (limit > (uint64_t)s->opt.sweep_batch)
		limit = SWEEP_PACE * s->nstaged > (uint64_t)s->opt.sweep_batch
		    ? SWEEP_PACE * s->nstaged
		    : (uint64_t)s->opt.sweep_batch;
	while ((rc = write_txn(s, now, true, limit)) == MDB_MAP_FULL) {
		if ((grown = make_room(s, now, &swept)) != 0)
			break;
	}
	if (rc == MDB_MAP_FULL && grown != MDB_MAP_FULL)
		return -1; /* make_room() said why */
	if (rc == MDB_MAP_FULL) {
		set_problem(s,
		    xasprintf("full at the map ceiling (%" PRId64 " MiB) after "
			      "sweeping what had expired: pulling stops until "
			      "more entries expire; raise dedup.map_size_max "
			      "or lower the ttl",
			s->opt.map_size_max >> 20));
		return -1;
	}
	if (rc != 0) {
		set_problem(s,
		    damaged(rc)
			? damaged_text(s, mdb_strerror(rc))
			: xasprintf("write failed: %s", mdb_strerror(rc)));
		return -1;
	}
	if (s->nstaged > 0) {
		failpoint_kill("dedup.after_commit");
		s->committed += s->nstaged;
		s->committed_ticket = s->next_ticket;
		s->nstaged = 0;
	}
	clear_problem(s);
	if (s->handoff == NULL)
		s->durable_ticket = s->committed_ticket;
	else
		sync_start(s);
	return 0;
}

uint64_t
store_durable(const struct store *s)
{
	return s->durable_ticket;
}

const char *
store_problem(const struct store *s)
{
	if (s->problem == NULL && s->sync_failed)
		return "fsync failed: acks wait until a sync succeeds";
	return s->problem;
}

/* A write transaction for an operator command, synced at once. */
static int
commit_synced(struct store *s, MDB_txn *txn)
{
	int rc;

	if ((rc = txn_commit(s, txn)) != 0 ||
	    (rc = LMDB(s, mdb_env_sync(s->env, 1))) != 0) {
		log_errorx("dedup.store_write", "dedup store %s: %s", s->path,
		    mdb_strerror(rc));
		return -1;
	}
	return 0;
}

int
store_forget(struct store *s, const uint8_t key[STORE_KEY_SIZE])
{
	MDB_txn *txn;
	MDB_val k = { STORE_KEY_SIZE, (void *)key };
	int rc;

	/* In a store of format 1 its index entry stays: the sweep of
	 * format 1 drops index entries without an entry. */
	reader_reset(s);
	if ((rc = txn_begin(s, 0, &txn)) != 0)
		goto fail;
	if ((rc = LMDB(s, mdb_del(txn, s->entries, &k, NULL))) ==
	    MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	return commit_synced(s, txn) == 0 ? 1 : -1;

fail:
	log_errorx("dedup.store_write", "dedup store %s: %s", s->path,
	    mdb_strerror(rc));
	return -1;
}

int64_t
store_purge(struct store *s)
{
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	reader_reset(s);
	if ((rc = txn_begin(s, 0, &txn)) != 0)
		goto fail;
	if ((rc = LMDB(s, mdb_stat(txn, s->entries, &st))) != 0 ||
	    (rc = LMDB(s, mdb_drop(txn, s->entries, 0))) != 0 ||
	    (s->has_index_1 &&
		(rc = LMDB(s, mdb_drop(txn, s->index_1, 0))) != 0)) {
		mdb_txn_abort(txn);
		goto fail;
	}
	return commit_synced(s, txn) == 0 ? (int64_t)st.ms_entries : -1;

fail:
	log_errorx("dedup.store_write", "dedup store %s: %s", s->path,
	    mdb_strerror(rc));
	return -1;
}

static uint64_t
pages(const MDB_stat *st)
{
	return st->ms_branch_pages + st->ms_leaf_pages + st->ms_overflow_pages;
}

int
store_stats(struct store *s, struct store_stats *out)
{
	MDB_txn *txn = reader(s, STATS_FAIL);
	MDB_stat se, sx = { 0 }, sm;
	MDB_envinfo info;
	MDB_dbi main_db;
	int rc;

	if (txn == NULL)
		return -1;
	memset(out, 0, sizeof *out);
	if ((rc = LMDB(s, mdb_stat(txn, s->entries, &se))) != 0 ||
	    (s->has_index_1 &&
		(rc = LMDB(s, mdb_stat(txn, s->index_1, &sx))) != 0) ||
	    (rc = LMDB(s, mdb_dbi_open(txn, NULL, 0, &main_db))) != 0 ||
	    (rc = LMDB(s, mdb_stat(txn, main_db, &sm))) != 0 ||
	    (rc = LMDB(s, mdb_env_info(s->env, &info))) != 0) {
		reader_reset(s);
		return read_failed(s, rc, STATS_FAIL);
	}
	out->entries = se.ms_entries;
	/* The meta database is one page; the main one lists the others. */
	out->pages_used = pages(&se) + pages(&sx) + pages(&sm) + 1;
	out->page_size = se.ms_psize;
	out->map_size = info.me_mapsize;
	out->map_used = (info.me_last_pgno + 1) * (uint64_t)se.ms_psize;
	out->committed = s->committed;
	out->expired = s->expired;
	out->readers = info.me_numreaders;
	/* A reader left open would pin the pages the sweep frees. */
	reader_reset(s);
	return 0;
}
