/*
 * nats-sidecar dlq: operator commands on a dead-letter stream. They run
 * outside the loop, so they use nats.c's synchronous calls.
 *
 *   dlq list                 one line per dead letter
 *   dlq show SEQ             every header and the payload of one
 *   dlq replay [SEQ...]      publish them again to their original subject
 *       [--filter SUBJECT]   only those whose original subject matches
 *       [--delete]           remove each from the stream once replayed
 *   dlq purge                empty the stream
 *
 * A replayed message carries its original headers (taken back from under
 * the dead letter's prefix), Nats-Sidecar-Replay-Of: STREAM:SEQ naming the
 * dead letter, and Nats-Msg-Id "replay:STREAM:SEQ": replaying the same dead
 * letter twice within the original stream's duplicate window stores it
 * once, and the replay is never taken for a duplicate of the original.
 * The original's own id travels as Nats-Sidecar-Replay-Msg-Id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nats/nats.h>

#include "bus.h"
#include "config.h"
#include "dlqcmd.h"
#include "filters/deadletter.h"
#include "log.h"
#include "xmalloc.h"

#define WAIT_MS 5000

struct dlqcmd {
	natsConnection *nc;
	jsCtx *js;
	const char *stream;
	const char *prefix; /* of the original headers */
};

static const char *
header(natsMsg *m, const char *name)
{
	const char *v = NULL;

	return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : "";
}

/* NATS subject matching: "*" is one token, ">" one or more. */
static bool
subject_matches(const char *pattern, const char *subject)
{
	for (;;) {
		size_t pl = strcspn(pattern, "."), sl = strcspn(subject, ".");

		if (pl == 1 && pattern[0] == '>')
			return sl > 0;
		if (!(pl == 1 && pattern[0] == '*') &&
		    (pl != sl || strncmp(pattern, subject, pl) != 0))
			return false;
		pattern += pl;
		subject += sl;
		if (*pattern == '\0' || *subject == '\0')
			return *pattern == *subject;
		pattern++;
		subject++;
	}
}

static int
stream_range(struct dlqcmd *c, uint64_t *first, uint64_t *last)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;

	if (js_GetStreamInfo(&si, c->js, c->stream, NULL, &jerr) != NATS_OK) {
		fprintf(stderr, "nats-sidecar dlq: stream %s: %s\n", c->stream,
		    nats_GetLastError(NULL));
		return -1;
	}
	*first = si->State.FirstSeq;
	*last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* The dead letter at |seq|, or NULL if there is none (deleted). */
static natsMsg *
get(struct dlqcmd *c, uint64_t seq)
{
	natsMsg *m = NULL;
	jsErrCode jerr = 0;

	if (js_GetMsg(&m, c->js, c->stream, seq, NULL, &jerr) != NATS_OK)
		return NULL;
	return m;
}

static int
cmd_list(struct dlqcmd *c)
{
	uint64_t first, last, n = 0;

	if (stream_range(c, &first, &last) == -1)
		return 1;
	printf("%-8s %-24s %-32s %-10s %s\n", "SEQ", "FAILED", "SUBJECT",
	    "REASON", "TEXT");
	for (uint64_t seq = first; last > 0 && seq <= last; seq++) {
		natsMsg *m = get(c, seq);

		if (m == NULL)
			continue;
		printf("%-8" PRIu64 " %-24.24s %-32s %-10s %.60s\n", seq,
		    header(m, "Nats-Sidecar-Failed"),
		    header(m, "Nats-Sidecar-Subject"),
		    header(m, "Nats-Sidecar-Reason"),
		    header(m, "Nats-Sidecar-Reason-Text"));
		natsMsg_Destroy(m);
		n++;
	}
	printf("%" PRIu64 " dead letter(s) in %s\n", n, c->stream);
	return 0;
}

