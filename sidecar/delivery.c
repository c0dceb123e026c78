#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "delivery.h"
#include "view.h"
#include "xmalloc.h"

/* Splits |s| at dots into at most |max| tokens; returns how many. */
static int
split_tokens(char *s, char **tok, int max)
{
	int n = 0;

	while (n < max) {
		tok[n++] = s;
		if ((s = strchr(s, '.')) == NULL)
			break;
		*s++ = '\0';
	}
	return s == NULL ? n : max + 1;
}

/* A decimal token: digits only, no overflow. By hand, because strtoull
 * cost a fifth of the reply parse, which runs for every message. */
static int
parse_u64(const char *s, uint64_t *v)
{
	uint64_t n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

int
delivery_parse_reply(const char *reply, struct delivery_meta *m)
{
	char buf[512], *t[13];
	uint64_t ts;
	int n, i;

	if (reply == NULL || strlen(reply) >= sizeof buf)
		return -1;
	strcpy(buf, reply);
	n = split_tokens(buf, t, 12);
	if (n < 2 || n > 12 || strcmp(t[0], "$JS") != 0 ||
	    strcmp(t[1], "ACK") != 0)
		return -1;
	/*
	 * 9 tokens (2.9):
	 * $JS.ACK.stream.consumer.delivered.sseq.cseq.ts.pending 11/12 (2.10+):
	 * $JS.ACK.domain.account_hash.stream... [.random]
	 */
	if (n == 9)
		i = 2;
	else if (n == 11 || n == 12)
		i = 4;
	else
		return -1;
	if (strlen(t[i]) >= sizeof m->stream ||
	    strlen(t[i + 1]) >= sizeof m->consumer)
		return -1;
	strcpy(m->stream, t[i]);
	strcpy(m->consumer, t[i + 1]);
	if (parse_u64(t[i + 2], &m->num_delivered) == -1 ||
	    parse_u64(t[i + 3], &m->stream_seq) == -1 ||
	    parse_u64(t[i + 4], &m->consumer_seq) == -1 ||
	    parse_u64(t[i + 5], &ts) == -1 ||
	    parse_u64(t[i + 6], &m->num_pending) == -1 || ts > INT64_MAX)
		return -1;
	m->timestamp_ns = (int64_t)ts;
	return 0;
}

struct delivery *
delivery_new(natsMsg *msg, struct subscription *sub, size_t size)
{
	struct delivery *d = xcalloc(1, sizeof *d);

	if (delivery_parse_reply(natsMsg_GetReply(msg), &d->meta) == -1) {
		bus_msg_free(msg);
		free(d);
		return NULL;
	}
	d->msg = msg;
	d->sub = sub;
	d->size = size;
	d->state = DELIVERY_CHAIN;
	return d;
}

void
delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	bus_msg_free(d->msg);
	view_free(d->view);
	free(d->app_payload);
	free(d->text);
	free(d);
}

const char *
delivery_subject(const struct delivery *d)
{
	return natsMsg_GetSubject(d->msg);
}

const char *
delivery_reply(const struct delivery *d)
{
	return natsMsg_GetReply(d->msg);
}

const char *
delivery_header(const struct delivery *d, const char *name)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(d->msg, name, &v) != NATS_OK)
		return NULL;
	return v;
}

const void *
delivery_payload(const struct delivery *d, size_t *len)
{
	*len = (size_t)natsMsg_GetDataLength(d->msg);
	return natsMsg_GetData(d->msg);
}

const char *
delivery_msg_id(const struct delivery *d)
{
	return delivery_header(d, "Nats-Msg-Id");
}

void
delivery_set_payload(struct delivery *d, void *data, size_t len,
    const char *content_type, const char *version)
{
	free(d->app_payload);
	d->app_payload = data;
	d->app_payload_len = len;
	d->app_content_type = content_type;
	d->app_version = version;
}

const char *
delivery_set_text(struct delivery *d, const char *text)
{
	free(d->text);
	d->text = xstrdup(text);
	return d->text;
}

int
delivery_trace(struct delivery *d, struct trace_gen *gen)
{
	const char *tp = delivery_header(d, "traceparent");
	bool valid = trace_parent_valid(tp);

	d->tracestate_ok = valid;
	d->traceparent[0] = d->trace_id[0] = '\0';
	if (valid) {
		/* Only the version 00 fields: later ones are not ours to
		 * pass on as 00. */
		memcpy(d->traceparent, tp, TRACE_PARENT_LEN);
		d->traceparent[0] = d->traceparent[1] = '0';
		d->traceparent[TRACE_PARENT_LEN] = '\0';
	} else if (gen != NULL)
		trace_gen_parent(gen, d->traceparent);
	if (d->traceparent[0] != '\0') {
		memcpy(d->trace_id, d->traceparent + 3, TRACE_ID_LEN);
		d->trace_id[TRACE_ID_LEN] = '\0';
	}
	return tp != NULL && !valid;
}

const char *
delivery_tracestate(const struct delivery *d)
{
	return d->tracestate_ok ? delivery_header(d, "tracestate") : NULL;
}
