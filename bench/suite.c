/*
 * suite: nats-sidecar against the raw JetStream ceiling, in one run.
 *
 *   bench/suite [-n MSGS] [-r RUNS] [-c CASE,CASE...] [-l SECONDS]
 *               [-i IN_FLIGHT] [-j results.json] [--smoke]
 *
 * Starts its own nats-server (JetStream, file storage, loopback, a
 * temporary store), fills stream ORDERS with MSGS order events (about 200
 * bytes of v1 JSON, each with a Nats-Msg-Id) and, RUNS times, runs every
 * case on the same stream contents:
 *
 *   ceiling-push     nats.c push consumer, callback, ack per message,
 *                    MaxAckPending 65,536
 *   ceiling-pull     nats.c pull consumer, Fetch(1024), ack per message,
 *                    MaxAckPending 65,536
 *   sidecar-bare     nats-sidecar, no filters, default limits (-i sets
 *                    max_in_flight), to the in-process app below (capacity
 *                    256), which ACKs everything
 *   sidecar-dedup    the same with the dedup filter (durability os)
 *   sidecar-fsync    the same with durability fsync
 *   sidecar-translate  the translate filter alone: v1 JSON -> v2 protobuf
 *   sidecar-full     dedup + translate + backoff + deadletter
 *   publish-direct   nats.c async publisher, 4,096 PubAcks outstanding
 *   publish-sidecar  app -> sidecar -> JetStream, 4,096 outstanding
 *
 * The consuming cases also measure end-to-end latency (the JetStream
 * timestamp of the message to its receipt by the consumer or app) at
 * offered rates of 1k and 10k msgs/s for -l seconds each, on a stream of
 * their own. sidecar-full runs its 10k phase twice more, each time with
 * a ceiling consumer of its own (push, then pull) taking the same
 * messages at the same time: the two p99s of such a phase meet the same
 * pauses of the server, which p99s measured in phases of their own do
 * not. Sidecar cases report the
 * sidecar's CPU seconds per million messages (utime + stime from /proc)
 * and its peak RssAnon (sampled every 10 ms) and VmHWM; every case
 * reports the same CPU figure of this process (the ceiling consumer, the
 * publisher or the app) and of the nats-server over the same interval.
 * The table shows the median of the runs with min-max; -j writes every
 * sample and summary as JSON.
 *
 * Exits 1 if any case fails to complete (a count mismatch, a timeout, an
 * unacknowledged message), so that the smoke mode (--smoke: 2,000
 * messages, one run, short latency phases) catches a benchmark that rots.
 *
 * Needs nats-server on PATH, and top_builddir (the build directory
 * holding nats-sidecar and proto/events.desc) and top_srcdir (for
 * examples/mappings) in the environment, as `make check` and bench/run.sh
 * set them. In the translating cases the app checks that every delivery
 * came as v2 protobuf.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "harness/daemon.h"
#include "harness/fixture.h"
#include "harness/httpget.h"
#include "harness/natsserver.h"
#include "harness/proc.h"
#include "harness/testjs.h"
#include "sidecar/client/nsc.h"

/* Fixed, documented settings of the ceiling consumers and publishers. */
#define CEIL_MAX_ACK_PENDING 65536
#define CEIL_FETCH_BATCH 1024
#define PUB_WINDOW 4096
/* The app's capacity (Hello.capacity). */
#define APP_CAPACITY 256

/* The filter chain of sidecar-full; sidecar_start() adds the translate
 * filter (TRANSLATE_FILTER) to the chains of the translating cases. */
#define FULL_FILTERS                                                           \
	"filters:\n"                                                           \
	"  - dedup: {key: \"header:Nats-Msg-Id\", ttl: 1h}\n"                  \
	"  - backoff: {schedule: [1s, 5s, 30s]}\n"                             \
	"  - deadletter: {subject: \"dlq.{subject}\", stream: BENCHDLQ}\n"
/* v1 JSON in, v2 protobuf to the app; %s: the mapping file. */
#define TRANSLATE_FILTER                                                       \
	"  - translate:\n"                                                     \
	"      version: v2\n"                                                  \
	"      encoding: protobuf\n"                                           \
	"      versions:\n"                                                    \
	"        - {version: v1, type: orders.v1.OrderCreated}\n"              \
	"        - {version: v2, type: orders.v2.OrderCreated}\n"              \
	"      mappings: [\"%s\"]\n"
#define DEDUP_FILTERS                                                          \
	"filters:\n"                                                           \
	"  - dedup: {key: \"header:Nats-Msg-Id\", ttl: 1h}\n"

enum metric {
	M_RATE, /* msgs/s at saturation */
	M_CPU, /* sidecar CPU s per million messages */
	M_RSS, /* sidecar peak RssAnon, KiB */
	M_HWM, /* sidecar VmHWM, KiB */
	M_CLIENT_CPU, /* this process's CPU s per million: consumer, app */
	M_SERVER_CPU, /* nats-server's CPU s per million */
	M_L1_50,
	M_L1_99,
	M_L1_999, /* latency at 1k msgs/s, ms */
	M_L10_50,
	M_L10_99,
	M_L10_999, /* latency at 10k msgs/s, ms */
	M_PAIRED_99, /* p99 at 10k msgs/s beside the push ceiling, ms */
	M_PAIRED_CEILING_99, /* that push ceiling's p99 in the same phase */
	M_PAIRED_PULL_99, /* p99 at 10k msgs/s beside the pull ceiling */
	M_PAIRED_PULL_CEILING_99, /* that pull ceiling's p99 */
	M_COUNT
};

static const char *const metric_names[M_COUNT] = { "msgs_per_s",
	"cpu_s_per_million", "rss_anon_peak_kib", "vm_hwm_kib",
	"client_cpu_s_per_million", "server_cpu_s_per_million", "lat_1k_p50_ms",
	"lat_1k_p99_ms", "lat_1k_p999_ms", "lat_10k_p50_ms", "lat_10k_p99_ms",
	"lat_10k_p999_ms", "lat_10k_paired_p99_ms",
	"lat_10k_paired_ceiling_p99_ms", "lat_10k_paired_pull_p99_ms",
	"lat_10k_paired_pull_ceiling_p99_ms" };

enum kind { K_PUSH, K_PULL, K_SIDECAR, K_PUB_DIRECT, K_PUB_SIDECAR };