static int
cmd_show(struct dlqcmd *c, uint64_t seq)
{
	const char **keys = NULL;
	natsMsg *m = get(c, seq);
	int n = 0, len;
	const char *data;

	if (m == NULL) {
		fprintf(stderr,
		    "nats-sidecar dlq: no message %" PRIu64 " in %s\n", seq,
		    c->stream);
		return 1;
	}
	printf(
	    "sequence: %" PRIu64 "\nsubject: %s\n", seq, natsMsg_GetSubject(m));
	natsMsgHeader_Keys(m, &keys, &n);
	for (int i = 0; i < n; i++) {
		const char **vals = NULL;
		int nv = 0;

		natsMsgHeader_Values(m, keys[i], &vals, &nv);
		for (int j = 0; j < nv; j++)
			printf("%s: %s\n", keys[i], vals[j]);
		free(vals);
	}
	free(keys);
	data = natsMsg_GetData(m);
	len = natsMsg_GetDataLength(m);
	printf("payload (%d bytes):\n", len);
	for (int i = 0; i < len; i++)
		putchar(data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.');
	putchar('\n');
	natsMsg_Destroy(m);
	return 0;
}

/* Publishes dead letter |m| (at |seq|) to its original subject. */
static int
replay_one(struct dlqcmd *c, natsMsg *dl, uint64_t seq)
{
	const char *subject = header(dl, "Nats-Sidecar-Subject");
	size_t plen = strlen(c->prefix);
	const char **keys = NULL;
	char id[160], of[160];
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus s;
	int n = 0;

	snprintf(id, sizeof id, "replay:%s:%" PRIu64, c->stream, seq);
	snprintf(of, sizeof of, "%s:%" PRIu64, c->stream, seq);
	s = natsMsg_Create(
	    &m, subject, NULL, natsMsg_GetData(dl), natsMsg_GetDataLength(dl));
	if (s == NATS_OK)
		s = natsMsgHeader_Keys(dl, &keys, &n);
	for (int i = 0; s == NATS_OK && i < n; i++) {
		const char **vals = NULL;
		int nv = 0;

		if (strncasecmp(keys[i], c->prefix, plen) != 0)
			continue;
		natsMsgHeader_Values(dl, keys[i], &vals, &nv);
		for (int j = 0; s == NATS_OK && j < nv; j++) {
			const char *name = keys[i] + plen;

			if (strcasecmp(name, "Nats-Msg-Id") == 0)
				s = natsMsgHeader_Add(
				    m, "Nats-Sidecar-Replay-Msg-Id", vals[j]);
			else if (strncasecmp(name, "Nats-Expected-", 14) != 0)
				s = natsMsgHeader_Add(m, name, vals[j]);
		}
		free(vals);
	}
	free(keys);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Sidecar-Replay-Of", of);
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, c->js, m, NULL, &jerr);
	natsMsg_Destroy(m);
	if (s != NATS_OK) {
		fprintf(stderr,
		    "nats-sidecar dlq: cannot replay %" PRIu64 " to %s: %s\n",
		    seq, subject, nats_GetLastError(NULL));
		return -1;
	}
	printf("replayed %" PRIu64 " to %s as %s sequence %" PRIu64 "%s\n", seq,
	    subject, pa->Stream, pa->Sequence,
	    pa->Duplicate ? " (already replayed)" : "");
	jsPubAck_Destroy(pa);
	return 0;
}

