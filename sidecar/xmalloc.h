/*
 * Allocation that never returns NULL: running out of memory is fatal, and
 * crashing loses nothing that JetStream will not redeliver.
 */
#ifndef SIDECAR_XMALLOC_H
#define SIDECAR_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
/* Resizes |p| to |n| * |size| bytes, checking the multiplication. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *);
/* Copies |len| bytes of |s| and a terminating NUL. */
char *xstrndup(const char *s, size_t len);
void *xmemdup(const void *, size_t);
/* Returns a newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