struct bcase {
	const char *name;
	enum kind kind;
	const char *sub_yaml; /* sidecar: the subscription's filters */
	const char *durability; /* sidecar: dedup.durability, or NULL */
	bool translate; /* sidecar: the translate filter joins the chain */
	bool latency;
	bool paired; /* also the 10k phase beside each ceiling consumer */
	bool selected;
	int failures;
	double v[M_COUNT][16]; /* one value per run; NAN: not measured */
};

static struct bcase cases[] = {
	{ .name = "ceiling-push", .kind = K_PUSH, .latency = true },
	{ .name = "ceiling-pull", .kind = K_PULL, .latency = true },
	{ .name = "sidecar-bare", .kind = K_SIDECAR, .latency = true },
	{ .name = "sidecar-dedup",
	    .kind = K_SIDECAR,
	    .sub_yaml = DEDUP_FILTERS,
	    .durability = "os" },
	{ .name = "sidecar-fsync",
	    .kind = K_SIDECAR,
	    .sub_yaml = DEDUP_FILTERS,
	    .durability = "fsync" },
	{ .name = "sidecar-translate", .kind = K_SIDECAR, .translate = true },
	{ .name = "sidecar-full",
	    .kind = K_SIDECAR,
	    .sub_yaml = FULL_FILTERS,
	    .durability = "os",
	    .translate = true,
	    .latency = true,
	    .paired = true },
	{ .name = "publish-direct", .kind = K_PUB_DIRECT },
	{ .name = "publish-sidecar", .kind = K_PUB_SIDECAR },
};
#define NCASES (sizeof cases / sizeof cases[0])

static struct {
	long n;
	int runs;
	double lat_secs;
	const char *json;
	bool smoke;
	int in_flight;
} opt = { 200000, 3, 15.0, NULL, false, 0 };

static struct natsserver *srv;
static struct testjs *ctl;

/* CLOCK_REALTIME in ns, comparable with JetStream timestamps. */
static int64_t
wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("suite: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -1;
}

static int
nats_fail(const char *what, natsStatus s, jsErrCode jerr)
{
	return fail("%s: %s (%s, jetstream error %d)", what,
	    natsStatus_GetText(s), nats_GetLastError(NULL), (int)jerr);
}

/* The order event |i| as orders.v1.OrderCreated JSON (about 190 bytes)
 * into |buf|; returns its length. */
static int
order_payload(char *buf, size_t len, const char *prefix, long i)
{
	return snprintf(buf, len,
	    "{\"message_id\":\"%s-%012ld\","
	    "\"order_id\":\"order-2026-12-03-%012ld\","
	    "\"customer_id\":\"customer-%08ld-eu-west-1-retail-web-checkout\","
	    "\"total_amount\":%ld.%02ld,\"created_at\":%ld}",
	    prefix, i, i, i % 100000, 10 + i % 9000, i % 100,
	    1764720000000L + i);
}

/*
 * Messages received by a consumer or app: unique stream sequences counted
 * (redeliveries are not), optional latency samples, the time of the last.
 */
struct sink {
	long want;
	long got; /* unique sequences so far */
	long repeats;
	unsigned char *seen; /* bit per stream sequence, 1..want */
	double *lat_ns; /* NULL: no latency samples */
	double t_last;
	bool translated; /* every delivery must come as v2 protobuf */
};

static void
sink_init(struct sink *s, long want, bool latency)
{
	memset(s, 0, sizeof *s);
	s->want = want;
	s->seen = calloc((size_t)want / 8 + 2, 1);
	if (latency)
		s->lat_ns = calloc((size_t)want + 1, sizeof *s->lat_ns);
	if (s->seen == NULL || (latency && s->lat_ns == NULL))
		abort();
}

static void
sink_free(struct sink *s)
{
	free(s->seen);
	free(s->lat_ns);
}

static long
sink_got(struct sink *s)
{
	return __atomic_load_n(&s->got, __ATOMIC_ACQUIRE);
}

/* Records stream sequence |seq| published at |ts_ns|; one thread only. */
static void
sink_record(struct sink *s, uint64_t seq, int64_t ts_ns)
{
	int64_t now = s->lat_ns != NULL ? wall_ns() : 0;
	long got = s->got;

	if (seq == 0 || seq > (uint64_t)s->want ||
	    (s->seen[seq / 8] & (1u << (seq % 8))) != 0) {
		s->repeats++;
		return;
	}
	s->seen[seq / 8] |= (unsigned char)(1u << (seq % 8));
	if (s->lat_ns != NULL)
		s->lat_ns[got] = (double)(now - ts_ns);
	if (got + 1 == s->want)
		s->t_last = fixture_now();
	__atomic_store_n(&s->got, got + 1, __ATOMIC_RELEASE);
}

