/*
 * The pass-through filter: delivers everything unchanged. It has no
 * options and no hooks; it exists so an empty chain can be spelled out and
 * as the smallest example of a filter.
 */
#include <stdlib.h>

#include "filter.h"
#include "xmalloc.h"

static struct filter *
passthrough_init(const void *options, const struct filter_host *host)
{
	struct filter *f = xcalloc(1, sizeof *f);

	f->host = host;
	return f;
}

static void
passthrough_free(struct filter *f)
{
	free(f);
}

const struct filter_ops passthrough_filter = {
	.name = "passthrough",
	.init = passthrough_init,
	.free = passthrough_free,
};
