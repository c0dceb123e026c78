#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "bus.h"
#include "config.h"
#include "jsapi.h"
#include "pbjson.h"
#include "xmalloc.h"

static const char *const deliver_policies[] = {
	[DELIVER_POLICY_ALL] = "all",
	[DELIVER_POLICY_NEW] = "new",
	[DELIVER_POLICY_LAST] = "last",
};

/* Waiting pull requests the consumer accepts: 2.9's default. */
#define MAX_WAITING 512
#define NS_PER_S INT64_C(1000000000)

int64_t
jsapi_max_ack_pending(const struct config_subscription *sub)
{
	if (sub->max_ack_pending > 0)
		return sub->max_ack_pending;
	return sub->max_in_flight * 4;
}

static json_t *
consumer_config(const struct config_subscription *sub)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I}",
	    "durable_name", sub->durable, "deliver_policy",
	    deliver_policies[sub->deliver_policy], "ack_policy", "explicit",
	    "ack_wait", (json_int_t)sub->ack_wait, "max_deliver",
	    (json_int_t)sub->max_deliver, "replay_policy", "instant",
	    "max_ack_pending", (json_int_t)jsapi_max_ack_pending(sub),
	    "max_waiting", (json_int_t)MAX_WAITING);

	if (c == NULL)
		abort();
	if (sub->filter_subject != NULL)
		json_object_set_new(
		    c, "filter_subject", json_string(sub->filter_subject));
	return c;
}

char *
jsapi_consumer_create(const struct config_subscription *sub)
{
	json_t *req = json_pack("{s:s, s:o}", "stream_name", sub->stream,
	    "config", consumer_config(sub));
	char *s = json_dumps(req, JSON_COMPACT);

	json_decref(req);
	if (s == NULL)
		abort();
	return s;
}

static void appendf(char **diff, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
appendf(char **diff, const char *fmt, ...)
{
	char *line, *joined;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) == -1)
		abort();
	va_end(ap);
	joined = xasprintf("%s%s%s", *diff != NULL ? *diff : "",
	    *diff != NULL ? "; " : "", line);
	free(*diff);
	free(line);
	*diff = joined;
}

/* A field as text, for comparison and for the diff. */
static char *
field_text(const json_t *v)
{
	if (v == NULL || json_is_null(v))
		return xstrdup("(unset)");
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

int
jsapi_consumer_diff(const struct config_subscription *sub, const char *json,
    size_t len, char **diff, bool *immutable)
{
	/* Fields the server cannot change on a live consumer. */
	static const char *const fixed[] = { "deliver_policy", "ack_policy",
		"max_waiting", "replay_policy", NULL };
	json_t *root, *have, *want;
	const char *key;
	json_t *wv;

	*diff = NULL;
	*immutable = false;
	root = json_loadb(json, len, 0, NULL);
	have = json_object_get(root, "config");
	if (!json_is_object(have)) {
		*diff = xstrdup("the response holds no consumer configuration");
		json_decref(root);
		return -1;
	}
	if (json_object_get(have, "deliver_subject") != NULL) {
		*diff = xstrdup("it is a push consumer; the sidecar needs a "
				"pull consumer (another durable name)");
		*immutable = true;
		json_decref(root);
		return 1;
	}
	want = consumer_config(sub);
	if (sub->filter_subject == NULL)
		json_object_set_new(want, "filter_subject", json_null());
	json_object_foreach(want, key, wv)
	{
		json_t *hv = json_object_get(have, key);
		char *h = field_text(hv), *w = field_text(wv);

		/* The server omits an empty filter subject. */
		if (strcmp(key, "filter_subject") == 0 && hv != NULL &&
		    strcmp(h, "") == 0) {
			free(h);
			h = xstrdup("(unset)");
		}
		if (strcmp(h, w) != 0) {
			appendf(diff, "%s: server has %s, configured %s", key,
			    h, w);
			for (size_t i = 0; fixed[i] != NULL; i++)
				*immutable =
				    *immutable || strcmp(key, fixed[i]) == 0;
		}
		free(h);
		free(w);
	}
	json_decref(want);
	json_decref(root);
	return *diff != NULL;
}

int64_t
jsapi_consumer_ack_wait(const char *json, size_t len)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *v =
	    json_object_get(json_object_get(root, "config"), "ack_wait");
	int64_t ns = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;

	json_decref(root);
	return ns;
}

