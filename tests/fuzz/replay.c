/*
 * Runs inputs through a fuzz target's LLVMFuzzerTestOneInput without
 * libFuzzer, so that a plain build (and its sanitizers) replays the
 * committed corpus under `make check`. Arguments are files or directories
 * of inputs; with none, a program called NAME-replay replays
 * $top_srcdir/tests/fuzz/corpus/NAME. Prints TAP, one line per input; an
 * input that crashes the target ends the run without its line.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct inputs {
	char **v;
	size_t n;
};

static void
inputs_add(struct inputs *in, char *path)
{
	in->v = xreallocarray(in->v, in->n + 1, sizeof *in->v);
	in->v[in->n++] = path;
}

/* Hidden files (editor and libFuzzer droppings) are not inputs. */
static int
visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Adds |path|, or the files of the directory |path| in name order. */
static void
inputs_collect(struct inputs *in, const char *path)
{
	struct dirent **names;
	struct stat st;
	int n;

	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		inputs_add(in, xstrdup(path));
		return;
	}
	if ((n = scandir(path, &names, visible, alphasort)) == -1) {
		inputs_add(in, xstrdup(path));
		return;
	}
	for (int i = 0; i < n; i++) {
		inputs_add(in, xasprintf("%s/%s", path, names[i]->d_name));
		free(names[i]);
	}
	free(names);
}

/* Reads |path| into an allocation of exactly its size, so that the
 * sanitizers catch a read past the end. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	struct stat st;

	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	*len = (size_t)st.st_size;
	data = xmalloc(*len > 0 ? *len : 1);
	if (fread(data, 1, *len, f) != *len) {
		free(data);
		data = NULL;
		errno = EIO;
	}
out:
	fclose(f);
	return data;
}

/* The default corpus: tests/fuzz/corpus/NAME for NAME-replay. */
static char *
default_corpus(const char *argv0)
{
	const char *base = strrchr(argv0, '/'), *top = getenv("top_srcdir");
	const char *suffix = "-replay";
	size_t n;

	base = base != NULL ? base + 1 : argv0;
	n = strlen(base);
	if (n <= strlen(suffix) ||
	    strcmp(base + n - strlen(suffix), suffix) != 0)
		return NULL;
	return xasprintf("%s/tests/fuzz/corpus/%.*s", top != NULL ? top : ".",
	    (int)(n - strlen(suffix)), base);
}

int
main(int argc, char **argv)
{
	struct inputs in = { NULL, 0 };
	int failed = 0;
	char *corpus;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			inputs_collect(&in, argv[i]);
	} else if ((corpus = default_corpus(argv[0])) != NULL) {
		inputs_collect(&in, corpus);
		free(corpus);
	} else {
		fprintf(stderr, "usage: %s file-or-directory...\n", argv[0]);
		return 2;
	}

	/* No inputs is a broken corpus, not a pass. */
	if (in.n == 0) {
		printf("1..1\nnot ok 1 - no inputs\n");
		return 1;
	}
	printf("1..%zu\n", in.n);
	for (size_t i = 0; i < in.n; i++) {
		uint8_t *data;
		size_t len = 0;

		fflush(stdout);
		if ((data = slurp(in.v[i], &len)) == NULL) {
			printf("not ok %zu - %s: %s\n", i + 1, in.v[i],
			    strerror(errno));
			failed = 1;
		} else {
			LLVMFuzzerTestOneInput(data, len);
			free(data);
			printf("ok %zu - %s\n", i + 1, in.v[i]);
		}
		free(in.v[i]);
	}
	free(in.v);
	return failed;
}
