/*
 * A hash map from non-zero 64-bit ids to pointers (open addressing with
 * linear probing and backward-shift deletion): deliveries by their id,
 * requests by their reply token.
 */
#ifndef SIDECAR_IDMAP_H
#define SIDECAR_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap;

struct idmap *idmap_new(void);
void idmap_free(struct idmap *);
/* Stores |value| under |id| (non-zero), replacing any previous value. */
void idmap_put(struct idmap *, uint64_t id, void *value);
/* The value under |id|, or NULL. */
void *idmap_get(const struct idmap *, uint64_t id);
/* Removes |id| and returns its value, or NULL if absent. */
void *idmap_del(struct idmap *, uint64_t id);
size_t idmap_count(const struct idmap *);
/* Calls |fn| for every entry; |fn| must not change the map. */
void idmap_foreach(const struct idmap *,
    void (*fn)(void *arg, uint64_t id, void *value), void *arg);

#endif