static int
cmd_replay(struct dlqcmd *c, int argc, char **argv)
{
	const char *filter = NULL;
	uint64_t first, last, *seqs;
	size_t nseqs = 0, done = 0;
	bool delete = false;
	int failed = 0;

	seqs = xcalloc((size_t)argc + 1, sizeof *seqs);
	for (int i = 0; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
			filter = argv[++i];
		else if (strcmp(argv[i], "--delete") == 0)
			delete = true;
		else if ((seqs[nseqs++] = strtoull(argv[i], &end, 10)) == 0 ||
		    *end != '\0') {
			fprintf(stderr,
			    "nats-sidecar dlq replay: not a "
			    "sequence number: %s\n",
			    argv[i]);
			free(seqs);
			return 2;
		}
	}
	if (stream_range(c, &first, &last) == -1) {
		free(seqs);
		return 1;
	}
	for (uint64_t seq = first; last > 0 && seq <= last; seq++) {
		bool wanted = nseqs == 0;
		natsMsg *m;

		for (size_t i = 0; i < nseqs; i++)
			wanted = wanted || seqs[i] == seq;
		if (!wanted || (m = get(c, seq)) == NULL)
			continue;
		if (filter == NULL ||
		    subject_matches(
			filter, header(m, "Nats-Sidecar-Subject"))) {
			if (replay_one(c, m, seq) == 0) {
				done++;
				if (delete)
					js_DeleteMsg(
					    c->js, c->stream, seq, NULL, NULL);
			} else
				failed++;
		}
		natsMsg_Destroy(m);
	}
	printf("%zu replayed, %d failed\n", done, failed);
	free(seqs);
	return failed > 0 ? 1 : 0;
}

static int
cmd_purge(struct dlqcmd *c)
{
	jsErrCode jerr = 0;

	if (js_PurgeStream(c->js, c->stream, NULL, &jerr) != NATS_OK) {
		fprintf(stderr, "nats-sidecar dlq: cannot purge %s: %s\n",
		    c->stream, nats_GetLastError(NULL));
		return 1;
	}
	printf("purged %s\n", c->stream);
	return 0;
}

/* The dead-letter options of the first subscription that has them. */
static const struct deadletter_options *
configured(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		const struct config_filters *f =
		    &config_subscription(cfg, i)->filters;

		for (size_t j = 0; j < f->n; j++) {
			if (f->v[j].ops == &deadletter_filter)
				return f->v[j].options;
		}
	}
	return NULL;
}

int
dlqcmd_run(const struct config *cfg, const char *stream, int argc, char **argv)
{
	const struct deadletter_options *o = configured(cfg);
	struct dlqcmd c = { .stream = stream };
	natsOptions *opts = NULL;
	int status = 2;

	if (c.stream == NULL && o != NULL)
		c.stream = o->stream;
	c.prefix = o != NULL ? o->header_prefix : "Nats-Sidecar-Original-";
	if (argc < 1 || c.stream == NULL) {
		fprintf(stderr,
		    "usage: nats-sidecar -c FILE dlq [--stream NAME] "
		    "list|show SEQ|replay [--filter SUBJECT] "
		    "[--delete] [SEQ...]|purge\n"
		    "(the stream defaults to the dead-letter "
		    "filter's)\n");
		return 2;
	}
	if (natsOptions_Create(&opts) != NATS_OK ||
	    bus_connect_options(opts, &cfg->nats) == -1 ||
	    natsConnection_Connect(&c.nc, opts) != NATS_OK ||
	    natsConnection_JetStream(&c.js, c.nc, NULL) != NATS_OK) {
		fprintf(stderr, "nats-sidecar dlq: cannot connect: %s\n",
		    nats_GetLastError(NULL));
		status = 1;
		goto out;
	}
	if (strcmp(argv[0], "list") == 0 && argc == 1)
		status = cmd_list(&c);
	else if (strcmp(argv[0], "show") == 0 && argc == 2)
		status = cmd_show(&c, strtoull(argv[1], NULL, 10));
	else if (strcmp(argv[0], "replay") == 0)
		status = cmd_replay(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "purge") == 0 && argc == 1)
		status = cmd_purge(&c);
	else
		fprintf(
		    stderr, "nats-sidecar dlq: unknown command %s\n", argv[0]);
	natsConnection_FlushTimeout(c.nc, WAIT_MS);
out:
	jsCtx_Destroy(c.js);
	natsConnection_Destroy(c.nc);
	natsOptions_Destroy(opts);
	return status;
}