/* Waits until the sink is full; 0, or -1 at |deadline|. */
static int
sink_wait(struct sink *s, double deadline)
{
	while (sink_got(s) < s->want) {
		if (fixture_now() > deadline)
			return fail("%ld of %ld messages by the deadline",
			    sink_got(s), s->want);
		proc_sleep_ms(1);
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Percentiles 50, 99 and 99.9 of the sink's latencies into |out|, in ms. */
static void
sink_percentiles(struct sink *s, double out[3])
{
	static const double q[3] = { 0.50, 0.99, 0.999 };
	size_t n = (size_t)s->got;

	qsort(s->lat_ns, n, sizeof *s->lat_ns, cmp_double);
	for (int i = 0; i < 3; i++) {
		size_t k = (size_t)(q[i] * (double)(n - 1) + 0.5);

		out[i] = n > 0 ? s->lat_ns[k] / 1e6 : NAN;
	}
}

/* A connection with a JetStream context of the bench's async settings. */
struct jsconn {
	natsConnection *nc;
	jsCtx *js;
	long pub_errors;
};

static void
pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	struct jsconn *c = closure;

	(void)js;
	if (__atomic_fetch_add(&c->pub_errors, 1, __ATOMIC_RELAXED) == 0)
		fail("async publish: %s (%d)", pae->ErrText, (int)pae->ErrCode);
}

static int
jsconn_open(struct jsconn *c)
{
	jsOptions o;
	natsStatus s;

	memset(c, 0, sizeof *c);
	jsOptions_Init(&o);
	o.PublishAsync.MaxPending = PUB_WINDOW;
	o.PublishAsync.StallWait = 10000;
	o.PublishAsync.ErrHandler = pub_error;
	o.PublishAsync.ErrHandlerClosure = c;
	if ((s = natsConnection_ConnectTo(&c->nc, natsserver_url(srv))) !=
	    NATS_OK)
		return nats_fail("connect", s, 0);
	if ((s = natsConnection_JetStream(&c->js, c->nc, &o)) != NATS_OK)
		return nats_fail("jetstream context", s, 0);
	return 0;
}

static void
jsconn_close(struct jsconn *c)
{
	jsCtx_Destroy(c->js);
	natsConnection_Destroy(c->nc);
}

/* Publishes event |i| asynchronously with Nats-Msg-Id PREFIX-I. */
static int
publish_one(struct jsconn *c, const char *subject, const char *prefix, long i)
{
	char payload[512], id[128];
	natsMsg *m = NULL;
	natsStatus s;
	int len = order_payload(payload, sizeof payload, prefix, i);

	snprintf(id, sizeof id, "%s-%ld", prefix, i);
	s = natsMsg_Create(&m, subject, NULL, payload, len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = js_PublishMsgAsync(c->js, &m, NULL);
	natsMsg_Destroy(m);
	return s == NATS_OK ? 0 : nats_fail("publish", s, 0);
}

/* Waits for every outstanding PubAck; 0 if all were positive. */
static int
publish_complete(struct jsconn *c)
{
	jsPubOptions po;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	if ((s = js_PublishAsyncComplete(c->js, &po)) != NATS_OK)
		return nats_fail("publish complete", s, 0);
	if (c->pub_errors > 0)
		return fail("%ld publishes failed", c->pub_errors);
	return 0;
}

/* Publishes |n| events as fast as the window allows; stores the rate. */
static int
publish_direct(const char *subject, const char *prefix, long n, double *rate)
{
	struct jsconn c;
	double t0;
	int rc = -1;

	if (jsconn_open(&c) == -1)
		goto out;
	t0 = fixture_now();
	for (long i = 1; i <= n; i++)
		if (publish_one(&c, subject, prefix, i) == -1)
			goto out;
	if (publish_complete(&c) == -1)
		goto out;
	if (rate != NULL)
		*rate = (double)n / (fixture_now() - t0);
	rc = 0;
out:
	jsconn_close(&c);
	return rc;
}

/* A publisher at a fixed offered rate, in a thread of its own. */
struct pacer {
	pthread_t thread;
	const char *subject;
	double rate;
	long count;
	int rc;
};

static void *
pacer_main(void *arg)
{
	struct pacer *p = arg;
	struct jsconn c;
	double t0;

	p->rc = -1;
	if (jsconn_open(&c) == -1)
		goto out;
	t0 = fixture_now();
	for (long i = 1; i <= p->count; i++) {
		double due = t0 + (double)(i - 1) / p->rate,
		       wait = due - fixture_now();

		if (wait > 0) {
			struct timespec ts = { (time_t)wait,
				(long)((wait - (double)(time_t)wait) * 1e9) };

			nanosleep(&ts, NULL);
		}
		if (publish_one(&c, p->subject, "lat", i) == -1)
			goto out;
	}
	p->rc = publish_complete(&c);
out:
	jsconn_close(&c);
	return NULL;
}

static int
pacer_start(struct pacer *p, const char *subject, double rate, long count)
{
	p->subject = subject;
	p->rate = rate;
	p->count = count;
	if (pthread_create(&p->thread, NULL, pacer_main, p) != 0)
		return fail("pthread_create failed");
	return 0;
}

static int
pacer_join(struct pacer *p)
{
	pthread_join(p->thread, NULL);
	return p->rc;
}

/* Recreates the empty stream LAT (lat.>) for one latency phase. */
static int
lat_stream_reset(void)
{
	static const char *const subjects[] = { "lat.>", NULL };
	jsErrCode jerr = 0;

	js_DeleteStream(testjs_ctx(ctl), "LAT", NULL, &jerr);
	return testjs_add_stream(ctl, "LAT", subjects);
}

/* Samples a process's RssAnon and VmHWM every 10 ms, keeping the peaks. */
struct sampler {
	pthread_t thread;
	pid_t pid;
	volatile bool stop;
	long rss_anon_kib, hwm_kib;
};

static void
sampler_read(struct sampler *sm)
{
	char path[64], line[256];
	long v;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)sm->pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "RssAnon: %ld", &v) == 1 &&
		    v > sm->rss_anon_kib)
			sm->rss_anon_kib = v;
		else if (sscanf(line, "VmHWM: %ld", &v) == 1 && v > sm->hwm_kib)
			sm->hwm_kib = v;
	}
	fclose(f);
}

static void *
sampler_main(void *arg)
{
	struct sampler *sm = arg;

	while (!sm->stop) {
		sampler_read(sm);
		proc_sleep_ms(10);
	}
	sampler_read(sm);
	return NULL;
}

static void
sampler_start(struct sampler *sm, pid_t pid)
{
	memset(sm, 0, sizeof *sm);
	sm->pid = pid;
	if (pthread_create(&sm->thread, NULL, sampler_main, sm) != 0)
		abort();
}

static void
sampler_stop(struct sampler *sm)
{
	sm->stop = true;
	pthread_join(sm->thread, NULL);
}

/* utime + stime of |pid| in seconds, or -1. */
static double
cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	size_t len;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* Fields after the command name, which may hold spaces. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		&ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- ceiling consumers ---- */

static void
push_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct sink *s = closure;
	jsMsgMetaData *meta = NULL;

	(void)nc;
	(void)sub;
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		sink_record(s, meta->Sequence.Stream, meta->Timestamp);
		jsMsgMetaData_Destroy(meta);
	}
	natsMsg_Ack(m, NULL);
	natsMsg_Destroy(m);
}

/*
 * Consumes |s->want| messages of |stream| (subject |subject|) through a
 * fresh durable push or pull consumer, acking each; with |pacer| given,
 * starts it once the consumer is there.
 */