int
jsapi_consumer_pending(
    const char *json, size_t len, uint64_t *pending, uint64_t *ack_pending)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *p = json_object_get(root, "num_pending");
	json_t *a = json_object_get(root, "num_ack_pending");
	int r = -1;

	if (json_is_integer(p) && json_integer_value(p) >= 0 &&
	    json_is_integer(a) && json_integer_value(a) >= 0) {
		*pending = (uint64_t)json_integer_value(p);
		*ack_pending = (uint64_t)json_integer_value(a);
		r = 0;
	}
	json_decref(root);
	return r;
}

static int
error_of(json_t *root, struct jsapi_error *e)
{
	json_t *err = json_object_get(root, "error");
	const char *d;

	if (!json_is_object(err))
		return 0;
	memset(e, 0, sizeof *e);
	e->code = (int)json_integer_value(json_object_get(err, "code"));
	e->err_code = (int)json_integer_value(json_object_get(err, "err_code"));
	if ((d = json_string_value(json_object_get(err, "description"))) !=
	    NULL)
		snprintf(e->description, sizeof e->description, "%s", d);
	return 1;
}

int
jsapi_error(const char *json, size_t len, struct jsapi_error *e)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	int r;

	if (root == NULL)
		return -1;
	r = error_of(root, e);
	json_decref(root);
	return r;
}

static const char *
skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A JSON string of printable ASCII without escapes at |*p|: its bytes in
 * |*s| and |*n|. Returns 0, or -1 for anything else. */
static int
plain_string(const char **p, const char *end, const char **s, size_t *n)
{
	const char *q = *p;

	if (q == end || *q++ != '"')
		return -1;
	*s = q;
	while (q < end && *q != '"') {
		if (*q < 0x20 || *q > 0x7e || *q == '\\')
			return -1;
		q++;
	}
	if (q == end)
		return -1;
	*n = (size_t)(q - *s);
	*p = q + 1;
	return 0;
}

/* A JSON integer of 1 to 18 digits (below 2^63, as jansson reads it) at
 * |*p|. Returns 0, or -1 for anything else. */
static int
plain_uint(const char **p, const char *end, uint64_t *v)
{
	const char *q = *p;

	*v = 0;
	while (q < end && *q >= '0' && *q <= '9' && q - *p < 19)
		*v = *v * 10 + (uint64_t)(*q++ - '0');
	if (q == *p || q - *p > 18 || (**p == '0' && q - *p > 1) ||
	    (q < end &&
		(*q == '.' || *q == 'e' || *q == 'E' ||
		    (*q >= '0' && *q <= '9'))))
		return -1;
	*p = q;
	return 0;
}

/* |lit| ("true", "false") at |*p|; returns 0 or -1. */
static int
literal(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return -1;
	*p += n;
	return 0;
}

/*
 * The server's own PubAck, {"stream":"S", "seq":N} with "domain" and
 * "duplicate" when they apply, read without building a JSON tree: with a
 * PubAck per publish, jansson was a third of the publish path's
 * instructions. Returns 1 when |json| is exactly such an object (plain
 * strings, a plain integer, the literal true or false, each key once),
 * else 0, and jsapi_pub_ack() reads it in full, as it reads errors.
 */
