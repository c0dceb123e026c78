/*
 * nats-sidecar: parses arguments, loads the configuration, wires the
 * modules together and runs the loop.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <nats/nats.h>

#include "config.h"
#include "core.h"
#include "dedupcmd.h"
#include "dlqcmd.h"
#include "filters/filter.h"
#include "filters/translate.h"
#include "log.h"
#include "schema.h"
#include "xmalloc.h"

/* Loads the configured schemas and checks every declared message type;
 * returns 0 (|*out| NULL when none are configured) or -1 after saying
 * why on stderr. */
static int
load_schemas(const struct config *cfg, struct schema **out)
{
	char *err = NULL;

	*out = NULL;
	if (cfg->schemas.n > 0 &&
	    (*out = schema_load_files((const char *const *)cfg->schemas.v,
		 cfg->schemas.n, &err)) == NULL) {
		fprintf(stderr, "%s: schemas: %s\n", cfg->path, err);
		free(err);
		return -1;
	}
	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		const char *type = config_subscription(cfg, i)->message_type;

		if (type != NULL &&
		    (*out == NULL || schema_lookup(*out, type) == NULL)) {
			fprintf(stderr,
			    "%s: subscriptions[%zu].message_type: no message "
			    "type %s in %s\n",
			    cfg->path, i, type,
			    *out == NULL ? "the schemas (none are configured)"
					 : "the loaded schemas");
			schema_free(*out);
			*out = NULL;
			return -1;
		}
	}
	return 0;
}

/* --check-config: compiles every translate filter's mappings and reports,
 * as YAML comments, the fields they leave empty or lose; returns 0, or -1
 * after saying on stderr which does not compile. */
static int
check_translations(const struct config *cfg, const struct schema *schemas)
{
	int rc = 0;

	for (size_t i = 0; i < cfg->subscriptions.n; i++) {
		const struct config_subscription *s =
		    config_subscription(cfg, i);

		for (size_t k = 0; k < s->filters.n; k++) {
			char *prefix;

			if (s->filters.v[k].ops != &translate_filter)
				continue;
			prefix = xasprintf(
			    "# subscription %s: translate: ", s->name);
			if (translate_check(s->filters.v[k].options, schemas,
				prefix, stdout) == -1) {
				fprintf(stderr,
				    "%s: subscription %s: translate does not "
				    "compile (see above)\n",
				    cfg->path, s->name);
				rc = -1;
			}
			free(prefix);
		}
	}
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: nats-sidecar -c FILE [--check-config]\n"
	    "       nats-sidecar -c FILE dlq [--stream NAME] list|show SEQ|\n"
	    "                    replay [--filter SUBJECT] [--delete] [SEQ...]|"
	    "purge\n"
	    "       nats-sidecar -c FILE dedup [--subscription NAME]\n"
	    "                    stats|lookup KEY|forget KEY|purge\n"
	    "\n"
	    "Consumes JetStream deliveries, de-duplicates, translates and\n"
	    "retries them, and hands them to the app over a Unix socket.\n"
	    "\n"
	    "  -c, --config FILE   configuration file (YAML)\n"
	    "      --check-config  validate the configuration, print the\n"
	    "                      effective settings and exit\n"
	    "  -h, --help          show this help and exit\n"
	    "  -V, --version       show the version and exit\n"
	    "\n"
	    "Exit status: 0 after a clean drain, 1 on a runtime failure,\n"
	    "2 for a bad command line or configuration.\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "stream", required_argument, NULL, 's' },
		{ "subscription", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *stream = NULL, *subscription = NULL;
	struct schema *schemas = NULL;
	struct config *cfg;
	struct core *core;
	int ch, check = 0, status;

	/* "+": options end at the first operand, the dlq command's own. */
	while ((ch = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 's':
			stream = optarg;
			break;
		case 'S':
			subscription = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("nats-sidecar %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path != NULL && optind < argc && strcmp(argv[optind], "dlq") == 0) {
		if ((cfg = config_load(path, stderr)) == NULL)
			return 2;
		status = dlqcmd_run(
		    cfg, stream, argc - optind - 1, argv + optind + 1);
		config_free(cfg);
		nats_CloseAndWait(2000);
		return status;
	}
	if (path != NULL && optind < argc &&
	    strcmp(argv[optind], "dedup") == 0) {
		if ((cfg = config_load(path, stderr)) == NULL)
			return 2;
		status = optind + 1 < argc
		    ? dedupcmd_run(cfg, subscription, argc - optind - 1,
			  argv + optind + 1)
		    : 2;
		if (status == 2 && optind + 1 >= argc)
			fprintf(stderr, "nats-sidecar dedup: name a command\n");
		config_free(cfg);
		return status;
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((cfg = config_load(path, stderr)) == NULL)
		return 2;
	if (load_schemas(cfg, &schemas) == -1) {
		config_free(cfg);
		return 2;
	}
	if (check) {
		config_print(cfg, stdout);
		if (check_translations(cfg, schemas) == -1) {
			schema_free(schemas);
			config_free(cfg);
			return 2;
		}
		schema_free(schemas);
		config_free(cfg);
		return 0;
	}
	log_set_level((enum log_level)cfg->log.level);
	/* A write to an app that went away must not kill the sidecar. */
	signal(SIGPIPE, SIG_IGN);

	if ((core = core_new(EV_DEFAULT, cfg, schemas)) == NULL) {
		schema_free(schemas);
		config_free(cfg);
		return 1;
	}
	status = core_run(core);
	core_free(core);
	schema_free(schemas);
	config_free(cfg);
	/* Lets nats.c's threads end, so nothing is reported as leaked. */
	nats_CloseAndWait(2000);
	return status;
}