static int
ceiling_consume(enum kind kind, const char *stream, const char *subject,
    const char *durable, struct sink *s, struct pacer *pacer, double *secs)
{
	natsSubscription *sub = NULL;
	struct jsconn c;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus st;
	double t0, deadline;
	int rc = -1;

	if (jsconn_open(&c) == -1)
		goto out;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.ManualAck = true;
	so.Config.Durable = durable;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.MaxAckPending = CEIL_MAX_ACK_PENDING;
	so.Config.AckWait = (int64_t)60 * 1000000000;
	t0 = fixture_now();
	if (kind == K_PUSH)
		st = js_Subscribe(
		    &sub, c.js, subject, push_cb, s, NULL, &so, &jerr);
	else
		st = js_PullSubscribe(
		    &sub, c.js, subject, durable, NULL, &so, &jerr);
	if (st != NATS_OK) {
		nats_fail("subscribe", st, jerr);
		goto out;
	}
	if (kind == K_PUSH)
		natsSubscription_SetPendingLimits(
		    sub, 4 * CEIL_MAX_ACK_PENDING, 1 << 30);
	if (pacer != NULL &&
	    pacer_start(pacer, subject, pacer->rate, pacer->count) == -1)
		goto out;
	deadline = fixture_now() + 30 + (double)s->want / 1000;
	while (kind == K_PULL && sink_got(s) < s->want &&
	    fixture_now() < deadline) {
		natsMsgList list = { 0 };

		st = natsSubscription_Fetch(
		    &list, sub, CEIL_FETCH_BATCH, 5000, &jerr);
		if (st == NATS_TIMEOUT)
			continue;
		if (st != NATS_OK) {
			nats_fail("fetch", st, jerr);
			break;
		}
		for (int i = 0; i < list.Count; i++) {
			jsMsgMetaData *meta = NULL;

			if (natsMsg_GetMetaData(&meta, list.Msgs[i]) ==
			    NATS_OK) {
				sink_record(
				    s, meta->Sequence.Stream, meta->Timestamp);
				jsMsgMetaData_Destroy(meta);
			}
			natsMsg_Ack(list.Msgs[i], NULL);
		}
		natsMsgList_Destroy(&list);
	}
	rc = sink_wait(s, deadline);
	if (pacer != NULL && pacer_join(pacer) == -1)
		rc = -1;
	if (secs != NULL)
		*secs = s->t_last - t0;
	natsConnection_FlushTimeout(c.nc, 5000);
out:
	if (sub != NULL) {
		natsSubscription_Unsubscribe(sub); /* deletes the consumer */
		natsSubscription_Destroy(sub);
	}
	jsconn_close(&c);
	return rc;
}

/* ---- the sidecar and the minimal app ---- */

/* The absolute path of |rel| under the directory that the environment
 * variable |top| names (default "."), into |out| (PATH_MAX bytes). */
static int
tree_path(const char *top, const char *rel, char *out)
{
	char path[PATH_MAX];

	proc_tree_path(path, sizeof path, top, rel);
	if (realpath(path, out) == NULL)
		return fail("%s: %s (set %s)", path, strerror(errno), top);
	return 0;
}

struct sidecar {
	struct daemon *d;
	char store[256];
	struct sampler sm;
	double cpu0;
};

static int
sidecar_start(struct sidecar *sc, const struct bcase *bc, const char *stream,
    const char *durable)
{
	struct daemon_subscription sub = {
		.name = "bench", .stream = stream, .durable = durable
	};
	struct daemon_config cfg = { .nats_url = natsserver_url(srv),
		.subscriptions = &sub,
		.nsubscriptions = 1,
		.log_level = "info" };
	char yaml[2048], sub_yaml[2048], in_flight[64], mapping[PATH_MAX],
	    translate[PATH_MAX + 512], schemas[PATH_MAX + 32];

	memset(sc, 0, sizeof *sc);
	translate[0] = schemas[0] = '\0';
	if (bc->translate) {
		if (tree_path("top_srcdir",
			"examples/mappings/orders-v1-to-v2.yaml",
			mapping) == -1 ||
		    tree_path("top_builddir", "proto/events.desc", yaml) == -1)
			return -1;
		snprintf(translate, sizeof translate, "%s" TRANSLATE_FILTER,
		    bc->sub_yaml != NULL ? "" : "filters:\n", mapping);
		snprintf(schemas, sizeof schemas, "schemas: [\"%s\"]\n", yaml);
	}
	snprintf(
	    in_flight, sizeof in_flight, "max_in_flight: %d\n", opt.in_flight);
	snprintf(sub_yaml, sizeof sub_yaml, "%s%s%s",
	    opt.in_flight > 0 ? in_flight : "",
	    bc->sub_yaml != NULL ? bc->sub_yaml : "", translate);
	sub.yaml = sub_yaml;
	if (proc_tmpdir(sc->store, sizeof sc->store, "bench-dedup") == -1)
		return -1;
	snprintf(yaml, sizeof yaml,
	    "shutdown_grace: 2s\n%s"
	    "dedup:\n  path: \"%s\"\n  durability: %s\n",
	    schemas, sc->store, bc->durability != NULL ? bc->durability : "os");
	cfg.yaml = yaml;
	if ((sc->d = daemon_start(&cfg)) == NULL) {
		proc_rmtree(sc->store);
		return fail("%s: the sidecar did not start", bc->name);
	}
	sampler_start(&sc->sm, daemon_pid(sc->d));
	return 0;
}

/* Starts the CPU count of the measured phase. */
static void
sidecar_mark(struct sidecar *sc)
{
	sc->cpu0 = cpu_seconds(daemon_pid(sc->d));
}

/* CPU seconds of the sidecar since sidecar_mark(). */
static double
sidecar_cpu(struct sidecar *sc)
{
	return cpu_seconds(daemon_pid(sc->d)) - sc->cpu0;
}

static void
sidecar_stop(struct sidecar *sc)
{
	if (sc->d == NULL)
		return;
	sampler_stop(&sc->sm);
	daemon_free(sc->d);
	proc_rmtree(sc->store);
	sc->d = NULL;
}

/* Waits until |durable| on |stream| has nothing pending or unacked. */
static int
settled(const char *stream, const char *durable)
{
	uint64_t pending = 0, ack_pending = 0;
	double deadline = fixture_now() + 15;

	while (fixture_now() < deadline) {
		if (testjs_consumer_pending(
			ctl, stream, durable, &pending, &ack_pending) == -1)
			return -1;
		if (pending == 0 && ack_pending == 0)
			return 0;
		proc_sleep_ms(100);
	}
	return fail("%s: %llu pending and %llu unacked after 15 s", durable,
	    (unsigned long long)pending, (unsigned long long)ack_pending);
}

