/*
 * order_producer: publishes `orders.created.v1` events, the reference
 * workload, to JetStream, creating the ORDERS stream if it is missing.
 * Each event carries its message_id as Nats-Msg-Id.
 *
 *   order_producer -s nats://127.0.0.1:4222 -n 1000 [-r 500] [-x SUFFIX] [-R]
 *
 * -r paces to that many events per second (default: as fast as possible);
 * -x makes ids distinct between runs; -R publishes the same events again
 * under new Nats-Msg-Ids, as a producer that retried with a fresh id would:
 * the stream's duplicate window cannot catch those, dedup on the payload's
 * message_id can.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

static int
ensure_stream(jsCtx *js)
{
	const char *subjects[] = { "orders.>" };
	jsStreamInfo *si = NULL;
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;

	if (js_GetStreamInfo(&si, js, "ORDERS", NULL, &jerr) == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	jsStreamConfig_Init(&cfg);
	cfg.Name = "ORDERS";
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	if ((s = js_AddStream(NULL, js, &cfg, NULL, &jerr)) != NATS_OK) {
		fprintf(stderr,
		    "order_producer: cannot create stream ORDERS: "
		    "%s (%d)\n",
		    natsStatus_GetText(s), (int)jerr);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url = "nats://127.0.0.1:4222", *suffix = "";
	long n = 100, rate = 0, failed = 0;
	natsConnection *nc = NULL;
	jsPubOptions po;
	jsCtx *js = NULL;
	struct timespec gap = { 0, 0 };
	bool retried = false;
	natsStatus s;
	int ch;

	while ((ch = getopt(argc, argv, "s:n:r:x:R")) != -1) {
		switch (ch) {
		case 's':
			url = optarg;
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 'r':
			rate = atol(optarg);
			break;
		case 'x':
			suffix = optarg;
			break;
		case 'R':
			retried = true;
			break;
		default:
			fprintf(stderr,
			    "usage: order_producer [-s URL] [-n N] "
			    "[-r PER_SECOND] [-x ID_SUFFIX] [-R]\n");
			return 2;
		}
	}
	if (rate > 0) {
		gap.tv_sec = 1 / rate;
		gap.tv_nsec = (1000000000L / rate) % 1000000000L;
	}
	s = natsConnection_ConnectTo(&nc, url);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s != NATS_OK) {
		fprintf(stderr, "order_producer: cannot connect to %s: %s\n",
		    url, natsStatus_GetText(s));
		return 1;
	}
	if (ensure_stream(js) == -1)
		return 1;
	jsPubOptions_Init(&po);
	for (long i = 1; i <= n; i++) {
		char id[64], header_id[80], body[256];
		natsMsg *m = NULL;
		int len;

		snprintf(id, sizeof id, "ord-%06ld%s", i, suffix);
		len = snprintf(body, sizeof body,
		    "{\"message_id\":\"%s\",\"order_id\":\"o-%06ld\","
		    "\"customer_id\":\"c-%04ld\",\"total_amount\":%ld.%02ld,"
		    "\"created_at\":%lld}",
		    id, i, i % 97, 10 + i % 490, i % 100,
		    (long long)time(NULL) * 1000);
		snprintf(header_id, sizeof header_id, "%s%s", id,
		    retried ? "-retried" : "");
		s = natsMsg_Create(&m, "orders.created.v1", NULL, body, len);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", header_id);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(
			    m, "Content-Type", "application/json");
		if (s == NATS_OK)
			s = js_PublishMsgAsync(js, &m, &po);
		natsMsg_Destroy(m);
		failed += s != NATS_OK;
		if (rate > 0)
			nanosleep(&gap, NULL);
	}
	po.MaxWait = 10000;
	if (js_PublishAsyncComplete(js, &po) != NATS_OK)
		failed++;
	printf("published %ld orders.created.v1 events to stream ORDERS%s\n",
	    n - failed, failed > 0 ? " (some failed)" : "");
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return failed > 0 ? 1 : 0;
}
