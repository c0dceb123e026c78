#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "jsapi.h"
#include "xmalloc.h"

static const char *const deliver_policies[] = {
	[DELIVER_POLICY_ALL] = "all",
	[DELIVER_POLICY_NEW] = "new",
	[DELIVER_POLICY_LAST] = "last",
};

/* Waiting pull requests the consumer accepts: 2.9's default. */
#define MAX_WAITING 512

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

int
jsapi_pub_ack(const char *json, size_t len, struct jsapi_pub_ack *pa,
    struct jsapi_error *e)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	const char *stream;
	json_t *seq;
	int r = -1;

	if (root == NULL)
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