static struct nsc *
app_connect(struct sidecar *sc)
{
	struct nsc_options o = { .capacity = APP_CAPACITY,
		.app_name = "bench" };
	struct nsc *app;
	char *err = NULL;

	if ((app = nsc_connect(daemon_socket(sc->d), &o, &err)) == NULL) {
		fail("app: %s", err);
		free(err);
	}
	return app;
}

/* Waits until the sidecar is ready (NATS connected, its subscription
 * bound), as a pod is before it gets traffic: a latency phase measures
 * the steady state, not the start-up. Returns 0 or -1. */
static int
sidecar_ready(struct sidecar *sc)
{
	int port = daemon_http_port(sc->d);

	for (int i = 0; i < 1000 && port > 0; i++) {
		char *body = NULL;
		int status = httpget(port, "/readyz", &body);

		free(body);
		if (status == 200)
			return 0;
		fixture_sleep_ms(10);
	}
	return fail("the sidecar did not get ready within 10 s");
}

/* The minimal app: ACKs every delivery until the sink is full. */
static int
app_consume(struct nsc *app, struct sink *s, double deadline)
{
	struct nsc_event ev = NSC_EVENT_INIT;
	int rc = 0;

	while (sink_got(s) < s->want && rc == 0) {
		switch (nsc_next(app, 100, &ev)) {
		case NSC_NEXT_CLOSED:
			rc = fail("app: %s", nsc_last_error(app));
			break;
		case NSC_NEXT_EVENT:
			if (ev.kind == NSC_EVENT_DELIVERY) {
				if (s->translated &&
				    (strcmp(ev.delivery.schema_version, "v2") ||
					strcmp(ev.delivery.content_type,
					    "application/protobuf"))) {
					rc = fail("app: a delivery as %s %s, "
						  "not v2 protobuf",
					    ev.delivery.schema_version,
					    ev.delivery.content_type);
					break;
				}
				sink_record(s, ev.delivery.stream_sequence,
				    ev.delivery.published_at_ns);
				if (nsc_ack(app, ev.delivery.id) == -1)
					rc = fail("app: ack: %s",
					    nsc_last_error(app));
			}
			break;
		default:
			if (fixture_now() > deadline)
				rc = fail("app: %ld of %ld deliveries",
				    sink_got(s), s->want);
		}
	}
	if (nsc_flush(app) == -1)
		rc = fail("app: flush: %s", nsc_last_error(app));
	nsc_event_clear(&ev);
	return rc;
}

/* The minimal app as a publisher: |n| publishes, PUB_WINDOW at most
 * unanswered, every PublishAck OK. */
static int
app_publish(struct nsc *app, const char *subject, const char *prefix, long n)
{
	struct nsc_event ev = NSC_EVENT_INIT;
	long sent = 0, acked = 0;
	double deadline = fixture_now() + 30 + (double)n / 1000;
	char payload[512], id[128];
	int rc = 0;

	while (acked < n && rc == 0) {
		while (sent < n && sent - acked < PUB_WINDOW) {
			int len;

			sent++;
			len = order_payload(
			    payload, sizeof payload, prefix, sent);
			snprintf(id, sizeof id, "%s-%ld", prefix, sent);
			if (nsc_publish(app, (uint64_t)sent, subject, NULL, 0,
				payload, (size_t)len, id, NULL) == -1)
				return fail(
				    "app: publish: %s", nsc_last_error(app));
		}
		switch (nsc_next(app, 100, &ev)) {
		case NSC_NEXT_CLOSED:
			rc = fail("app: %s", nsc_last_error(app));
			break;
		case NSC_NEXT_EVENT:
			if (ev.kind != NSC_EVENT_PUBLISH_ACK)
				break;
			if (ev.publish_ack.status != NSC_PUBLISH_OK ||
			    ev.publish_ack.duplicate)
				rc = fail("app: publish %llu: status %d%s: %s",
				    (unsigned long long)ev.publish_ack.id,
				    (int)ev.publish_ack.status,
				    ev.publish_ack.duplicate ? " (duplicate)"
							     : "",
				    ev.publish_ack.error);
			acked++;
			break;
		default:
			if (fixture_now() > deadline)
				rc = fail(
				    "app: %ld of %ld PublishAcks", acked, n);
		}
	}
	nsc_event_clear(&ev);
	return rc;
}

/* ---- one case, one run ---- */

/* A ceiling consumer in a thread of its own, starting the pacer. */
struct ceiling_job {
	pthread_t thread;
	enum kind kind;
	struct sink *sink;
	struct pacer *pacer;
	int rc;
};

static void *
ceiling_job_main(void *arg)
{
	struct ceiling_job *j = arg;

	j->rc = ceiling_consume(j->kind, "LAT", "lat.orders.v1", "lat-ceiling",
	    j->sink, j->pacer, NULL);
	return NULL;
}

/*
 * Latency at |rate| for |bc| into v[first..first+2] of run |run|. With
 * |beside| (sidecar cases), the ceiling consumer of that kind takes the
 * same messages at the same time, and the two p99s go into v[first] and
 * v[first + 1]: run one after the other, the two meet different pauses
 * of the server (its writes, its garbage collector), which move a p99 by
 * more than the sidecar adds; side by side, they meet the same ones.
 */
static int
run_latency(struct bcase *bc, int run, double rate, enum metric first,
    const enum kind *beside)
{
	long count = (long)(rate * opt.lat_secs);
	struct pacer p = { .rate = rate, .count = count };
	struct sink s, cs;
	struct ceiling_job job = { .sink = &cs, .pacer = &p, .rc = -1 };
	struct sidecar sc;
	struct nsc *app = NULL;
	double pct[3];
	int rc = -1;

	if (lat_stream_reset() == -1)
		return -1;
	sink_init(&s, count, true);
	sink_init(&cs, beside != NULL ? count : 0, beside != NULL);
	s.translated = bc->translate;
	if (beside != NULL)
		job.kind = *beside;
	if (bc->kind != K_SIDECAR) {
		rc = ceiling_consume(
		    bc->kind, "LAT", "lat.orders.v1", "lat", &s, &p, NULL);
	} else if (sidecar_start(&sc, bc, "LAT", "lat") == 0) {
		if ((app = app_connect(&sc)) != NULL &&
		    sidecar_ready(&sc) == 0 &&
		    (beside != NULL ? pthread_create(&job.thread, NULL,
					  ceiling_job_main, &job) == 0
				    : pacer_start(&p, "lat.orders.v1", rate,
					  count) == 0)) {
			rc = app_consume(
			    app, &s, fixture_now() + 30 + opt.lat_secs);
			if (beside != NULL)
				pthread_join(job.thread, NULL);
			if (beside != NULL ? job.rc == -1
					   : pacer_join(&p) == -1)
				rc = -1;
		}
		nsc_close(app);
		sidecar_stop(&sc);
	}
	if (rc == 0) {
		sink_percentiles(&s, pct);
		for (int i = 0; i < 3 && beside == NULL; i++)
			bc->v[first + i][run] = pct[i];
		if (beside != NULL) {
			bc->v[first][run] = pct[1];
			sink_percentiles(&cs, pct);
			bc->v[first + 1][run] = pct[1];
		}
	}
	sink_free(&s);
	sink_free(&cs);
	return rc;
}

