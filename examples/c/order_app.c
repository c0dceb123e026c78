/*
 * order_app: a minimal nats-sidecar app in C, on the client library.
 * Prints a one-line summary of every delivery and acknowledges it; exits
 * when the sidecar drains.
 *
 *   order_app [SOCKET]      (default: /run/nats-sidecar/app.sock)
 *
 * Build against an installed library:
 *   cc -I/usr/local/include/nats-sidecar order_app.c \
 *       -lnats-sidecar-client -lprotobuf-c
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nsc.h"

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/run/nats-sidecar/app.sock";
	struct nsc_options opts = { .capacity = 16, .app_name = "order_app" };
	struct nsc_event ev = NSC_EVENT_INIT;
	struct nsc *c;
	char *err;

	/* The sidecar may start after the app: wait for it. */
	for (int ms = 100; (c = nsc_connect(path, &opts, &err)) == NULL;
	     ms = ms < 5000 ? ms * 2 : 5000) {
		fprintf(stderr, "order_app: %s; retrying\n", err);
		free(err);
		usleep(ms * 1000);
	}
	/* Answers queued while events are waiting go out in one write, when
	 * nsc_next() next has to wait. */
	while (nsc_next(c, -1, &ev) == NSC_NEXT_EVENT) {
		const struct nsc_delivery *d = &ev.delivery;

		switch (ev.kind) {
		case NSC_EVENT_DELIVERY:
			printf("%s seq=%llu attempt=%u id=%s: %zu bytes\n",
			    d->subject, (unsigned long long)d->stream_sequence,
			    d->attempt, d->message_id, d->payload_len);
			fflush(stdout);
			nsc_ack(c, d->id);
			break;
		case NSC_EVENT_DRAIN:
			printf("draining: every order is answered, exiting\n");
			nsc_event_clear(&ev);
			nsc_close(c);
			return 0;
		case NSC_EVENT_ERROR:
			fprintf(stderr, "order_app: sidecar error: %s\n",
			    ev.error.message);
			break;
		default:
			break;
		}
	}
	fprintf(stderr, "order_app: %s\n", nsc_last_error(c));
	nsc_event_clear(&ev);
	nsc_close(c);
	return 1;
}
