/*
 * idmap.c - id -> pointer map (idmap.h). A removed entry leaves a marker
 * (so probes for keys after it go on, and a walk may remove as it goes);
 * markers go when the table is rebuilt, which happens once entries and
 * markers fill three quarters of it.
 */
#include "idmap.h"
#include "xmalloc.h"

#include <stdlib.h>

#define IDMAP_MIN_CAP 16

static char idmap_tomb_mark;
#define idmap_tomb ((void *)&idmap_tomb_mark)

/* Ids are often consecutive: mix them so they spread over the table. */
static size_t idmap_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key;
}

static struct idmap_slot *idmap_find(const struct idmap *m, uint64_t key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = idmap_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct idmap_slot *s = &m->slots[i];
		if (s->val == NULL)
			return NULL;
		if (s->val != idmap_tomb && s->key == key)
			return s;
	}
}

static void idmap_rebuild(struct idmap *m, size_t cap)
{
	struct idmap_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->used = m->count;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].val == NULL || old[i].val == idmap_tomb)
			continue;
		size_t j = idmap_hash(old[i].key) & (cap - 1);
		while (m->slots[j].val != NULL)
			j = (j + 1) & (cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void idmap_free(struct idmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->count = m->used = 0;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	struct idmap_slot *s = idmap_find(m, key);
	return s ? s->val : NULL;
}

int idmap_put(struct idmap *m, uint64_t key, void *val)
{
	if (val == NULL || val == idmap_tomb)
		abort();
	if (idmap_find(m, key) != NULL)
		return -1;
	if ((m->used + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap : IDMAP_MIN_CAP;
		/* Grow when entries fill half of it; else only clear the markers. */
		while ((m->count + 1) * 2 > cap)
			cap *= 2;
		idmap_rebuild(m, cap);
	}
	size_t i = idmap_hash(key) & (m->cap - 1);
	while (m->slots[i].val != NULL && m->slots[i].val != idmap_tomb)
		i = (i + 1) & (m->cap - 1);
	if (m->slots[i].val == NULL)
		m->used++;
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->count++;
	return 0;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
	struct idmap_slot *s = idmap_find(m, key);
	if (s == NULL)
		return NULL;
	void *val = s->val;
	s->val = idmap_tomb;
	m->count--;
	return val;
}

void *idmap_next(const struct idmap *m, size_t *iter)
{
	while (*iter < m->cap) {
		void *val = m->slots[(*iter)++].val;
		if (val != NULL && val != idmap_tomb)
			return val;
	}
	return NULL;
}
