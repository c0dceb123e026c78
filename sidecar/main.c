/*
 * nats-sidecar: parses arguments, loads the configuration, wires the
 * modules together and runs the loop.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: nats-sidecar [-c FILE] [--check-config]\n"
	    "\n"
	    "Consumes JetStream deliveries, de-duplicates, translates and\n"
	    "retries them, and hands them to the app over a Unix socket.\n"
	    "\n"
	    "  -c, --config FILE   configuration file (YAML)\n"
	    "      --check-config  validate the configuration, print the\n"
	    "                      effective settings and exit\n"
	    "  -h, --help          show this help and exit\n"
	    "  -V, --version       show the version and exit\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
		case 'C':
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
	usage(stderr);
	return 2;
}