/* Throughput (and for the sidecar CPU and RSS) of |bc| in run |run|. */
static int
run_throughput(struct bcase *bc, int run)
{
	struct sidecar sc;
	struct nsc *app = NULL;
	struct sink s;
	char name[64];
	double t0, secs = 0, cpu = 0, rate = NAN, self0, self = 0;
	double srv0, srv_cpu = 0;
	jsErrCode jerr = 0;
	int rc = -1;

	/* The durable and the message id prefix of this case and run. */
	snprintf(name, sizeof name, "%s-%d", bc->name, run);
	self0 = cpu_seconds(getpid());
	srv0 = cpu_seconds(natsserver_pid(srv));
	switch (bc->kind) {
	case K_PUSH:
	case K_PULL:
		sink_init(&s, opt.n, false);
		rc = ceiling_consume(
		    bc->kind, "ORDERS", "orders.>", name, &s, NULL, &secs);
		rate = (double)opt.n / secs;
		self = cpu_seconds(getpid()) - self0;
		srv_cpu = cpu_seconds(natsserver_pid(srv)) - srv0;
		sink_free(&s);
		break;
	case K_PUB_DIRECT:
		rc = publish_direct("pub.orders", name, opt.n, &rate);
		self = cpu_seconds(getpid()) - self0;
		srv_cpu = cpu_seconds(natsserver_pid(srv)) - srv0;
		js_PurgeStream(testjs_ctx(ctl), "PUB", NULL, &jerr);
		break;
	case K_SIDECAR:
	case K_PUB_SIDECAR:
		if (sidecar_start(&sc, bc,
			bc->kind == K_SIDECAR ? "ORDERS" : "IDLE", name) == -1)
			return -1;
		if ((app = app_connect(&sc)) != NULL) {
			sidecar_mark(&sc);
			self0 = cpu_seconds(getpid());
			srv0 = cpu_seconds(natsserver_pid(srv));
			t0 = fixture_now();
			if (bc->kind == K_SIDECAR) {
				sink_init(&s, opt.n, false);
				s.translated = bc->translate;
				rc = app_consume(app, &s,
				    fixture_now() + 60 + (double)opt.n / 1000);
				secs = s.t_last - t0;
				sink_free(&s);
			} else {
				rc =
				    app_publish(app, "pub.orders", name, opt.n);
				secs = fixture_now() - t0;
			}
			rate = (double)opt.n / secs;
			cpu = sidecar_cpu(&sc);
			self = cpu_seconds(getpid()) - self0;
			srv_cpu = cpu_seconds(natsserver_pid(srv)) - srv0;
			if (rc == 0 && bc->kind == K_SIDECAR)
				rc = settled("ORDERS", name);
		}
		nsc_close(app);
		sidecar_stop(&sc);
		if (rc == 0) {
			bc->v[M_RSS][run] = (double)sc.sm.rss_anon_kib;
			bc->v[M_HWM][run] = (double)sc.sm.hwm_kib;
			bc->v[M_CPU][run] = cpu / (double)opt.n * 1e6;
		}
		if (bc->kind == K_SIDECAR)
			js_DeleteConsumer(
			    testjs_ctx(ctl), "ORDERS", name, NULL, &jerr);
		else
			js_PurgeStream(testjs_ctx(ctl), "PUB", NULL, &jerr);
		break;
	}
	if (rc == 0) {
		bc->v[M_RATE][run] = rate;
		bc->v[M_CLIENT_CPU][run] = self / (double)opt.n * 1e6;
		bc->v[M_SERVER_CPU][run] = srv_cpu / (double)opt.n * 1e6;
	}
	return rc;
}

static void
run_case(struct bcase *bc, int run)
{
	static const enum kind push = K_PUSH, pull = K_PULL;
	double t0 = fixture_now();
	int rc;

	fprintf(stderr, "suite: run %d: %s ...", run + 1, bc->name);
	rc = run_throughput(bc, run);
	if (rc == 0 && bc->latency)
		rc = run_latency(bc, run, 1000, M_L1_50, NULL);
	if (rc == 0 && bc->latency)
		rc = run_latency(bc, run, 10000, M_L10_50, NULL);
	if (rc == 0 && bc->paired)
		rc = run_latency(bc, run, 10000, M_PAIRED_99, &push);
	if (rc == 0 && bc->paired)
		rc = run_latency(bc, run, 10000, M_PAIRED_PULL_99, &pull);
	if (rc != 0)
		bc->failures++;
	fprintf(stderr, " %s (%.1f s)\n", rc == 0 ? "ok" : "FAILED",
	    fixture_now() - t0);
}

/* ---- report ---- */

/* Median, min and max of the measured values among |v|; false if none. */
static bool
stat3(const double *v, double out[3])
{
	double w[16];
	int n = 0;

	for (int r = 0; r < opt.runs; r++)
		if (!isnan(v[r]))
			w[n++] = v[r];
	if (n == 0)
		return false;
	qsort(w, (size_t)n, sizeof *w, cmp_double);
	out[0] = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
	out[1] = w[0];
	out[2] = w[n - 1];
	return true;
}

