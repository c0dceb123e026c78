#include <stdlib.h>

#include "idmap.h"
#include "xmalloc.h"

struct slot {
	uint64_t id; /* 0: empty */
	void *value;
};

struct idmap {
	struct slot *slots;
	size_t mask; /* capacity - 1, a power of two minus one */
	size_t count;
};

static size_t
idmap_hash(uint64_t id)
{
	/* splitmix64 finalizer: sequential ids spread over the table. */
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebULL;
	id ^= id >> 31;
	return (size_t)id;
}

struct idmap *
idmap_new(void)
{
	struct idmap *m = xcalloc(1, sizeof *m);

	m->mask = 63;
	m->slots = xcalloc(m->mask + 1, sizeof *m->slots);
	return m;
}

void
idmap_free(struct idmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

static struct slot *
idmap_find(const struct idmap *m, uint64_t id)
{
	for (size_t i = idmap_hash(id) & m->mask;; i = (i + 1) & m->mask) {
		if (m->slots[i].id == id || m->slots[i].id == 0)
			return &m->slots[i];
	}
}

static void
idmap_grow(struct idmap *m)
{
	struct slot *old = m->slots;
	size_t n = m->mask + 1;

	m->mask = n * 2 - 1;
	m->slots = xcalloc(n * 2, sizeof *m->slots);
	for (size_t i = 0; i < n; i++) {
		if (old[i].id != 0)
			*idmap_find(m, old[i].id) = old[i];
	}
	free(old);
}

void
idmap_put(struct idmap *m, uint64_t id, void *value)
{
	struct slot *s;

	/* Keep the load under 3/4 so probes stay short. */
	if ((m->count + 1) * 4 > (m->mask + 1) * 3)
		idmap_grow(m);
	s = idmap_find(m, id);
	if (s->id == 0)
		m->count++;
	s->id = id;
	s->value = value;
}

void *
idmap_get(const struct idmap *m, uint64_t id)
{
	return id == 0 ? NULL : idmap_find(m, id)->value;
}

void *
idmap_del(struct idmap *m, uint64_t id)
{
	struct slot *s;
	size_t i, j;
	void *value;

	if (id == 0 || (s = idmap_find(m, id))->id == 0)
		return NULL;
	value = s->value;
	m->count--;
	/* Backward-shift: move later entries of the run into the hole. */
	i = (size_t)(s - m->slots);
	for (j = (i + 1) & m->mask; m->slots[j].id != 0;
	     j = (j + 1) & m->mask) {
		size_t home = idmap_hash(m->slots[j].id) & m->mask;

		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].id = 0;
	m->slots[i].value = NULL;
	return value;
}

size_t
idmap_count(const struct idmap *m)
{
	return m->count;
}

void
idmap_foreach(
    const struct idmap *m, void (*fn)(void *, uint64_t, void *), void *arg)
{
	for (size_t i = 0; i <= m->mask; i++) {
		if (m->slots[i].id != 0)
			fn(arg, m->slots[i].id, m->slots[i].value);
	}
}
