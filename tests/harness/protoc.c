#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cmocka.h"
#include "harness/proc.h"
#include "harness/protoc.h"
#include "sidecar/schema.h"
#include "sidecar/xmalloc.h"

struct schema *
protoc_events(void)
{
	char path[4096], *err = NULL;
	const char *paths[] = { path };
	struct schema *s;

	proc_tree_path(path, sizeof path, "top_builddir", "proto/events.desc");
	if ((s = schema_load_files(paths, 1, &err)) == NULL)
		fail_msg("%s", err);
	return s;
}

/* Reads all of |path|; NULL if it cannot. */
static void *
slurp(const char *path, size_t *len)
{
	struct stat st;
	void *data;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fstat(fileno(f), &st) == -1) {
		fclose(f);
		return NULL;
	}
	*len = (size_t)st.st_size;
	data = xmalloc(*len);
	if (fread(data, 1, *len, f) != *len) {
		free(data);
		data = NULL;
	}
	fclose(f);
	return data;
}

void *
protoc_compile(const char *name, const char *proto, int imports, size_t *len)
{
	char dir[4096], src[4200], out[4200], log[4200], iarg[4200], oarg[4300];
	char *argv[] = { PROTOC, iarg, "--proto_path=" PROTOBUF_INCLUDE, oarg,
		src, imports ? "--include_imports" : NULL, NULL };
	void *data = NULL;
	pid_t pid;
	FILE *f;

	if (proc_tmpdir(dir, sizeof dir, "protoc") == -1)
		fail_msg("no scratch directory");
	snprintf(src, sizeof src, "%s/%s", dir, name);
	snprintf(out, sizeof out, "%s/out.desc", dir);
	snprintf(log, sizeof log, "%s/protoc.log", dir);
	snprintf(iarg, sizeof iarg, "--proto_path=%s", dir);
	snprintf(oarg, sizeof oarg, "--descriptor_set_out=%s", out);
	if ((f = fopen(src, "w")) == NULL || fputs(proto, f) == EOF ||
	    fclose(f) == EOF)
		fail_msg("cannot write %s", src);
	if ((pid = proc_spawn(argv, -1, log)) == -1 ||
	    proc_wait(&pid, 60000) != 0) {
		proc_show("protoc", log);
		proc_rmtree(dir);
		fail_msg("protoc failed on %s", name);
	}
	data = slurp(out, len);
	proc_rmtree(dir);
	if (data == NULL)
		fail_msg("protoc wrote no descriptor set");
	return data;
}

struct schema *
protoc_schema(const char *name, const char *proto)
{
	struct schema_source src = { name, NULL, 0 };
	struct schema *s;
	char *err = NULL;

	src.data = protoc_compile(name, proto, 1, &src.len);
	s = schema_load(&src, 1, &err);
	free((void *)src.data);
	if (s == NULL)
		fail_msg("%s", err);
	return s;
}

struct schema *
protoc_shop(void)
{
	char path[4096];
	struct schema *s;
	size_t len;
	char *text;

	proc_tree_path(
	    path, sizeof path, "top_srcdir", "tests/harness/shop.proto");
	if ((text = slurp(path, &len)) == NULL)
		fail_msg("cannot read %s", path);
	text = xreallocarray(text, len + 1, 1);
	text[len] = '\0';
	s = protoc_schema("shop.proto", text);
	free(text);
	return s;
}
