#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "flusher.h"
#include "log.h"
#include "xmalloc.h"

/* Bounds a flush when the server does not answer; a disconnect or a
 * close ends it sooner. */
#define FLUSH_WAIT_MS 1000

struct flusher {
	natsConnection *nc;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked, stop;
	unsigned long flushes;
};

static void *
flusher_run(void *arg)
{
	struct flusher *f = arg;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->kicked && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		if (f->stop)
			break;
		f->kicked = false;
		pthread_mutex_unlock(&f->lock);
		/* Not connected: the reconnect resends what matters. */
		natsConnection_FlushTimeout(f->nc, FLUSH_WAIT_MS);
		pthread_mutex_lock(&f->lock);
		f->flushes++;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

struct flusher *
flusher_new(natsConnection *nc)
{
	struct flusher *f = xcalloc(1, sizeof *f);
	int err;

	f->nc = nc;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if ((err = pthread_create(&f->thread, NULL, flusher_run, f)) != 0) {
		log_errorx("nats.flusher", "cannot start the flush thread: %s",
		    strerror(err));
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	return f;
}

void
flusher_free(struct flusher *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void
flusher_kick(struct flusher *f)
{
	pthread_mutex_lock(&f->lock);
	if (!f->kicked) {
		f->kicked = true;
		pthread_cond_signal(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
}

unsigned long
flusher_count(struct flusher *f)
{
	unsigned long n;

	pthread_mutex_lock(&f->lock);
	n = f->flushes;
	pthread_mutex_unlock(&f->lock);
	return n;
}