static int
pub_ack_plain(const char *p, const char *end, struct jsapi_pub_ack *pa)
{
	enum { STREAM = 1, SEQ = 2, DOMAIN = 4, DUPLICATE = 8 };
	unsigned seen = 0, key;
	const char *s;
	size_t n;

	memset(pa, 0, sizeof *pa);
	p = skip_space(p, end);
	if (p == end || *p++ != '{')
		return 0;
	do {
		p = skip_space(p, end);
		if (plain_string(&p, end, &s, &n) == -1)
			return 0;
		key = n == 6 && memcmp(s, "stream", 6) == 0    ? STREAM
		    : n == 3 && memcmp(s, "seq", 3) == 0       ? SEQ
		    : n == 6 && memcmp(s, "domain", 6) == 0    ? DOMAIN
		    : n == 9 && memcmp(s, "duplicate", 9) == 0 ? DUPLICATE
							       : 0;
		if (key == 0 || (seen & key) != 0)
			return 0;
		seen |= key;
		p = skip_space(p, end);
		if (p == end || *p++ != ':')
			return 0;
		p = skip_space(p, end);
		if (key == STREAM || key == DOMAIN) {
			if (plain_string(&p, end, &s, &n) == -1)
				return 0;
			if (key == STREAM) {
				/* Cut as snprintf() would, without its cost. */
				n = n < sizeof pa->stream
				    ? n
				    : sizeof pa->stream - 1;
				memcpy(pa->stream, s, n);
				pa->stream[n] = '\0';
			}
		} else if (key == SEQ) {
			if (plain_uint(&p, end, &pa->seq) == -1)
				return 0;
		} else if (literal(&p, end, "true") == 0)
			pa->duplicate = true;
		else if (literal(&p, end, "false") == -1)
			return 0;
		p = skip_space(p, end);
		if (p == end)
			return 0;
	} while (*p++ == ',');
	return p[-1] == '}' && (seen & (STREAM | SEQ)) == (STREAM | SEQ) &&
	    skip_space(p, end) == end;
}

int
jsapi_pub_ack(const char *json, size_t len, struct jsapi_pub_ack *pa,
    struct jsapi_error *e)
{
	json_t *root;
	const char *stream;
	json_t *seq;
	int r = -1;

	if (pub_ack_plain(json, json + len, pa) == 1)
		return 0;
	if ((root = json_loadb(json, len, 0, NULL)) == NULL)
		return -1;
	if (error_of(root, e))
		r = 1;
	else if ((stream = json_string_value(
		      json_object_get(root, "stream"))) != NULL &&
	    json_is_integer(seq = json_object_get(root, "seq"))) {
		memset(pa, 0, sizeof *pa);
		snprintf(pa->stream, sizeof pa->stream, "%s", stream);
		pa->seq = (uint64_t)json_integer_value(seq);
		pa->duplicate =
		    json_is_true(json_object_get(root, "duplicate"));
		r = 0;
	}
	json_decref(root);
	return r;
}

size_t
jsapi_pull_request(char *buf, size_t cap, int64_t batch, int64_t expires_ns,
    int64_t heartbeat_ns, int64_t max_bytes)
{
	int n;

	if (max_bytes > 0)
		n = snprintf(buf, cap,
		    "{\"batch\":%" PRId64 ",\"expires\":%" PRId64
		    ",\"idle_heartbeat\":%" PRId64 ",\"max_bytes\":%" PRId64
		    "}",
		    batch, expires_ns, heartbeat_ns, max_bytes);
	else
		n = snprintf(buf, cap,
		    "{\"batch\":%" PRId64 ",\"expires\":%" PRId64
		    ",\"idle_heartbeat\":%" PRId64 "}",
		    batch, expires_ns, heartbeat_ns);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int
jsapi_header_block(const uint8_t *block, size_t len, struct bus_header **hp,
    size_t *np, char **textp)
{
	static const char version[] = "NATS/1.0";
	struct bus_header *h;
	char *text, *p, *eol, *next, *colon, *v, *e;
	size_t n = 0, cap;

	if (len < sizeof version - 1 ||
	    memcmp(block, version, sizeof version - 1) != 0 ||
	    memchr(block, '\0', len) != NULL)
		return -1;
	text = xmalloc(len + 1);
	memcpy(text, block, len);
	text[len] = '\0';
	/* Each header takes at least "a:\r\n". */
	cap = len / 4 + 1;
	h = xcalloc(cap, sizeof *h);
	/* The version line, perhaps with a status, is not a header. */
	if ((p = strstr(text, "\r\n")) == NULL)
		goto bad;
	for (p += 2; *p != '\0'; p = next) {
		if ((eol = strstr(p, "\r\n")) == NULL)
			eol = p + strlen(p); /* the last line lacks its CRLF */
		next = *eol != '\0' ? eol + 2 : eol;
		*eol = '\0';
		if (*p == '\0')
			break; /* the empty line that ends the block */
		if ((colon = strchr(p, ':')) == NULL || colon == p || n == cap)
			goto bad;
		*colon = '\0';
		for (const char *c = p; *c != '\0'; c++) {
			if ((unsigned char)*c <= ' ' || *c == 0x7f)
				goto bad;
		}
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v);
		     e > v && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		if (strpbrk(v, "\r\n") != NULL)
			goto bad;
		h[n++] = (struct bus_header){ p, v };
	}
	*hp = h;
	*np = n;
	*textp = text;
	return 0;

bad:
	free(h);
	free(text);
	return -1;
}

