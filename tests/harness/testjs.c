#include <stdio.h>
#include <stdlib.h>

#include "testjs.h"

struct testjs {
	natsConnection *nc;
	jsCtx *js;
};

static int
failed(const char *what, natsStatus s, jsErrCode jerr)
{
	fprintf(stderr, "# testjs: %s: %s (%s, jetstream error %d)\n", what,
	    natsStatus_GetText(s), nats_GetLastError(NULL), (int)jerr);
	return -1;
}

/* Connects with |opts| (NULL: defaults) to |url|. */
static struct testjs *
connect_with(const char *url, natsOptions *opts)
{
	struct testjs *t = calloc(1, sizeof *t);
	natsStatus s;

	if (t == NULL)
		return NULL;
	if (opts == NULL)
		s = natsConnection_ConnectTo(&t->nc, url);
	else if ((s = natsOptions_SetURL(opts, url)) == NATS_OK)
		s = natsConnection_Connect(&t->nc, opts);
	if (s != NATS_OK) {
		failed("connect", s, 0);
		free(t);
		return NULL;
	}
	if ((s = natsConnection_JetStream(&t->js, t->nc, NULL)) != NATS_OK) {
		failed("jetstream context", s, 0);
		testjs_free(t);
		return NULL;
	}
	return t;
}

struct testjs *
testjs_connect(const char *url)
{
	return connect_with(url, NULL);
}

struct testjs *
testjs_connect_tls(const char *url, const char *ca_file)
{
	natsOptions *opts = NULL;
	struct testjs *t = NULL;
	natsStatus s;

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetSecure(opts, true);
	if (s == NATS_OK)
		s = natsOptions_LoadCATrustedCertificates(opts, ca_file);
	if (s == NATS_OK)
		t = connect_with(url, opts);
	else
		failed("tls options", s, 0);
	natsOptions_Destroy(opts);
	return t;
}

void
testjs_free(struct testjs *t)
{
	if (t == NULL)
		return;
	jsCtx_Destroy(t->js);
	natsConnection_Destroy(t->nc);
	free(t);
}

natsConnection *
testjs_conn(struct testjs *t)
{
	return t->nc;
}

jsCtx *
testjs_ctx(struct testjs *t)
{
	return t->js;
}

int
testjs_add_stream(
    struct testjs *t, const char *name, const char *const *subjects)
{
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;
	int n = 0;

	while (subjects[n] != NULL)
		n++;
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = (const char **)subjects;
	cfg.SubjectsLen = n;
	cfg.Storage = js_FileStorage;
	if ((s = js_AddStream(NULL, t->js, &cfg, NULL, &jerr)) != NATS_OK)
		return failed("add stream", s, jerr);
	return 0;
}

int
testjs_publish(struct testjs *t, const char *subject, const void *data,
    size_t len, const char *const *headers, uint64_t *seq, int *dup)
{
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus s;

	s = natsMsg_Create(&m, subject, NULL, data, (int)len);
	for (int i = 0; s == NATS_OK && headers != NULL && headers[i] != NULL;
	     i += 2)
		s = natsMsgHeader_Add(m, headers[i], headers[i + 1]);
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, t->js, m, NULL, &jerr);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		return failed("publish", s, jerr);
	if (seq != NULL)
		*seq = pa->Sequence;
	if (dup != NULL)
		*dup = pa->Duplicate;
	jsPubAck_Destroy(pa);
	return 0;
}

int
testjs_get(struct testjs *t, const char *stream, uint64_t seq, natsMsg **msg)
{
	jsErrCode jerr = 0;
	natsStatus s;

	if ((s = js_GetMsg(msg, t->js, stream, seq, NULL, &jerr)) != NATS_OK)
		return failed("get message", s, jerr);
	return 0;
}

int
testjs_stream_msgs(struct testjs *t, const char *stream, uint64_t *n)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	if ((s = js_GetStreamInfo(&si, t->js, stream, NULL, &jerr)) != NATS_OK)
		return failed("stream info", s, jerr);
	*n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return 0;
}

int
testjs_consumer_pending(struct testjs *t, const char *stream,
    const char *durable, uint64_t *pending, uint64_t *ack_pending)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetConsumerInfo(&ci, t->js, stream, durable, NULL, &jerr);
	if (s != NATS_OK)
		return failed("consumer info", s, jerr);
	*pending = ci->NumPending;
	*ack_pending = (uint64_t)ci->NumAckPending;
	jsConsumerInfo_Destroy(ci);
	return 0;
}

int
testjs_delete_consumer(
    struct testjs *t, const char *stream, const char *durable)
{
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_DeleteConsumer(t->js, stream, durable, NULL, &jerr);
	if (s != NATS_OK)
		return failed("delete consumer", s, jerr);
	return 0;
}

int
testjs_publish_orders(struct testjs *t, const char *subject,
    const char *id_prefix, uint64_t first, uint64_t n)
{
	jsPubOptions po;
	natsStatus s = NATS_OK;

	jsPubOptions_Init(&po);
	for (uint64_t i = first; s == NATS_OK && i < first + n; i++) {
		char body[64], id[96];
		natsMsg *m = NULL;
		int len;

		len = snprintf(
		    body, sizeof body, "order-%llu", (unsigned long long)i);
		snprintf(
		    id, sizeof id, "%s-%llu", id_prefix, (unsigned long long)i);
		s = natsMsg_Create(&m, subject, NULL, body, len);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
		if (s == NATS_OK)
			s = js_PublishMsgAsync(t->js, &m, &po);
		natsMsg_Destroy(m);
	}
	po.MaxWait = 60000;
	if (s == NATS_OK)
		s = js_PublishAsyncComplete(t->js, &po);
	if (s != NATS_OK)
		return failed("publish orders", s, 0);
	return 0;
}

int
testjs_add_consumer(struct testjs *t, const char *stream, const char *durable,
    int64_t ack_wait_ns, int deliver_new)
{
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	natsStatus s;

	jsConsumerConfig_Init(&cc);
	cc.Durable = durable;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = ack_wait_ns;
	cc.DeliverPolicy = deliver_new ? js_DeliverNew : js_DeliverAll;
	s = js_AddConsumer(NULL, t->js, stream, &cc, NULL, &jerr);
	if (s != NATS_OK)
		return failed("add consumer", s, jerr);
	return 0;
}

int
testjs_consumer_ack_wait(struct testjs *t, const char *stream,
    const char *durable, int64_t *ack_wait_ns)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetConsumerInfo(&ci, t->js, stream, durable, NULL, &jerr);
	if (s != NATS_OK)
		return failed("consumer info", s, jerr);
	*ack_wait_ns = ci->Config->AckWait;
	jsConsumerInfo_Destroy(ci);
	return 0;
}