static struct bcase *
find_case(const char *name)
{
	for (size_t i = 0; i < NCASES; i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	return NULL;
}

/* Per run: |num|'s metric over the faster of the ceiling consumers. */
static double
ratio_to_ceiling(const char *num, int run)
{
	struct bcase *a = find_case("ceiling-push"),
		     *b = find_case("ceiling-pull"), *n = find_case(num);
	double c = fmax(isnan(a->v[M_RATE][run]) ? 0 : a->v[M_RATE][run],
	    isnan(b->v[M_RATE][run]) ? 0 : b->v[M_RATE][run]);

	return c > 0 ? n->v[M_RATE][run] / c : NAN;
}

static double
ratio(const char *num, const char *den, enum metric m, int run)
{
	return find_case(num)->v[m][run] / find_case(den)->v[m][run];
}

/* Derived per-run figures: ratios and the p99 difference. */
struct derived {
	const char *name;
	const char *target;
	double limit;
	bool at_most; /* the target is an upper bound */
	double v[16];
};

static struct derived derived[] = {
	{ .name = "ceiling_msgs_per_s" },
	{ .name = "bare_over_ceiling", .target = ">= 0.8", .limit = 0.8 },
	{ .name = "full_over_ceiling", .target = ">= 0.6", .limit = 0.6 },
	{ .name = "publish_sidecar_over_direct",
	    .target = ">= 0.8",
	    .limit = 0.8 },
	{ .name = "full_p99_10k_minus_ceiling_ms" },
	{ .name = "full_p99_10k_paired_minus_ms",
	    .target = "<= 1 ms",
	    .limit = 1.0,
	    .at_most = true },
	{ .name = "full_p99_10k_paired_minus_pull_ms" },
	{ .name = "bare_rss_anon_peak_mib",
	    .target = "<= 24 MiB",
	    .limit = 24,
	    .at_most = true },
	{ .name = "dedup_over_bare", .target = ">= 0.9", .limit = 0.9 },
	{ .name = "fsync_over_bare" },
};
#define NDERIVED (sizeof derived / sizeof derived[0])

static void
derive(void)
{
	struct bcase *push = find_case("ceiling-push"),
		     *pull = find_case("ceiling-pull"),
		     *full = find_case("sidecar-full");

	for (int r = 0; r < opt.runs; r++) {
		double c =
		    fmax(isnan(push->v[M_RATE][r]) ? 0 : push->v[M_RATE][r],
			isnan(pull->v[M_RATE][r]) ? 0 : pull->v[M_RATE][r]);
		/* The ceiling's p99: that of the faster consumer. */
		double p99 = push->v[M_RATE][r] >= pull->v[M_RATE][r] ||
			isnan(pull->v[M_RATE][r])
		    ? push->v[M_L10_99][r]
		    : pull->v[M_L10_99][r];

		derived[0].v[r] = c > 0 ? c : NAN;
		derived[1].v[r] = ratio_to_ceiling("sidecar-bare", r);
		derived[2].v[r] = ratio_to_ceiling("sidecar-full", r);
		derived[3].v[r] =
		    ratio("publish-sidecar", "publish-direct", M_RATE, r);
		derived[4].v[r] = full->v[M_L10_99][r] - p99;
		derived[5].v[r] =
		    full->v[M_PAIRED_99][r] - full->v[M_PAIRED_CEILING_99][r];
		derived[6].v[r] = full->v[M_PAIRED_PULL_99][r] -
		    full->v[M_PAIRED_PULL_CEILING_99][r];
		derived[7].v[r] = find_case("sidecar-bare")->v[M_RSS][r] / 1024;
		derived[8].v[r] =
		    ratio("sidecar-dedup", "sidecar-bare", M_RATE, r);
		derived[9].v[r] =
		    ratio("sidecar-fsync", "sidecar-bare", M_RATE, r);
	}
}

/* Decimals worth printing for a figure of |v|'s size. */
static int
prec(double v)
{
	return fabs(v) >= 100 ? 0 : fabs(v) >= 10 ? 1 : 3;
}

static void
print_cell(const struct bcase *bc, enum metric m, int decimals)
{
	double s[3];
	char buf[64];

	if (!stat3(bc->v[m], s)) {
		printf(" %20s", "-");
		return;
	}
	snprintf(buf, sizeof buf, "%.*f (%.*f-%.*f)", decimals, s[0], decimals,
	    s[1], decimals, s[2]);
	printf(" %20s", buf);
}

static void
print_table(void)
{
	printf("\n%ld messages, %d run(s), latency phases of %.1f s; median "
	       "(min-max)\n\n",
	    opt.n, opt.runs, opt.lat_secs);
	printf("%-16s %20s %20s %20s %20s %20s %20s\n", "case", "msgs/s",
	    "sidecar cpu s/M", "RssAnon peak KiB", "VmHWM KiB",
	    "client cpu s/M", "server cpu s/M");
	for (size_t i = 0; i < NCASES; i++) {
		if (!cases[i].selected)
			continue;
		printf("%-16s", cases[i].name);
		print_cell(&cases[i], M_RATE, 0);
		print_cell(&cases[i], M_CPU, 2);
		print_cell(&cases[i], M_RSS, 0);
		print_cell(&cases[i], M_HWM, 0);
		print_cell(&cases[i], M_CLIENT_CPU, 2);
		print_cell(&cases[i], M_SERVER_CPU, 2);
		printf("\n");
	}
	printf("\nlatency, ms (JetStream timestamp -> receipt)\n");
	printf("%-16s %20s %20s %20s %20s %20s %20s\n", "case", "1k p50",
	    "1k p99", "1k p99.9", "10k p50", "10k p99", "10k p99.9");
	for (size_t i = 0; i < NCASES; i++) {
		if (!cases[i].selected || !cases[i].latency)
			continue;
		printf("%-16s", cases[i].name);
		for (int m = M_L1_50; m <= M_L10_999; m++)
			print_cell(&cases[i], m, 2);
		printf("\n");
	}
	for (size_t i = 0; i < NCASES; i++) {
		if (!cases[i].selected || !cases[i].paired)
			continue;
		printf("\n10k p99, ms, beside a ceiling consumer on the same "
		       "messages\n%-16s %20s %20s %20s %20s\n%-16s",
		    "case", "case p99", "push p99", "case p99", "pull p99",
		    cases[i].name);
		for (int m = M_PAIRED_99; m <= M_PAIRED_PULL_CEILING_99; m++)
			print_cell(&cases[i], m, 2);
		printf("\n");
	}
	printf("\n%-30s %24s %10s %8s\n", "figure", "median (min-max)",
	    "target", "verdict");
	for (size_t i = 0; i < NDERIVED; i++) {
		const struct derived *d = &derived[i];
		double s[3];
		char buf[64];
		const char *verdict = "";

		if (!stat3(d->v, s))
			continue;
		snprintf(buf, sizeof buf, "%.*f (%.*f-%.*f)", prec(s[0]), s[0],
		    prec(s[0]), s[1], prec(s[0]), s[2]);
		if (d->target != NULL)
			verdict =
			    (d->at_most ? s[0] <= d->limit : s[0] >= d->limit)
			    ? "met"
			    : "MISSED";
		printf("%-30s %24s %10s %8s\n", d->name, buf,
		    d->target != NULL ? d->target : "", verdict);
	}
}

/* One number, or null. */
static void
json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void
json_series(FILE *f, const char *name, const double *v)
{
	double s[3];

	fprintf(f, "\"%s\":{\"runs\":[", name);
	for (int r = 0; r < opt.runs; r++) {
		if (r > 0)
			fputc(',', f);
		json_num(f, v[r]);
	}
	fputs("]", f);
	if (stat3(v, s)) {
		fputs(",\"median\":", f);
		json_num(f, s[0]);
		fputs(",\"min\":", f);
		json_num(f, s[1]);
		fputs(",\"max\":", f);
		json_num(f, s[2]);
	}
	fputs("}", f);
}

static int
write_json(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return fail("%s: %s", path, strerror(errno));
	fprintf(f, "{\"messages\":%ld,\"runs\":%d,\"latency_seconds\":%g,",
	    opt.n, opt.runs, opt.lat_secs);
	fprintf(f,
	    "\"settings\":{\"ceiling_max_ack_pending\":%d,"
	    "\"ceiling_fetch_batch\":%d,\"publish_window\":%d,"
	    "\"app_capacity\":%d,\"max_in_flight\":%d},",
	    CEIL_MAX_ACK_PENDING, CEIL_FETCH_BATCH, PUB_WINDOW, APP_CAPACITY,
	    opt.in_flight);
	fputs("\"cases\":{", f);
	for (size_t i = 0, first = 1; i < NCASES; i++) {
		if (!cases[i].selected)
			continue;
		fprintf(f, "%s\"%s\":{\"failures\":%d", first ? "" : ",",
		    cases[i].name, cases[i].failures);
		first = 0;
		for (int m = 0; m < M_COUNT; m++) {
			fputc(',', f);
			json_series(f, metric_names[m], cases[i].v[m]);
		}
		fputs("}", f);
	}
	fputs("},\"derived\":{", f);
	for (size_t i = 0; i < NDERIVED; i++) {
		if (i > 0)
			fputc(',', f);
		json_series(f, derived[i].name, derived[i].v);
	}
	fputs("}}\n", f);
	if (fclose(f) == EOF)
		return fail("%s: %s", path, strerror(errno));
	return 0;
}

/* ---- main ---- */

static int
select_cases(const char *list)
{
	char *copy = strdup(list), *tok, *save = NULL;
	int rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		struct bcase *bc = find_case(tok);

		if (bc == NULL) {
			rc = fail("unknown case %s", tok);
			break;
		}
		bc->selected = true;
	}
	free(copy);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: suite [-n MSGS] [-r RUNS] [-c CASE,...] [-l SECONDS] "
	    "[-i IN_FLIGHT] [-j FILE] [--smoke]\ncases:");
	for (size_t i = 0; i < NCASES; i++)
		fprintf(stderr, " %s", cases[i].name);
	fputc('\n', stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "smoke", no_argument, NULL, 's' }, { NULL, 0, NULL, 0 }
	};
	static const char *const orders[] = { "orders.>", NULL },
				 *const pub[] = { "pub.>", NULL },
				 *const idle[] = { "idle.>", NULL };
	const char *list = NULL;
	double rate = 0;
	int c, failed = 0;

	while ((c = getopt_long(argc, argv, "n:r:c:l:j:i:", longopts, NULL)) !=
	    -1) {
		switch (c) {
		case 'n':
			opt.n = atol(optarg);
			break;
		case 'r':
			opt.runs = atoi(optarg);
			break;
		case 'c':
			list = optarg;
			break;
		case 'l':
			opt.lat_secs = atof(optarg);
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'i':
			opt.in_flight = atoi(optarg);
			break;
		case 's':
			opt.smoke = true;
			break;
		default:
			usage();
		}
	}
	if (opt.smoke) {
		opt.n = 2000;
		opt.runs = 1;
		opt.lat_secs = 0.5;
	}
	if (opt.n < 1 || opt.runs < 1 || opt.runs > 16 || opt.lat_secs <= 0 ||
	    opt.in_flight < 0 || opt.in_flight > 65536)
		usage();
	if (list == NULL)
		for (size_t i = 0; i < NCASES; i++)
			cases[i].selected = true;
	else if (select_cases(list) == -1)
		usage();
	for (size_t i = 0; i < NCASES; i++)
		for (int m = 0; m < M_COUNT; m++)
			for (int r = 0; r < 16; r++)
				cases[i].v[m][r] = NAN;

	if ((srv = natsserver_start(NULL)) == NULL)
		return 1;
	if ((ctl = testjs_connect(natsserver_url(srv))) == NULL ||
	    testjs_add_stream(ctl, "ORDERS", orders) == -1 ||
	    testjs_add_stream(ctl, "PUB", pub) == -1 ||
	    testjs_add_stream(ctl, "IDLE", idle) == -1) {
		natsserver_free(srv);
		return 1;
	}
	fprintf(stderr, "suite: filling ORDERS with %ld messages ...", opt.n);
	if (publish_direct("orders.created.v1", "ord", opt.n, &rate) == -1) {
		fprintf(stderr, " FAILED\n");
		failed = 1;
	} else {
		fprintf(stderr, " %.0f msgs/s\n", rate);
		for (int r = 0; r < opt.runs; r++)
			for (size_t i = 0; i < NCASES; i++)
				if (cases[i].selected)
					run_case(&cases[i], r);
	}
	for (size_t i = 0; i < NCASES; i++)
		if (cases[i].failures > 0)
			failed = 1;
	derive();
	print_table();
	if (opt.json != NULL && write_json(opt.json) == -1)
		failed = 1;
	testjs_free(ctl);
	natsserver_free(srv);
	nats_Close();
	if (failed)
		fprintf(stderr, "suite: some cases FAILED\n");
	return failed;
}