/* When the stream stored a message: Go's RFC 3339 as ns since the epoch,
 * or 0 when there is none that fits (it is only context). */
static int64_t
stored_time(const char *s)
{
	int64_t sec;
	int32_t nanos;

	if (s == NULL || pbjson_parse_timestamp(s, &sec, &nanos) == -1 ||
	    sec < 0 || sec >= INT64_MAX / NS_PER_S)
		return 0;
	return sec * NS_PER_S + nanos;
}

/* Decodes the base64 string field |name| of |o|, if there is one. */
static int
bytes_field(json_t *o, const char *name, uint8_t **out, size_t *len)
{
	json_t *v = json_object_get(o, name);

	*out = NULL;
	*len = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	return base64_decode(
	    json_string_value(v), json_string_length(v), out, len);
}

int
jsapi_stream_msg(const char *json, size_t len, struct jsapi_stream_msg *m,
    struct jsapi_error *e)
{
	json_t *root = json_loadb(json, len, 0, NULL), *msg, *seq;
	const char *subject, *time;
	uint8_t *hdrs = NULL;
	size_t hlen = 0;
	int r = -1;

	memset(m, 0, sizeof *m);
	if (root == NULL)
		return -1;
	if (error_of(root, e)) {
		json_decref(root);
		return 1;
	}
	msg = json_object_get(root, "message");
	subject = json_string_value(json_object_get(msg, "subject"));
	seq = json_object_get(msg, "seq");
	time = json_string_value(json_object_get(msg, "time"));
	if (subject == NULL || subject[0] == '\0' ||
	    strlen(subject) !=
		json_string_length(json_object_get(msg, "subject")) ||
	    !json_is_integer(seq) || json_integer_value(seq) <= 0 ||
	    bytes_field(msg, "hdrs", &hdrs, &hlen) == -1 ||
	    bytes_field(msg, "data", &m->data, &m->len) == -1)
		goto out;
	if (hlen > 0 &&
	    jsapi_header_block(
		hdrs, hlen, &m->headers, &m->nheaders, &m->header_text) == -1)
		goto out;
	m->subject = xstrdup(subject);
	m->seq = (uint64_t)json_integer_value(seq);
	m->time_ns = stored_time(time);
	r = 0;
out:
	free(hdrs);
	if (r == -1) {
		free(m->data);
		memset(m, 0, sizeof *m);
	}
	json_decref(root);
	return r;
}

void
jsapi_stream_msg_free(struct jsapi_stream_msg *m)
{
	free(m->subject);
	free(m->headers);
	free(m->header_text);
	free(m->data);
	memset(m, 0, sizeof *m);
}

size_t
jsapi_msg_request(char *buf, size_t cap, uint64_t seq, bool no_erase)
{
	int n = snprintf(buf, cap, "{\"seq\":%" PRIu64 "%s}", seq,
	    no_erase ? ",\"no_erase\":true" : "");

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
