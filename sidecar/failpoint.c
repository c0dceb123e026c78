#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "log.h"

/* The value text of |name| in the environment's list, or NULL. */
static const char *
failpoint_find(const char *name, size_t *len)
{
	static const char *list;
	static int loaded;
	size_t n = strlen(name);
	const char *p;

	if (!loaded) {
		list = getenv("NATS_SIDECAR_FAILPOINTS");
		loaded = 1;
	}
	for (p = list; p != NULL && *p != '\0'; p += strcspn(p, ",")) {
		p += *p == ',';
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			*len = strcspn(p + n + 1, ",");
			return p + n + 1;
		}
	}
	return NULL;
}

long
failpoint_value(const char *name, long def)
{
	size_t len;
	const char *v = failpoint_find(name, &len);

	return v != NULL ? strtol(v, NULL, 10) : def;
}

void
failpoint_kill(const char *name)
{
	size_t len;
	const char *v = failpoint_find(name, &len);

	if (v == NULL || len != 4 || strncmp(v, "kill", 4) != 0)
		return;
	log_warnx("failpoint.kill", "failpoint %s: killing the process", name);
	raise(SIGKILL);
}
